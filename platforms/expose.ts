/**
 * The desktop app's "Expose Ollama to the network" setting (macOS and Windows): the app starts its
 * server with OLLAMA_HOST=0.0.0.0 when it is on, whatever the environment says (app/server/server.go).
 * It lives in the app's SQLite settings (app/store/database.go: table settings, column expose,
 * row id = 1), read here with `sqlite3 -readonly` when that tool exists. An internal, undocumented
 * schema: an answer we don't recognise is "unknown", never a guess.
 */
import type { Context } from '../scripts/context.ts';

export async function readExposeSetting(ctx: Context, database: string): Promise<boolean | undefined> {
  if (!(await ctx.fs.exists(database))) return false;
  const query = await ctx.exec('sqlite3', ['-readonly', database, 'SELECT expose FROM settings WHERE id = 1;'], { timeoutMs: 5000 });
  if (query.exitCode !== 0) return undefined;
  const value = query.stdout.trim();
  return value === '1' ? true : value === '0' || value === '' ? false : undefined;
}
