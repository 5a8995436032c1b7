/**
 * macOS, the seed's own case, in the sandbox (test/support/macos): the built CLI runs with
 * `--platform darwin`, HOME pointed at a sandbox home, and shims for launchctl, brew, lsof, ps,
 * open, pkill, sw_vers and docker that behave like the real tools (bootstrap reads the plist's
 * EnvironmentVariables plus setenv; brew regenerates its plist on restart and merges the env file
 * from 6.0.15; `open -a Ollama` starts the app with launchd's environment). The stand-in Ollama,
 * the kernel's sockets and the files are real.
 *
 * For each way Ollama is installed (Homebrew 4.x: the plist; Homebrew 6.1: the env file; the
 * app): setup makes the stand-in listen on every interface, keeps every other plist key, a second
 * run changes nothing, and undo brings back the original bytes and the loopback bind. Each pins
 * its commands (a golden transcript). These tests need port 11434, Ollama's default.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { environmentVariables, readPlistDict } from '../../platforms/darwin/plist-file.ts';
import { BUNDLE, type JsonReport } from './cli.ts';
import { AGENT_SCRIPT } from '../../platforms/darwin/app.ts';
import { appProcess, brewServicesStart, buildPlist, createSandbox, installAppAt, launchctl, openApp, openAppAt, reboot, runningAppBundle, setAppIgnoresTerm, type Sandbox, type SandboxOptions } from '../support/macos/sandbox.mjs';
import { waitFor } from './support/shell.ts';

const PORT = 11434;
const uid = process.getuid?.() ?? 0;
const sandboxes: { sb: Sandbox; root: string }[] = [];

function sandbox(options: Partial<SandboxOptions> = {}): Sandbox & { root: string } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'stigmer-macos-e2e-'));
  const sb = createSandbox({ dir: path.join(root, 'sandbox'), home: path.join(root, 'home'), runtime: 'no-forward', ...options });
  sandboxes.push({ sb, root });
  return Object.assign(sb, { root: path.join(root, 'root') });
}

afterEach(async () => {
  for (const { sb, root } of sandboxes.splice(0)) {
    await sb.killAll();
    rmSync(root, { recursive: true, force: true });
  }
});

beforeAll(async () => {
  // Ollama's default port must be free on this machine: every server here binds it.
  const free = await new Promise<boolean>((resolve) => {
    const server = net.createServer().once('error', () => resolve(false)).listen(PORT, '127.0.0.1', () => server.close(() => resolve(true)));
  });
  if (!free) throw new Error(`port ${PORT} is in use on this machine; the macOS sandbox tests need it free`);
});

interface Run {
  code: number | null;
  report: JsonReport & { error?: string; summary?: string; warnings: string[] };
  stderr: string;
}

/** The CLI, as a person on that Mac runs it (no sudo), with --json. */
function cli(sb: Sandbox & { root: string }, args: string[]): Run {
  spawnSync('mkdir', ['-p', sb.root]);
  const result = spawnSync(process.execPath, [BUNDLE, ...args, '--json', '--platform', 'darwin', '--root', sb.root], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...sb.env, SUDO_USER: undefined } as NodeJS.ProcessEnv,
  });
  let report: Run['report'];
  try {
    report = JSON.parse(result.stdout);
  } catch {
    throw new Error(`not one JSON object (exit ${result.status}):\n${result.stdout}\n--- stderr ---\n${result.stderr}`);
  }
  return { code: result.status, report, stderr: result.stderr };
}

/** What `ss` (the kernel, independently of any shim) shows listening on the port. */
function listening(): string[] {
  const ss = spawnSync('ss', ['-ltnH', `sport = :${PORT}`], { encoding: 'utf8', timeout: 10_000 });
  return ss.stdout.split('\n').filter(Boolean).map((line) => line.trim().split(/\s+/)[3] as string);
}
const WILDCARD = /^(\*|\[::\]|0\.0\.0\.0):11434$/;

async function waitListening(pattern: RegExp): Promise<void> {
  await waitFor(async () => (listening().some((address) => pattern.test(address)) ? true : undefined), { timeoutMs: 30_000, intervalMs: 100, what: `a listener matching ${pattern}` });
}

