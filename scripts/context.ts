/**
 * The one object that carries every side effect stigmer-setup has: running commands, reading and
 * writing files, the environment, HTTP, time, and the terminal. Production code receives it as a
 * parameter and never reaches for `process`, `fs` or `child_process` itself, so tests can hand in
 * a fake and exercise every decision without touching the machine.
 */
export type Platform = 'linux' | 'darwin' | 'win32';

export interface ExecOptions {
  /** Kill the command (and everything it started) after this long and report `failure: 'timeout'`. */
  timeoutMs?: number;
  /** Text written to the command's stdin. */
  input?: string;
  /**
   * Let the command talk to the user's terminal (stdin and stderr inherited), for `sudo` asking
   * for a password. stdout is still captured. Such a command stays in our process group, because
   * a process outside the terminal's foreground group can't read the terminal.
   */
  inheritTerminal?: boolean;
  /**
   * Variables to set (a string) or remove (undefined) in the child's environment, on top of ours.
   * This is how a value reaches a program as data rather than as part of its command line.
   */
  env?: Record<string, string | undefined>;
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

/** How a streamed POST ended. */
export type HttpStreamResult =
  /** The server sent its whole answer (`complete`), or the reader asked to stop (`stopped`). */
  | { kind: 'response'; status: number; ended: 'complete' | 'stopped' }
  /**
   * No answer, or the answer broke off: refused, a DNS failure, `timeout` (nothing arrived for
   * `idleTimeoutMs`), `interrupted` (a signal), or the connection dropped (`other`). `status` is
   * set when the answer had begun.
   */
  | { kind: 'error'; code: 'refused' | 'timeout' | 'dns' | 'interrupted' | 'other'; message: string; status?: number };

export interface HttpStreamOptions {
  /** The request body, sent as application/json. */
  body: string;
  /**
   * Give up after this long without a single byte from the server, not after a total time: a
   * multi-GB download takes minutes and has silent steps (see pull.ts).
   */
  idleTimeoutMs: number;
  /** The HTTP status, once, before the first chunk. */
  onStatus?(status: number): void;
  /** Each piece of the answer as it arrives, decoded as UTF-8 (a character split across packets is kept whole). Return false to stop reading. */
  onChunk(chunk: string): boolean | void;
}

export interface HttpClient {
  get(url: string, options: { timeoutMs: number; headers?: Record<string, string> }): Promise<HttpResult>;
  /**
   * POST a JSON body and read the answer as it streams (Ollama's NDJSON /api/pull). Ended by a
   * signal (`ctx.terminal.interrupt`: the request is destroyed, so the server sees the client
   * leave) and by silence, never by total time.
   */
  postStream(url: string, options: HttpStreamOptions): Promise<HttpStreamResult>;
}

/** What is at a path, seen without following a symlink there. */
export interface PathInfo {
  kind: 'file' | 'directory' | 'symlink' | 'fifo' | 'socket' | 'device' | 'other';
  /** Permission bits (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
}

/** A regular file's bytes, with the mode and owner it had when read. */
export interface FileContent {
  content: Buffer;
  mode: number;
  uid: number;
  gid: number;
}

/**
 * A path that is not what stigmer-setup may read or write: a FIFO (reading it would block forever),
 * a device, a folder, or a symlink where a regular file must be (following it would redirect the
 * write). The message is one line that names the path and what was found there.
 */
export class UnsafePathError extends Error {
  constructor(
    readonly path: string,
    readonly found: PathInfo['kind'],
    what = 'a regular file',
  ) {
    super(`${path} is ${describeKind(found)}, not ${what}; stigmer-setup will not read or write it. Move it away and run again.`);
    this.name = 'UnsafePathError';
  }
}

export function describeKind(kind: PathInfo['kind']): string {
  return { file: 'a regular file', directory: 'a folder', symlink: 'a symlink', fifo: 'a FIFO (named pipe)', socket: 'a socket', device: 'a device', other: 'a special file' }[kind];
}

export interface WriteOptions {
  /** Permission bits of the written file. */
  mode: number;
  /** Owner to give the file (only root can give it away); kept as is when undefined. */
  uid?: number;
  gid?: number;
}

export interface FileSystem {
  /**
   * lstat: undefined when nothing is there. Never follows a symlink at `path`, unless `follow`
   * (stat: what the link points at; undefined for a dangling link).
   */
  inspect(path: string, options?: { follow?: boolean }): Promise<PathInfo | undefined>;
  /** The path with every symlink in it resolved (realpath); undefined when it, or a link's target, does not exist. */
  realPath(path: string): Promise<string | undefined>;
  /**
   * A regular file's bytes, mode and owner; undefined when nothing is there. Opens without
   * blocking and without following a symlink at `path` (unless `follow`), and throws
   * UnsafePathError for anything that is not a regular file.
   */
  read(path: string, options?: { follow?: boolean }): Promise<FileContent | undefined>;
  /** `read`, decoded as UTF-8. */
  readText(path: string, options?: { follow?: boolean }): Promise<string | undefined>;
  /**
   * Replace the file in one step: a temporary file with a random name is created exclusively in
   * the same folder, given its mode and owner, then renamed over the target. Refuses (UnsafePathError)
   * when the target is anything but a regular file or missing, or when its folder is a symlink.
   * Missing parent folders are created (0755); the ones created are returned, outermost first.
   */
  write(path: string, content: Buffer | string, options: WriteOptions): Promise<{ createdDirs: string[] }>;
  /** Create `path` and any missing folders above it (0755); returns the ones created, outermost first. */
  ensureDir(path: string): Promise<string[]>;
  /** Create a file only if nothing is at `path` (O_EXCL). False when something already is. */
  createExclusive(path: string, content: string, mode: number): Promise<boolean>;
  /** Remove a regular file (or a symlink we made: the lock); missing is not an error. Refuses other kinds. */
  remove(path: string): Promise<void>;
  /** Remove a folder if it is empty; false when it is not (or is gone). */
  removeEmptyDir(path: string): Promise<boolean>;
  /** Remove a folder and everything in it, never following symlinks; missing is not an error. */
  removeTree(path: string): Promise<void>;
  exists(path: string): Promise<boolean>;
  /** Entry names of a folder, or [] when it does not exist or can't be read. */
  listDir(path: string): Promise<string[]>;
  /** A symlink's target, or undefined when it is not readable (e.g. another user's /proc fd). */
  readLink(path: string): Promise<string | undefined>;
  /**
   * The targets of every symlink in a folder (at most `limit`), for /proc/PID/fd: one call per
   * process instead of one per descriptor. Unreadable folders and links are left out.
   */
  readLinksIn(dir: string, limit: number): Promise<string[]>;
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
  /**
   * Whether stderr is a terminal where a line can be redrawn in place (a sized TTY, still open,
   * not CI): a download's live progress line. Elsewhere progress is written as plain lines.
   */
  canRedraw: boolean;
  /**
   * stderr: replace the line being redrawn with `text`, stripped of control sequences and cut to
   * the terminal's width (a wrapped line can't be redrawn in place). Only when canRedraw.
   */
  redraw(text: string): void;
  /** Leave the redrawn line as it is and go on below it (a newline, if a line is being redrawn). */
  endRedraw(): void;
  /** Human output, stripped of terminal control sequences. Silent in --json mode is decided by the caller. */
  print(text: string): void;
  /**
   * Human output that carries our own colour codes. The caller has already stripped whatever came
   * from the system (report.ts renders findings that way), so nothing is stripped here.
   */
  printStyled(text: string): void;
  /** Diagnostics that must never mix with --json on stdout. */
  printError(text: string): void;
  /** stdout only: the one JSON object of --json. */
  printJson(value: unknown): void;
  spinner(text: string, options: { silent: boolean }): Spinner;
  /** Whether human output may carry colour (a TTY on stderr, NO_COLOR and FORCE_COLOR honoured). */
  color: boolean;
  /** Ask yes/no. Throws CancelledError when the user aborts (Ctrl-C, Esc). */
  confirm(question: string, initial: boolean): Promise<boolean>;
  /**
   * Run `work` with Ctrl-C and SIGTERM held off: a change interrupted between writing a file and
   * restarting the service would be half-applied. The signal is noted and the work finishes (or
   * rolls back) first; then `interrupt` is aborted. Work that must run even after a signal (the
   * lock's release) runs here too: after a signal, commands, requests and waits start only here.
   */
  uninterruptible<T>(work: () => Promise<T>): Promise<T>;
  /**
   * Aborted when SIGINT or SIGTERM arrives (its `reason` is the signal's name, 'SIGINT' or
   * 'SIGTERM'), or, when one arrives during `uninterruptible`, as soon as that work ends. The flow
   * checks it at every step and then reports what is in place; the context itself stops what is
   * running (children are killed, waits end, a prompt is abandoned) and starts nothing new.
   */
  interrupt: AbortSignal;
}

/** How a bare TCP connect ended: the connection is closed at once, nothing is sent on it. */
export type TcpConnectResult = { kind: 'connected' } | { kind: 'error'; code: 'refused' | 'timeout' | 'other'; message: string };

export interface NetworkAddress {
  /** Interface name, e.g. eth0, docker0, en0. */
  name: string;
  address: string;
  family: 4 | 6;
  internal: boolean;
}

export interface Context {
  /** The machine's own OS; `--platform` may ask for another one's rules. */
  platform: Platform;
  env: Readonly<Record<string, string | undefined>>;
  /** True only when both stdin and stdout are terminals: prompting anywhere else hangs or garbles. */
  isTTY: boolean;
  isRoot: boolean;
  /** Our numeric user id (launchd's gui/<uid> domain); undefined where the OS has none (Windows). */
  uid?: number;
  /** Our process id: the lock records it. */
  pid: number;
  exec(command: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /**
   * Start a program that must outlive us (an app we restart), detached, with `env` on top of ours.
   * Returns its pid, or an error message when it could not start.
   */
  launch(command: string, args: readonly string[], options?: { env?: Record<string, string | undefined> }): Promise<{ pid: number } | { error: string }>;
  /** Whether a process with this pid exists (ours or another user's). */
  processExists(pid: number): boolean;
  networkAddresses(): NetworkAddress[];
  /**
   * Open a TCP connection to host:port from `localAddress` (bound before connect) and close it at
   * once without sending a byte: whether a packet filter lets that source in. `timeout`: no answer
   * to the SYN within `timeoutMs` (a filter that drops it).
   */
  tcpConnect(options: { host: string; port: number; localAddress?: string; timeoutMs: number }): Promise<TcpConnectResult>;
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
