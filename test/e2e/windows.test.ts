/**
 * Windows, in the sandbox (test/support/windows): the built CLI runs with `--platform win32`,
 * LOCALAPPDATA and USERPROFILE pointed at the sandbox, and shims for powershell.exe (keeping a
 * User-scope store), netstat, tasklist, taskkill, netsh, sc and docker on PATH. Windows paths are
 * file names in the sandbox folder (the CLI runs there), which is also how the fake
 * `ollama app.exe` is found and launched. The stand-in Ollama and its sockets are real.
 *
 * The tray app: setup sets the User value through PowerShell (never setx, the value as data), the
 * restarted app gets the new value and the stand-in listens on every interface, a second run
 * changes nothing, and undo removes the value again. These tests need port 11434.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, type JsonReport } from './cli.ts';
import { createSandbox, firstExternalIPv4, recordProcess, waitFor, type Sandbox, type SandboxOptions } from '../support/windows/sandbox.mjs';

const PORT = 11434;
const APP = 'C:\\Users\\ada\\AppData\\Local\\Programs\\Ollama\\ollama app.exe';
const roots: string[] = [];
const boxes: Sandbox[] = [];

function sandbox(options: Omit<SandboxOptions, 'dir'> = {}): Sandbox {
  const root = mkdtempSync(path.join(os.tmpdir(), 'stigmer-windows-e2e-'));
  roots.push(root);
  const box = createSandbox({ dir: path.join(root, 'sandbox'), ...options });
  boxes.push(box);
  return box;
}

const servers: net.Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
  for (const box of boxes.splice(0)) await box.killAll();
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

beforeAll(async () => {
  const free = await new Promise<boolean>((resolve) => {
    const server = net.createServer().once('error', () => resolve(false)).listen(PORT, '127.0.0.1', () => server.close(() => resolve(true)));
  });
  if (!free) throw new Error(`port ${PORT} is in use on this machine; the Windows sandbox tests need it free`);
});

interface Run {
  code: number | null;
  report: JsonReport & { error?: string; summary?: string; warnings: string[] };
  stderr: string;
}

function cli(box: Sandbox, args: string[], json = true): Run {
  const result = spawnSync(process.execPath, [BUNDLE, ...args, ...(json ? ['--json'] : []), '--platform', 'win32'], { cwd: box.cwd, encoding: 'utf8', timeout: 120_000, env: box.env });
  if (!json) return { code: result.status, report: {} as Run['report'], stderr: result.stderr };
  try {
    return { code: result.status, report: JSON.parse(result.stdout), stderr: result.stderr };
  } catch {
    throw new Error(`not one JSON object (exit ${result.status}):\n${result.stdout}\n--- stderr ---\n${result.stderr}`);
  }
}

function listening(): string[] {
  const ss = spawnSync('ss', ['-ltnH', `sport = :${PORT}`], { encoding: 'utf8', timeout: 10_000 });
  return ss.stdout.split('\n').filter(Boolean).map((line) => line.trim().split(/\s+/)[3] as string);
}
const WILDCARD = /^(\*|\[::\]|0\.0\.0\.0):11434$/;
const waitListening = (pattern: RegExp) => waitFor(() => listening().some((address) => pattern.test(address)), 30_000, `a listener matching ${pattern}`);

/** What ran that changes something: PowerShell's set and taskkill, in order (reads run concurrently). */
function changing(box: Sandbox, since: number): string[] {
  return box
    .transcript()
    .slice(since)
    .filter(({ cmd, args }) => cmd === 'taskkill' || (cmd.startsWith('powershell') && /SetEnvironmentVariable/.test(args.at(-1) ?? '')))
    .map(({ cmd, args, env }) => `${[cmd, ...args].join(' ')}${env ? ` [STIGMER_SETUP_VALUE=${env.STIGMER_SETUP_VALUE ?? '(unset)'}]` : ''}`);
}

