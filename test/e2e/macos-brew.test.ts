/**
 * Homebrew on macOS, in the sandbox (test/support/macos): the env file read the way brew reads it,
 * edited byte for byte, and a failed `brew services restart` that still ends with Ollama running.
 * The brew shim applies ~/.homebrew/services/ollama.env with its own model of brew's Ruby
 * (test/support/macos/brew-env.mjs), not with the product's parser, so "Ollama listens on every
 * interface" below is brew's verdict on the file setup wrote. These tests need port 11434.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, type JsonReport } from './cli.ts';
import { brewServicesStart, createSandbox, launchdJob, openApp, type Sandbox, type SandboxOptions } from '../support/macos/sandbox.mjs';
import { waitFor } from './support/shell.ts';

const PORT = 11434;
const sandboxes: { sb: Sandbox; root: string }[] = [];

function sandbox(options: Partial<SandboxOptions> = {}): Sandbox & { root: string } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'stigmer-macos-brew-e2e-'));
  const sb = createSandbox({ dir: path.join(root, 'sandbox'), home: path.join(root, 'home'), runtime: 'no-forward', brewVersion: '6.1.0', ...options });
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
  const free = await new Promise<boolean>((resolve) => {
    const server = net.createServer().once('error', () => resolve(false)).listen(PORT, '127.0.0.1', () => server.close(() => resolve(true)));
  });
  if (!free) throw new Error(`port ${PORT} is in use on this machine; the macOS sandbox tests need it free`);
});

interface Run {
  code: number | null;
  report: JsonReport & { error?: string; summary?: string; warnings: string[]; blockers?: { message: string; fix: string }[] };
  stdout: string;
  stderr: string;
}

function cli(sb: Sandbox & { root: string }, args: string[]): Run {
  spawnSync('mkdir', ['-p', sb.root]);
  const result = spawnSync(process.execPath, [BUNDLE, ...args, '--json', '--platform', 'darwin', '--root', sb.root], {
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...sb.env, SUDO_USER: undefined } as NodeJS.ProcessEnv,
  });
  let report: Run['report'];
  try {
    report = JSON.parse(result.stdout);
  } catch {
    throw new Error(`not one JSON object (exit ${result.status}):\n${result.stdout.slice(0, 2000)}\n--- stderr ---\n${result.stderr.slice(0, 4000)}`);
  }
  return { code: result.status, report, stdout: result.stdout, stderr: result.stderr };
}

function listening(): string[] {
  const ss = spawnSync('ss', ['-ltnH', `sport = :${PORT}`], { encoding: 'utf8', timeout: 10_000 });
  return ss.stdout.split('\n').filter(Boolean).map((line) => line.trim().split(/\s+/)[3] as string);
}
const WILDCARD = /^(\*|\[::\]|0\.0\.0\.0):11434$/;
const LOOPBACK = /^127\.0\.0\.1:11434$/;

async function waitListening(pattern: RegExp): Promise<void> {
  await waitFor(async () => (listening().some((address) => pattern.test(address)) ? true : undefined), { timeoutMs: 30_000, intervalMs: 100, what: `a listener matching ${pattern}` });
}

function envFile(sb: Sandbox): string {
  return path.join(sb.home, '.homebrew', 'services', 'ollama.env');
}

function writeEnvFile(sb: Sandbox, content: Buffer): void {
  mkdirSync(path.dirname(envFile(sb)), { recursive: true });
  writeFileSync(envFile(sb), content, { mode: 0o600 });
}

describe('the env file, as brew reads it', () => {
  it('`export OLLAMA_HOST=…` is not applied by brew; setup says so, replaces only that line (CRLF, a BOM on another line and a missing final newline kept), and undo restores the bytes', async () => {
    const sb = sandbox();
    const before = Buffer.concat([Buffer.from('\uFEFF# my settings\r\n'), Buffer.from(`export OLLAMA_HOST=0.0.0.0:${PORT}\r\n`), Buffer.from('OLLAMA_MODELS=/Volumes/big/models')]);
    writeEnvFile(sb, before);
    await brewServicesStart(sb);
    // brew applied the line as a variable named "export OLLAMA_HOST": Ollama is on loopback.
    await waitListening(LOOPBACK);
    expect(launchdJob(sb)?.environment).toMatchObject({ 'export OLLAMA_HOST': `0.0.0.0:${PORT}` });

    const doctor = cli(sb, ['doctor']);
    const finding = doctor.report.checks.find((check) => check.message.includes('line 2'));
    expect(finding?.message).toContain(`${envFile(sb)} line 2 ("export OLLAMA_HOST=0.0.0.0:${PORT}") sets a variable named "export OLLAMA_HOST", not OLLAMA_HOST`);

    const setup = cli(sb, ['--yes']);
    expect(setup.code, setup.stderr).toBe(0);
    expect(setup.report.warnings.join(' ')).toContain('line 2 set a variable named "export OLLAMA_HOST"');
    const after = Buffer.concat([Buffer.from('\uFEFF# my settings\r\n'), Buffer.from(`OLLAMA_HOST=0.0.0.0:${PORT}\r\n`), Buffer.from('OLLAMA_MODELS=/Volumes/big/models')]);
    expect(readFileSync(envFile(sb)).equals(after)).toBe(true);
    await waitListening(WILDCARD);

    const undo = cli(sb, ['undo', '--yes']);
    expect(undo.code, undo.stderr).toBe(0);
    expect(readFileSync(envFile(sb)).equals(before)).toBe(true);
    await waitListening(LOOPBACK);
  });

  it('a file brew cannot read (a Latin-1 byte in a comment) is refused before anything changes: brew would stop Ollama and fail to start it', async () => {
    const sb = sandbox();
    await brewServicesStart(sb);
    await waitListening(LOOPBACK);
    // Written after the service started, as a user editing the file would.
    const before = Buffer.concat([Buffer.from('# caf'), Buffer.from([0xe9]), Buffer.from('\nOLLAMA_MODELS=/Volumes/big/models\n')]);
    writeEnvFile(sb, before);
    const setup = cli(sb, ['--yes']);
    expect(setup.code).toBe(1);
    expect(setup.report.changes).toEqual([]);
    expect(JSON.stringify(setup.report)).toContain(`line 1 is not UTF-8`);
    expect(readFileSync(envFile(sb)).equals(before)).toBe(true);
    expect(listening()).toEqual(['127.0.0.1:11434']);
  });

  it('a 30,000-line env file: --dry-run --json prints exactly one object', async () => {
    const sb = sandbox();
    await brewServicesStart(sb);
    await waitListening(LOOPBACK);
    const lines = Array.from({ length: 30_000 }, (_, i) => `OLLAMA_X_${i}=${'v'.repeat(3)}`);
    writeEnvFile(sb, Buffer.from(`${lines.join('\n')}\n`));
    const run = cli(sb, ['--dry-run']);
    expect(run.code, run.stderr.slice(0, 2000)).toBe(0);
    expect(run.report.changes).toEqual([expect.objectContaining({ type: 'file', path: envFile(sb), action: 'modify' }), expect.objectContaining({ type: 'command' })]);
  });
});

describe('brew services info for a formula that is not installed', () => {
  it('is not an installation: with only Ollama.app installed, doctor reports one installation, and --host configures the app', async () => {
    // brew is there and knows the formula (info answers, status "none"), but there is no keg.
    const sb = sandbox({ brewInstalled: false, appInstalled: true });
    expect((await sb.run('brew', ['services', 'info', 'ollama', '--json'])).code).toBe(0);
    await openApp(sb);
    await waitListening(LOOPBACK);
    const doctor = cli(sb, ['doctor']);
    expect(doctor.report.strategy).toBe('darwin-app');
    expect(doctor.report.checks.find((check) => check.id === 'ollama.conflict')?.status ?? 'ok').not.toBe('warn');
    expect(JSON.stringify(doctor.report)).not.toContain('Homebrew service');
    const dry = cli(sb, ['--dry-run', '--host', '0.0.0.0:11434']);
    expect(dry.report.strategy).toBe('darwin-app');
  });
});

describe('a restart that fails', () => {
  it('`brew services restart` whose start fails twice (stop already done): setup rolls back, Ollama is started again from the LaunchAgent it had, and the message says so', async () => {
    const sb = sandbox();
    await brewServicesStart(sb);
    await waitListening(LOOPBACK);
    const plistBefore = readFileSync(sb.plistPath);
    // The restart's start, and the rollback's, both fail at bootstrap.
    writeFileSync(path.join(sb.dir, 'brew-faults.json'), JSON.stringify({ failBootstrap: 2 }));
    const setup = cli(sb, ['--yes']);
    expect(setup.code).toBe(1);
    expect(setup.report.error).toContain('Ollama was started again from the LaunchAgent it had before');
    expect(existsSync(envFile(sb))).toBe(false);
    await waitListening(LOOPBACK);
    expect(readFileSync(sb.plistPath).equals(plistBefore)).toBe(true);
    expect(cli(sb, ['doctor']).code).not.toBeNull();
  });
});
