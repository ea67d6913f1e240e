// Browser test of the fastest dashboard: a real headless Chromium (Debian's `chromium`)
// driven by puppeteer-core against a running fastest-server. Run by
// //tests/dashboard:dashboard_browser_test, which starts the server and sets:
//   DASHBOARD_URL (http://127.0.0.1:PORT/), DASHBOARD_TOKEN, DASHBOARD_ARTIFACTS (screenshots),
//   DASHBOARD_TMP (scratch directory).
// Optional: CHROMIUM (browser path), FASTEST_DASHBOARD_NODE_MODULES (where puppeteer-core is).
// Exits non-zero on the first failed assertion; prints "N passed, 0 failed" when all pass.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const INSTALL_HINT = 'run `bash tools/setup.sh` (apt-get install chromium; npm install --prefix tests/dashboard)';

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

async function loadPuppeteer() {
  const dir = process.env.FASTEST_DASHBOARD_NODE_MODULES || path.join(here, 'node_modules');
  try {
    const require = createRequire(path.join(dir, 'noop.js'));
    const mod = await import(pathToFileURL(require.resolve('puppeteer-core')).href);
    return mod.default ?? mod;
  } catch (e) {
    fail(`puppeteer-core is missing in ${dir} (${e.message}): ${INSTALL_HINT}`);
  }
}

function findChromium() {
  const candidates = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  const found = candidates.find((c) => c && existsSync(c));
  if (!found) fail(`chromium is missing: ${INSTALL_HINT}`);
  return found;
}

const BASE = process.env.DASHBOARD_URL || fail('DASHBOARD_URL is not set');
const TOKEN = process.env.DASHBOARD_TOKEN || fail('DASHBOARD_TOKEN is not set');
const ARTIFACTS = process.env.DASHBOARD_ARTIFACTS || path.join(process.env.DASHBOARD_TMP || '/tmp', 'artifacts');
const TMP = process.env.DASHBOARD_TMP || fail('DASHBOARD_TMP is not set');
mkdirSync(ARTIFACTS, { recursive: true });

let passed = 0;
function check(condition, message) {
  if (!condition) fail(message);
  passed++;
  console.log(`ok ${passed} - ${message}`);
}

// ---------------------------------------------------------------- seeding through the API
async function api(method, route, body, raw = false) {
  const res = await fetch(new URL(route, BASE), {
    method,
    headers: { Authorization: `Bearer ${TOKEN}` },
    body: body === undefined ? undefined : (typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body)),
  });
  const text = await res.text();
  if (!res.ok) fail(`${method} ${route} -> ${res.status} ${text}`);
  return raw ? text : JSON.parse(text);
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

// Uploads the files' blobs and their manifest (canonical form, PROTOCOLS §2.2) and creates a
// snapshot. files: {path: string|Uint8Array}.
async function snapshot(projectId, files) {
  const entries = [];
  for (const [p, content] of Object.entries(files)) {
    const bytes = typeof content === 'string' ? Buffer.from(content) : Buffer.from(content);
    const hash = sha256(bytes);
    await api('PUT', `/v1/blobs/upload/${hash}`, bytes);
    entries.push({ path: p, hash, size: bytes.length, mode: 420 });
  }
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const manifest = JSON.stringify({ version: '1', files: entries }, null, 2);
  const hash = sha256(Buffer.from(manifest));
  await api('PUT', `/v1/blobs/manifests/${hash}`, manifest);
  const id = (await api('POST', `/v1/projects/${projectId}/snapshots`, { manifest_hash: hash })).snapshot.id;
  manifestOf[id] = hash;
  // The stand-in runner uploads it again with its own job token (a job may only create a snapshot
  // of a manifest it uploaded) and reports that snapshot.
  const dir = path.join(process.env.DASHBOARD_TMP, 'manifests');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, hash), manifest);
  return id;
}
// Snapshot id -> manifest hash, named in the prompt of a job that should end with that output.
const manifestOf = {};

