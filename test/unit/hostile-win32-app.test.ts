/**
 * Hostile input for the Windows tray app: everything PowerShell and tasklist print is untrusted.
 * A process path with a newline or a control character, an answer far larger than any real one,
 * JSON of another shape, an environment read that is not our script's answer: each must end in a
 * refusal that changes nothing (never in a guess such as "unset", or in a path we would launch),
 * and nothing printed may carry a control character from the machine.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startCommand, winAppStrategy, type WinAppDetection } from '../../platforms/win32/app.ts';
import { parseProcessPathsJson } from '../../platforms/win32/parsers/process-paths.ts';
import { parseEnvironmentRead } from '../../platforms/win32/powershell.ts';
import type { PlanRequest, RestartChange } from '../../platforms/types.ts';
import type { ExecResult } from '../../scripts/context.ts';
import { failed, ok, testContext } from './support/context.ts';
import { environmentReadOutput, processPathsOutput } from './support/windows-powershell.ts';

const ENV = { LOCALAPPDATA: 'C:\\Users\\ada\\AppData\\Local', USERPROFILE: 'C:\\Users\\ada' };
const APP = 'C:\\Users\\ada\\AppData\\Local\\Programs\\Ollama\\ollama app.exe';
const REQUEST: PlanRequest = { target: { host: '0.0.0.0', port: 11434 }, explicitHost: false, elevate: [], listening: 'loopback' };
const TASKLIST = '"ollama app.exe","4100","Console","1","52,000 K"\r\n"ollama.exe","4184","Console","1","98,000 K"\r\n';
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

/** The app runs (pid 4100); PowerShell answers the process query with `cim` and the User read with `user`. */
function machine(answers: { cim?: ExecResult; user?: ExecResult; files?: string[] }) {
  const killed: string[] = [];
  const launched: string[] = [];
  const ctx = testContext({
    env: ENV,
    exec: (command, args) => {
      if (command === 'tasklist') return ok(TASKLIST);
      if (command === 'taskkill') {
        killed.push(args.at(-1) as string);
        return ok('');
      }
      if (command === 'powershell.exe') {
        const script = args.at(-1) ?? '';
        if (script.includes('Win32_Process')) return answers.cim ?? ok(processPathsOutput([{ pid: 4100, path: APP }]));
        if (script.includes("'User'")) return answers.user ?? ok(environmentReadOutput(undefined));
        return ok(environmentReadOutput(undefined));
      }
      return failed('not here', 1);
    },
  });
  const files = new Set(answers.files ?? [APP]);
  ctx.fs = { ...ctx.fs, inspect: async (file: string) => (files.has(file) ? { kind: 'file', mode: 0o755, uid: 0, gid: 0, size: 1 } : undefined) };
  ctx.launch = async (command) => {
    launched.push(command);
    return { pid: 1 };
  };
  return { ctx, killed, launched };
}

async function detect(ctx: ReturnType<typeof machine>['ctx']): Promise<WinAppDetection> {
  return (await winAppStrategy.detect(ctx, { root: '/', home: ENV.USERPROFILE, env: ENV, port: 11434, listeners: [], path: path.win32 })) as WinAppDetection;
}

