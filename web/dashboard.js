// The aftercommit dashboard. Plain JS, no dependencies, nothing fetched from
// another origin. Data is written with textContent only, so nothing from the
// database becomes markup.
//
// Views (the URL's #fragment, so the back button and links work):
//   #overview            counts, jobs by state, throughput charts, audit, mailbox
//   #jobs?state=&kind=   the jobs list: a tab per state, kind filter, keyset pages
//   #job/<id>            one job: facts, arguments, errors, webhook delivery
//   #domain              users, products, orders (checkout), anagram groups
//   #stories             the five stories, each run live against the API
// Every second the page polls /api/stats and what the open view shows. When
// the server does not answer, a banner says so and polling goes on; the
// banner leaves on the first answer.
'use strict';

const POLL_MS = 1000;
const PAGE_SIZE = 50;
const STATES = ['available', 'running', 'retryable', 'completed', 'discarded', 'cancelled'];
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- errors

function showError(message) {
  $('error-text').textContent = message;
  $('error').hidden = !message;
}

let offlineSince = null;
function setOnline(online, detail) {
  if (online) {
    if (offlineSince) {
      offlineSince = null;
      $('offline').hidden = true;
    }
    $('live').textContent = 'live';
    $('live').className = 'pill ok';
    return;
  }
  if (!offlineSince) offlineSince = new Date();
  $('live').textContent = 'offline';
  $('live').className = 'pill bad';
  $('offline').hidden = false;
  $('offline').textContent =
    `The server does not answer (since ${offlineSince.toLocaleTimeString()}): ${detail}. ` +
    'The page keeps trying every second and carries on by itself when it is back.';
}

// A fetch that failed at the network level (no HTTP answer at all).
class Unreachable extends Error {}

// ---------------------------------------------------------------- admin token
// With --admin-token set, the job and data routes answer 401; the page then
// asks for the token once (one prompt however many reads failed at once),
// keeps it in sessionStorage (this tab only) and sends it as
// "Authorization: Bearer". A token the server refuses is asked for again; a
// cancelled prompt stops asking until the page is reloaded, and the actions
// then say why they are unavailable.
const TOKEN_KEY = 'aftercommit-admin-token';
let tokenPrompt = null;
let tokenDeclined = false;
let tokenRequired = null; // null: not known yet

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: 'Bearer ' + token } : {};
}

function askForToken(refused) {
  if (tokenDeclined) return Promise.resolve(false);
  if (!tokenPrompt) {
    tokenPrompt = new Promise((resolve) => {
      if (refused) sessionStorage.removeItem(TOKEN_KEY);
      const token = prompt(
        (refused ? 'The server refused that token. ' : '') +
          'This server needs its admin token (--admin-token) to show jobs and statistics:');
      if (token && token.trim()) {
        sessionStorage.setItem(TOKEN_KEY, token.trim());
        resolve(true);
      } else {
        tokenDeclined = true;
        resolve(false);
      }
      updateTokenNote();
    }).finally(() => {
      tokenPrompt = null;
    });
  }
  return tokenPrompt;
}

// Why job actions cannot run, or '' when they can.
function actionsBlocked() {
  if (tokenRequired && !sessionStorage.getItem(TOKEN_KEY)) {
    return 'Actions are unavailable: this server runs with --admin-token and no token was given. ' +
      'Reload the page to enter it.';
  }
  return '';
}

function updateTokenNote() {
  const note = $('token-note');
  const why = actionsBlocked();
  note.hidden = !why;
  note.textContent = why;
}

async function rawFetch(path, options) {
  try {
    return await fetch(path, options);
  } catch (e) {
    throw new Unreachable(`${options.method || 'GET'} ${path}: ${e.message || e}`);
  }
}

// fetch() with the token; on a 401, asks for it (once) and tries again.
async function authorizedFetch(path, options = {}) {
  const sent = sessionStorage.getItem(TOKEN_KEY);
  const go = () => rawFetch(path, { ...options, headers: { ...(options.headers || {}), ...authHeaders() } });
  let res = await go();
  if (res.status === 401) {
    tokenRequired = true;
    const now = sessionStorage.getItem(TOKEN_KEY);
    // Another read may already have asked while this one was in flight.
    const fresh = now && now !== sent ? true : await askForToken(Boolean(sent));
    if (fresh) res = await go();
  } else if (tokenRequired === null && res.ok && !sent) {
    tokenRequired = false;
  }
  updateTokenNote();
  return res;
}

async function getJson(path) {
  const res = await authorizedFetch(path, { cache: 'no-store' });
  if (res.status === 401) throw new Error(`GET ${path} needs the admin token (reload the page to enter it)`);
  if (!res.ok) throw new Error(`GET ${path} answered ${res.status}`);
  return res.json();
}

function newKey(prefix) {
  const random = window.crypto && crypto.randomUUID ? crypto.randomUUID()
    : Date.now().toString(36) + Math.random().toString(36).slice(2);
  return `${prefix}-${random}`;
}

