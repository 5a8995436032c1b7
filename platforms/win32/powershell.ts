/**
 * PowerShell, run as an argument array (zx's shell lookup would look for bash, which Windows does
 * not have). A value never becomes part of the script text: it travels in an environment variable
 * the script reads ($env:STIGMER_SETUP_VALUE), so quotes, `;`, `$` or a backtick in it stay data.
 * Only fixed scripts are ever run; the few names they embed (a variable name, a scope) are checked
 * against a grammar and quoted with quotePowerShell all the same.
 */
import type { Context, ExecResult } from '../../scripts/context.ts';
import { quotePowerShell } from '../../scripts/shell-quote.ts';
import type { SettingStore } from '../types.ts';

export const POWERSHELL = 'powershell.exe';
const ARGS = ['-NoProfile', '-NonInteractive', '-Command'];
/** The only variable name scripts are built with: it is ours, never input. */
const NAME = /^[A-Z][A-Z0-9_]*$/;
/**
 * What one variable read may print: Windows caps a value at 32,767 UTF-16 units, at most 3 UTF-8
 * bytes each, so its base64 is under 132 KiB. Anything longer is not our script's answer.
 */
const MAX_READ_OUTPUT = 256 * 1024;

export type EnvironmentScope = 'User' | 'Machine';

export function powershellArgv(script: string): string[] {
  return [POWERSHELL, ...ARGS, script];
}

export function runPowerShell(ctx: Context, script: string, env?: Record<string, string | undefined>): Promise<ExecResult> {
  return ctx.exec(POWERSHELL, [...ARGS, script], { timeoutMs: 30_000, env });
}

function checkedName(key: string): string {
  if (!NAME.test(key)) throw new Error(`refusing to build a PowerShell script for the variable name ${JSON.stringify(key)}`);
  return key;
}

/** One line of PowerShell output: its value, or undefined for the empty line $null prints. */
function valueOf(result: ExecResult): string | undefined {
  if (result.exitCode !== 0) return undefined;
  const value = result.stdout.replace(/\r?\n$/, '').replace(/\r$/, '');
  return value === '' ? undefined : value;
}

/** A variable that could not be read: never taken for "unset", which would make undo delete a value. */
export class EnvironmentReadError extends Error {
  constructor(key: string, scope: EnvironmentScope, reason: string) {
    super(`could not read ${key} at ${scope} scope through PowerShell: ${reason}`);
    this.name = 'EnvironmentReadError';
  }
}

/**
 * The script that reads one variable. PowerShell prints a string through the console's code page
 * (non-ASCII is lost) and prints $null and '' alike (nothing, or an empty line), so the script
 * answers in ASCII only: `unset`, or `value:` and the value's UTF-8 bytes in base64.
 */
export function environmentReadScript(key: string, scope: EnvironmentScope): string {
  return `$v = [Environment]::GetEnvironmentVariable(${quotePowerShell(checkedName(key))},${quotePowerShell(scope)}); if ($null -eq $v) { 'unset' } else { 'value:' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($v)) }`;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The answer of environmentReadScript: the value exactly (newlines, CR, spaces and all), or undefined when unset. */
export function parseEnvironmentRead(stdout: string): { value: string | undefined } | { error: string } {
  if (stdout.length > MAX_READ_OUTPUT) return { error: `its output is ${stdout.length} characters long, more than any value can be` };
  const answer = stdout.replace(/^\ufeff/, '').replace(/\r?\n$/, '');
  if (answer === 'unset') return { value: undefined };
  if (answer.startsWith('value:')) {
    const encoded = answer.slice('value:'.length);
    if (encoded.length % 4 === 0 && BASE64.test(encoded)) {
      const bytes = Buffer.from(encoded, 'base64');
      const value = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
      return { value };
    }
  }
  return { error: `unexpected output ${JSON.stringify(answer.slice(0, 80))}${answer.length > 80 ? '…' : ''}` };
}

/** OLLAMA_HOST (or another of our names) at one scope, exactly; throws EnvironmentReadError when PowerShell can't tell. */
export async function readEnvironmentVariable(ctx: Context, key: string, scope: EnvironmentScope): Promise<string | undefined> {
  const result = await runPowerShell(ctx, environmentReadScript(key, scope));
  if (result.exitCode !== 0) {
    const reason = result.failure === 'not-found' ? 'powershell.exe was not found' : result.failure === 'timeout' ? 'it timed out' : `exit ${result.exitCode}: ${firstLine(result.stderr)}`;
    throw new EnvironmentReadError(key, scope, reason);
  }
  const parsed = parseEnvironmentRead(result.stdout);
  if ('error' in parsed) throw new EnvironmentReadError(key, scope, parsed.error);
  return parsed.value;
}

/** What Explorer gives a program it starts: the Machine value, overridden by the User value. */
export async function explorerEnvironmentValue(ctx: Context, key: string): Promise<string | undefined> {
  const [user, machine] = await Promise.all([readEnvironmentVariable(ctx, key, 'User'), readEnvironmentVariable(ctx, key, 'Machine')]);
  return user ?? machine;
}

function firstLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  const line = (text.split(/\r?\n/).find((candidate) => candidate.trim() !== '') ?? '').replace(/[\x00-\x1f\x7f-\x9f]/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line || '(no message)';
}

/**
 * The User-scope environment (HKCU\Environment), what Explorer gives the apps it starts.
 * [Environment]::SetEnvironmentVariable(..., 'User') broadcasts WM_SETTINGCHANGE, so Explorer
 * picks it up; setx is never used (it truncates values at 1024 characters).
 */
export const userEnvStore: SettingStore = {
  id: 'windows-user-env',
  privileged: false,
  read: (ctx, key) => readEnvironmentVariable(ctx, key, 'User'),
  command(key, value) {
    const name = quotePowerShell(checkedName(key));
    if (value === undefined) return { argv: powershellArgv(`[Environment]::SetEnvironmentVariable(${name}, $null, 'User')`) };
    return { argv: powershellArgv(`[Environment]::SetEnvironmentVariable(${name}, $env:STIGMER_SETUP_VALUE, 'User')`), env: { STIGMER_SETUP_VALUE: value } };
  },
};

/** Whether this PowerShell runs elevated (an Administrator token): only a service change needs it. */
export async function isElevated(ctx: Context): Promise<boolean> {
  const result = await runPowerShell(ctx, '([Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()).IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)');
  return valueOf(result) === 'True';
}
