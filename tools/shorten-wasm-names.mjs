// Trunk post-build hook, before precompress.mjs: gives the names that tie
// a wasm module to its wasm-bindgen glue (the imports' module and names,
// the exports' names) short names, in both files, and updates the
// `integrity` of both in the page.
//
// Why: wasm-bindgen names each import `__wbg_{js name}_{16 hex digits}`
// and each closure's export `…invoke__h{16 hex digits}`. Every name is
// written twice, in the module and in the glue, two files that brotli
// compresses apart, and the hex digits do not compress at all: on the
// approval page that was about 2 KB of its 52 KB download (measured in
// docs/BENCHMARKS.md, 2026-12-06). Neither wasm-bindgen nor wasm-opt
// shortens them (wasm-opt's `--minify-imports` only renames the `env`
// imports of Emscripten's convention), and Trunk's JS minifier fails on
// wasm-bindgen's glue; so this file does it. The module's format is read
// as far as the import and export sections need (WebAssembly core
// spec, §5.5.5 and §5.5.10); every other byte is copied as it is.
//
// It refuses (exit 1, the build fails) rather than guess: a name that
// does not occur in the glue exactly where wasm-bindgen writes it, an
// import of an unknown kind, or a glue that still reaches for an export
// it no longer has.
//
//   node tools/shorten-wasm-names.mjs [DIR]   (default: $TRUNK_STAGING_DIR)
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? process.env.TRUNK_STAGING_DIR;
if (!dir) {
  console.error('usage: node tools/shorten-wasm-names.mjs DIR (or run as a Trunk hook)');
  process.exit(2);
}

function fail(message) {
  console.error(`shorten-wasm-names: ${message}`);
  process.exit(1);
}

// ---- The module's bytes -------------------------------------------------

class Reader {
  constructor(bytes, at = 0) {
    this.bytes = bytes;
    this.at = at;
  }
  byte() {
    if (this.at >= this.bytes.length) fail('the module ends inside a section');
    return this.bytes[this.at++];
  }
  /** An unsigned LEB128 of at most 32 bits. */
  u32() {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
    }
    return fail('a malformed LEB128 number');
  }
  name() {
    const length = this.u32();
    const text = Buffer.from(this.bytes.subarray(this.at, this.at + length)).toString('utf8');
    this.at += length;
    return text;
  }
  /** Table and memory limits: flags, minimum, maximum if flagged. */
  limits() {
    const flags = this.byte();
    if (flags > 0x07) fail(`unknown limits flags 0x${flags.toString(16)}`);
    this.u32();
    if (flags & 1) this.u32();
  }
}

function u32(value) {
  const out = [];
  do {
    let b = value & 0x7f;
    value = Math.floor(value / 128);
    if (value !== 0) b |= 0x80;
    out.push(b);
  } while (value !== 0);
  return Buffer.from(out);
}

const name = (text) => {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([u32(bytes.length), bytes]);
};

/** The entries of an import section: module, name, and the rest as bytes. */
function readImports(section) {
  const r = new Reader(section);
  const entries = [];
  for (let count = r.u32(); count > 0; count--) {
    const module = r.name();
    const field = r.name();
    const start = r.at;
    const kind = r.byte();
    if (kind === 0x00) r.u32(); // function: its type
    else if (kind === 0x01) (r.byte(), r.limits()); // table: reference type, limits
    else if (kind === 0x02) r.limits(); // memory
    else if (kind === 0x03) (r.byte(), r.byte()); // global: value type, mutability
    else if (kind === 0x04) (r.byte(), r.u32()); // tag: attribute, type
    else fail(`an import of unknown kind 0x${kind.toString(16)}`);
    entries.push({ module, field, desc: section.subarray(start, r.at) });
  }
  if (r.at !== section.length) fail('bytes after the last import');
  return entries;
}

/** The entries of an export section: name, and kind and index as bytes. */
function readExports(section) {
  const r = new Reader(section);
  const entries = [];
  for (let count = r.u32(); count > 0; count--) {
    const field = r.name();
    const start = r.at;
    r.byte();
    r.u32();
    entries.push({ field, desc: section.subarray(start, r.at) });
  }
  if (r.at !== section.length) fail('bytes after the last export');
  return entries;
}

/** The module's sections, each `{ id, body }`, after its 8-byte header. */
function sections(bytes) {
  if (bytes.readUInt32LE(0) !== 0x6d736100 || bytes.readUInt32LE(4) !== 1) fail('not a WebAssembly module (version 1)');
  const r = new Reader(bytes, 8);
  const out = [];
  while (r.at < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    out.push({ id, body: bytes.subarray(r.at, r.at + size) });
    r.at += size;
  }
  return out;
}

// ---- Short names ----------------------------------------------------------

