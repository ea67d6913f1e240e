// Job detail: live status and timeline, the live log (fetch streaming of ?follow=1), cancel,
// the output's changes against the base snapshot with unified diffs, and the output as a tar.
import { ApiError, api, followLog } from './api.js';
import {
  ANSI_SEQUENCE, TERMINAL, announce, badge, el, fill, formatBytes, formatDuration, formatTime, jobDuration, link,
  parseTime, setText, visibleLine, visibleName,
} from './dom.js';
import { compareManifests, decodeText, diffLines, hunks, splitLines } from './diff.js';
import { buildTar } from './tar.js';

const POLL_MS = 1500;
const MAX_DIFF_BYTES = 512 * 1024;
const OPEN_DIFFS = 30;
const MAX_LOG_CHARS = 4_000_000;
const MAX_CHANGES_LISTED = 1000;
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export async function render(view, [id], signal) {
  const page = {
    id, signal, job: null,
    status: el('span', { id: 'job-status' }),
    cancel: el('button', { type: 'button', class: 'danger', id: 'cancel-job', hidden: true }, 'Cancel job'),
    message: el('p', { class: 'error', role: 'alert', id: 'job-message' }),
    prompt: el('p', { class: 'prompt-text', id: 'job-prompt' }),
    facts: el('dl', { class: 'facts' }),
    timeline: el('ol', { class: 'timeline', id: 'job-timeline' }),
    log: el('pre', { class: 'log', id: 'job-log', tabindex: '0', 'aria-label': 'Job log' }),
    logState: el('p', { class: 'muted', id: 'log-state' }, 'Connecting to the log…'),
    changes: el('div', { id: 'changes' }),
    download: el('button', { type: 'button', class: 'secondary', id: 'download-tar', hidden: true },
      'Download output (.tar)'),
    downloadState: el('p', { class: 'muted', id: 'download-state', 'aria-live': 'polite' }),
    changesLoaded: false,
  };
  fill(view,
    el('p', {}, el('a', { href: '#/jobs' }, '← Jobs')),
    el('div', { class: 'detail-head' }, el('h1', {}, 'Job ', el('span', { class: 'mono' }, id)), page.status, page.cancel),
    page.message,
    page.prompt,
    el('section', { 'aria-labelledby': 'h-timeline' }, el('h2', { id: 'h-timeline' }, 'Timeline'), page.timeline),
    el('section', { 'aria-labelledby': 'h-facts' }, el('h2', { id: 'h-facts', class: 'sr-only' }, 'Details'),
      el('div', { class: 'card' }, page.facts)),
    el('section', { 'aria-labelledby': 'h-log' }, el('h2', { id: 'h-log' }, 'Log'), page.logState, page.log),
    el('section', { 'aria-labelledby': 'h-changes' },
      el('div', { class: 'toolbar' }, el('h2', { id: 'h-changes' }, 'Changes'), el('span', { class: 'spacer' }), page.download),
      page.downloadState, page.changes));

  page.cancel.addEventListener('click', () => cancel(page));
  page.download.addEventListener('click', () => downloadTar(page));

  let timer = 0;
  const poll = async () => {
    try {
      show(page, await api.job(id, signal));
    } catch (e) {
      if (signal.aborted) return;
      setText(page.message, e instanceof ApiError && e.status === 404 ? 'This job does not exist.' : `Cannot load the job: ${e.message}`);
      if (e instanceof ApiError && (e.status === 404 || e.status === 403)) return;
    }
    if (!signal.aborted && !(page.job && TERMINAL.has(page.job.status))) timer = setTimeout(poll, POLL_MS);
  };
  signal.addEventListener('abort', () => clearTimeout(timer));
  await poll();
  if (!page.job) return;
  streamLog(page);
  api.project(page.job.project_id, signal).then((detail) => {
    page.projectName = detail.project.name;
    show(page, page.job);
  }).catch(() => { /* the id stays */ });
}

function show(page, job) {
  const first = page.job === null;
  const changed = first || page.job.status !== job.status;
  page.job = job;
  if (changed) {
    fill(page.status, badge(job.status));
    if (!first) announce(`Job is ${job.status}`);
  }
  page.cancel.hidden = !(job.status === 'pending' || job.status === 'running');
  setText(page.prompt, job.prompt);
  fill(page.facts,
    el('dt', {}, 'Project'), el('dd', {}, link('projects', job.project_id, page.projectName ?? job.project_id)),
    el('dt', {}, 'Workspace'), el('dd', { class: 'mono' }, job.workspace_id),
    el('dt', {}, 'Duration'), el('dd', {}, formatDuration(jobDuration(job))),
    el('dt', {}, 'Output snapshot'), el('dd', {},
      job.output_snapshot_id ? link('snapshots', job.output_snapshot_id, job.output_snapshot_id) : '—'),
    job.error ? [el('dt', {}, 'Error'), el('dd', { class: 'error', id: 'job-error' }, job.error)] : null);
  renderTimeline(page.timeline, job);
  if (job.status === 'completed' && job.output_snapshot_id && !page.changesLoaded) {
    page.changesLoaded = true;
    loadChanges(page).catch((e) => {
      if (!page.signal.aborted) fill(page.changes, el('p', { class: 'error' }, `Cannot load the changes: ${e.message}`));
    });
  } else if (!page.changesLoaded) {
    fill(page.changes, el('p', { class: 'muted' }, TERMINAL.has(job.status)
      ? `This job ended ${job.status} without an output snapshot.`
      : 'The changes appear here when the job completes.'));
  }
}

