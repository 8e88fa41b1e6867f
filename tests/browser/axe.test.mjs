// axe-core, WCAG 2.0/2.1/2.2 A and AA rules: zero violations on the home page, the board in
// both views (notes of every colour, a theme, a note in it, one's own and someone else's notes,
// a menu and an editor open), and the "no such board" page.

import { after, before, test } from 'node:test';
import {
  addTheme, assertNoViolations, chooseView, launchBrowser, moveWithMenu, note, openBoard, openParticipant,
  postNote, runAxe, startServer, waitForNoteCount,
} from './support.mjs';

let server;
let browser;
let room;
const prompt = 'What would make our Saturday sessions better?';
const COLOURS = ['Yellow', 'Pink', 'Blue', 'Green', 'Orange', 'Purple'];

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  room = await server.createRoom(prompt);
  // Someone else's notes, one per colour, and a theme with a note in it.
  const other = await openParticipant(browser, server);
  await openBoard(other.page, room.url, prompt);
  await other.page.getByRole('textbox', { name: 'Your name (optional)' }).fill('Ailsa');
  await other.page.getByRole('button', { name: 'Save name', exact: true }).click();
  await other.page.locator('#connection').filter({ hasText: /^Connected$/ }).waitFor();
  await chooseView(other.page, 'List');
  for (const colour of COLOURS) await postNote(other.page, `${colour} note from Ailsa`, colour);
  await addTheme(other.page, 'Food and drink');
  await moveWithMenu(other.page, 'Green note from Ailsa', 'Food and drink');
  await note(other.page, 'Green note from Ailsa').waitFor();
  other.assertClean();
  await other.close();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the home page has no axe violations', async () => {
  const p = await openParticipant(browser, server);
  try {
    await p.page.goto(`${server.url}/`);
    await p.page.getByRole('heading', { level: 1, name: 'Bothy' }).waitFor();
    assertNoViolations(await runAxe(p.page, 'home page 1280x800'), 'the home page');
    await p.page.setViewportSize({ width: 320, height: 640 });
    assertNoViolations(await runAxe(p.page, 'home page 320x640'), 'the home page at 320 px');
    p.assertClean();
  } finally {
    await p.close();
  }
});

test('the "no such board" page has no axe violations', async () => {
  // The page is served with status 404, which Chromium reports in the console.
  const p = await openParticipant(browser, server, { allowConsole: [/status of 404 \(Not Found\)/] });
  try {
    await p.page.goto(`${server.url}/r/no-such-board`);
    await p.page.getByRole('heading', { level: 1 }).filter({ hasText: /no board/i }).waitFor();
    assertNoViolations(await runAxe(p.page, 'no-such-board page'), 'the "no such board" page');
    p.assertClean();
  } finally {
    await p.close();
  }
});

test('the board has no axe violations in either view, with every colour and a theme', async () => {
  const p = await openParticipant(browser, server);
  const { page } = p;
  try {
    await openBoard(page, room.url, prompt);
    // This person's own notes too, so Edit, Note colour and Delete are on the page.
    await chooseView(page, 'List');
    await postNote(page, 'My own note', 'Orange');
    for (const colour of COLOURS) await waitForNoteCount(page, `${colour} note from Ailsa`, 1);

    assertNoViolations(await runAxe(page, 'board, List view, 1280x800'), 'the board in List view');

    // With a "Move to…" menu and an editor open.
    await note(page, 'My own note').getByRole('button', { name: 'Move to…' }).click();
    await note(page, 'My own note').getByRole('button', { name: 'No theme', exact: true }).waitFor();
    await note(page, 'Yellow note from Ailsa').getByRole('button', { name: 'Pick up', exact: true }).waitFor();
    assertNoViolations(await runAxe(page, 'board, List view, Move to… open'), 'the board with the Move to… menu open');
    await note(page, 'My own note').getByRole('button', { name: 'Edit', exact: true }).click();
    await page.getByRole('textbox', { name: 'Edit note', exact: true }).waitFor();
    assertNoViolations(await runAxe(page, 'board, List view, editing a note'), 'the board with a note being edited');
    await page.keyboard.press('Escape');
    await page.getByRole('textbox', { name: 'Edit note', exact: true }).waitFor({ state: 'detached' });

    await chooseView(page, 'Board');
    await page.locator('#canvas .note').first().waitFor();
    assertNoViolations(await runAxe(page, 'board, Board view, 1280x800'), 'the board in Board view');

    await page.setViewportSize({ width: 320, height: 640 });
    assertNoViolations(await runAxe(page, 'board, Board view, 320x640'), 'the board in Board view at 320 px');
    await chooseView(page, 'List');
    await page.locator('#canvas').waitFor({ state: 'detached' });
    assertNoViolations(await runAxe(page, 'board, List view, 320x640'), 'the board in List view at 320 px');
    p.assertClean();
  } finally {
    await p.close();
  }
});
