// Line diffs (Myers' O(ND) algorithm) and unified-diff hunks, plus the comparison of two
// snapshot manifests. Pure functions: no DOM.

// The files that differ between two manifests ({files:[{path,hash,size,mode}]}; base may be
// null for "no base"). Sorted by path.
export function compareManifests(base, output) {
  const before = new Map((base ? base.files : []).map((f) => [f.path, f]));
  const after = new Map(output.files.map((f) => [f.path, f]));
  const changes = [];
  for (const [path, f] of after) {
    const old = before.get(path);
    if (!old) changes.push({ path, kind: 'added', before: null, after: f });
    else if (old.hash !== f.hash || old.mode !== f.mode) changes.push({ path, kind: 'modified', before: old, after: f });
  }
  for (const [path, f] of before) {
    if (!after.has(path)) changes.push({ path, kind: 'deleted', before: f, after: null });
  }
  return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

// Text of a file's bytes, or null when it looks binary (a NUL byte, or not UTF-8).
export function decodeText(bytes) {
  if (bytes.subarray(0, 8192).includes(0)) return null;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

export function splitLines(text) {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

// Edit script from a to b: [{op:' '|'-'|'+', line, a, b}] (a/b: 0-based indexes, -1 if none).
// Returns null when more than maxEdits lines differ (the caller says "too large").
export function diffLines(a, b, maxEdits = 2000) {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace = [];
  let found = -1;
  outer:
  for (let d = 0; d <= max; d++) {
    if (d > maxEdits) return null;
    trace.push(v.slice(offset - d - 1, offset + d + 2));
    for (let k = -d; k <= d; k += 2) {
      let x = (k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1]))
        ? v[offset + k + 1] : v[offset + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) { x++; y++; }
      v[offset + k] = x;
      if (x >= n && y >= m) { found = d; break outer; }
    }
  }
  const ops = [];
  let x = n;
  let y = m;
  for (let d = found; d > 0; d--) {
    const prev = trace[d];
    const at = (k) => prev[k + d + 1];
    const k = x - y;
    const prevK = (k === -d || (k !== d && at(k - 1) < at(k + 1))) ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) { x--; y--; ops.push({ op: ' ', line: a[x], a: x, b: y }); }
    if (x === prevX) { y--; ops.push({ op: '+', line: b[y], a: -1, b: y }); }
    else { x--; ops.push({ op: '-', line: a[x], a: x, b: -1 }); }
  }
  while (x > 0 && y > 0) { x--; y--; ops.push({ op: ' ', line: a[x], a: x, b: y }); }
  return ops.reverse();
}

// Groups an edit script into unified-diff hunks with `context` lines around each change:
// [{header:'@@ -1,3 +1,4 @@', lines:[{op,line}]}].
export function hunks(ops, context = 3) {
  const out = [];
  let i = 0;
  while (i < ops.length) {
    while (i < ops.length && ops[i].op === ' ') i++;
    if (i >= ops.length) break;
    let start = Math.max(0, i - context);
    let end = i;
    // Extend while the next change is within 2*context unchanged lines.
    for (;;) {
      while (end < ops.length && ops[end].op !== ' ') end++;
      let gap = end;
      while (gap < ops.length && ops[gap].op === ' ') gap++;
      if (gap < ops.length && gap - end <= 2 * context) { end = gap; continue; }
      end = Math.min(ops.length, end + context);
      break;
    }
    const slice = ops.slice(start, end);
    out.push({ header: hunkHeader(ops, start, slice), lines: slice });
    i = end;
  }
  return out;
}

function hunkHeader(ops, start, slice) {
  // First line numbers: count the a-side and b-side lines before `start`.
  let aLine = 0;
  let bLine = 0;
  for (let j = 0; j < start; j++) {
    if (ops[j].op !== '+') aLine++;
    if (ops[j].op !== '-') bLine++;
  }
  const aCount = slice.filter((o) => o.op !== '+').length;
  const bCount = slice.filter((o) => o.op !== '-').length;
  const range = (line, count) => `${count === 0 ? line : line + 1},${count}`;
  return `@@ -${range(aLine, aCount)} +${range(bLine, bCount)} @@`;
}
