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
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { environmentVariables, readPlistDict } from '../../platforms/darwin/plist-file.ts';
import { BUNDLE, type JsonReport } from './cli.ts';
import { brewServicesStart, createSandbox, launchctl, openApp, type Sandbox, type SandboxOptions } from '../support/macos/sandbox.mjs';
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
      { type: 'command', argv: ['open', '-a', 'Ollama', '--args', 'hidden'], applied: true },
    ]);
    expect(changing(sb)).toEqual([`launchctl setenv OLLAMA_HOST 0.0.0.0:${PORT}`, 'pkill -x Ollama', 'open -a Ollama --args hidden']);
    await waitListening(WILDCARD);
    expect(readPlistDict(readFileSync(agent), 'agent')).toEqual({ Label: 'com.stigmer.ollama-host', ProgramArguments: ['/bin/launchctl', 'setenv', 'OLLAMA_HOST', `0.0.0.0:${PORT}`], RunAtLoad: true });

    // At the next login launchd loads the agent, which sets the variable again: it lasts a reboot.
    await launchctl(sb, ['unsetenv', 'OLLAMA_HOST']);
    await launchctl(sb, ['bootstrap', `gui/${uid}`, agent]);
    expect((await launchctl(sb, ['getenv', 'OLLAMA_HOST'])).stdout).toBe(`0.0.0.0:${PORT}\n`);

    sb.clearTranscript();
    expect(cli(sb, ['--yes']).report.changes).toEqual([]);
    expect(changing(sb)).toEqual([]);

    const undo = cli(sb, ['undo', '--yes']);
    expect(undo.code, undo.stderr).toBe(0);
    expect(existsSync(agent)).toBe(false);
    expect((await launchctl(sb, ['getenv', 'OLLAMA_HOST'])).stdout).toBe('');
    await waitListening(/^127\.0\.0\.1:11434$/);
  });
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

