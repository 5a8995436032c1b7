/**
 * The macOS sandbox's shims (test/support/macos) against the behaviour they claim to model:
 * launchd (setenv + EnvironmentVariables, bootout draining, KeepAlive), Homebrew services (the
 * generated plist, restart dropping hand edits, the 6.0.15+ services/ollama.env merge), Ollama.app
 * (launchd environment, Expose, pkill), lsof from the kernel tables, and Docker Desktop's routing.
 * Listeners are checked twice: with the lsof shim (parsed by the product's parser) and with `ss`.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseBrewServicesInfo, parseBrewVersion } from '../../platforms/darwin/parsers/brew.ts';
import { launchctlServiceMissing, parseLaunchctlPrint } from '../../platforms/darwin/parsers/launchctl-print.ts';
import { parseLsofListen, type LsofListener } from '../../platforms/darwin/parsers/lsof.ts';
import { PROBE_SCRIPT } from '../../scripts/container-probe.ts';
import {
  appProcess,
  brewServicesStart,
  buildPlist,
  createSandbox,
  installAppAt,
  launchctl,
  launchctlSetenv,
  launchdJob,
  openApp,
  openAppAt,
  parsePlist,
  reboot,
  runningAppBundle,
  setAppIgnoresTerm,
  REPO,
  writeAppSettings,
  type Sandbox,
  type SandboxOptions,
} from '../support/macos/sandbox.mjs';
import { freePort, startStandin, type RunningStandin } from '../support/standin-process.ts';
import { sleep, waitFor } from './support/shell.ts';

const FIXTURES = path.join(REPO, 'test', 'fixtures', 'darwin');
const uid = process.getuid?.() ?? 0;
const GUI = `gui/${uid}`;

// ---------------------------------------------------------------------------
// Per-test sandboxes and stand-ins, all cleaned up in afterEach.

const sandboxes: { sb: Sandbox; root: string }[] = [];
const standins: RunningStandin[] = [];

function sandbox(opts: Partial<SandboxOptions> = {}): Sandbox {
  const root = mkdtempSync(path.join(os.tmpdir(), 'stigmer-macos-'));
  const sb = createSandbox({ dir: path.join(root, 'sandbox'), home: path.join(root, 'home'), ...opts });
  sandboxes.push({ sb, root });
  return sb;
}

afterEach(async () => {
  for (const { sb, root } of sandboxes.splice(0)) {
    await sb.killAll();
    rmSync(root, { recursive: true, force: true });
  }
  for (const s of standins.splice(0)) await s.stop();
});

// ---------------------------------------------------------------------------
// Listener checks

interface Listening {
  code: number | null;
  stdout: string;
  listeners: LsofListener[];
}

async function lsof(sb: Sandbox, port: number): Promise<Listening> {
  const r = await sb.run('lsof', ['-nP', `-iTCP:${port}`, '-sTCP:LISTEN']);
  return { code: r.code, stdout: r.stdout, listeners: parseLsofListen(r.stdout) };
}

/** Local addresses `ss -ltnH` shows listening on this port, e.g. ['127.0.0.1:41000'] or ['*:41000']. */
function ssListen(port: number): string[] {
  const r = spawnSync('ss', ['-ltnH'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ss failed: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[3] ?? '')
    .filter((local) => local.endsWith(`:${port}`));
}

async function waitListening(sb: Sandbox, port: number, timeoutMs = 15_000): Promise<Listening> {
  return waitFor(
    async () => {
      const l = await lsof(sb, port);
      return l.listeners.length > 0 ? l : undefined;
    },
    { timeoutMs, intervalMs: 100, what: `a listener on port ${port}` },
  );
}

async function waitClosed(sb: Sandbox, port: number, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    async () => {
      const l = await lsof(sb, port);
      return l.code === 1 && ssListen(port).length === 0 ? true : undefined;
    },
    { timeoutMs, intervalMs: 100, what: `port ${port} to close` },
  );
}

function kegOllama(sb: Sandbox): string {
  return path.join(sb.brewPrefix, 'opt', 'ollama', 'bin', 'ollama');
}

/** A LaunchAgent plist for the sandbox's `ollama serve`, written with the plist package. */
function writeJobPlist(sb: Sandbox, label: string, env?: Record<string, string>, extra: Record<string, unknown> = {}): string {
  const file = path.join(sb.home, 'Library', 'LaunchAgents', `${label}.plist`);
  const obj: Record<string, unknown> = { Label: label, ProgramArguments: [kegOllama(sb), 'serve'], RunAtLoad: true, ...extra };
  if (env) obj.EnvironmentVariables = env;
  writeFileSync(file, `${buildPlist(obj, { indent: '\t', offset: -1 })}\n`);
  return file;
}

function environOf(pid: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0) out.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return out;
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: '::', port, ipv6Only: false }, () => srv.close(() => resolve(true)));
  });
}

const LSOF_HEADER = /^COMMAND +PID +USER +FD +TYPE +DEVICE SIZE\/OFF NODE NAME$/;
const LSOF_ROW = /^\S{1,9} +\d+ +\S+ +\d+u +IPv[46] +0x[0-9a-f]{16} +0t0 +TCP \S+ \(LISTEN\)$/;

// ---------------------------------------------------------------------------