/** The commands that change something, in order (reads run concurrently, so their order is not pinned). */
function changing(sb: Sandbox): string[] {
  const reads = /^(brew (--version|services info|list --versions)|launchctl (print|getenv)|lsof|ps|sw_vers|docker|pgrep)/;
  return sb
    .transcript()
    .map(({ cmd, args }) => [cmd, ...args].join(' ').replaceAll(sb.home, '~').replaceAll(`gui/${uid}`, 'gui/$UID'))
    .filter((line) => !reads.test(line));
}

describe('Homebrew 4.x: the plist, as in the seed', () => {
  it('setup adds OLLAMA_HOST to the plist, keeps every other key, reloads with bootout/bootstrap; a second run changes nothing; undo restores the bytes and loopback', async () => {
    const sb = sandbox({ brewVersion: '4.4.6' });
    await brewServicesStart(sb);
    await waitListening(/^127\.0\.0\.1:11434$/);
    const original = readFileSync(sb.plistPath);
    sb.clearTranscript();

    const setup = cli(sb, ['--yes']);
    expect(setup.code, setup.stderr).toBe(0);
    expect(setup.report.ok).toBe(true);
    expect(setup.report.strategy).toBe('darwin-brew');
    expect(setup.report.changes).toEqual([
      expect.objectContaining({ type: 'file', path: sb.plistPath, action: 'modify', applied: true }),
      { type: 'command', argv: ['launchctl', 'bootout', `gui/${uid}/homebrew.mxcl.ollama`], applied: true },
      { type: 'command', argv: ['launchctl', 'bootstrap', `gui/${uid}`, sb.plistPath], applied: true },
    ]);
    expect(setup.report.warnings.join(' ')).toContain('`brew services start ollama` and `brew services restart ollama` rewrite');
    // The golden transcript: the reload, the modern way; never the legacy load/unload.
    expect(changing(sb)).toEqual(['launchctl bootout gui/$UID/homebrew.mxcl.ollama', 'launchctl bootstrap gui/$UID ~/Library/LaunchAgents/homebrew.mxcl.ollama.plist']);
    await waitListening(WILDCARD);
    const before = readPlistDict(original, 'before');
    const after = readPlistDict(readFileSync(sb.plistPath), 'after');
    expect(environmentVariables(after)).toEqual({ ...environmentVariables(before), OLLAMA_HOST: `0.0.0.0:${PORT}` });
    expect({ ...after, EnvironmentVariables: null }).toEqual({ ...before, EnvironmentVariables: null });
    expect(setup.report.checks.find((check) => check.id === 'container.probe')?.status).toBe('ok');

    sb.clearTranscript();
    const again = cli(sb, ['--yes']);
    expect(again.code).toBe(0);
    expect(again.report.changes).toEqual([]);
    expect(changing(sb)).toEqual([]);

    const undo = cli(sb, ['undo', '--yes']);
    expect(undo.code, undo.stderr).toBe(0);
    expect(readFileSync(sb.plistPath).equals(original)).toBe(true);
    await waitListening(/^127\.0\.0\.1:11434$/);
    // The state lives in the user's own Library: nothing under --root, nothing root-owned at home.
    expect(existsSync(path.join(sb.home, 'Library', 'Application Support', 'stigmer-setup'))).toBe(true);
  });

  it('a malformed plist gives exit 1, names the file, and changes nothing', async () => {
    const sb = sandbox({ brewVersion: '4.4.6' });
    await brewServicesStart(sb);
    await waitListening(/^127\.0\.0\.1:11434$/);
    writeFileSync(sb.plistPath, readFileSync(sb.plistPath, 'utf8').slice(0, 300));
    const damaged = readFileSync(sb.plistPath);
    sb.clearTranscript();
    const setup = cli(sb, ['--yes']);
    expect(setup.code).toBe(1);
    expect(setup.report.error).toContain(`${sb.plistPath} is not a valid property list`);
    expect(setup.report.changes).toEqual([]);
    expect(changing(sb)).toEqual([]);
    expect(readFileSync(sb.plistPath).equals(damaged)).toBe(true);
    expect(listening()).toEqual(['127.0.0.1:11434']);
  });
});

