/**
 * A Windows machine with an ollama service, for unit tests of platforms/win32/service.ts: `sc`
 * answers in the real block layout (test/fixtures/win32 captures), PowerShell's registry read
 * answers like Windows PowerShell 5.1's ConvertTo-Json (hashtable keys in no set order; < > & '
 * escaped as \uXXXX), and a scripted service state stands for the SCM. Only reads are answered
 * from the registry here; the sandbox (test/support/windows/service.mjs) runs the edits.
 */
import type { ExecOptions, ExecResult, PathInfo } from '../../../scripts/context.ts';
import { fixture } from './fixtures.ts';
import { failed, NOT_FOUND, ok, testContext } from './context.ts';

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
    exec: (command: string, args: string[], _options: ExecOptions): ExecResult => {
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
        if (script.includes("GetEnvironmentVariable('OLLAMA_HOST','Machine')")) return ok(machine.machineHost === undefined ? '' : `${machine.machineHost}\r\n`);
        const read = /Test-Path -LiteralPath '([^']+)'.*GetValueKind\('([^']+)'\)/s.exec(script);
        if (read) {
          if (machine.readOutput !== undefined) return ok(machine.readOutput);
          const [, key, name] = read as unknown as [string, string, string];
          const found = Object.keys(registry).find((k) => k.toUpperCase() === key.toUpperCase());
          if (found === undefined) return ok(`${ps51Json({ key: false })}\r\n`);
          const entryName = Object.keys(registry[found] ?? {}).find((n) => n.toUpperCase() === name.toUpperCase());
          const entry = entryName === undefined ? undefined : registry[found]?.[entryName];
          return ok(`${entry === undefined ? ps51Json({ key: true }) : ps51Json({ key: true, kind: entry.kind, value: entry.value })}\r\n`);
        }
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
