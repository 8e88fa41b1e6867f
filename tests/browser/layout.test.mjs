// Light and small-screen friendly: the first load's compressed bytes, no other hosts, no
// horizontal scrolling at 320 CSS px, and screenshots to look at (target/screenshots/).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  addTheme, chooseView, connected, launchBrowser, moveWithMenu, openBoard, openParticipant,
  postNote, SCREENSHOTS, startServer, waitForNoteCount,
} from './support.mjs';

const BUDGET = 50 * 1024; // bytes, compressed: issue 3, "Light"

let server;
let browser;
let room;
const prompt = 'What would make the community garden a better place for everyone who uses it?';

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  room = await server.createRoom(prompt);
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const p = await openParticipant(browser, server);
  await openBoard(p.page, room.url, prompt);
  await chooseView(p.page, 'List');
  const notes = [
    ['More shade by the benches', 'Yellow'],
    ['A pond with a fence round it, so small children are safe', 'Blue'],
    ['Raised beds for people who cannot kneel', 'Green'],
    ['https://example.org/a-very-long-address-with-no-spaces-at-all-that-must-wrap-somewhere-sensible', 'Pink'],
    ['Compost bins\nand a rota for turning them', 'Orange'],
    ['مقاعد في الظل', 'Purple'],
  ];
  for (const [text, colour] of notes) await postNote(p.page, text, colour);
  await addTheme(p.page, 'Comfort and access for everyone');
  await moveWithMenu(p.page, 'More shade by the benches', 'Comfort and access for everyone');
  await moveWithMenu(p.page, 'Raised beds for people who cannot kneel', 'Comfort and access for everyone');
  p.assertClean();
  await p.close();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

function kb(n) {
  return `${(n / 1024).toFixed(1)} KB`;
}

test('the first load of a board is at most 50 KB compressed and talks to no other host', async () => {
  const p = await openParticipant(browser, server);
  const { page } = p;
  const responses = [];
  page.on('response', (r) => responses.push(r));
  const hosts = new Set();
  page.on('request', (r) => hosts.add(new URL(r.url()).host));
  page.on('websocket', (ws) => hosts.add(new URL(ws.url()).host));
  try {
    await page.goto(room.url, { waitUntil: 'load' });
    await connected(page);
    await waitForNoteCount(page, 'More shade by the benches', 1);

    let total = 0;
    const rows = [];
    for (const r of responses) {
      const req = r.request();
      const sizes = await req.sizes();
      const body = sizes.responseBodySize;
      total += body;
      const decoded = r.status() === 200 ? (await r.body()).length : 0;
      rows.push({
        file: new URL(r.url()).pathname,
        type: req.resourceType(),
        status: r.status(),
        encoding: (await r.headerValue('content-encoding')) ?? 'none',
        bytes: body,
        decoded,
        cache: await r.headerValue('cache-control'),
      });
    }
    console.log(`first load of ${new URL(room.url).pathname}:`);
    for (const row of rows) {
      console.log(`  ${row.file.padEnd(22)} ${row.type.padEnd(10)} ${row.status} ${row.encoding.padEnd(5)} ` +
        `${String(row.bytes).padStart(6)} B on the wire (${row.decoded} B decoded) cache-control: ${row.cache}`);
    }
    console.log(`first-load bytes (compressed bodies, HTML+CSS+JS and anything else): ${total} B = ${kb(total)} of ${kb(BUDGET)}`);

    const types = new Set(rows.map((r) => r.type));
    for (const t of ['document', 'stylesheet', 'script']) assert.ok(types.has(t), `the first load includes a ${t}`);
    assert.ok(!types.has('font'), 'no web fonts');
    assert.ok(total <= BUDGET, `the first load is ${total} B compressed, over the ${BUDGET} B budget`);
    assert.deepEqual([...hosts], [new URL(server.url).host], 'the page talks to its own host only');

    // A second load revalidates (ETag) instead of downloading again.
    const before = responses.length;
    await page.reload({ waitUntil: 'load' });
    await connected(page);
    let again = 0;
    for (const r of responses.slice(before)) again += (await r.request().sizes()).responseBodySize;
    console.log(`reload bytes (compressed bodies): ${again} B`);
    p.assertClean();
  } finally {
    await p.close();
  }
});

async function noHorizontalOverflow(page, label) {
  const { scrollWidth, clientWidth, wide } = await page.evaluate(() => {
    const root = document.documentElement;
    // What sticks out, for the message.
    const wide = [...document.querySelectorAll('body *')]
      .filter((el) => el.getBoundingClientRect().right > root.clientWidth + 0.5)
      .slice(0, 5)
      .map((el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}.${[...el.classList].join('.')} right=${Math.round(el.getBoundingClientRect().right)}`);
    return { scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, wide };
  });
  console.log(`reflow ${label}: scrollWidth ${scrollWidth}, clientWidth ${clientWidth}`);
  assert.ok(scrollWidth <= clientWidth, `${label} scrolls sideways: scrollWidth ${scrollWidth} > clientWidth ${clientWidth}; sticking out: ${wide.join(', ')}`);
}

test('no horizontal scrolling at 320×640 in the List view and on the home page; screenshots saved', async () => {
  const shots = [];
  for (const [width, height] of [[1280, 800], [320, 640]]) {
    const size = `${width}x${height}`;
    const p = await openParticipant(browser, server, { viewport: { width, height } });
    const { page } = p;
    try {
      await page.goto(`${server.url}/`);
      await page.getByRole('heading', { level: 1, name: 'Bothy' }).waitFor();
      if (width === 320) await noHorizontalOverflow(page, `home page at ${size}`);
      shots.push(path.join(SCREENSHOTS, `home-${size}.png`));
      await page.screenshot({ path: shots.at(-1), fullPage: true });

      await openBoard(page, room.url, prompt);
      await chooseView(page, 'List');
      await waitForNoteCount(page, 'مقاعد في الظل', 1);
      if (width === 320) await noHorizontalOverflow(page, `board, List view, at ${size}`);
      shots.push(path.join(SCREENSHOTS, `board-list-${size}.png`));
      await page.screenshot({ path: shots.at(-1), fullPage: true });

      await chooseView(page, 'Board');
      await page.locator('#canvas .note').first().waitFor();
      shots.push(path.join(SCREENSHOTS, `board-board-${size}.png`));
      await page.screenshot({ path: shots.at(-1), fullPage: true });
      p.assertClean();
    } finally {
      await p.close();
    }
  }
  for (const s of shots) assert.ok(fs.statSync(s).size > 0);
  console.log(`screenshots: ${shots.map((s) => path.relative(process.cwd(), s)).join(', ')}`);
});

test('200% zoom at 1280 wide (640 CSS px) has no horizontal scrolling in the List view', async () => {
  // Chromium's zoom for a 1280-px window at 200% is a 640-CSS-px viewport at scale 2.
  const p = await openParticipant(browser, server, { viewport: { width: 640, height: 400 }, deviceScaleFactor: 2 });
  try {
    await openBoard(p.page, room.url, prompt);
    await chooseView(p.page, 'List');
    await waitForNoteCount(p.page, 'مقاعد في الظل', 1);
    await noHorizontalOverflow(p.page, 'board, List view, 200% zoom');
    p.assertClean();
  } finally {
    await p.close();
  }
});
