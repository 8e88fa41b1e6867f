// After the event, as staff do it: a participant's consent to be quoted (by keyboard, kept over a
// reload), the overview's downloads (snapshot, CSV, HTML), themes across rooms (create, pull in a
// room's theme, take a note out), suggested themes, deleting an event, bringing one back from a
// snapshot file on the home page, axe-core on the new parts, and screenshots at 1280×800 and
// 320×640 in target/screenshots/.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  announced, SCREENSHOTS, WAIT_MS, addTheme, assertNoViolations, isFocused, launchBrowser, moveWithMenu, note, openBoard,
  openParticipant, postNote, runAxe, startServer, tabTo, waitForConfirmed,
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

async function openOverview(page, event) {
  await page.goto(`${server.url}${event.facilitator_link}`);
  await page.getByRole('heading', { level: 1, name: event.title, exact: true }).waitFor();
  await page.waitForFunction(() => document.querySelector('#connection')?.textContent.trim() === 'Connected', null, { timeout: WAIT_MS });
}

const roomCard = (page, name) => page.getByRole('article', { name, exact: true });
const synthSection = (page) => page.getByRole('region', { name: 'Themes across rooms', exact: true });
const afterSection = (page) => page.getByRole('region', { name: 'After the event', exact: true });
const logged = (page, text) => page.getByRole('log').getByText(text).first().waitFor();
const overflows = (page) => page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);

/** Clicks `button` and returns the text of the file the page saves. */
async function downloadText(page, button) {
  const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
  const file = await download.path();
  return { name: download.suggestedFilename(), text: fs.readFileSync(file, 'utf8') };
}

test('a participant marks their own note OK to quote by keyboard; it is kept over a reload', async () => {
  const room = await server.createRoom('What would you change about the library?');
  const a = await openParticipant(browser, server);
  const b = await openParticipant(browser, server);
  try {
    const { page } = a;
    await openBoard(page, room.url, 'What would you change about the library?');
    await page.getByText(/They quote only the notes you mark “OK to quote”/).waitFor();
    await postNote(page, 'Open on Sunday afternoons');
    const box = note(page, 'Open on Sunday afternoons').getByRole('checkbox', { name: 'OK to quote my words in the report' });
    assert.equal(await box.isChecked(), false, 'consent is off by default');

    await tabTo(page, box);
    await page.keyboard.press('Space');
    await announced(page, /Thank you\. Staff may quote this note in the report\./);
    assert.equal(await box.isChecked(), true);
    assert.ok(await isFocused(box), 'the focus stays on the checkbox');

    // Another person never sees a consent box on someone else's note.
    await openBoard(b.page, room.url, 'What would you change about the library?');
    await waitForConfirmed(b.page, 'Open on Sunday afternoons');
    assert.equal(await note(b.page, 'Open on Sunday afternoons').getByRole('checkbox').count(), 0);

    await page.reload();
    await openBoard(page, room.url, 'What would you change about the library?');
    await waitForConfirmed(page, 'Open on Sunday afternoons');
    assert.equal(await note(page, 'Open on Sunday afternoons')
      .getByRole('checkbox', { name: 'OK to quote my words in the report' }).isChecked(), true);

    assertNoViolations(await runAxe(page, 'room with the consent checkbox, 1280x800'), 'the room page with the consent checkbox');
    await page.setViewportSize({ width: 320, height: 640 });
    assertNoViolations(await runAxe(page, 'room with the consent checkbox, 320x640'), 'the room page with the consent checkbox at 320 px');
    assert.equal(await overflows(page), false, 'the room page scrolls sideways at 320 px');
    a.assertClean();
    b.assertClean();
  } finally {
    await a.close();
    await b.close();
  }
});

test('the consent op is what the server receives', async () => {
  // The wire message, checked on the socket itself.
  const room = await server.createRoom('Wire check');
  const a = await openParticipant(browser, server);
  try {
    const { page } = a;
    const frames = [];
    page.on('websocket', (ws) => ws.on('framesent', (f) => frames.push(String(f.payload))));
    await openBoard(page, room.url, 'Wire check');
    await postNote(page, 'Quote me');
    await note(page, 'Quote me').getByRole('checkbox', { name: 'OK to quote my words in the report' }).check();
    await announced(page, /Thank you\. Staff may quote this note in the report\./);
    const op = frames.map((f) => JSON.parse(f)).find((m) => m.op?.kind === 'set_quotable');
    assert.ok(op, `no set_quotable among ${frames.join('\n')}`);
    assert.equal(op.op.quotable, true);
    assert.equal(typeof op.op.note, 'number');
    a.assertClean();
  } finally {
    await a.close();
  }
});

