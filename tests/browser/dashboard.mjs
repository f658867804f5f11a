// Drives the dashboard in headless Chromium (Debian's /usr/bin/chromium,
// through playwright-core; no browser is ever downloaded). Starts the real
// binary on a free port with a fresh database, clicks "Send a burst of
// requests", checks that the counts move to what the guarantees promise and
// that no error appears, and saves a screenshot. The server runs with
// --admin-token: the page must ask for it exactly once and then show
// everything.
//
//   node tests/browser/dashboard.mjs <aftercommit binary> <chromium> <screenshot.png>
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const [binary, chromiumPath, screenshot] = process.argv.slice(2);
if (!binary || !chromiumPath || !screenshot) {
  console.error('usage: dashboard.mjs <aftercommit> <chromium> <screenshot.png>');
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'aftercommit-browser-'));
const TOKEN = 'dashboard-test-token';
const server = spawn(binary, ['serve', '--port', '0', '--db', join(dir, 'demo.db'), '--admin-token', TOKEN], {
  stdio: ['ignore', 'pipe', 'ignore'],
});
let browser;
let failures = 0;

function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
}

async function serverUrl() {
  const lines = createInterface({ input: server.stdout });
  for await (const line of lines) {
    const m = line.match(/^listening on (http:\/\/\S+)$/);
    if (m) return m[1];
  }
  throw new Error('the server did not print its address');
}

async function text(page, selector) {
  return (await page.textContent(selector)).trim();
}

try {
  const url = await Promise.race([
    serverUrl(),
    new Promise((_, reject) => setTimeout(() => reject(new Error('server start timed out')), 20000)),
  ]);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const consoleErrors = [];
  const foreign = [];
  // The first reads meet 401 before the page asks for the token; Chromium
  // logs each such answer as a console error, which is expected here.
  const unauthorized = /status of 401/;
  page.on('console', (m) => {
    if (m.type() === 'error' && !unauthorized.test(m.text())) consoleErrors.push(m.text());
  });
  const prompts = [];
  page.on('dialog', async (d) => {
    prompts.push(d.message());
    await d.accept(TOKEN);
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('request', (r) => { if (!r.url().startsWith(url)) foreign.push(r.url()); });

  const anonymous = await fetch(url + '/api/stats');
  check(anonymous.status === 401, 'the data routes need the token (GET /api/stats: ' + anonymous.status + ')');
  await page.goto(url + '/');
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live');
  check(prompts.length === 1, 'asked for the token once (' + prompts.length + ' prompts)');
  check(await page.evaluate(() => sessionStorage.getItem('aftercommit-admin-token')) === TOKEN,
    'keeps the token in sessionStorage');
  check(await text(page, '#users-count') === '0', 'starts with 0 users');
  check(await text(page, '#jobs-completed') === '0', 'starts with 0 completed jobs');

  await page.click('#burst');
  await page.waitForFunction(
    () => document.getElementById('burst-result').textContent.includes('Created:'), null, { timeout: 20000 });
  const result = await text(page, '#burst-result');
  console.log('     burst: ' + result);
  check(result.includes('Created: 8 (expected 8)'), 'exactly one 201 per email');

  // The page polls: wait for the jobs to run and the counts to settle.
  await page.waitForFunction(() =>
    document.getElementById('jobs-completed').textContent === '8' &&
    document.getElementById('messages-count').textContent === '8' &&
    // The table comes from its own poll (/api/messages), which may land a
    // tick after the counters: wait for it too, then check it below.
    document.querySelectorAll('#mailbox tr').length === 8, null, { timeout: 20000 });
  check(await text(page, '#users-count') === '8', '8 users');
  check(await text(page, '#audit-count') === '8', '8 audit rows');
  check(await text(page, '#jobs-available') === '0', 'no job left available');
  check((await page.locator('#mailbox tr').count()) === 8, '8 messages in the mailbox table');
  check((await page.locator('#audit tr').count()) === 8, '8 rows in the audit table');
  check(await page.isHidden('#error'), 'no error shown');
  check(consoleErrors.length === 0, 'no console errors ' + JSON.stringify(consoleErrors));
  check(prompts.length === 1, 'never asked again while polling (' + prompts.length + ' prompts)');
  check(foreign.length === 0, 'nothing fetched from another origin ' + JSON.stringify(foreign));

  // The metrics link shows /metrics with the token (a plain navigation
  // would get 401), without asking again.
  await page.click('#metrics-link');
  await page.waitForFunction(() => !document.getElementById('metrics-view').hidden, null, { timeout: 10000 });
  const metrics = await text(page, '#metrics-text');
  check(metrics.includes('aftercommit_jobs{kind="send_welcome_email",state="completed"} 8'),
    'the metrics link shows the metrics text (8 welcome emails completed)');
  check(prompts.length === 1, 'the metrics link used the token already given');
  await page.click('#metrics-close');
  check(await page.isHidden('#metrics-view'), 'the metrics view closes');

  await page.screenshot({ path: screenshot, fullPage: true });
  console.log('     screenshot: ' + screenshot);
} catch (e) {
  console.error(e);
  failures++;
} finally {
  if (browser) await browser.close();
  server.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
console.log(`${failures === 0 ? 1 : 0} passed, ${failures === 0 ? 0 : 1} failed`);
process.exit(failures === 0 ? 0 : 1);
