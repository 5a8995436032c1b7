/**
 * A Windows machine with an ollama service, for unit tests of platforms/win32/service.ts: `sc`
 * answers in the real block layout (test/fixtures/win32 captures), PowerShell's registry read
 * answers like Windows PowerShell 5.1's ConvertTo-Json (hashtable keys in no set order; < > & '
 * escaped as \uXXXX), the Machine environment read answers the lossless read script as
 * PowerShell does (windows-powershell.ts), and a scripted service state stands for the SCM.
 * registryPowerShell (the read and the NAME=VALUE edit of registry.ts) is shared with
 * hostile-record.test.ts; the sandbox (test/support/windows/service.mjs) runs the same scripts
 * for the e2e suites.
 */
import type { ExecOptions, ExecResult, PathInfo } from '../../../scripts/context.ts';
import { fixture } from './fixtures.ts';
import { failed, NOT_FOUND, ok, testContext } from './context.ts';
import { environmentReadOutput } from './windows-powershell.ts';

export interface RegistryEntry {
  kind: string;
  value: unknown;
}
export type FakeRegistry = Record<string, Record<string, RegistryEntry>>;

export const SERVICE_KEY = 'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\ollama';
export const PARAMETERS_KEY = `${SERVICE_KEY}\\Parameters`;
export const PROGRAM = 'C:\\ollama\\ollama-service.exe';

export interface FakeMachine {
  admin?: boolean;
  registry?: FakeRegistry;
  /** Raw stdout for every registry read (a broken PowerShell), instead of the registry's answer. */
  readOutput?: string;
  machineHost?: string;
  /** States `sc queryex` reports, one per call (the last one repeats); MISSING: error 1060. */
  states?: string[];
  /** Files that exist (the service's program). */
  files?: string[];
  /** What `sc start` prints. */
  startOutput?: string;
}

/** PS 5.1's ConvertTo-Json -Compress: keys reversed (a Hashtable keeps no order), < > & ' escaped. */
export function ps51Json(value: unknown): string {
  const text = JSON.stringify(value, (_key, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v));
  return text.replace(/[<>&']/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function defaultRegistry(environment?: string[]): FakeRegistry {
  const key: Record<string, RegistryEntry> = { ImagePath: { kind: 'ExpandString', value: `"${PROGRAM}"` }, Start: { kind: 'DWord', value: 2 } };
  if (environment) key.Environment = { kind: 'MultiString', value: environment };
  return { [SERVICE_KEY]: key };
}

const same = (a: string, b: string) => a.toUpperCase() === b.toUpperCase();
const findKey = (registry: FakeRegistry, key: string) => Object.keys(registry).find((k) => same(k, key));
const findName = (values: Record<string, RegistryEntry>, name: string) => Object.keys(values).find((n) => same(n, name));

/**
 * What .NET's RegistryKey.GetValue gives for a REG_MULTI_SZ: the data is NUL-separated, so an
 * entry can't hold a NUL; one written with a NUL reads back as two entries.
 */
function multiStringAsRead(value: unknown): unknown {
  return Array.isArray(value) ? value.flatMap((entry) => (typeof entry === 'string' ? entry.split('\0') : [entry])) : value;
}

/**
 * Windows PowerShell running platforms/win32/registry.ts's scripts against `registry` (keys and
 * value names case-insensitive): the read prints one ConvertTo-Json object ({key:false}, {key:true},
 * or {key, kind, value}); the edit of one NAME=VALUE entry of a REG_MULTI_SZ does what its
 * statements say (String.StartsWith(prefix, OrdinalIgnoreCase) finds the entry, which keeps its
 * place; no entry: appended; an emptied list removes the value; a missing key or another kind fails
 * through the script's trap, exit 1, nothing written; not elevated: the SecurityException trap, exit 5).
 * The value comes from $env:STIGMER_SETUP_VALUE ([string]$null is ''). Any other script: undefined.
 */
export function registryPowerShell(registry: FakeRegistry, script: string, env?: Record<string, string | undefined>, admin = true): ExecResult | undefined {
  const read = /^if \(-not \(Test-Path -LiteralPath '([^']+)'\)\).*GetValueKind\('([^']+)'\)/s.exec(script);
  if (read) {
    const [, key, name] = read as unknown as [string, string, string];
    const found = findKey(registry, key);
    if (found === undefined) return ok(`${ps51Json({ key: false })}\r\n`);
    const values = registry[found] ?? {};
    const entryName = findName(values, name);
    const entry = entryName === undefined ? undefined : values[entryName];
    return ok(`${entry === undefined ? ps51Json({ key: true }) : ps51Json({ key: true, kind: entry.kind, value: entry.kind === 'MultiString' ? multiStringAsRead(entry.value) : entry.value })}\r\n`);
  }
  const set = /^\$set = \$(true|false)$/m.exec(script)?.[1];
  const key = /^\$item = Get-Item -LiteralPath '([^']+)' -ErrorAction Stop$/m.exec(script)?.[1];
  const name = /Set-ItemProperty -LiteralPath '[^']+' -Name '([^']+)' -Type MultiString/.exec(script)?.[1];
  const prefix = /^\$prefix = '([^']+)'$/m.exec(script)?.[1];
  if (set === undefined || key === undefined || name === undefined || prefix === undefined) return undefined;
  const found = findKey(registry, key);
  if (found === undefined) return failed(`Cannot find path '${key}' because it does not exist.\r\n`);
  const values = registry[found] as Record<string, RegistryEntry>;
  const valueName = findName(values, name);
  const current = valueName === undefined ? undefined : values[valueName];
  if (current !== undefined && current.kind !== 'MultiString') return failed(`${name} is not a REG_MULTI_SZ value\r\n`);
  const value = env?.STIGMER_SETUP_VALUE ?? '';
  const list = multiStringAsRead(current?.value ?? []) as string[];
  const next: string[] = [];
  let matched = false;
  for (const entry of list) {
    if (entry.toUpperCase().startsWith(prefix.toUpperCase())) {
      if (set === 'true' && !matched) next.push(entry.slice(0, prefix.length) + value);
      matched = true;
    } else next.push(entry);
  }
  if (set === 'true' && !matched) next.push(prefix + value);
  if (next.length === 0 && current === undefined) return ok();
  if (!admin) return failed('This needs an elevated PowerShell (Run as administrator): Requested registry access is not allowed.\r\n', 5);
  if (next.length > 0) values[valueName ?? name] = { kind: 'MultiString', value: next };
  else delete values[valueName ?? name];
  return ok();
}

