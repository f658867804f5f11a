// Drives the dashboard in headless Chromium (Debian's /usr/bin/chromium,
// through playwright-core; no browser is ever downloaded), against the real
// binary on a free port with a fresh database, --admin-token, the fake
// payment gateway, and a webhook receiver this script runs (its answer
// depends on the event's email: gone-* is refused with 410, busy-* gets 503,
// until the script accepts that email; anything else gets 200).
//
// It clicks through every view, action and story and checks what the page
// shows against what the API answers: the token is asked for once; the
// overview's counts and throughput; the jobs view (tabs and counts, kind
// filter, keyset pages, search by id, detail with webhook URL and last
// status, retry, cancel, bulk retry of the selected and of all of a kind);
// the domain forms (user, product approve twice, checkout with retry on the
// same key, anagrams); each of the five stories with its numbers; keyboard
// only; 375 px and dark mode; the unreachable-server banner when the server
// stops, and its recovery when it restarts on the same port. Screenshots:
// <shot>.png (overview), <shot>-jobs.png, <shot>-stories.png,
// <shot>-phone.png, <shot>-dark.png.
//
//   node tests/browser/dashboard.mjs <aftercommit binary> <chromium> <screenshot.png>
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const [binary, chromiumPath, screenshot] = process.argv.slice(2);
if (!binary || !chromiumPath || !screenshot) {
  console.error('usage: dashboard.mjs <aftercommit> <chromium> <screenshot.png>');
  process.exit(2);
}
const shot = (suffix) => screenshot.replace(/\.png$/, '') + suffix + '.png';

const dir = mkdtempSync(join(tmpdir(), 'aftercommit-browser-'));
const TOKEN = 'dashboard-test-token';
let failures = 0;
let browser;
let server;

function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
}

// ---- the webhook receiver
const accepted = new Set();
const hooks = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    let email = '';
    try { email = JSON.parse(body).data.email || ''; } catch (e) { /* not a user event */ }
    let status = 200;
    if (email.startsWith('gone-') && !accepted.has(email)) status = 410;
    if (email.startsWith('busy-') && !accepted.has(email)) status = 503;
    hooks.push({ email, status });
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end('{}');
  });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
const hookUrl = `http://127.0.0.1:${receiver.address().port}/hook`;

// ---- the server
function startServer(port) {
  const child = spawn(binary, ['serve', '--port', String(port), '--db', join(dir, 'demo.db'),
    '--admin-token', TOKEN, '--fake-gateway', '--webhook-url', hookUrl,
    '--webhook-secret', 'dashboard-test-secret'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const url = new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const m = line.match(/^listening on (http:\/\/\S+)$/);
      if (m) resolve(m[1]);
    });
    child.on('exit', () => reject(new Error('the server exited before listening')));
    setTimeout(() => reject(new Error('server start timed out')), 20000);
  });
  return { child, url };
}

