/**
 * The Windows sandbox (test/support/windows) against its own documented behaviour, before any product
 * code relies on it: PowerShell's User store and its refusal of spliced values, netstat showing this
 * machine's real sockets, tasklist/taskkill on the fake tray app and its server, the app's
 * environment rules (what it was launched with, stale across server restarts, single instance), the
 * Expose toggle, netsh excluded ranges, sc, and docker as Docker Desktop. Outputs are read with the
 * product's own Windows parsers. No Docker needed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseExcludedPortRanges } from '../../platforms/win32/parsers/netsh.ts';
import { parseNetstatListening, type WindowsListener } from '../../platforms/win32/parsers/netstat.ts';
import { parseScQuery, scServiceMissing } from '../../platforms/win32/parsers/sc-query.ts';
import { parseProcessPathsJson } from '../../platforms/win32/parsers/process-paths.ts';
import { parseTasklistCsv } from '../../platforms/win32/parsers/tasklist.ts';
import { environmentReadScript, parseEnvironmentRead } from '../../platforms/win32/powershell.ts';
import { processPathsScript } from '../../platforms/win32/processes.ts';
import { PROBE_SCRIPT } from '../../scripts/container-probe.ts';
import { freePort, startStandin, type RunningStandin } from '../support/standin-process.ts';
import { APP_IMAGE, createSandbox, firstExternalIPv4, recordProcess, SERVER_IMAGE, waitFor, type Sandbox, type SandboxOptions } from '../support/windows/sandbox.mjs';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

const GET_USER = "[Environment]::GetEnvironmentVariable('OLLAMA_HOST','User')";
const GET_MACHINE = "[Environment]::GetEnvironmentVariable('OLLAMA_HOST','Machine')";
const SET_USER = "[Environment]::SetEnvironmentVariable('OLLAMA_HOST', $env:STIGMER_SETUP_VALUE, 'User')";
const SET_MACHINE = "[Environment]::SetEnvironmentVariable('OLLAMA_HOST', $env:STIGMER_SETUP_VALUE, 'Machine')";
const CLEAR_USER = "[Environment]::SetEnvironmentVariable('OLLAMA_HOST', $null, 'User')";
const IS_ADMIN =
  '([Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()).IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)';

const sandboxes: Sandbox[] = [];
const dirs: string[] = [];
const standins: RunningStandin[] = [];

function sandbox(options: Omit<SandboxOptions, 'dir'> = {}): Sandbox {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stigmer-winsbx-'));
  dirs.push(dir);
  const box = createSandbox({ dir, ...options });
  sandboxes.push(box);
  return box;
}

afterEach(async () => {
  for (const standin of standins.splice(0)) await standin.stop();
  for (const box of sandboxes.splice(0)) await box.killAll();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Run a command the way the product does: cwd = sandbox, env = sandbox env (+ extra). */
