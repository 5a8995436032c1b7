/**
 * The ollama Windows service, in the Windows sandbox (test/support/windows, service.mjs): the built
 * CLI runs with `--platform win32`; PowerShell's registry scripts work on the sandbox's registry
 * (HKLM writable only by an Administrator), `sc` drives a service control manager that gives the
 * service's process the key's Environment only when it starts, and the service's process (a
 * wrapper, nssm.exe or another) runs the stand-in Ollama, whose sockets are real.
 *
 * Setup, a second run, undo (the registry value exactly as before), no elevation, NSSM's
 * AppEnvironmentExtra, and the restart guarantee: a service that fails to start on the new value,
 * or whose stop hangs, ends running. These tests need port 11434.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, type JsonReport } from './cli.ts';
import { createSandbox, waitFor, type Sandbox, type SandboxOptions } from '../support/windows/sandbox.mjs';
import { getValue, installService, uninstallService, PARAMETERS_KEY, readRegistry, serviceStatus, SERVICE_KEY, type InstallServiceOptions, type Registry } from '../support/windows/service.mjs';

const PORT = 11434;
const UNDO = 'C:\\Users\\ada\\AppData\\Local\\stigmer-setup\\undo.json';
const roots: string[] = [];
const boxes: Sandbox[] = [];

async function serviceBox(service: InstallServiceOptions = {}, options: Omit<SandboxOptions, 'dir'> = {}): Promise<Sandbox> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'stigmer-winsvc-e2e-'));
  roots.push(root);
  // No tray app: the service is the one installation here.
  const box = createSandbox({ dir: path.join(root, 'sandbox'), appInstalled: false, admin: true, runtime: 'no-forward', ...options });
  boxes.push(box);
  await installService(box, service);
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

function cli(box: Sandbox, args: string[]): Run {
  const result = spawnSync(process.execPath, [BUNDLE, ...args, '--json', '--platform', 'win32'], { cwd: box.cwd, encoding: 'utf8', timeout: 170_000, env: box.env });
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
const LOOPBACK = /^127\.0\.0\.1:11434$/;
const waitListening = (pattern: RegExp) => waitFor(() => listening().some((address) => pattern.test(address)), 30_000, `a listener matching ${pattern}`);

/** What changed the machine: registry edits (Set-/Remove-ItemProperty scripts), sc start/stop, taskkill. */
function changing(box: Sandbox, since: number): string[] {
  return box
    .transcript()
    .slice(since)
    .filter(({ cmd, args }) => cmd === 'taskkill' || (cmd.startsWith('sc') && /^(start|stop)$/i.test(args[0] ?? '')) || (cmd.startsWith('powershell') && /Set-ItemProperty|SetEnvironmentVariable/.test(args.at(-1) ?? '')))
    .map(({ cmd, args, env }) => (cmd.startsWith('powershell') ? `edit ${/-LiteralPath '([^']+)' -Name '([^']+)' -Type/.exec(args.at(-1) ?? '')?.slice(1).join(' ') ?? '?'} [STIGMER_SETUP_VALUE=${env?.STIGMER_SETUP_VALUE ?? '(unset)'}]` : [cmd, ...args].join(' ')));
}

/** The server the service runs now: its pid and the OLLAMA_HOST it was started with. */
function server(box: Sandbox): { pid: number; ollamaHost: string | null } | undefined {
  const found = box.processes().find((process) => process.image === 'ollama.exe');
  return found && { pid: found.pid, ollamaHost: found.ollamaHost };
}

const entries = (registry: Registry, key: string, name: string) => getValue(registry, key, name);

