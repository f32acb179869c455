import { expect, test } from '@playwright/test';
import { ApprovalPage } from '../fixtures/approval-page';
import { Partner, transferBody } from '../fixtures/partner';

const partner = new Partner();

test('an unknown link says so and offers nothing to click', async ({ page }) => {
  const approval = new ApprovalPage(page);
  await approval.open(`${partner.origin}/sca/${'A'.repeat(43)}`);
  await approval.expectResult('Link not valid');
  await approval.screenshot('07-unknown-link');
  await approval.open(`${partner.origin}/sca/garbage`);
  await approval.expectResult('Link not valid');
});

test('an expired link says so and offers nothing to click', async ({ page }) => {
  const approval = new ApprovalPage(page);
  const token: string = (await partner.transfer(transferBody('42.00'), 'passkey')).body.sca_session_token;
  const link = await partner.latestLink();
  await partner.advanceClock(15 * 60);
  await approval.open(link);
  await approval.expectResult('Link expired');
  await approval.screenshot('08-expired-link');
  const polled = await partner.poll(token);
  expect(polled.body.result).toBe('deny');
});

test('the page shows a loading state with the same footprint before the details', async ({ page }) => {
  const approval = new ApprovalPage(page);
  await partner.transfer(transferBody('7.00'), 'passkey');
  const link = await partner.latestLink();
  // Hold the details back to look at the loading state.
  let release: () => void = () => {};
  const held = new Promise<void>((r) => (release = r));
  await page.route('**/api/approvals/*', async (route) => {
    await held;
    await route.continue();
  });
  await approval.open(link);
  const card = page.locator('section.card');
  await expect(card.locator('[aria-busy="true"]')).toBeVisible();
  const loadingBox = await card.boundingBox();
  await approval.screenshot('00-loading');
  release();
  await expect(approval.heading('Approve a transfer')).toBeVisible();
  const loadedBox = await card.boundingBox();
  expect(loadedBox?.y).toBe(loadingBox?.y);
  expect(loadedBox?.height ?? 0).toBeGreaterThanOrEqual((loadingBox?.height ?? 0) - 1);
});

test('the root page explains where approvals come from', async ({ page }) => {
  const approval = new ApprovalPage(page);
  await approval.open(`${partner.origin}/`);
  await expect(approval.heading('Passgate')).toBeVisible();
  await expect(page.getByText('/dev/sms')).toBeVisible();
  await expect(page.getByRole('button')).toHaveCount(0);
});
