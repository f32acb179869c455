import AxeBuilder from '@axe-core/playwright';
import { expect, request, test, type BrowserContext, type Page } from '@playwright/test';
import { advanceServerClock, newestSms, nextCode, removePasskeysOf, signIn, smsCodeAfter } from '../fixtures/account';
import { addVirtualAuthenticator } from '../fixtures/approval-page';
import { Partner, transferBody } from '../fixtures/partner';
import { serverState } from '../fixtures/state';

// An automated accessibility check (axe-core, WCAG 2.1 A and AA rules) of
// every account page and of the approval page in its main states, at a
// phone's and a desktop's size: no serious or critical violation.
test.describe.configure({ mode: 'serial' });

const { creds, origin } = serverState();
const partner = new Partner();
const WCAG = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

const SIZES = [
  { name: 'phone', options: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true } },
  { name: 'desktop', options: { viewport: { width: 1280, height: 800 }, isMobile: false, hasTouch: false, deviceScaleFactor: 1 } },
];

/** The page as it is now has no serious or critical violation (each one listed if it has). */
async function expectAccessible(page: Page, what: string): Promise<void> {
  const { violations } = await new AxeBuilder({ page }).withTags(WCAG).analyze();
  const blocking = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const report = blocking
    .map((v) => `${v.id} (${v.impact}): ${v.help}\n${v.nodes.map((n) => `    ${n.target.join(' ')}: ${n.failureSummary ?? ''}`).join('\n')}`)
    .join('\n  ');
  // Soft: one run lists every page's violations, not only the first one's.
  expect.soft(blocking.length, `${what} at ${page.viewportSize()?.width}px:\n  ${report}`).toBe(0);
}

/**
 * The company's admin, over the API (as `removePasskeysOf`): sets the
 * two-factor policy and removes the user's authenticator app, so that each
 * size starts from, and the suite's later journeys find, a user with no
 * second factor under an opt-in policy.
 */
async function asAdmin(act: (admin: { policy: (p: string) => Promise<void>; removeApp: () => Promise<void> }) => Promise<void>): Promise<void> {
  const api = await request.newContext({ baseURL: origin, extraHTTPHeaders: { origin } });
  try {
    const signedIn = await api.post('/api/account/sign-in', { data: { email: creds.admin_email, password: creds.admin_password } });
    expect(signedIn.status()).toBe(200);
    const headers = { 'x-csrf-token': (await signedIn.json()).csrf_token };
    await act({
      policy: async (two_factor) => {
        expect((await api.put('/api/account/company/policy', { headers, data: { two_factor } })).status()).toBe(204);
      },
      removeApp: async () => {
        const users = (await (await api.get('/api/account/company')).json()).users;
        const user = users.find((u: { email: string | null }) => u.email === creds.user_email);
        if (user.authenticator_app) {
          expect((await api.delete(`/api/account/company/users/${user.id}/totp`, { headers })).status()).toBe(204);
        }
      },
    });
    await api.post('/api/account/sign-out', { headers });
  } finally {
    await api.dispose();
  }
}

async function resetUser(): Promise<void> {
  await asAdmin(async (admin) => {
    await admin.policy('opt_in');
    await admin.removeApp();
  });
  await removePasskeysOf(creds.user_email);
}

