// The approval page's first visit on an emulated slow phone: bytes on the
// wire and the time until the approve button can be pressed.
//
//   node e2e/bench/page.mjs <approval link URL> [--runs N] [--accept-encoding gzip|identity|…]
//   node e2e/bench/page.mjs <URL> --cookie NAME=VALUE --button REGEX [--label NAME] [--runs N]
//
// Each run opens the link in a fresh browser context (no cache, no cookies)
// with the network at 150 ms latency, 1.6 Mbps down, 750 kbps up, and the
// CPU 4x slower. It prints one JSON line per run, then a summary line.
// `--accept-encoding` replaces the browser's own (gzip, deflate, br, zstd),
// to see what a browser without brotli, or a proxy without any, receives.
// Note: each run reads the link's approval again; it neither approves nor
// denies, so the same link serves every run.
//
// Another page (the phone app's approval screen, run-page.sh --device):
// `--cookie NAME=VALUE` puts that cookie (path /, HttpOnly, SameSite=Strict)
// into each fresh context before it navigates (the cookies are the only
// state the context starts with), `--button REGEX` matches the approve
// button's whole text (by default the approval page's two), and
// `--label NAME` adds `"page": NAME` first on every line.
import { launch } from './browser.mjs';

const APPROVE_PAGE_BUTTON = /^(Create a passkey and approve|Approve with passkey)$/;
const NETWORK = { offline: false, latency: 150, downloadThroughput: 200_000, uploadThroughput: 93_750 };
const CPU_SLOWDOWN = 4;

function usage() {
  console.error(
    'usage: node page.mjs <approval link URL> [--runs N] [--accept-encoding VALUE] [--cookie NAME=VALUE] [--button REGEX] [--label NAME]',
  );
  process.exit(2);
}

