/**
 * The real Context: Node's child_process, fs, http and the terminal. Nothing else in the product
 * imports these modules, so this file is the whole surface that tests replace.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fsp, readdirSync, readlinkSync, type Stats } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type oraFunction from 'ora';
import {
  CancelledError,
  UnsafePathError,
  type Context,
  type ExecOptions,
  type ExecResult,
  type FileSystem,
  type HttpResult,
  type HttpStreamOptions,
  type HttpStreamResult,
  type NetworkAddress,
  type PathInfo,
  type Platform,
  type Spinner,
  type TcpConnectResult,
} from './context.ts';
import { Interrupter, InterruptedError, SIGNAL_EXIT, type SignalName } from './interrupt.ts';
import { stripControl } from './text.ts';

/** A command's output beyond this is dropped: we parse small answers, and a runaway tool must not fill memory. */
const MAX_OUTPUT = 4 * 1024 * 1024;
/** Files we read are configuration files; anything larger is not one of them. */
const MAX_FILE = 16 * 1024 * 1024;

/**
 * A context's children still running, so a signal outside a change can take their whole process
 * groups down, and the interrupter that says whether a new one may start.
 */
interface Children {
  running: Set<ChildProcess>;
  interrupter: Interrupter;
}

function killGroup(child: ChildProcess): void {
  // A negative pid signals the whole process group: a `systemctl` whose helper keeps the pipe open
  // would otherwise outlive the timeout. Where groups don't exist (Windows) kill the child itself.
  try {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    else child.kill('SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

function childEnvironment(extra: ExecOptions['env']): NodeJS.ProcessEnv | undefined {
  if (!extra) return undefined;
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [name, value] of Object.entries(extra)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/** What a command asked for after a signal gets: it never starts, and the flow moves on to report. */
function notStarted(interrupter: Interrupter): ExecResult {
  return { exitCode: null, stdout: '', stderr: `not run: stigmer-setup was interrupted (${interrupter.received})`, failure: 'spawn-error' };
}

function runCommand(children: Children, command: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const { running, interrupter } = children;
  if (!interrupter.mayStart) return Promise.resolve(notStarted(interrupter));
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      // shell: false: the argv array goes to execvp as is, so no value can be re-read as shell
      // syntax. detached: the child leads its own process group, so a timeout can kill everything
      // it started and a Ctrl-C on the terminal does not reach a step we are in the middle of.
      child = spawn(command, args, {
        shell: false,
        detached: !options.inheritTerminal,
        windowsHide: true,
        env: childEnvironment(options.env),
        stdio: [options.inheritTerminal ? 'inherit' : 'pipe', 'pipe', options.inheritTerminal ? 'inherit' : 'pipe'],
      });
    } catch (error) {
      resolve({ exitCode: null, stdout: '', stderr: (error as Error).message, failure: 'spawn-error' });
      return;
    }
    running.add(child);
    let stdout = '';
    let stderr = '';
    let settled = false;
    const finish = (result: ExecResult) => {
      if (settled) return;
      settled = true;
      running.delete(child);
      if (timer) clearTimeout(timer);
      resolve(result);
    };
    const timer = options.timeoutMs
      ? setTimeout(() => {
          killGroup(child);
          // Resolve now: a grandchild that inherited the pipe could keep 'close' from ever firing.
          child.stdout?.destroy();
          child.stderr?.destroy();
          finish({ exitCode: null, stdout, stderr, failure: 'timeout' });
        }, options.timeoutMs)
      : undefined;
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += chunk;
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += chunk;
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      finish({ exitCode: null, stdout, stderr: stderr || error.message, failure: error.code === 'ENOENT' ? 'not-found' : 'spawn-error' });
    });
    child.on('close', (code) => finish({ exitCode: code, stdout, stderr }));
    if (child.stdin && !options.inheritTerminal) {
      child.stdin.on('error', () => {}); // a command that exits before reading its input is not our error
      child.stdin.end(options.input ?? '');
    }
  });
}

