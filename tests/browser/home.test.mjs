// The home page: start a board, join one with its code; and what the browser keeps for a person
// (their identity across reloads, the composer's unsent text).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  connected, launchBrowser, note, openBoard, openParticipant, postNote, startServer,
  waitForNoteCount,
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

test('start a board from the home page, and join it with its code', async () => {
  const a = await openParticipant(browser, server);
  // Looking up a code that is not one answers 404, which Chromium logs; that is expected here.
  const b = await openParticipant(browser, server, { allowConsole: [/status of 404 \(Not Found\)/] });
  try {
    await a.page.goto(`${server.url}/`);
    await a.page.getByRole('heading', { level: 1, name: 'Bothy' }).waitFor();
    await a.page.getByRole('textbox', { name: 'Question for the board' }).fill('What went well today?');
    await a.page.getByRole('button', { name: 'Start a board', exact: true }).click();
    await a.page.waitForURL(/\/r\/[a-z0-9_-]{4,32}$/);
    await connected(a.page);
    await a.page.getByRole('heading', { level: 1, name: 'What went well today?', exact: true }).waitFor();
    const code = new URL(a.page.url()).pathname.split('/').pop();

    await b.page.goto(`${server.url}/`);
    const codeBox = b.page.getByRole('textbox', { name: 'Board code' });
    // A code that cannot be one is explained, not followed.
    await codeBox.fill('no!');
    await b.page.getByRole('button', { name: 'Join', exact: true }).click();
    await b.page.getByText(/letters and numbers, like/).waitFor();
    assert.equal(new URL(b.page.url()).pathname, '/');
    // Typed with spaces and capitals, as from a card on the wall.
    await codeBox.fill(` ${code.toUpperCase().slice(0, 5)} ${code.toUpperCase().slice(5)} `);
    await b.page.getByRole('button', { name: 'Join', exact: true }).click();
    await b.page.waitForURL(`${server.url}/r/${code}`);
    await connected(b.page);
    await b.page.getByRole('heading', { level: 1, name: 'What went well today?', exact: true }).waitFor();
    // Whoever started the board runs it; the secret is not left in the address bar.
    await a.page.getByRole('region', { name: 'Facilitator controls' }).waitFor();
    assert.equal(new URL(a.page.url()).hash, '');

    // A join code from a card, typed in small letters with a space; an unknown one is explained.
    const other = await server.createRoom('What could be better?');
    await b.page.goto(`${server.url}/`);
    await codeBox.fill('XXXXXX');
    await b.page.getByRole('button', { name: 'Join', exact: true }).click();
    await b.page.getByText(/no board with that code/).waitFor();
    await codeBox.fill(` ${other.code.toLowerCase().slice(0, 3)} ${other.code.toLowerCase().slice(3)} `);
    await b.page.getByRole('button', { name: 'Join', exact: true }).click();
    await b.page.waitForURL(`${server.url}/r/${other.room}`);
    await b.page.getByRole('heading', { level: 1, name: 'What could be better?', exact: true }).waitFor();
    await b.page.goto(`${server.url}/r/${code}`);
    await connected(b.page);

    await postNote(a.page, 'The tea');
    await waitForNoteCount(b.page, 'The tea', 1);
    a.assertClean();
    b.assertClean();
  } finally {
    await a.close();
    await b.close();
  }
});

test('a reload is the same person, and keeps the unsent text in the composer', async () => {
  const room = await server.createRoom('Reload test');
  const p = await openParticipant(browser, server);
  try {
    await openBoard(p.page, room.url, 'Reload test');
    await postNote(p.page, 'Mine before the reload');
    const composer = p.page.getByRole('textbox', { name: 'Your note', exact: true });
    await composer.fill('Half a thought');
    await p.page.reload();
    await connected(p.page);
    assert.equal(await composer.inputValue(), 'Half a thought');
    await p.page.locator('#note-count').filter({ hasText: /^14 of 500 characters$/ }).waitFor();
    // Still the author: Edit and Delete are offered on the note.
    await note(p.page, 'Mine before the reload').getByRole('button', { name: 'Edit', exact: true }).waitFor();
    p.assertClean();
  } finally {
    await p.close();
  }
});

test('mistakes on the home page are announced and tied to their field', async () => {
  const p = await openParticipant(browser, server);
  // The browser logs the refused POST itself; the page handles it.
  p.allowConsole(/Failed to load resource: the server responded with a status of 422/);
  const { page } = p;
  try {
    await page.goto(`${server.url}/`);
    async function check(field, button, label) {
      await page.getByRole('button', { name: button, exact: true }).click();
      const error = await page.waitForFunction((id) => {
        const input = document.getElementById(id);
        const form = input.closest('form');
        const shown = [...form.querySelectorAll('*')].find((el) => el.children.length === 0 && el.textContent.trim() && el !== input
          && !el.matches('label, button, .hint'));
        return shown && { id: shown.id, text: shown.textContent, role: shown.getAttribute('role'), live: shown.getAttribute('aria-live'),
          describedby: input.getAttribute('aria-describedby') ?? '', invalid: input.getAttribute('aria-invalid') };
      }, field).then((h) => h.jsonValue());
      console.log(`home page error for ${label}: ${JSON.stringify(error)}`);
      assert.ok(error.role === 'alert' || error.role === 'status' || error.live === 'polite' || error.live === 'assertive',
        `the error "${error.text}" for ${label} is in a live region, so a screen reader hears it`);
      assert.ok(error.describedby.split(/\s+/).includes(error.id),
        `the error "${error.text}" is tied to ${label} with aria-describedby (it is "${error.describedby}")`);
    }
    await page.getByRole('textbox', { name: 'Board code' }).fill('no!');
    await check('code', 'Join', 'the board code');
    await check('prompt', 'Start a board', 'the question');
    p.assertClean();
  } finally {
    await p.close();
  }
});
