// Shared helpers for the browser tests: the real `bothy` binary on 127.0.0.1:0 with a fresh data
// directory, Debian's chromium driven by playwright-core, a watcher that records everything a
// page must never do (script errors, console errors, dialogs, CSP violations, requests to other
// hosts), axe-core injected into the page, and small helpers that speak the client's DOM.
//
// Wait on events (locator auto-waiting, `waitFor`, `page.waitForFunction`), never on sleeps.
//
// Run: `make browser` (builds target/debug/bothy first), or from the repository root
// `node --test --test-concurrency=1 tests/browser/`; one file: `node --test tests/browser/axe.test.mjs`.
// Needs /usr/bin/chromium (Debian's package) and `npm ci` here; `bash .ci/run` installs both.
// Environment: BOTHY_BIN (the server binary), BOTHY_CHROMIUM (the browser), BOTHY_LOG (the
// server's log filter, default `warn`), BOTHY_TEST_SERVER_LOG=1 (print the server's log at the end).

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));

/** The repository root (tests/browser/../..). */
export const ROOT = path.resolve(here, '..', '..');
/** Screenshots land here (git-ignored through target/). */
export const SCREENSHOTS = path.join(ROOT, 'target', 'screenshots');

const BOTHY = process.env.BOTHY_BIN ?? path.join(ROOT, 'target', 'debug', 'bothy');
const CHROMIUM = process.env.BOTHY_CHROMIUM ?? '/usr/bin/chromium';

/** How long one wait for the page may take before the test fails (ms). */
export const WAIT_MS = 10_000;

/** The flags from shared/STYLE.md. Playwright adds a fresh temporary --user-data-dir itself. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function loadPlaywright() {
  try {
    return require('playwright-core');
  } catch {
    throw new Error(
      'playwright-core is not installed: run `npm ci` in tests/browser (bash .ci/run does it)',
    );
  }
}

/** Launches Debian's chromium. Never downloads a browser. */
export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run \`apt-get install -y chromium\` (bash .ci/run does it)`);
  }
  const { chromium } = loadPlaywright();
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

// ---------------------------------------------------------------------------------------------
// The server

/**
 * Starts `bothy serve --bind 127.0.0.1:0 --data-dir <fresh temp dir>` and reads its port from
 * the line it prints. `stop()` terminates it and removes the data directory.
 */
