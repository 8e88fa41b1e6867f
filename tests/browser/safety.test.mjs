// User text is only ever text: HTML and script payloads in every text sink show literally and run
// nothing (no dialog, no CSP violation, no new elements), live and on a fresh load.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  addTheme, chooseView, launchBrowser, openBoard, openParticipant, postNote, ROOT, startServer,
  themeSection, waitForNoteCount,
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

const PAYLOADS = [
  '<img src=x onerror=alert(1)><script>alert(2)</script>',
  '"><svg onload=alert(3)>',
  "'); alert(4); ('",
  '<style>body{display:none}</style><iframe src="javascript:alert(5)"></iframe>',
  '{{constructor.constructor("alert(6)")()}} ${alert(7)}',
  'javascript:alert(8)',
  '&lt;b&gt;not bold&lt;/b&gt; &amp; <b>not bold either</b>',
];
const PROMPT = '<h1 onclick=alert(9)>Prompt</h1><script>alert(10)</script>';
const THEME = '<img src=x onerror=alert(11)>';
const NAME = '<b onmouseover=alert(12)>me</b>';

/** Checks that the page shows every payload literally and holds no element a payload made. */
async function assertLiteral(page, label) {
  for (const text of PAYLOADS) await waitForNoteCount(page, text, 1);
  assert.equal(await page.locator('h1').first().textContent(), PROMPT, `${label}: the prompt shows as typed`);
  assert.ok((await page.title()).includes(PROMPT), `${label}: the title holds the prompt as text`);
  const made = await page.evaluate(() =>
    [...document.querySelectorAll('body img, body svg, body iframe, body style, body b, body script, [onerror], [onload], [onclick], [onmouseover]')]
      .map((el) => el.outerHTML.slice(0, 120)));
  assert.deepEqual(made, [], `${label}: elements made from user text`);
  // Authors are shown as text too.
  const authors = await page.locator('#notes .note bdi').allTextContents();
  assert.ok(authors.includes(NAME), `${label}: the display name shows as typed (authors: ${JSON.stringify(authors)})`);
}

test('HTML and script payloads in notes, a theme, a name and the prompt show as text and run nothing', async () => {
  const room = await server.createRoom(PROMPT);
  const a = await openParticipant(browser, server);
  const b = await openParticipant(browser, server);
  try {
    await openBoard(a.page, room.url, PROMPT);
    await openBoard(b.page, room.url, PROMPT);
    await a.page.getByRole('textbox', { name: 'Your name (optional)' }).fill(NAME);
    await a.page.getByRole('button', { name: 'Save name', exact: true }).click();
    await a.page.locator('#connection').filter({ hasText: /^Connected$/ }).waitFor();
    await chooseView(a.page, 'List');
    for (const text of PAYLOADS) await postNote(a.page, text);
    await addTheme(a.page, THEME);
    await themeSection(a.page, THEME).waitFor();

    // Live (applied messages) for both, in both views.
    for (const [p, who] of [[a, 'author'], [b, 'other participant']]) {
      await chooseView(p.page, 'List');
      await themeSection(p.page, THEME).waitFor();
      await assertLiteral(p.page, `${who}, List view`);
      await chooseView(p.page, 'Board');
      await p.page.locator('#canvas').waitFor();
      await assertLiteral(p.page, `${who}, Board view`);
    }

    // A fresh load (the board comes whole in welcome).
    const c = await openParticipant(browser, server);
    try {
      await openBoard(c.page, room.url, PROMPT);
      await chooseView(c.page, 'List');
      await themeSection(c.page, THEME).waitFor();
      await assertLiteral(c.page, 'fresh load, List view');
      c.assertClean();
    } finally {
      await c.close();
    }
    a.assertClean();
    b.assertClean();
  } finally {
    await a.close();
    await b.close();
  }
});