// One API call: {status, body (parsed JSON or null), replayed}. Status 0
// when the server did not answer.
async function call(method, path, { body, key, auth = false } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (key) headers['Idempotency-Key'] = key;
  const options = { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' };
  let res;
  try {
    res = auth ? await authorizedFetch(path, options) : await rawFetch(path, options);
  } catch (e) {
    return { status: 0, body: null, replayed: false, error: String(e.message || e) };
  }
  const text = await res.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch (e) { parsed = null; }
  return { status: res.status, body: parsed, replayed: res.headers.get('Idempotent-Replayed') === 'true' };
}

function problemText(r) {
  if (r.status === 0) return 'no answer: ' + (r.error || 'network error');
  const b = r.body || {};
  return `${r.status}${b.title ? ' ' + b.title : ''}${b.detail ? ': ' + b.detail : ''}`;
}

// ---------------------------------------------------------------- small DOM helpers

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function setNumber(id, value) {
  const e = $(id);
  const text = String(value);
  if (e.textContent !== text) {
    e.textContent = text;
    e.classList.add('flash');
    setTimeout(() => e.classList.remove('flash'), 400);
  }
}

function cell(row, text, className) {
  const td = document.createElement('td');
  if (text instanceof Node) td.append(text);
  else td.textContent = text === null || text === undefined ? '' : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function time(ts) {
  return ts ? ts.slice(11, 23) : '';
}
function dateTime(ts) {
  return ts ? ts.replace('T', ' ').replace('Z', ' UTC') : '—';
}

// Re-renders a table body only when what it shows changed (`extra`: other
// state the rows depend on), so that polling never steals the keyboard
// focus from a row's button or checkbox.
const rendered = new Map();
function fillTable(id, items, render, extra = '') {
  const signature = JSON.stringify(items) + '|' + extra;
  if (rendered.get(id) === signature) return;
  rendered.set(id, signature);
  const body = $(id);
  const known = new Set(Array.from(body.rows, (r) => r.dataset.key));
  body.replaceChildren();
  for (const item of items) {
    const row = document.createElement('tr');
    row.dataset.key = String(item.id);
    if (known.size > 0 && !known.has(row.dataset.key)) row.className = 'new';
    render(row, item);
    body.appendChild(row);
  }
}

function setResult(id, text, ok) {
  const e = $(id);
  e.textContent = text;
  e.className = 'result' + (ok === true ? ' ok' : ok === false ? ' bad' : '');
}

function badge(state) {
  return el('span', { class: 'state-badge ' + state, text: state });
}

// ---------------------------------------------------------------- routing

let route = { view: 'overview', params: new URLSearchParams() };

function parseHash() {
  const hash = location.hash.replace(/^#/, '');
  const [path, query] = hash.split('?');
  const job = path.match(/^job\/(\d+)$/);
  if (job) return { view: 'job', id: Number(job[1]), params: new URLSearchParams(query) };
  const view = ['overview', 'jobs', 'domain', 'stories'].includes(path) ? path : 'overview';
  return { view, params: new URLSearchParams(query) };
}

function showView() {
  route = parseHash();
  for (const section of document.querySelectorAll('[data-view]')) {
    section.hidden = section.dataset.view !== route.view;
  }
  for (const a of document.querySelectorAll('[data-view-link]')) {
    const current = a.dataset.viewLink === route.view || (route.view === 'job' && a.dataset.viewLink === 'jobs');
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (route.view === 'jobs') {
    const state = route.params.get('state') || '';
    const kind = route.params.get('kind') || '';
    if (state !== jobsView.state || kind !== jobsView.kind) {
      jobsView.state = state;
      jobsView.kind = kind;
      jobsView.cursors = [null];
      jobsView.selected.clear();
    }
    $('jobs-kind').value = kind;
  }
  if (route.view === 'job') {
    jobDetail.id = route.id;
    $('job-result').textContent = '';
  }
  refresh();
}

function go(hash) {
  if (location.hash === hash) showView();
  else location.hash = hash;
}

// ---------------------------------------------------------------- overview

let lastStats = null;

function renderCounts(stats) {
  $('version').textContent = 'v' + stats.version;
  setNumber('users-count', stats.users);
  setNumber('audit-count', stats.user_actions);
  setNumber('messages-count', stats.messages);
  setNumber('tx-count', `${stats.transactions.write_transactions} / ${stats.transactions.busy_retries}`);
  setNumber('replays-count', stats.idempotent_replays);
  const total = STATES.reduce((n, s) => n + stats.jobs[s], 0);
  const bar = $('jobs-bar');
  bar.replaceChildren();
  for (const s of STATES) {
    setNumber('jobs-' + s, stats.jobs[s]);
    if (total > 0 && stats.jobs[s] > 0) {
      const part = el('span', { title: `${s}: ${stats.jobs[s]}` });
      part.style.width = (100 * stats.jobs[s]) / total + '%';
      part.style.background = `var(--${s})`;
      bar.appendChild(part);
    }
  }
}

// A line chart in inline SVG: one polyline per series over `n` points.
// The SVG namespace, read from the parser rather than written out, so that
// the page's source names no other origin at all.
const SVG = (() => {
  const holder = document.createElement('div');
  holder.innerHTML = '<svg></svg>';
  return holder.firstChild.namespaceURI;
})();
function drawChart(id, series, unit) {
  const W = 900;
  const H = 100;
  const values = series.flatMap((s) => s.values.filter((v) => v !== null));
  const max = Math.max(1, ...values);
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H + 4}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  const last = series.map((s) => `${s.name} ${s.values[s.values.length - 1] ?? '–'}`).join(', ');
  svg.setAttribute('aria-label', `${series.map((s) => s.name).join(' and ')} over 15 minutes, max ${max}${unit}; now ${last}`);
  for (const y of [0, H / 2, H]) {
    const line = document.createElementNS(SVG, 'line');
    line.setAttribute('x1', 0); line.setAttribute('x2', W);
    line.setAttribute('y1', y + 2); line.setAttribute('y2', y + 2);
    line.setAttribute('class', 'grid');
    line.setAttribute('vector-effect', 'non-scaling-stroke');
    svg.appendChild(line);
  }
  for (const s of series) {
    const n = s.values.length;
    let points = '';
    s.values.forEach((v, i) => {
      if (v === null) return;
      points += `${((i / Math.max(1, n - 1)) * W).toFixed(1)},${(H + 2 - (v / max) * H).toFixed(1)} `;
    });
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', points.trim());
    line.setAttribute('class', 'line ' + s.css);
    line.setAttribute('fill', 'none');
    line.setAttribute('vector-effect', 'non-scaling-stroke');
    svg.appendChild(line);
  }
  // Labels are HTML around the SVG: the SVG stretches to any width, which
  // would distort text drawn inside it.
  const top = el('div', { class: 'axis', text: `max ${Math.round(max * 100) / 100}${unit}` });
  const bottom = el('div', { class: 'axis ends' }, el('span', { text: '−15 min' }), el('span', { text: 'now' }));
  $(id).replaceChildren(top, svg, bottom);
}

function renderThroughput(tp) {
  const t = tp.totals;
  $('tp-jobs-total').textContent = `(${t.completed} completed, ${t.failed} failed in 15 min)`;
  $('tp-requests-total').textContent = `(${t.requests} in 15 min)`;
  $('tp-latency-total').textContent = t.p50_ms === null ? '' : `(15 min: p50 ${t.p50_ms} ms, p99 ${t.p99_ms} ms)`;
  drawChart('chart-jobs', [
    { name: 'completed', values: tp.completed, css: 'l-completed' },
    { name: 'failed', values: tp.failed, css: 'l-failed' },
  ], '/s');
  drawChart('chart-requests', [{ name: 'requests', values: tp.requests, css: 'l-requests' }], '/s');
  drawChart('chart-latency', [
    { name: 'p50', values: tp.p50_ms, css: 'l-p50' },
    { name: 'p99', values: tp.p99_ms, css: 'l-p99' },
  ], ' ms');
}

async function refreshOverview() {
  const [tp, audit, messages] = await Promise.all([
    getJson('/api/throughput'),
    getJson('/api/audit?limit=12'),
    getJson('/api/messages?limit=12'),
  ]);
  renderThroughput(tp);
  fillTable('audit', audit.actions, (row, a) => {
    cell(row, a.id);
    cell(row, a.email);
    cell(row, a.action);
    cell(row, time(a.created_at));
  });
  fillTable('mailbox', messages.messages, (row, m) => {
    cell(row, m.id);
    cell(row, m.channel);
    cell(row, m.to);
    cell(row, m.subject);
    cell(row, el('a', { href: `#job/${m.job_id}`, text: m.job_id }));
    cell(row, time(m.created_at));
  });
}

// ---------------------------------------------------------------- jobs list

const jobsView = { state: '', kind: '', cursors: [null], selected: new Set(), page: [] };

function jobsHash(state, kind) {
  const q = new URLSearchParams();
  if (state) q.set('state', state);
  if (kind) q.set('kind', kind);
  const s = q.toString();
  return '#jobs' + (s ? '?' + s : '');
}

function renderTabs(stats) {
  const tabs = $('job-tabs');
  const counts = {};
  for (const s of STATES) counts[s] = 0;
  const kinds = new Set();
  for (const k of stats.jobs_by_kind) {
    kinds.add(k.kind);
    if (!jobsView.kind || k.kind === jobsView.kind) counts[k.state] += k.count;
  }
  const total = STATES.reduce((n, s) => n + counts[s], 0);
  if (tabs.children.length === 0) {
    for (const s of ['', ...STATES]) {
      const b = el('button', { type: 'button', role: 'tab', id: 'tab-' + (s || 'all'), 'data-state': s },
        s || 'all', el('span', { class: 'count', id: 'tab-count-' + (s || 'all') }, '–'));
      b.addEventListener('click', () => go(jobsHash(s, jobsView.kind)));
      b.addEventListener('keydown', (e) => {
        if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
        const all = Array.from(tabs.children);
        const next = all[(all.indexOf(b) + (e.key === 'ArrowRight' ? 1 : all.length - 1)) % all.length];
        next.focus();
        next.click();
      });
      tabs.appendChild(b);
    }
  }
  for (const b of tabs.children) {
    const s = b.dataset.state;
    b.setAttribute('aria-selected', String(s === jobsView.state));
    b.tabIndex = s === jobsView.state ? 0 : -1;
    $('tab-count-' + (s || 'all')).textContent = String(s ? counts[s] : total);
  }
  const select = $('jobs-kind');
  const have = new Set(Array.from(select.options, (o) => o.value));
  for (const k of [...kinds].sort()) if (!have.has(k)) select.appendChild(el('option', { value: k, text: k }));
  select.value = jobsView.kind;
}

async function jobAction(id, verb) {
  const r = await call('POST', `/jobs/${id}/${verb}`, { auth: true, key: newKey(verb) });
  return r;
}

function renderJobRows(jobs) {
  const blocked = actionsBlocked();
  fillTable('jobs-rows', jobs, (row, j) => {
    const selectable = j.state === 'discarded' || j.state === 'cancelled';
    const box = el('input', { type: 'checkbox', 'aria-label': `select job ${j.id}`, 'data-id': j.id });
    box.disabled = !selectable || Boolean(blocked) || (jobsView.state !== j.state);
    box.checked = jobsView.selected.has(j.id);
    box.addEventListener('change', () => {
      if (box.checked) jobsView.selected.add(j.id);
      else jobsView.selected.delete(j.id);
      updateBulk();
    });
    cell(row, box);
    cell(row, el('a', { href: `#job/${j.id}`, text: j.id }), 'num');
    cell(row, j.kind);
    cell(row, badge(j.state));
    cell(row, `${j.attempt}/${j.max_attempts}`, 'num');
    cell(row, time(j.created_at));
    cell(row, time(j.run_at));
    cell(row, j.errors.length ? j.errors[j.errors.length - 1].message : '', 'err');
    const td = cell(row, '');
    const verb = selectable ? 'retry' : (j.state === 'available' || j.state === 'retryable') ? 'cancel' : null;
    if (verb) {
      const b = el('button', { type: 'button', class: 'small', text: verb, 'data-action': verb, 'data-id': j.id,
        'aria-label': `${verb} job ${j.id}` });
      if (blocked) {
        b.disabled = true;
        b.title = blocked;
      }
      b.addEventListener('click', async () => {
        b.disabled = true;
        const r = await jobAction(j.id, verb);
        if (r.status === 200) setResult('jobs-result', `Job ${j.id}: ${verb} → ${r.body.state}.`, true);
        else setResult('jobs-result', `Job ${j.id}: ${verb} answered ${problemText(r)}`, false);
        await refresh();
      });
      td.appendChild(b);
    }
  }, `${blocked}|${jobsView.state}|${[...jobsView.selected].join(',')}`);
}

function updateBulk() {
  const blocked = actionsBlocked();
  const bulkState = jobsView.state === 'discarded' || jobsView.state === 'cancelled' ? jobsView.state : '';
  const n = jobsView.selected.size;
  const sel = $('bulk-selected');
  const all = $('bulk-all');
  sel.textContent = `Retry selected (${n})`;
  let count = 0;
  if (lastStats && bulkState) {
    for (const k of lastStats.jobs_by_kind) {
      if (k.state === bulkState && (!jobsView.kind || k.kind === jobsView.kind)) count += k.count;
    }
  }
  all.textContent = bulkState
    ? `Retry all ${count} ${bulkState}${jobsView.kind ? ' ' + jobsView.kind : ''} jobs`
    : 'Retry all';
  sel.disabled = Boolean(blocked) || !bulkState || n === 0;
  all.disabled = Boolean(blocked) || !bulkState || count === 0;
  $('bulk-why').textContent = blocked ||
    (bulkState ? 'All or nothing, in one transaction, with an Idempotency-Key.'
      : 'Bulk retry: open the discarded or cancelled tab.');
  $('jobs-select-all').disabled = Boolean(blocked) || !bulkState;
}

async function bulkRetry(all) {
  const body = { state: jobsView.state };
  if (jobsView.kind) body.kind = jobsView.kind;
  if (!all) body.ids = [...jobsView.selected];
  else if (!confirm(`Retry every ${jobsView.state}${jobsView.kind ? ' ' + jobsView.kind : ''} job?`)) return;
  const key = newKey('bulk-retry');
  $('bulk-selected').disabled = true;
  $('bulk-all').disabled = true;
  const r = await call('POST', '/jobs/retry', { body, key, auth: true });
  if (r.status === 200) {
    setResult('jobs-result', `Retried ${r.body.retried} job(s) in one transaction (Idempotency-Key ${key}).`, true);
    jobsView.selected.clear();
  } else {
    setResult('jobs-result', `Bulk retry answered ${problemText(r)}. Nothing was retried.`, false);
  }
  await refresh();
}

async function refreshJobs() {
  const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (jobsView.state) q.set('state', jobsView.state);
  if (jobsView.kind) q.set('kind', jobsView.kind);
  const before = jobsView.cursors[jobsView.cursors.length - 1];
  if (before) q.set('before', String(before));
  const page = await getJson('/jobs?' + q.toString());
  jobsView.page = page.jobs;
  jobsView.next = page.next_before || null;
  // Selected jobs that left the state (retried elsewhere) are forgotten.
  for (const id of [...jobsView.selected]) {
    const j = page.jobs.find((x) => x.id === id);
    if (j && j.state !== jobsView.state) jobsView.selected.delete(id);
  }
  renderJobRows(page.jobs);
  $('jobs-empty').hidden = page.jobs.length > 0;
  const index = jobsView.cursors.length;
  $('jobs-page').textContent = `page ${index}` + (page.jobs.length
    ? ` · jobs ${page.jobs[0].id}…${page.jobs[page.jobs.length - 1].id}` : '');
  $('jobs-older').disabled = !jobsView.next;
  $('jobs-newer').disabled = index === 1;
  $('jobs-newest').disabled = index === 1;
  updateBulk();
}

// ---------------------------------------------------------------- job detail

const jobDetail = { id: null };

function facts(dl, pairs) {
  dl.replaceChildren();
  for (const [k, v] of pairs) {
    dl.append(el('dt', { text: k }), el('dd', {}, v instanceof Node ? v : String(v)));
  }
}

// A webhook job's last answer: a 2xx when it completed; otherwise what the
// last error says ("POST <url> answered 503", or a network error).
function webhookStatus(job) {
  if (job.state === 'completed') return '2xx (delivered)';
  const last = job.errors[job.errors.length - 1];
  if (!last) return 'not attempted yet';
  const m = last.message.match(/answered (\d{3})/);
  return m ? m[1] : 'no HTTP answer: ' + last.message;
}

async function refreshJob() {
  const id = jobDetail.id;
  const res = await authorizedFetch(`/jobs/${id}`, { cache: 'no-store' });
  $('job-title').textContent = `Job ${id}`;
  if (res.status === 404) {
    $('job-missing').textContent = `There is no job ${id} (never staged, or removed by the cleaner after it finished).`;
    $('job-missing').hidden = false;
    $('job-body').hidden = true;
    return;
  }
  if (!res.ok) throw new Error(`GET /jobs/${id} answered ${res.status}`);
  const j = await res.json();
  if (jobDetail.id !== id) return;
  $('job-missing').hidden = true;
  $('job-body').hidden = false;
  facts($('job-facts'), [
    ['kind', j.kind], ['state', badge(j.state)], ['attempt', `${j.attempt} / ${j.max_attempts}`],
    ['priority', j.priority], ['run at', dateTime(j.run_at)], ['created', dateTime(j.created_at)],
    ['attempted', dateTime(j.attempted_at)], ['finished', dateTime(j.finished_at)],
  ]);
  const hook = j.kind === 'deliver_webhook';
  $('job-webhook').hidden = !hook;
  if (hook) {
    facts($('job-webhook-facts'), [['URL', (j.args && j.args.url) || '—'], ['last response', webhookStatus(j)]]);
  }
  const args = JSON.stringify(j.args, null, 2);
  if ($('job-args').textContent !== args) $('job-args').textContent = args;
  fillTable('job-errors', j.errors.map((e, i) => ({ ...e, id: i })), (row, e) => {
    cell(row, e.attempt, 'num');
    cell(row, dateTime(e.at));
    cell(row, e.message, 'err');
  });
  $('job-no-errors').hidden = j.errors.length > 0;
  const blocked = actionsBlocked();
  const canRetry = j.state === 'discarded' || j.state === 'cancelled';
  const canCancel = j.state === 'available' || j.state === 'retryable';
  $('job-retry').disabled = Boolean(blocked) || !canRetry;
  $('job-cancel').disabled = Boolean(blocked) || !canCancel;
  $('job-why').textContent = blocked ||
    (canRetry ? 'Retry moves it back to available.' : canCancel ? 'Cancel stops it before its next attempt.'
      : `A ${j.state} job can be neither retried nor cancelled.`);
}

async function detailAction(verb) {
  const r = await jobAction(jobDetail.id, verb);
  if (r.status === 200) setResult('job-result', `${verb}: the job is now ${r.body.state}.`, true);
  else setResult('job-result', `${verb} answered ${problemText(r)}`, false);
  await refresh();
}

// ---------------------------------------------------------------- domain

const PRODUCTS_KEY = 'aftercommit-products';
function productIds() {
  try { return JSON.parse(sessionStorage.getItem(PRODUCTS_KEY) || '[]'); } catch (e) { return []; }
}

async function refreshProducts() {
  const ids = productIds().slice(-10).reverse();
  const products = (await Promise.all(ids.map((id) => call('GET', `/products/${id}`))))
    .filter((r) => r.status === 200).map((r) => r.body);
  fillTable('products', products, (row, p) => {
    cell(row, p.id, 'num');
    cell(row, p.name);
    cell(row, badge(p.state));
    cell(row, p.meta ? `#${p.meta.id}` : '—');
    const b = el('button', { type: 'button', class: 'small', text: 'Approve', 'data-product': p.id,
      'aria-label': `approve product ${p.id}` });
    b.addEventListener('click', async () => {
      b.disabled = true;
      const r = await call('POST', `/products/${p.id}/approve`, { key: newKey('approve') });
      if (r.status === 200) {
        setResult('product-result', `Product ${p.id} approved: published, meta #${r.body.meta.id}, one notification job staged in the same transaction.`, true);
      } else if (r.status === 409) {
        setResult('product-result', `Second approval of product ${p.id}: 409 ${r.body.title}. Nothing written, no second notification.`, true);
      } else {
        setResult('product-result', `Approve answered ${problemText(r)}`, false);
      }
      b.disabled = false;
      await refreshProducts();
    });
    cell(row, b);
  });
}

async function lookUpUser(user) {
  const [actions, mail] = await Promise.all([
    call('GET', `/users/${user.id}/actions`),
    call('GET', `/mailbox?to=${encodeURIComponent(user.email)}`),
  ]);
  $('user-detail').hidden = false;
  fillTable('user-actions', (actions.body && actions.body.actions) || [], (row, a) => {
    cell(row, a.id); cell(row, a.action); cell(row, dateTime(a.created_at));
  });
  fillTable('user-messages', (mail.body && mail.body.messages) || [], (row, m) => {
    cell(row, m.id); cell(row, m.channel); cell(row, m.subject);
    cell(row, el('a', { href: `#job/${m.job_id}`, text: m.job_id }));
  });
}

const domain = { user: null, checkout: null };

async function refreshDomain() {
  await refreshProducts();
  if (domain.user) await lookUpUser(domain.user);
}

async function sendCheckout() {
  const c = domain.checkout;
  setResult('checkout-result', `Sending with Idempotency-Key ${c.key}…`);
  const r = await call('POST', '/checkout', { body: c.body, key: c.key });
  c.sent += 1;
  let text = `Attempt ${c.sent} → `;
  if (r.status === 201) text += `201, order ${r.body.id} ${r.body.state}, charge ${r.body.charge_id}` + (r.replayed ? ' (replayed: nothing charged again)' : '');
  else text += problemText(r) + (r.replayed ? ' (replayed)' : '');
  if (r.status === 503) text += '. The key kept its recovery point: Retry resumes at the charge and never charges twice';
  text += `. Idempotency-Key ${c.key}.`;
  setResult('checkout-result', text, r.status === 201 || r.status === 402 ? true : r.status === 503 ? null : false);
  const order = r.status === 201 ? r.body.id : ((r.body && r.body.detail || '').match(/order (\d+)/) || [])[1];
  if (order) {
    const o = await call('GET', `/orders/${order}`);
    $('checkout-order').hidden = false;
    $('checkout-order').textContent = JSON.stringify(o.body, null, 2);
  }
  $('checkout-retry').disabled = false;
}

function initDomain() {
  $('user-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const email = $('user-email').value.trim();
    const r = await call('PUT', `/users/${encodeURIComponent(email)}`);
    if (r.status === 201 || r.status === 200) {
      domain.user = r.body;
      setResult('user-result', `${r.status === 201 ? '201 created' : '200 already there'}: user ${r.body.id} ${r.body.email}`, true);
      await lookUpUser(r.body);
    } else {
      setResult('user-result', problemText(r), false);
    }
  });
  $('product-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await call('POST', '/products', {
      body: { name: $('product-name').value, owner_email: $('product-owner').value.trim() }, key: newKey('product'),
    });
    if (r.status === 201) {
      sessionStorage.setItem(PRODUCTS_KEY, JSON.stringify([...productIds(), r.body.id]));
      setResult('product-result', `Product ${r.body.id} created, pending. Approve it (and approve it again).`, true);
    } else {
      setResult('product-result', problemText(r), false);
    }
    await refreshProducts();
  });
  $('checkout-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    domain.checkout = {
      key: newKey('checkout'),
      sent: 0,
      body: {
        email: $('checkout-email').value.trim(),
        phone: $('checkout-phone').value.trim(),
        items: [{ sku: $('checkout-sku').value.trim(), quantity: Number($('checkout-qty').value),
          unit_price_cents: Number($('checkout-price').value) }],
        payment_token: $('checkout-card').value,
      },
    };
    await sendCheckout();
  });
  $('checkout-retry').addEventListener('click', async () => {
    if (domain.checkout) await sendCheckout();
  });
  $('anagram-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const words = $('anagram-words').value.split(/[\s,]+/).filter(Boolean);
    const r = await call('POST', '/anagrams', { body: { words }, key: newKey('anagrams') });
    if (r.status !== 200) {
      setResult('anagram-result', problemText(r) + ' (nothing from this request was added)', false);
      return;
    }
    setResult('anagram-result', `Added ${r.body.added.length} new word(s)` +
      (r.body.added.length ? `: ${r.body.added.join(', ')}.` : ' (all were known).'), true);
    const list = $('anagram-groups');
    list.replaceChildren();
    for (const g of r.body.groups) list.appendChild(el('li', {}, el('code', { text: g.key }), ' ' + g.words.join(', ')));
  });
}