test('the overview downloads the snapshot and the reports as files', async () => {
  const event = await createEvent('Download forum', THREE_ROOMS);
  const fac = await openParticipant(browser, server);
  const p = await openParticipant(browser, server);
  try {
    await openBoard(p.page, `${server.url}${event.rooms[0].link}`);
    await postNote(p.page, '=SUM(A1:A2) more homes');
    const { page } = fac;
    await openOverview(page, event);
    await roomCard(page, 'Housing').getByText('=SUM(A1:A2) more homes').waitFor();
    const section = afterSection(page);

    const snap = await downloadText(page, section.getByRole('button', { name: 'Download the snapshot (JSON)' }));
    assert.match(snap.name, /\.json$/);
    const parsed = JSON.parse(snap.text);
    assert.equal(parsed.rooms.length, 3);
    await section.getByRole('status').getByText(`Downloaded ${snap.name}.`).waitFor();

    await section.getByRole('radio', { name: 'Spreadsheet (CSV)' }).check();
    const csv = await downloadText(page, section.getByRole('button', { name: 'Download the report' }));
    assert.match(csv.name, /\.csv$/);
    assert.equal(csv.text.charCodeAt(0), 0xfeff, 'the CSV starts with a byte order mark');
    assert.match(csv.text.slice(1).split(/\r?\n/)[0], /^Room,Prompt,Theme,Cross-room theme,Text,/);
    assert.ok(!csv.text.includes('=SUM(A1:A2) more homes'), 'a note without consent is not quoted');

    // Quoting every note, after the warning.
    const quoteAll = section.getByRole('checkbox', { name: 'Quote notes whose authors did not say OK' });
    assert.equal(await quoteAll.isChecked(), false);
    await quoteAll.check();
    const all = await downloadText(page, section.getByRole('button', { name: 'Download the report' }));
    assert.ok(all.text.includes('more homes'), 'with "quote all" the note is quoted');

    await section.getByRole('radio', { name: 'Printable page (HTML)' }).check();
    const html = await downloadText(page, section.getByRole('button', { name: 'Download the report' }));
    assert.match(html.name, /\.html?$/);
    assert.match(html.text, /<html/i);
    fac.assertClean();
  } finally {
    await fac.close();
    await p.close();
  }
});