describe('hostile Win32_Process answers: the app is never stopped on a path we could not trust', () => {
  const cases: [string, ExecResult][] = [
    ['a path with a newline (a forged second line)', ok(processPathsOutput([{ pid: 4100, path: `${APP}\n✓ all good` }]))],
    ['a path with an escape sequence', ok(processPathsOutput([{ pid: 4100, path: `C:\\x\u001b[2J\\ollama app.exe` }]))],
    ['a path longer than Windows allows', ok(processPathsOutput([{ pid: 4100, path: `C:\\${'a'.repeat(40_000)}` }]))],
    ['an answer larger than any real one', ok(`[${'{"ProcessId":  1, "ExecutablePath":  null},'.repeat(30_000)}{"ProcessId":  4100}]`)],
    ['not JSON', ok('Get-CimInstance : Access denied\r\n')],
    ['JSON of another shape', ok('{"ProcessId": "4100", "ExecutablePath": "C:\\\\x.exe"}')],
    ['a JSON string', ok('"C:\\\\Users\\\\ada\\\\AppData\\\\Local\\\\Programs\\\\Ollama\\\\ollama app.exe"')],
    ['a nested array', ok('[[{"ProcessId": 4100, "ExecutablePath": "C:\\\\x.exe"}]]')],
    ['a prototype key', ok('{"__proto__": {"ProcessId": 4100}, "ExecutablePath": "C:\\\\x.exe"}')],
    ['PowerShell failing', failed('Get-CimInstance : The WS-Management service cannot process the request.', 1)],
  ];
  for (const [what, cim] of cases) {
    it(`${what}: a blocker at plan time, and a restart that refuses before taskkill`, async () => {
      const { ctx, killed, launched } = machine({ cim, files: [APP, `${APP}\n✓ all good`] });
      const detection = await detect(ctx);
      const plan = winAppStrategy.plan(detection, REQUEST);
      expect(plan.changes).toEqual([]);
      expect(plan.blockers).toHaveLength(1);
      expect(plan.blockers[0]?.message).toMatch(/^A restart of the Ollama app is not possible: the Ollama app runs \(pid 4100\)/);
      for (const text of [plan.blockers[0]?.message ?? '', detection.description, ...(detection.problems ?? []).map((problem) => problem.message)]) {
        expect(text).not.toMatch(CONTROL);
        expect(text).not.toContain('\n');
        expect(text.length).toBeLessThan(2000);
      }
      const change = winAppStrategy.restartChange?.({ elevate: [], env: ENV }) as RestartChange;
      await expect(winAppStrategy.restart?.(ctx, change, async () => {})).rejects.toThrow(/^Nothing was stopped/);
      expect(killed).toEqual([]);
      expect(launched).toEqual([]);
    });
  }

  it('the parser itself never throws and bounds its work', () => {
    for (const text of ['\u0000', '['.repeat(100_000), '{'.repeat(10), 'null', 'true', '1e999', '\ufeff[]', 'x'.repeat(2_000_000)]) {
      expect(() => parseProcessPathsJson(text)).not.toThrow();
    }
    expect(parseProcessPathsJson('\ufeff[]')).toEqual([]);
    expect(parseProcessPathsJson('x'.repeat(2_000_000))).toBeUndefined();
  });
});

describe('hostile environment reads: never taken for "unset"', () => {
  for (const [what, user] of [
    ['raw PowerShell output (not our script\'s answer)', ok('0.0.0.0:11434\r\n')],
    ['an empty answer', ok('')],
    ['an answer larger than any value', ok(`value:${'A'.repeat(400_000)}\r\n`)],
    ['PowerShell failing', failed('Exception calling "GetEnvironmentVariable"', 1)],
    ['PowerShell not found', { exitCode: null, stdout: '', stderr: '', failure: 'not-found' } as ExecResult],
  ] as const) {
    it(`${what}: setup changes nothing and says why`, async () => {
      const { ctx, killed } = machine({ user });
      const detection = await detect(ctx);
      expect(detection.unreadable).toMatch(/^could not read OLLAMA_HOST at User scope through PowerShell: /);
      const plan = winAppStrategy.plan(detection, REQUEST);
      expect(plan.changes).toEqual([]);
      expect(plan.blockers[0]?.message).toMatch(/^OLLAMA_HOST could not be read: /);
      expect(plan.blockers[0]?.message).not.toMatch(CONTROL);
      expect(killed).toEqual([]);
    });
  }

  it('a value with control characters is kept exactly, and shown escaped', async () => {
    const value = '0.0.0.0:11434\n\u001b[31mred';
    const { ctx } = machine({ user: ok(environmentReadOutput(value)) });
    const detection = await detect(ctx);
    expect(detection.userHost).toBe(value);
    for (const problem of detection.problems ?? []) expect(problem.message).not.toMatch(CONTROL);
    expect(parseEnvironmentRead(environmentReadOutput(value))).toEqual({ value });
  });
});

describe('hostile paths in printed commands', () => {
  it('a path no quoting makes one command (a control character) is never printed as one', () => {
    expect(startCommand('C:\\Users\\a\nb\\ollama app.exe')).toBe('Start Ollama from the Start menu');
    expect(startCommand("C:\\Users\\a'; Remove-Item -Recurse C:\\; '\\ollama app.exe")).toBe("Start-Process -FilePath 'C:\\Users\\a''; Remove-Item -Recurse C:\\; ''\\ollama app.exe'");
  });
});