/** Starts target/debug/bothy on a free port; `env` adds settings (e.g. `BOTHY_…` limits). */
export async function startServer({ env = {} } = {}) {
  if (!fs.existsSync(BOTHY)) {
    throw new Error(`${BOTHY} is missing: run \`make build\` first (\`make browser\` does it)`);
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bothy-browser-'));
  const log = [];
  let proc = await spawnServer('127.0.0.1:0', dataDir, log, env);
  const url = proc.url;

  return {
    /** `http://127.0.0.1:PORT`, no trailing slash. */
    url,
    port: Number(new URL(url).port),
    dataDir,
    /** What the server wrote to stderr so far (warnings and errors). */
    log: () => log.join(''),
    /** Creates a room through the HTTP API; returns `{room, path, url}`. */
    async createRoom(prompt) {
      const res = await fetch(`${url}/api/rooms`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ prompt }),
      });
      const body = await res.json();
      assert.equal(res.status, 201, `POST /api/rooms: ${res.status} ${JSON.stringify(body)}`);
      return { ...body, url: `${url}${body.path}` };
    },
    /** Stops the server (SIGTERM: it closes connections with 1001 and saves), keeping its data. */
    async halt() {
      await proc.stop();
    },
    /** Starts the server again on the same address with the same data directory. */
    async resume() {
      proc = await spawnServer(new URL(url).host, dataDir, log, env);
    },
    async stop() {
      if (process.env.BOTHY_TEST_SERVER_LOG && log.length) console.log(`bothy's log:\n${log.join('')}`);
      await proc.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function spawnServer(bind, dataDir, log, env) {
  const child = spawn(BOTHY, ['serve', '--bind', bind, '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BOTHY_LOG: process.env.BOTHY_LOG ?? 'warn', ...env },
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => log.push(chunk));
  child.stdout.setEncoding('utf8');

  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error('bothy did not print its address within 10 s')), 10_000);
    function fail(err) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${err.message}\nstdout: ${out}\nstderr: ${log.join('')}`));
    }
    child.on('exit', (code, signal) => fail(new Error(`bothy exited early (code ${code}, signal ${signal})`)));
    child.on('error', fail);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/Bothy is running\. Open (http:\/\/127\.0\.0\.1:\d+)\/ in your browser\./);
      if (m) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve(m[1]);
      }
    });
  });
  child.stdout.resume();

  let exited = false;
  child.on('exit', () => { exited = true; });
  // If this test process dies without its `after` hooks, the server goes with it.
  const onExit = () => { if (!exited) child.kill('SIGKILL'); };
  process.on('exit', onExit);

  return {
    url,
    async stop() {
      process.off('exit', onExit);
      if (exited) return;
      const gone = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    },
  };
}

/**
 * A TCP proxy in front of the server that the test can cut: `cut()` drops every open
 * connection and refuses new ones until `restore()`. Used with `context.setOffline(true)`,
 * because Chromium's offline emulation leaves an open WebSocket working.
 */
export async function startCuttableProxy(targetPort) {
  const sockets = new Set();
  let cut = false;
  const server = net.createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = [client, upstream];
    for (const s of pair) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        for (const other of pair) other.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      cut = false;
    },
    async close() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Pages and what they must never do

// Runs in every page before its own scripts: reports CSP violations and pointer input through
// the console so the watcher sees them, and keeps everything the announcer says, so a test can
// wait for words that were on screen for less time than a polling interval. (An init script is
// injected by the browser, not by the page, so the page's CSP does not block it and stays on.)
function initScript() {
  window.__said = [];
  document.addEventListener('DOMContentLoaded', () => {
    const node = document.getElementById('announcer');
    if (!node) return;
    new MutationObserver(() => { if (node.textContent) window.__said.push(node.textContent); })
      .observe(node, { childList: true, characterData: true, subtree: true });
  });
  document.addEventListener('securitypolicyviolation', (e) => {
    console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} in ${e.sourceFile}:${e.lineNumber}`);
  });
  for (const type of ['pointerdown', 'mousedown', 'touchstart']) {
    window.addEventListener(type, (e) => {
      // A tap also fires compatibility mouse events; Chromium marks them as coming from touch.
      const kind = e.pointerType
        ?? (type === 'touchstart' || e.sourceCapabilities?.firesTouchEvents ? 'touch' : 'mouse');
      window.__bothyPointer = window.__bothyPointer ?? [];
      window.__bothyPointer.push(`${type}:${kind}`);
    }, { capture: true });
  }
}

/**
 * Opens a fresh browser context (its own storage: a different person) and one page in it, and
 * watches it. `options` go to `browser.newContext` (viewport, hasTouch, isMobile, …);
 * `allowedOrigins` adds origins besides the server's that the page may talk to.
 */