function renderTimeline(list, job) {
  const steps = [
    ['Created', job.created_at],
    ['Started', job.started_at],
    [TERMINAL.has(job.status) ? job.status[0].toUpperCase() + job.status.slice(1) : 'Finished', job.completed_at],
  ];
  const created = parseTime(job.created_at);
  fill(list, steps.map(([label, ts]) => {
    const t = parseTime(ts);
    const after = t !== null && created !== null && label !== 'Created' ? ` (+${formatDuration(t - created)})` : '';
    return el('li', { class: t === null ? 'todo' : 'done' }, label,
      el('span', { class: 'when' }, t === null ? 'not yet' : `${formatTime(ts)}${after}`));
  }));
}

async function cancel(page) {
  page.cancel.disabled = true;
  try {
    show(page, await api.cancel(page.id));
    announce('Job cancelled');
  } catch (e) {
    setText(page.message, `Cannot cancel: ${e.message}`);
  } finally {
    page.cancel.disabled = false;
  }
}

// The log stream ends when the job is over; a broken stream is resumed from the byte reached.
async function streamLog(page) {
  const { log, signal } = page;
  let offset = 0;
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      setText(page.logState, TERMINAL.has(page.job.status) ? 'Complete log:' : 'Live log (following):');
      offset = await followLog(page.id, offset, (text) => appendLog(page, text), signal);
      if (TERMINAL.has((await api.job(page.id, signal)).status)) break;
    } catch (e) {
      if (signal.aborted || e.name === 'AbortError') return;
      if (e instanceof ApiError && e.status >= 400 && e.status < 500) {
        setText(page.logState, `Cannot read the log: ${e.message}`);
        return;
      }
      setText(page.logState, `Log connection lost (${e.message}); retrying…`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 500 * (attempt + 1))));
  }
  if (!signal.aborted) setText(page.logState, log.textContent ? 'Log (complete):' : 'This job wrote no log.');
}