// ---------------------------------------------------------------- the five stories

function random(n) {
  return Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => (b % 36).toString(36)).join('');
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `read` until `done(value)` or the timeout; returns the last value.
async function until(read, done, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  let value = await read();
  while (!done(value) && Date.now() < end) {
    await sleep(250);
    value = await read();
  }
  return value;
}

// The newest 1,000 jobs of `kind` that match `match(job)`: a story's jobs
// are among the newest of their kind.
async function jobsOf(kind, match) {
  const page = await getJson('/jobs?' + new URLSearchParams({ kind, limit: '1000' }).toString());
  return page.jobs.filter(match);
}

async function mailboxCount(to) {
  const r = await call('GET', `/mailbox?to=${encodeURIComponent(to)}`);
  return r.status === 200 ? r.body.messages.length : -1;
}

const STORIES = [
  {
    title: 'Create-or-get under a storm',
    text: 'Eight new emails, each sent at once in the three spellings of the API (PUT /users/{email}, ' +
      'PUT /users?email=, POST /api/users), and every other JSON request twice with one Idempotency-Key. ' +
      'However they interleave: exactly one user, one audit row, one job and one email each.',
    async run(log) {
      const tag = random(8);
      const emails = Array.from({ length: 8 }, (_, i) => `storm-${tag}-${i}@example.com`);
      const requests = [];
      emails.forEach((email, i) => {
        const key = i % 2 === 0 ? `storm-${tag}-${i}` : null;
        const body = { email: ' ' + email.toUpperCase() + ' ' };
        requests.push(call('PUT', '/users/' + encodeURIComponent(email)).then((r) => ({ email, ...r })));
        requests.push(call('PUT', '/users?email=' + encodeURIComponent(email)).then((r) => ({ email, ...r })));
        requests.push(call('POST', '/api/users', { body, key }).then((r) => ({ email, ...r })));
        if (key) requests.push(call('POST', '/api/users', { body, key }).then((r) => ({ email, ...r })));
      });
      const results = await Promise.all(requests);
      const ids = new Map(emails.map((e) => [e, new Set()]));
      let created = 0;
      let failed = 0;
      for (const r of results) {
        if (r.status === 200 || r.status === 201) ids.get(r.email).add(r.body.id);
        else if (r.status !== 409) failed++; // 409: the same key still in flight
        if (r.status === 201 && !r.replayed) created++;
      }
      log(`${results.length} requests: ${created} created, ${results.filter((r) => r.replayed).length} replayed, ` +
        `${results.filter((r) => r.status === 409).length} key-in-use, ${failed} failed.`);
      const oneId = [...ids.values()].filter((s) => s.size === 1).length;
      const userIds = [...ids.values()].map((s) => [...s][0]).filter(Boolean);
      const actions = await Promise.all(userIds.map((id) => call('GET', `/users/${id}/actions`)));
      const audit = actions.reduce((n, r) => n + (r.body ? r.body.actions.filter((a) => a.action === 'created').length : 0), 0);
      const wanted = new Set(userIds);
      const jobs = await until(() => jobsOf('send_welcome_email', (j) => wanted.has(j.args.user_id)),
        (js) => js.length >= emails.length && js.every((j) => j.state === 'completed'));
      const mails = await until(() => Promise.all(emails.map(mailboxCount)), (c) => c.every((n) => n >= 1));
      return [
        ['users created (201, not replayed)', emails.length, created],
        ['emails answered with one single user id', emails.length, oneId],
        ['"created" audit rows', emails.length, audit],
        ['send_welcome_email jobs', emails.length, jobs.length],
        ['welcome emails delivered', emails.length, mails.reduce((a, b) => a + b, 0)],
        ['requests failed (5xx or no answer)', 0, failed],
      ];
    },
  },
  {
    title: 'The idempotency token',
    text: 'One Idempotency-Key sent six times at once with the same body, then replayed, then sent with a ' +
      'different body: one execution, replays marked Idempotent-Replayed, 422 for the mismatch.',
    async run(log) {
      const tag = random(8);
      const key = `token-${tag}`;
      const body = { email: `token-${tag}@example.com` };
      const burst = await Promise.all(Array.from({ length: 6 }, () => call('POST', '/api/users', { body, key })));
      const fresh = burst.filter((r) => r.status === 201 && !r.replayed).length;
      const replayedInBurst = burst.filter((r) => r.replayed).length;
      const inUse = burst.filter((r) => r.status === 409).length;
      log(`concurrent: ${fresh} executed, ${replayedInBurst} replayed, ${inUse} answered 409 key-in-use (retry later).`);
      const replay = await call('POST', '/api/users', { body, key });
      const mismatch = await call('POST', '/api/users', { body: { email: `other-${tag}@example.com` }, key });
      const ids = new Set([...burst, replay].filter((r) => r.status === 201).map((r) => r.body.id));
      const userId = replay.body && replay.body.id;
      const actions = userId ? await call('GET', `/users/${userId}/actions`) : { body: { actions: [] } };
      const other = await call('PUT', `/users?email=${encodeURIComponent(`other-${tag}@example.com`)}`);
      return [
        ['executions (201 not replayed)', 1, fresh],
        ['later replay: status, Idempotent-Replayed', '201 true', `${replay.status} ${replay.replayed}`],
        ['distinct user ids in the 201 answers', 1, ids.size],
        ['different body, same key', 422, mismatch.status],
        ['audit rows of the user', 1, actions.body ? actions.body.actions.length : -1],
        ['the mismatched body created nothing (its email is new now)', 201, other.status],
      ];
    },
  },
  {
    title: 'Concurrent anagram posts',
    text: 'Sixteen words with the same letters, each in its own POST /anagrams, all at once, to one group. ' +
      'No lost update: every word is in the group afterwards.',
    async run(log) {
      const letters = [];
      const pool = 'abcdefghijklmnopqrstuvwxyz'.split('');
      const bytes = crypto.getRandomValues(new Uint8Array(8));
      for (const b of bytes) letters.push(pool.splice(b % pool.length, 1)[0]);
      const words = new Set();
      while (words.size < 16) {
        const w = [...letters];
        const r = crypto.getRandomValues(new Uint8Array(w.length));
        for (let i = w.length - 1; i > 0; i--) {
          const k = r[i] % (i + 1);
          [w[i], w[k]] = [w[k], w[i]];
        }
        words.add(w.join(''));
      }
      const list = [...words];
      const answers = await Promise.all(list.map((w) => call('POST', '/anagrams', { body: { words: [w] } })));
      const ok = answers.filter((r) => r.status === 200).length;
      const group = await call('GET', `/anagrams/${list[0]}`);
      const found = group.status === 200 ? new Set([list[0], ...group.body.anagrams]) : new Set();
      const missing = list.filter((w) => !found.has(w));
      log(`group ${[...letters].sort().join('')}: ${[...found].sort().join(' ')}`);
      return [
        ['POST /anagrams answered 200', list.length, ok],
        ['words in the group', list.length, list.filter((w) => found.has(w)).length],
        ['words lost', 0, missing.length],
      ];
    },
  },
  {
    title: 'Approve a product, notify after commit',
    text: 'Approval publishes the product and, in the same transaction, writes its meta row and stages the ' +
      'notification: the job finds the meta row on its first attempt. A second approval is a 409 and stages nothing.',
    async run(log) {
      const owner = `owner-${random(8)}@example.com`;
      const created = await call('POST', '/products', { body: { name: 'Story teapot', owner_email: owner } });
      if (created.status !== 201) throw new Error('POST /products answered ' + problemText(created));
      const id = created.body.id;
      const first = await call('POST', `/products/${id}/approve`);
      const metaId = first.body && first.body.meta ? first.body.meta.id : -1;
      const jobs = await until(() => jobsOf('notify_product_owner', (j) => j.args.product_meta_id === metaId),
        (js) => js.length > 0 && js.every((j) => j.state === 'completed'));
      const second = await call('POST', `/products/${id}/approve`);
      const after = await jobsOf('notify_product_owner', (j) => j.args.product_meta_id === metaId);
      const mails = await until(() => mailboxCount(owner), (n) => n >= 1);
      const job = jobs[0];
      log(`product ${id}, meta #${metaId}` + (job ? `, job ${job.id} ${job.state} on attempt ${job.attempt}` : ''));
      return [
        ['first approval', 200, first.status],
        ['notification jobs staged', 1, jobs.length],
        ['attempt that completed it', 1, job ? job.attempt : -1],
        ['errors recorded on the job', 0, job ? job.errors.length : -1],
        ['second approval', 409, second.status],
        ['notification jobs after the second approval', 1, after.length],
        ['emails to the owner', 1, mails],
      ];
    },
  },
  {
    title: 'Checkout: declined, then flaky with a retry',
    text: 'A declined card: 402, order payment_failed, no SMS and no shipping job. A flaky card: the gateway ' +
      'fails the first call (503 to us); the retry with the same Idempotency-Key resumes at the charge: one ' +
      'charge, one SMS, one shipping job.',
    async run(log) {
      const tag = random(6);
      const digits = String(Date.now()).slice(-7);
      const item = [{ sku: 'story-mug', quantity: 2, unit_price_cents: 1250 }];
      const declinedPhone = `+1555${digits}1`;
      const flakyPhone = `+1555${digits}2`;
      const declined = await call('POST', '/checkout', { key: `declined-${tag}`, body: {
        email: `declined-${tag}@example.com`, phone: declinedPhone, items: item, payment_token: 'tok_declined' } });
      const declinedOrder = Number((((declined.body && declined.body.detail) || '').match(/order (\d+)/) || [])[1] || -1);
      const declinedState = declinedOrder > 0 ? (await call('GET', `/orders/${declinedOrder}`)).body.state : '?';
      const flakyKey = `flaky-${tag}`;
      const flakyBody = { email: `flaky-${tag}@example.com`, phone: flakyPhone, items: item, payment_token: 'tok_flaky' };
      const firstTry = await call('POST', '/checkout', { key: flakyKey, body: flakyBody });
      const retry = await call('POST', '/checkout', { key: flakyKey, body: flakyBody });
      const again = await call('POST', '/checkout', { key: flakyKey, body: flakyBody });
      const order = retry.status === 201 ? retry.body.id : -1;
      const charges = new Set([retry, again].filter((r) => r.status === 201).map((r) => r.body.charge_id));
      const sms = await until(() => mailboxCount(flakyPhone), (n) => n >= 1);
      const shipping = await until(() => jobsOf('prepare_for_shipping', (j) => j.args.order_id === order),
        (js) => js.length >= 1 && js.every((j) => j.state === 'completed'));
      const smsJobs = await jobsOf('send_sms', (j) => j.args.order_id === order);
      const declinedSmsJobs = await jobsOf('send_sms', (j) => j.args.order_id === declinedOrder);
      const declinedShipping = await jobsOf('prepare_for_shipping', (j) => j.args.order_id === declinedOrder);
      const declinedSms = await mailboxCount(declinedPhone);
      log(`declined: order ${declinedOrder}; flaky: order ${order}, charge ${[...charges].join(', ')}; ` +
        `second retry replayed: ${again.replayed}`);
      return [
        ['declined card: status', 402, declined.status],
        ['declined order state', 'payment_failed', declinedState],
        ['declined: SMS messages + send_sms jobs', 0, declinedSms + declinedSmsJobs.length],
        ['declined: shipping jobs', 0, declinedShipping.length],
        ['flaky card, first call', 503, firstTry.status],
        ['retry with the same key', 201, retry.status],
        ['distinct charge ids over the retry and a replay', 1, charges.size],
        ['SMS messages to the buyer', 1, sms],
        ['send_sms jobs', 1, smsJobs.length],
        ['prepare_for_shipping jobs', 1, shipping.length],
      ];
    },
  },
];