const FIRST = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$';
const NEXT = `${FIRST}0123456789`;
/** `a`, `b`, …, `$`, `aa`, `ba`…: JavaScript identifiers, never a keyword for lack of length… */
function shortName(index) {
  let text = FIRST[index % FIRST.length];
  for (let rest = Math.floor(index / FIRST.length); rest > 0; rest = Math.floor((rest - 1) / NEXT.length)) {
    text += NEXT[(rest - 1) % NEXT.length];
  }
  return text;
}
// …except two-letter ones: `do`, `if`, `in` are skipped.
const KEYWORDS = new Set(['do', 'if', 'in']);
function* shortNames() {
  for (let i = 0; ; i++) if (!KEYWORDS.has(shortName(i))) yield shortName(i);
}

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ---- One bundle -----------------------------------------------------------

function shorten(wasmPath, jsPath) {
  const bytes = readFileSync(wasmPath);
  let js = readFileSync(jsPath, 'utf8');
  const parts = sections(bytes);

  const imports = parts.find((s) => s.id === 2);
  const exports = parts.find((s) => s.id === 7);
  if (!imports || !exports) fail(`${wasmPath}: no import or no export section`);

  // Imports: one module, wasm-bindgen's glue, whose object is `import0`.
  const importEntries = readImports(imports.body);
  const modules = [...new Set(importEntries.map((e) => e.module))];
  const moduleNames = new Map();
  for (const [i, module] of modules.entries()) {
    const short = `${i}`;
    const key = new RegExp(`"${escape(module)}": (import\\d+),`, 'g');
    const found = [...js.matchAll(key)];
    if (found.length !== 1) fail(`${jsPath}: the import module "${module}" is not named once in the glue`);
    js = js.replace(key, (_, object) => `"${short}": ${object},`);
    moduleNames.set(module, short);
  }
  const importNames = shortNames();
  const newImports = importEntries.map((entry) => {
    // The glue's import object: `    NAME: function(…` on a line of its own.
    const key = new RegExp(`^(\\s+)${escape(entry.field)}(: )`, 'gm');
    const found = [...js.matchAll(key)].length;
    if (found !== 1 || js.split(entry.field).length !== 2) fail(`${jsPath}: the import ${entry.field} is not once in the glue's import object`);
    const short = importNames.next().value;
    js = js.replace(key, (_, indent, colon) => `${indent}${short}${colon}`);
    return Buffer.concat([name(moduleNames.get(entry.module)), name(short), entry.desc]);
  });

  // Exports: the glue reaches them as `wasm.NAME`.
  const exportEntries = readExports(exports.body);
  const exportNames = shortNames();
  const renamed = new Map();
  const newExports = exportEntries.map((entry) => {
    const short = exportNames.next().value;
    renamed.set(entry.field, short);
    return Buffer.concat([name(short), entry.desc]);
  });
  js = js.replace(/\bwasm\.([A-Za-z_$][\w$]*)/g, (_, used) => {
    if (!renamed.has(used)) fail(`${jsPath}: the glue uses wasm.${used}, which the module does not export`);
    return `wasm.${renamed.get(used)}`;
  });

  const section = (id, entries) => {
    const body = Buffer.concat([u32(entries.length), ...entries]);
    return Buffer.concat([Buffer.from([id]), u32(body.length), body]);
  };
  const out = [bytes.subarray(0, 8)];
  for (const part of parts) {
    if (part.id === 2) out.push(section(2, newImports));
    else if (part.id === 7) out.push(section(7, newExports));
    else out.push(Buffer.from([part.id]), u32(part.body.length), part.body);
  }
  const wasm = Buffer.concat(out);
  return { wasm, js, saved: bytes.length - wasm.length };
}

// ---- The build ------------------------------------------------------------

const sri = (data) => `sha384-${createHash('sha384').update(data).digest('base64')}`;

const html = join(dir, 'index.html');
let page = existsSync(html) ? readFileSync(html, 'utf8') : null;
for (const file of readdirSync(dir).filter((f) => f.endsWith('_bg.wasm'))) {
  const wasmPath = join(dir, file);
  const jsName = file.replace(/_bg\.wasm$/, '.js');
  const jsPath = join(dir, jsName);
  if (!existsSync(jsPath)) fail(`${wasmPath}: no glue ${jsName} beside it`);
  const before = { wasm: readFileSync(wasmPath), js: readFileSync(jsPath) };
  const { wasm, js, saved } = shorten(wasmPath, jsPath);
  // The page's integrity for both files, where it gives one (Trunk does
  // unless told `data-integrity="none"`).
  if (page) {
    for (const [name, old, data] of [
      [file, before.wasm, wasm],
      [jsName, before.js, Buffer.from(js)],
    ]) {
      const tags = [...page.matchAll(/<link\b[^>]*>/g)].map((m) => m[0]);
      const checked = tags.filter((tag) => tag.includes(`/${name}`) && tag.includes('integrity'));
      if (checked.some((tag) => !tag.includes(sri(old)))) fail(`${html}: the integrity given for ${name} is not the build's`);
      page = page.replaceAll(sri(old), sri(data));
    }
  }
  writeFileSync(wasmPath, wasm);
  writeFileSync(jsPath, js);
  console.log(`${file}: names shortened, module ${saved} bytes smaller, glue ${before.js.length - Buffer.byteLength(js)}`);
}
if (page) writeFileSync(html, page);
