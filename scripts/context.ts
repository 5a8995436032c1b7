/**
 * The one object that carries every side effect stigmer-setup has: running commands, reading and
 * writing files, the environment, HTTP, time, and the terminal. Production code receives it as a
 * parameter and never reaches for `process`, `fs` or `child_process` itself, so tests can hand in
 * a fake and exercise every decision without touching the machine.
 */
export type Platform = 'linux' | 'darwin' | 'win32';

export interface ExecOptions {
  /** Kill the command after this long and report `failure: 'timeout'`. */
  timeoutMs?: number;
  /** Text written to the command's stdin. */
  input?: string;
  /**
   * Let the command talk to the user's terminal (stdin and stderr inherited), for `sudo` asking
   * for a password. stdout is still captured.
   */
  inheritTerminal?: boolean;
}

export interface ExecResult {
  /** null when the command could not start or was killed. */
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** Set when the command never ran to completion. */
  failure?: 'not-found' | 'timeout' | 'spawn-error';
}

export type HttpResult =
  | { kind: 'response'; status: number; body: string }
  | { kind: 'error'; code: 'refused' | 'timeout' | 'dns' | 'other'; message: string };

export interface HttpClient {
  get(url: string, options: { timeoutMs: number; headers?: Record<string, string> }): Promise<HttpResult>;
}

export interface FileSystem {
  /** The file's text, or undefined when it does not exist. Other errors throw. */
  readText(path: string): Promise<string | undefined>;
  /** Replace the file in one step (write a sibling, then rename), creating parent folders. */
  writeText(path: string, content: string, mode?: number): Promise<void>;
  /** Remove a file; a file that is already gone is not an error. */
  remove(path: string): Promise<void>;
  /** Remove a folder and everything in it; missing is not an error. */
  removeTree(path: string): Promise<void>;
  exists(path: string): Promise<boolean>;
  /** Entry names of a folder, or [] when it does not exist or can't be read. */
  listDir(path: string): Promise<string[]>;
  /** A symlink's target, or undefined when it is not readable (e.g. another user's /proc fd). */
  readLink(path: string): Promise<string | undefined>;
  /** Whether we can create or replace `path` without privileges (checks the nearest existing folder). */
  canWrite(path: string): Promise<boolean>;
  /** A new folder only we can use (mode 0700) under the system's temporary folder. */
  makePrivateTempDir(prefix: string): Promise<string>;
}

export interface Clock {
  now(): Date;
  sleep(ms: number): Promise<void>;
}

export interface Spinner {
  succeed(text?: string): void;
  fail(text?: string): void;
  stop(): void;
}

export interface Terminal {
  /** Human output. Silent in --json mode is decided by the caller, not here. */
  print(text: string): void;
  /** Diagnostics that must never mix with --json on stdout. */
  printError(text: string): void;
  /** stdout only: the one JSON object of --json. */
  printJson(value: unknown): void;
  spinner(text: string, options: { silent: boolean }): Spinner;
  /** Ask yes/no. Throws CancelledError when the user aborts (Ctrl-C, Esc). */
  confirm(question: string, initial: boolean): Promise<boolean>;
  /**
   * Run `work` with Ctrl-C and SIGTERM held off: a change interrupted between writing a file and
   * restarting the service would be half-applied. The signal is noted and the work finishes (or
   * rolls back) first.
   */
  uninterruptible<T>(work: () => Promise<T>): Promise<T>;
}

export interface Context {
  platform: Platform;
  env: Readonly<Record<string, string | undefined>>;
  /** True only when both stdin and stdout are terminals: prompting anywhere else hangs or garbles. */
  isTTY: boolean;
  isRoot: boolean;
  exec(command: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  fs: FileSystem;
  http: HttpClient;
  clock: Clock;
  terminal: Terminal;
}

export class CancelledError extends Error {
  constructor() {
    super('Cancelled.');
    this.name = 'CancelledError';
  }
}