describe('launchctl', () => {
  it('bootstrap runs the job with launchd setenv overlaid by the plist EnvironmentVariables', async () => {
    const sb = sandbox();
    const [p1, p2] = [await freePort(), await freePort()];
    expect((await launchctl(sb, ['setenv', 'OLLAMA_HOST', `0.0.0.0:${p2}`], { record: true })).code).toBe(0);

    // The plist sets OLLAMA_HOST too: the plist wins.
    const a = writeJobPlist(sb, 'com.example.ollama-a', { OLLAMA_HOST: `127.0.0.1:${p1}` });
    const boot = await launchctl(sb, ['bootstrap', GUI, a], { record: true });
    expect(boot).toEqual({ code: 0, stdout: '', stderr: '' });
    const l1 = await waitListening(sb, p1);
    expect(l1.listeners).toEqual([expect.objectContaining({ address: '127.0.0.1', port: p1, family: 4, command: 'ollama' })]);
    const lines = l1.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(LSOF_HEADER);
    expect(lines[1]).toMatch(LSOF_ROW);
    expect(lines[1]).toContain(`TCP 127.0.0.1:${p1} (LISTEN)`);
    expect(ssListen(p1)).toEqual([`127.0.0.1:${p1}`]);
    expect(await lsof(sb, p2)).toEqual({ code: 1, stdout: '', listeners: [] });

    const printed = await launchctl(sb, ['print', `${GUI}/com.example.ollama-a`], { record: true });
    expect(printed.code).toBe(0);
    expect(printed.stdout.split('\n')[0]).toBe(`${GUI}/com.example.ollama-a = {`);
    const job = parseLaunchctlPrint(printed.stdout);
    expect(job).toMatchObject({ state: 'running', pid: l1.listeners[0]?.pid, path: a, program: kegOllama(sb), arguments: [kegOllama(sb), 'serve'] });
    expect(Object.fromEntries(job.environment)).toEqual({ OLLAMA_HOST: `127.0.0.1:${p1}`, XPC_SERVICE_NAME: 'com.example.ollama-a' });
    const env = environOf(l1.listeners[0]?.pid ?? 0);
    expect(env.get('OLLAMA_HOST')).toBe(`127.0.0.1:${p1}`);
    expect(env.get('XPC_SERVICE_NAME')).toBe('com.example.ollama-a');

    // Without EnvironmentVariables the job inherits the setenv value: Go's one dual-stack socket.
    const b = writeJobPlist(sb, 'com.example.ollama-b');
    expect((await launchctl(sb, ['bootstrap', GUI, b], { record: true })).code).toBe(0);
    const l2 = await waitListening(sb, p2);
    expect(l2.listeners).toEqual([expect.objectContaining({ address: '::', port: p2, family: 6, command: 'ollama' })]);
    expect(l2.stdout).toContain(`TCP *:${p2} (LISTEN)`);
    expect(ssListen(p2)).toEqual([`*:${p2}`]);

    expect(sb.transcript()).toEqual([
      { cmd: 'launchctl', args: ['setenv', 'OLLAMA_HOST', `0.0.0.0:${p2}`] },
      { cmd: 'launchctl', args: ['bootstrap', GUI, a] },
      { cmd: 'launchctl', args: ['print', `${GUI}/com.example.ollama-a`] },
      { cmd: 'launchctl', args: ['bootstrap', GUI, b] },
    ]);
  });

  it('bootout drains: print still answers and bootstrap fails with 5 until the label is gone', async () => {
    const sb = sandbox({ drainMs: 1500 });
    const port = await freePort();
    const plist = writeJobPlist(sb, 'com.example.drain', { OLLAMA_HOST: `127.0.0.1:${port}` });
    expect((await launchctl(sb, ['bootstrap', GUI, plist])).code).toBe(0);
    await waitListening(sb, port);

    expect(await launchctl(sb, ['bootout', `${GUI}/com.example.drain`])).toEqual({ code: 0, stdout: '', stderr: '' });
    await waitClosed(sb, port, 5000);
    const draining = await launchctl(sb, ['print', `${GUI}/com.example.drain`]);
    expect(draining.code).toBe(0);
    const drainingJob = parseLaunchctlPrint(draining.stdout);
    expect(drainingJob.state).toBe('stopping');
    expect(drainingJob.pid).toBeUndefined();
    expect(await launchctl(sb, ['bootstrap', GUI, plist])).toEqual({ code: 5, stdout: '', stderr: 'Bootstrap failed: 5: Input/output error\n' });
    expect(await launchctl(sb, ['bootout', `${GUI}/com.example.drain`])).toEqual({ code: 36, stdout: '', stderr: 'Boot-out failed: 36: Operation now in progress\n' });

    // The recommended sequence: wait until print fails, then bootstrap.
    const gone = await waitFor(
      async () => {
        const r = await launchctl(sb, ['print', `${GUI}/com.example.drain`]);
        return r.code === 113 ? r : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: 'the label to finish draining' },
    );
    expect(gone.stderr).toBe(`Bad request.\nCould not find service "com.example.drain" in domain for user gui: ${uid}\n`);
    expect(launchctlServiceMissing(gone.stderr)).toBe(true);
    expect((await launchctl(sb, ['bootstrap', GUI, plist])).code).toBe(0);
    await waitListening(sb, port);

    expect(await launchctl(sb, ['bootout', `${GUI}/com.example.nosuch`])).toEqual({ code: 3, stdout: '', stderr: 'Boot-out failed: 3: No such process\n' });
    expect(await launchctl(sb, ['bootstrap', GUI, plist])).toMatchObject({ code: 5 });
    expect(await launchctl(sb, ['print', 'gui/424242/com.example.drain'])).toEqual({ code: 112, stdout: '', stderr: 'Could not find domain for user gui: 424242\n' });
    expect(await launchctl(sb, ['print', 'not-a-domain-target'])).toEqual({ code: 64, stdout: '', stderr: 'Unrecognized target specifier.\n' });
  });

  it('the default drain is ~300 ms', async () => {
    const sb = sandbox();
    const plist = writeJobPlist(sb, 'com.example.short', { OLLAMA_HOST: `127.0.0.1:${await freePort()}` });
    expect((await launchctl(sb, ['bootstrap', GUI, plist])).code).toBe(0);
    const started = Date.now();
    expect((await launchctl(sb, ['bootout', `${GUI}/com.example.short`])).code).toBe(0);
    await waitFor(async () => ((await launchctl(sb, ['print', `${GUI}/com.example.short`])).code === 113 ? true : undefined), {
      timeoutMs: 5000,
      intervalMs: 25,
      what: 'the drain to end',
    });
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(300);
    expect(took).toBeLessThan(3000);
  });

  it('getenv prints the value or nothing (exit 0); our setenv LaunchAgent feeds the model', async () => {
    const sb = sandbox();
    expect(await launchctl(sb, ['getenv', 'OLLAMA_HOST'])).toEqual({ code: 0, stdout: '', stderr: '' });
    // The persistence workaround: a RunAtLoad LaunchAgent running /bin/launchctl setenv.
    const agent = path.join(sb.home, 'Library', 'LaunchAgents', 'com.example.setenv.plist');
    writeFileSync(
      agent,
      `${buildPlist({ Label: 'com.example.setenv', ProgramArguments: ['/bin/launchctl', 'setenv', 'OLLAMA_HOST', '0.0.0.0:11434'], RunAtLoad: true }, { indent: '\t', offset: -1 })}\n`,
    );
    expect((await launchctl(sb, ['bootstrap', GUI, agent])).code).toBe(0);
    expect(await launchctl(sb, ['getenv', 'OLLAMA_HOST'])).toEqual({ code: 0, stdout: '0.0.0.0:11434\n', stderr: '' });
    expect(parseLaunchctlPrint((await launchctl(sb, ['print', `${GUI}/com.example.setenv`])).stdout)).toMatchObject({ state: 'not running', lastExitCode: '0' });
    expect((await launchctl(sb, ['unsetenv', 'OLLAMA_HOST'])).code).toBe(0);
    expect((await launchctl(sb, ['getenv', 'OLLAMA_HOST'])).stdout).toBe('');
    // Legacy load/unload: exit 0, no effect.
    expect((await launchctl(sb, ['load', '-w', agent])).code).toBe(0);
    expect((await launchctl(sb, ['getenv', 'OLLAMA_HOST'])).stdout).toBe('');
  });

  it('KeepAlive respawns a killed job after the throttle interval, with the same definition', async () => {
    const sb = sandbox({ launchdThrottleMs: 3000 });
    const port = await freePort();
    await launchctlSetenv(sb, 'OLLAMA_HOST', `127.0.0.1:${port}`);
    await brewServicesStart(sb);
    const first = (await waitListening(sb, port)).listeners[0]?.pid ?? 0;
    expect(launchdJob(sb)).toMatchObject({ pid: first, runs: 1 });
    process.kill(first, 'SIGKILL');
    // Within the throttle window launchd has not respawned it yet.
    const scheduled = await waitFor(
      async () => {
        const job = parseLaunchctlPrint((await launchctl(sb, ['print', `${GUI}/homebrew.mxcl.ollama`])).stdout);
        return job.state === 'spawn scheduled' ? job : undefined;
      },
      { timeoutMs: 2000, intervalMs: 25, what: 'the job to wait for its respawn' },
    );
    expect(scheduled.pid).toBeUndefined();
    expect(ssListen(port)).toEqual([]);
    const second = await waitFor(
      async () => {
        const pid = (await lsof(sb, port)).listeners[0]?.pid;
        return pid !== undefined && pid !== first ? pid : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 50, what: 'launchd to respawn the job' },
    );
    const job = parseLaunchctlPrint((await launchctl(sb, ['print', `${GUI}/homebrew.mxcl.ollama`])).stdout);
    expect(job).toMatchObject({ state: 'running', pid: second });
    expect(launchdJob(sb)).toMatchObject({ runs: 2, lastExit: { code: null, signal: 'SIGKILL' } });
  });

  it('a program that cannot be executed ends with 78: EX_CONFIG', async () => {
    const sb = sandbox();
    const plist = writeJobPlist(sb, 'com.example.missing', undefined, { ProgramArguments: ['/opt/homebrew/opt/ollama/bin/ollama', 'serve'] });
    expect((await launchctl(sb, ['bootstrap', GUI, plist])).code).toBe(0);
    const printed = await launchctl(sb, ['print', `${GUI}/com.example.missing`]);
    expect(parseLaunchctlPrint(printed.stdout)).toMatchObject({ state: 'not running', lastExitCode: '78: EX_CONFIG' });
  });
});