function run(box: Sandbox, cmd: string, args: string[], extraEnv: Record<string, string> = {}): Run {
  const result = spawnSync(cmd, args, { cwd: box.cwd, env: { ...box.env, ...extraEnv }, encoding: 'utf8', timeout: 30_000 });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const ps = (box: Sandbox, script: string, extraEnv: Record<string, string> = {}): Run => run(box, 'powershell.exe', ['-NoProfile', '-NonInteractive', '-Command', script], extraEnv);

function netstatListeners(box: Sandbox): WindowsListener[] {
  const result = run(box, 'netstat', ['-ano']);
  expect(result.status).toBe(0);
  return parseNetstatListening(result.stdout);
}

/**
 * Listeners owned by this sandbox's servers. Other test sessions may share this machine (and 11434),
 * so a listener only counts when netstat attributes it to one of our ollama.exe processes.
 */
function ownListeners(box: Sandbox): WindowsListener[] {
  const servers = new Set(box.processes().filter((r) => r.image === SERVER_IMAGE).map((r) => r.pid));
  return netstatListeners(box).filter((l) => servers.has(l.pid));
}

async function waitForListener(box: Sandbox, port: number, what: string, timeoutMs = 15_000): Promise<WindowsListener> {
  return waitFor(() => ownListeners(box).find((l) => l.port === port), timeoutMs, what);
}

const listensOn = (box: Sandbox, port: number): boolean => ownListeners(box).some((l) => l.port === port);

/** `ss -ltnpH`: the kernel's TCP listeners on `port`, with the owning pid. */
function ssListeners(port: number): { address: string; pid: number | undefined }[] {
  const result = spawnSync('ss', ['-ltnpH'], { encoding: 'utf8', timeout: 10_000 });
  expect(result.status).toBe(0);
  const rows: { address: string; pid: number | undefined }[] = [];
  for (const line of result.stdout.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const local = fields[3];
    if (local === undefined) continue;
    const at = local.lastIndexOf(':');
    if (Number(local.slice(at + 1)) !== port) continue;
    const address = local.slice(0, at).replace(/^\[|\]$/g, '').replace(/%.*$/, '');
    const pid = /pid=([0-9]+)/.exec(line)?.[1];
    rows.push({ address: address === '*' ? '::' : address, pid: pid === undefined ? undefined : Number(pid) });
  }
  return rows;
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '::', port, ipv6Only: false }, () => server.close(() => resolve(true)));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('powershell.exe', () => {
  it('round-trips the User store; a value only ever arrives as data in $env:STIGMER_SETUP_VALUE', () => {
    const box = sandbox();
    // An unset variable is $null, and PowerShell writes nothing at all for $null.
    const unset = ps(box, GET_USER);
    expect(unset).toEqual({ status: 0, stdout: '', stderr: '' });

    const set = ps(box, SET_USER, { STIGMER_SETUP_VALUE: '0.0.0.0:11434' });
    expect(set.status).toBe(0);
    expect(set.stdout).toBe('');
    expect(box.userEnv()).toEqual({ OLLAMA_HOST: '0.0.0.0:11434' });
    expect(ps(box, GET_USER).stdout).toBe('0.0.0.0:11434\r\n');
    // The User scope is not the Machine scope.
    expect(ps(box, GET_MACHINE).stdout).toBe('');

    // Two statements in one call print one line each, in order.
    const both = ps(box, `${GET_USER}; ${GET_MACHINE}`);
    expect(both.stdout).toBe('0.0.0.0:11434\r\n');

    expect(ps(box, CLEAR_USER).status).toBe(0);
    expect(box.userEnv()).toEqual({});
    expect(ps(box, GET_USER).stdout).toBe('');

    // Like .NET, an empty value deletes the variable.
    ps(box, SET_USER, { STIGMER_SETUP_VALUE: '127.0.0.1:5000' });
    ps(box, SET_USER, { STIGMER_SETUP_VALUE: '' });
    expect(box.userEnv()).toEqual({});

    const calls = box.transcript().filter((entry) => entry.cmd === 'powershell.exe');
    expect(calls).toHaveLength(9);
    expect(calls[1]).toMatchObject({ args: ['-NoProfile', '-NonInteractive', '-Command', SET_USER], env: { STIGMER_SETUP_VALUE: '0.0.0.0:11434' } });
    expect(calls[0]?.env).toEqual({});
  });

  it('refuses a script that carries the value in its code, and any script it does not implement', () => {
    const box = sandbox({ userEnv: { OLLAMA_HOST: '127.0.0.1:11434' } });
    const value = '0.0.0.0:11434';
    const spliced = ps(box, `[Environment]::SetEnvironmentVariable('OLLAMA_HOST', '${value}', 'User')`, { STIGMER_SETUP_VALUE: value });
    expect(spliced.status).toBe(1);
    expect(spliced.stdout).toBe('');
    expect(spliced.stderr).toContain('contains the value of STIGMER_SETUP_VALUE');
    // Even with the right statement next to it, nothing runs.
    const mixed = ps(box, `${SET_USER}; Write-Output '${value}'`, { STIGMER_SETUP_VALUE: value });
    expect(mixed.status).toBe(1);
    // A literal value is refused even when the env var does not carry it: it is not an allowed script.
    const literal = ps(box, `[Environment]::SetEnvironmentVariable('OLLAMA_HOST', '${value}', 'User')`);
    expect(literal.status).toBe(1);
    expect(literal.stderr).toContain('not one of the scripts');
    const other = ps(box, 'Get-ChildItem Env:');
    expect(other.status).toBe(1);
    expect(other.stderr).toContain('FullyQualifiedErrorId');
    expect(box.userEnv()).toEqual({ OLLAMA_HOST: '127.0.0.1:11434' });
  });

  it('answers the Administrator check, and only an administrator may write the Machine scope', () => {
    const user = sandbox();
    expect(ps(user, IS_ADMIN)).toEqual({ status: 0, stdout: 'False\r\n', stderr: '' });
    const denied = ps(user, SET_MACHINE, { STIGMER_SETUP_VALUE: '0.0.0.0:11434' });
    expect(denied.status).toBe(1);
    expect(denied.stderr).toContain('Requested registry access is not allowed.');
    expect(user.machineEnv()).toEqual({});

    const admin = sandbox({ admin: true, machineEnv: { OLLAMA_HOST: '10.0.0.5:11434' } });
    expect(ps(admin, IS_ADMIN).stdout).toBe('True\r\n');
    expect(ps(admin, GET_MACHINE).stdout).toBe('10.0.0.5:11434\r\n');
    expect(ps(admin, SET_MACHINE, { STIGMER_SETUP_VALUE: '0.0.0.0:11434' }).status).toBe(0);
    expect(admin.machineEnv()).toEqual({ OLLAMA_HOST: '0.0.0.0:11434' });
  });
});

