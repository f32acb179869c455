// Trunk post-build hook: writes `FILE.br` (brotli, best quality) and
// `FILE.gz` (gzip -9) beside each text or wasm file of the build, which the
// server then sends as they are to browsers that accept them. Node's own
// zlib, nothing to install.
//
//   node tools/precompress.mjs [DIR]   (default: $TRUNK_STAGING_DIR)
import { readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const TEXT = new Set(['.html', '.js', '.mjs', '.css', '.json', '.svg', '.txt', '.map']);
const BINARY = new Set(['.wasm']);

const dir = process.argv[2] ?? process.env.TRUNK_STAGING_DIR;
if (!dir) {
  console.error('usage: node tools/precompress.mjs DIR (or run as a Trunk hook)');
  process.exit(2);
}

function compress(path) {
  const ext = extname(path);
  const data = readFileSync(path);
  const variants = {
    br: brotliCompressSync(data, {
      params: {
        [constants.BROTLI_PARAM_MODE]: TEXT.has(ext) ? constants.BROTLI_MODE_TEXT : constants.BROTLI_MODE_GENERIC,
        [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
        [constants.BROTLI_PARAM_LGWIN]: constants.BROTLI_MAX_WINDOW_BITS,
        [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
      },
    }),
    gz: gzipSync(data, { level: constants.Z_BEST_COMPRESSION, memLevel: 9 }),
  };
  const sizes = [];
  for (const [suffix, bytes] of Object.entries(variants)) {
    const target = `${path}.${suffix}`;
    // A variant that saves nothing is not worth a second file.
    if (bytes.length < data.length) {
      writeFileSync(target, bytes);
      sizes.push(`${suffix} ${bytes.length}`);
    } else {
      try {
        unlinkSync(target);
      } catch {
        // there was none
      }
    }
  }
  console.log(`precompress: ${relative(dir, path)}: raw ${data.length}${sizes.map((s) => `, ${s}`).join('')}`);
}

function walk(path) {
  for (const entry of readdirSync(path)) {
    const full = join(path, entry);
    if (statSync(full).isDirectory()) walk(full);
    else if (TEXT.has(extname(full)) || BINARY.has(extname(full))) compress(full);
  }
}

walk(dir);