let base;
const auth = { Authorization: 'Bearer ' + TOKEN };
async function api(method, path, body) {
  const res = await fetch(base + path, {
    method, headers: { ...auth, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}
const stats = async () => (await api('GET', '/api/stats')).body;
const job = async (id) => (await api('GET', `/jobs/${id}`)).body;
async function eventually(fn, what, timeout = 20000) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}
// The webhook job of the user with this email.
async function hookJob(email) {
  return eventually(async () => {
    const page = (await api('GET', '/jobs?kind=deliver_webhook&limit=1000')).body;
    return page.jobs.find((j) => j.args.event.data && j.args.event.data.email === email);
  }, 'the webhook job of ' + email);
}

async function text(page, selector) {
  return (await page.textContent(selector)).trim();
}
// Waits until `predicate(text of selector)`; read from here, not evaluated
// in the page (whose CSP forbids eval).
async function waitText(page, selector, predicate, what, timeout = 20000) {
  const end = Date.now() + timeout;
  let last = '';
  for (;;) {
    last = ((await page.textContent(selector).catch(() => '')) || '').trim();
    if (predicate(last)) return last;
    if (Date.now() > end) throw new Error(`${what}: ${selector} shows "${last}"`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

try {
  server = startServer(0);
  base = await server.url;
  const port = new URL(base).port;

  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const consoleErrors = [];
  const foreign = [];
  // Expected console errors: the first reads meet 401 before the page asks
  // for the token, and the stories provoke 402/409/422/503 on purpose. The
  // server is stopped once: while it is down, any network failure Chromium
  // reports (refused, reset, empty response, socket not connected: which
  // one depends on where the poll was when the process exited) is expected.
  const expected = /status of (401|402|404|409|422|503)/;
  const network = /net::ERR_|Failed to fetch/;
  let serverDown = false;
  page.on('console', (m) => {
    if (m.type() !== 'error' || expected.test(m.text())) return;
    if (serverDown && network.test(m.text())) return;
    consoleErrors.push(m.text());
  });
  const prompts = [];
  const confirms = [];
  page.on('dialog', async (d) => {
    if (d.type() === 'prompt') {
      prompts.push(d.message());
      await d.accept(TOKEN);
    } else {
      confirms.push(d.message());
      await d.accept();
    }
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('request', (r) => { if (!r.url().startsWith(base)) foreign.push(r.url()); });

  const anonymous = await fetch(base + '/api/stats');
  check(anonymous.status === 401, 'the data routes need the token (GET /api/stats: ' + anonymous.status + ')');

  // Some history before the page opens: 30 users (a welcome job and a
  // webhook each: 60 jobs, more than one page of 50).
  for (let i = 0; i < 30; i++) await api('PUT', `/users/seed-${i}%40example.com`);
  await eventually(async () => (await stats()).jobs.completed === 60, '60 completed jobs');

  // ---------------------------------------------------------------- overview
  await page.goto(base + '/');
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live');
  check(prompts.length === 1, 'asked for the token once (' + prompts.length + ' prompts)');
  check(await page.evaluate(() => sessionStorage.getItem('aftercommit-admin-token')) === TOKEN,
    'keeps the token in sessionStorage');
  await waitText(page, '#users-count', (t) => t === '30', 'users count');
  check(await text(page, '#jobs-completed') === '60', 'the overview shows 60 completed jobs, as the API');
  await page.waitForFunction(() => document.querySelectorAll('#chart-jobs svg polyline').length === 2);
  const tp = (await api('GET', '/api/throughput')).body.totals;
  check(tp.completed === 60, `the throughput ring counted 60 completed jobs (${tp.completed})`);
  await waitText(page, '#tp-jobs-total', (t) => t.startsWith('(60 completed'), 'throughput total');
  check(true, 'the throughput panel shows 60 completed in 15 min: ' + await text(page, '#tp-jobs-total'));
  check(/p50 [\d.]+ ms, p99 [\d.]+ ms/.test(await text(page, '#tp-latency-total')), 'the panel shows p50 and p99 latency');
  check((await page.locator('#audit tr').count()) === 12, '12 rows in the audit table');

  // ---------------------------------------------------------------- jobs list
  await page.click('a[data-view-link="jobs"]');
  await page.waitForFunction(() => document.querySelectorAll('#jobs-rows tr').length === 50);
  const firstPage = (await api('GET', '/jobs?limit=50')).body;
  const shownIds = await page.$$eval('#jobs-rows tr', (rows) => rows.map((r) => Number(r.dataset.key)));
  check(JSON.stringify(shownIds) === JSON.stringify(firstPage.jobs.map((j) => j.id)),
    'the first page shows the API\'s 50 newest jobs, newest first');
  check(await text(page, '#tab-count-all') === '60' && await text(page, '#tab-count-completed') === '60',
    'the tabs count 60 jobs, all completed');
  await page.click('#jobs-older');
  await page.waitForFunction((n) => document.querySelector('#jobs-rows tr') &&
    Number(document.querySelector('#jobs-rows tr').dataset.key) < n, shownIds[49]);
  const second = (await api('GET', `/jobs?limit=50&before=${firstPage.next_before}`)).body;
  const shown2 = await page.$$eval('#jobs-rows tr', (rows) => rows.map((r) => Number(r.dataset.key)));
  check(JSON.stringify(shown2) === JSON.stringify(second.jobs.map((j) => j.id)) && shown2.length === 10,
    'Older shows the next keyset page (10 jobs), as GET /jobs?before= answers');
  check(await page.isDisabled('#jobs-older'), 'no page after the last');
  await page.click('#jobs-newest');
  await page.waitForFunction(() => document.querySelectorAll('#jobs-rows tr').length === 50);
  await page.selectOption('#jobs-kind', 'send_welcome_email');
  await page.waitForFunction(() => document.querySelectorAll('#jobs-rows tr').length === 30);
  const kinds = await page.$$eval('#jobs-rows tr td:nth-child(3)', (tds) => [...new Set(tds.map((t) => t.textContent))]);
  check(kinds.length === 1 && kinds[0] === 'send_welcome_email', 'the kind filter lists only that kind');
  check(await text(page, '#tab-count-all') === '30', 'the tab counts follow the kind filter');
  check(page.url().endsWith('#jobs?kind=send_welcome_email'), 'the filter is in the URL');

  // Search by id.
  const someId = firstPage.jobs[7].id;
  await page.fill('#job-search-id', String(someId));
  await page.press('#job-search-id', 'Enter');
  await waitText(page, '#job-title', (t) => t.startsWith('Job '), 'job title');
  check(await text(page, '#job-title') === `Job ${someId}`, 'search by id opens that job');
  const detail = await job(someId);
  const args = await text(page, '#job-args');
  check(args === JSON.stringify(detail.args, null, 2), 'the arguments are pretty-printed as the API holds them');
  await page.click('#job-back');
  await page.fill('#job-search-id', '999999');
  await page.press('#job-search-id', 'Enter');
  await page.waitForSelector('#job-missing:not([hidden])');
  check((await text(page, '#job-missing')).includes('no job 999999'), 'an unknown id says so');

  // ---------------------------------------------------------------- actions
  // Three refused webhooks: discarded at once (410), with the URL and status.
  for (const i of [1, 2, 3]) await api('PUT', `/users/gone-${i}%40example.com`);
  const gone = [];
  for (const i of [1, 2, 3]) {
    gone.push(await eventually(async () => {
      const j = await hookJob(`gone-${i}@example.com`);
      return j.state === 'discarded' ? j : null;
    }, 'discarded webhook'));
  }
  await page.goto(base + `/#job/${gone[0].id}`);
  await page.waitForSelector('#job-webhook:not([hidden])');
  const hookFacts = await text(page, '#job-webhook-facts');
  check(hookFacts.includes(hookUrl) && hookFacts.includes('410'), 'the webhook job shows its URL and last status 410: ' + hookFacts);
  const errs = await page.$$eval('#job-errors tr', (rows) => rows.map((r) => r.textContent));
  check(errs.length === 1 && errs[0].startsWith('1') && errs[0].includes('answered 410'),
    'the error is listed with its attempt and time');
  check(await page.isDisabled('#job-cancel') && !(await page.isDisabled('#job-retry')), 'a discarded job offers retry only');
  // Retry from the detail view; the receiver now accepts that email.
  accepted.add('gone-1@example.com');
  await page.click('#job-retry');
  await eventually(async () => (await job(gone[0].id)).state === 'completed', 'the retried job to complete');
  check(true, 'retry from the detail view: the job ran again and completed');
  await waitText(page, '#job-webhook-facts', (t) => t.includes('2xx (delivered)'), 'delivered status');

  // Bulk retry of the selected: the two others, from the discarded tab.
  await page.goto(base + '/#jobs?state=discarded');
  await page.waitForFunction(() => document.querySelectorAll('#jobs-rows tr').length === 2);
  check(await text(page, '#tab-count-discarded') === '2', 'the discarded tab counts 2');
  accepted.add('gone-2@example.com');
  await page.check(`#jobs-rows input[data-id="${gone[1].id}"]`);
  await waitText(page, '#bulk-selected', (t) => t === 'Retry selected (1)', 'selected count');
  await page.click('#bulk-selected');
  await waitText(page, '#jobs-result', (t) => t.startsWith('Retried'), 'bulk result');
  check((await text(page, '#jobs-result')).startsWith('Retried 1 job(s) in one transaction'), 'retry selected retried 1');
  await eventually(async () => (await job(gone[1].id)).state === 'completed', 'the selected job to complete');
  check((await job(gone[2].id)).state === 'discarded', 'the job not selected stayed discarded');

  // Bulk retry of all discarded of a kind (asks to confirm).
  accepted.add('gone-3@example.com');
  await page.selectOption('#jobs-kind', 'deliver_webhook');
  await waitText(page, '#bulk-all', (t) => t === 'Retry all 1 discarded deliver_webhook jobs', 'bulk all label');
  await page.click('#bulk-all');
  await waitText(page, '#jobs-result', (t) => t.startsWith('Retried 1 '), 'bulk all result');
  check(confirms.length === 1, 'retry all asked to confirm once');
  await eventually(async () => (await job(gone[2].id)).state === 'completed', 'the last one to complete');
  check((await stats()).jobs.discarded === 0, 'no discarded job left');

  // Cancel: a webhook the receiver answers 503 waits in retryable; cancel it
  // while its next attempt is a few seconds away.
  await api('PUT', '/users/busy-1%40example.com');
  const busy = await eventually(async () => {
    const j = await hookJob('busy-1@example.com');
    return j.state === 'retryable' && Date.parse(j.run_at) - Date.now() > 2500 ? j : null;
  }, 'a retryable webhook', 30000);
  await page.goto(base + `/#job/${busy.id}`);
  await page.waitForFunction(() => !document.getElementById('job-cancel').disabled);
  await page.click('#job-cancel');
  await waitText(page, '#job-result', (t) => t.length > 0, 'cancel result');
  check((await job(busy.id)).state === 'cancelled', 'cancel from the detail view: the job is cancelled');
  // Retry it from the list's row button.
  accepted.add('busy-1@example.com');
  await page.goto(base + '/#jobs?state=cancelled');
  await page.click(`#jobs-rows button[data-action="retry"][data-id="${busy.id}"]`);
  await eventually(async () => (await job(busy.id)).state === 'completed', 'the cancelled job to run');
  check(true, 'retry from the list row: the cancelled job ran and completed');
  await page.goto(base + '/#jobs');
  await page.waitForFunction(() => document.querySelectorAll('#jobs-rows tr').length === 50);
  await page.screenshot({ path: shot('-jobs'), fullPage: true });

  // ---------------------------------------------------------------- domain
  await page.click('a[data-view-link="domain"]');
  await page.fill('#user-email', 'Ada@Example.com');
  await page.click('#user-form button[type="submit"]');
  await waitText(page, '#user-result', (t) => t.length > 0, 'user result');
  check((await text(page, '#user-result')).startsWith('201 created: user'), 'the user form creates the user');
  await page.click('#user-form button[type="submit"]');
  await waitText(page, '#user-result', (t) => t.startsWith('200'), 'second create');
  check(true, 'the same email again answers 200 already there');
  await page.waitForFunction(() => document.querySelectorAll('#user-actions tr').length === 1);
  await page.waitForFunction(() => document.querySelectorAll('#user-messages tr').length === 1, null, { timeout: 20000 });
  check(true, 'the user shows one audit row and one message');

  await page.fill('#product-owner', 'maker@example.com');
  await page.click('#product-form button[type="submit"]');
  await page.waitForSelector('#products button[data-product]');
  await page.click('#products button[data-product]');
  await waitText(page, '#product-result', (t) => t.includes('approved'), 'approve');
  await page.click('#products button[data-product]');
  await waitText(page, '#product-result', (t) => t.startsWith('Second approval'), 'second approve');
  check((await text(page, '#product-result')).includes('409'), 'a second approval answers 409');
  await eventually(async () => (await api('GET', '/mailbox?to=maker%40example.com')).body.messages.length === 1, 'one notification');
  check(true, 'the owner got exactly one notification');

  await page.selectOption('#checkout-card', 'tok_flaky');
  await page.fill('#checkout-phone', '+15550109');
  await page.click('#checkout-form button[type="submit"]');
  await waitText(page, '#checkout-result', (t) => t.startsWith('Attempt 1'), 'checkout 1');
  check((await text(page, '#checkout-result')).startsWith('Attempt 1 → 503'), 'a flaky card answers 503 first');
  await page.click('#checkout-retry');
  await waitText(page, '#checkout-result', (t) => t.startsWith('Attempt 2'), 'checkout 2');
  const paid = await text(page, '#checkout-result');
  check(paid.startsWith('Attempt 2 → 201') && paid.includes(' paid, charge'), 'Retry with the same key: 201, paid');
  await page.click('#checkout-retry');
  await waitText(page, '#checkout-result', (t) => t.startsWith('Attempt 3'), 'checkout 3');
  check((await text(page, '#checkout-result')).includes('(replayed'), 'a third send is a replay');
  await page.selectOption('#checkout-card', 'tok_declined');
  await page.click('#checkout-form button[type="submit"]');
  await waitText(page, '#checkout-result', (t) => t.startsWith('Attempt 1 → 402'), 'declined');
  await waitText(page, '#checkout-order', (t) => t.includes('payment_failed'), 'declined order');
  check((await text(page, '#checkout-order')).includes('payment_failed'), 'a declined card: 402, order payment_failed');

  await page.fill('#anagram-words', 'listen silent');
  await page.click('#anagram-form button[type="submit"]');
  await waitText(page, '#anagram-result', (t) => t.startsWith('Added 2'), 'anagrams');
  await page.fill('#anagram-words', 'enlist 42');
  await page.click('#anagram-form button[type="submit"]');
  await waitText(page, '#anagram-result', (t) => t.includes('422'), 'anagram refused');
  const group = (await api('GET', '/anagrams/listen')).body.anagrams;
  check(JSON.stringify(group) === '["silent"]', 'a refused request added nothing (listen: ' + JSON.stringify(group) + ')');

  // ---------------------------------------------------------------- stories
  await page.click('a[data-view-link="stories"]');
  const expectedDelta = {
    1: (b, a) => a.users - b.users === 8 && a.messages - b.messages === 8,
    2: (b, a) => a.users - b.users === 2,
    3: () => true,
    4: (b, a) => a.messages - b.messages === 1,
    5: (b, a) => a.messages - b.messages === 1,
  };
  for (const n of [1, 2, 3, 4, 5]) {
    const before = await stats();
    await page.click(`#story-${n}-run`);
    await page.waitForSelector(`#story-${n}-verdict`, { timeout: 60000 });
    const ok = await page.getAttribute(`#story-${n}-verdict`, 'data-ok');
    const rows = await page.$$eval(`#story-${n} tbody tr`, (trs) => trs.map((tr) => Array.from(tr.cells, (c) => c.textContent)));
    for (const [what, want, found] of rows) check(want === found, `story ${n}: ${what}: expected ${want}, found ${found}`);
    check(ok === 'true', `story ${n}: ${await text(page, `#story-${n}-verdict`)}`);
    await eventually(async () => (await stats()).jobs.available === 0 && (await stats()).jobs.running === 0, 'jobs to settle');
    const after = await stats();
    check(expectedDelta[n](before, after), `story ${n}: the API's counts moved as the story says ` +
      `(users +${after.users - before.users}, messages +${after.messages - before.messages})`);
  }
  const log3 = await text(page, '#story-3 .log');
  const word = log3.split(': ')[1].split(' ')[0];
  const others = (await api('GET', `/anagrams/${word}`)).body.anagrams;
  check(others.length === 15, `story 3: the API holds all 16 words of the group (${others.length + 1})`);
  await page.screenshot({ path: shot('-stories'), fullPage: true });
  // The overview after all that, for the README.
  await page.click('a[data-view-link="overview"]');
  await page.waitForFunction(() => document.querySelectorAll('#chart-jobs svg').length === 1);
  await page.screenshot({ path: screenshot, fullPage: true });

  // ---------------------------------------------------------------- keyboard only
  await page.goto(base + '/#overview');
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live');
  const focusOn = async (selector, max = 80) => {
    for (let i = 0; i < max; i++) {
      await page.keyboard.press('Tab');
      if (await page.evaluate((s) => document.activeElement && document.activeElement.matches(s), selector)) return true;
    }
    return false;
  };
  check(await focusOn('a[data-view-link="stories"]'), 'Tab reaches the Stories link');
  await page.keyboard.press('Enter');
  await page.waitForSelector('[data-view="stories"]:not([hidden])');
  check(await focusOn('#story-3-run'), 'Tab reaches the button of story 3');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.getElementById('story-3-run').textContent.includes('again'), null, { timeout: 30000 });
  check(await page.getAttribute('#story-3-verdict', 'data-ok') === 'true', 'story 3 runs from the keyboard and holds');
  await page.goto(base + '/#jobs');
  await page.waitForSelector('#tab-all[aria-selected="true"]');
  await page.focus('#tab-all');
  await page.keyboard.press('ArrowRight');
  await page.waitForSelector('#tab-available[aria-selected="true"]');
  check(page.url().endsWith('#jobs?state=available'), 'arrow keys move between the state tabs');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  check(outline !== 'none', 'the focused element shows a focus outline (' + outline + ')');

  // ---------------------------------------------------------------- phone width, dark
  await page.setViewportSize({ width: 375, height: 812 });
  for (const view of ['overview', 'jobs', 'domain', 'stories', `job/${someId}`]) {
    await page.goto(base + '/#' + view);
    await page.waitForFunction(() => document.getElementById('live').textContent === 'live');
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    check(width <= 375, `#${view} fits 375 px (${width} px wide)`);
  }
  await page.goto(base + '/#overview');
  await page.waitForFunction(() => document.querySelectorAll('#chart-jobs svg').length === 1);
  await page.screenshot({ path: shot('-phone'), fullPage: false });
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.emulateMedia({ colorScheme: 'dark' });
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const [r, g, b] = bg.match(/\d+/g).map(Number);
  check(r + g + b < 150, 'dark mode when the system prefers it (body ' + bg + ')');
  await page.emulateMedia({ colorScheme: 'light' });
  const light = (await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).match(/\d+/g).map(Number);
  check(light[0] + light[1] + light[2] > 600, 'light otherwise');
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto(base + '/#jobs');
  await page.waitForFunction(() => document.querySelectorAll('#jobs-rows tr').length > 0);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: shot('-dark'), fullPage: false });
  await page.emulateMedia({ colorScheme: 'light' });

  // ---------------------------------------------------------------- no token given
  // A visitor who cancels the prompt: the page says why actions are
  // unavailable and keeps them disabled.
  {
    const other = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const visitor = await other.newPage();
    let asked = 0;
    visitor.on('dialog', async (d) => { asked++; await d.dismiss(); });
    await visitor.goto(base + '/#jobs?state=discarded');
    await visitor.waitForSelector('#token-note:not([hidden])', { timeout: 10000 });
    check((await text(visitor, '#token-note')).startsWith('Actions are unavailable: this server runs with --admin-token'),
      'without the token the page says why actions are unavailable');
    check(await visitor.isDisabled('#bulk-all') && await visitor.isDisabled('#bulk-selected'),
      'and the bulk actions are disabled');
    check((await text(visitor, '#bulk-why')).startsWith('Actions are unavailable'), 'the bulk bar says why');
    await new Promise((r) => setTimeout(r, 1500));
    check(asked === 1, `a cancelled prompt is not asked again while polling (${asked})`);
    await other.close();
  }

  // ---------------------------------------------------------------- unreachable, then back
  await page.goto(base + '/#overview');
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live');
  serverDown = true;
  server.child.kill('SIGTERM');
  await new Promise((r) => server.child.on('exit', r));
  await page.waitForSelector('#offline:not([hidden])', { timeout: 10000 });
  check((await text(page, '#offline')).startsWith('The server does not answer'), 'a stopped server shows a clear message');
  check(await text(page, '#live') === 'offline', 'the pill says offline');
  server = startServer(port);
  await server.url;
  await page.waitForSelector('#offline', { state: 'hidden', timeout: 15000 });
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live');
  serverDown = false;
  check(true, 'the page recovers by itself when the server is back');
  check(prompts.length === 1, 'never asked for the token again (' + prompts.length + ' prompts)');

  // The metrics link shows /metrics with the token, without asking again.
  await page.click('#metrics-link');
  await page.waitForFunction(() => !document.getElementById('metrics-view').hidden, null, { timeout: 10000 });
  check((await text(page, '#metrics-text')).includes('aftercommit_jobs{kind="send_welcome_email",state="completed"}'),
    'the metrics link shows the metrics text');
  await page.click('#metrics-close');
  check(await page.isHidden('#metrics-view'), 'the metrics view closes');

  check(await page.isHidden('#error'), 'no error shown');
  check(consoleErrors.length === 0, 'no unexpected console errors ' + JSON.stringify(consoleErrors));
  check(foreign.length === 0, 'nothing fetched from another origin ' + JSON.stringify(foreign));
} catch (e) {
  console.error(e);
  failures++;
} finally {
  if (browser) await browser.close();
  if (server) server.child.kill('SIGTERM');
  receiver.close();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`${failures === 0 ? 1 : 0} passed, ${failures === 0 ? 0 : 1} failed (${failures} failed checks)`);
process.exit(failures === 0 ? 0 : 1);