describe('the app, netstat, tasklist and taskkill', () => {
  it('netstat -ano shows the real listener of a started app, in Windows layout (cross-checked with ss)', async () => {
    const port = await freePort();
    const box = sandbox({ userEnv: { OLLAMA_HOST: `127.0.0.1:${port}` } });
    const appPid = await box.startApp();
    const listener = await waitForListener(box, port, 'the app’s server to listen');
    expect(listener).toMatchObject({ address: '127.0.0.1', port, family: 4 });

    const server = box.processes().find((r) => r.image === SERVER_IMAGE);
    expect(server?.parentPid).toBe(appPid);
    expect(listener.pid).toBe(server?.pid);
    expect(ssListeners(port)).toEqual([{ address: '127.0.0.1', pid: server?.pid }]);

    const text = run(box, 'netstat', ['-ano']).stdout;
    expect(text.startsWith('\r\nActive Connections\r\n\r\n  Proto  Local Address          Foreign Address        State           PID\r\n')).toBe(true);
    expect(text.replace(/\r\n/g, '')).not.toContain('\n');
    const pad = (s: string, n: number) => s.padEnd(n);
    expect(text).toContain(`  TCP    ${pad(`127.0.0.1:${port}`, 21)}  ${pad('0.0.0.0:0', 21)}  ${pad('LISTENING', 16)}${server?.pid}\r\n`);
  });

  it('tasklist names the app and its server; taskkill /F /T kills both, then exits 128', async () => {
    const port = await freePort();
    const box = sandbox({ userEnv: { OLLAMA_HOST: `127.0.0.1:${port}` } });
    const appPid = await box.startApp();
    await waitForListener(box, port, 'the server');

    const csv = run(box, 'tasklist', ['/FO', 'CSV', '/NH']);
    expect(csv.status).toBe(0);
    expect(csv.stdout).toMatch(/^"System Idle Process","0","Services","0","8 K"\r\n/);
    const tasks = parseTasklistCsv(csv.stdout);
    const app = tasks.find((t) => t.imageName === APP_IMAGE);
    const server = tasks.find((t) => t.imageName === SERVER_IMAGE);
    expect(app?.pid).toBe(appPid);
    expect(server?.pid).toBe(box.processes().find((r) => r.image === SERVER_IMAGE)?.pid);
    expect(app?.memKb).toBeGreaterThan(0);
    const withHeader = run(box, 'tasklist', ['/FO', 'CSV']).stdout;
    expect(withHeader.startsWith('"Image Name","PID","Session Name","Session#","Mem Usage"\r\n')).toBe(true);
    expect(parseTasklistCsv(withHeader).map((t) => t.imageName)).toEqual(tasks.map((t) => t.imageName));

    const kill = run(box, 'taskkill', ['/F', '/T', '/IM', APP_IMAGE]);
    expect(kill.status).toBe(0);
    // Children first, then the process named, each with its parent.
    expect(kill.stdout.split('\r\n')).toEqual([
      `SUCCESS: The process with PID ${server?.pid} (child process of PID ${appPid}) has been terminated.`,
      expect.stringMatching(new RegExp(`^SUCCESS: The process with PID ${appPid} \\(child process of PID [0-9]+\\) has been terminated\\.$`)),
      '',
    ]);
    await waitFor(() => box.processes().length === 0, 5000, 'app and server to be gone');
    expect(netstatListeners(box).some((l) => l.pid === server?.pid || l.pid === appPid)).toBe(false);
    expect(parseTasklistCsv(run(box, 'tasklist', ['/FO', 'CSV', '/NH']).stdout).map((t) => t.imageName)).toEqual(['System Idle Process', 'System', 'tasklist.exe']);

    const none = run(box, 'taskkill', ['/F', '/T', '/IM', APP_IMAGE]);
    expect(none).toEqual({ status: 128, stdout: '', stderr: `ERROR: The process "${APP_IMAGE}" not found.\r\n` });
  });

  it('without /F the app quits gracefully and stops its server; without /T a server outlives its app until the next app starts', async () => {
    const port = await freePort();
    const box = sandbox({ userEnv: { OLLAMA_HOST: `127.0.0.1:${port}` } });
    const appPid = await box.startApp();
    await waitForListener(box, port, 'the server');
    const quit = run(box, 'taskkill', ['/IM', APP_IMAGE]);
    expect(quit).toEqual({ status: 0, stdout: `SUCCESS: Sent termination signal to the process "${APP_IMAGE}" with PID ${appPid}.\r\n`, stderr: '' });
    await waitFor(() => box.processes().length === 0, 10_000, 'the app to quit and stop its server');

    const second = await box.startApp();
    const orphan = await waitForListener(box, port, 'the second app’s server');
    // A console process has no window to close: without /F taskkill refuses (wording from a real run).
    expect(run(box, 'taskkill', ['/IM', SERVER_IMAGE])).toEqual({
      status: 1,
      stdout: '',
      stderr: `ERROR: The process with PID ${orphan.pid} could not be terminated.\r\nReason: This process can only be terminated forcefully (with /F option).\r\n`,
    });
    const kill = run(box, 'taskkill', ['/F', '/IM', APP_IMAGE]);
    expect(kill.stdout).toBe(`SUCCESS: The process "${APP_IMAGE}" with PID ${second} has been terminated.\r\n`);
    await waitFor(() => !box.processes().some((r) => r.pid === second), 5000, 'the app to die');
    // Windows does not kill children with their parent: the server keeps running, orphaned.
    expect(box.processes().map((r) => [r.image, r.pid])).toEqual([[SERVER_IMAGE, orphan.pid]]);
    expect(listensOn(box, port)).toBe(true);

    // The next app finds it through %LOCALAPPDATA%\Ollama\ollama.pid, stops it and starts its own.
    await box.startApp();
    const fresh = await waitFor(() => ownListeners(box).find((l) => l.port === port && l.pid !== orphan.pid), 15_000, 'a server of the new app');
    expect(box.processes().some((r) => r.pid === orphan.pid)).toBe(false);
    expect(box.appLog()).toContain(`detected previous ollama process, cleaning up" pid=${orphan.pid}`);
    expect(fresh.pid).not.toBe(orphan.pid);
  });

  it('the app uses the environment it was launched with; only a Start-menu launch reads the User store', async () => {
    const launched = await freePort();
    const stored = await freePort();
    const box = sandbox({ userEnv: { OLLAMA_HOST: `127.0.0.1:${stored}` } });

    // As the product does: spawn the app by its Windows name (found on PATH), detached, with an
    // environment of its own choosing.
    const child = spawn(box.paths.app, ['--hide'], { cwd: box.cwd, env: { ...box.env, OLLAMA_HOST: `127.0.0.1:${launched}` }, detached: true, stdio: 'ignore' });
    child.unref();
    const first = await waitForListener(box, launched, 'the server on the launch environment’s port');
    expect(listensOn(box, stored)).toBe(false);
    const appPid = box.processes().find((r) => r.image === APP_IMAGE)?.pid;
    expect(appPid).toBe(child.pid);

    // A second app (Start menu, User store in its environment) finds the first one and exits.
    const second = await box.startApp();
    expect(second).not.toBe(appPid);
    await waitFor(() => box.appLog().includes('existing instance found, exiting'), 5000, 'the second app to give up');
    await sleep(1500);
    expect(box.processes().filter((r) => r.image === APP_IMAGE).map((r) => r.pid)).toEqual([appPid]);
    expect(ownListeners(box).find((l) => l.port === launched)?.pid).toBe(first.pid);
    expect(listensOn(box, stored)).toBe(false);

    // Quit the first one: now a Start-menu launch gets the User store's value.
    expect(run(box, 'taskkill', ['/F', '/T', '/IM', APP_IMAGE]).status).toBe(0);
    await waitFor(() => box.processes().length === 0, 5000, 'the first app to be gone');
    await box.startApp();
    await waitForListener(box, stored, 'the server on the User store’s port');
    expect(listensOn(box, launched)).toBe(false);
  });

  it('a killed server comes back after ~1 s with the app’s old environment', async () => {
    const oldPort = await freePort();
    const newPort = await freePort();
    const box = sandbox({ userEnv: { OLLAMA_HOST: `127.0.0.1:${oldPort}` } });
    await box.startApp();
    const before = await waitForListener(box, oldPort, 'the first server');

    // The user changes the variable; the running app does not see it.
    expect(ps(box, SET_USER, { STIGMER_SETUP_VALUE: `127.0.0.1:${newPort}` }).status).toBe(0);
    const kill = run(box, 'taskkill', ['/F', '/IM', SERVER_IMAGE]);
    expect(kill).toEqual({ status: 0, stdout: `SUCCESS: The process "${SERVER_IMAGE}" with PID ${before.pid} has been terminated.\r\n`, stderr: '' });
    const killedAt = Date.now();
    const after = await waitFor(() => ownListeners(box).find((l) => l.port === oldPort && l.pid !== before.pid), 15_000, 'a restarted server');
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(900);
    expect(listensOn(box, newPort)).toBe(false);
    expect(box.processes().find((r) => r.pid === after.pid)).toMatchObject({ image: SERVER_IMAGE, ollamaHost: `127.0.0.1:${oldPort}` });
  });

  it('Expose forces OLLAMA_HOST=0.0.0.0 (port 11434) over the inherited value', async (ctx) => {
    if (!(await portIsFree(11434))) ctx.skip('port 11434 is in use on this machine; Expose always binds 11434');
    const port = await freePort();
    const box = sandbox({ userEnv: { OLLAMA_HOST: `127.0.0.1:${port}` } });
    box.setAppSettings({ expose: true });
    await box.startApp();
    const listener = await waitForListener(box, 11434, 'the exposed server').catch((error: unknown) => {
      // Another test session on this machine may take 11434 between the check and the bind.
      if (box.serverLog().includes('address already in use')) ctx.skip('port 11434 was taken by another process');
      throw error;
    });
    // Go listens on one dual-stack IPv6 socket for 0.0.0.0.
    expect(listener).toMatchObject({ address: '::', family: 6 });
    expect(listensOn(box, port)).toBe(false);
    expect(ssListeners(11434)).toEqual([{ address: '::', pid: listener.pid }]);

    // Turning it off again restarts the server with the inherited value.
    box.setAppSettings({ expose: false });
    await waitForListener(box, port, 'the server back on the inherited port');
    await waitFor(() => !listensOn(box, 11434), 5000, 'port 11434 to close');
  });

  it('a port in a netsh excluded range cannot be bound; the app retries every second', async () => {
    const port = await freePort();
    const box = sandbox({ userEnv: { OLLAMA_HOST: `127.0.0.1:${port}` }, excludedPorts: [[port, port]] });
    const ranges = parseExcludedPortRanges(run(box, 'netsh', ['interface', 'ipv4', 'show', 'excludedportrange', 'protocol=tcp']).stdout);
    expect(ranges).toEqual([{ start: port, end: port, administered: false }]);

    await box.startApp();
    await waitFor(
      () => box.serverLog().includes(`Error: listen tcp 127.0.0.1:${port}: bind: An attempt was made to access a socket in a way forbidden by its access permissions.`),
      10_000,
      'the bind error in server.log',
    );
    expect(listensOn(box, port)).toBe(false);

    // `net stop winnat` (here: the range goes away) and the next attempt binds.
    box.configure({ excludedPorts: [] });
    await waitForListener(box, port, 'the server once the range is gone');
  });
});

