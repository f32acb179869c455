import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { STATE_FILE, type ServerState } from './fixtures/state';

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => done(port));
    });
    server.on('error', fail);
  });
}

async function waitUntilUp(url: string, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url);
      if (response.status === 401) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`passgate did not start at ${url}`);
}

/** The database: a SQLite file in `dir`, or, with PASSGATE_E2E_BACKEND=postgres,
 * a fresh database on the cluster of PASSGATE_TEST_POSTGRES (tools/with-postgres.sh). */
function databaseUrl(dir: string): string {
  if (process.env.PASSGATE_E2E_BACKEND !== 'postgres') return `sqlite://${join(dir, 'passgate.db')}`;
  const cluster = process.env.PASSGATE_TEST_POSTGRES;
  if (!cluster) throw new Error('PASSGATE_E2E_BACKEND=postgres needs PASSGATE_TEST_POSTGRES (tools/with-postgres.sh)');
  const name = `passgate_e2e_${process.pid}_${Date.now()}`;
  execFileSync('psql', [cluster, '-q', '-c', `CREATE DATABASE ${name}`]);
  return `${cluster.slice(0, cluster.lastIndexOf('/'))}/${name}`;
}

export default async function globalSetup(): Promise<void> {
  const bin = resolve(process.env.PASSGATE_BIN ?? '../target/debug/passgate');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'passgate-e2e-'));
  const origin = `http://localhost:${port}`;
  const env = {
    ...process.env,
    PASSGATE_BIND: `127.0.0.1:${port}`,
    PASSGATE_ORIGIN: origin,
    PASSGATE_MODE: 'sandbox',
    RUST_LOG: process.env.RUST_LOG ?? 'passgate=warn',
    PASSGATE_STATIC_DIR: resolve('../frontend/dist'),
    DATABASE_URL: databaseUrl(dir),
    // One demo user goes through every journey here: the per-user abuse
    // limits (tested in the API suite) would stop the suite half-way.
    PASSGATE_LIMIT_SMS_PER_USER: '1000/1m',
    PASSGATE_LIMIT_OPEN_SESSIONS_PER_USER: '1000',
  };
  // Web Push to the phone app's journeys: a key pair of the server's own
  // making, and pushes only to the tests' mock push service on loopback.
  const vapid = /^PASSGATE_VAPID_PRIVATE_KEY=(\S+)$/m.exec(execFileSync(bin, ['vapid-keys']).toString());
  if (!vapid) throw new Error('passgate vapid-keys printed no key');
  Object.assign(env, {
    PASSGATE_VAPID_PRIVATE_KEY: vapid[1],
    PASSGATE_VAPID_SUBJECT: 'mailto:e2e@passgate.test',
    PASSGATE_PUSH_HOSTS: '127.0.0.1',
  });
  console.log(`e2e on ${env.DATABASE_URL.split(':')[0]}`);
  const creds = JSON.parse(execFileSync(bin, ['demo'], { env }).toString());
  const server = spawn(bin, ['serve'], { env, stdio: ['ignore', 'inherit', 'inherit'], detached: false });
  await waitUntilUp(`${origin}/v2/sepa/transfers`, Date.now() + 20_000);
  const state: ServerState = { origin, pid: server.pid ?? 0, creds };
  writeFileSync(STATE_FILE, JSON.stringify(state));
  server.unref();
}