describe('brew', () => {
  it('4.x: start writes the plist Homebrew generates; restart drops hand edits; services/ollama.env is ignored', async () => {
    const sb = sandbox({ brewVersion: '4.4.6' });
    const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
    await launchctlSetenv(sb, 'OLLAMA_HOST', `127.0.0.1:${p1}`);
    const envFile = path.join(sb.home, '.homebrew', 'services', 'ollama.env');
    mkdirSync(path.dirname(envFile), { recursive: true });
    writeFileSync(envFile, `OLLAMA_HOST=0.0.0.0:${p3}\n`, { mode: 0o600 });

    const version = await sb.run('brew', ['--version'], { record: true });
    expect(version).toEqual({ code: 0, stdout: 'Homebrew 4.4.6\n', stderr: '' });
    expect(parseBrewVersion(version.stdout)).toEqual({ major: 4, minor: 4, patch: 6 });

    const started = await sb.run('brew', ['services', 'start', 'ollama'], { record: true });
    expect(started).toEqual({ code: 0, stdout: '==> Successfully started `ollama` (label: homebrew.mxcl.ollama)\n', stderr: '' });
    // Byte for byte what Homebrew wrote for a real user (the fixture), with our prefix and
    // without OLLAMA_LIBRARY_PATH, which the formula does not set (see SOURCES.md).
    const real = parsePlist(readFileSync(path.join(FIXTURES, 'homebrew.mxcl.ollama-camjn-dotfiles.plist'), 'utf8')) as Record<string, unknown>;
    delete (real.EnvironmentVariables as Record<string, string>).OLLAMA_LIBRARY_PATH;
    const expected = `${buildPlist(JSON.parse(JSON.stringify(real).replaceAll('/opt/homebrew', sb.brewPrefix)), { indent: '\t', offset: -1 })}\n`;
    expect(readFileSync(sb.plistPath, 'utf8')).toBe(expected);
    const l1 = await waitListening(sb, p1);
    expect(l1.listeners).toEqual([expect.objectContaining({ address: '127.0.0.1', port: p1 })]);
    expect(ssListen(p1)).toEqual([`127.0.0.1:${p1}`]);
    expect(ssListen(p3)).toEqual([]);

    // Hand edit + bootout/bootstrap: launchd runs the edited plist.
    const edited = parsePlist(readFileSync(sb.plistPath, 'utf8')) as Record<string, Record<string, string>>;
    edited.EnvironmentVariables = { ...edited.EnvironmentVariables, OLLAMA_HOST: `0.0.0.0:${p2}` };
    writeFileSync(sb.plistPath, `${buildPlist(edited, { indent: '\t', offset: -1 })}\n`);
    expect((await launchctl(sb, ['bootout', `${GUI}/homebrew.mxcl.ollama`])).code).toBe(0);
    await waitFor(async () => ((await launchctl(sb, ['print', `${GUI}/homebrew.mxcl.ollama`])).code === 113 ? true : undefined), {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: 'bootout to finish',
    });
    expect((await launchctl(sb, ['bootstrap', GUI, sb.plistPath])).code).toBe(0);
    expect((await waitListening(sb, p2)).listeners).toEqual([expect.objectContaining({ address: '::', port: p2 })]);

    // restart = stop + start: the plist is generated again, the edit is gone.
    const restarted = await sb.run('brew', ['services', 'restart', 'ollama'], { record: true });
    expect(restarted).toEqual({
      code: 0,
      stdout:
        'Stopping `ollama`... (might take a while)\n==> Successfully stopped `ollama` (label: homebrew.mxcl.ollama)\n==> Successfully started `ollama` (label: homebrew.mxcl.ollama)\n',
      stderr: '',
    });
    expect(readFileSync(sb.plistPath, 'utf8')).toBe(expected);
    await waitClosed(sb, p2);
    const back = await waitListening(sb, p1);
    expect(ssListen(p3)).toEqual([]);

    const info = await sb.run('brew', ['services', 'info', 'ollama', '--json'], { record: true });
    expect(info.code).toBe(0);
    expect(parseBrewServicesInfo(info.stdout, 'ollama')).toMatchObject({ name: 'ollama', serviceName: 'homebrew.mxcl.ollama', running: true, loaded: true, status: 'started', pid: back.listeners[0]?.pid, file: sb.plistPath });
    const raw = JSON.parse(info.stdout) as Record<string, unknown>[];
    expect(Object.keys(raw[0] ?? {})).toEqual(['name', 'service_name', 'running', 'loaded', 'schedulable', 'pid', 'exit_code', 'user', 'status', 'file', 'command', 'working_dir', 'root_dir', 'log_path', 'error_log_path', 'interval', 'cron']);
    expect(raw[0]?.command).toBe(`OLLAMA_FLASH_ATTENTION="1" OLLAMA_KV_CACHE_TYPE="q8_0" ${kegOllama(sb)} serve`);

    expect(sb.transcript()).toEqual([
      { cmd: 'brew', args: ['--version'] },
      { cmd: 'brew', args: ['services', 'start', 'ollama'] },
      { cmd: 'brew', args: ['services', 'restart', 'ollama'] },
      { cmd: 'brew', args: ['services', 'info', 'ollama', '--json'] },
    ]);
  });

  it('6.1: start merges services/ollama.env; a group-writable one is skipped with brew\'s warning', async () => {
    const sb = sandbox({ brewVersion: '6.1.0' });
    const [p1, p3] = [await freePort(), await freePort()];
    await launchctlSetenv(sb, 'OLLAMA_HOST', `127.0.0.1:${p1}`);
    const envFile = path.join(sb.home, '.homebrew', 'services', 'ollama.env');
    mkdirSync(path.dirname(envFile), { recursive: true });
    writeFileSync(envFile, `# stigmer-setup\n\nOLLAMA_HOST=0.0.0.0:${p3}\nOLLAMA_KV_CACHE_TYPE = f16\nnot a pair\n`, { mode: 0o600 });
    chmodSync(envFile, 0o600);

    const started = await sb.run('brew', ['services', 'start', 'ollama']);
    expect(started.code).toBe(0);
    expect(started.stderr).toBe(`Warning: Skipping invalid line in ${envFile}: not a pair\n`);
    const plist = parsePlist(readFileSync(sb.plistPath, 'utf8')) as { EnvironmentVariables: Record<string, string> };
    expect(plist.EnvironmentVariables).toEqual({ OLLAMA_FLASH_ATTENTION: '1', OLLAMA_HOST: `0.0.0.0:${p3}`, OLLAMA_KV_CACHE_TYPE: 'f16' });
    const l3 = await waitListening(sb, p3);
    expect(l3.listeners).toEqual([expect.objectContaining({ address: '::', port: p3, family: 6 })]);
    expect(ssListen(p3)).toEqual([`*:${p3}`]);
    expect(ssListen(p1)).toEqual([]);

    const info = JSON.parse((await sb.run('brew', ['services', 'info', 'ollama', '--json'])).stdout) as Record<string, unknown>[];
    expect(info[0]).toMatchObject({ running: true, registered: true, loaded_file: sb.plistPath, status: 'started', pid: l3.listeners[0]?.pid });

    chmodSync(envFile, 0o664);
    const restarted = await sb.run('brew', ['services', 'restart', 'ollama']);
    expect(restarted.code).toBe(0);
    expect(restarted.stderr).toBe(`Warning: Skipping ${envFile}: file is group-writable.\n`);
    expect((parsePlist(readFileSync(sb.plistPath, 'utf8')) as { EnvironmentVariables: Record<string, string> }).EnvironmentVariables).toEqual({
      OLLAMA_FLASH_ATTENTION: '1',
      OLLAMA_KV_CACHE_TYPE: 'q8_0',
    });
    await waitClosed(sb, p3);
    expect((await waitListening(sb, p1)).listeners).toEqual([expect.objectContaining({ address: '127.0.0.1', port: p1 })]);
  });

  it('6.1: the env file lives under $XDG_CONFIG_HOME/homebrew when XDG is set; HOMEBREW_USER_CONFIG_HOME cannot move it', async () => {
    const sb = sandbox({ brewVersion: '6.1.0' });
    const [p1, pXdg, pIgnored] = [await freePort(), await freePort(), await freePort()];
    await launchctlSetenv(sb, 'OLLAMA_HOST', `127.0.0.1:${p1}`);
    const xdg = path.join(sb.home, '.config');
    const other = path.join(sb.home, 'elsewhere');
    for (const [dir, port] of [
      [path.join(xdg, 'homebrew', 'services'), pXdg],
      [path.join(other, 'services'), pIgnored],
    ] as const) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'ollama.env'), `OLLAMA_HOST=0.0.0.0:${port}\n`, { mode: 0o600 });
    }
    const r = await sb.run('brew', ['services', 'start', 'ollama'], { env: { XDG_CONFIG_HOME: xdg, HOMEBREW_USER_CONFIG_HOME: other } });
    expect(r.code).toBe(0);
    expect((await waitListening(sb, pXdg)).listeners[0]).toMatchObject({ address: '::' });
    expect(ssListen(pIgnored)).toEqual([]);
  });

  it('without the formula: start fails like brew, info still answers, --version before 4.0.2 names core', async () => {
    const sb = sandbox({ brewInstalled: false, brewVersion: '4.0.1' });
    expect(await sb.run('brew', ['services', 'start', 'ollama'])).toEqual({ code: 1, stdout: '', stderr: 'Error: Formula `ollama` is not installed.\n' });
    const info = await sb.run('brew', ['services', 'info', 'ollama', '--json']);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout)).toEqual([
      expect.objectContaining({ name: 'ollama', running: false, loaded: false, pid: null, exit_code: null, user: null, status: 'none', file: path.join(sb.brewPrefix, 'opt', 'ollama', 'homebrew.mxcl.ollama.plist') }),
    ]);
    expect((await sb.run('brew', ['--version'])).stdout).toBe(readFileSync(path.join(FIXTURES, 'brew-version-4.0.1-core-na.txt'), 'utf8'));
    expect(await sb.run('brew', ['services', 'start', 'nosuch'])).toEqual({ code: 1, stdout: '', stderr: 'Error: No available formula with the name "nosuch".\n' });
  });

  it('sh.brew.ollama label: start/stop use it, stop deletes the plist', async () => {
    const sb = sandbox({ brewVersion: '6.1.0', brewLabel: 'sh.brew.ollama' });
    const port = await freePort();
    await launchctlSetenv(sb, 'OLLAMA_HOST', `127.0.0.1:${port}`);
    const r = await sb.run('brew', ['services', 'start', 'ollama']);
    expect(r.stdout).toBe('==> Successfully started `ollama` (label: sh.brew.ollama)\n');
    expect(sb.plistPath).toBe(path.join(sb.home, 'Library', 'LaunchAgents', 'sh.brew.ollama.plist'));
    await waitListening(sb, port);
    expect((await launchctl(sb, ['print', `${GUI}/sh.brew.ollama`])).code).toBe(0);
    expect((await sb.run('brew', ['services', 'start', 'ollama'])).stdout).toBe('Service `ollama` already started, use `brew services restart ollama` to restart.\n');
    const stopped = await sb.run('brew', ['services', 'stop', 'ollama']);
    expect(stopped.stdout).toBe('Stopping `ollama`... (might take a while)\n==> Successfully stopped `ollama` (label: sh.brew.ollama)\n');
    await waitClosed(sb, port);
    expect((await launchctl(sb, ['print', `${GUI}/sh.brew.ollama`])).code).toBe(113);
    expect(() => readFileSync(sb.plistPath)).toThrow();
  });
});