describe('netsh and sc', () => {
  it('netsh lists the excluded ranges in the real layout', () => {
    const box = sandbox({ excludedPorts: [[55679, 55679, true], [80, 80], [50000, 50059]] });
    const result = run(box, 'netsh', ['interface', 'ipv4', 'show', 'excludedportrange', 'protocol=tcp']);
    expect(result.status).toBe(0);
    expect(result.stdout).toBe(
      [
        '',
        'Protocol tcp Port Exclusion Ranges',
        '',
        'Start Port    End Port      ',
        '----------    --------      ',
        '        80          80      ',
        '     50000       50059      ',
        '     55679       55679     *',
        '',
        '* - Administered port exclusions.',
        '',
        '',
      ].join('\r\n'),
    );
    expect(parseExcludedPortRanges(result.stdout)).toEqual([
      { start: 80, end: 80, administered: false },
      { start: 50000, end: 50059, administered: false },
      { start: 55679, end: 55679, administered: true },
    ]);
    expect(run(box, 'netsh', ['interface', 'ipv4', 'show', 'nonsense']).status).toBe(1);
  });

  it('sc query ollama: 1060 without a service, a RUNNING or STOPPED block with one', () => {
    const box = sandbox();
    const missing = run(box, 'sc', ['query', 'ollama']);
    // sc exits with the Win32 error, 1060; a Linux exit status keeps only its low 8 bits (36).
    expect(missing.status).toBe(1060 & 0xff);
    expect(missing.stdout).toBe('[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\nThe specified service does not exist as an installed service.\r\n\r\n');
    expect(scServiceMissing(parseScQuery(missing.stdout))).toBe(true);

    box.configure({ service: 'running' });
    const running = run(box, 'sc.exe', ['query', 'ollama']);
    expect(running.status).toBe(0);
    expect(parseScQuery(running.stdout)).toEqual({ exists: true, serviceName: 'ollama', state: 'RUNNING', stateCode: 4 });

    box.configure({ service: 'stopped' });
    expect(parseScQuery(run(box, 'sc', ['query', 'ollama']).stdout)).toMatchObject({ exists: true, state: 'STOPPED', stateCode: 1 });
    expect(box.transcript().map((e) => e.cmd)).toEqual(['sc', 'sc.exe', 'sc']);
  });
});