function launch(command: string, args: readonly string[], options: { env?: Record<string, string | undefined> } = {}): Promise<{ pid: number } | { error: string }> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(command, args, { detached: true, stdio: 'ignore', windowsHide: true, env: childEnvironment(options.env) });
    } catch (error) {
      resolve({ error: (error as Error).message });
      return;
    }
    child.once('error', (error) => resolve({ error: error.message }));
    child.once('spawn', () => {
      child.unref();
      resolve({ pid: child.pid ?? 0 });
    });
  });
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function kindOf(stats: Stats): PathInfo['kind'] {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isFIFO()) return 'fifo';
  if (stats.isSocket()) return 'socket';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'device';
  return 'other';
}

function pathInfo(stats: Stats): PathInfo {
  return { kind: kindOf(stats), mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid, size: stats.size };
}

// Flags that are 0 where the OS lacks them (O_NOFOLLOW and O_NONBLOCK on Windows): the lstat done
// first still refuses symlinks and special files there.
const NO_FOLLOW = fsConstants.O_NOFOLLOW ?? 0;
const NON_BLOCKING = fsConstants.O_NONBLOCK ?? 0;

async function inspect(file: string, options: { follow?: boolean } = {}): Promise<PathInfo | undefined> {
  try {
    return pathInfo(await (options.follow ? fsp.stat(file) : fsp.lstat(file)));
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

async function readFileSafely(file: string, follow: boolean) {
  if (!follow) {
    const seen = await inspect(file);
    if (seen === undefined) return undefined;
    if (seen.kind !== 'file') throw new UnsafePathError(file, seen.kind);
  }
  let handle: fsp.FileHandle;
  try {
    // Non-blocking: opening a FIFO for reading would otherwise wait for a writer forever.
    handle = await fsp.open(file, fsConstants.O_RDONLY | NON_BLOCKING | (follow ? 0 : NO_FOLLOW));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (isMissing(error)) return undefined;
    if (code === 'ELOOP' || code === 'EMLINK') throw new UnsafePathError(file, 'symlink');
    if (code === 'EISDIR') throw new UnsafePathError(file, 'directory');
    throw error;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new UnsafePathError(file, kindOf(stats));
    if (stats.size > MAX_FILE) throw new Error(`${file} is ${stats.size} bytes, too large to be a configuration file`);
    const content = await handle.readFile();
    return { content, mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid };
  } finally {
    await handle.close();
  }
}

/** Create the missing folders above `dir`, outermost first; refuse when `dir` itself is a symlink. */
async function makeParents(dir: string): Promise<string[]> {
  const missing: string[] = [];
  let probe = dir;
  for (let depth = 0; depth < 64; depth++) {
    const seen = await inspect(probe);
    if (seen) {
      if (probe === dir && seen.kind === 'symlink') throw new UnsafePathError(dir, 'symlink', 'a folder');
      if (seen.kind !== 'directory' && !(seen.kind === 'symlink' && probe !== dir)) throw new UnsafePathError(probe, seen.kind, 'a folder');
      break;
    }
    missing.unshift(probe);
    const parent = path.dirname(probe);
    if (parent === probe) break;
    probe = parent;
  }
  for (const folder of missing) await fsp.mkdir(folder, { mode: 0o755 });
  return missing;
}

const nodeFs: FileSystem = {
  inspect,
  async realPath(file) {
    try {
      return await fsp.realpath(file);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  },
  async ensureDir(dir) {
    const seen = await inspect(dir);
    if (seen?.kind === 'directory') return [];
    if (seen) throw new UnsafePathError(dir, seen.kind, 'a folder');
    const created = await makeParents(path.dirname(dir));
    await fsp.mkdir(dir, { mode: 0o755 });
    return [...created, dir];
  },
  read: (file, options = {}) => readFileSafely(file, options.follow ?? false),
  async readText(file, options = {}) {
    return (await readFileSafely(file, options.follow ?? false))?.content.toString('utf8');
  },
  async write(file, content, options) {
    const dir = path.dirname(file);
    const createdDirs = await makeParents(dir);
    const target = await inspect(file);
    if (target && target.kind !== 'file') throw new UnsafePathError(file, target.kind);
    // A random name, created exclusively and never through a symlink: nobody can have placed a
    // link there in advance to redirect the write.
    const temporary = path.join(dir, `.${path.basename(file)}.stigmer-setup-${randomBytes(8).toString('hex')}.tmp`);
    const handle = await fsp.open(temporary, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | NO_FOLLOW, 0o600);
    try {
      try {
        await handle.writeFile(content);
        await handle.chmod(options.mode);
        const changeOwner = (options.uid !== undefined && options.uid !== process.getuid?.()) || (options.gid !== undefined && options.gid !== process.getgid?.());
        if (changeOwner) await handle.chown(options.uid ?? -1, options.gid ?? -1);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fsp.rename(temporary, file);
    } catch (error) {
      await fsp.rm(temporary, { force: true });
      throw error;
    }
    return { createdDirs };
  },
  async createExclusive(file, content, mode) {
    try {
      const handle = await fsp.open(file, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | NO_FOLLOW, mode);
      try {
        await handle.writeFile(content);
      } finally {
        await handle.close();
      }
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    }
  },
  async remove(file) {
    const seen = await inspect(file);
    if (!seen) return;
    if (seen.kind !== 'file' && seen.kind !== 'symlink') throw new UnsafePathError(file, seen.kind);
    await fsp.rm(file, { force: true });
  },
  async removeEmptyDir(dir) {
    try {
      await fsp.rmdir(dir);
      return true;
    } catch {
      return false;
    }
  },
  async removeTree(dir) {
    await fsp.rm(dir, { recursive: true, force: true });
  },
  async exists(file) {
    return (await inspect(file)) !== undefined;
  },
  async listDir(dir) {
    try {
      return await fsp.readdir(dir);
    } catch {
      return [];
    }
  },
  async readLink(file) {
    try {
      return await fsp.readlink(file);
    } catch {
      return undefined;
    }
  },
  async readLinksIn(dir, limit) {
    // Synchronous on purpose: /proc answers from memory in microseconds, and a few hundred
    // promise round-trips through libuv's thread pool cost more than the reads themselves
    // (the listener inventory went from ~15 ms to ~5 ms).
    let names: string[];
    try {
      names = readdirSync(dir).slice(0, limit);
    } catch {
      return [];
    }
    const targets: string[] = [];
    for (const name of names) {
      try {
        targets.push(readlinkSync(path.join(dir, name)));
      } catch {
        // The descriptor closed, or belongs to another user.
      }
    }
    return targets;
  },
  async makePrivateTempDir(prefix) {
    return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  },
  async canWrite(file) {
    let probe = file;
    // Walk up to the nearest folder that exists: that is where a create would need permission.
    for (let depth = 0; depth < 64; depth++) {
      try {
        await fsp.access(probe, fsConstants.F_OK);
        try {
          await fsp.access(probe, fsConstants.W_OK);
          return true;
        } catch {
          return false;
        }
      } catch {
        const parent = path.dirname(probe);
        if (parent === probe) return false;
        probe = parent;
      }
    }
    return false;
  },
};

function tcpConnect(interrupter: Interrupter, options: { host: string; port: number; localAddress?: string; timeoutMs: number }): Promise<TcpConnectResult> {
  if (!interrupter.mayStart) return Promise.resolve({ kind: 'error', code: 'other', message: `not tried: stigmer-setup was interrupted (${interrupter.received})` });
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: TcpConnectResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      interrupter.signal.removeEventListener('abort', cancel);
      // Closed without a byte sent: whoever listens sees a connection open and close, no request.
      socket.destroy();
      resolve(result);
    };
    const cancel = () => finish({ kind: 'error', code: 'other', message: `interrupted (${interrupter.received})` });
    interrupter.signal.addEventListener('abort', cancel, { once: true });
    // A total bound, not an idle one: a dropped SYN is retried by the kernel for minutes otherwise.
    const timer = setTimeout(() => finish({ kind: 'error', code: 'timeout', message: `no answer within ${options.timeoutMs} ms` }), options.timeoutMs);
    const socket = net.connect({ host: options.host, port: options.port, ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
    socket.once('connect', () => finish({ kind: 'connected' }));
    socket.once('error', (error: NodeJS.ErrnoException) => finish({ kind: 'error', code: error.code === 'ECONNREFUSED' ? 'refused' : 'other', message: error.message }));
  });
}

function httpGet(interrupter: Interrupter, url: string, options: { timeoutMs: number; headers?: Record<string, string> }): Promise<HttpResult> {
  if (!interrupter.mayStart) return Promise.resolve({ kind: 'error', code: 'other', message: `not sent: stigmer-setup was interrupted (${interrupter.received})` });
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: HttpResult) => {
      if (!settled) {
        settled = true;
        interrupter.signal.removeEventListener('abort', cancel);
        resolve(result);
      }
    };
    // A signal ends a request under way: the run is about to report and stop.
    const cancel = () => {
      request.destroy();
      finish({ kind: 'error', code: 'other', message: `interrupted (${interrupter.received})` });
    };
    interrupter.signal.addEventListener('abort', cancel, { once: true });
    const request = http.get(url, { headers: options.headers, timeout: options.timeoutMs, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        // Ollama's answers are small; cap what we keep so a wrong server can't flood memory.
        if (body.length < 1_000_000) body += chunk;
      });
      response.on('end', () => finish({ kind: 'response', status: response.statusCode ?? 0, body }));
      response.on('error', (error) => finish({ kind: 'error', code: 'other', message: error.message }));
    });
    request.on('timeout', () => {
      request.destroy();
      finish({ kind: 'error', code: 'timeout', message: `no answer within ${options.timeoutMs} ms` });
    });
    request.on('error', (error: NodeJS.ErrnoException) => {
      const code = error.code === 'ECONNREFUSED' ? 'refused' : error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN' ? 'dns' : 'other';
      finish({ kind: 'error', code, message: error.message });
    });
  });
}