function renderStories() {
  const box = $('stories');
  STORIES.forEach((story, i) => {
    const n = i + 1;
    const button = el('button', { type: 'button', id: `story-${n}-run`, text: `Run story ${n}` });
    const result = el('div', { id: `story-${n}-result`, 'aria-live': 'polite' });
    box.appendChild(el('section', { class: 'story', id: `story-${n}`, 'aria-labelledby': `story-${n}-title` },
      el('h3', { id: `story-${n}-title`, text: `${n}. ${story.title}` }),
      el('p', { class: 'muted', text: story.text }), button, result));
    button.addEventListener('click', async () => {
      button.disabled = true;
      button.textContent = 'Running…';
      result.replaceChildren();
      const logs = [];
      try {
        const rows = await story.run((line) => logs.push(line));
        const table = el('table', {}, el('thead', {}, el('tr', {},
          el('th', { text: 'check' }), el('th', { text: 'expected' }), el('th', { text: 'found' }), el('th', { text: '' }))));
        const body = el('tbody');
        let bad = 0;
        for (const [what, expected, found] of rows) {
          const ok = String(expected) === String(found);
          if (!ok) bad++;
          body.appendChild(el('tr', { 'data-ok': String(ok) }, el('td', { text: what }),
            el('td', { class: 'num', text: String(expected) }), el('td', { class: 'num', text: String(found) }),
            el('td', { class: ok ? 'ok-text' : 'err', text: ok ? '✓' : '✗' })));
        }
        table.appendChild(body);
        result.append(el('div', { class: 'scroll' }, table),
          el('div', { class: 'verdict ' + (bad ? 'bad' : 'ok'), id: `story-${n}-verdict`, 'data-ok': String(!bad),
            text: bad ? `${bad} check(s) differ from what the guarantee promises.` : 'The invariant holds: every number is as expected.' }));
      } catch (e) {
        result.append(el('div', { class: 'verdict bad', id: `story-${n}-verdict`, 'data-ok': 'false',
          text: 'The story could not run: ' + (e.message || e) }));
      }
      for (const line of logs) result.append(el('div', { class: 'log', text: line }));
      button.disabled = false;
      button.textContent = `Run story ${n} again`;
      refresh();
    });
  });
}

