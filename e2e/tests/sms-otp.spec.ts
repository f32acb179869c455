import { expect, test } from '@playwright/test';
import { Partner, transferBody } from '../fixtures/partner';
import { serverState } from '../fixtures/state';

// The sms-otp method as an Embed partner's client drives it, over real HTTP
// against the sandbox (which accepts any 6-character code, as the bank's
// guide says; the API tests check that production accepts only the code sent).
const embed = new Partner(serverState().creds.embed_partner_token);

test('sms-otp: a code by SMS, the replay with it runs once', async () => {
  const body = transferBody('61.00');
  const first = await embed.otpTransfer(body);
  expect(first.status).toBe(428);
  expect(first.body).toEqual({ code: 'thirdparty_sms_otp_required', message: 'Thirdparty SMS OTP required' });
  const sms = await embed.latestSms();
  expect(sms.otp).toMatch(/^\d{6}$/);
  expect(sms.body.endsWith(`@${new URL(embed.origin).hostname} #${sms.otp}`)).toBe(true);

  const ran = await embed.otpTransfer(body, sms.otp!);
  expect(ran.status).toBe(201);
  expect(ran.body.transfer.amount).toBe('61.00');
  const again = await embed.otpTransfer(body, sms.otp!);
  expect([again.status, again.body.code]).toEqual([412, 'sca_otp_invalid']);
});

test('sms-otp: asking again within 30 s is refused, after it a new code comes', async () => {
  const body = transferBody('62.00');
  expect((await embed.otpTransfer(body)).status).toBe(428);
  const first = await embed.latestSms();
  const soon = await embed.otpTransfer(body);
  expect([soon.status, soon.body.code]).toEqual([429, 'sms_rate_limited']);
  expect(Number(soon.headers.get('retry-after'))).toBeGreaterThan(0);
  expect((await embed.latestSms()).sent_at).toBe(first.sent_at);

  await embed.advanceClock(30);
  expect((await embed.otpTransfer(body)).status).toBe(428);
  const second = await embed.latestSms();
  expect(second.sent_at).not.toBe(first.sent_at);
  expect((await embed.otpTransfer(body, second.otp!)).status).toBe(201);
});

test('sms-otp: five wrong codes burn it and block the user a while; the sandbox takes any 6 characters', async () => {
  const body = transferBody('63.00');
  expect((await embed.otpTransfer(body)).status).toBe(428);
  for (let attempt = 1; attempt <= 5; attempt++) {
    const wrong = await embed.otpTransfer(body, '12345');
    expect([wrong.status, wrong.body.code]).toEqual([412, attempt < 5 ? 'sca_otp_invalid' : 'sca_otp_locked']);
  }
  expect((await embed.otpTransfer(body, 'ABC123')).body.code).toBe('sca_otp_locked');

  // Five in a row also blocked the user's codes for 15 minutes.
  await embed.advanceClock(15 * 60);
  expect((await embed.otpTransfer(body)).status).toBe(428);
  const changed = await embed.otpTransfer(transferBody('63.01'), 'ABC123');
  expect([changed.status, changed.body.code]).toEqual([412, 'sca_request_mismatch']);
  expect((await embed.otpTransfer(body, 'ABC123')).status).toBe(201);
});