function httpPostStream(interrupter: Interrupter, url: string, options: HttpStreamOptions): Promise<HttpStreamResult> {
  if (!interrupter.mayStart) return Promise.resolve({ kind: 'error', code: 'interrupted', message: `not sent: stigmer-setup was interrupted (${interrupter.received})` });
  return new Promise((resolve) => {
    let settled = false;
    let status: number | undefined;
    const finish = (result: HttpStreamResult) => {
      if (settled) return;
      settled = true;
      interrupter.signal.removeEventListener('abort', cancel);
      request.destroy();
      resolve(result);
    };
    // A signal ends the download: destroying the socket is what tells Ollama the client left
    // (PullHandler's context is the request's), so it stops and keeps the parts for a resume.
    const cancel = () => finish({ kind: 'error', code: 'interrupted', message: `interrupted (${interrupter.received})`, status });
    interrupter.signal.addEventListener('abort', cancel, { once: true });
    const body = Buffer.from(options.body, 'utf8');
    const request = http.request(url, {
      method: 'POST',
      agent: false,
      headers: { 'Content-Type': 'application/json', 'Content-Length': String(body.length), Accept: 'application/x-ndjson' },
      // Node's socket timeout is an idle timeout: it fires after this long with no bytes either
      // way, and is re-armed by every chunk, which is exactly "silence", not total time.
      timeout: options.idleTimeoutMs,
    }, (response) => {
      status = response.statusCode ?? 0;
      options.onStatus?.(status);
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        if (settled) return;
        if (options.onChunk(chunk) === false) finish({ kind: 'response', status: status as number, ended: 'stopped' });
      });
      response.on('end', () => finish({ kind: 'response', status: status as number, ended: 'complete' }));
      // The connection dropped mid-answer (Ollama restarted, a proxy cut it): 'aborted' and then
      // 'error' or 'close' without 'end'.
      response.on('aborted', () => finish({ kind: 'error', code: 'other', message: 'the connection closed before the answer ended', status }));
      response.on('error', (error) => finish({ kind: 'error', code: 'other', message: error.message, status }));
      response.on('close', () => finish(response.complete ? { kind: 'response', status: status as number, ended: 'complete' } : { kind: 'error', code: 'other', message: 'the connection closed before the answer ended', status }));
    });
    request.on('timeout', () => finish({ kind: 'error', code: 'timeout', message: `nothing arrived for ${Math.round(options.idleTimeoutMs / 1000)} s`, status }));
    request.on('error', (error: NodeJS.ErrnoException) => {
      const code = error.code === 'ECONNREFUSED' ? 'refused' : error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN' ? 'dns' : 'other';
      finish({ kind: 'error', code, message: error.message, status });
    });
    request.end(body);
  });
}

