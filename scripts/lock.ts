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
/** Held only while a stale lock is looked at again and removed. */
export const TAKEOVER_NAME = 'lock.takeover';
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

function sameHolder(a: number, b: number): boolean {
  return a === b || (Number.isNaN(a) && Number.isNaN(b));
}

function isStale(ctx: Context, holder: number): boolean {
  return Number.isNaN(holder) || !ctx.processExists(holder);
}

/**
 * Remove `file` if it still names `stale`, a run that is gone, holding `lock.takeover` while doing
 * it so no other run can remove a lock in between. Returns false, having removed nothing, when another
 * run holds `lock.takeover`: the caller waits a step and tries again.
 */
async function removeStaleLock(ctx: Context, files: SystemFiles, path: PlatformPath, file: string, stale: number): Promise<boolean> {
  const guard = path.join(path.dirname(file), TAKEOVER_NAME);
  if (!(await files.createLock(guard, ctx.pid))) {
    // Another run is taking over right now, for the two steps below. If it died in between (the
    // only way a guard outlives them), its guard is stale: remove it and let the next round decide.
    const guardHolder = await lockHolder(ctx, guard);
    if (guardHolder !== undefined && isStale(ctx, guardHolder)) await files.remove(guard);
    return false;
  }
  try {
    const now = await lockHolder(ctx, file);
    if (now !== undefined && sameHolder(now, stale) && isStale(ctx, now)) await files.remove(file);
  } finally {
    await files.remove(guard);
  }
  return true;
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
    if (isStale(ctx, holder)) {
      // Stale: the run that took it is gone (or the file is not a lock we wrote). Take it over.
      if (!(await removeStaleLock(ctx, files, path, file, holder))) await ctx.clock.sleep(WAIT_STEP_MS);
      continue;
    }
    await ctx.clock.sleep(WAIT_STEP_MS);
  }
  throw new LockedError(`another stigmer-setup (pid ${holder}) is running; let it finish, then try again. If no such process exists, remove ${file}.`);
}
