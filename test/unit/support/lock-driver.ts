/**
 * One stigmer-setup run's use of the lock, as its own process, for the takeover race: wait for the
 * agreed start time, take the lock in the given state folder, write "enter PID" / "exit PID" to the
 * log around a short critical section, release. Removing a file is slowed down (a slow disk), which
 * widens the window between seeing a stale lock and removing it, where two runs race.
 */
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { acquireLock } from '../../../scripts/lock.ts';
import { createNodeContext } from '../../../scripts/node-context.ts';
import { SystemFiles } from '../../../scripts/system-files.ts';

const [stateDir, log, startAt] = process.argv.slice(2) as [string, string, string];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const real = createNodeContext();
const ctx = { ...real, fs: { ...real.fs, remove: async (file: string) => (await sleep(40), real.fs.remove(file)) } };
while (Date.now() < Number(startAt)) await sleep(2);
try {
  const lock = await acquireLock(ctx, new SystemFiles(ctx, [], path), path, stateDir);
  appendFileSync(log, `enter ${process.pid}\n`);
  await sleep(30);
  appendFileSync(log, `exit ${process.pid}\n`);
  await lock.release();
} catch (error) {
  appendFileSync(log, `refused ${process.pid} ${(error as Error).message.split('\n')[0]}\n`);
}
