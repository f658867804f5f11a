// The aftercommit dashboard: polls the JSON reads every second and renders
// them; its buttons call the public API. Plain JS, no dependencies; data is
// written with textContent only, so nothing from the database becomes markup.
'use strict';

const POLL_MS = 1000;
const STATES = ['available', 'running', 'retryable', 'completed', 'discarded', 'cancelled'];
const $ = (id) => document.getElementById(id);
let lastError = '';

function showError(message) {
  lastError = message;
  const box = $('error');
  box.textContent = message;
  box.hidden = !message;
}

// The admin token. With --admin-token set, the data routes this page reads
// answer 401; the page then asks for the token once (one prompt however many
// reads failed at once), keeps it in sessionStorage (this tab only, gone when
// it closes) and sends it as "Authorization: Bearer". A token the server
// refuses is forgotten and asked for again; a cancelled prompt stops asking
// until the page is reloaded.
const TOKEN_KEY = 'aftercommit-admin-token';
let tokenPrompt = null;
let tokenDeclined = false;

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
    }).finally(() => {
      tokenPrompt = null;
    });
  }
  return tokenPrompt;
}

// fetch() with the token; on a 401, asks for it (once) and tries again.
async function authorizedFetch(path, options = {}) {
  const sent = sessionStorage.getItem(TOKEN_KEY);
  let res = await fetch(path, { ...options, headers: { ...(options.headers || {}), ...authHeaders() } });
  if (res.status === 401) {
    const now = sessionStorage.getItem(TOKEN_KEY);
    // Another read may already have asked while this one was in flight.
    const fresh = now && now !== sent ? true : await askForToken(Boolean(sent));
    if (fresh) {
      res = await fetch(path, { ...options, headers: { ...(options.headers || {}), ...authHeaders() } });
    }
  }
  return res;
}

async function getJson(path) {
  const res = await authorizedFetch(path, { cache: 'no-store' });
  if (res.status === 401) throw new Error(`GET ${path} needs the admin token (reload the page to enter it)`);
  if (!res.ok) throw new Error(`GET ${path} answered ${res.status}`);
  return res.json();
}

function setNumber(id, value) {
  const el = $(id);
  const text = String(value);
  if (el.textContent !== text) {
    el.textContent = text;
    el.classList.add('flash');
    setTimeout(() => el.classList.remove('flash'), 400);
  }
}

function cell(row, text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function time(ts) {
  return ts ? ts.slice(11, 23) : '';
}

function fillTable(id, items, render) {
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

async function retryJob(id, button) {
  button.disabled = true;
  const res = await authorizedFetch(`/jobs/${id}/retry`, { method: 'POST' });
  if (!res.ok) {
    const problem = await res.json().catch(() => ({}));
    showError(`retry of job ${id} answered ${res.status}: ${problem.detail || ''}`);
  }
  await refresh();
}

function renderJobs(stats) {
  const total = STATES.reduce((n, s) => n + stats.jobs[s], 0);
  const bar = $('jobs-bar');
  bar.replaceChildren();
  for (const s of STATES) {
    setNumber('jobs-' + s, stats.jobs[s]);
    if (total > 0 && stats.jobs[s] > 0) {
      const part = document.createElement('span');
      part.style.width = (100 * stats.jobs[s]) / total + '%';
      part.style.background = `var(--${s})`;
      part.title = `${s}: ${stats.jobs[s]}`;
      bar.appendChild(part);
    }
  }
}

async function refresh() {
  try {
    const [stats, audit, messages, retryable, discarded, cancelled] = await Promise.all([
      getJson('/api/stats'),
      getJson('/api/audit?limit=12'),
      getJson('/api/messages?limit=12'),
      getJson('/jobs?state=retryable&limit=20'),
      getJson('/jobs?state=discarded&limit=20'),
      getJson('/jobs?state=cancelled&limit=20'),
    ]);
    $('version').textContent = 'v' + stats.version;
    setNumber('users-count', stats.users);
    setNumber('audit-count', stats.user_actions);
    setNumber('messages-count', stats.messages);
    setNumber('tx-count', `${stats.transactions.write_transactions} / ${stats.transactions.busy_retries}`);
    setNumber('replays-count', stats.idempotent_replays);
    renderJobs(stats);
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
      cell(row, m.job_id);
      cell(row, time(m.created_at));
    });
    const failed = [...retryable.jobs, ...discarded.jobs, ...cancelled.jobs].sort((a, b) => b.id - a.id);
    fillTable('failed', failed, (row, j) => {
      cell(row, j.id);
      cell(row, j.kind);
      cell(row, j.state);
      cell(row, `${j.attempt}/${j.max_attempts}`);
      const last = j.errors.length ? j.errors[j.errors.length - 1].message : '';
      cell(row, last, 'err');
      const td = cell(row, '');
      if (j.state === 'discarded' || j.state === 'cancelled') {
        const b = document.createElement('button');
        b.className = 'small';
        b.textContent = 'retry';
        b.addEventListener('click', () => retryJob(j.id, b));
        td.appendChild(b);
      } else {
        td.textContent = 'next ' + time(j.run_at);
      }
    });
    $('failed-empty').hidden = failed.length > 0;
    $('updated').textContent = new Date().toLocaleTimeString();
    $('live').textContent = 'live';
    $('live').className = 'pill ok';
    if (lastError.startsWith('server:')) showError('');
  } catch (e) {
    $('live').textContent = 'disconnected';
    $('live').className = 'pill bad';
    showError('server: ' + e.message);
  }
}

