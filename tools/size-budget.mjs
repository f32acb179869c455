// The approval page's download, as a phone gets it: the brotli sizes
// (FILE.br, written by tools/precompress.mjs) of the page's HTML and of
// every script, wasm module and stylesheet it references, summed, against
// a budget in bytes. Fails above the budget.
//
//   node tools/size-budget.mjs DIR BUDGET   (e.g. frontend/dist 68000)
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const [dir, budgetArg] = process.argv.slice(2);
const budget = Number(budgetArg);
if (!dir || !Number.isInteger(budget) || budget <= 0) {
  console.error('usage: node tools/size-budget.mjs DIR BUDGET_BYTES');
  process.exit(2);
}

// As served: the brotli file when there is one (precompress.mjs skips a
// variant that saves nothing), else the file itself.
function served(name) {
  const path = join(dir, name);
  if (!existsSync(path)) {
    console.error(`${path}: referenced by index.html but not built (make frontend)`);
    process.exit(1);
  }
  return existsSync(`${path}.br`) ? statSync(`${path}.br`).size : statSync(path).size;
}

const html = readFileSync(join(dir, 'index.html'), 'utf8');
// Trunk writes root-relative URLs: the module's import, init's wasm path,
// the stylesheet and the preloads (the same files again), quoted or, once
// minified, not.
const assets = new Set([...html.matchAll(/["'=](\/[^"'=\s>/]+\.(?:js|wasm|css))(?=["'\s>])/g)].map((m) => m[1].slice(1)));
const kinds = ['js', 'wasm', 'css'].map((ext) => [...assets].filter((name) => name.endsWith(`.${ext}`)));
if (kinds.some((names) => names.length === 0)) {
  console.error(`${dir}/index.html: expected a script, a wasm module and a stylesheet, found ${[...assets].join(', ') || 'none'}`);
  process.exit(1);
}

let total = 0;
for (const name of ['index.html', ...assets]) {
  const size = served(name);
  total += size;
  console.log(`${String(size).padStart(8)}  ${name}`);
}
const verdict = total <= budget ? 'within' : 'OVER';
console.log(`${String(total).padStart(8)}  total (brotli), ${verdict} the budget of ${budget} bytes`);
process.exit(total <= budget ? 0 : 1);
