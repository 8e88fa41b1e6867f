// Two people on one board, each in their own browser context: what one does, the other sees;
// pausing live updates; the focus when someone else changes your note. And bad Wi-Fi: notes
// written offline (even with the page closed) or while the server restarts are sent on
// reconnect and appear exactly once; a page that missed changes catches up.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  announced, addTheme, chooseView, connected, describeFocus, isFocused, launchBrowser, moveWithMenu, note,
  noteInTheme, openBoard, openParticipant, postNote, startCuttableProxy, startServer, themeSection,
  waitForConfirmed, waitForNoteCount,
} from './support.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a note, its edit, its move into a theme and its deletion reach the other participant', async () => {
  const prompt = 'What would make the garden better?';
  const room = await server.createRoom(prompt);
  const a = await openParticipant(browser, server);
  const b = await openParticipant(browser, server);
  try {
    await openBoard(a.page, room.url, prompt);
    await openBoard(b.page, room.url, prompt);
    for (const p of [a.page, b.page]) await chooseView(p, 'List');

    // Posted by A, seen by B; and the other way round.
    await postNote(a.page, 'More shade by the benches', 'Green');
    await waitForNoteCount(b.page, 'More shade by the benches', 1);
    await announced(b.page, /new note/i);
    await postNote(b.page, 'A pond?', 'Blue');
    await waitForNoteCount(a.page, 'A pond?', 1);

    // Only the author may edit or delete; B sees no Edit/Delete on A's note.
    assert.equal(await note(b.page, 'More shade by the benches').getByRole('button', { name: 'Edit', exact: true }).count(), 0);
    assert.equal(await note(b.page, 'More shade by the benches').getByRole('button', { name: 'Delete', exact: true }).count(), 0);

    // Edit.
    const mine = note(a.page, 'More shade by the benches');
    await mine.getByRole('button', { name: 'Edit', exact: true }).click();
    const editor = a.page.getByRole('textbox', { name: 'Edit note', exact: true });
    await editor.fill('More shade by the benches, and water');
    await a.page.getByRole('button', { name: 'Save', exact: true }).click();
    await waitForNoteCount(b.page, 'More shade by the benches, and water', 1);
    await waitForNoteCount(b.page, 'More shade by the benches', 0);

    // A theme, and a move into it, seen by B in List view.
    await addTheme(a.page, 'Outdoors');
    await themeSection(b.page, 'Outdoors').waitFor();
    await moveWithMenu(a.page, 'More shade by the benches, and water', 'Outdoors');
    await noteInTheme(b.page, 'Outdoors', 'More shade by the benches, and water').waitFor();
    // B moves A's note back out (anyone may move any note); A sees it under "Not in a theme".
    await moveWithMenu(b.page, 'More shade by the benches, and water', 'No theme');
    await noteInTheme(a.page, 'Not in a theme', 'More shade by the benches, and water').waitFor();

    // Delete.
    await note(a.page, 'More shade by the benches, and water').getByRole('button', { name: 'Delete', exact: true }).click();
    await waitForNoteCount(b.page, 'More shade by the benches, and water', 0);
    await waitForNoteCount(a.page, 'More shade by the benches, and water', 0);
    await waitForNoteCount(b.page, 'A pond?', 1);

    a.assertClean();
    b.assertClean();
  } finally {
    await a.close();
    await b.close();
  }
});

test('a recolour, a theme rename and a theme deletion reach the other participant', async () => {
  const room = await server.createRoom('Recolour and themes');
  const a = await openParticipant(browser, server);
  const b = await openParticipant(browser, server);
  try {
    await openBoard(a.page, room.url);
    await openBoard(b.page, room.url);
    for (const p of [a.page, b.page]) await chooseView(p, 'List');

    await postNote(a.page, 'Change my colour', 'Yellow');
    await note(b.page, 'Change my colour').and(b.page.locator('.note-yellow')).waitFor();
    await note(a.page, 'Change my colour').getByRole('combobox', { name: 'Note colour' }).selectOption({ label: 'Purple' });
    await note(b.page, 'Change my colour').and(b.page.locator('.note-purple')).waitFor();
    await note(b.page, 'Change my colour').getByText(/Purple/).waitFor();

    await addTheme(a.page, 'Old title');
    await moveWithMenu(a.page, 'Change my colour', 'Old title');
    await noteInTheme(b.page, 'Old title', 'Change my colour').waitFor();
    await a.page.getByRole('button', { name: 'Rename theme' }).click();
    await a.page.getByRole('textbox', { name: 'Theme name', exact: true }).fill('New title');
    await a.page.getByRole('button', { name: 'Save', exact: true }).click();
    await noteInTheme(b.page, 'New title', 'Change my colour').waitFor();
    await themeSection(b.page, 'Old title').waitFor({ state: 'detached' });

    await b.page.getByRole('button', { name: 'Delete theme' }).click();
    await themeSection(a.page, 'New title').waitFor({ state: 'detached' });
    await noteInTheme(a.page, 'Not in a theme', 'Change my colour').waitFor();


    a.assertClean();
    b.assertClean();
  } finally {
    await a.close();
    await b.close();
  }
});