/**
 * Colour decision, once: a non-empty FORCE_COLOR wins (force-color.org; 0 and false turn colour
 * off, as chalk reads them), then a non-empty NO_COLOR (no-color.org), then TERM=dumb, then whether
 * stderr, where spinners and prompts go, is a TTY.
 */
export function colorEnabled(env: Readonly<Record<string, string | undefined>>, stderrIsTTY: boolean): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '') return !['0', 'false'].includes(force.toLowerCase());
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.TERM === 'dumb') return false;
  return stderrIsTTY;
}

/**
 * A reader that went away (`| head -c 10`) or a full disk (`> /dev/full`) makes writes fail with
 * EPIPE or ENOSPC, emitted as an 'error' event: with no listener that is a crash with a stack
 * trace. Note the stream as closed and stop writing to it instead.
 */
const closedStreams = new WeakSet<NodeJS.WriteStream>();
const guardedStreams = new WeakSet<NodeJS.WriteStream>();
function guardStream(stream: NodeJS.WriteStream): void {
  if (guardedStreams.has(stream)) return;
  guardedStreams.add(stream);
  stream.on('error', () => closedStreams.add(stream));
}
function write(stream: NodeJS.WriteStream, text: string): void {
  if (closedStreams.has(stream)) return;
  try {
    stream.write(text);
  } catch {
    closedStreams.add(stream);
  }
}