export async function openParticipant(browser, server, options = {}) {
  const { allowedOrigins = [], allowConsole = [], ...contextOptions } = options;
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...contextOptions });
  context.setDefaultTimeout(WAIT_MS);
  await context.addInitScript(initScript);
  const origins = new Set([server.url, ...allowedOrigins]);
  const problems = [];
  const allowed = [...allowConsole];

  function watch(pg) {
    pg.on('pageerror', (err) => problems.push(`page error: ${err.stack ?? err.message}`));
    pg.on('console', (msg) => {
      const text = msg.text();
      const csp = /Content Security Policy|CSP violation/i.test(text);
      if (!csp && msg.type() !== 'error') return;
      if (!csp && allowed.some((re) => re.test(text))) return;
      const where = msg.location()?.url ? ` (${msg.location().url}:${msg.location().lineNumber})` : '';
      problems.push(`console ${msg.type()}: ${text}${where}`);
    });
    pg.on('dialog', async (dialog) => {
      problems.push(`dialog (${dialog.type()}): ${dialog.message()}`);
      await dialog.dismiss().catch(() => {});
    });
    pg.on('websocket', (ws) => {
      const u = new URL(ws.url());
      if (!origins.has(`http://${u.host}`)) problems.push(`WebSocket to another host: ${ws.url()}`);
    });
  }
  context.on('request', (req) => {
    const u = new URL(req.url());
    if (u.protocol === 'data:' || u.protocol === 'blob:') return;
    const origin = `${u.protocol === 'ws:' ? 'http:' : u.protocol === 'wss:' ? 'https:' : u.protocol}//${u.host}`;
    if (!origins.has(origin)) problems.push(`request to another host: ${req.method()} ${req.url()}`);
  });
  // Every page of this person: the first one and any opened later.
  context.on('page', watch);
  const page = await context.newPage();

  return {
    context,
    page,
    problems,
    /** Also accept console errors matching `re` (e.g. Chromium's own "WebSocket … failed"). */
    allowConsole(re) { allowed.push(re); },
    /** Pointer events (mouse/touch/pen) seen by the page so far, as "type:pointerType". */
    pointerEvents: () => page.evaluate(() => window.__bothyPointer ?? []),
    /** Fails the test if the page did anything it must never do. */
    assertClean() {
      assert.deepEqual(problems, [], `the page did what it must never do:\n  ${problems.join('\n  ')}`);
    },
    close: () => context.close(),
  };
}

/**
 * Waits until the page's announcer has said something matching `re` since the page loaded.
 * Announcements replace each other, so one may be shown for less than a polling interval.
 */
export async function announced(page, re) {
  await page.waitForFunction(([source, flags]) => (window.__said ?? []).some((s) => new RegExp(source, flags).test(s)),
    [re.source, re.flags], { timeout: WAIT_MS });
}

// ---------------------------------------------------------------------------------------------
// The client's DOM

/** Opens a board and waits until it is connected and shows its prompt. */
export async function openBoard(page, roomUrl, prompt) {
  await page.goto(roomUrl);
  await connected(page);
  if (prompt !== undefined) {
    await page.getByRole('heading', { level: 1, name: prompt, exact: true }).waitFor();
  }
}

/** Waits until the connection status reads "Connected". */
export async function connected(page) {
  await page.waitForFunction(
    () => document.querySelector('#connection')?.textContent.trim() === 'Connected',
    null,
    { timeout: WAIT_MS },
  );
}

/** The note (element with class `note` in `#notes`) whose text is `text`. */
export function note(page, text) {
  return page.locator('#notes .note').filter({ has: page.getByText(text, { exact: true }) });
}

/** The List-view section of the theme titled `title` (or "Not in a theme"). */
export function themeSection(page, title) {
  return page
    .locator('#notes section')
    .filter({ has: page.getByRole('heading', { name: title, exact: true }) });
}

/** The note with text `text` inside the List-view section of theme `title`. */
export function noteInTheme(page, title, text) {
  return themeSection(page, title).locator('.note').filter({ has: page.getByText(text, { exact: true }) });
}

/** Waits until `page` shows exactly `n` notes with text `text` (n may be 0). */
export async function waitForNoteCount(page, text, n) {
  await page.waitForFunction(
    ([t, count]) => {
      const found = [...document.querySelectorAll('#notes .note')].filter((el) =>
        [el, ...el.querySelectorAll('*')].some(
          (e) => e.getAttribute('dir') === 'auto' && e.textContent === t,
        ),
      );
      return found.length === count;
    },
    [text, n],
    { timeout: WAIT_MS },
  );
}

/** Chooses the List or Board view with the "View" radio group. */
export async function chooseView(page, name) {
  const radio = page.getByRole('group', { name: 'View' }).getByRole('radio', { name, exact: true });
  await radio.check();
}