describe('Homebrew 6.1: the env file, which lasts', () => {
  it('setup writes ~/.homebrew/services/ollama.env (0600) and restarts with brew; the plist is brew\'s; a second run changes nothing; undo removes it', async () => {
    const sb = sandbox({ brewVersion: '6.1.0' });
    await brewServicesStart(sb);
    await waitListening(/^127\.0\.0\.1:11434$/);
    const originalPlist = readFileSync(sb.plistPath);
    const envFile = path.join(sb.home, '.homebrew', 'services', 'ollama.env');
    sb.clearTranscript();

    const setup = cli(sb, ['--yes']);
    expect(setup.code, setup.stderr).toBe(0);
    expect(setup.report.ok).toBe(true);
    expect(setup.report.changes).toEqual([
      expect.objectContaining({ type: 'file', path: envFile, action: 'create', mode: '0600', applied: true }),
      { type: 'command', argv: ['brew', 'services', 'restart', 'ollama'], applied: true },
    ]);
    expect(changing(sb)).toEqual(['brew services restart ollama']);
    expect(readFileSync(envFile, 'utf8')).toBe(`OLLAMA_HOST=0.0.0.0:${PORT}\n`);
    expect(statSync(envFile).mode & 0o777).toBe(0o600);
    await waitListening(WILDCARD);
    // brew merged the env file into the plist it regenerated; the formula's keys are still there.
    expect(environmentVariables(readPlistDict(readFileSync(sb.plistPath), 'plist'))).toMatchObject({ OLLAMA_HOST: `0.0.0.0:${PORT}`, OLLAMA_FLASH_ATTENTION: '1', OLLAMA_KV_CACHE_TYPE: 'q8_0' });
    expect(setup.report.warnings).toEqual([]);

    sb.clearTranscript();
    expect(cli(sb, ['--yes']).report.changes).toEqual([]);
    expect(changing(sb)).toEqual([]);

    const undo = cli(sb, ['undo', '--yes']);
    expect(undo.code, undo.stderr).toBe(0);
    expect(existsSync(envFile)).toBe(false);
    await waitListening(/^127\.0\.0\.1:11434$/);
    expect(readFileSync(sb.plistPath).equals(originalPlist)).toBe(true);
  });

  it('with a runtime that already reaches loopback (Docker Desktop), setup changes nothing and says why', async () => {
    const sb = sandbox({ brewVersion: '6.1.0', runtime: 'forward-loopback' });
    await brewServicesStart(sb);
    await waitListening(/^127\.0\.0\.1:11434$/);
    sb.clearTranscript();
    const setup = cli(sb, ['--yes']);
    expect(setup.code, setup.stderr).toBe(0);
    expect(setup.report.changes).toEqual([]);
    expect(setup.report.summary).toContain('so binding 0.0.0.0 would only expose Ollama to your network');
    expect(changing(sb)).toEqual([]);
    expect(listening()).toEqual(['127.0.0.1:11434']);
  });
});

