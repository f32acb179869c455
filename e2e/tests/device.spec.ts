import AxeBuilder from '@axe-core/playwright';
import { expect, test, type BrowserContext, type CDPSession, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { advanceServerClock, expectNoSideScroll, newestSms, resetUser, smsCodeAfter } from '../fixtures/account';
import { addVirtualAuthenticator } from '../fixtures/approval-page';
import { Partner, transferBody } from '../fixtures/partner';
import { MockPush, subscriptionStub } from '../fixtures/push';
import { serverState } from '../fixtures/state';

// The phone app, /device (issue 27): pairing by SMS code, approvals pushed
// to the closed app (Web Push through a strict mock push service, handed
// to the service worker over CDP) or listed live while it is open, each
// answered there, then unpairing; the app shell offline.
test.describe.configure({ mode: 'serial' });

const { creds, origin } = serverState();
const WCAG = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const ARTIFACTS = 'artifacts';

let context: BrowserContext;
let phone: Page;
let mock: MockPush;
let workers: CDPSession;
/** The app's service worker registration, as DevTools names it. */
let registrationId = '';

/** Each screen at phone size, light and dark; no sideways scroll, no serious axe finding. */
async function shoot(name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await expectNoSideScroll(phone);
  for (const scheme of ['light', 'dark'] as const) {
    await phone.emulateMedia({ colorScheme: scheme });
    const { violations } = await new AxeBuilder({ page: phone }).withTags(WCAG).analyze();
    const blocking = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(blocking.map((v) => `${scheme}: ${v.id}: ${v.help}`)).toEqual([]);
    await phone.screenshot({ path: `${ARTIFACTS}/device-${name}-${scheme}.png`, fullPage: true });
  }
  await phone.emulateMedia({ colorScheme: null });
}

/** A partner's transfer with no preference header: the paired phone's. */
async function askThePhone(partner: Partner, amount: string): Promise<string> {
  const asked = await partner.call('POST', '/v2/sepa/transfers', {}, transferBody(amount));
  expect(asked.status, JSON.stringify(asked.body)).toBe(428);
  return asked.body.sca_session_token;
}

/** The partner polls until the user decided, then replays: once only. */
async function expectDecided(partner: Partner, token: string, amount: string, state: 'allow' | 'deny'): Promise<void> {
  await expect.poll(async () => (await partner.poll(token)).body.result).toBe(state);
  if (state === 'deny') return;
  const replay = () => partner.call('POST', '/v2/sepa/transfers', { 'x-qonto-sca-session-token': token }, transferBody(amount));
  const done = await replay();
  expect(done.status, JSON.stringify(done.body)).toBe(201);
  expect((await replay()).status, 'a second replay').toBe(412);
}

/** What the service worker shows now. */
async function notifications(): Promise<{ title: string; body: string; tag: string; url: string }[]> {
  return phone.evaluate(async () => {
    const registration = await navigator.serviceWorker.ready;
    return (await registration.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, url: n.data?.url }));
  });
}

test.beforeAll(async ({ browser }) => {
  await resetUser();
  // The step-up SMS of a journey before is past its 30 s.
  await advanceServerClock(31);
  const key = await (await fetch(`${origin}/device/api/push_key`)).json();
  mock = await MockPush.start(key.application_server_key);
  context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
    permissions: ['notifications'],
  });
  await context.addInitScript(subscriptionStub(mock.subscription()));
  phone = await context.newPage();
  await addVirtualAuthenticator(phone);
  workers = await context.newCDPSession(phone);
  workers.on('ServiceWorker.workerRegistrationUpdated', ({ registrations }) => {
    const app = registrations.find((r: { scopeURL: string; isDeleted: boolean }) => r.scopeURL === `${origin}/device` && !r.isDeleted);
    if (app) registrationId = app.registrationId;
  });
  await workers.send('ServiceWorker.enable');
});

test.afterAll(async () => {
  await context?.close();
  await mock?.stop();
  await resetUser();
  await advanceServerClock(31);
});

