// Jobs: a live list (polled every 1.5 s), filtered by status and project. Rows are updated in
// place so focus and scrolling survive each refresh.
import { api } from './api.js';
import { badge, el, fill, formatDuration, formatTime, jobDuration, link, setText } from './dom.js';

const POLL_MS = 1500;
const STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'];

export async function render(view, _params, signal) {
  const statusSelect = el('select', { id: 'filter-status' },
    el('option', { value: '' }, 'All'), STATUSES.map((s) => el('option', { value: s }, s)));
  const projectSelect = el('select', { id: 'filter-project' }, el('option', { value: '' }, 'All projects'));
  const updated = el('span', { class: 'muted', 'aria-live': 'off' });
  const error = el('p', { class: 'error', role: 'alert' });
  const tbody = el('tbody');
  const empty = el('p', { class: 'muted', hidden: true }, 'No jobs match.');
  fill(view,
    el('h1', {}, 'Jobs'),
    el('div', { class: 'toolbar' },
      el('div', { class: 'field' }, el('label', { for: 'filter-status' }, 'Status'), statusSelect),
      el('div', { class: 'field' }, el('label', { for: 'filter-project' }, 'Project'), projectSelect),
      el('span', { class: 'spacer' }), updated),
    error,
    el('div', { class: 'table-wrap' },
      el('table', { id: 'jobs-table' },
        el('caption', { class: 'sr-only' }, 'Jobs, newest first, updated live'),
        el('thead', {}, el('tr', {},
          el('th', { scope: 'col' }, 'Job'), el('th', { scope: 'col' }, 'Status'),
          el('th', { scope: 'col', class: 'opt' }, 'Project'),
          el('th', { scope: 'col' }, 'Duration'), el('th', { scope: 'col' }, 'Prompt'),
          el('th', { scope: 'col', class: 'opt' }, 'Created'))),
        tbody)),
    empty);

  const projectNames = new Map();
  try {
    for (const p of await api.projects(signal)) {
      projectNames.set(p.id, p.name);
      projectSelect.append(el('option', { value: p.id }, p.name));
    }
  } catch (e) {
    if (signal.aborted) return;
    error.textContent = `Projects: ${e.message}`;
  }

  const rows = new Map();
  let timer = 0;
  const refresh = async () => {
    clearTimeout(timer);
    try {
      const list = await api.jobs({ status: statusSelect.value, project_id: projectSelect.value }, signal);
      renderRows(tbody, rows, list, projectNames);
      empty.hidden = list.length > 0;
      setText(error, '');
      setText(updated, `Updated ${new Date().toLocaleTimeString()}`);
    } catch (e) {
      if (signal.aborted) return;
      setText(error, `Cannot load jobs: ${e.message}`);
    }
    if (!signal.aborted) timer = setTimeout(refresh, POLL_MS);
  };
  statusSelect.addEventListener('change', refresh);
  projectSelect.addEventListener('change', refresh);
  signal.addEventListener('abort', () => clearTimeout(timer));
  await refresh();
}

function renderRows(tbody, rows, list, projectNames) {
  const seen = new Set();
  list.forEach((job, index) => {
    seen.add(job.id);
    let row = rows.get(job.id);
    if (!row) {
      row = makeRow(job);
      rows.set(job.id, row);
    }
    updateRow(row, job, projectNames);
    // Move only rows that are out of place: moving a node would drop its focus.
    if (tbody.children[index] !== row.tr) tbody.insertBefore(row.tr, tbody.children[index] || null);
  });
  for (const [id, row] of rows) {
    if (!seen.has(id)) { row.tr.remove(); rows.delete(id); }
  }
}

function makeRow(job) {
  const cells = {
    status: el('td'), project: el('td', { class: 'opt' }),
    duration: el('td', { class: 'num' }), prompt: el('td', { class: 'prompt' }),
    created: el('td', { class: 'opt num' }),
  };
  const tr = el('tr', { 'data-job-id': job.id },
    el('td', { class: 'mono' }, link('jobs', job.id, job.id.slice(-8))),
    cells.status, cells.project, cells.duration, cells.prompt, cells.created);
  return { tr, cells, status: null };
}

function updateRow(row, job, projectNames) {
  if (row.status !== job.status) {
    fill(row.cells.status, badge(job.status));
    row.status = job.status;
    row.tr.dataset.status = job.status;
  }
  setText(row.cells.project, projectNames.get(job.project_id) ?? job.project_id);
  setText(row.cells.duration, formatDuration(jobDuration(job)));
  const prompt = String(job.prompt ?? '');
  setText(row.cells.prompt, prompt.length > 140 ? `${prompt.slice(0, 140)}…` : prompt);
  setText(row.cells.created, formatTime(job.created_at));
}
