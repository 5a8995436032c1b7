// Running the built CLI (dist/stigmer-setup.mjs) as a user would, on the host or inside a container.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { CONTAINER_NODE, dockerExec, REPO_DIR, REPO_MOUNT } from './support/index.ts';

export interface CliRun {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

export const BUNDLE = path.join(REPO_DIR, 'dist', 'stigmer-setup.mjs');

/** On the host, with no terminal (stdin closed), bounded at 60 s; `env` is added to ours. */
export function runOnHost(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BUNDLE, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({ exitCode, stdout, stderr });
    });
  });
}

/** Inside a container that has the repo mounted at REPO_MOUNT and the host's node. */
export async function runInContainer(container: string, args: string[]): Promise<CliRun> {
  return dockerExec(container, [CONTAINER_NODE, `${REPO_MOUNT}/dist/stigmer-setup.mjs`, ...args], { timeout: '90s' });
}

export interface JsonCheck {
  id: string;
  status: 'ok' | 'warn' | 'fail' | 'skip';
  message: string;
  why?: string;
  fix?: string;
}

export interface JsonReport {
  ok: boolean;
  command: string;
  platform: string;
  strategy: string;
  changes: ({ type: 'file'; path: string; action: string; applied: boolean } | { type: 'command'; argv: string[]; applied: boolean })[];
  checks: JsonCheck[];
}

/** --json must put exactly one JSON object on stdout; JSON.parse fails on anything else. */
export function parseReport(run: CliRun): JsonReport {
  try {
    return JSON.parse(run.stdout) as JsonReport;
  } catch {
    throw new Error(`stdout is not one JSON object (exit ${run.exitCode}):\n${run.stdout}\n--- stderr ---\n${run.stderr}`);
  }
}

export function check(report: JsonReport, id: string): JsonCheck {
  const found = report.checks.find((c) => c.id === id);
  if (!found) throw new Error(`no check ${id} in ${JSON.stringify(report.checks)}`);
  return found;
}
