// The room page for facilitators and participants: private writing and the reveal, every
// facilitator control by keyboard alone, axe on both views with the room in a busy state, a
// timer that locks the board at zero, a facilitator link that no longer works, and screenshots.
//
// Wait on events, never on sleeps.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  announced, assertNoViolations, chooseView, connected, describeFocus, isFocused, launchBrowser, note, openBoard,
  openParticipant, postNote, runAxe, SCREENSHOTS, startServer, tabTo, waitForNoteCount,
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

/**
 * Creates an event with one room through the API; returns the participant link, the
 * facilitator's room link (`/r/<room>#f=<secret>`), and the event's secret.
 */
async function createEvent({ name = 'Table 1', prompt, anonymous } = {}) {
  const body = { title: 'Community learning day', rooms: [{ name, prompt }] };
  if (anonymous !== undefined) body.anonymous = anonymous;
  const res = await fetch(`${server.url}/api/events`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  const created = await res.json();
  assert.equal(res.status, 201, `POST /api/events: ${res.status} ${JSON.stringify(created)}`);
  const secret = created.facilitator_secret;
  const room = created.rooms[0];
  return {
    event: created.event,
    secret,
    room: room.room,
    url: `${server.url}${room.link}`,
    facilitatorUrl: `${server.url}${room.link}#f=${encodeURIComponent(secret)}`,
  };
}

/** Opens the room as a facilitator and waits for the controls. */
async function openAsFacilitator(page, ev, prompt) {
  await openBoard(page, ev.facilitatorUrl, prompt);
  await controls(page).waitFor();
}

/** The "Facilitator controls" region. */
const controls = (page) => page.getByRole('region', { name: 'Facilitator controls' });

/** Waits until the room's state list (or its absence) says `re`. */
async function stateSays(page, re) {
  await page.locator('.room-state li').filter({ hasText: re }).first().waitFor();
}

async function shot(page, name) {
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

test('private writing: a participant never sees another participant\'s note until the facilitator reveals it', async () => {
  const prompt = 'What should the library stock more of?';
  const ev = await createEvent({ prompt });
  const f = await openParticipant(browser, server);
  const a = await openParticipant(browser, server);
  const b = await openParticipant(browser, server);
  // Every frame B's page receives, to show the words never reach it before the reveal.
  const framesToB = [];
  b.page.on('websocket', (ws) => ws.on('framereceived', (fr) => framesToB.push(String(fr.payload))));
  try {
    await openAsFacilitator(f.page, ev, prompt);
    // The secret is out of the address bar at once (facilitators share their screens).
    assert.equal(new URL(f.page.url()).hash, '');
    await openBoard(a.page, ev.url, prompt);
    await openBoard(b.page, ev.url, prompt);
    for (const p of [f.page, a.page, b.page]) await chooseView(p, 'List');

    await controls(f.page).getByRole('button', { name: 'Start private writing' }).click();
    await stateSays(a.page, /^Private writing: only you and the facilitators/);
    await stateSays(b.page, /^Private writing/);
    await announced(b.page, /Private writing/);

    const secretWords = 'More books in Polish and Urdu';
    await postNote(a.page, secretWords);
    await note(a.page, secretWords).getByText('Only you and the facilitators see this until it is revealed').waitFor();
    // The facilitator reads it, marked as not revealed yet.
    await waitForNoteCount(f.page, secretWords, 1);
    await note(f.page, secretWords).getByText('Not revealed yet').waitFor();

    // Something everyone is sent after A's note: once B has it, B has had everything before it.
    await controls(f.page).getByRole('button', { name: 'Lock the board' }).click();
    await stateSays(b.page, /^The board is locked/);
    await waitForNoteCount(b.page, secretWords, 0);
    assert.ok(!framesToB.some((fr) => fr.includes(secretWords)), 'the note\'s words never reached B\'s page');
    await controls(f.page).getByRole('button', { name: 'Unlock the board' }).click();
    await announced(b.page, /board is unlocked/);

    await controls(f.page).getByRole('button', { name: 'Reveal all notes' }).click();
    await waitForNoteCount(b.page, secretWords, 1);
    await announced(b.page, /revealed/);
    await b.page.locator('.room-state').waitFor({ state: 'hidden' });
    assert.equal(await note(f.page, secretWords).getByText('Not revealed yet').count(), 0);
    for (const p of [f, a, b]) p.assertClean();
  } finally {
    for (const p of [f, a, b]) await p.close();
  }
});

test('every facilitator control on the room page works with the keyboard alone', async () => {
  const prompt = 'What would help new volunteers settle in?';
  const ev = await createEvent({ prompt });
  const f = await openParticipant(browser, server);
  const p = await openParticipant(browser, server);
  const { page } = f;
  const press = async (target, key = 'Enter', options = {}) => {
    await tabTo(page, target, options);
    await page.keyboard.press(key);
  };
  try {
    await openBoard(p.page, ev.url, prompt);
    await chooseView(p.page, 'List');
    await postNote(p.page, 'A buddy for the first month');
    await postNote(p.page, 'Rude words here');
    await openAsFacilitator(page, ev, prompt);
    await chooseView(page, 'List');
    await waitForNoteCount(page, 'Rude words here', 1);
    const c = controls(page);
    // Setting up used the mouse (choosing the List view); from here on only the keyboard.
    await page.evaluate(() => { window.__bothyPointer = []; });
    // Start from the top of the page, as someone arriving by keyboard would.
    await page.locator('a.brand').focus();

    // Private writing, with Enter.
    await press(c.getByRole('button', { name: 'Start private writing' }));
    await stateSays(p.page, /^Private writing/);
    await c.getByRole('button', { name: 'Reveal all notes' }).waitFor();
    assert.ok(await isFocused(c.getByRole('button', { name: 'Reveal all notes' })), `the button keeps the focus (${await describeFocus(page)})`);
    await page.keyboard.press('Space');
    await c.getByRole('button', { name: 'Start private writing' }).waitFor();

    // Lock and unlock, with Space.
    await press(c.getByRole('button', { name: 'Lock the board' }), 'Space');
    await stateSays(p.page, /^The board is locked/);
    await page.keyboard.press('Enter');
    await c.getByRole('button', { name: 'Lock the board' }).waitFor();

    // A timer: type the minutes, choose "Lock the board" at zero with the arrow keys, start.
    await tabTo(page, c.getByRole('spinbutton', { name: 'Minutes' }));
    await page.keyboard.press('Control+A');
    await page.keyboard.type('10');
    await tabTo(page, c.getByRole('radio', { name: 'Do nothing' }));
    await page.keyboard.press('ArrowRight');
    assert.ok(await c.getByRole('radio', { name: 'Lock the board' }).isChecked());
    await press(c.getByRole('button', { name: 'Start timer' }));
    await p.page.locator('.timer .clock').filter({ hasText: /^(10:00|9:5\d)$/ }).waitFor();
    await announced(p.page, /A timer has started: (10 minutes|9 minutes)/);
    await press(c.getByRole('button', { name: 'Stop timer' }), 'Space');
    await p.page.locator('.timer').waitFor({ state: 'hidden' });
    await announced(p.page, /timer was stopped/);

    // Voting: 2 dots each, totals shown.
    await tabTo(page, c.getByRole('spinbutton', { name: 'Dots per person' }));
    await page.keyboard.press('Control+A');
    await page.keyboard.type('2');
    await tabTo(page, c.getByRole('checkbox', { name: 'Show the running totals to everyone' }));
    await page.keyboard.press('Space');
    await press(c.getByRole('button', { name: 'Open voting' }));
    await stateSays(p.page, /^Voting is open: you have 2 of 2 dots left\. Everyone can see/);

    // Who makes themes: the arrow keys move through the radio group.
    await tabTo(page, c.getByRole('radio', { name: 'Everyone' }));
    await page.keyboard.press('ArrowRight');
    await stateSays(p.page, /^Only facilitators can make themes/);
    await p.page.getByRole('button', { name: 'Add theme' }).waitFor({ state: 'hidden' });

    // A note for someone without a device: type, Tab to the button, Enter.
    await tabTo(page, c.getByRole('textbox', { name: 'Their note' }));
    await page.keyboard.type('Written for Morag, who has no phone');
    await press(c.getByRole('button', { name: 'Add note' }));
    await waitForNoteCount(p.page, 'Written for Morag, who has no phone', 1);
    await note(p.page, 'Written for Morag, who has no phone').getByText('Added by a facilitator').waitFor();

    // Spotlight a note: everyone sees it near the top.
    const buddy = note(page, 'A buddy for the first month');
    await press(buddy.getByRole('button', { name: /^Show to everyone/ }));
    const spot = p.page.getByRole('region', { name: 'Shown to everyone by the facilitator' });
    await spot.getByText('A buddy for the first month').waitFor();
    await announced(p.page, /showing a note to everyone/);
    await buddy.getByRole('button', { name: /^Show to everyone/, pressed: true }).waitFor();

    // A dot for someone without a device.
    await press(buddy.getByRole('button', { name: /^Add a dot for someone/ }));
    await note(p.page, 'A buddy for the first month').getByText(/1 dot in all/).waitFor();

    // Hide with a reason: Enter on Hide, the reason box has the focus, Enter hides.
    const rude = note(page, 'Rude words here');
    await press(rude.getByRole('button', { name: /^Hide/ }));
    const reason = page.getByRole('textbox', { name: /Why hide it/ });
    await reason.waitFor();
    assert.ok(await isFocused(reason), `the reason box has the focus (${await describeFocus(page)})`);
    // An empty reason is explained, not sent.
    await page.keyboard.press('Enter');
    await page.getByText('Write a short reason first.').waitFor();
    assert.ok(await isFocused(reason));
    await page.keyboard.type('Unkind to a named person');
    await page.keyboard.press('Enter');
    await waitForNoteCount(p.page, 'Rude words here', 0);
    await p.page.locator('#notes .note').getByText('A facilitator hid this note.').waitFor();
    await note(page, 'Rude words here').getByText('Unkind to a named person').waitFor();
    await c.locator('.audit li').filter({ hasText: 'Unkind to a named person' }).waitFor();

    // Unhide, then remove with the confirm step (Escape cancels the first try).
    await press(note(page, 'Rude words here').getByRole('button', { name: /^Unhide/ }));
    await waitForNoteCount(p.page, 'Rude words here', 1);
    await press(note(page, 'Rude words here').getByRole('button', { name: /^Remove/ }));
    await page.getByRole('textbox', { name: /Why remove it/ }).waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('textbox', { name: /Why remove it/ }).waitFor({ state: 'detached' });
    assert.ok(await isFocused(note(page, 'Rude words here').getByRole('button', { name: /^Remove/ })), `Escape goes back to Remove (${await describeFocus(page)})`);
    await page.keyboard.press('Enter');
    await page.keyboard.type('Names a person');
    await tabTo(page, page.getByRole('button', { name: 'Remove for good' }));
    await page.keyboard.press('Enter');
    await p.page.locator('#notes .note').getByText('A facilitator removed this note.').waitFor();
    await waitForNoteCount(page, 'Rude words here', 0);

    // Close voting, going back up the page.
    await press(c.getByRole('button', { name: 'Close voting' }), 'Enter', { backwards: true });
    await announced(p.page, /Voting is closed/);

    assert.deepEqual(await f.pointerEvents(), [], 'no mouse, pen or touch was used on the facilitator page');
    f.assertClean();
    p.assertClean();
  } finally {
    await f.close();
    await p.close();
  }
});

/** Puts a room into a busy state: a hidden note, a spotlight, voting open, a running timer. */
async function busyRoom(prompt) {
  const ev = await createEvent({ prompt, name: 'Housing' });
  const f = await openParticipant(browser, server);
  const p = await openParticipant(browser, server);
  await openBoard(p.page, ev.url, prompt);
  await chooseView(p.page, 'List');
  for (const [text, colour] of [['Repairs take too long', 'Yellow'], ['Damp in the flats on Hill Street', 'Blue'], ['Something unkind', 'Pink']]) {
    await postNote(p.page, text, colour);
  }
  await openAsFacilitator(f.page, ev, prompt);
  await chooseView(f.page, 'List');
  await waitForNoteCount(f.page, 'Something unkind', 1);
  const c = controls(f.page);
  await note(f.page, 'Something unkind').getByRole('button', { name: /^Hide/ }).click();
  await f.page.getByRole('textbox', { name: /Why hide it/ }).fill('Not kind');
  await f.page.getByRole('button', { name: 'Hide note' }).click();
  await p.page.locator('#notes .note').getByText('A facilitator hid this note.').waitFor();
  await note(f.page, 'Repairs take too long').getByRole('button', { name: /^Show to everyone/ }).click();
  await p.page.getByRole('region', { name: 'Shown to everyone by the facilitator' }).waitFor();
  await c.getByRole('spinbutton', { name: 'Dots per person' }).fill('3');
  await c.getByRole('button', { name: 'Open voting' }).click();
  await stateSays(p.page, /^Voting is open/);
  await note(p.page, 'Damp in the flats on Hill Street').getByRole('button', { name: /^Add a dot/ }).click();
  await stateSays(p.page, /you have 2 of 3 dots left/);
  await c.getByRole('spinbutton', { name: 'Minutes' }).fill('5');
  await c.getByRole('radio', { name: 'Lock the board' }).check();
  await c.getByRole('button', { name: 'Start timer' }).click();
  await p.page.locator('.timer .clock').filter({ hasText: /^[45]:\d\d$/ }).waitFor();
  await f.page.locator('.timer .clock').filter({ hasText: /^[45]:\d\d$/ }).waitFor();
  return { ev, f, p };
}

test('axe finds nothing on the facilitator\'s and a participant\'s view of a busy room; screenshots', async () => {
  const prompt = 'What would make housing repairs work better?';
  const { f, p } = await busyRoom(prompt);
  const shots = [];
  try {
    for (const [who, v] of [['facilitator', f], ['participant', p]]) {
      const { page } = v;
      await page.setViewportSize({ width: 1280, height: 800 });
      assertNoViolations(await runAxe(page, `${who} room view, List, 1280x800`), `the ${who}'s room view`);
      shots.push(await shot(page, `room-${who}-list-1280x800`));
      await chooseView(page, 'Board');
      await page.locator('#canvas .note').first().waitFor();
      assertNoViolations(await runAxe(page, `${who} room view, Board, 1280x800`), `the ${who}'s room view (Board)`);
      shots.push(await shot(page, `room-${who}-board-1280x800`));
      await chooseView(page, 'List');
      await page.setViewportSize({ width: 320, height: 640 });
      await page.locator('#notes .note').first().waitFor();
      assertNoViolations(await runAxe(page, `${who} room view, List, 320x640`), `the ${who}'s room view at 320 px`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.equal(overflow, 0, `the ${who}'s view does not scroll sideways at 320 px`);
      shots.push(await shot(page, `room-${who}-list-320x640`));
    }
    // The facilitator's hide form open (a reason box with an error).
    await f.page.setViewportSize({ width: 1280, height: 800 });
    await note(f.page, 'Damp in the flats on Hill Street').getByRole('button', { name: /^Remove/ }).click();
    await f.page.getByRole('button', { name: 'Remove for good' }).click();
    await f.page.getByText('Write a short reason first.').waitFor();
    assertNoViolations(await runAxe(f.page, 'facilitator, remove form with an error'), 'the remove form with an error');
    shots.push(await shot(f.page, 'room-facilitator-remove-form-1280x800'));
    f.assertClean();
    p.assertClean();
    console.log(`screenshots: ${shots.map((s) => path.relative(process.cwd(), s)).join(', ')}`);
  } finally {
    await f.close();
    await p.close();
  }
});

test('a timer counts down, and at zero the board locks for participants', async () => {
  const prompt = 'One word for today?';
  const ev = await createEvent({ prompt });
  const f = await openParticipant(browser, server);
  const p = await openParticipant(browser, server);
  try {
    await openBoard(p.page, ev.url, prompt);
    await openAsFacilitator(f.page, ev, prompt);
    const c = controls(f.page);
    // One announcement at two minutes left (a timer of 2:01 gets there in about a second).
    await c.getByRole('spinbutton', { name: 'Minutes' }).fill('2');
    await c.getByRole('spinbutton', { name: 'Seconds' }).fill('1');
    await c.getByRole('button', { name: 'Start timer' }).click();
    await announced(p.page, /^2 minutes left\.$/);
    await c.getByRole('button', { name: 'Stop timer' }).click();
    await p.page.locator('.timer').waitFor({ state: 'hidden' });

    await c.getByRole('spinbutton', { name: 'Minutes' }).fill('0');
    await c.getByRole('spinbutton', { name: 'Seconds' }).fill('3');
    await c.getByRole('radio', { name: 'Lock the board' }).check();
    await c.getByRole('button', { name: 'Start timer' }).click();

    // A countdown in m:ss, which is not a live region (it would talk every second).
    const clock = p.page.locator('.timer .clock');
    await clock.filter({ hasText: /^0:0[1-3]$/ }).waitFor();
    assert.equal(await clock.getAttribute('aria-live'), 'off');
    await p.page.locator('.timer').getByText('When the time is up, the board locks.').waitFor();
    // Zero: the server ends the timer and locks the board.
    await stateSays(p.page, /^The board is locked/);
    await announced(p.page, /^Time is up\. The board is locked/);
    await p.page.locator('.timer').waitFor({ state: 'hidden' });
    assert.ok(await p.page.getByRole('button', { name: 'Post', exact: true }).isDisabled(), 'Post is disabled while locked');
    await stateSays(f.page, /^The board is locked: participants/);
    await c.getByRole('button', { name: 'Unlock the board' }).waitFor();
    f.assertClean();
    p.assertClean();
  } finally {
    await f.close();
    await p.close();
  }
});

test('an anonymous room says so and asks for no name; a named room offers the name field', async () => {
  const anon = await createEvent({ prompt: 'Anonymous question', anonymous: true });
  const named = await createEvent({ prompt: 'Named question', anonymous: false });
  const p = await openParticipant(browser, server);
  try {
    await openBoard(p.page, anon.url, 'Anonymous question');
    await p.page.getByText(/^This board is anonymous\. Nobody — not the facilitators either — sees your name/).waitFor();
    assert.equal(await p.page.getByRole('textbox', { name: 'Your name (optional)' }).count(), 0);
    await openBoard(p.page, named.url, 'Named question');
    await p.page.getByText(/^Your name shows on your notes if you give one\./).waitFor();
    await p.page.getByRole('textbox', { name: 'Your name (optional)' }).waitFor();
    p.assertClean();
  } finally {
    await p.close();
  }
});

/** Replaces the event's facilitator secret through the API. */
async function rotate(ev) {
  const res = await fetch(`${server.url}/api/events/${ev.event}/secret`, {
    method: 'POST', headers: { 'X-Bothy-Facilitator': ev.secret },
  });
  assert.equal(res.status, 200);
}

test('a facilitator whose link is replaced while the room is open is told, and carries on as a participant', async () => {
  const prompt = 'What could be simpler?';
  const ev = await createEvent({ prompt });
  const f = await openParticipant(browser, server);
  try {
    await openAsFacilitator(f.page, ev, prompt);
    await rotate(ev);
    await f.page.getByRole('alert').filter({ hasText: 'This facilitator link is not valid any more.' }).waitFor();
    await controls(f.page).waitFor({ state: 'detached' });
    await connected(f.page);
    assert.equal(await f.page.evaluate((room) => localStorage.getItem(`bothy.facilitator.${room}`), ev.room), null);
    await f.page.getByText('You are a facilitator in this room.', { exact: false }).waitFor({ state: 'detached' });
    f.assertClean();
  } finally {
    await f.close();
  }
});

test('a facilitator link that was replaced says so and the page carries on as a participant', async () => {
  const prompt = 'What went well?';
  const ev = await createEvent({ prompt });
  await rotate(ev);
  const f = await openParticipant(browser, server, { allowConsole: [/WebSocket/] });
  try {
    await f.page.goto(ev.facilitatorUrl);
    await f.page.getByText('This facilitator link is not valid any more.', { exact: false }).waitFor();
    await connected(f.page);
    await f.page.getByRole('heading', { level: 1, name: prompt }).waitFor();
    assert.equal(await controls(f.page).count(), 0, 'no facilitator controls');
    assert.equal(new URL(f.page.url()).hash, '', 'the old secret is out of the address bar');
    const kept = await f.page.evaluate((room) => localStorage.getItem(`bothy.facilitator.${room}`), ev.room);
    assert.equal(kept, null, 'the old secret is forgotten');
    // And it works as a participant.
    await postNote(f.page, 'The tea was good');
    f.assertClean();
  } finally {
    await f.close();
  }
});

test('a participant cannot do what the lock forbids, and their refused note comes back to the composer', async () => {
  const prompt = 'Locked board';
  const ev = await createEvent({ prompt });
  const f = await openParticipant(browser, server);
  const p = await openParticipant(browser, server);
  try {
    await openBoard(p.page, ev.url, prompt);
    await chooseView(p.page, 'List');
    await postNote(p.page, 'Before the lock');
    await openAsFacilitator(f.page, ev, prompt);
    await controls(f.page).getByRole('button', { name: 'Lock the board' }).click();
    await stateSays(p.page, /^The board is locked/);
    const n = note(p.page, 'Before the lock');
    for (const name of ['Edit', 'Delete', 'Move to…', 'Pick up']) {
      assert.equal(await n.getByRole('button', { name, exact: true }).count(), 0, `no ${name} while locked`);
    }
    await p.page.getByText('The board is locked, so notes cannot be posted now.').waitFor();
    // A note sent anyway over a raw socket is refused by the server, whatever the page shows.
    const reason = await p.page.evaluate(async (room) => new Promise((resolve) => {
      const ws = new WebSocket(`ws://${location.host}/ws/${room}`);
      ws.onopen = () => ws.send(JSON.stringify({ type: 'join', version: 1, token: 'raw-locked-token-0123456789' }));
      ws.onmessage = (e) => {
        const m = JSON.parse(e.data);
        if (m.type === 'welcome') ws.send(JSON.stringify({ type: 'op', op_id: 'l1', op: { kind: 'create_note', text: 'x', colour: 'blue', x: 1, y: 1 } }));
        if (m.type === 'rejected') { ws.close(); resolve(m.reason); }
      };
    }), ev.room);
    assert.equal(reason, 'locked');
    // Enter in the composer does not send while locked: the words stay.
    const box = p.page.getByRole('textbox', { name: 'Your note', exact: true });
    await box.fill('Typed while locked');
    await box.press('Enter');
    await p.page.getByRole('alert').filter({ hasText: 'The board is locked, so notes cannot be posted now.' }).waitFor();
    assert.equal(await box.inputValue(), 'Typed while locked');
    // A note written just before the lock (sent, not yet confirmed) is refused by the server
    // and comes back to an empty composer rather than being lost.
    await box.fill('');
    await p.page.evaluate((room) => localStorage.setItem(`bothy.pending.${room}`, JSON.stringify([
      { op_id: 'late-1', op: { kind: 'create_note', text: 'Sent as the lock came', colour: 'green', x: 40, y: 40 } }])), ev.room);
    await p.page.reload();
    await p.page.getByRole('alert').filter({ hasText: /locked/ }).waitFor();
    await p.page.waitForFunction(() => document.querySelector('#note-text')?.value === 'Sent as the lock came');
    f.assertClean();
    p.assertClean();
  } finally {
    await f.close();
    await p.close();
  }
});
