/**
 * Registry values read and written through PowerShell's registry provider, for the ollama service:
 * its key's `Environment` (REG_MULTI_SZ, which the service control manager adds to the service's
 * environment when it starts the service) and NSSM's `Parameters\AppEnvironmentExtra`
 * (REG_MULTI_SZ, which NSSM adds to the application's environment, last: README "Environment
 * variables", nssm.cc).
 *
 * A REG_MULTI_SZ is a list of strings (PowerShell gives a string[]); each entry of these two is
 * `NAME=VALUE`, and an entry may hold any character but NUL, a newline included. So values are
 * never read from PowerShell's text output line by line: the read prints one JSON object
 * (ConvertTo-Json), which carries every character, and tells "no such value" apart from "no such
 * key" and from a failure. Scripts hold no double quotes (Windows' command-line quoting would have
 * to carry them) and no value: a value travels in $env:STIGMER_SETUP_VALUE.
 */
import type { Context } from '../../scripts/context.ts';
import { describeFailure, StepError } from '../../scripts/system-files.ts';
import { cleanField } from '../../scripts/text.ts';
import type { SettingStore, SettingStoreId } from '../types.ts';
import { powershellArgv, runPowerShell } from './powershell.ts';

export const SERVICES_KEY = 'HKLM:\\SYSTEM\\CurrentControlSet\\Services';
/** The variable names scripts are built with: ours, never input. */
const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
/** A registry path we build scripts for: ours, never input (no quote, no wildcard, no control character). */
const KEY = /^HKLM:\\[A-Za-z0-9_\\ -]+$/;
/** More entries than any environment needs: a longer list is refused, not processed. */
export const MAX_ENTRIES = 4096;
/** The registry's own limit for one value is about 1 MB; PowerShell's JSON of it stays below this. */
const MAX_OUTPUT = 4 * 1024 * 1024;

function checked(pattern: RegExp, text: string, what: string): string {
  if (!pattern.test(text)) throw new Error(`refusing to build a PowerShell script for the ${what} ${JSON.stringify(text)}`);
  return text;
}

/** What one registry value holds: the key may be missing, the value may be missing, or it has a kind. */
export type RegistryValue =
  | { key: false }
  | { key: true; kind?: undefined }
  | { key: true; kind: string; value: unknown };

/** The read, as one statement PowerShell runs: a JSON object on one line. */
export function readValueScript(key: string, name: string): string {
  const k = checked(KEY, key, 'registry key');
  const n = checked(NAME, name, 'value name');
  return [
    `if (-not (Test-Path -LiteralPath '${k}')) { ConvertTo-Json -Compress -InputObject @{ key = $false } }`,
    `elseif ((Get-Item -LiteralPath '${k}' -ErrorAction Stop).GetValueNames() -notcontains '${n}') { ConvertTo-Json -Compress -InputObject @{ key = $true } }`,
    `else { $item = Get-Item -LiteralPath '${k}' -ErrorAction Stop; ConvertTo-Json -Compress -Depth 2 -InputObject @{ key = $true; kind = [string]$item.GetValueKind('${n}'); value = $item.GetValue('${n}', $null, 'DoNotExpandEnvironmentNames') } }`,
  ].join(' ');
}

/** Read one value; throws a StepError when PowerShell fails or prints anything but the expected object. */
export async function readRegistryValue(ctx: Context, key: string, name: string): Promise<RegistryValue> {
  const script = readValueScript(key, name);
  const result = await runPowerShell(ctx, script);
  if (result.failure || result.exitCode !== 0) throw new StepError(describeFailure(['powershell.exe', '-Command', script], result, 30_000));
  const text = result.stdout.trim();
  let parsed: unknown;
  try {
    if (text.length > MAX_OUTPUT) throw new Error('too long');
    parsed = JSON.parse(text);
  } catch {
    throw new StepError(`Reading ${key}\\${name} gave output that is not PowerShell's JSON: ${JSON.stringify(cleanField(text.slice(0, 120)))}`);
  }
  const object = parsed as { key?: unknown; kind?: unknown; value?: unknown } | null;
  if (typeof object !== 'object' || object === null || typeof object.key !== 'boolean') throw new StepError(`Reading ${key}\\${name} gave an unexpected answer: ${JSON.stringify(cleanField(text.slice(0, 120)))}`);
  if (!object.key) return { key: false };
  if (object.kind === undefined || object.kind === null) return { key: true };
  if (typeof object.kind !== 'string') throw new StepError(`Reading ${key}\\${name} gave an unexpected kind: ${JSON.stringify(cleanField(text.slice(0, 120)))}`);
  return { key: true, kind: object.kind, value: object.value };
}

/** The entries of a REG_MULTI_SZ, or why they can't be used. A missing value is an empty list. */
export function multiStringEntries(value: RegistryValue, where: string): string[] {
  if (!value.key || value.kind === undefined) return [];
  if (value.kind !== 'MultiString') throw new StepError(`${where} is a ${value.kind} value, not the REG_MULTI_SZ Windows reads there, so stigmer-setup won't edit it. Nothing was changed.`);
  // PowerShell 5.1 may give one string for a one-entry list; an empty list is [] (or null).
  const list = value.value === null ? [] : typeof value.value === 'string' ? [value.value] : value.value;
  if (!Array.isArray(list) || list.some((entry) => typeof entry !== 'string')) throw new StepError(`${where} did not read back as a list of strings. Nothing was changed.`);
  if (list.length > MAX_ENTRIES) throw new StepError(`${where} has ${list.length} entries, more than stigmer-setup edits (${MAX_ENTRIES}). Nothing was changed.`);
  return list as string[];
}