const args = process.argv.slice(2);
const url = args.find((a) => /^https?:\/\//.test(a));
/** The value after `--name`; `null` when the option is there without one. */
const option = (name) => {
  const at = args.indexOf(name);
  return at < 0 ? undefined : (args[at + 1] ?? null);
};
const runsArg = option('--runs');
const runs = runsArg === undefined ? 1 : Number(runsArg);
const acceptEncoding = option('--accept-encoding');
const cookieArg = option('--cookie');
const cookie = cookieArg ? cookieArg.match(/^([^=;\s]+)=([^;\s]*)$/) : undefined;
const buttonArg = option('--button');
const label = option('--label');
if (
  !url ||
  !Number.isInteger(runs) ||
  runs < 1 ||
  acceptEncoding === null ||
  (cookieArg !== undefined && !cookie) ||
  buttonArg === null ||
  label === null
) {
  usage();
}
let APPROVE = APPROVE_PAGE_BUTTON;
try {
  if (buttonArg) APPROVE = new RegExp(buttonArg);
} catch {
  usage();
}
/** `"page": label` first on every line, when asked for. */
const labelled = (line) => (label ? { page: label, ...line } : line);

// Runs in the page before any of its scripts (DevTools injects it: the
// page's CSP does not apply). Records when the approve button first is
// attached, visible and enabled, on the page's own clock (0 = navigation start).
function watchButton(pattern) {
  const re = new RegExp(pattern);
  const check = () => {
    if (window.__usableAt !== undefined) return;
    for (const b of document.querySelectorAll('button')) {
      const r = b.getBoundingClientRect();
      if (!b.disabled && r.width > 0 && r.height > 0 && re.test(b.textContent.trim())) {
        window.__usableAt = performance.now();
        return;
      }
    }
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
}

// Approval links (the page, its data) and the phone app's approval ids
// (its screen, its data) are secrets or identifiers: not printed.
const redact = (u) =>
  u.replace(/\/(device\/(?:api\/)?approvals|sca|api\/approvals)\/[^/?#]+/, (_, path) =>
    path.startsWith('device/') ? `/${path}/{id}` : `/${path}/{link}`,
  );

async function visit(browser) {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
    deviceScaleFactor: 3,
  });
  try {
    if (cookie) {
      const { hostname } = new URL(url);
      await context.addCookies([{ name: cookie[1], value: cookie[2], domain: hostname, path: '/', httpOnly: true, sameSite: 'Strict' }]);
    }
    const page = await context.newPage();
    await page.addInitScript(watchButton, APPROVE.source);
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    await cdp.send('Network.emulateNetworkConditions', NETWORK);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: CPU_SLOWDOWN });
    if (acceptEncoding) await cdp.send('Network.setExtraHTTPHeaders', { headers: { 'Accept-Encoding': acceptEncoding } });

    const requests = new Map();
    const pending = new Set();
    let settled = () => {};
    const done = () => pending.size === 0 && settled();
    cdp.on('Network.requestWillBeSent', (e) => {
      pending.add(e.requestId);
      requests.set(e.requestId, { url: redact(e.request.url), start: e.timestamp, bytes: 0, status: 0, encoding: '' });
    });
    cdp.on('Network.responseReceived', (e) => {
      const r = requests.get(e.requestId);
      if (!r) return;
      const h = Object.fromEntries(Object.entries(e.response.headers).map(([k, v]) => [k.toLowerCase(), v]));
      r.status = e.response.status;
      r.encoding = h['content-encoding'] ?? '';
    });
    cdp.on('Network.loadingFinished', (e) => {
      const r = requests.get(e.requestId);
      if (r) {
        r.bytes = e.encodedDataLength;
        r.end = e.timestamp;
      }
      pending.delete(e.requestId);
      done();
    });
    cdp.on('Network.loadingFailed', (e) => {
      const r = requests.get(e.requestId);
      if (r) r.failed = e.errorText;
      pending.delete(e.requestId);
      done();
    });

    const consoleErrors = [];
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));

    await page.goto(url, { waitUntil: 'commit' });
    const button = page.getByRole('button', { name: APPROVE });
    await button.waitFor({ state: 'visible', timeout: 30_000 });
    await page.waitForFunction(() => window.__usableAt !== undefined, null, { timeout: 30_000, polling: 100 });
    const usableMs = await page.evaluate(() => window.__usableAt);
    if (!(await button.isEnabled())) throw new Error('the approve button is disabled');
    // The first visit is over once nothing is in flight any more.
    let timer;
    await new Promise((resolve, reject) => {
      settled = resolve;
      timer = setTimeout(() => reject(new Error(`requests still in flight: ${[...pending].map((id) => requests.get(id)?.url)}`)), 30_000);
      done();
    }).finally(() => clearTimeout(timer));

    const list = [...requests.values()];
    const t0 = Math.min(...list.map((r) => r.start));
    const ms = (t) => (t === undefined ? null : Math.round((t - t0) * 1000));
    const api = list.filter((r) => r.url.includes('/api/approvals/'));
    return {
      usable_ms: Math.round(usableMs),
      bytes: list.reduce((sum, r) => sum + r.bytes, 0),
      requests: list.length,
      // One request for the approval's data: the app's fetch took over the preload.
      api_requests: api.length,
      console_errors: consoleErrors,
      resources: list.map((r) => ({
        url: r.url,
        status: r.status,
        encoding: r.encoding,
        bytes: r.bytes,
        start_ms: ms(r.start),
        end_ms: ms(r.end),
        ...(r.failed ? { failed: r.failed } : {}),
      })),
    };
  } finally {
    await context.close();
  }
}

const browser = await launch();
try {
  const results = [];
  for (let i = 0; i < runs; i++) {
    const result = await visit(browser);
    results.push(result);
    console.log(JSON.stringify(labelled({ run: i + 1, ...result })));
  }
  const sorted = (k) => results.map((r) => r[k]).sort((a, b) => a - b);
  const median = (k) => sorted(k)[Math.floor((runs - 1) / 2)];
  console.log(
    JSON.stringify(
      labelled({
        summary: true,
        runs,
        accept_encoding: acceptEncoding ?? 'browser default',
        usable_ms: sorted('usable_ms'),
        usable_ms_median: median('usable_ms'),
        bytes: sorted('bytes'),
        bytes_median: median('bytes'),
      }),
    ),
  );
} finally {
  await browser.close();
}
