/** Windows processes by image name, from `tasklist /FO CSV /NH` (real captures in test/fixtures/win32). */
import type { Context } from '../../scripts/context.ts';
import { parseTasklistCsv, type TasklistEntry } from './parsers/tasklist.ts';

export async function tasklist(ctx: Context): Promise<TasklistEntry[]> {
  const result = await ctx.exec('tasklist', ['/FO', 'CSV', '/NH'], { timeoutMs: 15_000 });
  return result.exitCode === 0 ? parseTasklistCsv(result.stdout) : [];
}