test('a signed-in user pairs this phone by SMS code and turns on notifications', async () => {
  await phone.goto(`${origin}/device`);
  await expect(phone.getByRole('heading', { name: 'Pair this phone' })).toBeVisible();
  // Installable: the browser reads the manifest without an error.
  const manifest = await workers.send('Page.getAppManifest', {});
  expect(manifest.errors).toEqual([]);
  const parsed = JSON.parse(manifest.data ?? '{}');
  expect([parsed.start_url, parsed.display, parsed.icons.map((i: { sizes: string }) => i.sizes)]).toEqual([
    '/device',
    'standalone',
    ['192x192', '512x512', 'any'],
  ]);
  await shoot('pair-sign-in');
  // The account area's sign-in, which brings the user back to the app.
  await phone.getByRole('link', { name: 'Sign in' }).click();
  await phone.getByLabel('Email').fill(creds.user_email);
  await phone.getByLabel('Password').fill(creds.user_password);
  await phone.getByRole('button', { name: 'Sign in', exact: true }).click();
  await expect(phone).toHaveURL(`${origin}/device`);
  await expect(phone.getByText('Signed in as')).toBeVisible();
  await shoot('pair-send-code');

  const before = await newestSms(creds.user_phone);
  await phone.getByRole('button', { name: 'Send me a code' }).click();
  const code = await smsCodeAfter(creds.user_phone, before);
  await phone.getByLabel('The code we sent by SMS').fill(code);
  await shoot('pair-code');
  await phone.getByRole('button', { name: 'Pair this phone' }).click();
  await expect(phone.getByRole('heading', { name: 'This phone is paired' })).toBeVisible();
  await shoot('paired');

  await phone.getByRole('button', { name: 'Turn on notifications' }).click();
  await expect(phone.getByText('On: approvals reach this phone even when the app is closed.')).toBeVisible();
  const paired = await phone.evaluate(async () => (await fetch('/device/api/phone')).json());
  expect(paired.notifications, 'the server keeps the subscription').toBe(true);
  await shoot('notifications-on');
  await phone.getByRole('button', { name: 'Continue' }).click();
  await expect(phone.getByText('Nothing waits for you.')).toBeVisible();
  await shoot('approvals-empty');
  expect(registrationId, 'the service worker controls /device').not.toBe('');
});

test('a request reaches the closed app as a notification; opened, it is approved once', async () => {
  const partner = new Partner();
  // The app is closed: no window of it is open.
  await phone.goto('about:blank');
  const token = await askThePhone(partner, '1200.00');
  const pushed = JSON.parse((await mock.next()).toString());
  expect(Object.keys(pushed), 'the push carries the id alone').toEqual(['approval']);
  await workers.send('ServiceWorker.deliverPushMessage', { origin, registrationId, data: JSON.stringify(pushed) });

  await phone.goto(`${origin}/device`);
  let shown: Awaited<ReturnType<typeof notifications>> = [];
  await expect
    .poll(async () => {
      shown = await notifications();
      return shown.length;
    })
    .toBe(1);
  expect(shown[0].title).toBe('Confirm a payment to ACME SAS');
  expect(shown[0].body).toContain('1,200.00 EUR');
  expect(shown[0].url).toBe(`/device/approvals/${pushed.approval}`);

  // Tapping it opens its URL (CDP cannot tap a notification).
  await phone.goto(`${origin}${shown[0].url}`);
  await expect(phone.getByRole('heading', { name: 'Payment to ACME SAS' })).toBeVisible();
  await expect(phone.getByText('1,200.00 EUR')).toBeVisible();
  await expect(phone.getByRole('timer')).toContainText('Answer within');
  await shoot('approval');
  await phone.getByRole('button', { name: 'Approve' }).click();
  await expect(phone.getByRole('heading', { name: 'Approved' })).toBeFocused();
  await shoot('approved');
  await expectDecided(partner, token, '1200.00', 'allow');
  // Decided, it is gone from the phone like any approval that no longer waits.
  await phone.goto(`${origin}${shown[0].url}`);
  await expect(phone.getByRole('heading', { name: 'Nothing to approve here' })).toBeVisible();
});

test('with the app open, a request shows in its list at once and is denied there', async () => {
  const partner = new Partner();
  await phone.goto(`${origin}/device`);
  await expect(phone.getByText('Nothing waits for you.')).toBeVisible();
  const token = await askThePhone(partner, '75.50');
  const item = phone.getByRole('link', { name: /Payment to ACME SAS/ });
  await expect(item).toBeVisible();
  await expect(item).toContainText('75.50 EUR');
  await shoot('approvals-one');
  await item.click();
  await phone.getByRole('button', { name: 'Deny' }).click();
  await expect(phone.getByRole('heading', { name: 'Denied' })).toBeFocused();
  await expectDecided(partner, token, '75.50', 'deny');
  await phone.getByRole('link', { name: 'Back to approvals' }).click();
  await expect(phone.getByText('Nothing waits for you.')).toBeVisible();
  await mock.next(); // the push of this request, not delivered: the app was open
});

test('"this wasn\'t me" refuses the request and tells the user what to do', async () => {
  const partner = new Partner();
  await phone.goto(`${origin}/device`);
  const before = await newestSms(creds.user_phone);
  const token = await askThePhone(partner, '980.00');
  await phone.getByRole('link', { name: /Payment to ACME SAS/ }).click();
  await phone.getByRole('button', { name: "This wasn't me" }).click();
  await expect(phone.getByRole('heading', { name: 'Refused and reported' })).toBeFocused();
  await shoot('reported');
  await expectDecided(partner, token, '980.00', 'deny');
  await expect.poll(async () => (await newestSms(creds.user_phone))?.sent_at !== before?.sent_at).toBe(true);
  await mock.next();
});

