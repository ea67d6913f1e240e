// The dashboard's pure modules checked against the real tools: diff.js against GNU diff, tar.js
// against GNU tar. Run by //tests/dashboard:dashboard_units_test (needs node, diff, tar).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const assets = process.env.DASHBOARD_ASSETS || path.join(here, '../../server/dashboard/assets');
const TMP = process.env.TEST_TMPDIR || '/tmp';

// The assets are browser modules without imports; a data: URL loads them as ES modules on
// every node version, whatever package.json says about .js files.
const load = (name) => import(`data:text/javascript;base64,${readFileSync(path.join(assets, name)).toString('base64')}`);
const { compareManifests, decodeText, diffLines, hunks, splitLines } = await load('diff.js');
const { buildTar, isSafePath } = await load('tar.js');

let passed = 0;
function check(condition, message) {
  if (!condition) {
    console.error(`FAIL: ${message}`);
    process.exit(1);
  }
  passed++;
}

// ---------------------------------------------------------------- diff.js vs GNU diff
let seed = 42;
const random = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const randomLines = (n) => Array.from({ length: n }, () => 'abcde'[Math.floor(random() * 5)]);
const unified = (a, b) => hunks(diffLines(a, b)).map((h) => [h.header, ...h.lines.map((l) => l.op + l.line)].join('\n')).join('\n');

for (let i = 0; i < 200; i++) {
  const a = randomLines(Math.floor(random() * 30));
  const b = random() < 0.3 ? randomLines(Math.floor(random() * 30))
    : a.filter(() => random() > 0.2).map((l) => (random() < 0.1 ? 'x' : l));
  const ops = diffLines(a, b);
  check(JSON.stringify(ops.filter((o) => o.op !== '+').map((o) => o.line)) === JSON.stringify(a), `case ${i}: the script keeps a`);
  check(JSON.stringify(ops.filter((o) => o.op !== '-').map((o) => o.line)) === JSON.stringify(b), `case ${i}: the script builds b`);
  const fa = path.join(TMP, 'a.txt');
  const fb = path.join(TMP, 'b.txt');
  writeFileSync(fa, a.map((l) => `${l}\n`).join(''));
  writeFileSync(fb, b.map((l) => `${l}\n`).join(''));
  let gnu = '';
  try { gnu = execFileSync('diff', ['--minimal', '-U0', fa, fb], { encoding: 'utf8' }); } catch (e) { gnu = e.stdout; }
  const gnuEdits = gnu.split('\n').slice(2).filter((l) => l.startsWith('+') || l.startsWith('-')).length;
  const ourEdits = ops.filter((o) => o.op !== ' ').length;
  check(ourEdits === gnuEdits, `case ${i}: a minimal script (${ourEdits} edits, GNU diff ${gnuEdits})`);
  // Hunk headers must agree with the lines they hold.
  for (const h of hunks(ops)) {
    const m = /^@@ -(\d+),(\d+) \+(\d+),(\d+) @@$/.exec(h.header);
    check(m && Number(m[2]) === h.lines.filter((l) => l.op !== '+').length &&
      Number(m[4]) === h.lines.filter((l) => l.op !== '-').length, `case ${i}: header ${h.header} counts its lines`);
  }
}
// Exact GNU output for unambiguous edits.
{
  const a = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15'];
  const b = ['1', '2', 'two-b', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '14', '15', '16'];
  writeFileSync(path.join(TMP, 'a.txt'), a.map((l) => `${l}\n`).join(''));
  writeFileSync(path.join(TMP, 'b.txt'), b.map((l) => `${l}\n`).join(''));
  let gnu = '';
  try { gnu = execFileSync('diff', ['-U3', path.join(TMP, 'a.txt'), path.join(TMP, 'b.txt')], { encoding: 'utf8' }); } catch (e) { gnu = e.stdout; }
  const gnuBody = gnu.split('\n').slice(2).join('\n').trimEnd();
  check(unified(a, b) === gnuBody, `same hunks as GNU diff -U3:\n${unified(a, b)}\n---\n${gnuBody}`);
  check(unified(['x'], []) === '@@ -1,1 +0,0 @@\n-x' && unified([], ['y']) === '@@ -0,0 +1,1 @@\n+y', 'whole-file add and delete headers');
  check(diffLines(randomLines(3000), randomLines(3000), 50) === null, 'too many edits -> null');
}
check(decodeText(new Uint8Array([0x68, 0, 0x69])) === null && decodeText(new Uint8Array([0xff, 0xfe])) === null &&
  decodeText(new TextEncoder().encode('héllo')) === 'héllo', 'binary detection: NUL bytes and invalid UTF-8');
