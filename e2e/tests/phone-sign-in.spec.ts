import AxeBuilder from '@axe-core/playwright';
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { advanceServerClock, expectNoSideScroll, newestSms, resetUser, signIn, smsCodeAfter } from '../fixtures/account';
import { addVirtualAuthenticator } from '../fixtures/approval-page';
import { serverState } from '../fixtures/state';

// The second step of a sign-in confirmed on the paired phone (PROTOCOL.md
// 10b): the user's browser asks and polls, the phone (a second browser
// context with a platform passkey of its own) allows it or refuses it.
test.describe.configure({ mode: 'serial' });

const { creds, origin } = serverState();
const WCAG = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

let browserContext: BrowserContext;
let phoneContext: BrowserContext;
let user: Page;
let phone: Page;

interface Answer {
  status: number;
  body: any;
}

/** A JSON request from the phone's page (its cookies, its origin). */
async function phoneCall(method: string, path: string, body?: unknown, csrf?: string): Promise<Answer> {
  return phone.evaluate(
    async ({ method, path, body, csrf }) => {
      const headers: Record<string, string> = {};
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (csrf) headers['x-csrf-token'] = csrf;
      const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : null };
    },
    { method, path, body, csrf },
  );
}

/**
 * The phone's WebAuthn ceremony on the server's options (webauthn-rs's
 * JSON: base64url strings, `null` for absent members); the answer as
 * webauthn-rs reads it.
 */