describe('Ollama.app', () => {
  it('open -a Ollama runs the app with the launchd environment, not the caller\'s; a second open does not restart it', async () => {
    const sb = sandbox({ appInstalled: true });
    const [p1, p2] = [await freePort(), await freePort()];
    await launchctlSetenv(sb, 'OLLAMA_HOST', `127.0.0.1:${p1}`);
    const opened = await sb.run('open', ['-a', 'Ollama', '--args', 'hidden'], { record: true, env: { OLLAMA_HOST: `0.0.0.0:${p2}` } });
    expect(opened).toEqual({ code: 0, stdout: '', stderr: '' });

    const app = await sb.run('pgrep', ['-x', 'Ollama'], { record: true });
    expect(app.code).toBe(0);
    const appPid = Number(app.stdout.trim());
    const l1 = await waitListening(sb, p1);
    const serverPid = l1.listeners[0]?.pid ?? 0;
    expect(l1.listeners).toEqual([expect.objectContaining({ address: '127.0.0.1', command: 'ollama' })]);
    expect(ssListen(p1)).toEqual([`127.0.0.1:${p1}`]);
    expect(ssListen(p2)).toEqual([]);
    expect(await sb.run('pgrep', ['-P', String(appPid)], { record: true })).toEqual({ code: 0, stdout: `${serverPid}\n`, stderr: '' });
    expect(environOf(serverPid).get('OLLAMA_HOST')).toBe(`127.0.0.1:${p1}`);
    expect(environOf(appPid).get('__CFBundleIdentifier')).toBe('com.electron.ollama');
    expect(appProcess(sb)).toEqual({ pid: appPid, serverPid });

    // Already running: nothing restarts, whatever the caller's environment says.
    expect((await sb.run('open', ['-a', 'Ollama'], { record: true, env: { OLLAMA_HOST: `0.0.0.0:${p2}` } })).code).toBe(0);
    await sleep(1500);
    expect(appProcess(sb)).toEqual({ pid: appPid, serverPid });

    expect(sb.transcript()).toEqual([
      { cmd: 'open', args: ['-a', 'Ollama', '--args', 'hidden'] },
      { cmd: 'pgrep', args: ['-x', 'Ollama'] },
      { cmd: 'pgrep', args: ['-P', String(appPid)] },
      { cmd: 'open', args: ['-a', 'Ollama'] },
    ]);
  });

  it('Expose=1 in db.sqlite forces OLLAMA_HOST=0.0.0.0, on the default port, over launchctl setenv', async (ctx) => {
    if (!(await portIsFree(11434))) ctx.skip();
    const sb = sandbox({ appInstalled: true });
    const p1 = await freePort();
    await launchctlSetenv(sb, 'OLLAMA_HOST', `127.0.0.1:${p1}`);
    writeAppSettings(sb, { expose: true });
    await openApp(sb);
    const l = await waitListening(sb, 11434);
    expect(l.listeners).toEqual([expect.objectContaining({ address: '::', port: 11434, family: 6, command: 'ollama' })]);
    expect(ssListen(11434)).toEqual(['*:11434']);
    expect(ssListen(p1)).toEqual([]);
  });

  it('Expose=0 leaves the setenv value alone; a server that dies is restarted after 1 s with the same environment', async () => {
    const sb = sandbox({ appInstalled: true });
    const p1 = await freePort();
    await launchctlSetenv(sb, 'OLLAMA_HOST', `127.0.0.1:${p1}`);
    writeAppSettings(sb, { expose: false });
    await openApp(sb);
    const first = (await waitListening(sb, p1)).listeners[0]?.pid ?? 0;
    const app = appProcess(sb);
    // A later setenv does not reach the running app.
    await launchctlSetenv(sb, 'OLLAMA_HOST', `127.0.0.1:${await freePort()}`);
    process.kill(first, 'SIGKILL');
    const diedAt = Date.now();
    const second = await waitFor(
      async () => {
        const pid = (await lsof(sb, p1)).listeners[0]?.pid;
        return pid !== undefined && pid !== first ? pid : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 50, what: 'the app to restart its server' },
    );
    expect(Date.now() - diedAt).toBeGreaterThanOrEqual(900);
    expect(appProcess(sb)).toEqual({ pid: app?.pid, serverPid: second });
  });

  it('pkill -x Ollama stops the app and its server; pgrep and pkill then find nothing', async () => {
    const sb = sandbox({ appInstalled: true });
    const port = await freePort();
    await launchctlSetenv(sb, 'OLLAMA_HOST', `127.0.0.1:${port}`);
    await openApp(sb);
    await waitListening(sb, port);
    expect((await sb.run('pgrep', ['-x', 'ollama'])).code).toBe(0);
    expect(await sb.run('pkill', ['-x', 'Ollama'])).toEqual({ code: 0, stdout: '', stderr: '' });
    await waitFor(async () => ((await sb.run('pgrep', ['-x', 'Ollama'])).code === 1 ? true : undefined), { timeoutMs: 10_000, intervalMs: 100, what: 'the app to exit' });
    await waitClosed(sb, port);
    expect(await sb.run('pgrep', ['-x', 'ollama'])).toEqual({ code: 1, stdout: '', stderr: '' });
    expect(await sb.run('pkill', ['-x', 'Ollama'])).toEqual({ code: 1, stdout: '', stderr: '' });
    expect(appProcess(sb)).toBeNull();
    // Opening it again starts a fresh app that reads the launchd environment again.
    const p2 = await freePort();
    await launchctlSetenv(sb, 'OLLAMA_HOST', `127.0.0.1:${p2}`);
    await openApp(sb);
    await waitListening(sb, p2);
  });

  it('two copies: open -a picks the registered one by name, open <bundle> that very copy; ps shows where each runs from', async () => {
    const sb = sandbox({ appInstalled: true });
    const port = await freePort();
    await launchctlSetenv(sb, 'OLLAMA_HOST', `127.0.0.1:${port}`);
    const other = installAppAt(sb, path.join(sb.home, 'Tools', 'My Apps', 'Ollama.app'));
    await openAppAt(sb, other);
    await waitListening(sb, port);
    expect(runningAppBundle(sb)).toBe(other);
    const app = appProcess(sb);
    const ps = await sb.run('ps', ['-p', String(app?.pid), '-o', 'command=']);
    expect(ps).toEqual({ code: 0, stdout: `${other}/Contents/MacOS/Ollama hidden\n`, stderr: '' });
    expect((await sb.run('ps', ['aux'])).stdout).toContain(`${other}/Contents/Resources/ollama serve`);
    expect(await sb.run('ps', ['-p', '999999999', '-o', 'command='])).toEqual({ code: 1, stdout: '', stderr: '' });
    await sb.run('pkill', ['-x', 'Ollama']);
    await waitFor(async () => (appProcess(sb) === null ? true : undefined), { timeoutMs: 10_000, intervalMs: 100, what: 'the app to exit' });
    await openApp(sb);
    await waitListening(sb, port);
    expect(runningAppBundle(sb)).toBe(sb.appPath);
    // A path that is not there fails like open(1).
    expect(await sb.run('open', [path.join(sb.home, 'gone', 'Ollama.app')])).toEqual({ code: 1, stdout: '', stderr: `The file ${path.join(sb.home, 'gone', 'Ollama.app')} does not exist.\n` });
  });

  it('a hung app ignores SIGTERM (pkill matches it, it keeps running); SIGINT still ends it', async () => {
    const sb = sandbox({ appInstalled: true });
    const port = await freePort();
    await launchctlSetenv(sb, 'OLLAMA_HOST', `127.0.0.1:${port}`);
    await openApp(sb);
    await waitListening(sb, port);
    const app = appProcess(sb);
    setAppIgnoresTerm(sb, true);
    expect((await sb.run('pkill', ['-x', 'Ollama'])).code).toBe(0);
    await sleep(1500);
    expect(appProcess(sb)).toEqual(app);
    expect((await sb.run('pkill', ['-INT', '-x', 'Ollama'])).code).toBe(0);
    await waitFor(async () => (appProcess(sb) === null ? true : undefined), { timeoutMs: 10_000, intervalMs: 100, what: 'the app to exit' });
  });

  it('a reboot ends every process and the setenv values; at login the agents and the app start in the order asked for', async () => {
    const sb = sandbox({ appInstalled: true });
    const port = await freePort();
    const agent = path.join(sb.home, 'Library', 'LaunchAgents', 'com.example.setenv.plist');
    writeFileSync(agent, `${buildPlist({ Label: 'com.example.setenv', ProgramArguments: ['/bin/launchctl', 'setenv', 'OLLAMA_HOST', `127.0.0.1:${port}`], RunAtLoad: true })}\n`);
    await launchctlSetenv(sb, 'OLLAMA_HOST', '127.0.0.1:1');
    await openApp(sb);
    const before = appProcess(sb);
    // Agents first: the app starts with the agent's value.
    await reboot(sb, { order: 'agents-first' });
    expect(appProcess(sb)?.pid).not.toBe(before?.pid);
    await waitListening(sb, port);
    // App first: it starts before the value exists, so its server listens on Ollama's default;
    // the agent's setenv comes after and does not reach it.
    await reboot(sb, { order: 'app-first' });
    expect((sb.state() as { app: { serverHost: string | null } }).app.serverHost).toBeNull();
    expect((await launchctl(sb, ['getenv', 'OLLAMA_HOST'])).stdout).toBe(`127.0.0.1:${port}\n`);
    expect(ssListen(port)).toEqual([]);
  });

  it('open of an app that is not installed fails like open(1)', async () => {
    const sb = sandbox();
    expect(await sb.run('open', ['-a', 'Ollama'])).toEqual({ code: 1, stdout: '', stderr: "Unable to find application named 'Ollama'\n" });
    expect(await sb.run('pgrep', ['-x', 'Ollama'])).toEqual({ code: 1, stdout: '', stderr: '' });
  });
});

