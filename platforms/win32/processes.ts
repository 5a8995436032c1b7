/**
 * Windows processes: by image name from `tasklist /FO CSV /NH` (real captures in
 * test/fixtures/win32), and the executable a process was started from, which tasklist does not
 * print, from Win32_Process through PowerShell.
 */
import type { Context } from '../../scripts/context.ts';
import { quotePowerShell } from '../../scripts/shell-quote.ts';
import { parseProcessPathsJson, type ProcessPath } from './parsers/process-paths.ts';
import { parseTasklistCsv, type TasklistEntry } from './parsers/tasklist.ts';
import { runPowerShell } from './powershell.ts';

export async function tasklist(ctx: Context): Promise<TasklistEntry[]> {
  return (await readTasklist(ctx)) ?? [];
}

/** The running processes, or undefined when tasklist itself failed (then nobody can say what runs). */
export async function readTasklist(ctx: Context): Promise<TasklistEntry[] | undefined> {
  const result = await ctx.exec('tasklist', ['/FO', 'CSV', '/NH'], { timeoutMs: 15_000 });
  return result.exitCode === 0 ? parseTasklistCsv(result.stdout) : undefined;
}

/**
 * The script that lists the processes named `image` with their executables. The console's code
 * page would turn a path with non-ASCII letters (C:\Users\Jürgen) into another path, so the output
 * is UTF-8; `-InputObject @(…)` makes it an array whatever the count.
 */
export function processPathsScript(image: string): string {
  // A fixed image name of ours; WQL would need its own escaping for anything else.
  if (!/^[A-Za-z0-9 ._-]+$/.test(image)) throw new Error(`refusing to build a process query for the image name ${JSON.stringify(image)}`);
  const filter = quotePowerShell(`Name='${image}'`);
  return `[Console]::OutputEncoding = [Text.UTF8Encoding]::new($false); ConvertTo-Json -InputObject @(Get-CimInstance -ClassName Win32_Process -Filter ${filter} | Select-Object ProcessId,ExecutablePath)`;
}

/** The running processes named `image` and where each was started from, or why that can't be told. */
export async function processPaths(ctx: Context, image: string): Promise<{ processes: ProcessPath[] } | { error: string }> {
  const result = await runPowerShell(ctx, processPathsScript(image));
  if (result.exitCode !== 0) return { error: result.failure === 'not-found' ? 'powershell.exe was not found' : result.failure === 'timeout' ? 'PowerShell timed out' : `PowerShell exited ${result.exitCode}` };
  const processes = parseProcessPathsJson(result.stdout);
  return processes === undefined ? { error: 'PowerShell printed something other than the process list asked for' } : { processes };
}
