import { expect, test } from '@playwright/test';
import { Validator } from '@seriousme/openapi-schema-validator';
import openapiTS, { astToString } from 'openapi-typescript';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { IBAN } from '../fixtures/partner';
import { serverState } from '../fixtures/state';

// `/openapi.json` as a partner uses it: the document passes a maintained
// OpenAPI 3.1 validator (the official JSON schemas), `openapi-typescript`
// turns it into types, and a partner program written against those types
// with `openapi-fetch` type-checks (strict) and then runs the mock flow for
// real: 428, allow, poll, replay, 201.

const { origin, creds } = serverState();

async function served(): Promise<Record<string, unknown>> {
  const response = await fetch(`${origin}/openapi.json`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('application/json');
  return response.json();
}

test('the served document is a valid OpenAPI 3.1 document', async () => {
  const document = await served();
  const validator = new Validator();
  const result = await validator.validate(document);
  expect(validator.version).toBe('3.1');
  // The validator's errors name the failing paths (`/paths/~1healthz/get/responses/200` …).
  expect(result.valid, JSON.stringify(result.errors, null, 2)).toBe(true);
});

/** A partner's program, written against the generated `./openapi` types only. */
const PARTNER_PROGRAM = `
import createClient from 'openapi-fetch';
import type { components, paths } from './openapi';

type Schemas = components['schemas'];

export interface Outcome {
  health: string;
  ready: string;
  challenge: { status: number; code: Schemas['ScaRequiredBody']['code']; action_type: string | null | undefined };
  allow: { status: number; message: string };
  polled: Schemas['ScaResult'];
  replay: { status: number; transfer: Schemas['Transfer'] };
  listed: boolean;
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

export async function mockFlow(origin: string, bearer: string, transfer: Schemas['TransferRequest']): Promise<Outcome> {
  const api = createClient<paths>({ baseUrl: origin, headers: { Authorization: 'Bearer ' + bearer } });

  const health = await api.GET('/healthz');
  const ready = await api.GET('/readyz');
  if (!health.data || !ready.data) throw new Error('probes: ' + health.response.status + ', ' + ready.response.status);

  // The first call: the same preference on the replay, the same body bytes.
  const preference = { 'X-Qonto-2fa-Preference': 'mock' };
  const first = await api.POST('/v2/sepa/transfers', { params: { header: preference }, body: transfer });
  const challenge = first.error;
  if (!challenge || !('sca_session_token' in challenge) || !challenge.sca_session_token) {
    throw new Error('expected a 428 with a session token, got ' + first.response.status);
  }
  const token: string = challenge.sca_session_token;

  // The sandbox lets the partner play the user.
  const allow = await api.POST('/v2/mocked_sca_sessions/{token}/allow', { params: { path: { token } } });
  if (!allow.data) throw new Error('allow: ' + allow.response.status);

  let polled: Schemas['ScaResult'] = 'waiting';
  for (let attempt = 0; attempt < 5 && polled === 'waiting'; attempt++) {
    const poll = await api.GET('/v2/sca_sessions/{token}', { params: { path: { token } } });
    if (poll.data) polled = poll.data.result;
    if (polled === 'waiting') await sleep(1100);
  }

  const replay = await api.POST('/v2/sepa/transfers', {
    params: { header: { ...preference, 'X-Qonto-Sca-Session-Token': token } },
    body: transfer,
  });
  if (!replay.data) throw new Error('replay: ' + replay.response.status + ' ' + JSON.stringify(replay.error));
  const created: Schemas['Transfer'] = replay.data.transfer;

  const list = await api.GET('/v2/sepa/transfers');
  const listed = (list.data?.transfers ?? []).some((t) => t.id === created.id);

  return {
    health: health.data.status,
    ready: ready.data.status,
    challenge: { status: first.response.status, code: challenge.code, action_type: challenge.action_type },
    allow: { status: allow.response.status, message: allow.data.message },
    polled,
    replay: { status: replay.response.status, transfer: created },
    listed,
  };
}
`;

type Outcome = {
  health: string;
  ready: string;
  challenge: { status: number; code: string; action_type: string | null | undefined };
  allow: { status: number; message: string };
  polled: string;
  replay: { status: number; transfer: { id: string; status: string; amount: string; reference?: string | null } };
  listed: boolean;
};

function diagnostics(program: ts.Program): string[] {
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!d.file || d.start === undefined) return text;
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    return `${d.file.fileName}:${line + 1}:${character + 1}: ${text}`;
  });
}

test('a typed client generated from the document type-checks and runs the mock flow', async ({}, testInfo) => {
  const document = await served();

  // The types, as `npx openapi-typescript` would write them. The directory
  // is this test's output (kept on failure), inside e2e/ so that the
  // program resolves `openapi-fetch` from e2e/node_modules.
  const types = astToString(await openapiTS(document as Parameters<typeof openapiTS>[0]));
  expect(types).toContain(`"/v2/sca_sessions/{token}"`);
  const dir = testInfo.outputPath('client');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'openapi.ts'), types);
  const programFile = join(dir, 'partner.ts');
  writeFileSync(programFile, PARTNER_PROGRAM);

  // Strict type-check: the document gives a usable typed client.
  const program = ts.createProgram([programFile], {
    strict: true,
    noEmit: true,
    noUnusedLocals: true,
    noImplicitReturns: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
    types: [],
    skipLibCheck: true,
  });
  expect(diagnostics(program)).toEqual([]);

  // The very program just checked, run against the server.
  const compiled = ts.transpileModule(PARTNER_PROGRAM, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  const runnable = join(dir, 'partner.cjs');
  writeFileSync(runnable, compiled.outputText);
  const { mockFlow } = require(runnable) as {
    mockFlow: (origin: string, bearer: string, transfer: object) => Promise<Outcome>;
  };
  const transfer = { amount: '21.00', currency: 'EUR', beneficiary: { name: 'ACME SAS', iban: IBAN }, reference: 'typed client' };
  const outcome = await mockFlow(origin, creds.partner_token, transfer);

  expect(outcome.health).toBe('ok');
  expect(outcome.ready).toBe('ready');
  expect(outcome.challenge).toEqual({ status: 428, code: 'sca_required', action_type: 'transfer.single.create' });
  expect(outcome.allow).toEqual({ status: 200, message: 'Success' });
  expect(outcome.polled).toBe('allow');
  expect(outcome.replay.status).toBe(201);
  expect(outcome.replay.transfer).toMatchObject({ status: 'settled', amount: '21.00', reference: 'typed client' });
  expect(outcome.listed).toBe(true);
});