/** Whether `entry` sets `name`: Windows' environment names are case-insensitive. */
function entrySets(entry: string, name: string): boolean {
  return entry.length > name.length && entry[name.length] === '=' && entry.slice(0, name.length).toUpperCase() === name.toUpperCase();
}

/**
 * The value `name` has in a list of NAME=VALUE entries, undefined when no entry sets it. More than
 * one entry for the name is refused: which one a process sees is not something to guess, and an
 * edit could not put both back.
 */
export function entryValue(entries: readonly string[], name: string, where: string): string | undefined {
  const matches = entries.filter((entry) => entrySets(entry, name));
  if (matches.length > 1) throw new StepError(`${where} sets ${name} ${matches.length} times, so it is not clear which value the service gets; remove the extra entries (regedit), then run stigmer-setup again. Nothing was changed.`);
  return matches[0]?.slice(name.length + 1);
}

/**
 * The edit PowerShell makes, as a pure function of the list (for the sandbox's PowerShell and the
 * tests to agree with on meaning, never to share code): the entry for `name` keeps its place and its
 * spelling of the name and gets the new value; with no entry, one is appended; removing it drops
 * the entry, and an emptied list removes the value. Every other entry stays as it was.
 */
export function editEntries(entries: readonly string[], name: string, value: string | undefined): string[] {
  const out: string[] = [];
  let found = false;
  for (const entry of entries) {
    if (!entrySets(entry, name)) out.push(entry);
    else {
      if (!found && value !== undefined) out.push(entry.slice(0, name.length + 1) + value);
      found = true;
    }
  }
  if (!found && value !== undefined) out.push(`${name}=${value}`);
  return out;
}

/**
 * The write: read the list as it is now, change only our entry (in place), write the list back as
 * REG_MULTI_SZ, or remove the value when the list ends up empty. A value of another kind is refused
 * (throw), not converted. One statement per line.
 */
export function editValueScript(key: string, name: string, entry: string, set: boolean): string {
  const k = checked(KEY, key, 'registry key');
  const n = checked(NAME, name, 'value name');
  const e = checked(NAME, entry, 'variable name');
  return [
    // One clear line on stderr instead of an error record, and "not elevated" said as such.
    `trap [System.Security.SecurityException] { [Console]::Error.WriteLine('This needs an elevated PowerShell (Run as administrator): ' + $_.Exception.Message); exit 5 }`,
    `trap { [Console]::Error.WriteLine($_.Exception.Message); exit 1 }`,
    `$set = $${set ? 'true' : 'false'}`,
    `$item = Get-Item -LiteralPath '${k}' -ErrorAction Stop`,
    `$list = [string[]]@()`,
    `if ($item.GetValueNames() -contains '${n}') { if ([string]$item.GetValueKind('${n}') -ne 'MultiString') { throw '${n} is not a REG_MULTI_SZ value' }; $list = [string[]]$item.GetValue('${n}', $null, 'DoNotExpandEnvironmentNames') }`,
    `$prefix = '${e}='`,
    `$found = $false`,
    `$new = New-Object System.Collections.Generic.List[string]`,
    `foreach ($entry in $list) { if ($entry.StartsWith($prefix, [StringComparison]::OrdinalIgnoreCase)) { if ($set -and -not $found) { $new.Add($entry.Substring(0, $prefix.Length) + [string]$env:STIGMER_SETUP_VALUE) }; $found = $true } else { $new.Add($entry) } }`,
    `if ($set -and -not $found) { $new.Add($prefix + [string]$env:STIGMER_SETUP_VALUE) }`,
    `if ($new.Count -gt 0) { Set-ItemProperty -LiteralPath '${k}' -Name '${n}' -Type MultiString -Value $new.ToArray() -ErrorAction Stop } elseif ($item.GetValueNames() -contains '${n}') { Remove-ItemProperty -LiteralPath '${k}' -Name '${n}' -ErrorAction Stop }`,
  ].join('\n');
}

/**
 * A setting store for one NAME=VALUE entry of one REG_MULTI_SZ: read gives the entry's value
 * (undefined: no entry), command sets or removes only that entry.
 */
export function multiStringEnvStore(id: SettingStoreId, key: string, name: string, describe: string): SettingStore {
  return {
    id,
    privileged: true,
    async read(ctx, entry) {
      return entryValue(multiStringEntries(await readRegistryValue(ctx, key, name), describe), checked(NAME, entry, 'variable name'), describe);
    },
    command(entry, value) {
      const script = editValueScript(key, name, entry, value !== undefined);
      return value === undefined ? { argv: powershellArgv(script) } : { argv: powershellArgv(script), env: { STIGMER_SETUP_VALUE: value } };
    },
  };
}
