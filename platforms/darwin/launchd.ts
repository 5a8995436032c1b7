/**
 * launchd, the modern way (ollama-facts.md §7): `bootout` then `bootstrap` in the user's gui/<uid>
 * domain. The legacy `load`/`unload` are never used: they exit 0 whatever happens, so their result
 * can't be checked. bootstrap on a label that is still draining from a bootout fails with
 * "5: Input/output error", so we wait until `print` no longer finds the job, and retry a bootstrap
 * that still fails that way, both bounded.
 */
import path from 'node:path';
import type { Context } from '../../scripts/context.ts';
import { describeFailure, StepError } from '../../scripts/system-files.ts';
import type { SettingStore } from '../types.ts';

/** launchctl's user environment: what launchd gives the apps it starts (the desktop app among them). */
export const launchdEnvStore: SettingStore = {
  id: 'launchd-env',
  privileged: false,
  async read(ctx: Context, key: string) {
    const argv = ['launchctl', 'getenv', key];
    const result = await ctx.exec('launchctl', argv.slice(1), { timeoutMs: 5000 });
    // launchctl that did not run to the end (not found, timed out) says nothing about the value:
    // reading that as "unset" would make undo remove the user's value. Stop instead.
    if (result.failure) throw new StepError(`Could not read launchd's ${key}: ${describeFailure(argv, result, 5000)} Nothing was changed.`);
    // An unset variable prints nothing; only the final newline belongs to launchctl, so a value
    // that itself ends in a newline (or holds one) is kept exactly.
    const value = result.stdout.replace(/\n$/, '');
    return result.exitCode === 0 && value !== '' ? value : undefined;
  },
  command(key, value) {
    return { argv: value === undefined ? ['launchctl', 'unsetenv', key] : ['launchctl', 'setenv', key, value] };
  },
};

export function guiDomain(uid: number | undefined): string {
  return `gui/${uid ?? 501}`;
}

/** The label launchd knows a job by: its plist's file name without .plist (Label must match it). */
export function labelOf(plistPath: string): string {
  return path.posix.basename(plistPath, '.plist');
}

const DRAIN_CHECKS = 40;
const DRAIN_STEP_MS = 250;
const BOOTSTRAP_ATTEMPTS = 8;
const BOOTSTRAP_RETRY_MS = 500;

/** The two commands a reload runs, for dry-run and JSON. */
export function reloadSteps(uid: number | undefined, plistPath: string): string[][] {
  const domain = guiDomain(uid);
  return [
    ['launchctl', 'bootout', `${domain}/${labelOf(plistPath)}`],
    ['launchctl', 'bootstrap', domain, plistPath],
  ];
}

/** Reload a job from its plist so launchd reads the file again (kickstart -k only restarts the loaded definition). */
export async function reloadJob(ctx: Context, uid: number | undefined, plistPath: string): Promise<void> {
  const [bootout, bootstrap] = reloadSteps(uid, plistPath) as [string[], string[]];
  const target = bootout[2] as string;
  const out = await ctx.exec('launchctl', bootout.slice(1), { timeoutMs: 30_000 });
  // "Boot-out failed: 3: No such process": it was not loaded, which is fine for a reload.
  if (out.exitCode !== 0 && out.exitCode !== 3) throw new StepError(describeFailure(bootout, out, 30_000));
  for (let check = 0; check < DRAIN_CHECKS; check++) {
    const print = await ctx.exec('launchctl', ['print', target], { timeoutMs: 10_000 });
    if (print.exitCode !== 0) break;
    await ctx.clock.sleep(DRAIN_STEP_MS);
  }
  let last = await ctx.exec('launchctl', bootstrap.slice(1), { timeoutMs: 30_000 });
  for (let attempt = 1; attempt < BOOTSTRAP_ATTEMPTS && last.exitCode === 5; attempt++) {
    // Still unloading: launchd answers "5: Input/output error" until the old instance is gone.
    await ctx.clock.sleep(BOOTSTRAP_RETRY_MS);
    last = await ctx.exec('launchctl', bootstrap.slice(1), { timeoutMs: 30_000 });
  }
  if (last.exitCode !== 0) throw new StepError(describeFailure(bootstrap, last, 30_000));
}
