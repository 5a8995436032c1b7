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
}

/** A Windows machine with the app running (per tasklist), answering in real formats. */
function windows(machine: Machine = {}) {
  const ctx = testContext({
    env: ENV,
    exec: (command: string, args: string[], options: ExecOptions): ExecResult => {
      if (command === 'tasklist') return ok('"ollama app.exe","4100","Console","1","52,000 K"\r\n"ollama.exe","4184","Console","1","98,000 K"\r\n');
      if (command === 'netstat') return ok(fixture('win32/netstat-aon-findstr-11434-ollama-5816-a.txt'));
      if (command === 'netsh') return ok(machine.netsh ?? fixture('win32/netsh-excludedportrange-administered-otel-collector-10839.txt'));
      if (command === 'sc') return machine.service ? ok(fixture('win32/sc-running-with-pid-goodbyedpi-440.txt').replace(/GoodbyeDPI/g, 'ollama')) : failed(fixture('win32/sc-openservice-failed-1060-goodbyedpi-440.txt'), 1060);
      if (command === 'powershell.exe') {
        const script = args.at(-1) ?? '';
        if (script.includes("GetEnvironmentVariable('OLLAMA_HOST','User')")) return ok(`${machine.user ?? ''}\r\n`);
        if (script.includes("GetEnvironmentVariable('OLLAMA_HOST','Machine')")) return ok(`${machine.machine ?? ''}\r\n`);
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
  return { ctx, calls };
}

async function detectApp(machine: Machine = {}): Promise<WinAppDetection> {
  const { ctx } = windows(machine);
  const listeners = await win32Platform.readListeners(ctx, 11434);
  return (await winAppStrategy.detect(ctx, { root: '/', home: ENV.USERPROFILE, env: ENV, port: 11434, listeners, path: path.win32 })) as WinAppDetection;
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

