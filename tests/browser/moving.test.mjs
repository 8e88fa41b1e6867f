// Every task three ways: keyboard only (no mouse event at all), and taps only (no dragging),
// WCAG 2.1.1 and 2.5.7.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  announced, chooseView, connected, describeFocus, isFocused, launchBrowser, moveWithMenu, note, noteInTheme,
  openBoard, openParticipant, postNote, startServer, tabTo, themeSection, waitForNoteCount,
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

test('keyboard only: post a note, add a theme, move the note into it and out, edit it, delete it', async () => {
  const prompt = 'How should we share the tools?';
  const room = await server.createRoom(prompt);
  const p = await openParticipant(browser, server);
  const { page } = p;
  const kb = page.keyboard;
  try {
    await page.goto(room.url);
    await connected(page);
    await page.getByRole('heading', { level: 1, name: prompt }).waitFor();

    // Choose the List view with the arrow keys in the "View" radio group.
    const list = page.getByRole('radio', { name: 'List', exact: true });
    const boardRadio = page.getByRole('radio', { name: 'Board', exact: true });
    await tabTo(page, (await list.isChecked()) ? list : boardRadio);
    if (!(await list.isChecked())) await kb.press('ArrowLeft');
    assert.ok(await list.isChecked(), 'the arrow keys choose the List view');

    // Post: Shift+Enter is a new line, Enter posts.
    const composer = page.getByRole('textbox', { name: 'Your note', exact: true });
    await tabTo(page, composer, { backwards: true });
    await kb.type('A shared shed');
    await kb.press('Shift+Enter');
    await kb.type('with a rota');
    await page.locator('#note-count').filter({ hasText: /^25 of 500 characters$/ }).waitFor();
    await kb.press('Enter');
    const text = 'A shared shed\nwith a rota';
    await waitForNoteCount(page, text, 1);
    assert.equal(await composer.inputValue(), '', 'the composer is empty after posting');
    await page.locator('#note-count').filter({ hasText: /^0 of 500 characters$/ }).waitFor();
    assert.ok(await isFocused(composer), 'the focus stays in the composer after posting');
    await announced(page, /posted/i);

    // A theme.
    await tabTo(page, page.getByRole('textbox', { name: 'New theme name', exact: true }));
    await kb.type('Sheds');
    await kb.press('Enter');
    await themeSection(page, 'Sheds').waitFor();

    // Into the theme: focus the note, Space picks it up, ArrowUp to the theme, Enter drops.
    const card = note(page, 'A shared shed with a rota');
    await tabTo(page, card, { backwards: true });
    await kb.press('Space');
    await announced(page, /Picked up/);
    await kb.press('ArrowUp');
    await noteInTheme(page, 'Sheds', 'A shared shed with a rota').waitFor(); // the preview
    // Escape cancels: the note goes back.
    await kb.press('Escape');
    await noteInTheme(page, 'Not in a theme', 'A shared shed with a rota').waitFor();
    assert.ok(await isFocused(card), `the note keeps the focus after a cancelled move (focus: ${await describeFocus(page)})`);
    // Now for real, with the "Pick up" button.
    await tabTo(page, card.getByRole('button', { name: 'Pick up', exact: true }));
    await kb.press('Enter');
    await kb.press('ArrowUp');
    await kb.press('Enter');
    await announced(page, /Moved .* to Sheds/);
    await noteInTheme(page, 'Sheds', 'A shared shed with a rota').waitFor();
    assert.ok(await isFocused(card), `the dropped note keeps the focus (focus: ${await describeFocus(page)})`);

    // Out again with the "Move to…" menu, by keyboard. Escape closes the menu and returns to
    // its button (no keyboard trap).
    const moveTo = card.getByRole('button', { name: 'Move to…' });
    await tabTo(page, moveTo);
    await kb.press('Enter');
    await tabTo(page, card.getByRole('button', { name: 'No theme', exact: true }));
    await kb.press('Escape');
    await card.getByRole('button', { name: 'No theme', exact: true }).waitFor({ state: 'detached' });
    assert.ok(await isFocused(moveTo), `Escape returns the focus to "Move to…" (focus: ${await describeFocus(page)})`);
    await kb.press('Enter');
    await tabTo(page, card.getByRole('button', { name: 'No theme', exact: true }));
    await kb.press('Enter');
    await noteInTheme(page, 'Not in a theme', 'A shared shed with a rota').waitFor();
    // And back in with the menu too.
    await tabTo(page, card.getByRole('button', { name: 'Move to…' }), { backwards: true });
    await kb.press('Enter');
    await tabTo(page, card.getByRole('button', { name: 'Sheds', exact: true }));
    await kb.press('Enter');
    await noteInTheme(page, 'Sheds', 'A shared shed with a rota').waitFor();

    // Edit.
    await tabTo(page, card.getByRole('button', { name: 'Edit', exact: true }));
    await kb.press('Enter');
    const editor = page.getByRole('textbox', { name: 'Edit note', exact: true });
    await editor.waitFor();
    assert.ok(await isFocused(editor), 'Edit puts the focus in the edit box');
    await kb.press('ControlOrMeta+A');
    await kb.type('A shared shed, open on Saturdays');
    await kb.press('Enter');
    await waitForNoteCount(page, 'A shared shed, open on Saturdays', 1);
    await waitForNoteCount(page, text, 0);
    const edited = note(page, 'A shared shed, open on Saturdays');
    await noteInTheme(page, 'Sheds', 'A shared shed, open on Saturdays').waitFor();

    // Delete.
    await tabTo(page, edited.getByRole('button', { name: 'Delete', exact: true }));
    await kb.press('Enter');
    await waitForNoteCount(page, 'A shared shed, open on Saturdays', 0);
    await announced(page, /deleted/i);
    const focus = await describeFocus(page);
    assert.notEqual(focus, 'body', 'after deleting a note the focus is not lost to the page');

    assert.deepEqual(await p.pointerEvents(), [], 'no mouse, touch or pen event reached the page');
    p.assertClean();
  } finally {
    await p.close();
  }
});