test('themes across rooms: create, pull in a room theme, take out, suggestions; axe and screenshots', async () => {
  const event = await createEvent('Synthesis forum', THREE_ROOMS.slice(0, 2));
  const fac = await openParticipant(browser, server);
  const a = await openParticipant(browser, server);
  const b = await openParticipant(browser, server);
  try {
    const [housing, transport] = event.rooms;
    await openBoard(a.page, `${server.url}${housing.link}`);
    await openBoard(b.page, `${server.url}${transport.link}`);
    for (const text of ['The buses are always late', 'Bus 42 was late again', 'Not enough parking spaces', 'Parking costs too much'])
      await postNote(a.page, text);
    for (const text of ['More buses in the evening', 'The park needs more benches']) await postNote(b.page, text);
    // A room theme in Housing.
    await a.page.getByRole('group', { name: 'View' }).getByRole('radio', { name: 'List', exact: true }).check();
    await addTheme(a.page, 'Parking');
    await a.page.getByRole('heading', { name: 'Parking', exact: true }).waitFor();
    await moveWithMenu(a.page, 'Not enough parking spaces', 'Parking');
    await moveWithMenu(a.page, 'Parking costs too much', 'Parking');

    const { page } = fac;
    await openOverview(page, event);
    const synth = synthSection(page);
    await synth.getByText('No themes across rooms yet.').waitFor();
    const card = roomCard(page, 'Housing');
    await card.getByText('To gather this room’s themes, first add a theme across rooms above.').waitFor();

    // Create a theme across rooms by keyboard.
    await tabTo(page, synth.getByRole('textbox', { name: 'New theme across rooms' }), { max: 200 });
    await page.keyboard.type('Cars and parking');
    await page.keyboard.press('Enter');
    await synth.getByRole('heading', { name: 'Cars and parking', exact: true }).waitFor();
    await logged(page, 'Theme across rooms “Cars and parking” added.');

    // Pull in the room's theme from its card.
    const select = card.getByRole('combobox', { name: 'Add to theme across rooms… “Parking”' });
    await select.selectOption({ label: 'Cars and parking' });
    await card.getByRole('button', { name: 'Add “Parking”' }).click();
    await logged(page, 'Added “Parking” from Housing to Cars and parking: Cars and parking now has 2 notes.');
    const theme = synth.getByRole('article', { name: 'Cars and parking', exact: true });
    await theme.getByText('Not enough parking spaces', { exact: true }).waitFor();
    await theme.getByText('Parking costs too much', { exact: true }).waitFor();
    assert.equal(await theme.getByText('Housing:').count(), 2, 'each note shows its room');
    // The room itself is untouched.
    await a.page.getByRole('heading', { name: 'Parking', exact: true }).waitFor();

    // Take one note out.
    await theme.getByRole('button', { name: 'Take out “Parking costs too much” from Cars and parking' }).click();
    await logged(page, 'Took “Parking costs too much” out of Cars and parking.');
    assert.equal(await theme.getByText('Parking costs too much', { exact: true }).count(), 0);

    // A single note in no theme, from another room, pulled in from its card.
    const transportCard = roomCard(page, 'Transport');
    await transportCard.getByText(/notes? in no theme/).click();
    const one = transportCard.getByRole('combobox', { name: 'Add to theme across rooms… “The park needs more benches”' });
    await one.selectOption({ label: 'Cars and parking' });
    await transportCard.getByRole('button', { name: 'Add “The park needs more benches”' }).click();
    await logged(page, 'Added “The park needs more benches” (Transport) to Cars and parking: Cars and parking now has 2 notes.');
    await theme.getByText('The park needs more benches', { exact: true }).waitFor();
    await theme.getByRole('button', { name: 'Take out “The park needs more benches” from Cars and parking' }).click();
    await logged(page, 'Took “The park needs more benches” out of Cars and parking.');

    // Rename by keyboard.
    await theme.getByRole('button', { name: 'Rename' }).click();
    const name = synth.getByRole('textbox', { name: 'Theme name' });
    await name.fill('Parking');
    await name.press('Enter');
    await synth.getByRole('heading', { name: 'Parking', exact: true }).waitFor();
    await logged(page, 'Theme across rooms renamed to “Parking”.');

    // Suggestions for the notes in no theme across rooms.
    await synth.getByRole('button', { name: 'Suggest themes' }).click();
    const proposals = synth.locator('.syn-suggestion');
    await proposals.first().waitFor();
    const bus = proposals.filter({ hasText: 'Bus 42 was late again' });
    await bus.waitFor();
    for (const text of ['The buses are always late', 'More buses in the evening']) await bus.getByText(text).waitFor();
    assert.equal(await bus.getByText('The park needs more benches').count(), 0, 'an unrelated note is kept apart');

    // Axe and screenshots with every new part showing.
    assertNoViolations(await runAxe(page, 'overview with themes across rooms, 1280x800'), 'the overview with its new sections');
    await synth.screenshot({ path: path.join(SCREENSHOTS, 'synthesis-1280.png') });
    await afterSection(page).screenshot({ path: path.join(SCREENSHOTS, 'after-event-1280.png') });
    await card.screenshot({ path: path.join(SCREENSHOTS, 'synthesis-room-card-1280.png') });
    await page.setViewportSize({ width: 320, height: 640 });
    assertNoViolations(await runAxe(page, 'overview with themes across rooms, 320x640'), 'the overview with its new sections at 320 px');
    assert.equal(await overflows(page), false, 'the overview scrolls sideways at 320 px');
    await synth.screenshot({ path: path.join(SCREENSHOTS, 'synthesis-320.png') });
    await afterSection(page).screenshot({ path: path.join(SCREENSHOTS, 'after-event-320.png') });
    await page.setViewportSize({ width: 1280, height: 800 });

    // Accept with an edited name.
    await bus.getByRole('textbox', { name: 'Name for this theme' }).fill('Buses');
    await bus.getByRole('button', { name: /^Accept/ }).click();
    await logged(page, 'Theme across rooms “Buses” added with 3 notes.');
    const buses = synth.getByRole('article', { name: 'Buses', exact: true });
    for (const text of ['The buses are always late', 'Bus 42 was late again', 'More buses in the evening']) {
      await buses.getByText(text, { exact: true }).waitFor();
    }
    await buses.getByText('Transport:').waitFor();
    assert.ok(await isFocused(buses.getByRole('heading', { name: 'Buses' })), 'the focus goes to the new theme');
    // Dismiss whatever is left.
    while (await proposals.count()) {
      const title = await proposals.first().locator('h4').textContent();
      await proposals.first().getByRole('button', { name: /^Dismiss/ }).click();
      await logged(page, `Suggestion “${title}” dismissed.`);
    }
    // The board is kept on the server.
    await page.reload();
    await synth.getByRole('heading', { name: 'Buses', exact: true }).waitFor();
    await synth.getByText('More buses in the evening', { exact: true }).waitFor();

    // Delete a theme across rooms: its notes stay in their rooms.
    await synth.getByRole('article', { name: 'Parking', exact: true }).getByRole('button', { name: 'Delete' }).click();
    await logged(page, 'Theme across rooms “Parking” deleted. Its notes stay in their rooms.');
    assert.equal(await synth.getByRole('heading', { name: 'Parking', exact: true }).count(), 0);
    fac.assertClean();
    a.assertClean();
    b.assertClean();
  } finally {
    await fac.close();
    await a.close();
    await b.close();
  }
});