check(JSON.stringify(splitLines('a\nb\n')) === '["a","b"]' && JSON.stringify(splitLines('a\nb')) === '["a","b"]' &&
  splitLines('').length === 0, 'line splitting');
{
  const f = (p, h, mode = 420) => ({ path: p, hash: h, size: 1, mode });
  const changes = compareManifests({ files: [f('a', '1'), f('b', '2'), f('c', '3')] },
    { files: [f('a', '1'), f('b', '9'), f('c', '3', 493), f('d', '4')] });
  check(changes.map((c) => `${c.kind}:${c.path}`).join(',') === 'modified:b,modified:c,added:d', 'manifest comparison');
  check(compareManifests(null, { files: [f('a', '1')] })[0].kind === 'added', 'no base: everything is added');
}

// ---------------------------------------------------------------- tar.js vs GNU tar
{
  const enc = new TextEncoder();
  const long = `${'d'.repeat(120)}/${'f'.repeat(90)}.txt`;          // ustar prefix + name
  const veryLong = `${'x'.repeat(60)}/`.repeat(6) + 'end.txt';      // pax path record
  const files = [
    { path: 'README.md', mode: 420, bytes: enc.encode('hello\n') },
    { path: 'bin/run.sh', mode: 493, bytes: enc.encode('#!/bin/sh\necho hi\n') },
    { path: 'empty', mode: 384, bytes: new Uint8Array(0) },
    { path: 'blocks.bin', mode: 420, bytes: new Uint8Array(1024).map((_, i) => i % 251) },
    { path: 'ünï cødé.txt', mode: 420, bytes: enc.encode('utf-8 name\n') },
    { path: long, mode: 420, bytes: enc.encode('long\n') },
    { path: veryLong, mode: 420, bytes: enc.encode('very long\n') },
    { path: '../escape', mode: 420, bytes: enc.encode('no\n') },
    { path: '/etc/passwd', mode: 420, bytes: enc.encode('no\n') },
    { path: 'a/./b', mode: 420, bytes: enc.encode('no\n') },
  ];
  const { blob, skipped } = buildTar(files, 1700000000);
  check(JSON.stringify(skipped) === JSON.stringify(['../escape', '/etc/passwd', 'a/./b']), `unsafe names are left out: ${skipped}`);
  check(!isSafePath('') && !isSafePath('a//b') && isSafePath('a/b.c'), 'isSafePath');
  const tarFile = path.join(TMP, 'out.tar');
  writeFileSync(tarFile, Buffer.from(await blob.arrayBuffer()));
  check(statSync(tarFile).size % 512 === 0, 'the archive is whole blocks');
  const listing = execFileSync('tar', ['--quoting-style=literal', '-tf', tarFile], { encoding: 'utf8' }).trim().split('\n');
  const kept = files.filter((f) => !skipped.includes(f.path));
  check(JSON.stringify(listing) === JSON.stringify(kept.map((f) => f.path)), `GNU tar lists every file:\n${listing.join('\n')}`);
  const out = path.join(TMP, 'extracted');
  mkdirSync(out, { recursive: true });
  execFileSync('tar', ['-xf', tarFile, '-C', out]);
  for (const f of kept) {
    const p = path.join(out, f.path);
    check(Buffer.compare(readFileSync(p), Buffer.from(f.bytes)) === 0, `${f.path}: contents`);
    check((statSync(p).mode & 0o777) === f.mode, `${f.path}: mode ${f.mode.toString(8)}`);
    check(Math.floor(statSync(p).mtimeMs / 1000) === 1700000000, `${f.path}: mtime`);
  }
}

console.log(`${passed} passed, 0 failed`);
