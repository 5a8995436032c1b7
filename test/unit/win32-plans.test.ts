/**
 * The Windows strategies' detection and plans, with the commands answered in their real formats
 * (netstat, netsh and sc captures from test/fixtures/win32) and PowerShell answering the scripts the
 * product sends. The value of OLLAMA_HOST must reach PowerShell as data, never as code.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { win32Platform } from '../../platforms/win32/index.ts';
import { winAppStrategy, type WinAppDetection } from '../../platforms/win32/app.ts';
import { userEnvStore } from '../../platforms/win32/powershell.ts';
import type { Change, PlanRequest, RestartChange, SettingChange } from '../../platforms/types.ts';
import type { ExecOptions, ExecResult } from '../../scripts/context.ts';
import { parseHostOption } from '../../scripts/ollama-host.ts';
import { fixture } from './support/fixtures.ts';
import { failed, NOT_FOUND, ok, testContext } from './support/context.ts';
import { environmentReadOutput, processPathsOutput } from './support/windows-powershell.ts';

const ENV = { LOCALAPPDATA: 'C:\\Users\\ada\\AppData\\Local', USERPROFILE: 'C:\\Users\\ada' };
const APP = 'C:\\Users\\ada\\AppData\\Local\\Programs\\Ollama\\ollama app.exe';
const REQUEST: PlanRequest = { target: { host: '0.0.0.0', port: 11434 }, explicitHost: false, elevate: [], listening: 'loopback' };
const settings = (changes: Change[]) => changes.filter((change): change is SettingChange => change.type === 'setting');
const restarts = (changes: Change[]) => changes.filter((change): change is RestartChange => change.type === 'restart');

interface Machine {
  user?: string;
  machine?: string;
  admin?: boolean;
  netsh?: string;
  service?: 'running' | false;
  serviceEnvironment?: string;
  nssmExtra?: string;
  /** Win32_Process for 'ollama app.exe': pid and ExecutablePath (null: Windows won't say). Default: pid 4100 from APP. */
  apps?: { pid: number; path: string | null }[];
  /** Windows paths that are files (ctx.fs.inspect). Default: APP. */
  files?: string[];
  /** tasklist's answer. */
  tasklist?: string;
}

const TASKLIST = '"ollama app.exe","4100","Console","1","52,000 K"\r\n"ollama.exe","4184","Console","1","98,000 K"\r\n';

/** A Windows machine with the app running (per tasklist), answering in real formats. */
function windows(machine: Machine = {}) {
  const ctx = testContext({
    env: ENV,
    exec: (command: string, args: string[], options: ExecOptions): ExecResult => {
      if (command === 'tasklist') return ok(machine.tasklist ?? TASKLIST);
      if (command === 'netstat') return ok(fixture('win32/netstat-aon-findstr-11434-ollama-5816-a.txt'));
      if (command === 'netsh') return ok(machine.netsh ?? fixture('win32/netsh-excludedportrange-administered-otel-collector-10839.txt'));
      if (command === 'sc') return machine.service ? ok(fixture('win32/sc-running-with-pid-goodbyedpi-440.txt').replace(/GoodbyeDPI/g, 'ollama')) : failed(fixture('win32/sc-openservice-failed-1060-goodbyedpi-440.txt'), 1060);
      if (command === 'powershell.exe') {
        const script = args.at(-1) ?? '';
        if (script.includes("GetEnvironmentVariable('OLLAMA_HOST','User')")) return ok(environmentReadOutput(machine.user));
        if (script.includes("GetEnvironmentVariable('OLLAMA_HOST','Machine')")) return ok(environmentReadOutput(machine.machine));
        if (script.includes('Win32_Process')) return ok(processPathsOutput(machine.apps ?? [{ pid: 4100, path: APP }]));
        if (script.includes('IsInRole')) return ok(machine.admin ? 'True\r\n' : 'False\r\n');
        if (script.includes('-Name Environment')) return ok(machine.serviceEnvironment ?? '');
        if (script.includes('AppEnvironmentExtra')) return ok(machine.nssmExtra ?? '');
        calls.push({ script, env: options.env });
        return ok('');
      }
      return NOT_FOUND;
    },
  });
  const calls: { script: string; env?: ExecOptions['env'] }[] = [];
  // Windows paths are not files here: the ones the test names exist.
  const files = new Set(machine.files ?? [APP]);
  ctx.fs = { ...ctx.fs, inspect: async (file: string) => (files.has(file) ? { kind: 'file', mode: 0o755, uid: 0, gid: 0, size: 1 } : undefined) };
  return { ctx, calls };
}

