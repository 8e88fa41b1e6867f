// Events, as a facilitator runs them: "Plan an event" on the home page (keyboard only), the
// facilitator overview (live cards while participants post in two rooms; every control by
// keyboard; the run sheet changing all rooms at once, checked from participant pages), the join
// cards, replacing the facilitator link, axe-core on each page, and screenshots at 1280×800 and
// 320×640 in target/screenshots/.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  SCREENSHOTS, WAIT_MS, assertNoViolations, connected, describeFocus, isFocused, launchBrowser, openBoard,
  openParticipant, postNote, runAxe, startServer, tabTo,
} from './support.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Creates an event through the HTTP API; returns the server's answer. */
async function createEvent(title, rooms, anonymous = true) {
  const res = await fetch(`${server.url}/api/events`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ title, anonymous, rooms }),
  });
  const body = await res.json();
  assert.equal(res.status, 201, `POST /api/events: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

const THREE_ROOMS = [
  { name: 'Housing', prompt: 'What would make housing better here?' },
  { name: 'Transport', prompt: 'How do you get around, and what gets in the way?' },
  { name: 'Green spaces', prompt: 'Which parks and paths do you use?' },
];

/** Opens the overview from the facilitator link and waits until every room is connected. */
async function openOverview(page, event) {
  await page.goto(`${server.url}${event.facilitator_link}`);
  await page.getByRole('heading', { level: 1, name: event.title, exact: true }).waitFor();
  await page.waitForFunction(() => document.querySelector('#connection')?.textContent.trim() === 'Connected', null, { timeout: WAIT_MS });
}

/** The card of the room named `name` on the overview. */
const roomCard = (page, name) => page.getByRole('article', { name, exact: true });
/** The "All rooms" run sheet. */
const runSheet = (page) => page.getByRole('region', { name: 'All rooms', exact: true });

/** Waits until "What happened" has an entry containing `text`. */
async function logged(page, text) {
  await page.getByRole('log').getByText(text).waitFor();
}

/** Presses a key with the focus on `target`, reached by Tab (or Shift+Tab) as a keyboard user would. */
async function pressOn(page, target, key = 'Enter', options = {}) {
  await tabTo(page, target, { max: 200, ...options });
  await page.keyboard.press(key);
}

/** What a participant page says about its room (private writing, locked, voting, …). */
const aboutRoom = (page) => page.getByRole('list', { name: 'About this room' });

/** Whether the page scrolls sideways (1.4.10 Reflow). */
const overflows = (page) => page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);

/** Resolves when a WebSocket the page opens from now on is welcomed into its room. */
function welcomeOnNewSocket(page) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no new WebSocket was welcomed')), WAIT_MS);
    page.on('websocket', (ws) => ws.on('framereceived', (f) => {
      if (String(f.payload).includes('"type":"welcome"')) { clearTimeout(timer); resolve(); }
    }));
  });
}

async function shoot(page, name) {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

test('plan an event from the home page with the keyboard only, and land on its overview', async () => {
  const p = await openParticipant(browser, server);
  const { page } = p;
  try {
    await page.goto(`${server.url}/`);
    await page.getByRole('heading', { level: 2, name: 'Plan an event' }).waitFor();
    const started = Date.now();

    await tabTo(page, page.getByRole('textbox', { name: 'Event title' }));
    await page.keyboard.type('Spring forum');
    // Names allowed: arrow keys move within the radio group.
    await tabTo(page, page.getByRole('radio', { name: /^Anonymous event/ }));
    await page.keyboard.press('ArrowDown');
    assert.ok(await page.getByRole('radio', { name: /^Names allowed/ }).isChecked());

    // A template fills the three rooms in one keypress.
    await pressOn(page, page.getByRole('button', { name: 'Start, stop, continue', exact: true }));
    assert.equal(await page.getByRole('textbox', { name: 'Room 1 name' }).inputValue(), 'Start');
    assert.equal(await page.getByRole('textbox', { name: 'Room 3 prompt' }).inputValue(), 'What should we keep doing?');
    assert.equal(await page.getByRole('textbox', { name: 'Room 4 name' }).count(), 0);

    // Adding a room puts the focus in its name; removing one puts it on its neighbour.
    await pressOn(page, page.getByRole('button', { name: 'Add a room', exact: true }));
    assert.ok(await isFocused(page.getByRole('textbox', { name: 'Room 4 name' })), `focus: ${await describeFocus(page)}`);
    await page.keyboard.type('Extra');
    await pressOn(page, page.getByRole('button', { name: 'Remove room 4', exact: true }), 'Space');
    assert.ok(await isFocused(page.getByRole('textbox', { name: 'Room 3 name' })), `focus: ${await describeFocus(page)}`);
    assert.equal(await page.getByRole('textbox', { name: 'Room 4 name' }).count(), 0);
    // Removing a room in the middle renumbers the rest and keeps what was typed.
    await pressOn(page, page.getByRole('button', { name: 'Add a room', exact: true }));
    await page.keyboard.type('Parking');
    await pressOn(page, page.getByRole('button', { name: 'Remove room 2', exact: true }), 'Enter', { backwards: true });
    assert.ok(await isFocused(page.getByRole('textbox', { name: 'Room 2 name' })), `focus: ${await describeFocus(page)}`);
    assert.equal(await page.getByRole('textbox', { name: 'Room 2 name' }).inputValue(), 'Continue');
    assert.equal(await page.getByRole('textbox', { name: 'Room 3 name' }).inputValue(), 'Parking');

    // A missing prompt is explained and its field gets the focus.
    await pressOn(page, page.getByRole('button', { name: 'Create the event', exact: true }));
    await page.getByRole('alert').filter({ hasText: 'Room 3 needs a prompt.' }).waitFor();
    assert.ok(await isFocused(page.getByRole('textbox', { name: 'Room 3 prompt' })), `focus: ${await describeFocus(page)}`);
    await page.keyboard.type('Where should cars go?');

    await pressOn(page, page.getByRole('button', { name: 'Create the event', exact: true }));
    await page.waitForURL(/\/e\/[a-z0-9]{4,32}$/);
    // The secret has left the address bar (facilitators share screens) and is kept locally.
    assert.equal(new URL(page.url()).hash, '');
    const event = new URL(page.url()).pathname.split('/').pop();
    const saved = await page.evaluate((e) => localStorage.getItem(`bothy.event.${e}`), event);
    assert.match(JSON.parse(saved), /^[0-9a-f]{48}$/);
    await page.getByRole('heading', { level: 1, name: 'Spring forum', exact: true }).waitFor();
    for (const name of ['Start', 'Continue', 'Parking']) await roomCard(page, name).waitFor();
    await roomCard(page, 'Parking').getByText('Where should cars go?').waitFor();
    await connected(page);
    const seconds = (Date.now() - started) / 1000;
    console.log(`plan: a 3-room event created by keyboard in ${seconds.toFixed(1)} s (script speed)`);
    p.assertClean();
  } finally {
    await p.close();
  }
});

test('the overview shows each room live while people post in two rooms', async () => {
  const event = await createEvent('Live forum', THREE_ROOMS.slice(0, 2));
  const fac = await openParticipant(browser, server);
  const a = await openParticipant(browser, server);
  const b = await openParticipant(browser, server);
  try {
    await openOverview(fac.page, event);
    const housing = roomCard(fac.page, 'Housing');
    const transport = roomCard(fac.page, 'Transport');
    await housing.getByText('0 notes', { exact: true }).waitFor();
    await housing.getByText('0 people here, not counting facilitators', { exact: true }).waitFor();
    await housing.getByText('No notes yet.').waitFor();
    // Keep the focus on a control: live updates must not move it.
    const copy = housing.getByRole('button', { name: 'Copy link for Housing' });
    await copy.focus();

    const [housingRoom, transportRoom] = event.rooms;
    await openBoard(a.page, `${server.url}${housingRoom.link}`);
    await openBoard(b.page, `${server.url}${transportRoom.link}`);
    await housing.getByText('1 person here, not counting facilitators').waitFor();
    await transport.getByText('1 person here, not counting facilitators').waitFor();

    await postNote(a.page, 'More social housing near the station');
    await housing.getByText('More social housing near the station', { exact: true }).waitFor();
    await housing.getByText('1 note', { exact: true }).waitFor();
    await postNote(b.page, 'Buses after 10 pm');
    await postNote(b.page, 'Safer cycle lanes');
    await transport.getByText('Buses after 10 pm', { exact: true }).waitFor();
    await transport.getByText('Safer cycle lanes', { exact: true }).waitFor();
    await transport.getByText('2 notes', { exact: true }).waitFor();
    // Each note shows only in its own room's card.
    assert.equal(await housing.getByText('Buses after 10 pm').count(), 0);
    // Only the latest three notes show.
    for (const text of ['Step-free access', 'Later trams']) await postNote(b.page, text);
    await transport.getByText('Later trams', { exact: true }).waitFor();
    await transport.getByText('4 notes', { exact: true }).waitFor();
    assert.equal(await transport.getByText('Buses after 10 pm', { exact: true }).count(), 0);
    assert.ok(await isFocused(copy), `the focus moved to ${await describeFocus(fac.page)}`);

    // A co-facilitator opens the overview too: they are not counted as someone in the room,
    // on their page (whose welcome counts everyone) or on the first one.
    const fac2 = await openParticipant(browser, server);
    try {
      await openOverview(fac2.page, event);
      await roomCard(fac2.page, 'Housing').getByText('More social housing near the station', { exact: true }).waitFor();
      await roomCard(fac2.page, 'Housing').getByText('1 person here, not counting facilitators', { exact: true }).waitFor();
      await roomCard(fac2.page, 'Transport').getByText('1 person here, not counting facilitators', { exact: true }).waitFor();
      fac2.assertClean();
    } finally {
      await fac2.close();
    }
    await housing.getByText('1 person here, not counting facilitators', { exact: true }).waitFor();

    // Someone leaves: the count follows.
    await b.close();
    await transport.getByText('0 people here, not counting facilitators').waitFor();
    fac.assertClean();
    a.assertClean();
  } finally {
    await fac.close();
    await a.close();
    await b.close().catch(() => {});
  }
});

test('every overview control works by keyboard, and all-room changes reach every room', async () => {
  const event = await createEvent('Keyboard forum', THREE_ROOMS);
  const fac = await openParticipant(browser, server);
  const people = [];
  try {
    const { page } = fac;
    await openOverview(page, event);
    for (const room of event.rooms) {
      const person = await openParticipant(browser, server);
      people.push(person);
      await openBoard(person.page, `${server.url}${room.link}`);
    }

    // Reachability: Tab from the top visits every control of the page once, in order, and
    // Shift+Tab comes back. Per-room controls are inside closed <details>: only the summary.
    const controls = await page.evaluate(() => {
      const all = [...document.querySelectorAll('main a[href], main button, main input, main summary')]
        .filter((e) => e.checkVisibility() && !(e.type === 'radio' && !e.checked));
      all.forEach((e, i) => { e.dataset.probe = String(i); });
      return all.map((e) => `${e.dataset.probe}: ${e.outerHTML.slice(0, 100)}`);
    });
    await page.locator('body').focus();
    const seen = [];
    for (let i = 0; i < 200; i += 1) {
      await page.keyboard.press('Tab');
      const here = await page.evaluate(() => {
        const e = document.activeElement;
        if (!e?.closest('main')) return null;
        const r = e.getBoundingClientRect();
        return {
          probe: e.dataset.probe, html: e.outerHTML.slice(0, 100), w: r.width, h: r.height,
          ring: getComputedStyle(e).outlineStyle !== 'none',
        };
      });
      if (here && seen.some((s) => s.probe === here.probe)) break;
      if (here) seen.push(here);
    }
    const reached = new Set(seen.map((s) => s.probe));
    for (const c of controls) assert.ok(reached.has(c.split(':')[0]), `not reached by Tab: ${c}`);
    assert.deepEqual(seen.map((s) => Number(s.probe)), seen.map((s) => Number(s.probe)).sort((x, y) => x - y),
      'the Tab order does not follow the page order');
    for (const s of seen) {
      assert.ok(s.ring, `no focus ring: ${s.html}`);
      assert.ok(s.h >= 24 && (s.w >= 24 || /^<a /.test(s.html)), `smaller than 24 px: ${s.html} ${s.w}×${s.h}`);
    }
    // And back again with Shift+Tab, from the last control to the first.
    await tabTo(page, page.locator(`[data-probe="${seen.at(-1).probe}"]`), { max: 200 });
    const back = await tabTo(page, page.locator(`[data-probe="${seen[0].probe}"]`), { max: 200, backwards: true });
    assert.equal(back, seen.length - 1, 'Shift+Tab does not retrace the Tab order');
    console.log(`overview: ${seen.length} tab stops, every control reached, each with a focus ring`);

    // "Start private writing" and a 5-minute timer, in all rooms, from the keyboard.
    const sheet = runSheet(page);
    await pressOn(page, sheet.getByRole('button', { name: 'Start private writing', exact: true }));
    await logged(page, 'Private writing started in 3 of 3 rooms.');
    const minutes = sheet.getByRole('spinbutton', { name: 'Minutes' });
    await tabTo(page, minutes);
    await page.keyboard.press('Control+A');
    await page.keyboard.type('5');
    await pressOn(page, sheet.getByRole('button', { name: 'Start timer', exact: true }));
    await logged(page, '5-minute timer started in 3 of 3 rooms.');
    for (const room of THREE_ROOMS) {
      const card = roomCard(page, room.name);
      await card.getByText('Private writing: people see only their own notes').waitFor();
      await card.getByText(/^Timer: 0[45]:\d\d left$/).waitFor();
    }
    for (const person of people) {
      await aboutRoom(person.page).getByText(/^Private writing: only you and the facilitators/).waitFor();
    }

    // A bad number is explained, and nothing is sent.
    await tabTo(page, minutes, { backwards: true });
    await page.keyboard.press('Control+A');
    await page.keyboard.type('0');
    await pressOn(page, sheet.getByRole('button', { name: 'Start timer', exact: true }));
    await sheet.getByRole('alert').filter({ hasText: 'Minutes must be a whole number from 1 to 360.' }).waitFor();
    assert.ok(await isFocused(minutes));

    // Lock every room with Space; each participant page is locked.
    await pressOn(page, sheet.getByRole('button', { name: 'Lock', exact: true }), 'Space');
    await logged(page, 'Locked in 3 of 3 rooms.');
    for (const person of people) await aboutRoom(person.page).getByText(/^The board is locked/).waitFor();
    for (const room of THREE_ROOMS) await roomCard(page, room.name).getByText(/^Locked: people cannot/).waitFor();

    // One room's own controls: open them with the keyboard, unlock only that room.
    const transport = roomCard(page, 'Transport');
    const summary = transport.getByText('Controls for Transport', { exact: true });
    await pressOn(page, summary);
    await pressOn(page, transport.getByRole('button', { name: 'Unlock in Transport', exact: true }));
    await logged(page, 'Unlocked in Transport.');
    await transport.getByText('Not locked').waitFor();
    await transport.getByText('Unlocked in Transport.').waitFor();
    await roomCard(page, 'Housing').getByText(/^Locked: people cannot/).waitFor();
    await aboutRoom(people[1].page).getByText(/^The board is locked/).waitFor({ state: 'detached' });
    await aboutRoom(people[0].page).getByText(/^The board is locked/).waitFor();

    // Voting with the tallies shown, who makes themes, reveal, stop the timer: all rooms.
    await tabTo(page, sheet.getByRole('checkbox', { name: 'Show the dot counts while voting' }), { max: 200, backwards: true });
    await page.keyboard.press('Space');
    await pressOn(page, sheet.getByRole('button', { name: 'Open voting', exact: true }));
    await logged(page, 'Voting opened with 3 dots each in 3 of 3 rooms.');
    await roomCard(page, 'Housing').getByText('Voting is open: 3 dots each, dot counts shown').waitFor();
    await pressOn(page, sheet.getByRole('button', { name: 'Facilitators only', exact: true }));
    await logged(page, 'Only facilitators can make themes in 3 of 3 rooms.');
    await roomCard(page, 'Green spaces').getByText('Only facilitators can make themes').waitFor();
    await pressOn(page, sheet.getByRole('button', { name: 'Reveal notes', exact: true }), 'Enter', { backwards: true });
    await logged(page, 'Notes revealed in 3 of 3 rooms.');
    await pressOn(page, sheet.getByRole('button', { name: 'Stop timer', exact: true }));
    await logged(page, 'Timer stopped in 3 of 3 rooms.');
    for (const room of THREE_ROOMS) await roomCard(page, room.name).getByText('No timer running').waitFor();
    await pressOn(page, sheet.getByRole('button', { name: 'Close voting', exact: true }));
    await logged(page, 'Voting closed in 3 of 3 rooms.');

    // A timer that locks at zero: the card says so.
    await tabTo(page, sheet.getByRole('radio', { name: 'Do nothing' }), { max: 200, backwards: true });
    await page.keyboard.press('ArrowDown');
    assert.ok(await sheet.getByRole('radio', { name: 'Lock the board' }).isChecked());
    await pressOn(page, sheet.getByRole('button', { name: 'Start timer', exact: true }));
    await sheet.getByRole('alert').filter({ hasText: 'Minutes' }).waitFor(); // still 0 from before
    await tabTo(page, minutes, { backwards: true });
    await page.keyboard.press('Control+A');
    await page.keyboard.type('2');
    await pressOn(page, sheet.getByRole('button', { name: 'Start timer', exact: true }));
    await logged(page, '2-minute timer started in 3 of 3 rooms.');
    await roomCard(page, 'Housing').getByText(/^Timer: 0[12]:\d\d left, then the board locks$/).waitFor();

    fac.assertClean();
    for (const person of people) person.assertClean();
  } finally {
    await fac.close();
    for (const person of people) await person.close();
  }
});

test('the facilitator link can be copied, shown and replaced; the old one stops working', async () => {
  const event = await createEvent('Link forum', THREE_ROOMS.slice(0, 1));
  const fac = await openParticipant(browser, server);
  const stale = await openParticipant(browser, server);
  try {
    const { page } = fac;
    await fac.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    await openOverview(page, event);
    // A second facilitator has the overview open with the same link.
    await openOverview(stale.page, event);
    await pressOn(page, page.getByRole('button', { name: 'Copy the facilitator link', exact: true }));
    await page.getByRole('status').filter({ hasText: 'Copied.' }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `${server.url}${event.facilitator_link}`);

    const show = page.getByRole('button', { name: 'Show the facilitator link', exact: true });
    await pressOn(page, show);
    assert.equal(await page.getByRole('textbox', { name: 'Facilitator link' }).inputValue(), `${server.url}${event.facilitator_link}`);
    await pressOn(page, page.getByRole('button', { name: 'Hide the facilitator link', exact: true }));
    assert.equal(await page.getByRole('textbox', { name: 'Facilitator link' }).count(), 0);

    // Changing asks first; Escape cancels and gives the focus back.
    const change = page.getByRole('button', { name: 'Change the facilitator link', exact: true });
    await pressOn(page, change);
    assert.ok(await isFocused(page.getByRole('button', { name: 'Yes, change the link' })));
    await page.keyboard.press('Escape');
    assert.ok(await isFocused(change));
    await page.keyboard.press('Enter');
    // The server closes the connections that used the old secret; the page joins again.
    const rejoined = welcomeOnNewSocket(page);
    await page.keyboard.press('Enter');
    await page.getByRole('status').filter({ hasText: 'The old one no longer works.' }).waitFor();
    await rejoined;
    const shown = await page.getByRole('textbox', { name: 'Facilitator link' }).inputValue();
    const secret = new URL(shown).hash.replace('#f=', '');
    assert.match(secret, /^[0-9a-f]{48}$/);
    assert.notEqual(secret, event.facilitator_secret);
    const open = roomCard(page, 'Housing').getByRole('link', { name: /^Open room/ });
    assert.equal(await open.getAttribute('href'), `${event.rooms[0].link}#f=${secret}`);

    // This page joined its rooms again with the new secret, and can still run them.
    await connected(page);
    await roomCard(page, 'Housing').getByText('Controls for Housing').click();
    await roomCard(page, 'Housing').getByRole('button', { name: 'Lock in Housing', exact: true }).click();
    await logged(page, 'Locked in Housing.');

    const get = (s) => fetch(`${server.url}/api/events/${event.event}`, { headers: { 'X-Bothy-Facilitator': s } });
    assert.equal((await get(event.facilitator_secret)).status, 403);
    assert.equal((await get(secret)).status, 200);

    // The other facilitator's page, joined with the old link, is told plainly; so is anyone
    // who opens the old link. (Chromium logs the 403 itself.)
    const notValid = 'This facilitator link is not valid. Ask whoever created the event for the current link.';
    await stale.page.getByText(notValid).waitFor();
    assert.equal(await stale.page.locator('#connection').isHidden(), true);
    stale.allowConsole(/status of 403 \(Forbidden\)/);
    await stale.page.goto(`${server.url}${event.facilitator_link}`);
    await stale.page.getByText(notValid).waitFor();
    assert.equal(new URL(stale.page.url()).hash, '');
    assertNoViolations(await runAxe(stale.page, 'overview, link not valid'), 'the "link not valid" page');
    fac.assertClean();
    stale.assertClean();
  } finally {
    await fac.close();
    await stale.close();
  }
});

