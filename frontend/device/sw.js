// The phone app's service worker, served as /device/sw.js and controlling
// /device (the server says `Service-Worker-Allowed: /device`).
//
// - It keeps the app shell (the page and the files it names) so that the
//   app opens without a network and says it is offline. The API is never
//   cached: approvals are live, and a stale one must not be shown.
// - A push carries only an id (`{"approval": id}` or `{"confirmation": id}`):
//   the worker asks the server what it is, over the device credential
//   (a cookie on /device), and shows it. Tapping the notification opens the
//   approval in the app.
//
// Plain JavaScript: a worker has no DOM for the app's wasm, and this file
// is small enough to read in one go.

const SHELL = 'passgate-device-shell-v1';
const APP = '/device';
/// The files of the build the page names (Trunk's hashed names), in
/// quotes or, the page being minified, as a bare attribute value.
const NAMED_FILE = /["'=](\/device\/[^"'=?#\s>]+\.(?:js|wasm|css|png|svg|webmanifest))(?=["'\s>])/g;

self.addEventListener('install', (event) => {
  event.waitUntil(keepShell().then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name !== SHELL) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

/// The page as the server serves it now, and every file it names.
async function keepShell() {
  const page = await fetch(APP, { cache: 'no-store', credentials: 'same-origin' });
  if (!page.ok) throw new Error(`the app answered ${page.status}`);
  await keep(page);
}

/// Keeps `page` (any screen's page: they are the same shell) and the files
/// it names, and drops the files of an older build.
async function keep(page) {
  const html = await page.clone().text();
  const files = new Set([...html.matchAll(NAMED_FILE)].map((m) => m[1]));
  files.add('/device/manifest.webmanifest');
  files.add('/device/icons/icon-192.png');
  const cache = await caches.open(SHELL);
  const kept = new Set((await cache.keys()).map((r) => new URL(r.url).pathname));
  await cache.addAll([...files].filter((f) => !kept.has(f)));
  await cache.put(APP, page);
  for (const path of kept) {
    if (path !== APP && !files.has(path)) await cache.delete(path);
  }
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/device/api/')) return; // live, never from a cache
  if (request.mode === 'navigate') {
    event.respondWith(page(request, event));
  } else if (url.pathname.startsWith('/device/')) {
    event.respondWith(file(request));
  }
});

/// A screen of the app: the network's page (a new build takes effect at
/// once, and becomes the kept shell), else the kept one; the app itself
/// tells the user it is offline.
async function page(request, event) {
  try {
    const answer = await fetch(request);
    if (answer.ok) event.waitUntil(keep(answer.clone()).catch(() => {}));
    return answer;
  } catch (offline) {
    const kept = await caches.match(APP);
    if (kept) return kept;
    throw offline;
  }
}

/// A file of the build: kept ones from the cache (their names change with
/// their content), others from the network.
async function file(request) {
  const kept = await caches.match(request);
  return kept ?? fetch(request);
}

self.addEventListener('push', (event) => {
  let said = {};
  try {
    said = event.data ? event.data.json() : {};
  } catch {
    said = {};
  }
  event.waitUntil(Promise.all([announce(said), tellTheApp(said)]));
});

/// An open app reads its lists again (a confirmation has no live stream).
async function tellTheApp(said) {
  for (const client of await self.clients.matchAll({ type: 'window' })) client.postMessage(said);
}

/// Shows what the push announces, as the server describes it now.
async function announce(said) {
  if (typeof said.approval === 'string') {
    const id = said.approval;
    const approval = await ask(`/device/api/approvals/${encodeURIComponent(id)}`);
    if (approval === gone) return close(id);
    const shown = approval ? describeApproval(approval) : { title: 'A payment waits for your approval', body: 'Open Passgate to see it.' };
    return self.registration.showNotification(shown.title, {
      body: shown.body,
      tag: id,
      renotify: true,
      requireInteraction: true,
      icon: '/device/icons/icon-192.png',
      data: { url: `/device/approvals/${encodeURIComponent(id)}` },
    });
  }
  if (typeof said.confirmation === 'string') {
    const id = said.confirmation;
    const waiting = await ask('/device/api/confirmations');
    const confirmation = Array.isArray(waiting) ? waiting.find((c) => c.id === id) : undefined;
    if (Array.isArray(waiting) && !confirmation) return close(id);
    const what = confirmation?.purpose === 'replace_phone' ? 'Confirm pairing a new phone' : 'Confirm a sign-in to your account';
    return self.registration.showNotification(what, {
      body: confirmation ? `From ${confirmation.browser}${confirmation.ip ? ` (${confirmation.ip})` : ''}` : 'Open Passgate to see it.',
      tag: id,
      renotify: true,
      requireInteraction: true,
      icon: '/device/icons/icon-192.png',
      data: { url: '/device' },
    });
  }
}

const gone = Symbol('gone');

/// The server's answer as JSON; `gone` for a 404 (decided, run out, or not
/// this phone's); `undefined` when it could not be asked.
async function ask(path) {
  try {
    const answer = await fetch(path, { credentials: 'same-origin', cache: 'no-store' });
    if (answer.status === 404) return gone;
    return answer.ok ? await answer.json() : undefined;
  } catch {
    return undefined;
  }
}

/// "Confirm a payment to ACME SAS", "1,200.00 EUR · asked by Acme Bank".
function describeApproval(approval) {
  const action = approval.action ?? {};
  const payee = action.payee_name ?? 'a payee';
  const title = action.action_type === 'beneficiary.create' ? `Confirm a new payee: ${payee}` : `Confirm a payment to ${payee}`;
  const amount = action.amount ? `${action.amount} ${action.currency ?? ''}`.trim() : '';
  const body = [amount, `asked by ${approval.partner_name}`].filter(Boolean).join(' · ');
  return { title, body };
}

/// An announcement that no longer waits: its notification, if shown, goes.
async function close(tag) {
  for (const shown of await self.registration.getNotifications({ tag })) shown.close();
}

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = new URL(event.notification.data?.url ?? APP, self.location.origin).href;
  event.waitUntil(
    (async () => {
      const open = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      const app = open.find((c) => new URL(c.url).pathname.startsWith(APP));
      if (app) {
        await app.focus();
        return app.navigate(url);
      }
      return self.clients.openWindow(url);
    })(),
  );
});
