/**
 * PowerShell, run as an argument array (zx's shell lookup would look for bash, which Windows does
 * not have). A value never becomes part of the script text: it travels in an environment variable
 * the script reads ($env:STIGMER_SETUP_VALUE), so quotes, `;`, `$` or a backtick in it stay data.
 * Only fixed scripts with a fixed variable name are ever run.
 */
import type { Context, ExecResult } from '../../scripts/context.ts';
import { describeFailure, StepError } from '../../scripts/system-files.ts';
import type { SettingStore } from '../types.ts';

export const POWERSHELL = 'powershell.exe';
const ARGS = ['-NoProfile', '-NonInteractive', '-Command'];
/** The only variable name scripts are built with: it is ours, never input. */
const NAME = /^[A-Z][A-Z0-9_]*$/;

export function powershellArgv(script: string): string[] {
  return [POWERSHELL, ...ARGS, script];
}

const TIMEOUT_MS = 30_000;

export function runPowerShell(ctx: Context, script: string, env?: Record<string, string | undefined>): Promise<ExecResult> {
  return ctx.exec(POWERSHELL, [...ARGS, script], { timeoutMs: TIMEOUT_MS, env });
}

/**
 * A setting store's read. A PowerShell that failed or timed out says nothing about the value:
 * taken as "unset", setup would record `before: null` and undo would delete the user's value. So
 * it throws, naming the command, and setup stops before anything changes (the store is read again
 * just before each write).
 */
export async function readForStore(ctx: Context, script: string, what: string): Promise<ExecResult> {
  const result = await runPowerShell(ctx, script);
  if (result.failure || result.exitCode !== 0) throw new StepError(`Could not read ${what}: ${describeFailure(powershellArgv(script), result, TIMEOUT_MS)} Nothing was changed.`);
  return result;
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

const getVariableScript = (key: string, scope: 'User' | 'Machine') => `[Environment]::GetEnvironmentVariable('${checkedName(key)}','${scope}')`;

export async function readEnvironmentVariable(ctx: Context, key: string, scope: 'User' | 'Machine'): Promise<string | undefined> {
  return valueOf(await runPowerShell(ctx, getVariableScript(key, scope)));
}

/**
 * The User-scope environment (HKCU\Environment), what Explorer gives the apps it starts.
 * [Environment]::SetEnvironmentVariable(..., 'User') broadcasts WM_SETTINGCHANGE, so Explorer
 * picks it up; setx is never used (it truncates values at 1024 characters).
 */
export const userEnvStore: SettingStore = {
  id: 'windows-user-env',
  privileged: false,
  read: async (ctx, key) => valueOf(await readForStore(ctx, getVariableScript(key, 'User'), `the User variable ${key}`)),
  command(key, value) {
    const name = checkedName(key);
    if (value === undefined) return { argv: powershellArgv(`[Environment]::SetEnvironmentVariable('${name}', $null, 'User')`) };
    return { argv: powershellArgv(`[Environment]::SetEnvironmentVariable('${name}', $env:STIGMER_SETUP_VALUE, 'User')`), env: { STIGMER_SETUP_VALUE: value } };
  },
};

/** Whether this PowerShell runs elevated (an Administrator token): only a service change needs it. */
export async function isElevated(ctx: Context): Promise<boolean> {
  const result = await runPowerShell(ctx, '([Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()).IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)');
  return valueOf(result) === 'True';
}
