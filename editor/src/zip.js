// "Upload zip": a zip archive's text files for the file tabs, read in the browser. Links,
// special and binary files are refused, and the unpacked size is capped before inflating.
import { unzipSync } from "fflate";

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const MAX_ENTRIES = 2000;

/** What to fix in an archive, as opposed to a fault of the reader. */
class Refusal extends Error {}

const latin1 = (bytes) => String.fromCharCode(...bytes);
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Unix file types by entry name, from the archive's central directory (fflate does not say). */
function unixModes(bytes) {
  const data = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (data.getUint32(i, true) === 0x06054b50) { end = i; break; }
  }
  if (end < 0) throw new Refusal("this is not a zip archive: upload a .zip of the function's folder");
  const count = data.getUint16(end + 10, true);
  if (count > MAX_ENTRIES) throw new Refusal(`the archive has ${count} entries; a function may have at most 500 files`);
  const modes = new Map();
  let at = data.getUint32(end + 16, true);
  for (let n = 0; n < count; n++) {
    if (at + 46 > bytes.length || data.getUint32(at, true) !== 0x02014b50) throw new Refusal("the archive's directory is damaged: zip the folder again");
    const madeOnUnix = data.getUint8(at + 5) === 3;
    const utf8Name = (data.getUint16(at + 8, true) & 0x800) !== 0;
    const nameLength = data.getUint16(at + 28, true);
    const rawName = bytes.subarray(at + 46, at + 46 + nameLength);
    // Decoded as fflate decodes names, so the two agree.
    const name = utf8Name ? new TextDecoder().decode(rawName) : latin1(rawName);
    if (madeOnUnix) modes.set(name, data.getUint32(at + 38, true) >>> 16);
    at += 46 + nameLength + data.getUint16(at + 30, true) + data.getUint16(at + 32, true);
  }
  return modes;
}

const human = (n) => (n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KB` : `${n} bytes`);

/** Archivers' own files, left out rather than refused. */
const archiverLitter = (name) => name.startsWith("__MACOSX/") || name === ".DS_Store" || name.endsWith("/.DS_Store");

/**
 * The text files of a zip archive as `{path: content}`; a zip of one folder gives that folder's
 * contents. Throws an Error saying what to fix for links, special or binary files, and archives
 * that unpack to more than `maxBytes`.
 */
export function unzip(bytes, maxBytes) {
  const modes = unixModes(bytes);
  const problems = [];
  let declared = 0;
  let raw;
  try {
    raw = unzipSync(bytes, {
      filter(entry) {
        if (entry.name.endsWith("/") || archiverLitter(entry.name)) return false;
        const kind = (modes.get(entry.name) ?? 0) & S_IFMT;
        if (kind === S_IFDIR) return false;
        if (kind === S_IFLNK) { problems.push(`"${entry.name}" is a symbolic link`); return false; }
        if (kind !== 0 && kind !== S_IFREG) { problems.push(`"${entry.name}" is a device or other special file`); return false; }
        // Each entry inflates into a buffer of its declared size, so this bounds the memory too.
        declared += entry.originalSize;
        if (declared > maxBytes) throw new Refusal(`the archive unpacks to more than ${human(maxBytes)}, the most the provider allows for a function's files`);
        return true;
      },
    });
  } catch (e) {
    throw e instanceof Refusal ? e : new Refusal(`the archive cannot be unpacked (${e.message ?? e}): zip the folder again`);
  }
  const files = {};
  let total = 0;
  for (const [name, content] of Object.entries(raw)) {
    total += content.length;
    if (content.includes(0)) { problems.push(`"${name}" is a binary file`); continue; }
    try {
      files[name] = utf8.decode(content);
    } catch {
      problems.push(`"${name}" is not UTF-8 text`);
    }
  }
  if (total > maxBytes) throw new Refusal(`the archive unpacks to more than ${human(maxBytes)}, the most the provider allows for a function's files`);
  if (problems.length) {
    const shown = problems.slice(0, 5).join("; ") + (problems.length > 5 ? `; and ${problems.length - 5} more` : "");
    throw new Refusal(`${shown}: a function's files are regular text files (source, JSON, data); leave the others out of the zip`);
  }
  return stripSingleFolder(files);
}

/** `folder/a`, `folder/b` → `a`, `b`: what archivers make when a folder is zipped. */
function stripSingleFolder(files) {
  const paths = Object.keys(files);
  const tops = new Set(paths.map((p) => (p.includes("/") ? p.slice(0, p.indexOf("/")) : null)));
  if (paths.length === 0 || tops.size !== 1 || tops.has(null)) return files;
  const cut = [...tops][0].length + 1;
  return Object.fromEntries(paths.map((p) => [p.slice(cut), files[p]]));
}

/** Reads a picked File; calls `done` with JSON: `{"files": {…}}` or `{"error": "…"}`. */
export function unzipFile(file, maxBytes, done) {
  const answer = (result) => done(JSON.stringify(result));
  if (file.size > 4 * maxBytes + 1048576) {
    answer({ error: `${file.name} is ${human(file.size)}; a function's files may be at most ${human(maxBytes)} unpacked` });
    return;
  }
  file.arrayBuffer().then(
    (buffer) => {
      try {
        answer({ files: unzip(new Uint8Array(buffer), maxBytes) });
      } catch (e) {
        answer({ error: e.message ?? String(e) });
      }
    },
    (e) => answer({ error: `${file.name} cannot be read: ${e.message ?? e}` }),
  );
}