describe('docker (Docker Desktop, WSL 2)', () => {
  it('info, inspect, image ls as Docker Desktop answers them', () => {
    const box = sandbox();
    const info = run(box, 'docker', ['info', '--format', '{{.OperatingSystem}}|{{.Name}}|{{.ServerVersion}}|{{.KernelVersion}}']);
    expect(info).toEqual({ status: 0, stdout: 'Docker Desktop|docker-desktop|28.3.2|6.6.87.2-microsoft-standard-WSL2\n', stderr: '' });
    const inspect = run(box, 'docker', ['inspect', '--type', 'container', 'stigmer-agent-runner']);
    expect(inspect).toEqual({ status: 1, stdout: '[]\n', stderr: 'Error response from daemon: No such container: stigmer-agent-runner\n' });
    expect(run(box, 'docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}'])).toEqual({ status: 0, stdout: 'python:3.11-slim\n', stderr: '' });
    expect(run(box, 'docker', ['run', '--rm', '--pull=never', 'alpine', 'true']).status).toBe(125);
  });

  const probe = (box: Sandbox, port: number, extra: string[] = []): Record<string, unknown> => {
    const result = run(box, 'docker', ['run', '--rm', '--pull=never', ...extra, 'python:3.11-slim', 'python3', '-c', PROBE_SCRIPT, `http://host.docker.internal:${port}`]);
    expect(result.status).toBe(0);
    return JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
  };

  it('host.docker.internal reaches a loopback-only Ollama only when the runtime forwards to loopback', async () => {
    const standin = await startStandin({ ollamaHost: `127.0.0.1:${await freePort()}` });
    standins.push(standin);
    const forwarding = sandbox({ runtime: 'forward-loopback' });
    // The Host guard is on for a loopback listener: a foreign Host gets 403 (NemoClaw's proof).
    expect(probe(forwarding, standin.port)).toMatchObject({
      outcome: 'ok',
      status: 200,
      foreignHostStatus: 403,
      // The name is resolved inside the "container": the URL the script reports is untouched.
      url: `http://host.docker.internal:${standin.port}`,
      address: '127.0.0.1',
    });
    expect(probe(forwarding, standin.port, ['--add-host=host.docker.internal:host-gateway'])).toMatchObject({ outcome: 'ok' });
    const plain = sandbox({ runtime: 'no-forward' });
    expect(probe(plain, standin.port)).toMatchObject({ outcome: 'refused' });
    // An explicit --add-host IP wins over the runtime's answer.
    expect(probe(plain, standin.port, ['--add-host', 'host.docker.internal:127.0.0.1'])).toMatchObject({ outcome: 'ok', address: '127.0.0.1' });
  });

  it('with no loopback forwarding only a 0.0.0.0 listener answers; a container’s own localhost never does', async () => {
    expect(firstExternalIPv4()).toBeDefined();
    const standin = await startStandin({ ollamaHost: `0.0.0.0:${await freePort()}` });
    standins.push(standin);
    const box = sandbox({ runtime: 'no-forward' });
    expect(probe(box, standin.port)).toMatchObject({ outcome: 'ok', status: 200, foreignHostStatus: 200, address: firstExternalIPv4() });
    const own = run(box, 'docker', ['run', '--rm', '--pull=never', 'python:3.11-slim', 'python3', '-c', PROBE_SCRIPT, `http://127.0.0.1:${standin.port}`]);
    expect(JSON.parse(own.stdout.trim())).toMatchObject({ outcome: 'refused' });
  });
});

