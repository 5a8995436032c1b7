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
import { InterruptedError, Interrupter, type SignalName } from '../../../scripts/interrupt.ts';
import { createNodeContext } from '../../../scripts/node-context.ts';

export type ExecScript = (command: string, args: string[], options: ExecOptions) => ExecResult | Promise<ExecResult>;

export interface TestContext extends Context {
  /** Every command run; `shielded` when it ran with signals held off (inside uninterruptible). */
  calls: { command: string; args: string[]; options: ExecOptions; shielded: boolean }[];
  stdout: string[];
  stderr: string[];
  json: unknown[];
  confirmations: string[];
  /** How many times work ran with interrupts held off. */
  shielded: number;
  /** Spinner texts, in the order they started. */
  spinners: string[];
  /** Every redraw of the live progress line, in order (only when canRedraw). */
  redraws: string[];
  /**
   * A signal arrives now, as the bin's handler would pass it on (interrupt.ts): held while a
   * change is applied, delivered otherwise. Call it from an exec script, a spinner or a read to
   * pick the step it interrupts.
   */
  raise(signal: SignalName): void;
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
  /** Answers for confirm(); 'cancel' simulates Ctrl-C typed at the prompt, a signal name a signal sent to the process. */
  answers?: (boolean | 'cancel' | SignalName)[];
  /** Called as each spinner starts (e.g. to raise a signal at that step). */
  onSpinner?: (text: string) => void;
  /** stderr is a terminal where progress redraws one line in place. */
  canRedraw?: boolean;
  /** Called at each redraw of the progress line (e.g. to raise a signal mid-download). */
  onRedraw?: (text: string) => void;
} = {}): TestContext {
  const interrupter = new Interrupter();
  // The real context on the same interrupter: its HTTP requests and waits end on a raised signal as they would in the bin.
  const real = createNodeContext({ interrupter });
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
    spinners: [],
    redraws: [],
    raise: (signal) => void interrupter.raise(signal),
    async exec(command, args, execOptions = {}) {
      // As the real exec: after a signal, nothing starts outside uninterruptible.
      if (!interrupter.mayStart) return { exitCode: null, stdout: '', stderr: `not run: stigmer-setup was interrupted (${interrupter.received})`, failure: 'spawn-error' };
      ctx.calls.push({ command, args: [...args], options: execOptions, shielded: interrupter.holding });
      return script(command, [...args], execOptions);
    },
    clock: { now: () => new Date(), sleep: async () => {} },
    // The HTTP client is the real one (tests answer with real loopback servers), postStream included.
    terminal: {
      color: false,
      canRedraw: options.canRedraw ?? false,
      redraw: (text) => {
        if (!ctx.terminal.canRedraw) throw new Error('redraw() without a terminal that can redraw');
        ctx.redraws.push(text);
        options.onRedraw?.(text);
      },
      endRedraw: () => {},
      print: (text) => void ctx.stdout.push(text),
      printStyled: (text) => void ctx.stdout.push(text),
      printError: (text) => void ctx.stderr.push(text),
      printJson: (value) => void ctx.json.push(JSON.parse(JSON.stringify(value))),
      spinner: (text) => {
        ctx.spinners.push(text);
        options.onSpinner?.(text);
        return { succeed: () => {}, fail: (done) => void (done && ctx.stderr.push(done)), stop: () => {} };
      },
      uninterruptible: (work) => {
        ctx.shielded++;
        return interrupter.hold(work);
      },
      interrupt: interrupter.signal,
      async confirm(question) {
        ctx.confirmations.push(question);
        const answer = answers.shift();
        if (answer === undefined) throw new Error(`unexpected prompt: ${question}`);
        if (answer === 'cancel') throw new CancelledError();
        if (typeof answer === 'string') {
          // The real prompt is abandoned the same way when a signal arrives while it waits.
          interrupter.raise(answer);
          throw new InterruptedError(answer);
        }
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
