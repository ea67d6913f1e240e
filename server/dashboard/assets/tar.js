// A POSIX ustar archive built in the browser from a snapshot manifest and its blobs. Names
// that do not fit the ustar fields get a pax 'path' record. Unsafe names (absolute, '..',
// empty parts) are left out and reported: the archive is for the user's machine, and the
// agent chose the names.
const BLOCK = 512;
const encoder = new TextEncoder();

export function isSafePath(path) {
  if (typeof path !== 'string' || path === '' || path.startsWith('/') || path.includes('\0')) return false;
  return path.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

function writeString(header, offset, length, text) {
  const bytes = encoder.encode(text);
  header.set(bytes.subarray(0, length), offset);
}

function writeOctal(header, offset, length, value) {
  // length-1 octal digits then NUL.
  writeString(header, offset, length - 1, value.toString(8).padStart(length - 1, '0'));
}

function headerBlock(name, prefix, size, mode, mtime, type) {
  const h = new Uint8Array(BLOCK);
  writeString(h, 0, 100, name);
  writeOctal(h, 100, 8, mode & 0o7777);
  writeOctal(h, 108, 8, 0);
  writeOctal(h, 116, 8, 0);
  writeOctal(h, 124, 12, size);
  writeOctal(h, 136, 12, mtime);
  h.fill(0x20, 148, 156);  // checksum field counts as spaces while summing
  writeString(h, 156, 1, type);
  writeString(h, 257, 6, 'ustar\0');
  writeString(h, 263, 2, '00');
  writeString(h, 345, 155, prefix);
  let sum = 0;
  for (const b of h) sum += b;
  writeString(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

// name/prefix split for ustar, or null when the path needs a pax record.
function splitName(path) {
  const bytes = encoder.encode(path).length;
  if (bytes <= 100) return { name: path, prefix: '' };
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (encoder.encode(prefix).length <= 155 && encoder.encode(name).length <= 100) return { name, prefix };
  }
  return null;
}

function paxRecord(key, value) {
  const body = ` ${key}=${value}\n`;
  const bodyLength = encoder.encode(body).length;
  let length = bodyLength + 1;
  while (String(length).length + bodyLength !== length) length = String(length).length + bodyLength;
  return encoder.encode(`${length}${body}`);
}

function padding(size) {
  const rest = size % BLOCK;
  return rest === 0 ? null : new Uint8Array(BLOCK - rest);
}

// files: [{path, mode, bytes}] -> {blob: Blob (application/x-tar), skipped: [path]}.
export function buildTar(files, mtime = Math.floor(Date.now() / 1000)) {
  const parts = [];
  const skipped = [];
  for (const file of files) {
    if (!isSafePath(file.path)) { skipped.push(file.path); continue; }
    let split = splitName(file.path);
    if (split === null) {
      const pax = paxRecord('path', file.path);
      parts.push(headerBlock('PaxHeader', '', pax.length, 0o644, mtime, 'x'), pax);
      const pad = padding(pax.length);
      if (pad) parts.push(pad);
      split = { name: file.path.split('/').pop().slice(0, 100), prefix: '' };
    }
    parts.push(headerBlock(split.name, split.prefix, file.bytes.length, file.mode ?? 0o644, mtime, '0'), file.bytes);
    const pad = padding(file.bytes.length);
    if (pad) parts.push(pad);
  }
  parts.push(new Uint8Array(BLOCK * 2));
  return { blob: new Blob(parts, { type: 'application/x-tar' }), skipped };
}
