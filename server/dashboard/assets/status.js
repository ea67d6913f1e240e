// Status: server health (/health, no token) and the dispatcher's numbers from /metrics
// (Prometheus text; may need an admin token: a 403 is shown, not treated as a failure).
import { ApiError, api } from './api.js';
import { el, fill, setText } from './dom.js';

const POLL_MS = 2000;

export async function render(view, _params, signal) {
  const health = el('div', { class: 'grid', id: 'health' });
  const metrics = el('div', { id: 'metrics' });
  const updated = el('p', { class: 'muted' });
  fill(view, el('h1', {}, 'Status'), el('h2', {}, 'Server'), health, el('h2', {}, 'Dispatcher'), metrics, updated);
  let timer = 0;
  const refresh = async () => {
    await Promise.all([showHealth(health), showMetrics(metrics, signal)]);
    setText(updated, `Updated ${new Date().toLocaleTimeString()}`);
    if (!signal.aborted) timer = setTimeout(refresh, POLL_MS);
  };
  signal.addEventListener('abort', () => clearTimeout(timer));
  await refresh();
}

const stat = (label, value, tone = '') =>
  el('div', { class: `stat ${tone}` }, el('div', { class: 'label' }, label), el('div', { class: 'value' }, value));

async function showHealth(node) {
  try {
    const h = await api.health();
    fill(node, stat('Health', String(h.status ?? 'unknown'), h.status === 'ok' ? 'good' : 'bad'),
      Object.entries(h).filter(([k]) => k !== 'status').map(([k, v]) => stat(k, typeof v === 'object' ? JSON.stringify(v) : String(v), 'text')));
  } catch (e) {
    fill(node, stat('Health', 'unreachable', 'bad'), el('p', { class: 'error' }, e.message));
  }
}

// Prometheus text -> Map("name{labels}" -> number).
export function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?)\s+(\S+)/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

async function showMetrics(node, signal) {
  let text;
  try {
    text = await api.metrics(signal);
  } catch (e) {
    if (signal.aborted) return;
    if (e instanceof ApiError && e.status === 403) {
      fill(node, el('p', { class: 'notice', id: 'metrics-forbidden' },
        'Metrics need an admin token; this token may not read them (403 Forbidden). Jobs and projects still work.'));
    } else {
      fill(node, el('p', { class: 'error' }, `Cannot read /metrics: ${e.message}`));
    }
    return;
  }
  const m = parseMetrics(text);
  const get = (name) => (m.has(name) ? String(m.get(name)) : '—');
  const jobs = ['pending', 'running', 'completed', 'failed', 'cancelled']
    .map((s) => stat(`Jobs ${s}`, get(`fastest_jobs{status="${s}"}`), s === 'failed' && m.get(`fastest_jobs{status="failed"}`) > 0 ? 'bad' : ''));
  const backendErrors = [...m].filter(([k]) => k.startsWith('fastest_backend_errors_total')).reduce((s, [, v]) => s + v, 0);
  const latencyCount = m.get('fastest_dispatch_latency_seconds_count');
  const latencySum = m.get('fastest_dispatch_latency_seconds_sum');
  fill(node, el('div', { class: 'grid' },
    stat('Running sandboxes', get('fastest_sandboxes_running')),
    stat('Queue (waiting for a slot)', get('fastest_dispatch_queue_length')),
    stat('Jobs dispatched', get('fastest_jobs_dispatched_total')),
    stat('Backend errors', String(backendErrors), backendErrors > 0 ? 'bad' : 'good'),
    stat('Mean dispatch latency', latencyCount ? `${((latencySum / latencyCount) * 1000).toFixed(0)} ms` : '—'),
    jobs));
}
