// Small shared pieces for the e2e helpers: a quiet zx `$` and bounded wait/retry loops.
//
// Every command interpolates values with ${} so zx shell-quotes them; never build
// command strings by concatenation.
import { $ } from 'zx';

/** zx `$` that does not echo commands; still throws on non-zero exit. */
export const sh = $({ quiet: true });

/** zx `$` that does not echo and does not throw; check `.exitCode` yourself. */
export const shTry = $({ quiet: true, nothrow: true });

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** Used in the timeout error. */
  what: string;
}

/**
 * Poll `probe` until it returns a non-undefined value, bounded in time and count
 * (count = timeout / interval + 1). The last probe error/value is put in the message.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined>, opts: WaitOptions): Promise<T> {
  const interval = opts.intervalMs ?? 500;
  const maxTries = Math.ceil(opts.timeoutMs / interval) + 1;
  const deadline = Date.now() + opts.timeoutMs;
  let last = '';
  for (let i = 0; i < maxTries; i++) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline) break;
    await sleep(interval);
  }
  throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${last ? `; last error: ${last}` : ''}`);
}

/** Run `fn` up to `attempts` times (bounded), sleeping `delayMs` between failures. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, attempts: number, delayMs = 1000): Promise<T> {
  let lastErr: unknown;
  for (let i = 1; i <= attempts; i++) {
    try {
      return await fn(i);
    } catch (err) {
      lastErr = err;
      if (i < attempts) await sleep(delayMs);
    }
  }
  throw lastErr;
}