async function detectApp(machine: Machine = {}, env: Record<string, string> = ENV): Promise<WinAppDetection> {
  const { ctx } = windows(machine);
  const listeners = await win32Platform.readListeners(ctx, 11434);
  return (await winAppStrategy.detect(ctx, { root: '/', home: env.USERPROFILE ?? '', env, port: 11434, listeners, path: path.win32 })) as WinAppDetection;
}

describe('the tray app', () => {
  it('is found by its running processes, and its server owns the port (netstat and tasklist)', async () => {
    const detection = await detectApp();
    expect(detection).toMatchObject({ strategy: 'win32-app', appPath: APP, running: true, serverPid: 4184 });
  });

  it('sets OLLAMA_HOST at User scope through PowerShell, then restarts the app with it', async () => {
    const plan = winAppStrategy.plan(await detectApp(), REQUEST);
    expect(settings(plan.changes)).toEqual([
      {
        type: 'setting',
        store: 'windows-user-env',
        key: 'OLLAMA_HOST',
        before: undefined,
        after: '0.0.0.0:11434',
        privileged: false,
        argv: ['powershell.exe', '-NoProfile', '-NonInteractive', '-Command', "[Environment]::SetEnvironmentVariable('OLLAMA_HOST', $env:STIGMER_SETUP_VALUE, 'User')"],
      },
    ]);
    expect(restarts(plan.changes)[0]?.steps).toEqual([
      ['taskkill', '/F', '/T', '/IM', 'ollama app.exe'],
      ['taskkill', '/F', '/T', '/IM', 'ollama.exe'],
      ['taskkill', '/F', '/T', '/IM', 'llama-server.exe'],
      [APP, '--hide'],
    ]);
    expect(plan.warnings.join(' ')).toContain('WinError 10049');
    const commands = plan.changes.flatMap((change) => (change.type === 'restart' ? change.steps : change.type === 'setting' ? [change.argv] : []));
    expect(commands.flat().join(' ')).not.toMatch(/setx/i);
  });

  it('never puts the value into the script: quotes, ; $ and a backtick travel in the environment', () => {
    for (const value of ["0.0.0.0:1'; Remove-Item C:\\ -Recurse; '", '$(Invoke-Expression evil)', '`n`r"; calc'] as const) {
      const { argv, env } = userEnvStore.command('OLLAMA_HOST', value);
      expect(argv.at(-1)).toBe("[Environment]::SetEnvironmentVariable('OLLAMA_HOST', $env:STIGMER_SETUP_VALUE, 'User')");
      expect(env).toEqual({ STIGMER_SETUP_VALUE: value });
    }
    // ...and validation refuses such a --host long before that (exit 2).
    for (const host of ["0.0.0.0:1';calc", '$(x):11434', '`:11434', '"0.0.0.0":11434']) expect(parseHostOption(host)).toHaveProperty('error');
  });

  it('changes nothing when the User value is already there and the app listens with it', async () => {
    const detection = await detectApp({ user: '0.0.0.0:11434' });
    expect(winAppStrategy.plan(detection, { ...REQUEST, listening: 'wildcard' }).changes).toEqual([]);
    // Configured, not yet running with it: only the restart.
    expect(winAppStrategy.plan(detection, REQUEST).changes.map((change) => change.type)).toEqual(['restart']);
  });

  it('refuses a port inside a range Windows reserved, with the winnat fix, changing nothing', async () => {
    // A real capture: 5986 is reserved there, 11434 is not.
    const netsh = fixture('win32/netsh-excludedportrange-administered-otel-collector-10839.txt');
    expect(winAppStrategy.plan(await detectApp({ netsh }), REQUEST).blockers).toEqual([]);
    const reserved = await detectAppAtPort(5986, netsh);
    const blocked = winAppStrategy.plan(reserved, { ...REQUEST, target: { host: '0.0.0.0', port: 5986 } });
    expect(blocked.changes).toEqual([]);
    expect(blocked.blockers[0]?.message).toBe('Port 5986 is inside 5986-5986, a range Windows reserved (netsh interface ipv4 show excludedportrange protocol=tcp).');
    expect(blocked.blockers[0]?.fix).toContain('net stop winnat; net start winnat');
    expect(reserved.problems?.[0]?.status).toBe('fail');
  });

  it('an Expose setting that could not be read is "unknown", never "off": the plan says so', async () => {
    const detection = { ...(await detectApp()), expose: undefined, exposeUnknownBecause: 'sqlite3 is not installed' };
    const plan = winAppStrategy.plan(detection, REQUEST);
    expect(plan.warnings.join(' ')).toContain('could not read the app\'s "Expose Ollama to the network" setting (sqlite3 is not installed)');
  });

  it('warns that the Expose setting overrides a --host it can\'t honour', async () => {
    const detection = { ...(await detectApp()), expose: true, configuredHost: '0.0.0.0' };
    const plan = winAppStrategy.plan(detection, { ...REQUEST, explicitHost: true, target: { host: '127.0.0.1', port: 11500 } });
    expect(plan.warnings[0]).toContain('"Expose Ollama to the network" setting is on');
  });

  it('restarts: stops app, server and runner (not found is fine), waits, and starts the app with the User value in its environment', async () => {
    const { ctx } = windows({ user: '0.0.0.0:11434' });
    const killed: string[] = [];
    const launched: { command: string; args: readonly string[]; env?: Record<string, string | undefined> }[] = [];
    const exec = ctx.exec.bind(ctx);
    ctx.exec = async (command, args, options) => {
      if (command === 'taskkill') {
        killed.push(args.at(-1) as string);
        return args.at(-1) === 'llama-server.exe' ? failed('ERROR: The process "llama-server.exe" not found.', 128) : ok('SUCCESS: The process "x" with PID 1 has been terminated.');
      }
      // After the kill, nothing runs and nothing listens.
      if (command === 'tasklist' || command === 'netstat') return ok('');
      return exec(command, args, options);
    };
    ctx.launch = async (command, args, options) => {
      launched.push({ command, args, env: options?.env });
      return { pid: 9999 };
    };
    const change = winAppStrategy.restartChange?.({ elevate: [], env: ENV, port: 11434 }) as RestartChange;
    await winAppStrategy.restart?.(ctx, change, async () => {});
    expect(killed).toEqual(['ollama app.exe', 'ollama.exe', 'llama-server.exe']);
    expect(launched).toEqual([{ command: APP, args: ['--hide'], env: { OLLAMA_HOST: '0.0.0.0:11434' } }]);
  });
});

