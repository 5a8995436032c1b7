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
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, type JsonReport } from './cli.ts';
import { createSandbox, waitFor, type Sandbox, type SandboxOptions } from '../support/windows/sandbox.mjs';

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

afterEach(async () => {
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
