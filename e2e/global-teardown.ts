import { readFileSync, rmSync } from 'node:fs';
import { STATE_FILE, type ServerState } from './fixtures/state';

export default async function globalTeardown(): Promise<void> {
  const state: ServerState = JSON.parse(readFileSync(STATE_FILE, 'utf8'));
  try {
    process.kill(state.pid, 'SIGTERM');
  } catch {
    // already gone
  }
  rmSync(STATE_FILE, { force: true });
}