describe('the tray app restart: the scripts and states it relies on', () => {
  it('reads one variable as PowerShell 5.1 answers the script: unset, empty and any value, exactly', () => {
    const box = sandbox({ userEnv: { OLLAMA_HOST: 'http://127.0.0.1:11434\n# note\r' }, machineEnv: { OLLAMA_HOST: '' } });
    const read = (scope: 'User' | 'Machine') => {
      const result = ps(box, environmentReadScript('OLLAMA_HOST', scope));
      expect(result.status).toBe(0);
      return parseEnvironmentRead(result.stdout);
    };
    expect(read('User')).toEqual({ value: 'http://127.0.0.1:11434\n# note\r' });
    // An empty REG_SZ (reg.exe can write one; .NET's SetEnvironmentVariable can't) is '' , not $null.
    expect(read('Machine')).toEqual({ value: '' });
    const bare = sandbox();
    expect(parseEnvironmentRead(ps(bare, environmentReadScript('OLLAMA_HOST', 'User')).stdout)).toEqual({ value: undefined });
  });

  it('Win32_Process gives each running app the Windows path it was started from, wherever it is installed', async () => {
    const box = sandbox({ appDir: 'D:\\Apps\\Ollama' });
    expect(box.paths.app).toBe('D:\\Apps\\Ollama\\ollama app.exe');
    const pid = await box.startApp();
    const result = ps(box, processPathsScript(APP_IMAGE));
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^\[\r\n {4}\{\r\n {8}"ProcessId": {2}\d+,\r\n {8}"ExecutablePath": {2}"D:\\\\Apps\\\\Ollama\\\\ollama app\.exe"\r\n {4}\}\r\n\]\r\n$/);
    expect(parseProcessPathsJson(result.stdout)).toEqual([{ pid, path: 'D:\\Apps\\Ollama\\ollama app.exe' }]);
    // None running: an empty array (ConvertTo-Json -InputObject @()).
    await box.killAll();
    expect(parseProcessPathsJson(ps(box, processPathsScript(APP_IMAGE)).stdout)).toEqual([]);
  });

  it('taskkill /F reports a stuck process terminated, and it stays listed until it ends', async () => {
    const box = sandbox();
    const child = spawn('sleep', ['30'], { env: box.env, stdio: 'ignore' });
    await new Promise((resolve) => child.once('spawn', resolve));
    const pid = child.pid as number;
    recordProcess(box.dir, { pid, image: 'llama-server.exe' });
    box.configure({ stuckPids: [pid] });
    const kill = run(box, 'taskkill', ['/F', '/T', '/IM', 'llama-server.exe']);
    expect(kill.status).toBe(0);
    expect(kill.stdout).toContain(`SUCCESS: The process with PID ${pid}`);
    await sleep(200);
    expect(parseTasklistCsv(run(box, 'tasklist', ['/FO', 'CSV', '/NH']).stdout).some((entry) => entry.pid === pid && entry.imageName === 'llama-server.exe')).toBe(true);
    child.kill('SIGKILL');
  });
});