test('join cards: code, link, QR code and a print layout without controls', async () => {
  const event = await createEvent('Cards forum', THREE_ROOMS);
  const fac = await openParticipant(browser, server);
  try {
    const { page } = fac;
    await openOverview(page, event);
    await pressOn(page, page.getByRole('link', { name: 'Print join cards', exact: true }));
    await page.waitForURL(`${server.url}/e/${event.event}/cards`);
    const host = new URL(server.url).host;
    for (const [i, room] of event.rooms.entries()) {
      const card = page.getByRole('article', { name: room.name, exact: true });
      await card.getByText(THREE_ROOMS[i].prompt, { exact: true }).waitFor();
      await card.getByText(`Go to ${host} and type the code`).waitFor();
      await card.getByText(`${room.code.slice(0, 3)}-${room.code.slice(3)}`).waitFor();
      await card.getByText(`${server.url}${room.link}`, { exact: true }).waitFor();
      const qr = card.getByRole('img', { name: `QR code for ${room.name}` });
      await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await qr.elementHandle());
    }
    await page.getByRole('button', { name: 'Print', exact: true }).waitFor();
    // Printed: two cards a page on A4 and on US Letter (three rooms: two pages).
    for (const format of ['A4', 'Letter']) {
      const pdf = (await page.pdf({ format })).toString('latin1');
      const pages = (pdf.match(/\/Type\s*\/Page\b/g) ?? []).length;
      assert.equal(pages, 2, `three join cards printed on ${format} take ${pages} pages`);
    }
    await page.emulateMedia({ media: 'print' });
    assert.ok(await page.getByRole('button', { name: 'Print', exact: true }).isHidden());
    assert.ok(await page.locator('header').isHidden());
    await page.emulateMedia({ media: 'screen' });
    fac.assertClean();
  } finally {
    await fac.close();
  }
});