test('the client never builds HTML from strings (static check of web/*.js)', () => {
  const dir = path.join(ROOT, 'web');
  const bad = /\.innerHTML\b|\.outerHTML\s*=|insertAdjacentHTML|document\.write|setAttribute\(\s*['"](style|on\w+)['"]|\beval\(|new Function\(/;
  const found = [];
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.js'))) {
    fs.readFileSync(path.join(dir, file), 'utf8').split('\n').forEach((line, i) => {
      if (bad.test(line)) found.push(`web/${file}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(found, []);
});

test('payloads sent over a raw socket (bidi overrides, zero-width, long emoji, markup) show verbatim and break nothing', async () => {
  const RLO = '\u202e';
  const CONTENT = [
    `${RLO}gnp.exe — reversed by an override`,
    `zero\u200bwidth\u200cjoiners\u200d here\ufeff`,
    '👩‍👩‍👧‍👦'.repeat(40),
    `<a href="javascript:alert(13)">click</a>${RLO}`,
    'مرحبا — right-to-left text',
  ];
  const NAME = `${RLO}rotatilicaF`;
  const TITLE = `\u200b<i>${RLO}theme</i>`;
  const PROMPT2 = `Prompt ${RLO}with an override`;
  const room = await server.createRoom(PROMPT2);
  const writer = await openParticipant(browser, server);
  const reader = await openParticipant(browser, server, { viewport: { width: 320, height: 640 } });
  try {
    // The writer's page opens its own socket and sends the payloads as raw protocol messages,
    // bypassing the client's checks.
    await writer.page.goto(`${server.url}/`);
    const applied = await writer.page.evaluate(async ({ roomId, name, content, title }) => {
      const ws = new WebSocket(`ws://${location.host}/ws/${roomId}`);
      const seen = [];
      const done = new Promise((resolve, reject) => {
        ws.onmessage = (e) => {
          const m = JSON.parse(e.data);
          if (m.type === 'applied' || m.type === 'rejected') seen.push(m.type === 'applied' ? m.op.kind : `rejected:${m.reason}`);
          if (seen.length === content.length + 2) resolve(seen);
        };
        ws.onclose = (e) => reject(new Error(`closed ${e.code} ${e.reason}`));
      });
      ws.onopen = () => {
        ws.send(JSON.stringify({ type: 'join', version: 1, token: 'raw-socket-token-0123456789', name }));
        content.forEach((text, i) => ws.send(JSON.stringify({ type: 'op', op_id: `raw-${i}`, op: { kind: 'create_note', text, colour: 'blue', x: 10, y: 10 } })));
        ws.send(JSON.stringify({ type: 'op', op_id: 'raw-theme', op: { kind: 'create_theme', title } }));
        ws.send(JSON.stringify({ type: 'op', op_id: 'raw-move', op: { kind: 'set_note_theme', note: 1, theme: 1 } }));
      };
      const result = await done;
      ws.close();
      return result;
    }, { roomId: room.room, name: NAME, content: CONTENT, title: TITLE });
    assert.deepEqual(applied, [...CONTENT.map(() => 'create_note'), 'create_theme', 'set_note_theme']);

    await openBoard(reader.page, room.url, PROMPT2);
    await chooseView(reader.page, 'List');
    for (const text of CONTENT) await waitForNoteCount(reader.page, text, 1);
    assert.equal(await reader.page.locator('h1').first().textContent(), PROMPT2);
    assert.equal(await reader.page.locator('#notes h3').first().textContent(), TITLE);
    const authors = await reader.page.locator('#notes .note bdi').allTextContents();
    assert.ok(authors.every((a) => a === NAME), `authors shown verbatim and isolated: ${JSON.stringify(authors)}`);
    // Note text is laid out in its own direction, names are isolated from the text around them.
    assert.equal(await reader.page.locator('#notes .note .note-text').first().getAttribute('dir'), 'auto');
    const overflow = await reader.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.equal(overflow, 0, 'no horizontal scrolling at 320 px with long emoji sequences');
    writer.assertClean();
    reader.assertClean();
  } finally {
    await writer.close();
    await reader.close();
  }
});

test('payloads in an event title, room names, prompts, notes and a moderation reason show as text on the facilitator pages', async () => {
  const TITLE = '<img src=x onerror=alert(21)>Event';
  const ROOMS = ['<script>alert(22)</script>Room', '"><svg onload=alert(23)>'];
  const PROMPTS = ['<b onmouseover=alert(24)>Why?</b>', "'); alert(25); ('"];
  const NOTE = '<iframe src="javascript:alert(26)"></iframe>';
  const REASON = '<style>body{display:none}</style>reason';
  const res = await fetch(`${server.url}/api/events`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ title: TITLE, anonymous: false, rooms: ROOMS.map((name, i) => ({ name, prompt: PROMPTS[i] })) }),
  });
  assert.equal(res.status, 201);
  const event = await res.json();
  const room = event.rooms[0].room;
  const secret = event.facilitator_secret;
  const f = await openParticipant(browser, server);
  try {
    // A raw facilitator socket posts the note and hides a second one with a hostile reason.
    await f.page.goto(`${server.url}/`);
    const outcomes = await f.page.evaluate(async ({ roomId, secret: s, note, reason }) => {
      const ws = new WebSocket(`ws://${location.host}/ws/${roomId}`);
      const seen = [];
      const done = new Promise((resolve, reject) => {
        ws.onmessage = (e) => {
          const m = JSON.parse(e.data);
          if (m.type === 'applied' || m.type === 'rejected') seen.push(m.type === 'applied' ? m.op.kind : `rejected:${m.reason}`);
          if (seen.length === 3) resolve(seen);
        };
        ws.onclose = (e) => reject(new Error(`closed ${e.code} ${e.reason}`));
      });
      ws.onopen = () => {
        ws.send(JSON.stringify({ type: 'join', version: 1, token: 'raw-facilitator-token-012345', facilitator: s }));
        ws.send(JSON.stringify({ type: 'op', op_id: 'n1', op: { kind: 'create_note', text: note, colour: 'pink', x: 10, y: 10 } }));
        ws.send(JSON.stringify({ type: 'op', op_id: 'n2', op: { kind: 'create_note', text: `${note} hidden`, colour: 'pink', x: 10, y: 10 } }));
        ws.send(JSON.stringify({ type: 'op', op_id: 'h', op: { kind: 'hide_note', note: 2, reason } }));
      };
      const result = await done;
      ws.close();
      return result;
    }, { roomId: room, secret, note: NOTE, reason: REASON });
    assert.deepEqual(outcomes, ['create_note', 'create_note', 'hide_note']);

    const noElementsFromText = async (label) => {
      const made = await f.page.evaluate(() =>
        [...document.querySelectorAll('body img:not([src^="/api/rooms/"]), body svg, body iframe, body main style, body b, body script, [onerror], [onload], [onclick], [onmouseover]')]
          .map((el) => el.outerHTML.slice(0, 120)));
      assert.deepEqual(made, [], `${label}: elements made from user text`);
    };
    // The overview.
    await f.page.goto(`${server.url}/e/${event.event}#f=${secret}`);
    await f.page.getByText(TITLE, { exact: false }).first().waitFor();
    for (const name of ROOMS) await f.page.getByText(name, { exact: false }).first().waitFor();
    await f.page.getByText(NOTE, { exact: true }).first().waitFor();
    await noElementsFromText('overview');
    // The join cards.
    await f.page.goto(`${server.url}/e/${event.event}/cards`);
    for (const text of [...ROOMS, ...PROMPTS]) await f.page.getByText(text, { exact: false }).first().waitFor();
    await noElementsFromText('join cards');
    // The room's facilitator view: the hidden note's words and the reason (audit list) as text.
    await f.page.goto(`${server.url}/r/${room}#f=${secret}`);
    await f.page.getByRole('region', { name: 'Facilitator controls' }).waitFor();
    await f.page.getByText(REASON, { exact: false }).first().waitFor();
    assert.equal(await f.page.locator('h1').first().textContent(), PROMPTS[0]);
    await noElementsFromText('facilitator room view');
    f.assertClean();
  } finally {
    await f.close();
  }
});