test('when someone else deletes or moves the note you are on, the focus stays on the board and you are told', async () => {
  const room = await server.createRoom('Focus test');
  const a = await openParticipant(browser, server);
  const b = await openParticipant(browser, server);
  try {
    await openBoard(a.page, room.url);
    await openBoard(b.page, room.url);
    for (const p of [a.page, b.page]) await chooseView(p, 'List');
    await postNote(b.page, 'First');
    await postNote(b.page, 'Second');
    await postNote(b.page, 'Third');
    await addTheme(b.page, 'Elsewhere');
    await waitForNoteCount(a.page, 'Third', 1);
    await themeSection(a.page, 'Elsewhere').waitFor();

    // Moved: the focus stays on the note, wherever it went.
    await note(a.page, 'Second').focus();
    await moveWithMenu(b.page, 'Second', 'Elsewhere');
    await noteInTheme(a.page, 'Elsewhere', 'Second').waitFor();
    await a.page.locator('#announcer').filter({ hasText: 'moved by someone else' }).waitFor({ state: 'attached' });
    assert.ok(await isFocused(note(a.page, 'Second')), `the moved note keeps the focus (focus: ${await describeFocus(a.page)})`);

    // Deleted: the focus goes to a neighbouring note, never to the page body.
    await note(b.page, 'Second').getByRole('button', { name: 'Delete', exact: true }).click();
    await waitForNoteCount(a.page, 'Second', 0);
    await a.page.locator('#announcer').filter({ hasText: 'deleted by someone else' }).waitFor({ state: 'attached' });
    const focus = await describeFocus(a.page);
    assert.ok(await a.page.evaluate(() => document.activeElement?.matches('.note, h2, h1')),
      `after the deletion the focus is on a note or heading, not ${focus}`);

    a.assertClean();
    b.assertClean();
  } finally {
    await a.close();
    await b.close();
  }
});

test('while live updates are paused, changes wait and the button says how many; on resume they are announced as one summary', async () => {
  const room = await server.createRoom('Pause test');
  const a = await openParticipant(browser, server);
  const b = await openParticipant(browser, server);
  try {
    await openBoard(a.page, room.url);
    await openBoard(b.page, room.url);
    const pause = b.page.getByRole('button', { name: /live updates/ });
    assert.equal(await pause.getAttribute('aria-pressed'), 'false');
    await pause.click();
    assert.equal(await pause.getAttribute('aria-pressed'), 'true');

    await postNote(a.page, 'Held back');
    await postNote(a.page, 'Also held back');
    await postNote(a.page, 'Held back too');
    // The count is how B learns that changes arrived; once it says 3, all are held.
    await b.page.getByRole('button', { name: /live updates.*\b3\b/ }).waitFor();
    for (const t of ['Held back', 'Also held back', 'Held back too']) await waitForNoteCount(b.page, t, 0);

    await pause.click();
    assert.equal(await pause.getAttribute('aria-pressed'), 'false');
    for (const t of ['Held back', 'Also held back', 'Held back too']) await waitForNoteCount(b.page, t, 1);
    // Changes that arrive together are announced as one summary, not one by one.
    await announced(b.page, /^3 new notes\.$/);

    a.assertClean();
    b.assertClean();
  } finally {
    await a.close();
    await b.close();
  }
});