// Appends log text without terminal escape sequences; a sequence cut by a chunk boundary is
// held back until the next chunk.
function appendLog(page, chunk) {
  const { log } = page;
  let text = (page.logCarry || '') + chunk;
  page.logCarry = '';
  const escape = text.lastIndexOf('\x1b');
  if (escape !== -1 && escape > text.length - 32 && !/^\x1b\[[0-?]*[ -\/]*[@-~]/.test(text.slice(escape))) {
    page.logCarry = text.slice(escape);
    text = text.slice(0, escape);
  }
  text = text.replace(ANSI_SEQUENCE, '').replace(BIDI_CONTROLS, (c) => visibleName(c));
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
  log.append(text);
  if (log.textContent.length > MAX_LOG_CHARS) log.textContent = log.textContent.slice(-MAX_LOG_CHARS / 2);
  if (atBottom) log.scrollTop = log.scrollHeight;
}

async function manifestOf(snapshotId, signal) {
  const snapshot = await api.snapshot(snapshotId, signal);
  return api.manifest(snapshot.manifest_hash, signal);
}

async function loadChanges(page) {
  const { job, signal } = page;
  fill(page.changes, el('p', { class: 'muted' }, 'Loading the changes…'));
  const workspace = await api.workspace(job.workspace_id, signal);
  const [base, output] = await Promise.all([
    workspace.base_snapshot_id ? manifestOf(workspace.base_snapshot_id, signal) : null,
    manifestOf(job.output_snapshot_id, signal),
  ]);
  page.outputManifest = output;
  page.download.hidden = false;
  const changes = compareManifests(base, output);
  const count = (kind) => changes.filter((c) => c.kind === kind).length;
  const list = el('ul', { class: 'changes', id: 'change-list' });
  fill(page.changes,
    el('p', { id: 'change-summary' }, changes.length === 0
      ? 'No files changed.'
      : `${changes.length} file${changes.length === 1 ? '' : 's'} changed: ${count('added')} added, ` +
        `${count('modified')} modified, ${count('deleted')} deleted` +
        (base ? '' : ' (the workspace has no base snapshot)') + '.'),
    list);
  const queue = [];
  if (changes.length > MAX_CHANGES_LISTED) {
    page.changes.append(el('p', { class: 'notice' },
      `Showing the first ${MAX_CHANGES_LISTED} of ${changes.length} changed files; download the output for all of them.`));
  }
  changes.slice(0, MAX_CHANGES_LISTED).forEach((change, index) => {
    const item = changeItem(change, index < OPEN_DIFFS);
    list.append(item.li);
    if (index < OPEN_DIFFS) queue.push(item);
    else item.details.addEventListener('toggle', () => item.load(signal), { once: true });
  });
  await pool(queue.map((item) => () => item.load(signal)), 4);
}

function changeItem(change, open) {
  const kind = el('span', { class: `kind k-${change.kind}` }, change.kind);
  const size = change.after ? formatBytes(change.after.size) : formatBytes(change.before.size);
  const summary = el('summary', {}, kind, el('span', { class: 'path' }, visibleName(change.path)), el('span', { class: 'muted' }, size));
  const body = el('div', { class: 'diff-note' }, 'Loading…');
  const details = el('details', { open }, summary, body);
  const li = el('li', { class: 'change', 'data-kind': change.kind }, details);
  let started = false;
  const load = async (signal) => {
    if (started) return;
    started = true;
    try {
      const result = await fileDiff(change, signal);
      if (result.binary) summary.append(el('span', { class: 'kind k-binary' }, 'binary'));
      body.replaceWith(result.node);
    } catch (e) {
      if (!signal.aborted) fill(body, `Cannot show this file: ${e.message}`);
    }
  };
  return { li, details, load };
}

async function fileDiff(change, signal) {
  const { before, after, path } = change;
  const modeNote = before && after && before.mode !== after.mode
    ? `Mode ${before.mode.toString(8)} → ${after.mode.toString(8)}. ` : '';
  const note = (text, binary = false) => ({ binary, node: el('p', { class: 'diff-note' }, modeNote + text) });
  if (before && after && before.hash === after.hash) return note('Contents unchanged.');
  if ((before && before.size > MAX_DIFF_BYTES) || (after && after.size > MAX_DIFF_BYTES)) {
    return note('Too large to show here; download the output to compare.');
  }
  const [oldBytes, newBytes] = await Promise.all([
    before ? api.blob(before.hash, signal) : new Uint8Array(0),
    after ? api.blob(after.hash, signal) : new Uint8Array(0),
  ]);
  const oldText = decodeText(oldBytes);
  const newText = decodeText(newBytes);
  if (oldText === null || newText === null) {
    return note(`Binary file ${change.kind === 'modified' ? 'differs' : change.kind} (${formatBytes((after || before).size)}).`, true);
  }
  const ops = diffLines(splitLines(oldText), splitLines(newText));
  if (ops === null) return note('Too many changed lines to show here.');
  const shownPath = visibleName(path);
  const pre = el('pre', { class: 'diff', tabindex: '0', 'aria-label': `Diff of ${shownPath}` },
    el('span', { class: 'hunk' }, `--- ${before ? `a/${shownPath}` : '/dev/null'}\n+++ ${after ? `b/${shownPath}` : '/dev/null'}`));
  const shown = hunks(ops);
  for (const hunk of shown) {
    pre.append(el('span', { class: 'hunk' }, hunk.header));
    for (const line of hunk.lines) {
      const cls = line.op === '+' ? 'add' : line.op === '-' ? 'del' : 'ctx';
      pre.append(el('span', { class: cls }, `${line.op}${visibleLine(line.line)}`));
    }
  }
  if (shown.length === 0) return note('Only the mode changed.');
  if (modeNote) return { binary: false, node: el('div', {}, el('p', { class: 'diff-note' }, modeNote), pre) };
  return { binary: false, node: pre };
}

// Runs async tasks with at most `limit` at once.
async function pool(tasks, limit) {
  let next = 0;
  const worker = async () => { while (next < tasks.length) await tasks[next++](); };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}

async function downloadTar(page) {
  const { outputManifest: manifest, signal } = page;
  page.download.disabled = true;
  try {
    let done = 0;
    const files = await fetchFiles(manifest, signal, () => {
      done++;
      setText(page.downloadState, `Fetching ${done} of ${manifest.files.length} files…`);
    });
    const { blob, skipped } = buildTar(files, Math.floor((parseTime(page.job.completed_at) ?? Date.now()) / 1000));
    saveBlob(blob, `fastest-${page.id}.tar`);
    setText(page.downloadState, skipped.length
      ? `Saved ${files.length - skipped.length} files; left out ${skipped.length} with unsafe names: ${skipped.map(visibleName).join(', ')}`
      : `Saved fastest-${page.id}.tar (${files.length} files, ${formatBytes(blob.size)}).`);
  } catch (e) {
    if (!signal.aborted) setText(page.downloadState, `Download failed: ${e.message}`);
  } finally {
    page.download.disabled = false;
  }
}

export async function fetchFiles(manifest, signal, onFile = () => {}) {
  const files = new Array(manifest.files.length);
  await pool(manifest.files.map((f, i) => async () => {
    files[i] = { path: f.path, mode: f.mode, bytes: await api.blob(f.hash, signal) };
    onFile();
  }), 4);
  return files;
}

export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
