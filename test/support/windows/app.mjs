// app.mjs: the fake Ollama tray app ("ollama app.exe") of the Windows sandbox.
//
// createSandbox writes a small launcher under the app's Windows name into the sandbox folder; the
// launcher calls runApp(). What it models, from ollama/ollama (see ollama-facts.md §2 and §4):
//   * Environment: the app has the environment of whoever launched it (Windows programs inherit the
//     launcher's environment; the Start menu gives Explorer's, which holds the User/Machine stores).
//     The server gets a copy of the app's environment (app/server/server.go cmd(): os.Environ()).
//   * Single instance: a second app exits at once, "existing instance found, exiting"
//     (app/cmd/app/app_windows.go handleExistingInstance), leaving the first one and its environment.
//   * Settings: before each server start it reads %LOCALAPPDATA%\Ollama\db.sqlite; expose = 1 forces
//     OLLAMA_HOST=0.0.0.0 and browser = 1 OLLAMA_ORIGINS=* (server.go cmd()).
//   * Run loop: wait restartDelay (1 s), start `ollama.exe serve` (here: node fake-ollama.mjs serve,
//     recorded as image "ollama.exe"), write %LOCALAPPDATA%\Ollama\ollama.pid, wait; a server that
//     dies is started again after 1 s with the same (stale) environment. On its first exit with code 1
//     the app "reaps" other ollama.exe servers once (server_windows.go reapServers).
//   * At start it stops a server left over from a previous app (pid file; server.go cleanup()).
//   * Server output goes to %LOCALAPPDATA%\Ollama\server.log (rotated at app start), the app's own
//     log to %LOCALAPPDATA%\Ollama\app.log.
//   * A port inside a netsh excluded range cannot be bound: the server fails with Windows' text
//     "bind: An attempt was made to access a socket in a way forbidden by its access permissions."
//     (ollama/ollama#2627, #2727, #8396) and exits 1.
//   * SIGTERM/SIGINT: graceful quit, stopping the server (SIGTERM, SIGKILL after 5 s). SIGHUP restarts
//     the server, as the Settings page does after a change (app/ui/ui.go s.Restart()).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOllamaHost } from '../fake-ollama.mjs';
import {
  APP_IMAGE,
  FAKE_OLLAMA,
  SERVER_IMAGE,
  isRunning,
  liveRecords,
  readConfig,
  recordProcess,
  sandboxFile,
  sqlite,
  SETTINGS_SCHEMA,
  winPaths,
} from './sandbox.mjs';

const RESTART_DELAY_MS = 1000;
const STOP_TIMEOUT_MS = 5000;
const APP_VERSION = '0.13.5';
const EXCLUDED_BIND_ERROR = 'bind: An attempt was made to access a socket in a way forbidden by its access permissions.';

function slog(level, msg, attrs = {}) {
  const extra = Object.entries(attrs)
    .map(([k, v]) => ` ${k}=${/[\s"=]/.test(String(v)) || String(v) === '' ? JSON.stringify(String(v)) : v}`)
    .join('');
  return `time=${new Date().toISOString()} level=${level} source=app.go:1 msg=${JSON.stringify(msg)}${extra}\n`;
}

/** logrotate.Rotate: server.log -> server-1.log -> ... -> server-4.log (dropped). */
function rotate(file) {
  if (!fs.existsSync(file)) return;
  const ext = path.extname(file);
  const base = file.slice(0, file.length - ext.length);
  for (let n = 4; n >= 1; n--) {
    const from = n === 1 ? file : `${base}-${n - 1}${ext}`;
    if (fs.existsSync(from)) fs.renameSync(from, `${base}-${n}${ext}`);
  }
}

function readSettings(dbFile) {
  if (!fs.existsSync(dbFile)) return { expose: false, browser: false };
  const result = sqlite(['-readonly', dbFile, 'SELECT expose, browser FROM settings WHERE id = 1;']);
  const [expose = '0', browser = '0'] = (result.stdout ?? '').trim().split('|');
  return { expose: expose === '1', browser: browser === '1' };
}