describe('the ollama Windows service', () => {
  it('setup edits only the OLLAMA_HOST entry of the service Environment and restarts the service; a second run changes nothing; undo restores the value exactly', async () => {
    const environment = ['OLLAMA_MODELS=D:\\models', 'OLLAMA_HOST=127.0.0.1:11434', 'ollama_keep_alive=24h'];
    const box = await serviceBox({ environment });
    await waitListening(LOOPBACK);
    const original = readRegistry(box.dir);
    const first = server(box);
    expect(first?.ollamaHost).toBe('127.0.0.1:11434');

    let mark = box.transcript().length;
    const setup = cli(box, ['--yes']);
    expect(setup.code, setup.stderr + JSON.stringify(setup.report, null, 2)).toBe(0);
    expect(setup.report.strategy).toBe('win32-service');
    expect(changing(box, mark)).toEqual([`edit ${SERVICE_KEY} Environment [STIGMER_SETUP_VALUE=0.0.0.0:${PORT}]`, 'sc stop ollama', 'sc start ollama']);
    // In place: the entry keeps its position; every other entry its bytes.
    expect(entries(readRegistry(box.dir), SERVICE_KEY, 'Environment')).toEqual({ kind: 'MultiString', value: ['OLLAMA_MODELS=D:\\models', `OLLAMA_HOST=0.0.0.0:${PORT}`, 'ollama_keep_alive=24h'] });
    await waitListening(WILDCARD);
    const second = server(box);
    expect(second?.pid).not.toBe(first?.pid);
    expect(second?.ollamaHost).toBe(`0.0.0.0:${PORT}`);
    expect(serviceStatus(box.dir).state).toBe('RUNNING');
    expect(setup.report.checks.find((check) => check.id === 'container.probe')?.status).toBe('ok');

    mark = box.transcript().length;
    const again = cli(box, ['--yes']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.report.changes).toEqual([]);
    expect(changing(box, mark)).toEqual([]);
    expect(server(box)?.pid).toBe(second?.pid);

    mark = box.transcript().length;
    const undo = cli(box, ['undo', '--yes']);
    expect(undo.code, undo.stderr + JSON.stringify(undo.report, null, 2)).toBe(0);
    expect(changing(box, mark)).toEqual([`edit ${SERVICE_KEY} Environment [STIGMER_SETUP_VALUE=127.0.0.1:11434]`, 'sc stop ollama', 'sc start ollama']);
    expect(readRegistry(box.dir)).toEqual(original);
    await waitListening(LOOPBACK);
    expect(server(box)?.ollamaHost).toBe('127.0.0.1:11434');
    expect(existsSync(box.file(UNDO))).toBe(false);
  });

  it('without an Environment value, setup creates it and undo removes it again', async () => {
    const box = await serviceBox({});
    await waitListening(LOOPBACK);
    const original = readRegistry(box.dir);
    expect(cli(box, ['--yes']).code).toBe(0);
    expect(entries(readRegistry(box.dir), SERVICE_KEY, 'Environment')).toEqual({ kind: 'MultiString', value: [`OLLAMA_HOST=0.0.0.0:${PORT}`] });
    await waitListening(WILDCARD);
    expect(cli(box, ['undo', '--yes']).code).toBe(0);
    expect(readRegistry(box.dir)).toEqual(original);
    await waitListening(LOOPBACK);
  });

  it('the registry value reaches the server only when the service restarts (the SCM reads it at start)', async () => {
    const box = await serviceBox({});
    await waitListening(LOOPBACK);
    const before = server(box);
    // A second run that is not elevated can't write; an elevated dry run writes nothing: so write
    // the value with the same script setup runs, and look at the server.
    const plan = cli(box, ['--dry-run']);
    const edit = (plan.report.changes as { type: string; argv?: string[] }[]).find((change) => change.argv?.at(-1)?.includes('Set-ItemProperty'));
    expect(edit?.type).toBe('setting');
    const argv = edit?.argv as string[];
    const ran = spawnSync(argv[0] as string, argv.slice(1), { cwd: box.cwd, env: { ...box.env, STIGMER_SETUP_VALUE: `0.0.0.0:${PORT}` }, encoding: 'utf8', timeout: 30_000 });
    expect(ran.status, ran.stderr).toBe(0);
    expect(entries(readRegistry(box.dir), SERVICE_KEY, 'Environment')?.value).toEqual([`OLLAMA_HOST=0.0.0.0:${PORT}`]);
    expect(server(box)).toEqual(before);
    expect(listening().some((address) => LOOPBACK.test(address))).toBe(true);
    // Now setup sees a configured value that is not running yet: a restart only.
    const setup = cli(box, ['--yes']);
    expect(setup.code, setup.stderr).toBe(0);
    expect(setup.report.changes.map((change) => (change.type === 'command' ? change.argv.join(' ') : change.type))).toEqual(['sc stop ollama', 'sc start ollama']);
    await waitListening(WILDCARD);
  });

  it('not elevated: refuses with the Run-as-administrator fix, and changes nothing', async () => {
    const box = await serviceBox({ environment: ['OLLAMA_MODELS=D:\\models'] }, { admin: false });
    await waitListening(LOOPBACK);
    const original = readRegistry(box.dir);
    const before = server(box);
    const mark = box.transcript().length;
    const setup = cli(box, ['--yes', '--host', `0.0.0.0:${PORT}`]);
    expect(setup.code).toBe(1);
    expect(setup.report.error).toContain('needs Administrator rights');
    expect(setup.report.error).toContain(`Open PowerShell with "Run as administrator", then: npx stigmer-setup --yes --host '0.0.0.0:${PORT}'`);
    expect(changing(box, mark)).toEqual([]);
    expect(readRegistry(box.dir)).toEqual(original);
    expect(server(box)).toEqual(before);
    expect(existsSync(box.file(UNDO))).toBe(false);
  });

  it('undo from a PowerShell that is not elevated: says so, changes nothing, stops nothing; elevated, it restores', async () => {
    const box = await serviceBox({ environment: ['OLLAMA_MODELS=D:\\models'] });
    await waitListening(LOOPBACK);
    const original = readRegistry(box.dir);
    expect(cli(box, ['--yes']).code).toBe(0);
    await waitListening(WILDCARD);
    const afterSetup = readRegistry(box.dir);
    const running = server(box);
    box.configure({ admin: false });
    const mark = box.transcript().length;
    const undo = cli(box, ['undo', '--yes']);
    expect(undo.code).toBe(1);
    expect(undo.report.error).toContain('This needs an elevated PowerShell (Run as administrator): Requested registry access is not allowed.');
    expect(changing(box, mark).filter((line) => !line.startsWith('edit'))).toEqual([]);
    expect(readRegistry(box.dir)).toEqual(afterSetup);
    expect(server(box)).toEqual(running);
    expect(existsSync(box.file(UNDO))).toBe(true);
    box.configure({ admin: true });
    expect(cli(box, ['undo', '--yes']).code).toBe(0);
    expect(readRegistry(box.dir)).toEqual(original);
    await waitListening(LOOPBACK);
  });

  it('undo after the service was uninstalled: nothing to put back or restart, so undo succeeds and drops the record', async () => {
    const box = await serviceBox({});
    await waitListening(LOOPBACK);
    expect(cli(box, ['--yes']).code).toBe(0);
    await waitListening(WILDCARD);
    await uninstallService(box);
    const undo = cli(box, ['undo', '--yes']);
    expect(undo.code, undo.stderr + (undo.report.error ?? '')).toBe(0);
    expect(existsSync(box.file(UNDO))).toBe(false);
  });

  it('a disabled service, or one whose program is missing, is never stopped: setup refuses and changes nothing', async () => {
    for (const service of [{ start: 4 }, { program: null }] satisfies InstallServiceOptions[]) {
      const box = await serviceBox(service);
      await waitListening(LOOPBACK);
      const original = readRegistry(box.dir);
      const mark = box.transcript().length;
      const setup = cli(box, ['--yes']);
      expect(setup.code, JSON.stringify(service)).toBe(1);
      expect(setup.report.error).toMatch(service.start === 4 ? /is disabled, so it could not be started again/ : /program .*nssm\.exe|program .*ollama-service\.exe.* does not exist/);
      expect(changing(box, mark)).toEqual([]);
      expect(readRegistry(box.dir)).toEqual(original);
      expect(serviceStatus(box.dir).state).toBe('RUNNING');
      await box.killAll();
    }
  });
});