const XSS_NAME = '<img src=x onerror="window.__xss=(window.__xss||[]).concat(\'name\')">.txt';
const XSS_TEXT = '<img src=x onerror="window.__xss=(window.__xss||[]).concat(\'diff\')">\n<script>window.__xss=1</script>\n';

const project = (await api('POST', '/v1/projects', { name: 'demo-app' })).project;
const base = await snapshot(project.id, {
  'README.md': '# demo\nhello\nworld\n',
  'src/main.c': 'int main(void) {\n  return 0;\n}\n',
  'logo.bin': new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3]),
  'old.txt': 'to be removed\n',
});
const outputFiles = {
  'README.md': '# demo\nhello\nfastest\n',
  'src/main.c': 'int main(void) {\n  return 0;\n}\n',
  'logo.bin': new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 9, 9, 9]),
  'docs/new.txt': 'a new file\n',
};
const output = await snapshot(project.id, outputFiles);
const xssOutput = await snapshot(project.id, {
  'README.md': `# demo\nhello\n${XSS_TEXT}`,
  [XSS_NAME]: XSS_TEXT,
  'evil\u202Etxt.sh': 'echo "hidden \u202E code"\n',
});
const workspace = (await api('POST', `/v1/projects/${project.id}/workspaces`,
  { name: 'main', base_snapshot_id: base })).workspace;
const createJob = async (prompt) =>
  (await api('POST', '/v1/jobs', { workspace_id: workspace.id, prompt })).job;

// ---------------------------------------------------------------- the page's HTTP headers
{
  const res = await fetch(BASE);
  const csp = res.headers.get('content-security-policy') || '';
  check(res.status === 200 && res.headers.get('content-type') === 'text/html; charset=utf-8', 'GET / serves the page as text/html');
  check(csp.startsWith("default-src 'self'") && !csp.includes('unsafe'), `strict CSP without unsafe-*: ${csp}`);
  check(res.headers.get('x-content-type-options') === 'nosniff' && res.headers.get('x-frame-options') === 'DENY' &&
    res.headers.get('referrer-policy') === 'no-referrer' && res.headers.get('cache-control') === 'no-cache',
  'nosniff, DENY framing, no-referrer, no-cache');
  const js = await fetch(new URL('/dashboard/app.js', BASE));
  check(js.headers.get('content-type') === 'text/javascript; charset=utf-8', 'modules are served as JavaScript');
}