async function send(method, path, body, key) {
  const headers = {};
  if (body) headers['Content-Type'] = 'application/json';
  if (key) headers['Idempotency-Key'] = key;
  try {
    const res = await fetch(path, { method, headers, body });
    return { status: res.status, replayed: res.headers.get('Idempotent-Replayed') === 'true' };
  } catch (e) {
    return { status: 0, replayed: false };
  }
}

// Eight new emails; each sent in the three spellings at once, and the JSON
// form of every other one twice with the same Idempotency-Key.
async function burst() {
  const button = $('burst');
  button.disabled = true;
  const tag = Date.now().toString(36) + Math.random().toString(36).slice(2, 6);
  const emails = Array.from({ length: 8 }, (_, i) => `burst-${tag}-${i}@example.com`);
  const requests = [];
  emails.forEach((email, i) => {
    const key = i % 2 === 0 ? `burst-${tag}-${i}` : null;
    const body = JSON.stringify({ email: ' ' + email.toUpperCase() + ' ' });
    requests.push(send('PUT', '/users/' + encodeURIComponent(email)));
    requests.push(send('PUT', '/users?email=' + encodeURIComponent(email)));
    requests.push(send('POST', '/api/users', body, key));
    if (key) requests.push(send('POST', '/api/users', body, key));
  });
  const results = await Promise.all(requests);
  const byStatus = {};
  let replayed = 0;
  let created = 0;
  for (const r of results) {
    byStatus[r.status] = (byStatus[r.status] || 0) + 1;
    if (r.replayed) replayed++;
    else if (r.status === 201) created++;
  }
  const summary = Object.keys(byStatus).sort().map((s) => `${s === '0' ? 'no answer' : s} ×${byStatus[s]}`).join(', ');
  const broken = results.filter((r) => r.status === 0 || r.status >= 500).length;
  $('burst-result').textContent =
    `Sent ${results.length} requests for ${emails.length} new emails: ${summary}` +
    (replayed ? `, ${replayed} replayed` : '') +
    `. Created: ${created} (expected ${emails.length}).`;
  if (broken) showError(`burst: ${broken} request(s) failed with a 5xx or no answer`);
  else if (created !== emails.length) showError(`burst: ${created} creates for ${emails.length} emails`);
  button.disabled = false;
  await refresh();
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
  } catch (e) {
    showError(String(e.message || e));
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('burst').addEventListener('click', burst);
  $('metrics-link').addEventListener('click', showMetrics);
  $('metrics-close').addEventListener('click', () => { $('metrics-view').hidden = true; });
  refresh();
  setInterval(refresh, POLL_MS);
});
