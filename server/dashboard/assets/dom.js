// Small DOM helpers. Everything that came from the API (prompts, logs, paths, diffs) goes in
// as text nodes: nothing here ever parses a string as HTML.

// el('a', {href: '#/jobs', class: 'x'}, 'text', child...) -> element.
// Attribute values are strings; `on<event>` keys add listeners.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) {
      // Never an inline handler attribute: those would be script built from strings.
      if (typeof value !== 'function') throw new TypeError(`el(): ${key} must be a function`);
      node.addEventListener(key.slice(2), value);
    } else {
      node.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Replaces the children of `node`.
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

// Sets textContent only when it changed (keeps selection and screen readers calm).
export function setText(node, text) {
  const value = String(text ?? '');
  if (node.textContent !== value) node.textContent = value;
}

// A route link for an id: `#/jobs/<id>`; ids are encoded, so a hash link can never become a
// javascript: URL or leave the page.
export const link = (route, id, ...children) =>
  el('a', { href: `#/${route}/${encodeURIComponent(id)}` }, ...children);

export function badge(status) {
  return el('span', { class: `badge s-${/^[a-z]+$/.test(status) ? status : 'unknown'}` }, status);
}

// Timestamps of the API: ISO-8601 with Z, or SQLite's "YYYY-MM-DD HH:MM:SS" (UTC).
export function parseTime(ts) {
  if (!ts) return null;
  const iso = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(ts) ? `${ts.replace(' ', 'T')}Z` : ts;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

export function formatTime(ts) {
  const t = parseTime(ts);
  return t === null ? '—' : new Date(t).toLocaleString();
}

export function formatDuration(ms) {
  if (ms === null || ms === undefined || ms < 0) return '—';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

// Running time of a job: started → completed (or now while it runs).
export function jobDuration(job, now = Date.now()) {
  const start = parseTime(job.started_at);
  if (start === null) return null;
  const end = parseTime(job.completed_at) ?? (job.status === 'running' ? now : null);
  return end === null ? null : end - start;
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

// Text as it should be read: bidi overrides and control characters (which can make
// "evil\u202Etxt.sh" look like "evilhs.txt", or hide code in a diff) are shown as <U+XXXX>
// instead of acting. Tabs stay in diff lines; a file name shows them too.
const HIDDEN = /[\u0000-\u0008\u000a-\u001f\u007f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const reveal = (c) => `<U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}>`;
export const visibleName = (name) => String(name).replace(HIDDEN, reveal).replace(/\t/g, reveal);
export const visibleLine = (line) => String(line).replace(HIDDEN, reveal);

// Terminal colour and cursor sequences (CSI ... final byte) in log text.
export const ANSI_SEQUENCE = /\x1b\[[0-?]*[ -\/]*[@-~]/g;

export const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

// Tells screen readers about a change that happened without focus moving.
export function announce(text) {
  setText(document.getElementById('announce'), text);
}
