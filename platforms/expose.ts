/**
 * The desktop app's "Expose Ollama to the network" setting (macOS and Windows): the app starts its
 * server with OLLAMA_HOST=0.0.0.0 when it is on, whatever the environment says (app/server/server.go).
 * It lives in the app's SQLite settings (app/store/database.go: table settings, column expose,
 * row id = 1), read here with `sqlite3 -readonly` when that tool exists. An internal, undocumented
 * schema: an answer we don't recognise is "unknown", never a guess, and never "off".
 *
 * Like every other file stigmer-setup reads, the database is looked at first (lstat, through
 * ctx.fs.inspect) and only a regular file is handed to sqlite3: a FIFO would block the open, and a
 * symlink or a device is not the app's database. Those are "unknown", without being opened.
 */
import type { Context } from '../scripts/context.ts';
import { describeKind } from '../scripts/context.ts';
import type { Problem } from './types.ts';

/** true: on; false: off; undefined: could not be read (say so, never take it as off). */
export type ExposeSetting = boolean | undefined;

export interface ExposeReading {
  value: ExposeSetting;
  /** Why the value is unknown, for a message: "is a FIFO (named pipe)", "sqlite3 is not installed". */
  unknownBecause?: string;
}

/** The setting, with the reason when it could not be read. */
export async function readExpose(ctx: Context, database: string): Promise<ExposeReading> {
  const seen = await ctx.fs.inspect(database);
  // No database: the app has never saved a setting, and Expose is off by default.
  if (!seen) return { value: false };
  if (seen.kind !== 'file') return { value: undefined, unknownBecause: `${database} is ${describeKind(seen.kind)}, not a regular file, so it was not opened` };
  const query = await ctx.exec('sqlite3', ['-readonly', database, 'SELECT expose FROM settings WHERE id = 1;'], { timeoutMs: 5000 });
  if (query.failure === 'not-found') return { value: undefined, unknownBecause: 'sqlite3 is not installed' };
  if (query.failure === 'timeout') return { value: undefined, unknownBecause: `sqlite3 did not answer within 5 s for ${database}` };
  if (query.failure || query.exitCode !== 0) return { value: undefined, unknownBecause: `sqlite3 could not read ${database}` };
  const value = query.stdout.trim();
  if (value === '1') return { value: true };
  if (value === '0') return { value: false };
  // No settings row, or a value this schema does not have: not a reading.
  return { value: undefined, unknownBecause: `${database} has no expose setting stigmer-setup recognises` };
}

/**
 * What a check or a plan says about the setting: "on", "off", or that it could not be read. A
 * plan that relies on it being off says so in its warnings when it is unknown.
 */
export function describeExpose(reading: ExposeReading): string {
  if (reading.value === true) return 'the app\'s "Expose Ollama to the network" setting is on';
  if (reading.value === false) return 'the app\'s "Expose Ollama to the network" setting is off';
  return `stigmer-setup could not read the app's "Expose Ollama to the network" setting (${reading.unknownBecause ?? 'unknown'}); if it is on, the app listens on 0.0.0.0 whatever OLLAMA_HOST says (Ollama → Settings)`;
}

/** The finding for a setting that could not be read: a warning that says so, never "off". */
export function exposeUnknownProblem(reading: ExposeReading): Problem {
  return {
    status: 'warn',
    message: `${describeExpose(reading)}.`,
    why: 'Where the app listens then depends on a setting nobody could read: the checks below say where it really listens.',
    fix: 'Open Ollama → Settings and look at "Expose Ollama to the network"; turn it off unless you want Ollama on your network.',
  };
}