// ---------------------------------------------------------------- the browser
const puppeteer = await loadPuppeteer();
const browser = await puppeteer.launch({
  executablePath: findChromium(),
  headless: true,
  userDataDir: path.join(TMP, 'chromium-profile'),
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let exitCode = 0;
try {
  await run(browser);
  console.log(`${passed} passed, 0 failed`);
} catch (e) {
  console.error(`FAIL: ${e.stack || e}`);
  exitCode = 1;
} finally {
  await browser.close();
}
process.exit(exitCode);

async function run() {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  const requests = [];
  const pageErrors = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('dialog', (d) => { pageErrors.push(`dialog: ${d.message()}`); d.dismiss(); });
  // Any CSP violation means agent text reached the DOM as markup.
  await page.evaluateOnNewDocument(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const shot = async (name, fullPage = true) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage });
  const text = (selector) => page.$eval(selector, (n) => n.textContent);
  const waitText = (selector, needle, timeout = 15000) => page.waitForFunction(
    (s, t) => document.querySelector(s)?.textContent.includes(t), { timeout }, selector, needle);

  // Sign-in: a bad token is refused with a clear message; the good one gets in (keyboard only).
  await page.goto(BASE, { waitUntil: 'networkidle0' });
  await page.waitForSelector('#signin:not([hidden])');
  check(await page.$eval('#token', (n) => document.activeElement === n), 'the token field has focus on the sign-in page');
  await page.keyboard.type('not-a-valid-token');
  await page.keyboard.press('Enter');
  await waitText('#signin-error', 'not accepted');
  check((await text('#signin-error')).includes('401'), 'a bad token is refused with a clear message');
  await shot('01-signin-bad-token');
  await page.$eval('#token', (n) => { n.value = ''; });
  await page.type('#token', TOKEN);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#jobs-table');
  check(!page.url().includes(TOKEN), 'the token is not in the URL');
  check(await page.evaluate((t) => sessionStorage.getItem('fastest.token') === t && localStorage.length === 0, TOKEN),
    'the token is kept in sessionStorage only');

  // A job appears and completes live, without a reload.
  await page.evaluate(() => { window.__sameDocument = true; });
  const slow = await createJob(`slow:${manifestOf[output]} — update the README`);
  await page.waitForSelector(`tr[data-job-id="${slow.id}"]`, { timeout: 5000 });
  check(true, 'a new job appears in the list without a reload');
  await page.waitForSelector(`tr[data-job-id="${slow.id}"][data-status="running"]`, { timeout: 15000 });
  await shot('02-jobs-running');
  await page.waitForSelector(`tr[data-job-id="${slow.id}"][data-status="completed"]`, { timeout: 20000 });
  check(await page.evaluate(() => window.__sameDocument === true), 'the job went running -> completed live in the same page');
  const row = await text(`tr[data-job-id="${slow.id}"]`);
  check(row.includes('update the README') && /\d+s/.test(row), `the row shows prompt and duration: ${row}`);
  await shot('03-jobs');

  // Filters: status=failed hides the completed job.
  await page.select('#filter-status', 'failed');
  await page.waitForFunction((id) => !document.querySelector(`tr[data-job-id="${id}"]`), { timeout: 5000 }, slow.id);
  await page.select('#filter-status', '');
  await page.select('#filter-project', project.id);
  await page.waitForSelector(`tr[data-job-id="${slow.id}"]`, { timeout: 5000 });
  check(true, 'status and project filters apply');

  // Job detail: log, timeline, changes and diffs.
  await page.click(`tr[data-job-id="${slow.id}"] a`);
  await waitText('#job-log', 'Output snapshot:');
  const log = await text('#job-log');
  check(log.includes('agent: step 6 of 6') && log.includes('warning on stderr'), 'the job log shows runner and agent output');
  check(!log.includes(TOKEN), 'the log holds no token');
  await page.waitForSelector('#change-list li');
  await page.waitForFunction(() => document.querySelectorAll('#change-list pre.diff, #change-list .diff-note').length >= 4 &&
    !document.querySelector('#change-list').textContent.includes('Loading'), { timeout: 15000 });
  const changes = await page.$$eval('#change-list li', (lis) => lis.map((li) => `${li.dataset.kind} ${li.querySelector('.path').textContent}`));
  check(JSON.stringify(changes) === JSON.stringify(['added docs/new.txt', 'modified logo.bin', 'deleted old.txt', 'modified README.md']) ||
    JSON.stringify(changes.sort()) === JSON.stringify(['added docs/new.txt', 'deleted old.txt', 'modified README.md', 'modified logo.bin']),
  `the change list: ${changes.join(', ')}`);
  const readmeDiff = await page.$$eval('#change-list li', (lis) =>
    lis.find((li) => li.querySelector('.path').textContent === 'README.md').querySelector('pre.diff').textContent);
  check(readmeDiff.includes('@@ -1,3 +1,3 @@') && readmeDiff.includes('-world') && readmeDiff.includes('+fastest') && readmeDiff.includes(' hello'),
    'README.md shows a unified diff against the base');
  const binary = await page.$$eval('#change-list li', (lis) =>
    lis.find((li) => li.querySelector('.path').textContent === 'logo.bin').textContent);
  check(binary.includes('binary') && binary.includes('Binary file differs'), 'logo.bin is marked binary');
  const timeline = await text('#job-timeline');
  check(timeline.includes('Created') && timeline.includes('Started') && timeline.includes('Completed') && !timeline.includes('not yet'),
    'the timeline shows created, started and completed');
  check(await page.$eval('#cancel-job', (b) => b.hidden), 'a completed job has no cancel button');
  await shot('04-job-detail');

  // The output as a tar built in the browser.
  const downloads = path.join(TMP, 'downloads');
  mkdirSync(downloads, { recursive: true });
  const cdp = await page.createCDPSession();
  await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });
  await page.click('#download-tar');
  const tarName = `fastest-${slow.id}.tar`;
  for (let i = 0; i < 100 && !existsSync(path.join(downloads, tarName)); i++) await new Promise((r) => setTimeout(r, 100));
  await waitText('#download-state', 'Saved');
  const entries = readTar(readFileSync(path.join(downloads, tarName)));
  const expected = Object.entries(outputFiles).map(([p, c]) => `${p}:${sha256(Buffer.from(c))}`).sort();
  check(JSON.stringify(entries.map((e) => `${e.name}:${sha256(e.data)}`).sort()) === JSON.stringify(expected),
    `the tar holds the output's files: ${entries.map((e) => e.name).join(', ')} (${readdirSync(downloads).join(',')})`);

  // Cancel a running job.
  const sleeper = await createJob('sleep until cancelled');
  await page.goto(`${BASE}#/jobs/${sleeper.id}`);
  await waitText('#job-status', 'running', 15000);
  await waitText('#job-log', 'waiting to be cancelled');
  await shot('05-job-running');
  await page.focus('#cancel-job');
  await page.keyboard.press('Enter');
  await waitText('#job-status', 'cancelled', 10000);
  check((await api('GET', `/v1/jobs/${sleeper.id}`)).job.status === 'cancelled', 'the cancel button cancels the running job');
  await waitText('#log-state', 'complete', 15000);
  await shot('06-job-cancelled');

  // XSS: hostile prompt, log lines, file names and diff contents stay text.
  const xss = await createJob(`xss:${manifestOf[xssOutput]} <img src=x onerror="window.__xss=(window.__xss||[]).concat('prompt')">`);
  await page.goto(`${BASE}#/jobs`);
  await page.waitForSelector(`tr[data-job-id="${xss.id}"][data-status="completed"]`, { timeout: 20000 });
  await page.click(`tr[data-job-id="${xss.id}"] a`);
  await waitText('#job-log', 'log-script');
  await page.waitForFunction(() => document.querySelectorAll('#change-list pre.diff').length >= 3, { timeout: 15000 });
  const xssState = await page.evaluate(() => ({
    xss: window.__xss,
    csp: window.__csp,
    injected: document.querySelectorAll('#main img, #main script, #view [onerror]').length,
    names: [...document.querySelectorAll('#change-list .path')].map((n) => n.textContent),
    log: document.querySelector('#job-log').textContent,
    prompt: document.querySelector('#job-prompt').textContent,
    diffs: [...document.querySelectorAll('#change-list pre.diff')].map((n) => n.textContent).join('\n'),
  }));
  check(xssState.names.includes(XSS_NAME), 'a hostile file name is shown as text');
  check(xssState.names.includes('evil<U+202E>txt.sh') && xssState.diffs.includes('hidden <U+202E> code'),
    `bidi overrides in names and diffs are shown, not applied: ${xssState.names}`);
  check(xssState.log.includes('red alert in colour') && !xssState.log.includes('\x1b'), 'terminal colour codes are stripped from the log');
  check(xssState.log.includes('<img src=x onerror=') && xssState.prompt.includes('<img src=x onerror='), 'hostile log lines and prompts are shown as text');
  check(xssState.xss === undefined && xssState.injected === 0 && xssState.csp.length === 0,
    `no agent markup reached the DOM and no script ran: ${JSON.stringify(xssState.xss)} ${xssState.injected} ${xssState.csp}`);
  check(!requests.some((u) => new URL(u).pathname === '/x'), 'the planted <img src=x> was never fetched');
  await shot('07-job-xss');

  // Projects, workspaces, snapshots.
  await page.click('nav a[data-route="projects"]');
  await page.waitForSelector('#projects-table');
  await page.click('#projects-table a');
  await page.waitForSelector('#snapshots-table');
  const projectText = await text('#view');
  check(projectText.includes('demo-app') && projectText.includes('main') && (await page.$$('#snapshots-table tbody tr')).length === 3,
    'a project shows its workspaces and snapshots');
  await shot('08-project');
  await page.goto(`${BASE}#/snapshots/${output}`);
  await page.waitForSelector('#files-table');
  check((await text('#files-table')).includes('docs/new.txt'), "a snapshot lists its manifest's files");
  await shot('09-snapshot');

  // Status: health and metrics; a 403 from /metrics is explained, not an error.
  await page.click('nav a[data-route="status"]');
  await waitText('#metrics', 'Running sandboxes');
  check((await text('#health')).includes('ok'), 'the status page shows health');
  check((await text('#metrics')).includes('Jobs completed'), 'the status page shows the dispatcher metrics');
  await shot('10-status');
  // A non-admin token's 403 (the server decides who is admin; the page only has to cope).
  const forbidMetrics = (r) => (new URL(r.url()).pathname === '/metrics'
    ? r.respond({ status: 403, contentType: 'application/json', body: '{"error":{"code":"FORBIDDEN","message":"Admin token required"}}' })
    : r.continue());
  await page.setRequestInterception(true);
  page.on('request', forbidMetrics);
  await page.reload();
  await page.waitForSelector('#metrics-forbidden');
  check((await text('#metrics-forbidden')).includes('admin token'), 'a 403 from /metrics says an admin token is needed');
  page.off('request', forbidMetrics);
  await page.setRequestInterception(false);

  // 375 px wide: no horizontal scrolling of the page.
  await page.setViewport({ width: 375, height: 800 });
  for (const [route, name] of [[`#/jobs`, '11-mobile-jobs'], [`#/jobs/${slow.id}`, '12-mobile-job']]) {
    await page.goto(`${BASE}${route}`);
    await page.waitForSelector(route === '#/jobs' ? '#jobs-table tbody tr' : '#change-list pre.diff');
    check(await page.evaluate(() => document.documentElement.scrollWidth <= 375), `${name}: readable at 375 px`);
    await shot(name);
  }
  await page.setViewport({ width: 1200, height: 900 });

  // Sign out forgets the token.
  await page.goto(`${BASE}#/jobs`);
  await page.click('#sign-out');
  await page.waitForSelector('#signin:not([hidden])');
  check(await page.evaluate(() => sessionStorage.getItem('fastest.token') === null), 'sign out forgets the token');
  check(pageErrors.length === 0, `no page errors or dialogs: ${pageErrors.join('; ')}`);
}

// Minimal ustar reader (regular files; pax 'path' records) for checking the download.
function readTar(buf) {
  const out = [];
  let paxPath = null;
  for (let off = 0; off + 512 <= buf.length;) {
    const header = buf.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const str = (a, n) => header.subarray(a, a + n).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(str(124, 12), 8);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i];
    if (sum !== parseInt(str(148, 8), 8)) fail(`tar checksum mismatch at ${off}`);
    if (str(257, 6) !== 'ustar') fail('not a ustar archive');
    const data = buf.subarray(off + 512, off + 512 + size);
    const type = str(156, 1);
    if (type === 'x') {
      const m = /\d+ path=(.*)\n/.exec(data.toString('utf8'));
      paxPath = m ? m[1] : null;
    } else {
      const prefix = str(345, 155);
      out.push({ name: paxPath ?? (prefix ? `${prefix}/${str(0, 100)}` : str(0, 100)), data });
      paxPath = null;
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}