async function phoneCeremony(kind: 'create' | 'get', options: unknown): Promise<unknown> {
  return phone.evaluate(
    async ({ kind, options }) => {
      const bytes = (text: string) => {
        const base64 = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
        return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      };
      const text = (buffer: ArrayBuffer) =>
        btoa(String.fromCharCode(...new Uint8Array(buffer)))
          .replace(/\+/g, '-')
          .replace(/\//g, '_')
          .replace(/=+$/, '');
      const publicKey: any = JSON.parse(JSON.stringify(options, (_, v) => (v === null ? undefined : v))).publicKey;
      publicKey.challenge = bytes(publicKey.challenge);
      if (publicKey.user) publicKey.user.id = bytes(publicKey.user.id);
      for (const list of ['excludeCredentials', 'allowCredentials']) {
        for (const credential of publicKey[list] ?? []) credential.id = bytes(credential.id);
      }
      const credential = (
        kind === 'create' ? await navigator.credentials.create({ publicKey }) : await navigator.credentials.get({ publicKey })
      ) as PublicKeyCredential;
      const response: any = credential.response;
      const fields =
        kind === 'create' ? ['attestationObject', 'clientDataJSON'] : ['authenticatorData', 'clientDataJSON', 'signature'];
      const answer: Record<string, string | null> = {};
      for (const field of fields) answer[field] = text(response[field]);
      if (kind === 'get') answer.userHandle = response.userHandle ? text(response.userHandle) : null;
      const id = text(credential.rawId);
      return { id, rawId: id, response: answer, type: 'public-key', extensions: {} };
    },
    { kind, options },
  );
}

/** No serious or critical axe-core violation on the user's page. */
async function expectAccessible(page: Page): Promise<void> {
  const { violations } = await new AxeBuilder({ page }).withTags(WCAG).analyze();
  const blocking = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(blocking.map((v) => `${v.id}: ${v.help}`)).toEqual([]);
}

/** The phone allows (its passkey) or refuses the one sign-in that waits for it. */
async function answerOnPhone(how: 'allow' | 'deny'): Promise<void> {
  let waiting: Answer = { status: 0, body: [] };
  await expect
    .poll(async () => {
      waiting = await phoneCall('GET', '/device/api/confirmations');
      return waiting.status === 200 ? waiting.body.length : -1;
    })
    .toBe(1);
  const [asked] = waiting.body;
  expect(asked.purpose).toBe('sign_in');
  expect(asked.seconds_left).toBeGreaterThan(0);
  if (how === 'deny') {
    const denied = await phoneCall('POST', `/device/api/confirmations/${asked.id}/deny`);
    expect([denied.status, denied.body]).toEqual([200, { state: 'denied' }]);
    return;
  }
  const start = await phoneCall('POST', `/device/api/confirmations/${asked.id}/start`);
  expect(start.status).toBe(200);
  expect(start.body.publicKey.userVerification).toBe('required');
  const finish = await phoneCall('POST', `/device/api/confirmations/${asked.id}/finish`, await phoneCeremony('get', start.body));
  expect([finish.status, finish.body]).toEqual([200, { state: 'allowed' }]);
}

test.beforeAll(async ({ browser }) => {
  await resetUser();
  // The step-up SMS of a journey before is past its 30 s.
  await advanceServerClock(31);
  const mobile = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
  browserContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  phoneContext = await browser.newContext(mobile);
  user = await browserContext.newPage();
  phone = await phoneContext.newPage();
  await addVirtualAuthenticator(phone);
  // Any page of the origin: the phone's calls go from there.
  await phone.goto(`${origin}/`);

  // Pairing (issue 24): signed in (no second factor yet), the password and
  // a code sent by SMS for this purpose, then the phone's own passkey.
  const signedIn = await phoneCall('POST', '/api/account/sign-in', { email: creds.user_email, password: creds.user_password });
  expect([signedIn.status, signedIn.body.stage]).toEqual([200, 'signed_in']);
  const csrf = signedIn.body.csrf_token;
  const before = await newestSms(creds.user_phone);
  expect((await phoneCall('POST', '/api/account/step-up/sms?for=pair_phone', undefined, csrf)).status).toBe(204);
  const code = await smsCodeAfter(creds.user_phone, before);
  const proven = await phoneCall('POST', '/api/account/step-up?for=pair_phone', { code }, csrf);
  expect(proven.body.done, JSON.stringify(proven.body)).toBe(true);
  const start = await phoneCall('POST', '/api/account/phone/start', undefined, csrf);
  expect(start.status, JSON.stringify(start.body)).toBe(200);
  const paired = await phoneCall('POST', '/api/account/phone/finish', await phoneCeremony('create', start.body), csrf);
  expect(paired.status, JSON.stringify(paired.body)).toBe(201);
  expect((await phoneCall('GET', '/device/api/phone')).status).toBe(200);
});

test.afterAll(async () => {
  await browserContext?.close();
  await phoneContext?.close();
  // The suite's later journeys find the user with no paired phone.
  await resetUser();
  await advanceServerClock(31);
});

test('the second step waits for the paired phone, which allows it: signed in', async () => {
  await signIn(user, creds.user_email, creds.user_password);
  await expect(user.getByRole('heading', { name: 'Second step' })).toBeVisible();
  await expect(user.getByText('Confirm this sign-in on your paired phone')).toBeVisible();
  const ask = user.getByRole('button', { name: 'Confirm on my paired phone' });
  await expect(ask).toHaveClass(/primary/);
  await ask.click();
  await expect(user.getByRole('status')).toHaveText('Check your phone: approve the sign-in there (2 minutes)');
  await expect(ask).toBeDisabled();
  const { violations } = await new AxeBuilder({ page: user }).withTags(WCAG).analyze();
  const blocking = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(blocking.map((v) => `${v.id}: ${v.help}`)).toEqual([]);

  await answerOnPhone('allow');
  await expect(user.getByRole('heading', { name: 'Your security' })).toBeVisible();
  await expect(user.getByText(`Signed in as ${creds.user_email}`)).toBeVisible();
  await user.goto(`${origin}/account/activity`);
  await expect(user.getByText('Paired phone allowed a sign-in').first()).toBeVisible();
});

test('the security page shows the paired phone, its notifications off', async () => {
  await user.goto(`${origin}/account/security`);
  await expect(user.getByRole('heading', { name: 'Your security' })).toBeVisible();
  await expect(user.getByRole('heading', { name: 'Paired phone', level: 2 })).toBeVisible();
  await expect(user.getByText(/^Paired on \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$/)).toBeVisible();
  // It allowed the sign-in just before.
  await expect(user.getByText(/^Last used \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$/)).toBeVisible();
  // The test phone never subscribes to Web Push.
  await expect(
    user.getByText(
      'Notifications off \u2014 approvals reach this phone only while its Passgate app is open. Turn them on from the phone.',
    ),
  ).toBeVisible();
  await expect(user.getByText('Notifications on')).toBeHidden();
  const unpair = user.getByRole('button', { name: 'Unpair your phone' });
  await expect(unpair).toBeVisible();
  await expectAccessible(user);

  // Declined at the confirmation: still paired.
  user.once('dialog', (dialog) => dialog.dismiss());
  await unpair.click();
  await expect(unpair).toBeVisible();
  await expect(user.getByText('No phone is paired')).toBeHidden();

  // At a phone's size too.
  await user.setViewportSize({ width: 390, height: 844 });
  await expect(unpair).toBeVisible();
  await expectNoSideScroll(user);
  await expectAccessible(user);
  await user.setViewportSize({ width: 1280, height: 800 });
});

test('the phone refuses: the page says so and stops asking', async () => {
  await user.getByRole('button', { name: 'Sign out', exact: true }).click();
  await expect(user.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  // A new request at most every 30 s.
  await advanceServerClock(31);
  await signIn(user, creds.user_email, creds.user_password);
  await expect(user.getByRole('heading', { name: 'Second step' })).toBeVisible();
  await user.getByRole('button', { name: 'Confirm on my paired phone' }).click();
  await expect(user.getByRole('status')).toHaveText('Check your phone: approve the sign-in there (2 minutes)');
  let polls = 0;
  user.on('request', (r) => {
    if (r.method() === 'GET' && new URL(r.url()).pathname === '/api/account/sign-in/phone') polls += 1;
  });
  await answerOnPhone('deny');
  await expect(user.getByRole('alert')).toHaveText('Your phone refused this sign-in.');
  await expect(user.getByRole('status')).toBeHidden();
  await expect(user.getByRole('button', { name: 'Confirm on my paired phone' })).toBeEnabled();
  // Polling stopped with the answer.
  const after = polls;
  await user.waitForTimeout(4_500);
  expect(polls).toBe(after);

  // Cancel: out, with the admin's reset of the phone as where to turn.
  await user.getByRole('button', { name: 'Cancel' }).click();
  await expect(user.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await expect(user.getByRole('status')).toHaveText(
    "You signed out. Lost your phone? Ask your company's admin to reset your second factor or your paired phone; then sign in and set up your new phone.",
  );
});

test('the user unpairs the phone from the security page', async () => {
  // Signed in again with the phone (a new request at most every 30 s).
  await advanceServerClock(31);
  await signIn(user, creds.user_email, creds.user_password);
  await expect(user.getByRole('heading', { name: 'Second step' })).toBeVisible();
  await user.getByRole('button', { name: 'Confirm on my paired phone' }).click();
  await answerOnPhone('allow');
  await expect(user.getByRole('heading', { name: 'Your security' })).toBeVisible();

  const unpair = user.getByRole('button', { name: 'Unpair your phone' });
  user.once('dialog', (dialog) => {
    expect(dialog.message()).toContain('Unpair your phone?');
    return dialog.accept();
  });
  await unpair.click();
  await expect(user.getByRole('status')).toHaveText('Your phone is unpaired.');
  await expect(user.getByText('No phone is paired; you pair one from the phone itself.')).toBeVisible();
  await expect(unpair).toBeHidden();
  await expectAccessible(user);
  // The phone is no longer paired; the security page says so after a reload too.
  expect((await phoneCall('GET', '/device/api/phone')).status).toBe(401);
  await user.reload();
  await expect(user.getByText('No phone is paired; you pair one from the phone itself.')).toBeVisible();
});