describe('the tray app', () => {
  it('setup sets the User value through PowerShell and restarts the app with it; a second run changes nothing; undo removes it', async () => {
    const box = sandbox({ runtime: 'no-forward' });
    await box.startApp();
    await waitListening(/^127\.0\.0\.1:11434$/);
    let mark = box.transcript().length;

    const setup = cli(box, ['--yes']);
    expect(setup.code, setup.stderr + JSON.stringify(setup.report, null, 2)).toBe(0);
    expect(setup.report.ok).toBe(true);
    expect(setup.report.strategy).toBe('win32-app');
    expect(setup.report.changes).toEqual([
      {
        type: 'setting',
        store: 'windows-user-env',
        key: 'OLLAMA_HOST',
        before: null,
        after: `0.0.0.0:${PORT}`,
        argv: ['powershell.exe', '-NoProfile', '-NonInteractive', '-Command', "[Environment]::SetEnvironmentVariable('OLLAMA_HOST', $env:STIGMER_SETUP_VALUE, 'User')"],
        applied: true,
      },
      { type: 'command', argv: ['taskkill', '/F', '/T', '/IM', 'ollama app.exe'], applied: true },
      { type: 'command', argv: ['taskkill', '/F', '/T', '/IM', 'ollama.exe'], applied: true },
      { type: 'command', argv: ['taskkill', '/F', '/T', '/IM', 'llama-server.exe'], applied: true },
      { type: 'command', argv: [APP, '--hide'], applied: true },
    ]);
    // The golden transcript: the value travels as data; setx never runs.
    expect(changing(box, mark)).toEqual([
      `powershell.exe -NoProfile -NonInteractive -Command [Environment]::SetEnvironmentVariable('OLLAMA_HOST', $env:STIGMER_SETUP_VALUE, 'User') [STIGMER_SETUP_VALUE=0.0.0.0:${PORT}]`,
      'taskkill /F /T /IM ollama app.exe',
      'taskkill /F /T /IM ollama.exe',
      'taskkill /F /T /IM llama-server.exe',
    ]);
    expect(box.transcript().some(({ cmd }) => /setx/i.test(cmd))).toBe(false);
    expect(box.userEnv()).toEqual({ OLLAMA_HOST: `0.0.0.0:${PORT}` });
    // The restarted app was given the new value, and its server listens on every interface.
    await waitListening(WILDCARD);
    expect(box.processes().filter((process) => process.image === 'ollama app.exe').map((process) => process.ollamaHost)).toEqual([`0.0.0.0:${PORT}`]);
    expect(setup.report.checks.find((check) => check.id === 'container.probe')?.status).toBe('ok');
    // State lives in %LOCALAPPDATA%\stigmer-setup, a Windows path (here a file name in the sandbox).
    expect(JSON.parse(readFileSync(box.file('C:\\Users\\ada\\AppData\\Local\\stigmer-setup\\undo.json'), 'utf8'))).toMatchObject({ platform: 'win32', settings: [{ store: 'windows-user-env', key: 'OLLAMA_HOST', before: null }] });

    mark = box.transcript().length;
    const again = cli(box, ['--yes']);
    expect(again.code).toBe(0);
    expect(again.report.changes).toEqual([]);
    expect(changing(box, mark)).toEqual([]);

    mark = box.transcript().length;
    const undo = cli(box, ['undo', '--yes']);
    expect(undo.code, undo.stderr).toBe(0);
    expect(box.userEnv()).toEqual({});
    expect(changing(box, mark)[0]).toBe("powershell.exe -NoProfile -NonInteractive -Command [Environment]::SetEnvironmentVariable('OLLAMA_HOST', $null, 'User') [STIGMER_SETUP_VALUE=(unset)]");
    await waitListening(/^127\.0\.0\.1:11434$/);
  });

  it('undo puts back an earlier User value instead of removing it', async () => {
    const box = sandbox({ runtime: 'no-forward', userEnv: { OLLAMA_HOST: '127.0.0.1:11434' } });
    await box.startApp();
    await waitListening(/^127\.0\.0\.1:11434$/);
    expect(cli(box, ['--yes']).code).toBe(0);
    expect(box.userEnv()).toEqual({ OLLAMA_HOST: `0.0.0.0:${PORT}` });
    expect(cli(box, ['undo', '--yes']).code).toBe(0);
    expect(box.userEnv()).toEqual({ OLLAMA_HOST: '127.0.0.1:11434' });
    await waitListening(/^127\.0\.0\.1:11434$/);
  });

  it('with a runtime that already reaches loopback (Docker Desktop), setup changes nothing and says why', async () => {
    const box = sandbox({ runtime: 'forward-loopback' });
    await box.startApp();
    await waitListening(/^127\.0\.0\.1:11434$/);
    const mark = box.transcript().length;
    const setup = cli(box, ['--yes']);
    expect(setup.code, setup.stderr).toBe(0);
    expect(setup.report.changes).toEqual([]);
    expect(setup.report.summary).toContain('so binding 0.0.0.0 would only expose Ollama to your network');
    expect(changing(box, mark)).toEqual([]);
    expect(box.userEnv()).toEqual({});
  });

  it('a --host with quotes, ;, $ or a backtick never reaches PowerShell: exit 2 before anything runs', async () => {
    const box = sandbox();
    for (const host of ["0.0.0.0:1';calc", '$(calc):11434', '0.0.0.0:11434`', '"0.0.0.0":11434', '0.0.0.0:11434;calc']) {
      const mark = box.transcript().length;
      const run = cli(box, ['--yes', '--host', host], false);
      expect(run.code).toBe(2);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(box.transcript().length).toBe(mark);
    }
  });

  it('refuses a port Windows reserved, naming the range and the winnat fix, and changes nothing', async () => {
    const box = sandbox({ runtime: 'no-forward', excludedPorts: [[11400, 11499]] });
    const mark = box.transcript().length;
    const setup = cli(box, ['--yes']);
    expect(setup.code).toBe(1);
    expect(setup.report.error).toContain('Port 11434 is inside 11400-11499, a range Windows reserved');
    expect(setup.report.error).toContain('net stop winnat; net start winnat');
    expect(changing(box, mark)).toEqual([]);
  });
});