test('bring back an event from a downloaded snapshot, then delete it', async () => {
  const event = await createEvent('Restore forum', THREE_ROOMS);
  const fac = await openParticipant(browser, server);
  const p = await openParticipant(browser, server);
  try {
    await openBoard(p.page, `${server.url}${event.rooms[1].link}`);
    await postNote(p.page, 'A bus shelter at the school');
    const { page } = fac;
    await openOverview(page, event);
    await roomCard(page, 'Transport').getByText('A bus shelter at the school').waitFor();
    const snap = await downloadText(page, afterSection(page).getByRole('button', { name: 'Download the snapshot (JSON)' }));
    const file = path.join(SCREENSHOTS, '..', `restore-${Date.now()}.json`);
    fs.writeFileSync(file, snap.text);

    // A file that is not a snapshot is refused, next to the field.
    await page.goto(`${server.url}/`);
    const restore = page.getByRole('region', { name: 'Bring back an event from a snapshot file' });
    const input = restore.getByLabel('Snapshot file (JSON)');
    await restore.getByRole('button', { name: 'Bring back the event' }).click();
    await restore.getByRole('alert').getByText('Choose a snapshot file first.').waitFor();
    await input.setInputFiles({ name: 'notes.json', mimeType: 'application/json', buffer: Buffer.from('{"version": 999}') });
    // The refusal itself is expected here; allowed before the click, which it can beat.
    fac.allowConsole(/status of 422/);
    await restore.getByRole('button', { name: 'Bring back the event' }).click();
    await page.waitForFunction(() => document.getElementById('restore-error')?.textContent.length > 0, null, { timeout: WAIT_MS });
    console.log(`restore refused: ${await restore.getByRole('alert').textContent()}`);
    assert.equal(await input.getAttribute('aria-invalid'), 'true');
    assertNoViolations(await runAxe(page, 'home with the restore form and an error'), 'the home page with the restore error');

    await input.setInputFiles(file);
    await restore.getByRole('button', { name: 'Bring back the event' }).click();
    await page.waitForURL((u) => /^\/e\/[a-z0-9]{4,32}$/.test(u.pathname) && !u.pathname.endsWith(event.event));
    await page.getByRole('heading', { level: 1, name: 'Restore forum', exact: true }).waitFor();
    await roomCard(page, 'Transport').getByText('A bus shelter at the school').waitFor();
    for (const name of ['Housing', 'Green spaces']) await roomCard(page, name).waitFor();
    fs.rmSync(file, { force: true });

    // Delete the restored event: a confirm step that names it, then it is gone.
    const section = afterSection(page);
    await section.getByRole('button', { name: 'Delete this event and all its notes now' }).click();
    await section.getByText('Delete “Restore forum”, every room in it and every note, for good?', { exact: false }).waitFor();
    const yes = section.getByRole('button', { name: 'Yes, delete “Restore forum”' });
    assert.ok(await isFocused(yes), 'the focus moves to the confirm button');
    await page.keyboard.press('Escape');
    assert.ok(await isFocused(section.getByRole('button', { name: 'Delete this event and all its notes now' })));
    await section.getByRole('button', { name: 'Delete this event and all its notes now' }).click();
    await yes.click();
    await page.getByRole('heading', { level: 1, name: 'The event is deleted' }).waitFor();
    await page.getByText('“Restore forum”, its rooms and all their notes have been deleted from Bothy.').waitFor();
    const gone = await fetch(`${server.url}/api/events/${new URL(page.url()).pathname.split('/').pop()}`);
    assert.notEqual(gone.status, 200);
    fac.assertClean();
  } finally {
    await fac.close();
    await p.close();
  }
});