/** A restart against a machine whose processes go away after taskkill (unless `linger` says otherwise). */
function restartMachine(machine: Machine, options: { linger?: string; foreignListener?: boolean } = {}) {
  const { ctx } = windows(machine);
  const killed: string[] = [];
  const launched: { command: string; args: readonly string[]; env?: Record<string, string | undefined> }[] = [];
  const sleeps: number[] = [];
  const exec = ctx.exec.bind(ctx);
  ctx.exec = async (command, args, options_) => {
    if (command === 'taskkill') {
      killed.push(args.at(-1) as string);
      return ok(`SUCCESS: The process "${args.at(-1)}" has been terminated.\r\n`);
    }
    if (command === 'tasklist') return ok(killed.length === 0 ? (machine.tasklist ?? TASKLIST) : (options.linger ?? ''));
    return exec(command, args, options_);
  };
  ctx.clock = { ...ctx.clock, sleep: async (ms: number) => void sleeps.push(ms) };
  ctx.launch = async (command, args, launchOptions) => {
    launched.push({ command, args, env: launchOptions?.env });
    return { pid: 9999 };
  };
  return { ctx, killed, launched, sleeps };
}

describe('the tray app restart: never stop what can\'t be started again', () => {
  const OTHER = 'D:\\Apps\\Ollama\\ollama app.exe';

  it('an app installed in another folder is detected there and started again from there', async () => {
    const machine = { apps: [{ pid: 4100, path: OTHER }], files: [OTHER] };
    const detection = await detectApp(machine);
    expect(detection).toMatchObject({ appPath: OTHER, running: true, installed: true, relaunchRefused: undefined });
    const plan = winAppStrategy.plan(detection, REQUEST);
    expect(restarts(plan.changes)[0]?.steps.at(-1)).toEqual([OTHER, '--hide']);
    // Undo builds its restart without a detection (the default path): the restart finds the running app's own.
    const { ctx, launched } = restartMachine(machine);
    const change = winAppStrategy.restartChange?.({ elevate: [], env: ENV, port: 11434 }) as RestartChange;
    await winAppStrategy.restart?.(ctx, change, async () => {});
    expect(launched.map((launch) => launch.command)).toEqual([OTHER]);
    // ...and the report of what ran names it.
    expect(change.steps.at(-1)).toEqual([OTHER, '--hide']);
  });

  it('a tasklist that fails says nothing: before taskkill it is a refusal, and during the wait it is no "they have exited"', async () => {
    const failing = restartMachine({});
    const exec = failing.ctx.exec.bind(failing.ctx);
    failing.ctx.exec = async (command, args, options) => (command === 'tasklist' ? failed('ERROR: Access denied', 1) : exec(command, args, options));
    const refused = winAppStrategy.restartChange?.({ elevate: [], env: ENV, port: 11434 }) as RestartChange;
    await expect(winAppStrategy.restart?.(failing.ctx, refused, async () => {})).rejects.toThrow(/^Nothing was stopped: `tasklist` failed/);
    expect(failing.killed).toEqual([]);
    // After taskkill: tasklist fails once, then still shows the server, then shows nothing.
    const waiting = restartMachine({});
    const answer = waiting.ctx.exec.bind(waiting.ctx);
    let listings = 0;
    waiting.ctx.exec = async (command, args, options) => {
      if (command === 'tasklist' && waiting.killed.length > 0) {
        listings++;
        if (listings === 1) return failed('ERROR: Access denied', 1);
        if (listings === 2) return ok(TASKLIST.split('\n').filter((line) => line.toLowerCase().includes('"ollama.exe"')).join('\n'));
        return ok('');
      }
      return answer(command, args, options);
    };
    const change = winAppStrategy.restartChange?.({ elevate: [], env: ENV, port: 11434 }) as RestartChange;
    await winAppStrategy.restart?.(waiting.ctx, change, async () => {});
    expect(listings).toBe(3);
    expect(waiting.launched).toHaveLength(1);
  });

  it('a running app whose executable is gone: setup plans nothing, and a restart refuses before stopping anything', async () => {
    const machine = { apps: [{ pid: 4100, path: OTHER }], files: [] };
    const detection = await detectApp(machine);
    const plan = winAppStrategy.plan(detection, REQUEST);
    expect(plan.changes).toEqual([]);
    expect(plan.blockers[0]?.message).toBe(`A restart of the Ollama app is not possible: the running app's executable, ${OTHER}, does not exist (moved or uninstalled), so the app could not be started again.`);
    const { ctx, killed, launched } = restartMachine(machine);
    const change = winAppStrategy.restartChange?.({ elevate: [], env: ENV, port: 11434 }) as RestartChange;
    await expect(winAppStrategy.restart?.(ctx, change, async () => {})).rejects.toThrow(/^Nothing was stopped: the running app's executable/);
    expect(killed).toEqual([]);
    expect(launched).toEqual([]);
  });

  it('a running app whose path Windows does not give (null ExecutablePath, or no row for its pid) is never stopped', async () => {
    for (const apps of [[{ pid: 4100, path: null }], [{ pid: 777, path: APP }]]) {
      const detection = await detectApp({ apps });
      expect(winAppStrategy.plan(detection, REQUEST).blockers[0]?.message).toContain('Windows does not say which file it was started from');
      const { ctx, killed } = restartMachine({ apps });
      await expect(winAppStrategy.restart?.(ctx, winAppStrategy.restartChange?.({ elevate: [], env: ENV }) as RestartChange, async () => {})).rejects.toThrow(/^Nothing was stopped/);
      expect(killed).toEqual([]);
    }
  });

  it('undo with the app not running and not at the default path: refuses before stopping anything, and says to use the Start menu', async () => {
    const { ctx, killed, launched } = restartMachine({ tasklist: '', files: [] });
    await expect(winAppStrategy.restart?.(ctx, winAppStrategy.restartChange?.({ elevate: [], env: ENV }) as RestartChange, async () => {})).rejects.toThrow(
      `Nothing was stopped: the app, ${APP}, does not exist (moved or uninstalled), so the app could not be started again. Start Ollama from the Start menu (that starts it from wherever it is installed), then run this again.`,
    );
    expect(killed).toEqual([]);
    expect(launched).toEqual([]);
  });

  it('waits for the pids it stopped, not for the port: another listener there changes nothing', async () => {
    const { ctx, killed, launched } = restartMachine({ user: '0.0.0.0:11434' });
    await winAppStrategy.restart?.(ctx, winAppStrategy.restartChange?.({ elevate: [], env: ENV, port: 11434 }) as RestartChange, async () => {});
    expect(killed).toEqual(['ollama app.exe', 'ollama.exe', 'llama-server.exe']);
    expect(launched).toHaveLength(1);
    // netstat (whose fixture shows a listener on 11434) is never asked during the restart.
    expect(ctx.calls.filter((call) => call.command === 'netstat')).toEqual([]);
  });

  it('a pid that outlives the wait: the app is started all the same, and the message says so', async () => {
    const linger = '"llama-server.exe","4184","Console","1","1,000 K"\r\n';
    const { ctx, launched, sleeps } = restartMachine({ user: '0.0.0.0:11434', tasklist: `${TASKLIST}"llama-server.exe","4184","Console","1","1,000 K"\r\n` }, { linger });
    await expect(winAppStrategy.restart?.(ctx, winAppStrategy.restartChange?.({ elevate: [], env: ENV }) as RestartChange, async () => {})).rejects.toThrow(
      `llama-server.exe (pid 4184) still ran 15 s after taskkill. The app was started again from ${APP} (pid 9999), so Ollama runs, but it may not run with the new setting.`,
    );
    expect(launched.map((launch) => launch.command)).toEqual([APP]);
    expect(sleeps.reduce((sum, ms) => sum + ms, 0)).toBeLessThanOrEqual(15_000);
  });

  it('a reused pid (same number, another image) does not count as the old process', async () => {
    const { ctx } = restartMachine({ user: '0.0.0.0:11434' }, { linger: '"notepad.exe","4184","Console","1","1,000 K"\r\n' });
    await expect(winAppStrategy.restart?.(ctx, winAppStrategy.restartChange?.({ elevate: [], env: ENV }) as RestartChange, async () => {})).resolves.toBeUndefined();
  });

  it('a taskkill that fails still ends with the app started, and names the failure', async () => {
    const { ctx, launched } = restartMachine({ user: '0.0.0.0:11434' });
    const exec = ctx.exec;
    ctx.exec = async (command, args, options) => (command === 'taskkill' && args.at(-1) === 'ollama.exe' ? failed('ERROR: The process with PID 4184 could not be terminated.\r\nReason: Access is denied.\r\n', 1) : exec(command, args, options));
    await expect(winAppStrategy.restart?.(ctx, winAppStrategy.restartChange?.({ elevate: [], env: ENV }) as RestartChange, async () => {})).rejects.toThrow(/^`taskkill \/F \/T \/IM ollama\.exe` failed \(exit 1\): Reason: Access is denied\. The app was started again from /);
    expect(launched).toHaveLength(1);
  });

  it('gives the app the environment Explorer would: Machine, then User; removed when neither is set', async () => {
    const cases: [Machine, string | undefined][] = [
      [{ user: '0.0.0.0:11434', machine: '127.0.0.2:11434' }, '0.0.0.0:11434'],
      [{ machine: '127.0.0.2:11434' }, '127.0.0.2:11434'],
      [{}, undefined],
    ];
    for (const [machine, expected] of cases) {
      const { ctx, launched } = restartMachine(machine);
      await winAppStrategy.restart?.(ctx, winAppStrategy.restartChange?.({ elevate: [], env: ENV }) as RestartChange, async () => {});
      expect(launched[0]?.env).toEqual({ OLLAMA_HOST: expected });
      expect(Object.keys(launched[0]?.env ?? {})).toEqual(['OLLAMA_HOST']);
    }
  });

  it('quotes the app path for PowerShell in the commands it prints (a quote, $(…), ;, U+2019)', async () => {
    for (const [profile, quoted] of [
      ["C:\\Users\\O'Brien", "'C:\\Users\\O''Brien\\AppData\\Local\\Programs\\Ollama\\ollama app.exe'"],
      ['C:\\Users\\$(calc)', "'C:\\Users\\$(calc)\\AppData\\Local\\Programs\\Ollama\\ollama app.exe'"],
      ['C:\\Users\\a;calc', "'C:\\Users\\a;calc\\AppData\\Local\\Programs\\Ollama\\ollama app.exe'"],
      ['C:\\Users\\O\u2019Brien', "'C:\\Users\\O\u2019\u2019Brien\\AppData\\Local\\Programs\\Ollama\\ollama app.exe'"],
    ] as const) {
      const env = { LOCALAPPDATA: `${profile}\\AppData\\Local`, USERPROFILE: profile };
      const app = `${profile}\\AppData\\Local\\Programs\\Ollama\\ollama app.exe`;
      const detection = await detectApp({ apps: [{ pid: 4100, path: app }], files: [app] }, env);
      const commands = winAppStrategy.commands(detection, 11434);
      expect(commands.start).toBe(`Start-Process -FilePath ${quoted}`);
      expect(commands.restart).toBe(`taskkill /F /T /IM "ollama app.exe"; Start-Process -FilePath ${quoted}`);
    }
  });
});

async function detectAppAtPort(port: number, netsh: string): Promise<WinAppDetection> {
  const { ctx } = windows({ netsh });
  return (await winAppStrategy.detect(ctx, { root: '/', home: ENV.USERPROFILE, env: ENV, port, listeners: [], path: path.win32 })) as WinAppDetection;
}

// The ollama Windows service: test/unit/win32-service.test.ts (and the sandbox e2e).

describe('listeners', () => {
  it('fall back to Get-NetTCPConnection when netstat can\'t run', async () => {
    const ctx = testContext({
      exec: (command, args) => {
        if (command === 'netstat') return NOT_FOUND;
        if (command === 'powershell.exe' && (args.at(-1) ?? '').startsWith('Get-NetTCPConnection -LocalPort 11434 -State Listen')) return ok(fixture('win32/get-nettcpconnection-localport-11434-ollama-askai.txt'));
        if (command === 'tasklist') return ok('"ollama.exe","10276","Console","1","98,000 K"\r\n');
        return NOT_FOUND;
      },
    });
    const listeners = await win32Platform.readListeners(ctx, 11434);
    expect(listeners?.map((listener) => `${listener.address}:${listener.port} ${listener.owner?.pid} ${listener.owner?.argv[0]}`)).toEqual(['127.0.0.1:11434 10276 ollama.exe']);
  });
});