test('taps only, no dragging: move a note into a theme and out with the "Move to…" menu, in both views', async () => {
  const room = await server.createRoom('Where should the new benches go?');
  const p = await openParticipant(browser, server, {
    viewport: { width: 360, height: 740 }, hasTouch: true, isMobile: true, deviceScaleFactor: 2,
  });
  const { page } = p;
  try {
    await page.goto(room.url);
    await connected(page);
    // Narrow screens start in the List view.
    assert.ok(await page.getByRole('radio', { name: 'List', exact: true }).isChecked(), 'List is the default under 600px');

    await page.getByRole('textbox', { name: 'Your note', exact: true }).tap();
    await page.keyboard.type('By the pond');
    await page.getByRole('radio', { name: 'Pink', exact: true }).tap();
    await page.getByRole('button', { name: 'Post', exact: true }).tap();
    await waitForNoteCount(page, 'By the pond', 1);

    await page.getByRole('textbox', { name: 'New theme name', exact: true }).tap();
    await page.keyboard.type('Water');
    await page.getByRole('button', { name: 'Add theme', exact: true }).tap();
    await themeSection(page, 'Water').waitFor();

    const card = note(page, 'By the pond');
    await card.getByRole('button', { name: 'Move to…' }).tap();
    await card.getByRole('button', { name: 'Water', exact: true }).tap();
    await noteInTheme(page, 'Water', 'By the pond').waitFor();

    // The Board view offers the same menu.
    await page.getByRole('radio', { name: 'Board', exact: true }).tap();
    await page.locator('#canvas').waitFor();
    await card.getByRole('button', { name: 'Move to…' }).tap();
    await card.getByRole('button', { name: 'No theme', exact: true }).tap();
    await announced(page, /Moved .* to Not in a theme/);
    await page.getByRole('radio', { name: 'List', exact: true }).tap();
    await noteInTheme(page, 'Not in a theme', 'By the pond').waitFor();

    const kinds = new Set((await p.pointerEvents()).map((e) => e.split(':')[1]));
    assert.ok(kinds.has('touch'), 'the taps reached the page as touch input');
    assert.deepEqual([...kinds].filter((k) => k !== 'touch'), [], 'only touch input reached the page');
    p.assertClean();
  } finally {
    await p.close();
  }
});

