// Projects, one project's workspaces and snapshots, and one snapshot's files (with a tar
// download of them).
import { api } from './api.js';
import { el, fill, formatBytes, formatTime, link, visibleName } from './dom.js';
import { fetchFiles, saveBlob } from './job.js';
import { buildTar } from './tar.js';

export async function render(view, [id], signal, routeInfo) {
  if (routeInfo.snapshot) return renderSnapshot(view, id, signal);
  if (id) return renderProject(view, id, signal);
  const projects = await api.projects(signal);
  fill(view, el('h1', {}, 'Projects'),
    projects.length === 0
      ? el('p', { class: 'muted' }, 'No projects yet. Create one with the fastest CLI.')
      : table(['Name', 'Id', 'Last snapshot', 'Updated'], projects.map((p) => [
        link('projects', p.id, p.name), el('span', { class: 'mono' }, p.id),
        p.last_snapshot_id ? link('snapshots', p.last_snapshot_id, p.last_snapshot_id.slice(-8)) : '—',
        formatTime(p.updated_at)]), 'projects-table'));
}

async function renderProject(view, id, signal) {
  const [detail, workspaces, snapshots] = await Promise.all([
    api.project(id, signal), api.workspaces(id, signal), api.snapshots(id, signal)]);
  const project = detail.project;
  fill(view,
    el('p', {}, el('a', { href: '#/projects' }, '← Projects')),
    el('h1', {}, project.name),
    el('p', { class: 'muted mono' }, project.id),
    el('h2', {}, 'Workspaces'),
    workspaces.length === 0 ? el('p', { class: 'muted' }, 'No workspaces.')
      : table(['Name', 'Base snapshot', 'Machine', 'Last seen', 'Drift'], workspaces.map((w) => [
        w.name,
        w.base_snapshot_id ? link('snapshots', w.base_snapshot_id, w.base_snapshot_id.slice(-8)) : '—',
        w.machine_id ?? '—', formatTime(w.last_seen_at),
        w.drift ? `+${w.drift.files_added} ~${w.drift.files_modified} −${w.drift.files_deleted}` : '—']),
      'workspaces-table'),
    el('h2', {}, 'Snapshots'),
    snapshots.length === 0 ? el('p', { class: 'muted' }, 'No snapshots.')
      : table(['Snapshot', 'Source', 'Parent', 'Manifest', 'Created'], snapshots.map((s) => [
        link('snapshots', s.id, s.id.slice(-8)), s.source,
        s.parent_snapshot_id ? link('snapshots', s.parent_snapshot_id, s.parent_snapshot_id.slice(-8)) : '—',
        el('span', { class: 'mono' }, String(s.manifest_hash).slice(0, 12)), formatTime(s.created_at)]),
      'snapshots-table'));
}

async function renderSnapshot(view, id, signal) {
  const snapshot = await api.snapshot(id, signal);
  const manifest = await api.manifest(snapshot.manifest_hash, signal);
  const total = manifest.files.reduce((sum, f) => sum + (Number(f.size) || 0), 0);
  const state = el('p', { class: 'muted', 'aria-live': 'polite' });
  const download = el('button', { type: 'button', class: 'secondary', id: 'download-snapshot' }, 'Download (.tar)');
  download.addEventListener('click', async () => {
    download.disabled = true;
    try {
      setState(state, 'Fetching files…');
      const files = await fetchFiles(manifest, signal);
      const { blob, skipped } = buildTar(files);
      saveBlob(blob, `fastest-snapshot-${id}.tar`);
      setState(state, skipped.length ? `Left out ${skipped.length} files with unsafe names.` : 'Saved.');
    } catch (e) {
      setState(state, `Download failed: ${e.message}`);
    } finally {
      download.disabled = false;
    }
  });
  fill(view,
    el('p', {}, link('projects', snapshot.project_id, '← Project')),
    el('div', { class: 'detail-head' }, el('h1', {}, 'Snapshot ', el('span', { class: 'mono' }, id)), download),
    el('p', { class: 'muted' }, `${manifest.files.length} files, ${formatBytes(total)} · source ${snapshot.source} · ${formatTime(snapshot.created_at)}`),
    state,
    table(['Path', 'Size', 'Mode'], manifest.files.map((f) => [
      el('span', { class: 'path' }, visibleName(f.path)), formatBytes(Number(f.size) || 0), Number(f.mode).toString(8)]),
    'files-table'));
}

function setState(node, text) { node.textContent = text; }

export function table(headings, rows, id) {
  return el('div', { class: 'table-wrap' }, el('table', { id },
    el('thead', {}, el('tr', {}, headings.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows.map((cells) => el('tr', {}, cells.map((c) => el('td', {}, c)))))));
}
