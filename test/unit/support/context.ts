/**
 * A Context for unit tests. Files, HTTP and /proc are the real ones (tests use a temporary --root
 * and real loopback servers); only what can't run in a unit test is replaced: the commands
 * (systemctl, snap, docker, sudo — answered by the test's script), the terminal (captured), the
 * identity (root or not), and sleeping.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CancelledError, type Context, type ExecOptions, type ExecResult } from '../../../scripts/context.ts';
import { createNodeContext } from '../../../scripts/node-context.ts';

export type ExecScript = (command: string, args: string[], options: ExecOptions) => ExecResult | Promise<ExecResult>;

export interface TestContext extends Context {
  calls: { command: string; args: string[]; options: ExecOptions }[];
  stdout: string[];
  stderr: string[];
  json: unknown[];
  confirmations: string[];
  /** How many times work ran with interrupts held off. */
  shielded: number;
}

export function ok(stdout = ''): ExecResult {
  return { exitCode: 0, stdout, stderr: '' };
}
export function failed(stderr: string, exitCode = 1): ExecResult {
  return { exitCode, stdout: '', stderr };
}
export const NOT_FOUND: ExecResult = { exitCode: null, stdout: '', stderr: 'spawn ENOENT', failure: 'not-found' };

/** Commands a machine without systemd, snap or docker answers with. */
export const bareMachine: ExecScript = () => NOT_FOUND;

export function testContext(options: {
  exec?: ExecScript;
  isRoot?: boolean;
  isTTY?: boolean;
  env?: Record<string, string>;
  /** Our pid, for the lock; the real one unless a test pretends to be another run. */
  pid?: number;
  /** Pids the lock may see as alive; the real process table otherwise. */
  alive?: (pid: number) => boolean;
  /** Answers for confirm(); 'cancel' simulates Ctrl-C. */
  answers?: (boolean | 'cancel')[];
} = {}): TestContext {
  const real = createNodeContext();
  const script = options.exec ?? bareMachine;
  const answers = [...(options.answers ?? [])];
  const ctx: TestContext = {
    ...real,
    platform: 'linux',
    env: { HOME: '/nonexistent-home', TMPDIR: os.tmpdir(), ...options.env },
    isTTY: options.isTTY ?? false,
    isRoot: options.isRoot ?? true,
    pid: options.pid ?? real.pid,
    processExists: options.alive ?? real.processExists,
    calls: [],
    stdout: [],
    stderr: [],
    json: [],
    confirmations: [],
    shielded: 0,
    async exec(command, args, execOptions = {}) {
      ctx.calls.push({ command, args: [...args], options: execOptions });
      return script(command, [...args], execOptions);
    },
    clock: { now: () => new Date(), sleep: async () => {} },
    terminal: {
      color: false,
      print: (text) => void ctx.stdout.push(text),
      printStyled: (text) => void ctx.stdout.push(text),
      printError: (text) => void ctx.stderr.push(text),
      printJson: (value) => void ctx.json.push(JSON.parse(JSON.stringify(value))),
      spinner: () => ({ succeed: () => {}, fail: (text) => void (text && ctx.stderr.push(text)), stop: () => {} }),
      uninterruptible: (work) => {
        ctx.shielded++;
        return work();
      },
      async confirm(question) {
        ctx.confirmations.push(question);
        const answer = answers.shift();
        if (answer === undefined) throw new Error(`unexpected prompt: ${question}`);
        if (answer === 'cancel') throw new CancelledError();
        return answer;
      },
    },
  };
  return ctx;
}

export async function tempRoot(): Promise<{ root: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'stigmer-setup-test-'));
  return { root, cleanup: () => rm(root, { recursive: true, force: true }) };
}
