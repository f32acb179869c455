import { expect, test, type Page, type Response } from '@playwright/test';
import { removePasskeysOf } from '../fixtures/account';
import { ApprovalPage } from '../fixtures/approval-page';
import { Partner, transferBody } from '../fixtures/partner';
import { serverState } from '../fixtures/state';

const partner = new Partner();

// The first approval's page (a password and "Create a passkey and
// approve"): the demo user starts with no passkey, whatever came before.
test.beforeAll(async () => {
  await removePasskeysOf(serverState().creds.user_email);
});

// Trunk's content-hashed build files: the app's js and wasm, the stylesheet.
const HASHED = /\/[\w-]+-[0-9a-f]{8,16}(_bg)?\.(js|wasm|css)$/;

/** Records CSP violations and console errors from the first script on. */
async function watchForProblems(page: Page): Promise<{ consoleErrors: string[]; violations: () => Promise<string[]> }> {
  // DevTools injects this script: the page's CSP does not apply to it.
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { __violations: string[] }).__violations = seen;
    document.addEventListener('securitypolicyviolation', (e) => seen.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const consoleErrors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  const violations = () => page.evaluate(() => (window as unknown as { __violations: string[] }).__violations);
  return { consoleErrors, violations };
}

async function newLink(amount: string): Promise<string> {
  expect((await partner.transfer(transferBody(amount), 'passkey')).status).toBe(428);
  return partner.latestLink();
}

test('the page comes brotli-compressed, never stored, with a CSP that allows no inline script but its own', async ({
  page,
}) => {
  const problems = await watchForProblems(page);
  const hashed: Response[] = [];
  const approvalData: string[] = [];
  page.on('response', (response) => {
    if (HASHED.test(new URL(response.url()).pathname)) hashed.push(response);
  });
  page.on('request', (request) => {
    if (new URL(request.url()).pathname.startsWith('/api/approvals/')) approvalData.push(request.method());
  });
  const approval = new ApprovalPage(page);
  const link = await newLink('64.00');

  const response = await page.goto(link);
  expect(response?.status()).toBe(200);
  expect(await response?.request().headerValue('accept-encoding')).toContain('br');
  const headers = (await response?.allHeaders()) ?? {};
  expect(headers['content-encoding']).toBe('br');
  expect(headers['cache-control']).toBe('no-store');
  expect(headers['vary']).toBe('accept-encoding');
  const scriptSrc = headers['content-security-policy']
    ?.split(';')
    .map((d) => d.trim())
    .find((d) => d.startsWith('script-src '));
  expect(scriptSrc).toMatch(/^script-src 'self' 'wasm-unsafe-eval'( 'sha256-[A-Za-z0-9+/]{43}=')+$/);
  expect(headers['content-security-policy']).not.toContain('unsafe-inline');
  expect(headers['content-security-policy']).toContain("frame-ancestors 'none'");

  // The page runs under that CSP: details, buttons, a decision.
  await expect(approval.heading('Approve a transfer')).toBeVisible();
  await expect(approval.createPasskey).toBeEnabled();
  // One request for the approval's data: the app's fetch took the answer
  // that the page's `Link: rel=preload` header had already started.
  expect(approvalData).toEqual(['GET']);

  // The app's js, wasm and stylesheet: brotli, cached for a year.
  const kinds = hashed.map((r) => new URL(r.url()).pathname.split('.').pop()).sort();
  expect(kinds).toEqual(['css', 'js', 'wasm']);
  for (const asset of hashed) {
    const assetHeaders = await asset.allHeaders();
    expect(asset.status(), asset.url()).toBe(200);
    expect(assetHeaders['cache-control'], asset.url()).toBe('public, max-age=31536000, immutable');
    expect(assetHeaders['content-encoding'], asset.url()).toBe('br');
  }

  await approval.deny.click();
  await approval.expectResult('Denied');
  expect(await problems.violations()).toEqual([]);
  expect(problems.consoleErrors).toEqual([]);
});

test('the CSP blocks an inline script other than the page loader', async ({ page }) => {
  const problems = await watchForProblems(page);
  const approval = new ApprovalPage(page);
  await approval.open(await newLink('65.00'));
  await expect(approval.createPasskey).toBeEnabled();
  expect(await problems.violations()).toEqual([]);

  // As an injection would: an inline script added to the page.
  await page.evaluate(() => {
    const script = document.createElement('script');
    script.textContent = 'window.__injected = true;';
    document.head.append(script);
  });
  await expect.poll(problems.violations).toEqual([expect.stringMatching(/^script-src-elem inline$/)]);
  expect(await page.evaluate(() => (window as unknown as { __injected?: boolean }).__injected)).toBeUndefined();
});

test('a static path that names no file is the JSON 404 of any unknown path', async ({ request }) => {
  for (const path of [`/${'a'.repeat(300)}`, '/index.html/x', '/nothing-0123456789abcdef.js']) {
    const response = await request.get(partner.origin + path);
    expect(response.status(), path).toBe(404);
    expect((await response.json()).code, path).toBe('not_found');
    expect(response.headers()['cache-control'] ?? '', path).not.toContain('immutable');
  }
});
