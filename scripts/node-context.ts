/**
 * The real Context: Node's child_process, fs, http and the terminal. Nothing else in the product
 * imports these modules, so this file is the whole surface that tests replace.
 */
import { spawn } from 'node:child_process';
import { constants as fsConstants, promises as fsp } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import ora from 'ora';
import prompts from 'prompts';
import { CancelledError, type Context, type ExecOptions, type ExecResult, type FileSystem, type HttpResult, type Platform, type Spinner } from './context.ts';

function runCommand(command: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    // shell: false — the argv array goes to execvp as is, so no value can be re-read as shell syntax.
    // Node resolves `command` through PATH itself.
    const child = spawn(command, args, {
      shell: false,
      stdio: [options.inheritTerminal ? 'inherit' : 'pipe', 'pipe', options.inheritTerminal ? 'inherit' : 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    const finish = (result: ExecResult) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve(result);
    };
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, options.timeoutMs)
      : undefined;
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      finish({ exitCode: null, stdout, stderr: stderr || error.message, failure: error.code === 'ENOENT' ? 'not-found' : 'spawn-error' });
    });
    child.on('close', (code) => {
      finish(timedOut ? { exitCode: null, stdout, stderr, failure: 'timeout' } : { exitCode: code, stdout, stderr });
    });
    if (child.stdin && !options.inheritTerminal) {
      child.stdin.on('error', () => {}); // a command that exits before reading its input is not our error
      child.stdin.end(options.input ?? '');
    }
  });
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

const nodeFs: FileSystem = {
  async readText(file) {
    try {
      return await fsp.readFile(file, 'utf8');
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  },
  async writeText(file, content, mode = 0o644) {
    await fsp.mkdir(path.dirname(file), { recursive: true });
    // Write a sibling and rename it over the target: a reader (or a crash) never sees half a file.
    const temporary = `${file}.stigmer-setup-${process.pid}.tmp`;
    await fsp.writeFile(temporary, content, { mode });
    await fsp.chmod(temporary, mode);
    await fsp.rename(temporary, file);
  },
  async remove(file) {
    await fsp.rm(file, { force: true });
  },
  async removeTree(dir) {
    await fsp.rm(dir, { recursive: true, force: true });
  },
  async exists(file) {
    try {
      await fsp.access(file);
      return true;
    } catch {
      return false;
    }
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

function httpGet(url: string, options: { timeoutMs: number; headers?: Record<string, string> }): Promise<HttpResult> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: HttpResult) => {
      if (!settled) {
        settled = true;
        resolve(result);
      }
    };
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

export function createNodeContext(): Context {
  return {
    platform: process.platform as Platform,
    env: process.env,
    isTTY: Boolean(process.stdin.isTTY && process.stdout.isTTY),
    isRoot: typeof process.getuid === 'function' && process.getuid() === 0,
    exec: runCommand,
    fs: nodeFs,
    http: { get: httpGet },
    clock: {
      now: () => new Date(),
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    },
    terminal: {
      print: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
      printError: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
      printJson: (value) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`),
      spinner(text, { silent }): Spinner {
        // ora writes to stderr and falls back to plain lines off a TTY; isSilent keeps --json clean.
        // A terminal that reports 0 columns (a pty nobody sized, e.g. `script` under `docker exec -i`)
        // makes ora erase an unbounded number of lines on every frame: animate only on a real size.
        const animate = Boolean(process.stderr.isTTY) && (process.stderr.columns ?? 0) > 0;
        const spinner = ora({ text, isSilent: silent, isEnabled: animate, discardStdin: false }).start();
        return {
          succeed: (done) => spinner.succeed(done),
          fail: (done) => spinner.fail(done),
          stop: () => spinner.stop(),
        };
      },
      async confirm(question, initial) {
        let cancelled = false;
        const answer = await prompts(
          { type: 'confirm', name: 'value', message: question, initial },
          // prompts resolves with partial answers on Ctrl-C unless onCancel says otherwise.
          { onCancel: () => { cancelled = true; return false; } },
        );
        if (cancelled || typeof answer.value !== 'boolean') throw new CancelledError();
        return answer.value;
      },
      async uninterruptible(work) {
        const hold = () => process.stderr.write('\nstigmer-setup: finishing the current change first, so nothing is left half-applied…\n');
        process.on('SIGINT', hold);
        process.on('SIGTERM', hold);
        try {
          return await work();
        } finally {
          process.off('SIGINT', hold);
          process.off('SIGTERM', hold);
        }
      },
    },
  };
}