function inExcludedRange(config, port) {
  return (config.excludedPorts ?? []).some(([start, end]) => port >= start && port <= end);
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

async function stopProcess(child) {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    child.kill('SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      child.kill('SIGKILL');
    } catch {
      // gone
    }
  }, STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

async function stopPid(pid, startTime) {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (isRunning(pid, startTime) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  if (isRunning(pid, startTime)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

export async function runApp({ sandbox, imagePath }) {
  const config = readConfig(sandbox);
  // Go: filepath.Join(os.Getenv("LOCALAPPDATA"), "Ollama", ...)
  const localAppData = process.env.LOCALAPPDATA || config.localAppData;
  const paths = winPaths(localAppData, config.appDir);
  const file = (winPath) => sandboxFile(sandbox, winPath);
  fs.mkdirSync(file(paths.dataDir), { recursive: true });
  const log = (level, msg, attrs) => fs.appendFileSync(file(paths.appLog), slog(level, msg, attrs));

  log('INFO', 'starting Ollama', { app: paths.installDir, version: APP_VERSION, OS: 'windows' });
  if (liveRecords(sandbox).some((r) => r.image === APP_IMAGE && r.pid !== process.pid)) {
    log('INFO', 'existing instance found, exiting');
    process.exit(0);
  }
  recordProcess(sandbox, { pid: process.pid, image: APP_IMAGE, parentPid: process.ppid, ollamaHost: process.env.OLLAMA_HOST, path: imagePath });

  // The app's store creates the database on first start.
  if (!fs.existsSync(file(paths.db))) sqlite([file(paths.db)], SETTINGS_SCHEMA);

  const stopping = new AbortController();
  let restart = new AbortController();
  let child;

  // cleanup(): a server left running by a previous app (its pid file) is stopped first.
  const pidFile = file(paths.pidFile);
  const previous = Number(fs.existsSync(pidFile) ? fs.readFileSync(pidFile, 'utf8').trim() : NaN);
  if (Number.isInteger(previous) && previous > 0) {
    // Only a process this sandbox knows as ollama.exe: never a Linux process that reused the pid.
    const record = liveRecords(sandbox).find((r) => r.pid === previous && r.image === SERVER_IMAGE);
    if (record !== undefined) {
      log('INFO', 'detected previous ollama process, cleaning up', { pid: previous });
      await stopPid(record.pid, record.startTime);
    }
    fs.rmSync(pidFile, { force: true });
  }

  const quit = async () => {
    if (stopping.signal.aborted) return;
    log('DEBUG', 'shutting down due to signal');
    stopping.abort();
    await stopProcess(child);
    process.exit(0);
  };
  process.on('SIGTERM', quit);
  process.on('SIGINT', quit);
  process.on('SIGHUP', () => {
    restart.abort();
    void stopProcess(child);
  });

  rotate(file(paths.serverLog));
  let reaped = false;
  while (!stopping.signal.aborted) {
    await sleep(RESTART_DELAY_MS, stopping.signal);
    if (stopping.signal.aborted) break;
    restart = new AbortController();

    const settings = readSettings(file(paths.db));
    const env = { ...process.env };
    if (settings.expose) env.OLLAMA_HOST = '0.0.0.0';
    if (settings.browser) env.OLLAMA_ORIGINS = '*';

    const parsed = parseOllamaHost(env.OLLAMA_HOST);
    const current = readConfig(sandbox);
    const logFd = fs.openSync(file(paths.serverLog), 'a');
    if (inExcludedRange(current, parsed.portNumber)) {
      // What ollama.exe serve prints when Windows refuses the bind (WSAEACCES), then exit 1.
      const message = `Error: listen tcp ${parsed.hostPort}: ${EXCLUDED_BIND_ERROR}\n`;
      child = spawn(process.execPath, ['-e', `process.stderr.write(${JSON.stringify(message)}); process.exit(1);`], { env, stdio: ['ignore', logFd, logFd] });
    } else {
      child = spawn(process.execPath, [FAKE_OLLAMA, 'serve'], { env, stdio: ['ignore', logFd, logFd] });
    }
    fs.closeSync(logFd);
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    await new Promise((resolve) => {
      child.once('spawn', resolve);
      child.once('error', resolve);
    });
    if (child.pid !== undefined) {
      recordProcess(sandbox, { pid: child.pid, image: SERVER_IMAGE, parentPid: process.pid, ollamaHost: env.OLLAMA_HOST });
      fs.writeFileSync(pidFile, String(child.pid));
    }
    const { code: exitCode, signal } = await exited;
    // taskkill /F is TerminateProcess(handle, 1): on Windows a killed server exits with status 1.
    const code = signal ? 1 : exitCode;
    if (stopping.signal.aborted) break;
    if (restart.signal.aborted) continue;
    if (code === 1 && !reaped) {
      reaped = true;
      // reapServers(): this could be a port conflict; kill the other ollama.exe servers, once.
      for (const r of liveRecords(sandbox)) {
        if (r.image !== SERVER_IMAGE || r.pid === child.pid) continue;
        try {
          process.kill(r.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      log('DEBUG', 'conflicting server stopped, waiting for port to be released');
      continue;
    }
    log('ERROR', 'ollama exited', { err: `exit status ${code}` });
  }
  await stopProcess(child);
  process.exit(0);
}


// Entry point: the launcher createSandbox writes runs `node app.mjs --sandbox <dir> [app arguments]`.
if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--sandbox');
  const sandbox = at === -1 ? undefined : process.argv[at + 1];
  if (sandbox === undefined) {
    process.stderr.write('usage: node app.mjs --sandbox <dir> [ollama app arguments]\n');
    process.exit(2);
  }
  const pathAt = process.argv.indexOf('--image-path');
  await runApp({ sandbox, imagePath: pathAt === -1 ? undefined : process.argv[pathAt + 1] });
}
