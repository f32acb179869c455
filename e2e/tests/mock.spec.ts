import { expect, test } from '@playwright/test';
import { Partner, transferBody } from '../fixtures/partner';

const partner = new Partner();

test('the mock flow works through the API alone', async () => {
  const body = transferBody('33.00');
  const first = await partner.transfer(body, 'mock');
  expect(first.status).toBe(428);
  expect(first.body).toMatchObject({ code: 'sca_required', message: 'SCA required', action_type: 'transfer.single.create' });
  const token: string = first.body.sca_session_token;

  // Two polls at once: one answers, the other is told to wait.
  const polls = await Promise.all([0, 1].map(() => partner.call('GET', `/v2/mocked_sca_sessions/${token}`)));
  polls.sort((a, b) => a.status - b.status);
  expect(polls.map((p) => p.status)).toEqual([200, 429]);
  expect(polls[0].body).toEqual({ result: 'waiting', canceled_at: null });
  expect(polls[1].headers.get('retry-after')).toBe('1');

  const allow = await partner.call('POST', `/v2/mocked_sca_sessions/${token}/allow`);
  expect(allow.status).toBe(200);
  expect(allow.body).toEqual({ message: 'Success' });
  await partner.advanceClock(1);
  expect((await partner.poll(token)).body.result).toBe('allow');

  const replay = await partner.transfer(body, 'mock', token);
  expect(replay.status).toBe(201);
  expect(replay.body.transfer.status).toBe('settled');
  const list = await partner.call('GET', '/v2/sepa/transfers');
  expect(list.body.transfers.some((t: any) => t.id === replay.body.transfer.id)).toBe(true);
});