test('axe-core finds nothing on the home page, the overview and the join cards; screenshots', async () => {
  const event = await createEvent('Axe forum: Saturday café', THREE_ROOMS, false);
  const fac = await openParticipant(browser, server);
  const person = await openParticipant(browser, server);
  try {
    const { page } = fac;
    await page.goto(`${server.url}/`);
    await page.getByRole('heading', { level: 2, name: 'Plan an event' }).waitFor();
    assertNoViolations(await runAxe(page, 'home with plan form, 1280x800'), 'the home page with the plan form');
    await shoot(page, 'events-home-1280');
    // An error showing, at 320 px.
    await page.setViewportSize({ width: 320, height: 640 });
    await page.getByRole('button', { name: 'Create the event', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: 'Write a title for the event.' }).waitFor();
    assertNoViolations(await runAxe(page, 'home with plan form, 320x640'), 'the home page with the plan form at 320 px');
    assert.equal(await overflows(page), false, 'the home page scrolls sideways at 320 px');
    await shoot(page, 'events-home-320');
    await page.setViewportSize({ width: 1280, height: 800 });

    // The overview with notes of several kinds: private, revealed, hidden; a timer; voting.
    await openOverview(page, event);
    await openBoard(person.page, `${server.url}${event.rooms[0].link}`);
    await postNote(person.page, 'Open the library on Sundays');
    const sheet = runSheet(page);
    await sheet.getByRole('button', { name: 'Start private writing', exact: true }).click();
    await logged(page, 'Private writing started in 3 of 3 rooms.');
    await sheet.getByRole('button', { name: 'Start timer', exact: true }).click();
    await sheet.getByRole('button', { name: 'Open voting', exact: true }).click();
    await logged(page, 'Voting opened with 3 dots each in 3 of 3 rooms.');
    await person.page.getByRole('textbox', { name: 'Your note', exact: true }).fill('A private thought');
    await person.page.getByRole('button', { name: 'Post', exact: true }).click();
    const housing = roomCard(page, 'Housing');
    await housing.getByText('A private thought', { exact: true }).waitFor();
    await housing.getByText('Private:', { exact: true }).waitFor();
    await roomCard(page, 'Transport').getByText('Controls for Transport').click();
    await roomCard(page, 'Transport').getByRole('button', { name: 'Lock in Transport', exact: true }).click();
    await logged(page, 'Locked in Transport.');
    assertNoViolations(await runAxe(page, 'overview, 1280x800'), 'the overview');
    await shoot(page, 'events-overview-1280');
    await page.setViewportSize({ width: 320, height: 640 });
    assertNoViolations(await runAxe(page, 'overview, 320x640'), 'the overview at 320 px');
    assert.equal(await overflows(page), false, 'the overview scrolls sideways at 320 px');
    await shoot(page, 'events-overview-320');
    await page.setViewportSize({ width: 1280, height: 800 });

    await page.goto(`${server.url}/e/${event.event}/cards`);
    const qrs = page.getByRole('img', { name: /^QR code for / });
    await qrs.nth(2).waitFor();
    await page.getByText(THREE_ROOMS[2].prompt, { exact: true }).waitFor();
    await page.waitForFunction(() => [...document.images].every((i) => i.complete && i.naturalWidth > 0));
    assertNoViolations(await runAxe(page, 'join cards, 1280x800'), 'the join cards');
    await shoot(page, 'events-cards-1280');
    await page.setViewportSize({ width: 320, height: 640 });
    assertNoViolations(await runAxe(page, 'join cards, 320x640'), 'the join cards at 320 px');
    assert.equal(await overflows(page), false, 'the join cards scroll sideways at 320 px');
    await shoot(page, 'events-cards-320');
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.emulateMedia({ media: 'print' });
    await shoot(page, 'events-cards-print');
    await page.emulateMedia({ media: 'screen' });
    fac.assertClean();
    person.assertClean();
  } finally {
    await fac.close();
    await person.close();
  }
});