test('notes posted offline are sent on reconnect and appear exactly once for the other participant', async () => {
  const prompt = 'Offline test';
  const room = await server.createRoom(prompt);
  // A reaches the server through a proxy the test can cut: Chromium's offline emulation alone
  // leaves an open WebSocket working, so the cut makes the loss real.
  const proxy = await startCuttableProxy(server.port);
  const a = await openParticipant(browser, server, { allowedOrigins: [proxy.url] });
  // Chromium itself logs failed connection attempts while offline; those are not page errors.
  a.allowConsole(/^WebSocket connection to '.*' failed/);
  a.allowConsole(/net::ERR_INTERNET_DISCONNECTED|net::ERR_CONNECTION_(REFUSED|RESET|CLOSED)/);
  const b = await openParticipant(browser, server);
  try {
    await openBoard(a.page, `${proxy.url}${room.path}`, prompt);
    await openBoard(b.page, room.url, prompt);
    await postNote(a.page, 'Before the Wi-Fi went');
    await waitForNoteCount(b.page, 'Before the Wi-Fi went', 1);

    await a.context.setOffline(true);
    proxy.cut();
    await a.page.locator('#connection').filter({ hasText: /^Offline/ }).waitFor();
    console.log(`offline status: ${await a.page.locator('#connection').textContent()}`);

    for (const text of ['Written offline, one', 'Written offline, two']) {
      await a.page.getByRole('textbox', { name: 'Your note', exact: true }).fill(text);
      await a.page.getByRole('button', { name: 'Post', exact: true }).click();
      // Kept in the browser and shown to its author as not sent yet.
      await waitForNoteCount(a.page, text, 1);
      await note(a.page, text).filter({ hasText: 'Not sent yet' }).waitFor();
    }

    proxy.restore();
    await a.context.setOffline(false);
    await connected(a.page);

    await waitForNoteCount(b.page, 'Written offline, one', 1);
    await waitForNoteCount(b.page, 'Written offline, two', 1);
    // A barrier: a note posted after the resend reaches B after anything the resend caused
    // (the room has one order), so a duplicate would already be on B's board.
    await postNote(a.page, 'After the Wi-Fi came back');
    await waitForNoteCount(b.page, 'After the Wi-Fi came back', 1);
    for (const page of [a.page, b.page]) {
      await waitForNoteCount(page, 'Written offline, one', 1);
      await waitForNoteCount(page, 'Written offline, two', 1);
      await waitForNoteCount(page, 'Before the Wi-Fi went', 1);
    }

    // And a reload gets the same board from the server: still once each.
    await b.page.reload();
    await connected(b.page);
    await waitForNoteCount(b.page, 'After the Wi-Fi came back', 1);
    await waitForNoteCount(b.page, 'Written offline, one', 1);
    await waitForNoteCount(b.page, 'Written offline, two', 1);

    a.assertClean();
    b.assertClean();
  } finally {
    await a.close();
    await b.close();
    await proxy.close();
  }
});

test('a note written offline survives closing the page and is sent, once, when the board is opened again', async () => {
  const room = await server.createRoom('Offline and closed');
  const proxy = await startCuttableProxy(server.port);
  const a = await openParticipant(browser, server, { allowedOrigins: [proxy.url] });
  a.allowConsole(/^WebSocket connection to '.*' failed/);
  a.allowConsole(/net::ERR_INTERNET_DISCONNECTED|net::ERR_CONNECTION_(REFUSED|RESET|CLOSED)/);
  const b = await openParticipant(browser, server);
  try {
    await openBoard(a.page, `${proxy.url}${room.path}`);
    await openBoard(b.page, room.url);
    await a.context.setOffline(true);
    proxy.cut();
    await a.page.locator('#connection').filter({ hasText: /^Offline/ }).waitFor();
    await a.page.getByRole('textbox', { name: 'Your note', exact: true }).fill('Written on the bus');
    await a.page.getByRole('button', { name: 'Post', exact: true }).click();
    await note(a.page, 'Written on the bus').filter({ hasText: 'Not sent yet' }).waitFor();
    await a.page.close();

    proxy.restore();
    await a.context.setOffline(false);
    const again = await a.context.newPage();
    await again.goto(`${proxy.url}${room.path}`);
    await connected(again);
    await waitForNoteCount(b.page, 'Written on the bus', 1);
    await postNote(again, 'Barrier');
    await waitForNoteCount(b.page, 'Barrier', 1);
    await waitForNoteCount(b.page, 'Written on the bus', 1);
    await waitForNoteCount(again, 'Written on the bus', 1);
    // Still this person's note.
    await note(again, 'Written on the bus').getByRole('button', { name: 'Edit', exact: true }).waitFor();
    a.assertClean();
    b.assertClean();
  } finally {
    await a.close();
    await b.close();
    await proxy.close();
  }
});

