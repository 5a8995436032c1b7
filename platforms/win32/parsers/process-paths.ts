/**
 * Parser for what Windows PowerShell 5.1 prints for
 *
 *     ConvertTo-Json -InputObject @(Get-CimInstance -ClassName Win32_Process -Filter … | Select-Object ProcessId,ExecutablePath)
 *
 * (real captures in test/fixtures/win32: an array of objects, and one object). ConvertTo-Json
 * writes one object, not an array, when the pipeline holds one item, and nothing at all when it
 * holds none (PowerShell/PowerShell#23837); `-InputObject @(…)` always gives an array, but every
 * shape is accepted. `Get-Process | Select-Object Id,Path` names the same fields Id and Path; those
 * are read too. ExecutablePath is null for a process we may not open (another user's, an elevated
 * one): such a process has no known path.
 *
 * Everything is untrusted: the text is bounded, a path with a control character or longer than
 * Windows' 32,767-character limit counts as unknown, and nothing here throws.
 */

export interface ProcessPath {
  pid: number;
  /** The executable the process was started from; undefined when Windows did not say. */
  path?: string;
  /** Windows gave a path, but not one to trust (a control character, or too long). */
  rejectedPath?: true;
}

const MAX_TEXT = 1024 * 1024;
const MAX_ENTRIES = 1024;
const MAX_PATH = 32_767;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f]/;

function pidOf(entry: Record<string, unknown>): number | undefined {
  const pid = entry.ProcessId ?? entry.Id;
  return typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 0 && pid <= 0xffffffff ? pid : undefined;
}

function pathOf(entry: Record<string, unknown>): Pick<ProcessPath, 'path' | 'rejectedPath'> {
  const path = entry.ExecutablePath ?? entry.Path;
  if (path === undefined || path === null || path === '') return {};
  if (typeof path !== 'string' || path.length > MAX_PATH || CONTROL.test(path)) return { rejectedPath: true };
  return { path };
}

/** The processes and their paths, or undefined when the text is not that JSON. */
export function parseProcessPathsJson(text: string): ProcessPath[] | undefined {
  if (text.length > MAX_TEXT) return undefined;
  const body = text.replace(/^\ufeff/, '').trim();
  if (body === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  const items = Array.isArray(parsed) ? parsed : [parsed];
  if (items.length > MAX_ENTRIES) return undefined;
  const out: ProcessPath[] = [];
  for (const item of items) {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return undefined;
    const pid = pidOf(item as Record<string, unknown>);
    if (pid === undefined) return undefined;
    out.push({ pid, ...pathOf(item as Record<string, unknown>) });
  }
  return out;
}