test('mouse drag in the Board view: a drop moves the note for everyone, onto a cluster puts it in the theme; Escape and dropping outside cancel', async () => {
  const room = await server.createRoom('Drag test');
  const a = await openParticipant(browser, server);
  const b = await openParticipant(browser, server);
  const left = (page, text) => note(page, text).evaluate((el) => [parseFloat(el.style.left), parseFloat(el.style.top)]);
  // Drags the note by (dx, dy) CSS px, or to the middle of `to` (a locator), with the mouse.
  async function drag(page, text, { dx = 0, dy = 0, to = null, escape = false }) {
    const handle = note(page, text).locator('.note-text');
    await handle.scrollIntoViewIfNeeded();
    const box = await handle.boundingBox();
    const x = box.x + 10;
    const y = box.y + box.height / 2;
    if (to) {
      const target = await to.boundingBox();
      const view = page.viewportSize();
      assert.ok(target.y >= 0 && target.y + target.height <= view.height, `the drop target is on screen (${JSON.stringify(target)})`);
      dx = target.x + target.width / 2 - x;
      dy = target.y + target.height / 2 - y;
    }
    await page.mouse.move(x, y);
    await page.mouse.down();
    await page.mouse.move(x + dx / 2, y + dy / 2, { steps: 5 });
    await page.mouse.move(x + dx, y + dy, { steps: 5 });
    if (escape) await page.keyboard.press('Escape');
    await page.mouse.up();
  }
  try {
    await openBoard(a.page, room.url);
    await openBoard(b.page, room.url);
    await chooseView(a.page, 'Board');
    await chooseView(b.page, 'Board');
    await postNote(a.page, 'Drag me');
    await postNote(a.page, 'Anchor');
    await a.page.getByRole('textbox', { name: 'New theme name', exact: true }).fill('Cluster');
    await a.page.getByRole('button', { name: 'Add theme', exact: true }).click();
    await moveWithMenu(a.page, 'Anchor', 'Cluster');
    await a.page.locator('.cluster').filter({ hasText: 'Cluster' }).waitFor();
    await waitForNoteCount(b.page, 'Drag me', 1);

    // A plain drag: the other person sees the note where it was dropped.
    const [x0, y0] = await left(a.page, 'Drag me');
    await drag(a.page, 'Drag me', { dx: 60, dy: 250 });
    await b.page.waitForFunction(([want]) => {
      const el = [...document.querySelectorAll('#canvas .note')].find((n) => n.querySelector('.note-text')?.textContent === 'Drag me');
      return el && Math.abs(parseFloat(el.style.left) - want[0]) < 1 && Math.abs(parseFloat(el.style.top) - want[1]) < 1;
    }, [[x0 + 60, y0 + 250]]);

    // Escape during a drag, and a drop outside the board: the note goes back, nothing is sent.
    await drag(a.page, 'Drag me', { dx: 80, dy: 40, escape: true });
    assert.deepEqual(await left(a.page, 'Drag me'), [x0 + 60, y0 + 250], 'Escape puts the note back');
    await a.page.locator('#notes-h').scrollIntoViewIfNeeded();
    await drag(a.page, 'Drag me', { to: a.page.locator('#notes-h') });
    assert.deepEqual(await left(a.page, 'Drag me'), [x0 + 60, y0 + 250], 'a drop outside the board puts the note back');

    // The cancelled drags sent nothing: once B has A's next change, B still has the first drop.
    await postNote(a.page, 'Barrier');
    await waitForNoteCount(b.page, 'Barrier', 1);
    assert.deepEqual(await left(b.page, 'Drag me'), [x0 + 60, y0 + 250], 'cancelled drags are not sent');

    // Onto the cluster's label: into the theme.
    await drag(a.page, 'Drag me', { to: a.page.locator('.cluster span') });
    await chooseView(b.page, 'List');
    await noteInTheme(b.page, 'Cluster', 'Drag me').waitFor();

    a.assertClean();
    b.assertClean();
  } finally {
    await a.close();
    await b.close();
  }
});