test('the app opens offline and says so', async () => {
  await phone.goto(`${origin}/device`);
  await expect(phone.getByText('Nothing waits for you.')).toBeVisible();
  await context.setOffline(true);
  try {
    await phone.reload();
    // The shell comes from the service worker's cache; the app says why
    // it shows nothing.
    await expect(phone.getByRole('heading', { name: 'You are offline' })).toBeVisible();
    await expect(phone.getByRole('button', { name: 'Try again' })).toBeVisible();
    await shoot('offline');
  } finally {
    await context.setOffline(false);
  }
});

/** The next push to the paired phone, delivered to its service worker. */
async function deliverNextPush(): Promise<Record<string, string>> {
  const pushed = JSON.parse((await mock.next()).toString());
  await workers.send('ServiceWorker.deliverPushMessage', { origin, registrationId, data: JSON.stringify(pushed) });
  return pushed;
}

test('a second phone signs in and pairs only once the first one allowed each', async ({ browser }) => {
  // A user gets 3 codes by SMS at once, then one every 10 minutes: the
  // journeys before this one spent them.
  await advanceServerClock(601);
  const first = phone;
  await first.goto(`${origin}/device`);
  await expect(first.getByText('Nothing waits for you.')).toBeVisible();
  const secondContext = await browser.newContext({
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
    permissions: ['notifications'],
  });
  await secondContext.addInitScript(subscriptionStub(mock.subscription()));
  const second = await secondContext.newPage();
  await addVirtualAuthenticator(second);

  // Signing in on the new phone: the paired one confirms it.
  await second.goto(`${origin}/device`);
  await second.getByRole('link', { name: 'Sign in' }).click();
  await second.getByLabel('Email').fill(creds.user_email);
  await second.getByLabel('Password').fill(creds.user_password);
  await second.getByRole('button', { name: 'Sign in', exact: true }).click();
  await second.getByRole('button', { name: 'Confirm on my paired phone' }).click();
  expect(Object.keys(await deliverNextPush())).toEqual(['confirmation']);
  const signIn = first.getByRole('region', { name: 'Confirm a sign-in to your account?' });
  await expect(signIn).toContainText('From ');
  phone = first;
  await shoot('confirm-sign-in');
  await signIn.getByRole('button', { name: 'Allow' }).click();
  await expect(first.getByText('Allowed: the sign-in goes on.')).toBeVisible();
  await expect(second).toHaveURL(`${origin}/device`);

  // Pairing it: the code by SMS, then the paired phone allows the swap.
  const before = await newestSms(creds.user_phone);
  await second.getByRole('button', { name: 'Send me a code' }).click();
  await expect(second.getByLabel('The code we sent by SMS')).toBeVisible();
  await second.getByLabel('The code we sent by SMS').fill(await smsCodeAfter(creds.user_phone, before));
  await second.getByRole('button', { name: 'Pair this phone' }).click();
  await expect(second.getByRole('heading', { name: 'Your account has a paired phone' })).toBeVisible();
  await second.getByRole('button', { name: 'Ask my paired phone' }).click();
  await expect(second.getByText('Waiting for your paired phone to allow this one')).toBeVisible();
  expect(Object.keys(await deliverNextPush())).toEqual(['confirmation']);
  const swap = first.getByRole('region', { name: 'Allow a new phone in place of this one?' });
  await shoot('confirm-new-phone');
  await swap.getByRole('button', { name: 'Allow' }).click();
  await expect(second.getByRole('heading', { name: 'This phone is paired' })).toBeVisible();
  await second.getByRole('button', { name: 'Turn on notifications' }).click();
  await expect(second.getByText('On: approvals reach this phone')).toBeVisible();

  // The first phone's pairing ended with the swap; the second one holds it.
  expect(await first.evaluate(async () => (await fetch('/device/api/phone')).status)).toBe(401);
  expect(await second.evaluate(async () => (await fetch('/device/api/phone')).status)).toBe(200);
  await context.close();
  context = secondContext;
  phone = second;
});

test('unpairing from the settings ends the pairing and its notifications', async () => {
  await phone.goto(`${origin}/device`);
  await phone.getByRole('link', { name: 'Settings' }).click();
  await expect(phone.getByRole('heading', { name: 'Settings' })).toBeVisible();
  await expect(phone.getByText('On: approvals reach this phone')).toBeVisible();
  await shoot('settings');
  await phone.getByRole('button', { name: 'Unpair this phone' }).click();
  await phone.getByRole('button', { name: 'Yes, unpair it' }).click();
  await expect(phone.getByRole('heading', { name: 'This phone is not paired' })).toBeVisible();
  const answer = await phone.evaluate(async () => (await fetch('/device/api/phone')).status);
  expect(answer).toBe(401);
  // A partner's request goes back to an SMS link: nothing is pushed.
  const partner = new Partner();
  const asked = await partner.call('POST', '/v2/sepa/transfers', {}, transferBody('10.00'));
  expect(asked.status).toBe(428);
  expect(mock.pending).toBe(0);
});