describe('an NSSM service', () => {
  it("setup edits NSSM's AppEnvironmentExtra (which NSSM applies last), in place; undo restores it exactly", async () => {
    const extra = ['OLLAMA_MODELS=D:\\models', 'OLLAMA_HOST=127.0.0.1:11434', 'OLLAMA_ORIGINS=*'];
    const box = await serviceBox({ nssm: true, appEnvironmentExtra: extra, environment: ['OLLAMA_HOST=127.0.0.1:11434'] });
    await waitListening(LOOPBACK);
    const original = readRegistry(box.dir);
    const mark = box.transcript().length;
    const setup = cli(box, ['--yes']);
    expect(setup.code, setup.stderr + JSON.stringify(setup.report, null, 2)).toBe(0);
    expect(changing(box, mark)).toEqual([`edit ${PARAMETERS_KEY} AppEnvironmentExtra [STIGMER_SETUP_VALUE=0.0.0.0:${PORT}]`, 'sc stop ollama', 'sc start ollama']);
    const now = readRegistry(box.dir);
    expect(entries(now, PARAMETERS_KEY, 'AppEnvironmentExtra')?.value).toEqual(['OLLAMA_MODELS=D:\\models', `OLLAMA_HOST=0.0.0.0:${PORT}`, 'OLLAMA_ORIGINS=*']);
    expect(entries(now, SERVICE_KEY, 'Environment')).toEqual(entries(original, SERVICE_KEY, 'Environment'));
    await waitListening(WILDCARD);
    expect(server(box)?.ollamaHost).toBe(`0.0.0.0:${PORT}`);

    expect(cli(box, ['undo', '--yes']).code).toBe(0);
    expect(readRegistry(box.dir)).toEqual(original);
    await waitListening(LOOPBACK);
  });

  it('an NSSM service with AppEnvironment (which replaces the environment) still gets the value, through AppEnvironmentExtra', async () => {
    const box = await serviceBox({ nssm: true, appEnvironment: ['OLLAMA_HOST=127.0.0.1:11434', 'TEMP=C:\\Temp'] });
    await waitListening(LOOPBACK);
    const original = readRegistry(box.dir);
    const setup = cli(box, ['--yes']);
    expect(setup.code, setup.stderr + JSON.stringify(setup.report, null, 2)).toBe(0);
    expect(entries(readRegistry(box.dir), PARAMETERS_KEY, 'AppEnvironmentExtra')?.value).toEqual([`OLLAMA_HOST=0.0.0.0:${PORT}`]);
    await waitListening(WILDCARD);
    expect(cli(box, ['undo', '--yes']).code).toBe(0);
    expect(readRegistry(box.dir)).toEqual(original);
    await waitListening(LOOPBACK);
  });
});