/** The app processes of the sandbox: pid, the path each was started from, the OLLAMA_HOST it got. */
const apps = (box: Sandbox) => box.processes().filter((process) => process.image === 'ollama app.exe');
const taskkills = (box: Sandbox, since: number) => box.transcript().slice(since).filter(({ cmd }) => cmd === 'taskkill');

describe('the tray app restart never leaves Ollama stopped (issue 12 §1, §7)', () => {
  it('another program listening on the port (an ssh -L [::1]:11434 tunnel) does not block setup or undo', async () => {
    // On Linux a [::]:11434 server can't coexist with the tunnel (Windows lets a wildcard bind next to
    // a specific one), so the change here is to this machine's own IPv4 address.
    const address = firstExternalIPv4() as string;
    const box = sandbox({ runtime: 'no-forward' });
    await box.startApp();
    await waitListening(/^127\.0\.0\.1:11434$/);
    const tunnel = net.createServer();
    servers.push(tunnel);
    await new Promise<void>((resolve, reject) => tunnel.once('error', reject).listen({ host: '::1', port: PORT, ipv6Only: true }, resolve));
    expect(listening()).toContain(`[::1]:${PORT}`);

    let mark = box.transcript().length;
    const setup = cli(box, ['--yes', '--host', `${address}:${PORT}`]);
    expect(setup.code, setup.stderr + JSON.stringify(setup.report, null, 2)).toBe(0);
    expect(setup.report.changes.every((change) => change.applied)).toBe(true);
    expect(listening()).toContain(`${address}:${PORT}`);
    expect(apps(box).map((app) => app.ollamaHost)).toEqual([`${address}:${PORT}`]);
    expect(taskkills(box, mark)).toHaveLength(3);

    mark = box.transcript().length;
    const undo = cli(box, ['undo', '--yes']);
    expect(undo.code, undo.stderr + JSON.stringify(undo.report, null, 2)).toBe(0);
    await waitListening(/^127\.0\.0\.1:11434$/);
    expect(apps(box).map((app) => app.ollamaHost)).toEqual([null]);
    expect(listening()).toContain(`[::1]:${PORT}`);
  });

  for (const appDir of ['C:\\Program Files\\Ollama', 'D:\\Apps\\Ollama']) {
    it(`an app installed in ${appDir} is started again from there by setup and by undo`, async () => {
      const box = sandbox({ runtime: 'no-forward', appDir });
      const app = `${appDir}\\ollama app.exe`;
      await box.startApp();
      await waitListening(/^127\.0\.0\.1:11434$/);
      const setup = cli(box, ['--yes']);
      expect(setup.code, setup.stderr + JSON.stringify(setup.report, null, 2)).toBe(0);
      expect(setup.report.changes.at(-1)).toEqual({ type: 'command', argv: [app, '--hide'], applied: true });
      await waitListening(WILDCARD);
      expect(apps(box).map((process) => [process.path, process.ollamaHost])).toEqual([[app, `0.0.0.0:${PORT}`]]);
      const undo = cli(box, ['undo', '--yes']);
      expect(undo.code, undo.stderr + JSON.stringify(undo.report, null, 2)).toBe(0);
      expect(undo.report.changes.at(-1)).toEqual({ type: 'command', argv: [app, '--hide'], applied: true });
      await waitListening(/^127\.0\.0\.1:11434$/);
      expect(apps(box).map((process) => process.path)).toEqual([app]);
    });
  }

  it('a running app whose executable is gone is refused before anything is stopped, by setup and by undo', async () => {
    const box = sandbox({ runtime: 'no-forward' });
    await box.startApp();
    await waitListening(/^127\.0\.0\.1:11434$/);
    // Setup with the file in place, so that there is something to undo.
    expect(cli(box, ['--yes']).code).toBe(0);
    await waitListening(WILDCARD);
    const [running] = apps(box);
    unlinkSync(box.file(APP));

    let mark = box.transcript().length;
    const undo = cli(box, ['undo', '--yes']);
    expect(undo.code).toBe(1);
    expect(undo.report.error).toContain(`Nothing was stopped: the running app's executable, ${APP}, does not exist`);
    expect(taskkills(box, mark)).toEqual([]);
    expect(apps(box).map((app) => app.pid)).toEqual([running?.pid]);
    // The old state is in place (the value put back again) and undo can run later.
    expect(box.userEnv()).toEqual({ OLLAMA_HOST: `0.0.0.0:${PORT}` });
    expect(box.readText(box.paths.undoFile)).toBeDefined();

    // A --host change would need a restart: refused at plan time, nothing written.
    mark = box.transcript().length;
    const setup = cli(box, ['--yes', '--host', '127.0.0.1:11500']);
    expect(setup.code).toBe(1);
    expect(JSON.stringify(setup.report)).toContain('A restart of the Ollama app is not possible');
    expect(changing(box, mark)).toEqual([]);
    expect(apps(box).map((app) => app.pid)).toEqual([running?.pid]);
    await waitListening(WILDCARD);
  });

  it('a process that outlives the wait: the app is started all the same, and the message says what happened', async () => {
    const box = sandbox({ runtime: 'no-forward' });
    await box.startApp();
    await waitListening(/^127\.0\.0\.1:11434$/);
    // A runner stuck in a driver call: taskkill reports it terminated, but it stays.
    const runner = spawn('sleep', ['120'], { env: box.env, stdio: 'ignore', detached: true });
    await new Promise((resolve) => runner.once('spawn', resolve));
    recordProcess(box.dir, { pid: runner.pid as number, image: 'llama-server.exe' });
    box.configure({ stuckPids: [runner.pid as number] });

    const setup = cli(box, ['--yes']);
    expect(setup.code).toBe(1);
    expect(setup.report.error).toContain(`llama-server.exe (pid ${runner.pid}) still ran 15 s after taskkill`);
    expect(setup.report.error).toContain(`The app was started again from ${APP}`);
    // Rolled back: the old value, and the app runs with it.
    expect(box.userEnv()).toEqual({});
    await waitListening(/^127\.0\.0\.1:11434$/);
    expect(apps(box).map((app) => app.ollamaHost)).toEqual([null]);
  }, 90_000);

  it('a Machine-scope OLLAMA_HOST survives setup and undo: the app comes back where it listened before', async () => {
    const box = sandbox({ runtime: 'no-forward', machineEnv: { OLLAMA_HOST: '127.0.0.2:11434' } });
    await box.startApp();
    await waitListening(/^127\.0\.0\.2:11434$/);
    const setup = cli(box, ['--yes']);
    expect(setup.code, setup.stderr + JSON.stringify(setup.report, null, 2)).toBe(0);
    await waitListening(WILDCARD);
    const undo = cli(box, ['undo', '--yes']);
    expect(undo.code, undo.stderr + JSON.stringify(undo.report, null, 2)).toBe(0);
    expect(box.userEnv()).toEqual({});
    expect(box.machineEnv()).toEqual({ OLLAMA_HOST: '127.0.0.2:11434' });
    await waitListening(/^127\.0\.0\.2:11434$/);
    expect(apps(box).map((app) => app.ollamaHost)).toEqual(['127.0.0.2:11434']);
  });

  // Needs the lossless undo record (H5's part of §2) as well: it may fail on this branch alone.
  it('a User value holding a newline is put back byte for byte by undo (§2)', async () => {
    // Ollama trims the space around it (Go's strings.TrimSpace), so the app still listens on 127.0.0.1.
    const before = '\n127.0.0.1:11434\r';
    const box = sandbox({ runtime: 'no-forward', userEnv: { OLLAMA_HOST: before } });
    await box.startApp();
    await waitListening(/^127\.0\.0\.1:11434$/);
    const setup = cli(box, ['--yes']);
    expect(setup.code, setup.stderr + JSON.stringify(setup.report, null, 2)).toBe(0);
    expect(box.userEnv()).toEqual({ OLLAMA_HOST: `0.0.0.0:${PORT}` });
    const undo = cli(box, ['undo', '--yes']);
    expect(undo.code, undo.stderr + JSON.stringify(undo.report, null, 2)).toBe(0);
    expect(box.userEnv()).toEqual({ OLLAMA_HOST: before });
    await waitListening(/^127\.0\.0\.1:11434$/);
  });
});