describe('transcript and state', () => {
  it('records the shims a program runs, in order, and concurrent shims share one consistent state', async () => {
    const sb = sandbox({ appInstalled: true });
    const port = await freePort();
    await launchctlSetenv(sb, 'OLLAMA_HOST', `127.0.0.1:${port}`);
    // A command other than a shim (as the product's bundle would be) records what it runs.
    const r = await sb.run('/bin/sh', ['-c', 'brew --version >/dev/null; launchctl getenv OLLAMA_HOST; open -a Ollama & open -a Ollama & open -a Ollama & wait']);
    expect(r).toEqual({ code: 0, stdout: `127.0.0.1:${port}\n`, stderr: '' });
    const t = sb.transcript();
    expect(t.slice(0, 2)).toEqual([
      { cmd: 'brew', args: ['--version'] },
      { cmd: 'launchctl', args: ['getenv', 'OLLAMA_HOST'] },
    ]);
    expect(t.slice(2)).toEqual(Array(3).fill({ cmd: 'open', args: ['-a', 'Ollama'] }));
    // Three concurrent `open`s started one app.
    await waitListening(sb, port);
    expect((await sb.run('pgrep', ['-x', 'Ollama'])).stdout.trim().split('\n')).toHaveLength(1);
  });
});

describe('lsof', () => {
  it('reads every listener from the kernel, in lsof\'s layout, and says nothing when there is none', async () => {
    const sb = sandbox();
    const port = await freePort();
    expect(await lsof(sb, port)).toEqual({ code: 1, stdout: '', listeners: [] });
    // A listener outside the sandbox is still listed (lsof is not scoped), as `node`.
    const outside = await startStandin({ ollamaHost: `[::1]:${port}` });
    standins.push(outside);
    const l = await lsof(sb, port);
    expect(l.code).toBe(0);
    expect(l.listeners).toEqual([{ address: '::1', port, family: 6, pid: outside.child.pid, command: 'node', user: os.userInfo().username }]);
    expect(l.stdout).toContain(`TCP [::1]:${port} (LISTEN)`);
    expect(ssListen(port)).toEqual([`[::1]:${port}`]);
    // -t: pids only; without -n the loopback name is "localhost".
    expect((await sb.run('lsof', ['-t', `-iTCP:${port}`, '-sTCP:LISTEN'])).stdout).toBe(`${outside.child.pid}\n`);
    expect((await sb.run('lsof', ['-P', `-iTCP:${port}`, '-sTCP:LISTEN'])).stdout).toContain(`TCP localhost:${port} (LISTEN)`);
  });
});

