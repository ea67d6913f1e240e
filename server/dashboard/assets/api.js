// The /v1 API client of the dashboard. The token lives in sessionStorage (this tab only) and
// travels only in the Authorization header: never in a URL, never logged.
const TOKEN_KEY = 'fastest.token';

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  signIn: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  signOut: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let unauthorizedHandler = () => {};
// Called when the server answers 401 to a signed-in request (token revoked or expired).
export function onUnauthorized(fn) { unauthorizedHandler = fn; }

async function errorFrom(res) {
  let code = `HTTP_${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const body = await res.json();
    if (body && body.error && typeof body.error === 'object') {
      code = String(body.error.code || code);
      message = String(body.error.message || message);
    }
  } catch { /* not the error JSON shape */ }
  return new ApiError(res.status, code, message);
}

// fetch() with the Bearer header. Answers other than 2xx become ApiError; so does a network
// failure (status 0). `token` overrides the stored one (sign-in checks a new token).
export async function call(path, { method = 'GET', body, signal, token, cache = 'no-store' } = {}) {
  const headers = { Authorization: `Bearer ${token ?? session.token() ?? ''}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method, headers, signal, cache, credentials: 'omit', referrerPolicy: 'no-referrer',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'NETWORK', 'Cannot reach the server');
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && token === undefined) unauthorizedHandler();
    throw err;
  }
  return res;
}

const json = async (path, opts) => (await call(path, opts)).json();
const q = encodeURIComponent;

export const api = {
  jobs: (filter = {}, signal) => {
    const params = new URLSearchParams({ limit: '100' });
    for (const key of ['status', 'project_id', 'workspace_id']) {
      if (filter[key]) params.set(key, filter[key]);
    }
    return json(`/v1/jobs?${params}`, { signal }).then((r) => r.jobs);
  },
  job: (id, signal) => json(`/v1/jobs/${q(id)}`, { signal }).then((r) => r.job),
  cancel: (id) => json(`/v1/jobs/${q(id)}/cancel`, { method: 'POST' }).then((r) => r.job),
  projects: (signal) => json('/v1/projects', { signal }).then((r) => r.projects),
  project: (id, signal) => json(`/v1/projects/${q(id)}`, { signal }),
  workspaces: (projectId, signal) =>
    json(`/v1/projects/${q(projectId)}/workspaces`, { signal }).then((r) => r.workspaces),
  snapshots: (projectId, signal) =>
    json(`/v1/projects/${q(projectId)}/snapshots?limit=100`, { signal }).then((r) => r.snapshots),
  workspace: (id, signal) => json(`/v1/workspaces/${q(id)}`, { signal }).then((r) => r.workspace),
  snapshot: (id, signal) => json(`/v1/snapshots/${q(id)}`, { signal }).then((r) => r.snapshot),
  // Manifests and blobs are content-addressed and immutable: the browser cache may keep them.
  manifest: (hash, signal) =>
    json(`/v1/blobs/manifests/${q(hash)}`, { signal, cache: 'default' }).then(checkManifest),
  blob: async (hash, signal) => {
    const res = await call(`/v1/blobs/download/${q(hash)}`, { signal, cache: 'default' });
    const bytes = new Uint8Array(await res.arrayBuffer());
    await verifyHash(bytes, hash);
    return bytes;
  },
  health: async () => {
    const res = await fetch('/health', { cache: 'no-store', credentials: 'omit' });
    if (!res.ok) throw await errorFrom(res);
    return res.json();
  },
  metrics: (signal) => call('/metrics', { signal }).then((r) => r.text()),
};

function checkManifest(m) {
  if (!m || !Array.isArray(m.files)) throw new ApiError(0, 'BAD_MANIFEST', 'Manifest has no file list');
  return m;
}

// Blobs are checked against their hash when the page can (crypto.subtle needs a secure
// context: https, localhost or 127.0.0.1).
async function verifyHash(bytes, hash) {
  if (!globalThis.crypto || !crypto.subtle) return;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  if (hex !== hash) throw new ApiError(0, 'HASH_MISMATCH', `Blob ${hash.slice(0, 12)}… does not match its hash`);
}

// Follows a job's log (`?follow=1`) with fetch streaming, calling onText for each decoded
// chunk. Resolves with the byte offset reached when the server ends the stream.
export async function followLog(jobId, offset, onText, signal) {
  const res = await call(`/v1/jobs/${q(jobId)}/logs?follow=1&offset=${offset}`, { signal });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let reached = offset;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    reached += value.byteLength;
    onText(decoder.decode(value, { stream: true }));
  }
  const rest = decoder.decode();
  if (rest) onText(rest);
  return reached;
}