/** After a signal, how long the flow has to report and return before the process exits anyway. */
const STOP_DEADLINE_MS = 10_000;

/**
 * Ctrl-C and SIGTERM become an event on `interrupter` (see interrupt.ts): while a change is being
 * applied they are noted and the change finishes or rolls back; otherwise the context stops what
 * is running and cli.ts reports what is in place, then returns 130 or 143. Installed by the bin
 * only, never by tests that import this module.
 */
export function installSignalHandlers(interrupter: Interrupter): void {
  // SIGBREAK exists only where the OS has it (Windows): os.constants.signals says so.
  const signals = (['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const satisfies readonly SignalName[]).filter((name) => name in os.constants.signals);
  for (const signal of signals) {
    process.on(signal, () => {
      const outcome = interrupter.raise(signal);
      if (outcome === 'held' || (outcome === 'repeated' && interrupter.holding)) {
        write(process.stderr, '\nstigmer-setup: finishing the current change first, so nothing is left half-applied…\n');
      }
    });
  }
  // A safety net, never reached by the flow as written: every wait ends on the signal, so the
  // report comes within milliseconds. If something still hangs, don't ignore the user's signal.
  interrupter.signal.addEventListener('abort', () => {
    const signal = interrupter.received as SignalName;
    setTimeout(() => {
      write(process.stderr, `stigmer-setup: did not stop within ${STOP_DEADLINE_MS / 1000} s of ${signal}; exiting now. Run npx stigmer-setup doctor to see what is in place.\n`);
      process.exit(SIGNAL_EXIT[signal]);
    }, STOP_DEADLINE_MS).unref();
  });
}

function symbol(kind: 'succeed' | 'fail', color: boolean): string {
  if (kind === 'succeed') return color ? '\x1b[32m✓\x1b[39m' : '✓';
  return color ? '\x1b[31m✖\x1b[39m' : '✖';
}

/** CI=true (GitHub Actions, GitLab, most others set it): no spinner and no prompt, whatever the streams are. */
export function isCi(env: Readonly<Record<string, string | undefined>>): boolean {
  const value = env.CI;
  return value !== undefined && value !== '' && !['0', 'false'].includes(value.toLowerCase());
}

/**
 * Whether a spinner may animate: stderr is a terminal with a size and is still open, and this is
 * not CI. A terminal that reports 0 columns (a pty nobody sized, e.g. `script` under `docker exec
 * -i`) makes ora erase an unbounded number of lines on every frame.
 */
export function canAnimate(env: Readonly<Record<string, string | undefined>>): boolean {
  return Boolean(process.stderr.isTTY) && (process.stderr.columns ?? 0) > 0 && !closedStreams.has(process.stderr) && !isCi(env);
}

/**
 * Whether a progress line may be redrawn in place: stderr is a terminal, still open, and this is
 * not CI. Unlike a spinner, the terminal needs no size: a redraw is `\r` and erase-line, which
 * touches the current line only, and the line is cut to 80 columns when the size is unknown (a pty
 * nobody sized, as under `script`).
 */
export function canRedraw(env: Readonly<Record<string, string | undefined>>): boolean {
  return Boolean(process.stderr.isTTY) && !closedStreams.has(process.stderr) && !isCi(env);
}

/**
 * A spinner that does not animate, writing what ora writes when it can't: "- text" when it
 * starts, "symbol text" when it ends with a result, nothing when it just stops. It needs no
 * library, so runs off a terminal (pipes, CI, --json) never load ora.
 */
function plainSpinner(text: string, silent: boolean, color: boolean): Spinner {
  const line = (prefix: string, body: string | undefined) => {
    if (!silent && body) write(process.stderr, `${prefix} ${stripControl(body)}\n`);
  };
  line('-', text);
  return {
    succeed: (done) => line(symbol('succeed', color), done ?? text),
    fail: (done) => line(symbol('fail', color), done ?? text),
    stop: () => {},
  };
}

export interface NodeContextOptions {
  /**
   * ora, passed in by the bin only when a spinner can animate (canAnimate), so that --help, pipes
   * and CI never pay for loading it. Without it, spinners are plain lines.
   */
  ora?: typeof oraFunction;
  /** Where signals arrive: the bin shares one with installSignalHandlers; a new, quiet one otherwise. */
  interrupter?: Interrupter;
}

export function createNodeContext(options: NodeContextOptions = {}): Context {
  guardStream(process.stdout);
  guardStream(process.stderr);
  const color = colorEnabled(process.env, Boolean(process.stderr.isTTY));
  const interrupter = options.interrupter ?? new Interrupter();
  const children: Children = { running: new Set(), interrupter };
  const spinners = new Set<{ stop(): void }>();
  /** A progress line is on screen without its newline yet. */
  let redrawing = false;
  interrupter.signal.addEventListener('abort', () => {
    for (const child of children.running) killGroup(child);
    // An animated spinner would go on drawing over the report.
    for (const spinner of spinners) spinner.stop();
  });
  return {
    platform: process.platform as Platform,
    env: process.env,
    // Prompting needs a terminal on both ends, and never happens in CI.
    isTTY: Boolean(process.stdin.isTTY && process.stdout.isTTY) && !isCi(process.env),
    isRoot: typeof process.getuid === 'function' && process.getuid() === 0,
    uid: typeof process.getuid === 'function' ? process.getuid() : undefined,
    pid: process.pid,
    exec: (command, args, execOptions) => runCommand(children, command, args, execOptions),
    launch,
    processExists(pid) {
      try {
        process.kill(pid, 0);
        return true;
      } catch (error) {
        // EPERM: it exists, it just isn't ours to signal.
        return (error as NodeJS.ErrnoException).code === 'EPERM';
      }
    },
    networkAddresses(): NetworkAddress[] {
      return Object.entries(os.networkInterfaces()).flatMap(([name, addresses]) =>
        (addresses ?? []).map((entry) => ({ name, address: entry.address, family: entry.family === 'IPv6' ? 6 : 4, internal: entry.internal }) as const),
      );
    },
    tcpConnect: (connectOptions) => tcpConnect(interrupter, connectOptions),
    fs: nodeFs,
    http: { get: (url, requestOptions) => httpGet(interrupter, url, requestOptions), postStream: (url, streamOptions) => httpPostStream(interrupter, url, streamOptions) },
    clock: {
      now: () => new Date(),
      // A wait ends early on a signal: the loop around it sees the signal and stops.
      sleep: (ms) =>
        new Promise((resolve) => {
          if (!interrupter.mayStart) return resolve();
          const timer = setTimeout(done, ms);
          function done() {
            clearTimeout(timer);
            interrupter.signal.removeEventListener('abort', done);
            resolve();
          }
          interrupter.signal.addEventListener('abort', done, { once: true });
        }),
    },
    terminal: {
      color,
      get canRedraw() {
        return canRedraw(process.env);
      },
      redraw(text) {
        // \r and erase-line, then the line cut to the width: one that wraps could not be redrawn.
        const width = Math.max(10, (process.stderr.columns || 80) - 1);
        const line = [...stripControl(text).replace(/[\t\n]/g, ' ')].slice(0, width).join('');
        redrawing = true;
        write(process.stderr, `\r\x1b[2K${line}`);
      },
      endRedraw() {
        if (redrawing) write(process.stderr, '\n');
        redrawing = false;
      },
      // Everything printed for a person may quote the system (process names, file contents,
      // command errors): strip terminal control sequences on the way out.
      print: (text) => write(process.stdout, `${stripControl(text).replace(/\n$/, '')}\n`),
      printStyled: (text) => write(process.stdout, `${text.replace(/\n$/, '')}\n`),
      printError: (text) => {
        // A message never continues a progress line that is still being redrawn.
        if (redrawing) write(process.stderr, '\n');
        redrawing = false;
        write(process.stderr, `${stripControl(text).replace(/\n$/, '')}\n`);
      },
      // JSON.stringify escapes control characters itself, so the object goes out as is.
      printJson: (value) => write(process.stdout, `${JSON.stringify(value, null, 2)}\n`),
      spinner(text, { silent }): Spinner {
        // ora writes to stderr; isSilent keeps --json clean. Off a sized terminal, plain lines.
        const ora = options.ora;
        if (!ora || !canAnimate(process.env)) return plainSpinner(text, silent || closedStreams.has(process.stderr), color);
        const spinner = ora({ text: stripControl(text), isSilent: silent || closedStreams.has(process.stderr), isEnabled: true, discardStdin: false, color: color ? 'cyan' : false }).start();
        spinners.add(spinner);
        return {
          succeed: (done) => spinner.stopAndPersist({ symbol: symbol('succeed', color), text: done === undefined ? undefined : stripControl(done) }),
          fail: (done) => spinner.stopAndPersist({ symbol: symbol('fail', color), text: done === undefined ? undefined : stripControl(done) }),
          stop: () => spinner.stop(),
        };
      },
      async confirm(question, initial) {
        let cancelled = false;
        // Loaded only when a question is asked: every run without a prompt skips it.
        const { default: prompts } = await import('prompts');
        interrupter.throwIfInterrupted();
        // A signal from outside (SIGTERM, or kill -INT: Ctrl-C typed here is a key, which prompts
        // reads as a cancel) abandons the question; the bin exits once the run has reported.
        let stop: () => void = () => {};
        const interrupted = new Promise<never>((_, reject) => {
          stop = () => reject(new InterruptedError(interrupter.received as SignalName));
          interrupter.signal.addEventListener('abort', stop, { once: true });
        });
        try {
          const answer = await Promise.race([
            prompts(
              { type: 'confirm', name: 'value', message: question, initial },
              // prompts resolves with partial answers on Ctrl-C unless onCancel says otherwise.
              { onCancel: () => { cancelled = true; return false; } },
            ),
            interrupted,
          ]);
          if (cancelled || typeof answer.value !== 'boolean') throw new CancelledError();
          return answer.value;
        } finally {
          interrupter.signal.removeEventListener('abort', stop);
        }
      },
      uninterruptible: (work) => interrupter.hold(work),
      interrupt: interrupter.signal,
    },
  };
}
