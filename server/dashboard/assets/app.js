// The dashboard's shell: sign-in, hash routes, and one page at a time. Each page module
// exports render(view, params, signal); the signal aborts its polls and streams when the user
// leaves the page.
import { ApiError, call, onUnauthorized, session } from './api.js';
import { el, fill } from './dom.js';
import * as jobs from './jobs.js';
import * as job from './job.js';
import * as projects from './projects.js';
import * as status from './status.js';

const routes = [
  { pattern: /^\/jobs$/, page: jobs, nav: 'jobs', title: 'Jobs' },
  { pattern: /^\/jobs\/([^/]+)$/, page: job, nav: 'jobs', title: 'Job' },
  { pattern: /^\/projects$/, page: projects, nav: 'projects', title: 'Projects' },
  { pattern: /^\/projects\/([^/]+)$/, page: projects, nav: 'projects', title: 'Project' },
  { pattern: /^\/snapshots\/([^/]+)$/, page: projects, nav: 'projects', title: 'Snapshot', snapshot: true },
  { pattern: /^\/status$/, page: status, nav: 'status', title: 'Status' },
];

const $ = (id) => document.getElementById(id);
let current = null;  // AbortController of the page on screen

function showSignIn(message = '') {
  if (current) current.abort();
  current = null;
  $('nav').hidden = true;
  $('view').replaceChildren();
  $('signin').hidden = false;
  $('signin-error').textContent = message;
  document.title = 'Sign in · fastest';
  $('token').focus();
}

async function signIn(event) {
  event.preventDefault();
  const token = $('token').value.trim();
  const error = $('signin-error');
  if (!token) { error.textContent = 'Enter an API token.'; return; }
  error.textContent = '';
  const button = event.target.querySelector('button');
  button.disabled = true;
  try {
    await call('/v1/projects', { token });
    session.signIn(token);
    $('token').value = '';
    if (!location.hash || location.hash === '#/') location.hash = '#/jobs';
    route();
  } catch (e) {
    error.textContent = e instanceof ApiError && e.status === 401
      ? 'That token was not accepted (401 Unauthorized). Check it and try again.'
      : `Cannot sign in: ${e.message}`;
    $('token').select();
  } finally {
    button.disabled = false;
  }
}

function route() {
  if (!session.token()) { showSignIn(); return; }
  const path = decodeURIComponent(location.hash.replace(/^#/, '')) || '/jobs';
  const match = routes.map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m);
  if (current) current.abort();
  current = new AbortController();
  $('signin').hidden = true;
  $('nav').hidden = false;
  const view = $('view');
  if (!match) {
    fill(view, el('h1', {}, 'Not found'), el('p', {}, el('a', { href: '#/jobs' }, 'Back to the jobs')));
    return;
  }
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.route === match.r.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${match.r.title} · fastest`;
  view.replaceChildren();
  const signal = current.signal;
  Promise.resolve(match.r.page.render(view, match.m.slice(1), signal, match.r))
    .catch((e) => {
      if (signal.aborted || e.name === 'AbortError') return;
      fill(view, el('p', { class: 'error', role: 'alert' }, `Could not load this page: ${e.message}`));
    });
  $('main').focus({ preventScroll: true });
}

function signOut() {
  session.signOut();
  showSignIn('Signed out.');
}

onUnauthorized(() => {
  session.signOut();
  showSignIn('The server no longer accepts this token (401). Sign in again.');
});

document.addEventListener('DOMContentLoaded', () => {
  $('signin-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  window.addEventListener('hashchange', route);
  route();
});