for (const size of SIZES) {
  test.describe(`at ${size.name} size`, () => {
    let context: BrowserContext;
    let page: Page;
    const heading = (name: string | RegExp) => page.getByRole('heading', { name });

    test.beforeAll(async ({ browser }) => {
      await resetUser();
      context = await browser.newContext(size.options);
      page = await context.newPage();
    });

    test.afterAll(async () => {
      await context.close();
      await resetUser();
      // The step-up SMS sent here is past its 30 s: the next journey may ask for one.
      await advanceServerClock(31);
    });

    test('the account pages of a user', async () => {
      await page.goto(`${origin}/account/sign-in`);
      await expect(heading('Sign in')).toBeVisible();
      await expectAccessible(page, 'sign-in');

      await signIn(page, creds.user_email, creds.user_password);
      await expect(heading('Your security')).toBeVisible();
      await expect(page.getByText('None. When you sign in with your second factor')).toBeVisible();
      await expectAccessible(page, 'security overview');

      // The set-up: confirm it's you by SMS, the key to scan, the recovery codes.
      await page.getByRole('link', { name: 'Set up an authenticator app' }).click();
      await expect(heading("Confirm it's you")).toBeVisible();
      await expectAccessible(page, 'authenticator set-up, confirm it is you');
      const before = await newestSms(creds.user_phone);
      await page.getByRole('button', { name: 'Send me a code by SMS' }).click();
      await expect(page.getByLabel('Code sent by SMS')).toBeVisible();
      await expect(page.getByRole('status')).toBeVisible();
      await expectAccessible(page, 'authenticator set-up, code sent by SMS');
      await page.getByLabel('Code sent by SMS').fill(await smsCodeAfter(creds.user_phone, before));
      await page.getByRole('button', { name: "Confirm it's me" }).click();
      await expect(page.getByRole('img', { name: 'QR code of your authenticator key' })).toBeVisible();
      await expectAccessible(page, 'authenticator set-up, scan');
      const secret = (await page.getByTestId('totp-secret').textContent()) ?? '';
      await page.getByLabel('Code shown by the app').fill(await nextCode(secret));
      await page.getByRole('button', { name: 'Confirm' }).click();
      await expect(heading('Recovery codes')).toBeVisible();
      await expectAccessible(page, 'recovery codes');
      await page.getByRole('button', { name: 'I saved them' }).click();
      await expect(page.getByText(/10 recovery codes left/)).toBeVisible();
      await expect(page.getByText('None. When you sign in with your second factor')).toBeVisible();
      await expectAccessible(page, 'security overview with an authenticator app');

      await page.getByRole('link', { name: 'Activity' }).click();
      await expect(heading('Activity')).toBeVisible();
      await expect(page.getByText('Added: authenticator app').first()).toBeVisible();
      await expectAccessible(page, 'activity');

      // Signed out (a notice), then the second step.
      await page.getByRole('button', { name: 'Sign out', exact: true }).click();
      await expect(page.getByText('You signed out.')).toBeVisible();
      await expectAccessible(page, 'sign-in after signing out');
      await signIn(page, creds.user_email, creds.user_password);
      await expect(heading('Second step')).toBeVisible();
      await expect(page.getByRole('button', { name: 'Use a recovery code' })).toBeVisible();
      await expectAccessible(page, 'second step');
      await page.getByLabel('Code from your app').fill(await nextCode(secret));
      await page.getByRole('button', { name: 'Continue' }).click();
      await expect(heading('Your security')).toBeVisible();

      // The user's own changes: new recovery codes, a replacing app.
      await page.getByRole('link', { name: 'New recovery codes' }).click();
      await expect(page.getByRole('button', { name: 'Make new codes' })).toBeVisible();
      await expectAccessible(page, 'new recovery codes');
      await page.getByRole('link', { name: 'Cancel' }).click();
      await page.getByRole('link', { name: 'Replace app' }).click();
      await expect(heading('Replace your authenticator app')).toBeVisible();
      await expect(page.getByRole('img', { name: 'QR code of your authenticator key' })).toBeVisible();
      await expectAccessible(page, 'replacing the authenticator app, scan');
      await page.getByRole('button', { name: 'Cancel' }).click();
      await expect(heading('Your security')).toBeVisible();

      // Forced two-factor, the app removed: the next sign-in goes to the set-up.
      await asAdmin(async (admin) => {
        await admin.policy('forced');
        await admin.removeApp();
        await signIn(page, creds.user_email, creds.user_password);
        await expect(page.getByText('Your company asks every user for a second factor: set one up to continue.')).toBeVisible();
        await admin.policy('opt_in');
      });
      await expect(heading("Confirm it's you")).toBeVisible();
      await expectAccessible(page, 'forced set-up');
      await page.getByRole('button', { name: 'Cancel' }).click();
      await expect(heading('Sign in')).toBeVisible();
    });

    test('the account pages of an admin', async () => {
      await signIn(page, creds.admin_email, creds.admin_password);
      await expect(heading('Your security')).toBeVisible();
      await page.getByRole('link', { name: 'Company' }).click();
      await expect(heading('Users within the company')).toBeVisible();
      await expect(page.getByRole('row', { name: /Camille Martin/ })).toBeVisible();
      await expectAccessible(page, 'company');
      await page.getByRole('button', { name: 'Save policy' }).click();
      await expect(page.getByText('Policy saved.')).toBeVisible();
      await expectAccessible(page, 'company, policy saved');

      await page.getByRole('link', { name: 'Activity' }).click();
      await expect(heading('Activity')).toBeVisible();
      await expect(page.getByLabel('Whose')).toBeVisible();
      await expect(page.getByText('Signed in', { exact: true }).first()).toBeVisible();
      await expectAccessible(page, 'activity of an admin');
      await page.getByRole('button', { name: 'Sign out', exact: true }).click();
      await expect(heading('Sign in')).toBeVisible();
    });

    test('the approval page', async () => {
      // A page of its own: its passkey authenticator stays out of the account pages.
      const phone = await context.newPage();
      await addVirtualAuthenticator(phone);
      const title = (name: string | RegExp) => phone.getByRole('heading', { name });

      await phone.goto(`${origin}/`);
      await expect(title('Passgate')).toBeVisible();
      await expectAccessible(phone, 'root page');

      // Loading, held back to look at it; then the first approval: a password.
      expect((await partner.transfer(transferBody('12.00'), 'passkey')).status).toBe(428);
      let release: () => void = () => {};
      const held = new Promise<void>((r) => (release = r));
      await phone.route('**/api/approvals/*', async (route) => {
        await held;
        await route.continue();
      });
      await phone.goto(await partner.latestLink());
      await expect(phone.locator('[aria-busy="true"]')).toBeVisible();
      await expectAccessible(phone, 'approval loading');
      release();
      await expect(title('Approve a transfer')).toBeVisible();
      await expectAccessible(phone, 'approval, first passkey');
      await phone.getByRole('button', { name: 'Create a passkey and approve' }).click();
      await expect(phone.getByRole('alert')).toContainText('Enter your Passgate password');
      await expectAccessible(phone, 'approval, error');
      await phone.getByLabel('Your Passgate password').fill(creds.user_password);
      await phone.getByRole('button', { name: 'Create a passkey and approve' }).click();
      await expect(phone.getByRole('status')).toHaveText(/Your passkey is ready/);
      await expectAccessible(phone, 'approval, passkey ready');
      await phone.getByRole('button', { name: 'Approve with your passkey' }).click();
      await expect(title('Approved')).toBeVisible();
      await expectAccessible(phone, 'approval, approved');

      // With a passkey: approve with it, or deny.
      expect((await partner.transfer(transferBody('13.00'), 'passkey')).status).toBe(428);
      await phone.goto(await partner.latestLink());
      await expect(phone.getByRole('button', { name: 'Approve with passkey' })).toBeVisible();
      await expectAccessible(phone, 'approval, with a passkey');
      await phone.getByRole('button', { name: 'Deny' }).click();
      await expect(title('Denied')).toBeVisible();
      await expectAccessible(phone, 'approval, denied');

      await phone.goto(`${origin}/sca/${'A'.repeat(43)}`);
      await expect(title('Link not valid')).toBeVisible();
      await expectAccessible(phone, 'approval, unknown link');

      // The new passkey: the second step offers it alone, the overview lists it.
      await signIn(phone, creds.user_email, creds.user_password);
      await expect(title('Second step')).toBeVisible();
      await expect(phone.getByRole('button', { name: 'Use a passkey' })).toBeVisible();
      await expectAccessible(phone, 'second step with a passkey');
      await phone.getByRole('button', { name: 'Use a passkey' }).click();
      await expect(title('Your security')).toBeVisible();
      await expect(phone.getByRole('button', { name: 'Rename Passkey' })).toBeVisible();
      await expect(phone.getByText('None. When you sign in with your second factor')).toBeVisible();
      await expectAccessible(phone, 'security overview with a passkey');
      await phone.getByRole('button', { name: 'Rename Passkey' }).click();
      await expect(phone.getByLabel('New name')).toBeVisible();
      await expectAccessible(phone, 'security overview, renaming a passkey');
      await phone.close();
    });
  });
}
