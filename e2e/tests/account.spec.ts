import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import {
  advanceServerClock,
  ageTheProof,
  newestSms,
  nextCode,
  screenshots,
  signIn,
  smsCodeAfter,
  stepUpDue,
  totp,
} from '../fixtures/account';
import { addVirtualAuthenticator } from '../fixtures/approval-page';
import { serverState } from '../fixtures/state';

// The account area as a user and an admin use it, on phones.
test.describe.configure({ mode: 'serial' });

const { creds, origin } = serverState();
let userContext: BrowserContext;
let adminContext: BrowserContext;
let user: Page;
let admin: Page;
let secret = '';

test.beforeAll(async ({ browser }) => {
  const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
  // The user copies their authenticator key: the test reads it back.
  userContext = await browser.newContext({ ...phone, permissions: ['clipboard-read', 'clipboard-write'] });
  adminContext = await browser.newContext(phone);
  user = await userContext.newPage();
  admin = await adminContext.newPage();
});

test.afterAll(async () => {
  await userContext.close();
  await adminContext.close();
});

test('sign in, confirm it\'s you by SMS, set up an authenticator app with its QR code or its link and key, see the recovery codes once', async () => {
  await user.goto(`${origin}/account`);
  await expect(user).toHaveURL(/\/account\/sign-in$/);
  await expect(user.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await screenshots(user, '01-sign-in');
  await signIn(user, creds.user_email, 'not my password at all');
  await expect(user.getByRole('alert')).toHaveText('Wrong email or password');
  await signIn(user, creds.user_email, creds.user_password);
  await expect(user.getByRole('heading', { name: 'Your security' })).toBeVisible();
  await expect(user.getByText(`Signed in as ${creds.user_email}`)).toBeVisible();
  await screenshots(user, '02-security-overview');

  // Binding a factor needs two factors proven within 5 minutes: the
  // password was just typed; with no second factor yet, a code by SMS.
  await user.getByRole('link', { name: 'Set up an authenticator app' }).click();
  await expect(user.getByRole('heading', { name: "Confirm it's you" })).toBeVisible();
  await expect(user.getByRole('img', { name: 'QR code of your authenticator key' })).toHaveCount(0);
  await expect(user.getByRole('button', { name: 'Use a passkey' })).toHaveCount(0);
  await expect(user.getByLabel('Code sent by SMS')).toHaveCount(0);
  await screenshots(user, '03a-step-up-sms');
  const before = await newestSms(creds.user_phone);
  await user.getByRole('button', { name: 'Send me a code by SMS' }).click();
  await expect(user.getByRole('status')).toHaveText('A code was sent by SMS to your phone.');
  const smsCode = await smsCodeAfter(creds.user_phone, before);
  // Another code at once is refused: the page shows the wait.
  await user.getByRole('button', { name: 'Send me a new code by SMS' }).click();
  await expect(user.getByRole('timer')).toContainText(/You can ask for a new code in \d+ seconds/);
  await expect(user.getByRole('button', { name: 'Send me a new code by SMS' })).toBeDisabled();
  await user.getByLabel('Code sent by SMS').fill(smsCode === '000000' ? '111111' : '000000');
  await user.getByRole('button', { name: "Confirm it's me" }).click();
  await expect(user.getByRole('alert')).toContainText('attempts left');
  await screenshots(user, '03b-step-up-sms-code');
  await user.getByLabel('Code sent by SMS').fill(smsCode);
  await user.getByRole('button', { name: "Confirm it's me" }).click();
  // Confirmed: the set-up goes on by itself.
  await expect(user.getByRole('img', { name: 'QR code of your authenticator key' })).toBeVisible();
  await expect(user.getByRole('heading', { name: "Confirm it's you" })).toHaveCount(0);
  // On the very phone that would scan it: the key in groups of four, a
  // link that opens the app with it, and a button that copies it unspaced.
  const shown = (await user.getByTestId('totp-secret').textContent()) ?? '';
  expect(shown).toMatch(/^[A-Z2-7]{4}( [A-Z2-7]{4}){7}$/);
  secret = shown.replace(/ /g, '');
  const open = user.getByRole('link', { name: 'Open in authenticator app' });
  await expect(open).toHaveAttribute('href', /^otpauth:\/\/totp\//);
  expect(new URL((await open.getAttribute('href')) ?? '').searchParams.get('secret')).toBe(secret);
  await user.getByRole('button', { name: 'Copy key' }).click();
  await expect(user.getByRole('status')).toHaveText('Copied');
  expect(await user.evaluate(() => navigator.clipboard.readText())).toBe(secret);
  await screenshots(user, '03-authenticator-setup');
  await user.getByLabel('Code shown by the app').fill(totp(secret, await advanceServerClock(1) + 300_000));
  await user.getByRole('button', { name: 'Confirm' }).click();
  await expect(user.getByRole('alert')).toContainText('Wrong code: 4 attempts left');
  await user.getByLabel('Code shown by the app').fill(await nextCode(secret));
  await user.getByRole('button', { name: 'Confirm' }).click();
  await expect(user.getByRole('heading', { name: 'Recovery codes' })).toBeVisible();
  await expect(user.getByTestId('recovery-codes').getByRole('listitem')).toHaveCount(10);
  await screenshots(user, '04-recovery-codes');
  await user.getByRole('button', { name: 'I saved them' }).click();
  await expect(user.getByText(/^Added \d{4}-\d\d-\d\d/)).toBeVisible();
  await expect(user.getByText('9 recovery codes left')).toHaveCount(0);
  await expect(user.getByText(/10 recovery codes left/)).toBeVisible();
});

test('five minutes after the proof, binding a factor asks to confirm it\'s you again', async () => {
  await expect(user.getByRole('heading', { name: 'Your security' })).toBeVisible();
  expect((await stepUpDue(user)).done).toBe(true);
  await ageTheProof(user);
  expect(await stepUpDue(user)).toEqual({ done: false, password: true, ways: ['totp'] });
  await user.getByRole('button', { name: 'Add a passkey' }).click();
  await expect(user.getByRole('heading', { name: "Confirm it's you" })).toBeVisible();
  await expect(user.getByLabel('Password')).toBeVisible();
  await expect(user.getByLabel('Code from your app')).toBeVisible();
  await expect(user.getByRole('button', { name: 'Send me a code by SMS' })).toHaveCount(0);
  await screenshots(user, '03c-step-up-again');
  await user.getByRole('button', { name: 'Cancel' }).click();
  await expect(user.getByRole('heading', { name: "Confirm it's you" })).toHaveCount(0);
  await expect(user.getByRole('button', { name: 'Add a passkey' })).toBeVisible();
});

test('sign out, then sign in with a code from the app', async () => {
  await user.getByRole('button', { name: 'Sign out', exact: true }).click();
  await expect(user.getByText('You signed out.')).toBeVisible();
  // Each move to another page puts focus on what that page is for.
  await expect(user.getByLabel('Email')).toBeFocused();
  await signIn(user, creds.user_email, creds.user_password);
  await expect(user.getByRole('heading', { name: 'Second step' })).toBeVisible();
  await expect(user.getByLabel('Code from your app')).toBeFocused();
  // Without the phone, a way out, and where to turn.
  await user.getByRole('button', { name: 'Cancel' }).click();
  await expect(user.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await expect(user.getByText(/Lost your phone\? Sign in and use a recovery code/)).toBeVisible();
  await expect(user.getByLabel('Email')).toBeFocused();
  await signIn(user, creds.user_email, creds.user_password);
  await expect(user.getByRole('heading', { name: 'Second step' })).toBeVisible();
  await expect(user.getByRole('button', { name: 'Sign out', exact: true })).toBeVisible();
  await screenshots(user, '05-second-step');
  await user.getByLabel('Code from your app').fill('000000');
  await user.getByRole('button', { name: 'Continue' }).click();
  await expect(user.getByRole('alert')).toContainText('attempts left');
  await user.getByLabel('Code from your app').fill(await nextCode(secret));
  await user.getByRole('button', { name: 'Continue' }).click();
  await expect(user.getByRole('heading', { name: 'Your security' })).toBeVisible();
});

test('the activity page shows the sign-ins and the new factor', async () => {
  await user.getByRole('link', { name: 'Activity' }).click();
  await expect(user.getByRole('heading', { name: 'Activity' })).toBeVisible();
  await expect(user.getByRole('heading', { name: 'Activity', level: 1 })).toBeFocused();
  // Newest first: the journeys before this one (a11y) added apps too.
  await expect(user.getByText('Added: authenticator app').first()).toBeVisible();
  // The password step of a two-step sign-in is not a sign-in.
  await expect(user.getByText('Password accepted, second step asked').first()).toBeVisible();
  await expect(user.getByText('Signed in', { exact: true }).first()).toBeVisible();
  await user.getByLabel('Show').selectOption('factor');
  await expect(user.getByText('Signed in', { exact: true })).toHaveCount(0);
  await expect(user.getByText('Wrong code').first()).toBeVisible();
  await screenshots(user, '06-activity');
  // A page whose content loads after it: focus waits for its heading.
  await user.getByRole('link', { name: 'Security' }).click();
  await expect(user.getByRole('heading', { name: 'Your security', level: 1 })).toBeFocused();
});

test('a trusted browser skips the second step; once no longer trusted, it does not', async () => {
  await user.getByRole('button', { name: 'Sign out', exact: true }).click();
  await signIn(user, creds.user_email, creds.user_password);
  await user.getByLabel('Code from your app').fill(await nextCode(secret));
  await user.getByLabel(/Trust this browser for 90 days/).check();
  await user.getByRole('button', { name: 'Continue' }).click();
  await expect(user.getByRole('heading', { name: 'Trusted browsers' })).toBeVisible();
  await expect(user.getByRole('button', { name: /^Stop trusting (?!all browsers)/ })).toHaveCount(1);
  await screenshots(user, '06b-trusted-browsers');

  await user.getByRole('button', { name: 'Sign out', exact: true }).click();
  await signIn(user, creds.user_email, creds.user_password);
  await expect(user.getByRole('heading', { name: 'Your security' })).toBeVisible();

  user.once('dialog', (dialog) => void dialog.accept());
  await user.getByRole('button', { name: 'Stop trusting all browsers' }).click();
  await expect(user.getByText('None. When you sign in with your second factor')).toBeVisible();
  await user.getByRole('button', { name: 'Sign out', exact: true }).click();
  await signIn(user, creds.user_email, creds.user_password);
  await expect(user.getByRole('heading', { name: 'Second step' })).toBeVisible();
  await user.getByLabel('Code from your app').fill(await nextCode(secret));
  await user.getByRole('button', { name: 'Continue' }).click();
  await expect(user.getByRole('heading', { name: 'Your security' })).toBeVisible();
});

test('the user makes new recovery codes, then replaces a lost app with the password and a code by SMS', async () => {
  // Just signed in with two factors: the codes are made at once.
  await user.getByRole('link', { name: 'New recovery codes' }).click();
  await expect(user.getByRole('heading', { name: 'New recovery codes' })).toBeVisible();
  await user.getByRole('button', { name: 'Make new codes' }).click();
  await expect(user.getByTestId('recovery-codes').getByRole('listitem')).toHaveCount(10);
  await expect(user.getByRole('status')).toHaveText('Your new recovery codes are ready; the old ones no longer work.');
  await screenshots(user, '04b-new-recovery-codes');
  await user.getByRole('button', { name: 'I saved them' }).click();
  await expect(user.getByText(/10 recovery codes left/)).toBeVisible();

  // Later, without the app: the password and the registered phone.
  await ageTheProof(user);
  await user.getByRole('link', { name: 'Replace app' }).click();
  await expect(user.getByRole('heading', { name: 'Replace your authenticator app' })).toBeVisible();
  await expect(user.getByRole('heading', { name: "Confirm it's you" })).toBeVisible();
  await expect(user.getByLabel('Code from your app')).toBeVisible();
  await user.getByLabel('Password').fill(creds.user_password);
  const before = await newestSms(creds.user_phone);
  await user.getByRole('button', { name: 'Lost your app? Get a code by SMS' }).click();
  await expect(user.getByLabel('Code sent by SMS')).toBeVisible();
  await screenshots(user, '03d-replace-lost-app');
  await user.getByLabel('Code sent by SMS').fill(await smsCodeAfter(creds.user_phone, before));
  await user.getByRole('button', { name: "Confirm it's me" }).click();
  await expect(user.getByRole('img', { name: 'QR code of your authenticator key' })).toBeVisible();
  const replacement = ((await user.getByTestId('totp-secret').textContent()) ?? '').replace(/\s/g, '');
  expect(replacement).toMatch(/^[A-Z2-7]{32}$/);
  expect(replacement).not.toBe(secret);
  await user.getByLabel('Code shown by the app').fill(await nextCode(replacement));
  await user.getByRole('button', { name: 'Confirm' }).click();
  await expect(user.getByRole('status')).toHaveText(/Your new authenticator app is set up: the old one and its recovery codes no longer work/);
  await expect(user.getByTestId('recovery-codes').getByRole('listitem')).toHaveCount(10);
  await user.getByRole('button', { name: 'I saved them' }).click();
  await expect(user.getByRole('heading', { name: 'Your security' })).toBeVisible();

  // The old app no longer signs in; the new one does.
  const old = secret;
  secret = replacement;
  await user.getByRole('button', { name: 'Sign out', exact: true }).click();
  await signIn(user, creds.user_email, creds.user_password);
  await user.getByLabel('Code from your app').fill(await nextCode(old));
  await user.getByRole('button', { name: 'Continue' }).click();
  await expect(user.getByRole('alert')).toContainText('attempts left');
  await user.getByLabel('Code from your app').fill(await nextCode(secret));
  await user.getByRole('button', { name: 'Continue' }).click();
  await expect(user.getByRole('heading', { name: 'Your security' })).toBeVisible();
});

test('with an authenticator app, confirm it\'s you with the password and a code, then the passkey is added', async () => {
  await addVirtualAuthenticator(user);
  await ageTheProof(user);
  await user.getByRole('button', { name: 'Add a passkey' }).click();
  await expect(user.getByRole('heading', { name: "Confirm it's you" })).toBeVisible();
  await expect(user.getByRole('button', { name: 'Use a passkey' })).toHaveCount(0);
  await user.getByLabel('Password').fill('not my password at all');
  await user.getByLabel('Code from your app').fill(await nextCode(secret));
  await user.getByRole('button', { name: "Confirm it's me" }).click();
  await expect(user.getByRole('alert')).toBeVisible();
  await expect(user.getByLabel('Password')).toHaveValue('');
  await user.getByLabel('Password').fill(creds.user_password);
  await user.getByLabel('Code from your app').fill(await nextCode(secret));
  await user.getByRole('button', { name: "Confirm it's me" }).click();
  // Confirmed: the passkey is created without another click.
  await expect(user.getByRole('button', { name: 'Remove Passkey' })).toBeVisible();
  await expect(user.getByRole('heading', { name: "Confirm it's you" })).toHaveCount(0);
});

test('rename the passkey; sign in with it from the autofill, by a button, or as the second step', async () => {
  // Rename, thought better of: Cancel keeps the name.
  await user.getByRole('button', { name: 'Rename Passkey' }).click();
  await user.getByLabel('New name').fill('Not this');
  await user.getByRole('button', { name: 'Cancel' }).click();
  await expect(user.getByLabel('New name')).toHaveCount(0);
  await expect(user.getByText('Not this')).toHaveCount(0);
  await user.getByRole('button', { name: 'Rename Passkey' }).click();
  await expect(user.getByLabel('New name')).toHaveValue('');
  await user.getByLabel('New name').fill('Work phone');
  await user.getByRole('button', { name: 'Save' }).click();
  await expect(user.getByText('Work phone')).toBeVisible();
  await screenshots(user, '06c-passkeys');

  // The sign-in page asks for a passkey through the email field's autofill
  // (conditional mediation); DevTools' virtual authenticator answers such
  // a request at once, as a user picking the suggestion: signed in with
  // nothing typed. The security page stays on screen until the sign-out's
  // answer, so seeing it proves nothing: wait for the autofill's sign-in
  // itself, or the reload below can land after the server ended the
  // session and before the new one exists (the sign-in page then shows).
  const autofillSignIn = user.waitForResponse(
    (r) => r.request().method() === 'POST' && /^\/api\/account\/passkey-sign-in\/[^/]+$/.test(new URL(r.url()).pathname),
  );
  await user.getByRole('button', { name: 'Sign out', exact: true }).click();
  expect((await autofillSignIn).status()).toBe(200);
  await expect(user).toHaveURL(/\/account\/security$/);
  await expect(user.getByRole('heading', { name: 'Your security' })).toBeVisible();
  await expect(user.getByText(`Signed in as ${creds.user_email}`)).toBeVisible();

  // A browser without passkey autofill: the button, then the passkey as
  // the second step after the password.
  await user.addInitScript(() => {
    Object.defineProperty(PublicKeyCredential, 'isConditionalMediationAvailable', { value: async () => false });
  });
  await user.reload();
  await user.getByRole('button', { name: 'Sign out', exact: true }).click();
  await expect(user.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await expect(user.getByLabel('Email')).toHaveAttribute('autocomplete', 'username webauthn');
  await user.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await expect(user.getByRole('heading', { name: 'Your security' })).toBeVisible();
  await expect(user.getByText(`Signed in as ${creds.user_email}`)).toBeVisible();

  await user.getByRole('button', { name: 'Sign out', exact: true }).click();
  await signIn(user, creds.user_email, creds.user_password);
  await expect(user.getByRole('heading', { name: 'Second step' })).toBeVisible();
  await screenshots(user, '05b-second-step-passkey');
  await user.getByRole('button', { name: 'Use a passkey' }).click();
  await expect(user.getByRole('heading', { name: 'Your security' })).toBeVisible();
  await expect(user.locator('li', { hasText: 'Work phone' })).toContainText('last used');

  // Removed by its owner, once confirmed: the first answer keeps it.
  let asked = '';
  user.once('dialog', (dialog) => { asked = dialog.message(); void dialog.dismiss(); });
  await user.getByRole('button', { name: 'Remove Work phone' }).click();
  await expect.poll(() => asked).toContain('Remove the passkey “Work phone”?');
  await expect(user.getByText('Work phone')).toBeVisible();
  user.once('dialog', (dialog) => void dialog.accept());
  await user.getByRole('button', { name: 'Remove Work phone' }).click();
  await expect(user.getByText('Work phone')).toHaveCount(0);
});

test('the admin reports the factors, forces two-factor, removes the app; the user sets up a new one', async () => {
  await signIn(admin, creds.admin_email, creds.admin_password);
  await expect(admin.getByRole('heading', { name: 'Your security' })).toBeVisible();
  await admin.getByRole('link', { name: 'Company' }).click();
  await expect(admin.getByRole('heading', { name: 'Users within the company' })).toBeVisible();
  const title = admin.getByRole('heading', { level: 1 });
  await expect(title).toBeFocused();
  const camille = admin.getByRole('row', { name: /Camille Martin/ });
  await expect(camille).toContainText('Added');
  await expect(camille).toContainText('Last used');
  // On a phone, a card per user: every Remove button within the screen's width.
  const removes = await admin.getByRole('button', { name: /^Remove / }).all();
  expect(removes.length).toBeGreaterThan(0);
  for (const button of removes) {
    const box = await button.boundingBox();
    expect(box, 'a Remove button is laid out').not.toBeNull();
    expect(box!.x).toBeGreaterThanOrEqual(0);
    expect(box!.x + box!.width).toBeLessThanOrEqual(390);
  }
  await screenshots(admin, '07-company');

  await admin.getByLabel('Forced: every user sets it up at their next sign-in').check();
  const reloaded = admin.waitForResponse((r) => r.request().method() === 'GET' && new URL(r.url()).pathname === '/api/account/company');
  await admin.getByRole('button', { name: 'Save policy' }).click();
  await expect(admin.getByText('Policy saved.')).toBeVisible();
  await (await reloaded).finished();
  // The report drawn again is the same page: focus stays where the user put it.
  await expect(admin.getByRole('button', { name: 'Save policy' })).toBeFocused();
  await expect(title).not.toBeFocused();
  admin.once('dialog', (dialog) => void dialog.accept());
  await admin.getByRole('button', { name: `Remove the authenticator app of ${creds.user_email}` }).click();
  await expect(camille.getByRole('cell').nth(0)).toHaveText('None');
  // The admin's own row offers no removal.
  await expect(admin.getByRole('button', { name: new RegExp(`of ${creds.admin_email}`) })).toHaveCount(0);

  // Forced: the user's next sign-in goes straight to the set-up.
  await user.getByRole('button', { name: 'Sign out', exact: true }).click();
  await signIn(user, creds.user_email, creds.user_password);
  await expect(user.getByText('Your company asks every user for a second factor: set one up to continue.')).toBeVisible();
  await expect(user.getByRole('link', { name: 'Activity' })).toHaveCount(0);
  // A way out without setting one up: signing out stays possible.
  await expect(user.getByRole('button', { name: 'Sign out', exact: true })).toBeVisible();
  // Confirm it's you first, by SMS (no second factor left), then the QR code.
  await expect(user.getByRole('heading', { name: "Confirm it's you" })).toBeVisible();
  await expect(user.getByRole('img', { name: 'QR code of your authenticator key' })).toHaveCount(0);
  await screenshots(user, '08a-forced-step-up');
  const before = await newestSms(creds.user_phone);
  await user.getByRole('button', { name: 'Send me a code by SMS' }).click();
  await user.getByLabel('Code sent by SMS').fill(await smsCodeAfter(creds.user_phone, before));
  await user.getByRole('button', { name: "Confirm it's me" }).click();
  await expect(user.getByRole('img', { name: 'QR code of your authenticator key' })).toBeVisible();
  await screenshots(user, '08-forced-setup');
  secret = ((await user.getByTestId('totp-secret').textContent()) ?? '').replace(/ /g, '');
  await user.getByLabel('Code shown by the app').fill(await nextCode(secret));
  await user.getByRole('button', { name: 'Confirm' }).click();
  await user.getByRole('button', { name: 'I saved them' }).click();
  await expect(user.getByRole('heading', { name: 'Your security' })).toBeVisible();
  await expect(user.getByText('Your company asks every user for a second factor.')).toBeVisible();

  // Back to opt-in, the app removed: the suite's later journeys start clean.
  await admin.reload();
  await admin.getByLabel('Opt-in: each user chooses').check();
  await admin.getByRole('button', { name: 'Save policy' }).click();
  await expect(admin.getByText('Policy saved.')).toBeVisible();
  admin.once('dialog', (dialog) => void dialog.accept());
  await admin.getByRole('button', { name: `Remove the authenticator app of ${creds.user_email}` }).click();
  await expect(admin.getByRole('row', { name: /Camille Martin/ }).getByRole('cell').nth(0)).toHaveText('None');
});

test('a minute before five idle minutes end the session, a warning offers to stay', async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await page.clock.install();
  await signIn(page, creds.admin_email, creds.admin_password);
  await expect(page.getByRole('heading', { name: 'Your security' })).toBeVisible();
  await page.clock.runFor('04:05');
  // Said once (a screen reader re-reads a live region whenever it
  // changes); the seconds tick on screen, outside every live region.
  await expect(page.getByRole('alert')).toHaveText('You will be signed out in 1 minute without activity.');
  const countdown = page.getByText(/^Time left: 0:\d\d$/);
  const shown = await countdown.textContent();
  const live = () =>
    page.evaluate(() =>
      [...document.querySelectorAll('[role=alert], [role=status], [role=log], [role=timer], [role=marquee], [aria-live]')]
        .map((region) => region.textContent)
        .join(' | '),
    );
  const said = await live();
  await page.clock.runFor(2000);
  await expect(countdown).not.toHaveText(shown ?? '');
  expect(await live()).toBe(said);
  await screenshots(page, '09-idle-warning');
  await page.getByRole('button', { name: 'Stay signed in' }).click();
  await expect(page.getByRole('alert')).toHaveCount(0);
  // Idle five minutes on the server's clock and the page's: signed out.
  await advanceServerClock(301);
  await page.clock.runFor('05:01');
  await expect(page.getByText('You were signed out after 5 minutes without activity.')).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await context.close();
});

test('a tab reopened after five idle minutes says why it shows the sign-in', async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await signIn(page, creds.admin_email, creds.admin_password);
  await expect(page.getByRole('heading', { name: 'Your security' })).toBeVisible();
  // The tab slept (its timer never ran) while the server's five minutes
  // went by; reopened, the page learns from the server.
  await advanceServerClock(301);
  await page.goto(`${origin}/account/security`);
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await expect(page.getByText('You were signed out after 5 minutes without activity.')).toBeVisible();
  await context.close();
});
