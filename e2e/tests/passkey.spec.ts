import { expect, test, type BrowserContext, type CDPSession, type Page } from '@playwright/test';
import { removePasskeysOf } from '../fixtures/account';
import { ApprovalPage, addVirtualAuthenticator } from '../fixtures/approval-page';
import { Partner, transferBody } from '../fixtures/partner';
import { serverState } from '../fixtures/state';

// One phone (browser context) holding one passkey across the steps, as a
// user would: the first approval creates it, the next ones use it.
test.describe.configure({ mode: 'serial' });

let context: BrowserContext;
let page: Page;
let approval: ApprovalPage;
let authenticator: { cdp: CDPSession; id: string };
const partner = new Partner();

test.beforeAll(async ({ browser }) => {
  // A user with no passkey yet, whatever the journeys before left.
  await removePasskeysOf(serverState().creds.user_email);
  context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  page = await context.newPage();
  approval = new ApprovalPage(page);
  authenticator = await addVirtualAuthenticator(page);
});

test.afterAll(async () => {
  await context.close();
});

test('first time: create a passkey from the SMS link, approve, replay once', async () => {
  const body = transferBody('1200.00');
  const first = await partner.transfer(body, 'passkey');
  expect(first.status).toBe(428);
  expect(first.body.message).toBe('Passkey verification required');
  const token: string = first.body.sca_session_token;

  await approval.open(await partner.latestLink());
  await expect(approval.heading('Approve a transfer')).toBeVisible();
  await expect(page.getByText('Demo Accounting App asks for your approval')).toBeVisible();
  await expect(page.getByText('1,200.00 EUR')).toBeVisible();
  await expect(page.getByText('ACME SAS')).toBeVisible();
  await expect(page.getByText('FR76 3000 6000 0112 3456 7890 189')).toBeVisible();
  await expect(page.getByRole('timer')).toContainText(/Expires in 1[45]:\d\d/);
  await approval.screenshot('01-approval-first-time');
  // Keyboard order: the password, the approval, then the refusal.
  await page.keyboard.press('Tab');
  await expect(approval.password).toBeFocused();
  await page.keyboard.press('Tab');
  await expect(approval.createPasskey).toBeFocused();
  await page.keyboard.press('Tab');
  await expect(approval.deny).toBeFocused();

  // The link alone cannot create a passkey: the password is the second factor.
  await approval.createPasskey.click();
  await expect(approval.alert).toContainText('Enter your Passgate password');
  await approval.password.fill('not my password');
  await approval.createPasskey.click();
  await expect(approval.alert).toContainText('Wrong password: 4 attempts left');
  await approval.screenshot('01b-wrong-password');
  await approval.password.fill(serverState().creds.user_password);
  await approval.createPasskey.click();
  // The new passkey signed nothing of the transfer yet: one more touch
  // approves with it, over a challenge bound to the transfer.
  const approveWithNewPasskey = page.getByRole('button', { name: 'Approve with your passkey' });
  await expect(page.getByRole('status')).toHaveText(/Your passkey is ready\. Approve with it/);
  await expect(approveWithNewPasskey).toBeEnabled();
  await expect(approval.password).toHaveCount(0);
  await approval.screenshot('01c-passkey-ready');
  expect((await partner.transfer(body, 'passkey', token)).body.code).toBe('sca_session_pending');
  await approveWithNewPasskey.click();
  await approval.expectResult('Approved');
  await approval.screenshot('02-approved');
  // The user is told, by SMS, that a passkey was added and where to remove it.
  const notice = (await partner.call('GET', `/dev/sms?to=${encodeURIComponent(partner.phone)}`)).body[0];
  expect(notice.body).toContain('a passkey was added');
  expect(notice.body).toContain('/account/security');

  const polled = await partner.poll(token);
  expect(polled.body).toEqual({ result: 'allow', canceled_at: null });
  const replay = await partner.transfer(body, 'passkey', token);
  expect(replay.status).toBe(201);
  expect(replay.body.transfer.amount).toBe('1200.00');
  const again = await partner.transfer(body, 'passkey', token);
  expect(again.status).toBe(412);
  expect(again.body.code).toBe('sca_session_consumed');

  await page.reload();
  await approval.expectResult('Already used');
  await approval.screenshot('03-already-used');
});

test('a second transfer is approved with the existing passkey', async () => {
  const body = transferBody('80.00');
  const token: string = (await partner.transfer(body, 'passkey')).body.sca_session_token;
  await approval.open(await partner.latestLink());
  await expect(approval.approveWithPasskey).toBeVisible();
  await expect(approval.createPasskey).toHaveCount(0);
  await approval.screenshot('04-approval-with-passkey');
  await approval.approveWithPasskey.click();
  await approval.expectResult('Approved');
  expect((await partner.poll(token)).body.result).toBe('allow');
  expect((await partner.transfer(body, 'passkey', token)).status).toBe(201);
});

test('a cancelled passkey prompt shows a readable error and keeps the request open', async () => {
  const body = transferBody('15.00');
  const token: string = (await partner.transfer(body, 'passkey')).body.sca_session_token;
  await approval.open(await partner.latestLink());
  // The user fails (or refuses) verification on the device.
  await authenticator.cdp.send('WebAuthn.setUserVerified', { authenticatorId: authenticator.id, isUserVerified: false });
  await approval.approveWithPasskey.click();
  await expect(approval.alert).toContainText(/cancelled|try again/i);
  await expect(approval.approveWithPasskey).toBeEnabled();
  await approval.screenshot('05-passkey-cancelled');
  expect((await partner.poll(token)).body.result).toBe('waiting');
  await authenticator.cdp.send('WebAuthn.setUserVerified', { authenticatorId: authenticator.id, isUserVerified: true });
  await approval.approveWithPasskey.click();
  await approval.expectResult('Approved');
});

test('deny: polling says deny and the replay is refused', async () => {
  const body = transferBody('999.00');
  const token: string = (await partner.transfer(body, 'passkey')).body.sca_session_token;
  await approval.open(await partner.latestLink());
  await approval.deny.click();
  await approval.expectResult('Denied');
  await approval.screenshot('06-denied');
  const polled = await partner.poll(token);
  expect(polled.body.result).toBe('deny');
  expect(typeof polled.body.canceled_at).toBe('string');
  const replay = await partner.transfer(body, 'passkey', token);
  expect(replay.status).toBe(412);
  expect(replay.body.code).toBe('sca_session_denied');
});

test('a replay with a changed amount is refused as a mismatch', async () => {
  const body = transferBody('250.00');
  const token: string = (await partner.transfer(body, 'passkey')).body.sca_session_token;
  await approval.open(await partner.latestLink());
  await approval.approveWithPasskey.click();
  await approval.expectResult('Approved');
  const tampered = await partner.transfer(transferBody('2500.00'), 'passkey', token);
  expect(tampered.status).toBe(412);
  expect(tampered.body.code).toBe('sca_request_mismatch');
  // The approved request itself still goes through, once.
  expect((await partner.transfer(body, 'passkey', token)).status).toBe(201);
});
