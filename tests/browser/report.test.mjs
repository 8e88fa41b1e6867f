// The printable HTML report (`bothy report SNAPSHOT.json --format html`) in Debian's chromium:
// opened from disk as staff open it (file://), with axe-core (zero violations at 1280x800 and at
// 320x640), no horizontal scrolling at 320 px, no request to anything but the file itself, and
// screenshots (screen, phone, print) in target/screenshots/report-*.png. A report of a snapshot
// with script payloads in every text field runs nothing and has no element the page did not make.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, SCREENSHOTS, WAIT_MS, assertNoViolations, launchBrowser, runAxe } from './support.mjs';

const BOTHY = process.env.BOTHY_BIN ?? path.join(ROOT, 'target', 'debug', 'bothy');
const FIXTURE = path.join(ROOT, 'tests', 'fixtures', 'event-snapshot.json');

let browser;
let dir;

before(async () => {
  assert.ok(fs.existsSync(BOTHY), `${BOTHY} is missing: run \`cargo build --bin bothy\` first`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bothy-report-'));
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs `bothy report SNAPSHOT --format html --output <dir>/NAME.html`; returns the file. */
function htmlReport(snapshot, name, extra = []) {
  const out = path.join(dir, `${name}.html`);
  execFileSync(BOTHY, ['report', snapshot, '--format', 'html', '--output', out, ...extra], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return out;
}

/**
 * A plain context (no server, so not `openParticipant`) that records what a report must never
 * do: script errors, dialogs, console errors, and requests to anything but the file itself.
 */
async function openReport(file, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(WAIT_MS);
  const problems = [];
  const url = pathToFileURL(file).href;
  context.on('request', (req) => {
    if (req.url() !== url) problems.push(`request: ${req.url()}`);
  });
  const page = await context.newPage();
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => problems.push(`console ${msg.type()}: ${msg.text()}`));
  page.on('dialog', async (d) => {
    problems.push(`dialog: ${d.message()}`);
    await d.dismiss().catch(() => {});
  });
  await page.goto(url);
  return {
    page,
    close: () => context.close(),
    assertClean: () => assert.deepEqual(problems, [], `the report did what it must never do:\n  ${problems.join('\n  ')}`),
  };
}

/** How far the page scrolls sideways (0 when everything reflows). */
function overflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

test('the HTML report of the fixture passes axe at 1280 and 320 px, reflows, and prints', async () => {
  const file = htmlReport(FIXTURE, 'fixture');
  const r = await openReport(file);
  try {
    const { page } = r;
    await page.getByRole('heading', { level: 1, name: 'What we heard: Community Health Forum: getting the care we need' }).waitFor();
    assert.equal(await page.title(), 'What we heard: Community Health Forum: getting the care we need');
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    assert.equal(await page.locator('script').count(), 0);

    // The chart: one image with a name, each bar labelled, and the same figures as a table.
    const chart = page.getByRole('img', { name: /Bar chart of the number of notes in each theme/ });
    await chart.waitFor();
    assert.equal(await page.locator('svg rect.bar').count(), 15);
    const table = page.getByRole('table', { name: 'Notes and dots in each theme' });
    const first = table.getByRole('row').nth(2);
    assert.deepEqual(
      await first.locator('th, td').allInnerTexts(),
      ['Being heard and treated with respect', '9', '47'],
    );
    // Cross-room themes ranked, with quotes and how many were not quoted.
    const across = page.locator('h2#across ~ section.theme h3');
    assert.deepEqual((await across.allInnerTexts()).slice(0, 3), [
      '1. Being heard and treated with respect',
      '2. Getting an appointment',
      '3. Community and peer support',
    ]);
    await page.getByText('3 more notes not quoted', { exact: false }).first().waitFor();
    await page.getByText('Ringing at 8am and being 30th in the queue', { exact: false }).first().waitFor();

    assertNoViolations(await runAxe(page, 'report 1280x800'), 'the HTML report at 1280x800');
    assert.equal(await overflow(page), 0, 'no sideways scrolling at 1280 px');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'report-1280.png'), fullPage: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'report-1280-top.png') });

    await page.setViewportSize({ width: 320, height: 640 });
    assertNoViolations(await runAxe(page, 'report 320x640'), 'the HTML report at 320x640');
    assert.equal(await overflow(page), 0, 'no sideways scrolling at 320 px (WCAG 1.4.10)');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'report-320.png'), fullPage: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'report-320-top.png') });

    // Print: the page as a PDF (A4), and a look at the print styles.
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.emulateMedia({ media: 'print' });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'report-print.png'), fullPage: true });
    const pdf = await page.pdf({ format: 'A4', printBackground: true });
    fs.writeFileSync(path.join(SCREENSHOTS, 'report.pdf'), pdf);
    assert.equal(pdf.subarray(0, 5).toString('latin1'), '%PDF-');
    const pages = pdf.toString('latin1').match(/\/Type\s*\/Page[^s]/g) ?? [];
    assert.ok(pages.length >= 3 && pages.length <= 12, `a readable number of pages: ${pages.length}`);
    r.assertClean();
  } finally {
    await r.close();
  }
});

test('a report of a snapshot with script payloads in every field runs nothing', async () => {
  const payloads = [
    '<script>alert(1)</script>',
    '"><img src=x onerror=alert(2)>',
    "'><svg onload=alert(3)>",
    '</style><script>alert(4)</script>',
    '</title></svg><iframe srcdoc=x>',
  ];
  const s = JSON.parse(fs.readFileSync(FIXTURE, 'utf8'));
  s.event.title = `Forum ${payloads[0]}`;
  s.rooms.forEach((room, i) => {
    room.name = payloads[i % 5];
    room.prompt = payloads[(i + 1) % 5];
    room.themes.forEach((t, j) => { t.title = payloads[(i + j) % 5]; });
    room.notes.forEach((n, j) => {
      if (n.moderation !== 'removed') n.text = `${payloads[j % 5]}\n${payloads[(j + 2) % 5]}`;
      if (n.author) n.author = payloads[(j + 1) % 5];
      if (n.person) n.person = payloads[(j + 3) % 5];
    });
  });
  s.synthesis.forEach((t, i) => { t.title = payloads[(i + 4) % 5]; });
  const snapshot = path.join(dir, 'hostile.json');
  fs.writeFileSync(snapshot, JSON.stringify(s));

  const r = await openReport(htmlReport(snapshot, 'hostile', ['--quote-all']));
  try {
    const { page } = r;
    await page.getByRole('heading', { level: 1, name: `What we heard: Forum ${payloads[0]}` }).waitFor();
    const counts = await page.evaluate(() => ({
      scripts: document.querySelectorAll('script').length,
      images: document.querySelectorAll('img').length,
      frames: document.querySelectorAll('iframe').length,
      svgs: document.querySelectorAll('svg').length,
      styles: document.querySelectorAll('style').length,
      handlers: [...document.querySelectorAll('*')].filter((el) =>
        [...el.attributes].some((a) => a.name.startsWith('on'))).length,
    }));
    assert.deepEqual(counts, { scripts: 0, images: 0, frames: 0, svgs: 1, styles: 1, handlers: 0 });
    // The payloads are shown as the text people typed.
    await page.getByText(payloads[1], { exact: false }).first().waitFor();
    assertNoViolations(await runAxe(page, 'hostile report'), 'the hostile report');
    r.assertClean();
  } finally {
    await r.close();
  }
});