test('after a server restart, pages reconnect by themselves, catch up on what they missed, and send what was written meanwhile, once', async () => {
  const own = await startServer();
  const room = await own.createRoom('Restart test');
  // B comes through a proxy that stays cut until A's change is saved, so B must catch up on it
  // when it rejoins (welcome with board null, then the missed `applied` messages).
  const proxy = await startCuttableProxy(own.port);
  const a = await openParticipant(browser, own);
  const b = await openParticipant(browser, own, { allowedOrigins: [proxy.url] });
  for (const p of [a, b]) p.allowConsole(/^WebSocket connection to '.*' failed|net::ERR_CONNECTION_(REFUSED|RESET|CLOSED)/);
  try {
    await openBoard(a.page, room.url);
    await openBoard(b.page, `${proxy.url}${room.path}`);
    await postNote(a.page, 'Before the restart');
    await waitForNoteCount(b.page, 'Before the restart', 1);

    proxy.cut();
    await own.halt();
    await a.page.locator('#connection').filter({ hasText: /^Reconnecting…$/ }).waitFor();
    await b.page.locator('#connection').filter({ hasText: /^Reconnecting…$/ }).waitFor();
    await a.page.getByRole('textbox', { name: 'Your note', exact: true }).fill('During the restart');
    await a.page.getByRole('button', { name: 'Post', exact: true }).click();
    await note(a.page, 'During the restart').filter({ hasText: 'Not sent yet' }).waitFor();

    await own.resume();
    await connected(a.page);
    await waitForConfirmed(a.page, 'During the restart');
    await postNote(a.page, 'Also missed by B');

    proxy.restore();
    // B retries with a growing delay (at most 10 s); give it one full step.
    await b.page.locator('#connection').filter({ hasText: /^Connected$/ }).waitFor({ timeout: 20_000 });
    await waitForNoteCount(b.page, 'During the restart', 1);
    await waitForNoteCount(b.page, 'Also missed by B', 1);
    await postNote(a.page, 'After the restart');
    await waitForNoteCount(b.page, 'After the restart', 1);
    for (const page of [a.page, b.page]) {
      for (const t of ['Before the restart', 'During the restart', 'Also missed by B']) await waitForNoteCount(page, t, 1);
    }
    a.assertClean();
    b.assertClean();
  } finally {
    await a.close();
    await b.close();
    await proxy.close();
    await own.stop();
  }
});

test('a board too big for its welcome is fetched from its one-time link, and every change after it shows', async () => {
  // On this server every board goes by link (the inline limit is 0 bytes), so a small room
  // takes the path a 2,000-note board takes.
  const linked = await startServer({ env: { BOTHY_INLINE_BOARD_MAX_BYTES: '0' } });
  const prompt = 'What should the new library have?';
  const room = await linked.createRoom(prompt);
  const a = await openParticipant(browser, linked);
  const b = await openParticipant(browser, linked);
  try {
    await openBoard(a.page, room.url, prompt);
    await postNote(a.page, 'Quiet corners');
    const fetched = b.page.waitForResponse((r) => new URL(r.url()).pathname.startsWith('/api/boards/'));
    await openBoard(b.page, room.url, prompt);
    const res = await fetched;
    assert.equal(res.status(), 200);
    assert.equal((await res.allHeaders())['content-encoding'], 'gzip', 'the board came gzipped');
    await waitForNoteCount(b.page, 'Quiet corners', 1);
    // Changes after the welcome apply to the fetched board, in order.
    await postNote(a.page, 'Longer hours');
    await waitForNoteCount(b.page, 'Longer hours', 1);
    await postNote(b.page, 'A cafe');
    await waitForNoteCount(a.page, 'A cafe', 1);
    a.assertClean();
    b.assertClean();
  } finally {
    await a.close();
    await b.close();
    await linked.stop();
  }
});