test('touch drag in the Board view moves the note, and the server keeps the new place', async () => {
  const room = await server.createRoom('Touch drag test');
  const p = await openParticipant(browser, server, {
    viewport: { width: 390, height: 800 }, hasTouch: true, isMobile: true,
  });
  const { page } = p;
  const place = () => note(page, 'Touch me').evaluate((el) => [parseFloat(el.style.left), parseFloat(el.style.top)]);
  try {
    await openBoard(page, room.url);
    await chooseView(page, 'Board');
    await postNote(page, 'Touch me');
    const handle = note(page, 'Touch me').locator('.note-text');
    await handle.scrollIntoViewIfNeeded();
    const [x0, y0] = await place();
    const box = await handle.boundingBox();
    // Playwright has taps but no touch drags: send the touch points through the DevTools protocol.
    const cdp = await p.context.newCDPSession(page);
    const at = (x, y) => [{ x, y, id: 1 }];
    const x = box.x + 10;
    const y = box.y + box.height / 2;
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: at(x, y) });
    for (let i = 1; i <= 10; i += 1) {
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: at(x + 4 * i, y + 6 * i) });
    }
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
    await announced(page, /^Moved “Touch me”/);
    assert.deepEqual(await place(), [x0 + 40, y0 + 60]);

    await page.reload();
    await connected(page);
    await note(page, 'Touch me').locator('.note-text').waitFor();
    assert.deepEqual(await place(), [x0 + 40, y0 + 60], 'the server kept the dropped place');
    p.assertClean();
  } finally {
    await p.close();
  }
});

test('keyboard move in the Board view: pick up, arrow keys, Enter drops; Escape cancels', async () => {
  const room = await server.createRoom('Keyboard board test');
  const p = await openParticipant(browser, server);
  const { page } = p;
  const kb = page.keyboard;
  const place = () => note(page, 'Arrow me').evaluate((el) => [parseFloat(el.style.left), parseFloat(el.style.top)]);
  try {
    await openBoard(page, room.url);
    await chooseView(page, 'Board');
    await postNote(page, 'Arrow me');
    const card = note(page, 'Arrow me');
    const [x0, y0] = await place();

    await tabTo(page, card.getByRole('button', { name: 'Pick up', exact: true }));
    await kb.press('Enter');
    await kb.press('ArrowRight');
    await kb.press('ArrowRight');
    await kb.press('ArrowDown');
    await kb.press('Escape');
    await announced(page, /Move cancelled/);
    assert.deepEqual(await place(), [x0, y0], 'Escape puts the note back');

    await tabTo(page, card.getByRole('button', { name: 'Pick up', exact: true }));
    await kb.press('Enter');
    await kb.press('ArrowRight');
    await kb.press('ArrowRight');
    await kb.press('ArrowDown');
    await kb.press('Enter');
    await announced(page, /Moved “Arrow me”/);
    const [x1, y1] = await place();
    assert.ok(x1 > x0 && y1 > y0, `the note moved right and down: from ${[x0, y0]} to ${[x1, y1]}`);
    assert.ok(await isFocused(card), `the dropped note keeps the focus (focus: ${await describeFocus(page)})`);

    await page.reload();
    await connected(page);
    await card.waitFor();
    assert.deepEqual(await place(), [x1, y1], 'the server kept the new place');
    p.assertClean();
  } finally {
    await p.close();
  }
});
