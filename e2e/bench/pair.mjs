// Pairs a phone with the demo user of a running sandbox Passgate, as the
// e2e suite's phone-sign-in spec does, and prints the phone's device
// credential as `NAME=VALUE` (the HttpOnly cookie `passgate_phone`, path
// /device), for page.mjs --cookie.
//
//   node e2e/bench/pair.mjs <origin> <demo.json>
//
// <demo.json> is `passgate demo`'s output (user_email, user_password,
// user_phone). The phone is a browser context with a DevTools virtual
// authenticator (a platform passkey); its requests go from a page of the
// origin (its cookies, its Origin header): sign-in, a step-up for
// `pair_phone` with the code of the SMS it sends (from the sandbox's
// outbox, /dev/sms), then the phone's passkey. Not timed: set-up only.
import { readFileSync } from 'node:fs';
import { launch } from './browser.mjs';

const [origin, demoPath] = process.argv.slice(2);
if (!origin || !/^https?:\/\//.test(origin) || !demoPath) {
  console.error('usage: node pair.mjs <origin> <demo.json>');
  process.exit(2);
}
const creds = JSON.parse(readFileSync(demoPath, 'utf8'));

/** A JSON request from the phone's page (its cookies, its origin). */
function call(page, method, path, body, csrf) {
  return page.evaluate(
    async ({ method, path, body, csrf }) => {
      const headers = {};
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (csrf) headers['x-csrf-token'] = csrf;
      const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await response.text();
      let parsed = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        // not JSON: kept as text for the error message
      }
      return { status: response.status, body: parsed };
    },
    { method, path, body, csrf },
  );
}

/** Fails with what the server answered unless `status` is the expected one. */
function expectStatus(what, answer, status) {
  if (answer.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${answer.status}: ${JSON.stringify(answer.body)}`);
  }
  return answer.body;
}

/** The newest SMS to `to` in the sandbox's outbox. */
async function newestSms(to) {
  const response = await fetch(`${origin}/dev/sms?limit=1&to=${encodeURIComponent(to)}`);
  if (!response.ok) throw new Error(`/dev/sms answered ${response.status}`);
  return (await response.json())[0];
}

/** The code of the first SMS to `to` newer than `before` (waits up to 10 s). */
async function smsCodeAfter(to, before) {
  for (let i = 0; i < 100; i++) {
    const sms = await newestSms(to);
    const fresh = sms && (sms.sent_at !== before?.sent_at || sms.body !== before?.body);
    if (fresh && /^\d{6}$/.test(sms.otp ?? '')) return sms.otp;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no step-up code sent to ${to}`);
}

/**
 * The phone's WebAuthn registration on the server's options (webauthn-rs's
 * JSON: base64url strings, `null` for absent members); the answer as
 * webauthn-rs reads it. As phoneCeremony('create') in the e2e suite.
 */
function create(page, options) {
  return page.evaluate(async (options) => {
    const bytes = (text) => {
      const base64 = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
      return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    };
    const text = (buffer) =>
      btoa(String.fromCharCode(...new Uint8Array(buffer)))
        .replace(/\+/g, '-')
        .replace(/\//g, '_')
        .replace(/=+$/, '');
    const publicKey = JSON.parse(JSON.stringify(options, (_, v) => (v === null ? undefined : v))).publicKey;
    publicKey.challenge = bytes(publicKey.challenge);
    if (publicKey.user) publicKey.user.id = bytes(publicKey.user.id);
    for (const credential of publicKey.excludeCredentials ?? []) credential.id = bytes(credential.id);
    const credential = await navigator.credentials.create({ publicKey });
    const response = {};
    for (const field of ['attestationObject', 'clientDataJSON']) response[field] = text(credential.response[field]);
    const id = text(credential.rawId);
    return { id, rawId: id, response, type: 'public-key', extensions: {} };
  }, options);
}

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  // A platform passkey, as e2e/fixtures/approval-page.ts's addVirtualAuthenticator.
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  // Any page of the origin: the phone's calls go from there.
  await page.goto(`${origin}/`);

  const signedIn = expectStatus(
    'sign-in',
    await call(page, 'POST', '/api/account/sign-in', { email: creds.user_email, password: creds.user_password }),
    200,
  );
  if (signedIn.stage !== 'signed_in') throw new Error(`sign-in: stage ${signedIn.stage}`);
  const csrf = signedIn.csrf_token;
  const before = await newestSms(creds.user_phone);
  expectStatus('step-up SMS', await call(page, 'POST', '/api/account/step-up/sms?for=pair_phone', undefined, csrf), 204);
  const code = await smsCodeAfter(creds.user_phone, before);
  const proven = await call(page, 'POST', '/api/account/step-up?for=pair_phone', { code }, csrf);
  if (proven.body?.done !== true) throw new Error(`step-up: ${proven.status} ${JSON.stringify(proven.body)}`);
  const options = expectStatus('phone/start', await call(page, 'POST', '/api/account/phone/start', undefined, csrf), 200);
  expectStatus('phone/finish', await call(page, 'POST', '/api/account/phone/finish', await create(page, options), csrf), 201);

  const cookie = (await context.cookies()).find((c) => /(^|-)passgate_phone$/.test(c.name));
  if (!cookie) throw new Error('paired, but no passgate_phone cookie was set');
  console.log(`${cookie.name}=${cookie.value}`);
} finally {
  await browser.close();
}
