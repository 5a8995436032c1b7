// Spawn the fake `ollama serve` (fake-ollama.mjs) as a real child process.
// Shared by the unit tests (loopback only) and the e2e suites (host-side binds).
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

/** Absolute path of the stand-in script. */
export const STANDIN_PATH = fileURLToPath(new URL('./fake-ollama.mjs', import.meta.url));

export interface StandinOptions {
  /** OLLAMA_HOST for the child; undefined = unset (Ollama's default 127.0.0.1:11434). */
  ollamaHost?: string | undefined;
  /** Extra environment (STANDIN_VERSION, STANDIN_MODELS, ...). */
  env?: Record<string, string | undefined>;
  /** How long to wait for the "Listening on" line or an exit. Default 10 s. */
  timeoutMs?: number;
}

export interface RunningStandin {
  child: ChildProcess;
  /** What the stand-in printed after "Listening on", e.g. "127.0.0.1:40123" or "[::]:40123". */
  listenAddr: string;
  port: number;
  /** Everything written to stderr so far (server log + GIN request lines). */
  log(): string;
  /** SIGTERM, then SIGKILL after 3 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface StandinFailure {
  code: number | null;
  log: string;
}

/** A currently free TCP port on 127.0.0.1 (kernel-chosen, so high and random). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0 }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function childEnv(opts: StandinOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.OLLAMA_HOST;
  if (opts.ollamaHost !== undefined) env.OLLAMA_HOST = opts.ollamaHost;
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/**
 * Start the stand-in and wait (bounded) until it logs "Listening on ...".
 * Rejects with the log if it exits first (e.g. "bind: address already in use") or times out.
 */
export async function startStandin(opts: StandinOptions = {}): Promise<RunningStandin> {
  const child = spawn(process.execPath, [STANDIN_PATH, 'serve'], {
    env: childEnv(opts),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    log += chunk;
  });

  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
  });

  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    }
    return child.exitCode;
  };

  const timeoutMs = opts.timeoutMs ?? 10_000;
  const listenAddr = await new Promise<string>((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      const m = /Listening on (\S+) \(version/.exec(log);
      if (m?.[1]) {
        clearInterval(timer);
        resolve(m[1]);
      } else if (child.exitCode !== null) {
        clearInterval(timer);
        reject(Object.assign(new Error(`stand-in exited with ${child.exitCode}:\n${log}`), { code: child.exitCode, log }));
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(timer);
        void stop();
        reject(new Error(`stand-in did not start within ${timeoutMs} ms:\n${log}`));
      }
    }, 20);
  });

  const port = Number(listenAddr.slice(listenAddr.lastIndexOf(':') + 1));
  return { child, listenAddr, port, log: () => log, stop };
}

/**
 * Run the stand-in expecting it to fail to start (e.g. port in use).
 * Resolves with exit code and log; rejects if it starts listening instead.
 */
export async function expectStandinFailure(opts: StandinOptions = {}): Promise<StandinFailure> {
  try {
    const running = await startStandin(opts);
    await running.stop();
    throw new Error(`stand-in unexpectedly listened on ${running.listenAddr}`);
  } catch (err) {
    const e = err as { code?: number | null; log?: string };
    if (e.log === undefined) throw err;
    return { code: e.code ?? null, log: e.log };
  }
}

/** `node fake-ollama.mjs --print-bind` with the given OLLAMA_HOST: parser output without opening a socket. */
export async function printBind(ollamaHost: string | undefined): Promise<unknown> {
  const child = spawn(process.execPath, [STANDIN_PATH, '--print-bind'], {
    env: childEnv({ ollamaHost }),
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 10_000,
  });
  let out = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (c: string) => (out += c));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`--print-bind exited ${code}`);
  return JSON.parse(out) as unknown;
}
