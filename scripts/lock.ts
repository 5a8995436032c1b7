/**
 * One run at a time. A setup and an undo that overlap can each back up what the other just wrote,
 * and the user's original file is lost. Whoever changes the machine first takes `lock` in the state
 * folder, recording its pid; a second run waits a few seconds, then stops with "another
 * stigmer-setup (pid N) is running". A lock whose process is gone (killed, crashed) is stale and
 * is taken over.
 */
import type { PlatformPath } from 'node:path';
import type { Context } from './context.ts';
import type { SystemFiles } from './system-files.ts';

export const LOCK_NAME = 'lock';
/** How long a second run waits for the first: long enough for a quick run to finish, short enough not to look hung. */
const WAIT_STEPS = 20;
const WAIT_STEP_MS = 250;

export class LockedError extends Error {}

export interface Lock {
  release(): Promise<void>;
}

/** The pid a lock names: a file holding it (written directly) or a symlink pointing at it (written through sudo). */
async function lockHolder(ctx: Context, file: string): Promise<number | undefined> {
  const seen = await ctx.fs.inspect(file);
  if (!seen) return undefined;
  const text = seen.kind === 'symlink' ? await ctx.fs.readLink(file) : seen.kind === 'file' ? await ctx.fs.readText(file).catch(() => undefined) : undefined;
  const pid = Number((text ?? '').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : Number.NaN;
}

export async function acquireLock(ctx: Context, files: SystemFiles, path: PlatformPath, stateDir: string): Promise<Lock> {
  const file = path.join(stateDir, LOCK_NAME);
  let holder: number | undefined;
  for (let attempt = 0; attempt < WAIT_STEPS; attempt++) {
    if (await files.createLock(file, ctx.pid)) {
      return {
        async release() {
          // Only our own lock: never remove one a later run took over.
          if ((await lockHolder(ctx, file)) === ctx.pid) await files.remove(file);
        },
      };
    }
    holder = await lockHolder(ctx, file);
    if (holder === undefined) continue; // released between our attempt and the look: try again now
    if (Number.isNaN(holder) || !ctx.processExists(holder)) {
      // Stale: the run that took it is gone (or the file is not a lock we wrote). Take it over.
      await files.remove(file);
      continue;
    }
    await ctx.clock.sleep(WAIT_STEP_MS);
  }
  throw new LockedError(`another stigmer-setup (pid ${holder}) is running; let it finish, then try again. If no such process exists, remove ${file}.`);
}
