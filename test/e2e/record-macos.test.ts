/**
 * What setup records, undo accepts (issue 12 §2), end to end in the macOS sandbox
 * (test/support/macos): the built CLI, launchd's shim holding the user's `launchctl setenv`
 * values, the app started with launchd's environment, and a real stand-in Ollama on port 11434.
 *
 * The user's previous OLLAMA_HOST holds a newline. Ollama trims it (envconfig.Var uses
 * strings.TrimSpace), so the app listens on loopback. Before the fix, setup stored that value
 * and the record's own reader then refused it: every later setup and undo exited 1. Now setup, a
 * second setup and undo all succeed, and undo gives launchd back the exact value.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, type JsonReport } from './cli.ts';
import { createSandbox, launchctl, launchctlSetenv, openApp, type Sandbox } from '../support/macos/sandbox.mjs';
import { waitFor } from './support/shell.ts';

const PORT = 11434;
const sandboxes: { sb: Sandbox; root: string }[] = [];

function sandbox(): Sandbox & { root: string } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'stigmer-record-e2e-'));
  const sb = createSandbox({ dir: path.join(root, 'sandbox'), home: path.join(root, 'home'), runtime: 'no-forward', brewInstalled: false, appInstalled: true });
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

function cli(sb: Sandbox & { root: string }, args: string[]): { code: number | null; report: JsonReport & { error?: string }; stderr: string } {
  spawnSync('mkdir', ['-p', sb.root]);
  const result = spawnSync(process.execPath, [BUNDLE, ...args, '--json', '--platform', 'darwin', '--root', sb.root], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...sb.env, SUDO_USER: undefined } as NodeJS.ProcessEnv,
  });
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

async function waitListening(pattern: RegExp): Promise<void> {
  await waitFor(async () => (listening().some((address) => pattern.test(address)) ? true : undefined), { timeoutMs: 30_000, intervalMs: 100, what: `a listener matching ${pattern}` });
}

describe('Ollama.app with a previous launchd OLLAMA_HOST that holds a newline', () => {
  it('setup records it losslessly; a second setup and undo both work; undo gives launchd the exact value back', async () => {
    const previous = '127.0.0.1:11434\n';
    const sb = sandbox();
    await launchctlSetenv(sb, 'OLLAMA_HOST', previous);
    await openApp(sb);
    await waitListening(/^127\.0\.0\.1:11434$/);

    const setup = cli(sb, ['--yes']);
    expect(setup.code, setup.stderr + JSON.stringify(setup.report, null, 2)).toBe(0);
    expect(setup.report.changes[0]).toMatchObject({ type: 'setting', store: 'launchd-env', key: 'OLLAMA_HOST', before: previous, applied: true });
    await waitListening(/^(\*|\[::\]|0\.0\.0\.0):11434$/);

    // The old reader refused the record it had just written here ("is not plain text"): exit 1.
    const again = cli(sb, ['--yes']);
    expect(again.code, again.stderr + JSON.stringify(again.report, null, 2)).toBe(0);
    expect(again.report.changes).toEqual([]);

    const undo = cli(sb, ['undo', '--yes']);
    expect(undo.code, undo.stderr + JSON.stringify(undo.report, null, 2)).toBe(0);
    // launchctl prints the value and its own newline.
    expect((await launchctl(sb, ['getenv', 'OLLAMA_HOST'])).stdout).toBe(`${previous}\n`);
    await waitListening(/^127\.0\.0\.1:11434$/);
  });
});