describe('the restart guarantee', () => {
  it('a service that fails to start on the new value is rolled back and started again on the old one; the message says so', async () => {
    const box = await serviceBox({ environment: ['OLLAMA_HOST=127.0.0.1:11434'], failWhen: `0.0.0.0:${PORT}` });
    await waitListening(LOOPBACK);
    const original = readRegistry(box.dir);
    const mark = box.transcript().length;
    const setup = cli(box, ['--yes']);
    expect(setup.code).toBe(1);
    expect(setup.report.error).toContain('The ollama service stopped again right after `sc start ollama`: it failed to start');
    expect(setup.report.error).toContain('Every change was rolled back, and Ollama was restarted on the configuration it had before.');
    expect(changing(box, mark)).toEqual([
      `edit ${SERVICE_KEY} Environment [STIGMER_SETUP_VALUE=0.0.0.0:${PORT}]`,
      'sc stop ollama',
      'sc start ollama',
      `edit ${SERVICE_KEY} Environment [STIGMER_SETUP_VALUE=127.0.0.1:11434]`,
      'sc start ollama',
    ]);
    expect(setup.report.changes.every((change) => change.applied === false)).toBe(true);
    expect(readRegistry(box.dir)).toEqual(original);
    expect(serviceStatus(box.dir).state).toBe('RUNNING');
    await waitListening(LOOPBACK);
    expect(server(box)?.ollamaHost).toBe('127.0.0.1:11434');
    expect(existsSync(box.file(UNDO))).toBe(false);
  });

  it('a stop that hangs (STOP_PENDING) is ended by the service pid, and the service starts on the new value', async () => {
    const box = await serviceBox({ stopHangs: true });
    await waitListening(LOOPBACK);
    const pid = serviceStatus(box.dir).pid;
    const mark = box.transcript().length;
    const setup = cli(box, ['--yes']);
    expect(setup.code, setup.stderr + JSON.stringify(setup.report, null, 2)).toBe(0);
    expect(changing(box, mark)).toEqual([`edit ${SERVICE_KEY} Environment [STIGMER_SETUP_VALUE=0.0.0.0:${PORT}]`, 'sc stop ollama', `taskkill /F /T /PID ${pid}`, 'sc start ollama']);
    expect(serviceStatus(box.dir).state).toBe('RUNNING');
    await waitListening(WILDCARD);
  });
});

describe('what setup records, undo accepts (the windows-service-env store)', () => {
  // A REG_MULTI_SZ entry may hold any character but NUL. Ollama trims spaces around OLLAMA_HOST
  // (envconfig.Var), so these previous values still start a server on 127.0.0.1:11434.
  const hostile = [
    ['a newline', '127.0.0.1:11434\n'],
    ['more than 1024 characters', `127.0.0.1:11434${' '.repeat(1100)}`],
  ] as const;
  for (const [what, previous] of hostile) {
    it(`a previous OLLAMA_HOST entry with ${what}: setup and undo restore it exactly, or setup refuses and changes nothing`, async () => {
      const others = ['OLLAMA_MODELS=D:\\models\tand a tab', `BIG=${'x'.repeat(20_000)}`, 'CTRL=\u001b[31m\u0007'];
      const box = await serviceBox({ environment: [others[0] as string, `OLLAMA_HOST=${previous}`, ...others.slice(1)] });
      await waitListening(LOOPBACK);
      const original = readRegistry(box.dir);
      const setup = cli(box, ['--yes']);
      if (setup.code !== 0) {
        // The refusal path: said why, nothing changed, the service still runs as it did.
        expect(setup.report.error ?? '').not.toBe('');
        expect(readRegistry(box.dir)).toEqual(original);
        expect(existsSync(box.file(UNDO))).toBe(false);
        expect(serviceStatus(box.dir).state).toBe('RUNNING');
        return;
      }
      await waitListening(WILDCARD);
      const undo = cli(box, ['undo', '--yes']);
      expect(undo.code, undo.stderr + (undo.report.error ?? '')).toBe(0);
      expect(readRegistry(box.dir)).toEqual(original);
      await waitListening(LOOPBACK);
    });
  }
});