function scBlock(state: string, pid: number): string {
  const running = fixture('win32/sc-running-with-pid-goodbyedpi-440.txt').replace(/GoodbyeDPI/g, 'ollama');
  const code = { STOPPED: 1, START_PENDING: 2, STOP_PENDING: 3, RUNNING: 4 }[state] ?? 4;
  return running.replace('4  RUNNING', `${code}  ${state}`).replace('2148', String(state === 'STOPPED' ? 0 : pid));
}

export function winServiceMachine(machine: FakeMachine = {}) {
  const registry = machine.registry ?? defaultRegistry();
  const files = new Set(machine.files ?? [PROGRAM]);
  const states = [...(machine.states ?? ['RUNNING'])];
  const scCalls: string[] = [];
  const ctx = testContext({
    env: { LOCALAPPDATA: 'C:\\Users\\ada\\AppData\\Local', USERPROFILE: 'C:\\Users\\ada', SystemRoot: 'C:\\Windows' },
    exec: (command: string, args: string[], options: ExecOptions): ExecResult => {
      if (command === 'sc') {
        scCalls.push(args.join(' '));
        if (args[0] === 'queryex') {
          const state = (states.length > 1 ? states.shift() : states[0]) as string;
          if (state === 'MISSING') return { exitCode: 36, stdout: fixture('win32/sc-openservice-failed-1060-goodbyedpi-440.txt'), stderr: '' };
          return ok(scBlock(state, 4321));
        }
        if (args[0] === 'start') return ok(machine.startOutput ?? scBlock('START_PENDING', 4400));
        if (args[0] === 'stop') return ok(scBlock('STOP_PENDING', 4321));
        return failed('unsupported', 1);
      }
      if (command === 'taskkill') {
        scCalls.push(`taskkill ${args.join(' ')}`);
        return ok('SUCCESS\r\n');
      }
      if (command === 'netsh') return ok(fixture('win32/netsh-excludedportrange-administered-otel-collector-10839.txt'));
      if (command === 'powershell.exe') {
        const script = args.at(-1) ?? '';
        if (script.includes('IsInRole')) return ok(machine.admin === false ? 'False\r\n' : 'True\r\n');
        // environmentReadScript: only the Machine scope's OLLAMA_HOST is set on this machine.
        const envRead = /GetEnvironmentVariable\('([A-Z_]+)','(User|Machine)'\).*ToBase64String/s.exec(script);
        if (envRead) return ok(environmentReadOutput(envRead[1] === 'OLLAMA_HOST' && envRead[2] === 'Machine' ? machine.machineHost : undefined));
        if (machine.readOutput !== undefined && script.startsWith('if (-not (Test-Path -LiteralPath')) return ok(machine.readOutput);
        const registryAnswer = registryPowerShell(registry, script, options.env, machine.admin !== false);
        if (registryAnswer) return registryAnswer;
        if (script.includes('Win32_Process')) return ok('');
        return failed(`unexpected script: ${script}`, 1);
      }
      return NOT_FOUND;
    },
  });
  const realInspect = ctx.fs.inspect.bind(ctx.fs);
  ctx.fs = {
    ...ctx.fs,
    inspect: async (path: string): Promise<PathInfo | undefined> => (files.has(path) ? { kind: 'file', mode: 0o644, uid: 0, gid: 0, size: 2 } : path.includes('\\') ? undefined : realInspect(path)),
  };
  return { ctx, scCalls, registry };
}