describe('docker (Docker Desktop)', () => {
  async function probe(sb: Sandbox, port: number): Promise<Record<string, unknown>> {
    const r = await sb.run('docker', ['run', '--rm', '--pull=never', 'python:3.11-slim', 'python3', '-c', PROBE_SCRIPT, `http://host.docker.internal:${port}`]);
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
  }

  it('answers the facts doctor asks for, and forwards host.docker.internal to the Mac\'s loopback', async () => {
    const sb = sandbox({ runtime: 'forward-loopback' });
    expect(await sb.run('docker', ['info', '--format', '{{.OperatingSystem}}|{{.Name}}|{{.ServerVersion}}|{{.KernelVersion}}'], { record: true })).toEqual({
      code: 0,
      stdout: 'Docker Desktop|docker-desktop|28.3.2|6.10.14-linuxkit\n',
      stderr: '',
    });
    expect(await sb.run('docker', ['inspect', '--type', 'container', 'stigmer-agent-runner'], { record: true })).toEqual({
      code: 1,
      stdout: '[]\n',
      stderr: 'Error response from daemon: No such container: stigmer-agent-runner\n',
    });
    expect(await sb.run('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}'], { record: true })).toEqual({ code: 0, stdout: 'python:3.11-slim\n', stderr: '' });
    expect(await sb.run('docker', ['run', '--rm', '--pull=never', 'python:3.12-slim', 'python3', '-c', 'print(1)'])).toEqual({
      code: 125,
      stdout: '',
      stderr: "docker: Error response from daemon: No such image: python:3.12-slim\n\nRun 'docker run --help' for more information\n",
    });

    const port = await freePort();
    standins.push(await startStandin({ ollamaHost: `127.0.0.1:${port}` }));
    expect(await probe(sb, port)).toMatchObject({ outcome: 'ok', address: '192.168.65.254', status: 200, models: 1, foreignHostStatus: 403 });
    // The container's own loopback is not the Mac's.
    const local = await sb.run('docker', ['run', '--rm', '--pull=never', 'python:3.11-slim', 'python3', '-c', PROBE_SCRIPT, `http://localhost:${port}`]);
    expect(JSON.parse(local.stdout)).toMatchObject({ outcome: 'refused' });
    expect(sb.transcript().map((t) => t.args[0])).toEqual(['info', 'inspect', 'image']);
  });

  it('no-forward: a loopback-only Ollama is refused, a 0.0.0.0 one answers', async () => {
    const sb = sandbox({ runtime: 'no-forward' });
    const [loop, wild] = [await freePort(), await freePort()];
    standins.push(await startStandin({ ollamaHost: `127.0.0.1:${loop}` }));
    standins.push(await startStandin({ ollamaHost: `0.0.0.0:${wild}` }));
    expect(await probe(sb, loop)).toMatchObject({ outcome: 'refused', address: '192.168.65.254' });
    expect(await probe(sb, wild)).toMatchObject({ outcome: 'ok', foreignHostStatus: 200 });
  });

  it('none: Docker Desktop is not running', async () => {
    const sb = sandbox({ runtime: 'none' });
    const r = await sb.run('docker', ['info', '--format', '{{.OperatingSystem}}']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `failed to connect to the docker API at unix://${sb.home}/.docker/run/docker.sock; check if the path is correct and if the daemon is running: dial unix ${sb.home}/.docker/run/docker.sock: connect: no such file or directory\n`,
    );
  });
});