/** Waits until a note with text `text` is confirmed by the server (it has a `data-note-id`). */
export async function waitForConfirmed(page, text) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll('#notes .note[data-note-id]')].some((el) =>
      [el, ...el.querySelectorAll('*')].some((e) => e.getAttribute('dir') === 'auto' && e.textContent === t)),
    text,
    { timeout: WAIT_MS },
  );
}

/** Posts a note through the composer (mouse path) and waits until the server has confirmed it. */
export async function postNote(page, text, colour = 'Yellow') {
  await page.getByRole('group', { name: 'Colour' }).getByRole('radio', { name: colour, exact: true }).check();
  await page.getByRole('textbox', { name: 'Your note', exact: true }).fill(text);
  await page.getByRole('button', { name: 'Post', exact: true }).click();
  await waitForConfirmed(page, text);
  await waitForNoteCount(page, text, 1);
}

/** Adds a theme (mouse path) and waits for its heading in List view. */
export async function addTheme(page, title) {
  await page.getByRole('textbox', { name: 'New theme name', exact: true }).fill(title);
  await page.getByRole('button', { name: 'Add theme', exact: true }).click();
}

/** Uses the note's "Move to…" menu to put it in `target` (a theme title or "No theme"). */
export async function moveWithMenu(page, noteText, target, how = 'click') {
  const n = note(page, noteText);
  await n.getByRole('button', { name: 'Move to…' })[how]();
  await n.getByRole('button', { name: target, exact: true })[how]();
}

// ---------------------------------------------------------------------------------------------
// axe-core

const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

/**
 * Runs axe-core in the page (WCAG 2.0/2.1/2.2 A and AA rules), prints a one-line summary and
 * returns the violations in a readable form.
 */
export async function runAxe(page, label) {
  // Evaluated through the DevTools protocol, so the page's CSP (no inline script) stays on.
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async (tags) => {
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: tags } });
    return {
      passes: r.passes.length,
      incomplete: r.incomplete.map((v) => v.id),
      violations: r.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        helpUrl: v.helpUrl,
        nodes: v.nodes.map((n) => ({ target: n.target.join(' '), html: n.html, summary: n.failureSummary })),
      })),
    };
  }, AXE_TAGS);
  console.log(
    `axe ${label}: ${result.violations.length} violations, ${result.passes} rules passed, ` +
      `${result.incomplete.length} need review${result.incomplete.length ? ` (${result.incomplete.join(', ')})` : ''}`,
  );
  return result;
}

/** Formats axe violations for an assertion message. */
export function formatViolations(violations) {
  return violations
    .map((v) =>
      [
        `${v.id} (${v.impact}): ${v.help} — ${v.helpUrl}`,
        ...v.nodes.map((n) => `    at ${n.target}\n      ${n.html}\n      ${(n.summary ?? '').replace(/\n/g, '\n      ')}`),
      ].join('\n'),
    )
    .join('\n');
}

export function assertNoViolations(result, label) {
  assert.equal(
    result.violations.length,
    0,
    `axe found ${result.violations.length} violation(s) on ${label}:\n${formatViolations(result.violations)}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Keyboard

/** Whether `locator`'s element has the focus. */
export function isFocused(locator) {
  return locator.evaluate((el) => el === document.activeElement);
}

/**
 * Presses Tab (or Shift+Tab) until `target` has the focus, as a keyboard user would, and fails
 * if it is not reached within `max` presses. Returns the number of presses.
 */
export async function tabTo(page, target, { max = 80, backwards = false } = {}) {
  await target.waitFor();
  for (let i = 0; i <= max; i += 1) {
    if (await isFocused(target)) return i;
    await page.keyboard.press(backwards ? 'Shift+Tab' : 'Tab');
  }
  const active = await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 200));
  throw new Error(`${target} was not reached with ${max} presses of Tab; the focus is on ${active}`);
}

/** What has the focus, for messages: tag, role and accessible-ish name. */
export function describeFocus(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return 'body';
    return `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className ? `.${String(el.className).split(' ').join('.')}` : ''} "${(el.getAttribute('aria-label') ?? el.textContent ?? '').trim().slice(0, 60)}"`;
  });
}