// ---------------------------------------------------------------- polling

let refreshing = null;
async function refresh() {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      const stats = await getJson('/api/stats');
      lastStats = stats;
      renderCounts(stats);
      renderTabs(stats);
      if (route.view === 'overview') await refreshOverview();
      else if (route.view === 'jobs') await refreshJobs();
      else if (route.view === 'job') await refreshJob();
      else if (route.view === 'domain') await refreshDomain();
      $('updated').textContent = new Date().toLocaleTimeString();
      setOnline(true);
      if ($('error-text').textContent.startsWith('server:')) showError('');
    } catch (e) {
      if (e instanceof Unreachable) setOnline(false, e.message);
      else showError('server: ' + (e.message || e));
      // Whatever failed, the actions still say whether they can run.
      updateBulk();
    }
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

// The metrics link: a browser's own navigation cannot send the token, so with
// --admin-token set following the link would only show a 401. The page reads
// /metrics with the token instead and shows the text in place; the link
// stays a plain link for copying (curl -H 'Authorization: Bearer ...').
async function showMetrics(event) {
  event.preventDefault();
  try {
    const res = await authorizedFetch('/metrics', { cache: 'no-store' });
    if (res.status === 401) throw new Error('GET /metrics needs the admin token (reload the page to enter it)');
    if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`);
    $('metrics-text').textContent = await res.text();
    $('metrics-view').hidden = false;
    $('metrics-text').focus();
  } catch (e) {
    showError(String(e.message || e));
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('metrics-link').addEventListener('click', showMetrics);
  $('metrics-close').addEventListener('click', () => { $('metrics-view').hidden = true; });
  $('error-close').addEventListener('click', () => showError(''));
  $('jobs-kind').addEventListener('change', () => go(jobsHash(jobsView.state, $('jobs-kind').value)));
  $('job-search').addEventListener('submit', (e) => {
    e.preventDefault();
    const id = $('job-search-id').value.trim();
    if (/^\d+$/.test(id)) go(`#job/${id}`);
  });
  $('jobs-older').addEventListener('click', () => {
    if (!jobsView.next) return;
    jobsView.cursors.push(jobsView.next);
    jobsView.selected.clear();
    refresh();
  });
  $('jobs-newer').addEventListener('click', () => {
    if (jobsView.cursors.length > 1) jobsView.cursors.pop();
    jobsView.selected.clear();
    refresh();
  });
  $('jobs-newest').addEventListener('click', () => {
    jobsView.cursors = [null];
    jobsView.selected.clear();
    refresh();
  });
  $('jobs-select-all').addEventListener('change', (e) => {
    for (const j of jobsView.page) {
      if (j.state !== jobsView.state) continue;
      if (e.target.checked) jobsView.selected.add(j.id);
      else jobsView.selected.delete(j.id);
    }
    renderJobRows(jobsView.page);
    updateBulk();
  });
  $('bulk-selected').addEventListener('click', () => bulkRetry(false));
  $('bulk-all').addEventListener('click', () => bulkRetry(true));
  $('job-retry').addEventListener('click', () => detailAction('retry'));
  $('job-cancel').addEventListener('click', () => detailAction('cancel'));
  initDomain();
  renderStories();
  window.addEventListener('hashchange', showView);
  showView();
  setInterval(refresh, POLL_MS);
});