describe('Ollama.app', () => {
  it('setup sets OLLAMA_HOST for apps, adds the login agent, restarts the app; a second run changes nothing; undo unsets it and restores loopback', async () => {
    const sb = sandbox({ brewInstalled: false, appInstalled: true });
    await openApp(sb);
    await waitListening(/^127\.0\.0\.1:11434$/);
    const agent = path.join(sb.home, 'Library', 'LaunchAgents', 'com.stigmer.ollama-host.plist');
    sb.clearTranscript();

    const setup = cli(sb, ['--yes']);
    expect(setup.code, setup.stderr + JSON.stringify(setup.report, null, 2)).toBe(0);
    expect(setup.report.strategy).toBe('darwin-app');
    expect(setup.report.changes).toEqual([
      { type: 'setting', store: 'launchd-env', key: 'OLLAMA_HOST', before: null, after: `0.0.0.0:${PORT}`, argv: ['launchctl', 'setenv', 'OLLAMA_HOST', `0.0.0.0:${PORT}`], applied: true },
      expect.objectContaining({ type: 'file', path: agent, action: 'create', applied: true }),
      { type: 'command', argv: ['pkill', '-x', 'Ollama'], applied: true },
      { type: 'command', argv: ['open', sb.appPath, '--args', 'hidden'], applied: true },
    ]);
    expect(changing(sb)).toEqual([`launchctl setenv OLLAMA_HOST 0.0.0.0:${PORT}`, 'pkill -x Ollama', `open ${sb.appPath.replace(sb.home, '~')} --args hidden`]);
    await waitListening(WILDCARD);
    expect(readPlistDict(readFileSync(agent), 'agent')).toEqual({ Label: 'com.stigmer.ollama-host', ProgramArguments: ['/bin/sh', '-c', AGENT_SCRIPT, 'com.stigmer.ollama-host', `0.0.0.0:${PORT}`], RunAtLoad: true });

    sb.clearTranscript();
    expect(cli(sb, ['--yes']).report.changes).toEqual([]);
    expect(changing(sb)).toEqual([]);

    const undo = cli(sb, ['undo', '--yes']);
    expect(undo.code, undo.stderr).toBe(0);
    expect(existsSync(agent)).toBe(false);
    expect((await launchctl(sb, ['getenv', 'OLLAMA_HOST'])).stdout).toBe('');
    await waitListening(/^127\.0\.0\.1:11434$/);
  });

  it('a foreign listener on [::1]:11434 (an ssh -L tunnel) does not stop setup or undo: the restart waits for the app\'s pids, not for the port', async () => {
    const sb = sandbox({ brewInstalled: false, appInstalled: true, runtime: 'forward-loopback' });
    // A Mac without Homebrew at all, as many app users have: no brew on PATH.
    rmSync(path.join(sb.shimDir, 'brew'));
    await openApp(sb);
    await waitListening(/^127\.0\.0\.1:11434$/);
    // Someone else's listener on the same port, another address, in its own process (like ssh, it
    // closes what it accepts: nothing is forwarded). It stays for the whole test.
    const tunnel = spawn(process.execPath, ['-e', `require('node:net').createServer((s) => s.destroy()).listen({ host: '::1', port: ${PORT}, ipv6Only: true }, () => console.log('listening'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        tunnel.stdout?.once('data', () => resolve());
        tunnel.once('exit', (code) => reject(new Error(`the [::1]:${PORT} listener exited ${code}`)));
      });
      expect(listening()).toEqual(expect.arrayContaining(['[::1]:11434', '127.0.0.1:11434']));
      // A specific address: on Linux a wildcard bind would clash with [::1]:11434 (a Mac allows both).
      const setup = cli(sb, ['--yes', '--host', `127.0.0.1:${PORT}`]);
      expect(setup.code, setup.stderr + JSON.stringify(setup.report, null, 2)).toBe(0);
      expect(setup.report.changes.at(-1)).toEqual({ type: 'command', argv: ['open', sb.appPath, '--args', 'hidden'], applied: true });
      expect((await launchctl(sb, ['getenv', 'OLLAMA_HOST'])).stdout).toBe(`127.0.0.1:${PORT}\n`);
      const undo = cli(sb, ['undo', '--yes']);
      expect(undo.code, undo.stderr + JSON.stringify(undo.report, null, 2)).toBe(0);
      expect((await launchctl(sb, ['getenv', 'OLLAMA_HOST'])).stdout).toBe('');
      await waitListening(/^127\.0\.0\.1:11434$/);
      expect(appProcess(sb)).not.toBeNull();
    } finally {
      tunnel.kill('SIGKILL');
    }
  }, 120_000);

  it('an app running from a folder other than ~/Applications (with a space in its path) is started again from there, by setup and by undo', async () => {
    // ~/Applications holds another copy, the one `open -a Ollama` would pick by name.
    const sb = sandbox({ brewInstalled: false, appInstalled: true });
    const custom = installAppAt(sb, path.join(sb.home, 'Tools', 'My Apps', 'Ollama.app'));
    await openAppAt(sb, custom);
    await waitListening(/^127\.0\.0\.1:11434$/);
    expect(runningAppBundle(sb)).toBe(custom);
    const setup = cli(sb, ['--yes']);
    expect(setup.code, setup.stderr + JSON.stringify(setup.report, null, 2)).toBe(0);
    await waitListening(WILDCARD);
    expect(runningAppBundle(sb)).toBe(custom);
    const undo = cli(sb, ['undo', '--yes']);
    expect(undo.code, undo.stderr).toBe(0);
    await waitListening(/^127\.0\.0\.1:11434$/);
    expect(runningAppBundle(sb)).toBe(custom);
  });

  it('an app whose bundle is gone is refused before anything is stopped: exit 1, nothing changed, the app still runs', async () => {
    const sb = sandbox({ brewInstalled: false, appInstalled: true, appPath: path.join(os.tmpdir(), `stigmer-gone-${process.pid}`, 'Ollama.app') });
    await openApp(sb);
    await waitListening(/^127\.0\.0\.1:11434$/);
    const before = appProcess(sb);
    rmSync(path.dirname(sb.appPath), { recursive: true, force: true });
    sb.clearTranscript();
    const setup = cli(sb, ['--yes']);
    expect(setup.code).toBe(1);
    expect(setup.report.error).toContain(`runs from ${JSON.stringify(sb.appPath)}, but it is not there any more`);
    expect(setup.report.error).toContain('Nothing was stopped.');
    expect(changing(sb)).toEqual([]);
    expect(existsSync(path.join(sb.home, 'Library', 'LaunchAgents', 'com.stigmer.ollama-host.plist'))).toBe(false);
    expect(appProcess(sb)).toEqual(before);
    expect(listening()).toEqual(['127.0.0.1:11434']);
  });

  it('undo, when the running app\'s bundle is gone, is refused before it changes anything, and the app still runs', async () => {
    const sb = sandbox({ brewInstalled: false, appInstalled: true, appPath: path.join(os.tmpdir(), `stigmer-gone-undo-${process.pid}`, 'Ollama.app') });
    await openApp(sb);
    await waitListening(/^127\.0\.0\.1:11434$/);
    expect(cli(sb, ['--yes']).code).toBe(0);
    await waitListening(WILDCARD);
    const agent = path.join(sb.home, 'Library', 'LaunchAgents', 'com.stigmer.ollama-host.plist');
    const agentBytes = readFileSync(agent);
    const before = appProcess(sb);
    rmSync(path.dirname(sb.appPath), { recursive: true, force: true });
    sb.clearTranscript();
    const undo = cli(sb, ['undo', '--yes']);
    expect(undo.code).toBe(1);
    expect(undo.report.error).toContain('but it is not there any more');
    expect(undo.report.error).toMatch(/Nothing was stopped\..* Nothing was changed\.$/);
    expect(changing(sb)).toEqual([]);
    expect(readFileSync(agent).equals(agentBytes)).toBe(true);
    expect((await launchctl(sb, ['getenv', 'OLLAMA_HOST'])).stdout).toBe(`0.0.0.0:${PORT}\n`);
    expect(appProcess(sb)).toEqual(before);
  });

  it('an app that ignores SIGTERM: the wait times out, the app is opened again anyway, the rollback too, and the message says what happened', async () => {
    const sb = sandbox({ brewInstalled: false, appInstalled: true });
    await openApp(sb);
    await waitListening(/^127\.0\.0\.1:11434$/);
    const before = appProcess(sb);
    setAppIgnoresTerm(sb, true);
    sb.clearTranscript();
    const setup = cli(sb, ['--yes']);
    expect(setup.code).toBe(1);
    expect(setup.report.error).toMatch(/^Ollama \(pid \d+, \d+\) was still running 15 s after `pkill -x Ollama`, so it did not restart and keeps the settings it started with; `open .*Ollama\.app --args hidden` ran, so it keeps running\./);
    // setup's restart and the rollback's: each ends with open.
    expect(changing(sb)).toEqual([
      `launchctl setenv OLLAMA_HOST 0.0.0.0:${PORT}`,
      'pkill -x Ollama',
      `open ${sb.appPath.replace(sb.home, '~')} --args hidden`,
      'launchctl unsetenv OLLAMA_HOST',
      'pkill -x Ollama',
      `open ${sb.appPath.replace(sb.home, '~')} --args hidden`,
    ]);
    expect(appProcess(sb)).toEqual(before);
    expect((await launchctl(sb, ['getenv', 'OLLAMA_HOST'])).stdout).toBe('');
    expect(existsSync(path.join(sb.home, 'Library', 'LaunchAgents', 'com.stigmer.ollama-host.plist'))).toBe(false);
    expect(listening()).toEqual(['127.0.0.1:11434']);
  }, 120_000);
});

describe('Ollama.app after a reboot, whichever login item runs first', () => {
  it('the app listens where setup configured it after a reboot where the agent runs first, and one where the app does', async () => {
    const sb = sandbox({ brewInstalled: false, appInstalled: true });
    await openApp(sb);
    await waitListening(/^127\.0\.0\.1:11434$/);
    const setup = cli(sb, ['--yes']);
    expect(setup.code, setup.stderr).toBe(0);
    await waitListening(WILDCARD);

    await reboot(sb, { order: 'agents-first' });
    await waitListening(WILDCARD);
    expect((sb.state() as { app: { serverHost: string } }).app.serverHost).toBe(`0.0.0.0:${PORT}`);

    // The app comes up first, on loopback (no OLLAMA_HOST yet); the agent then starts it again.
    await reboot(sb, { order: 'app-first' });
    await waitListening(WILDCARD);
    expect((sb.state() as { app: { serverHost: string } }).app.serverHost).toBe(`0.0.0.0:${PORT}`);
    expect(runningAppBundle(sb)).toBe(sb.appPath);
    const doctor = cli(sb, ['doctor']);
    expect(JSON.stringify(doctor.report.checks)).not.toContain('runs without the OLLAMA_HOST');
  }, 120_000);

  it('with the agent earlier versions wrote (setenv only), app first leaves loopback; doctor names the one command, which fixes it', async () => {
    const sb = sandbox({ brewInstalled: false, appInstalled: true });
    await openApp(sb);
    await waitListening(/^127\.0\.0\.1:11434$/);
    expect(cli(sb, ['--yes']).code).toBe(0);
    const agent = path.join(sb.home, 'Library', 'LaunchAgents', 'com.stigmer.ollama-host.plist');
    writeFileSync(agent, `${buildPlist({ Label: 'com.stigmer.ollama-host', ProgramArguments: ['/bin/launchctl', 'setenv', 'OLLAMA_HOST', `0.0.0.0:${PORT}`], RunAtLoad: true })}\n`);
    await reboot(sb, { order: 'app-first' });
    await waitListening(/^127\.0\.0\.1:11434$/);
    expect((await launchctl(sb, ['getenv', 'OLLAMA_HOST'])).stdout).toBe(`0.0.0.0:${PORT}\n`);
    const doctor = cli(sb, ['doctor']);
    const finding = doctor.report.checks.find((check) => String(check.message).includes('runs without the OLLAMA_HOST it was configured with'));
    expect(finding, JSON.stringify(doctor.report.checks, null, 2)).toMatchObject({ status: 'warn', fix: `npx stigmer-setup --yes --host 0.0.0.0:${PORT}` });
    const fix = cli(sb, ['--yes', '--host', `0.0.0.0:${PORT}`]);
    expect(fix.code, fix.stderr + JSON.stringify(fix.report, null, 2)).toBe(0);
    await waitListening(WILDCARD);
    // The fix also wrote the current agent, so the next reboot is right in either order.
    expect(readPlistDict(readFileSync(agent), 'agent').ProgramArguments).toEqual(['/bin/sh', '-c', AGENT_SCRIPT, 'com.stigmer.ollama-host', `0.0.0.0:${PORT}`]);
  }, 120_000);
});

describe('Homebrew and the app both installed', () => {
  it('doctor reports both, names the one that owns the port, and gives the command that stops the other', async () => {
    const sb = sandbox({ brewVersion: '6.1.0', appInstalled: true });
    await brewServicesStart(sb);
    await waitListening(/^127\.0\.0\.1:11434$/);
    const doctor = cli(sb, ['doctor']);
    expect(doctor.report.strategy).toBe('darwin-brew');
    const config = doctor.report.checks.find((check) => check.id === 'ollama.conflict');
    expect(config?.status).toBe('warn');
    expect(config?.message).toMatch(/Ollama is installed 2 ways here: Homebrew service ollama \(homebrew\.mxcl\.ollama, Homebrew 6\.1\.0\); Ollama\.app \(.*\), not running\. pid \d+: ollama .* holds port 11434\./);
    expect(config?.fix).toBe('Keep one. To stop the other: pkill -x Ollama   # and turn Ollama off in System Settings → General → Login Items');
  });
});

