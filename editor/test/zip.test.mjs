// The zip reader behind "upload zip", on archives made here with fflate (run: npm test).
import { test } from "node:test";
import assert from "node:assert/strict";
import { zipSync, strToU8 } from "fflate";
import { unzip } from "../src/zip.js";

const MB = 1024 * 1024;

test("a zipped folder is read as its contents", () => {
  const bytes = zipSync({ "my-fn/handler.js": strToU8("module.exports = () => 1"), "my-fn/lib/util.js": strToU8("exports.x = 1") });
  assert.deepEqual(unzip(bytes, MB), { "handler.js": "module.exports = () => 1", "lib/util.js": "exports.x = 1" });
});

test("files at the root stay where they are, and macOS litter is left out", () => {
  const bytes = zipSync({ "handler.py": strToU8("def handle(e, c): pass"), "lib/a.py": strToU8("x = 1"), "__MACOSX/._handler.py": new Uint8Array([0, 5, 22]), ".DS_Store": new Uint8Array([0, 0, 1]) });
  assert.deepEqual(Object.keys(unzip(bytes, MB)).sort(), ["handler.py", "lib/a.py"]);
});

test("links, binary files and non-UTF-8 text are refused by name", () => {
  const link = zipSync({ "handler.js": strToU8("x"), "secret": [strToU8("/etc/passwd"), { os: 3, attrs: 0o120777 << 16 }] });
  assert.throws(() => unzip(link, MB), /"secret" is a symbolic link/);
  const binary = zipSync({ "handler.js": strToU8("x"), "logo.png": new Uint8Array([137, 80, 78, 71, 0, 1]) });
  assert.throws(() => unzip(binary, MB), /"logo.png" is a binary file.*regular text files/);
  const latin1 = zipSync({ "handler.js": strToU8("x"), "notes.txt": new Uint8Array([0x63, 0x61, 0x66, 0xe9]) });
  assert.throws(() => unzip(latin1, MB), /"notes.txt" is not UTF-8 text/);
});

test("an archive that unpacks past the cap is refused before it is inflated", () => {
  const bomb = zipSync({ "handler.js": strToU8("x"), "big.txt": new Uint8Array(3 * MB).fill(0x61) }, { level: 9 });
  assert.ok(bomb.length < 64 * 1024);
  assert.throws(() => unzip(bomb, 2 * MB), /unpacks to more than 2.0 MB/);
});

test("something that is not a zip says so", () => {
  assert.throws(() => unzip(strToU8("just text, no archive"), MB), /not a zip archive/);
});
