#!/usr/bin/env node
// fake-ollama-app.mjs: the Ollama.app process ("Ollama") for the macOS sandbox.
//
// `open -a Ollama` runs this as <bundle>/Contents/MacOS/Ollama (node under that name, so the
// process name is "Ollama"), with the environment LaunchServices gives apps: the launchd user
// domain's (`launchctl setenv`), NOT the environment of the shell that ran `open`.
//
// It reproduces what ollama/ollama app/server/server.go (Run, cmd) and server_unix.go do
// (commit fb30760, see ollama-facts.md §2, §5):
//   * cleanup(): if ~/Library/Application Support/Ollama/ollama.pid names a live process, stop it
//     (SIGINT, SIGKILL after 5 s) and remove the file;
//   * loop: wait restartDelay (1 s), build the server's environment = the app's environment plus
//     the settings from db.sqlite, read again on every start (expose -> OLLAMA_HOST=0.0.0.0,
//     browser -> OLLAMA_ORIGINS=*, models -> OLLAMA_MODELS if it exists, context_length ->
//     OLLAMA_CONTEXT_LENGTH, OLLAMA_NO_CLOUD=0), start <bundle>/Contents/Resources/ollama serve
//     with stdout/stderr appended to ~/.ollama/logs/server.log, write the pid file, wait;
//   * the first time the server exits with status 1 (a port conflict, for example) it runs
//     reapServers(): SIGTERM to every other process named "ollama" whose arguments are
//     `ollama serve|start` (here: of this sandbox only), then restarts;
//   * SIGTERM/SIGINT: stop the server (SIGINT, SIGKILL after 5 s) and exit 0. With the sandbox's
//     state.appIgnoresTerm set (setAppIgnoresTerm), SIGTERM is ignored: a hung app.
// The app and server pids are recorded in the sandbox state (state.app).
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isAlive, killQuietly, matchProcesses, procCmdline, procRef, withState } from './sandbox.mjs';

const dir = process.env.STIGMER_MAC_SANDBOX;
if (!dir) {
  process.stderr.write('fake-ollama-app: STIGMER_MAC_SANDBOX is not set\n');
  process.exit(70);
}
const HOME = process.env.HOME ?? '';
const RESTART_DELAY_MS = 1000;
const STOP_TIMEOUT_MS = 5000;
const supportDir = path.join(HOME, 'Library', 'Application Support', 'Ollama');
const pidFile = path.join(supportDir, 'ollama.pid');
const dbPath = path.join(supportDir, 'db.sqlite');
const serverLogPath = path.join(HOME, '.ollama', 'logs', 'server.log');
const appLogPath = path.join(HOME, '.ollama', 'logs', 'app.log');

// os.Executable() is <bundle>/Contents/MacOS/Ollama; the server binary is ../Resources/ollama.
const exe = process.argv0 && process.argv0.includes('/') ? process.argv0 : '';
const serverBin = exe ? path.join(path.dirname(exe), '..', 'Resources', 'ollama') : 'ollama';

let child = null;
let stopping = false;
let reaped = false;

function appLog(level, msg) {
  try {
    mkdirSync(path.dirname(appLogPath), { recursive: true });
    writeFileSync(appLogPath, `time=${new Date().toISOString()} level=${level} msg=${JSON.stringify(msg)}\n`, { flag: 'a' });
  } catch {
    // logging is best effort
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** SIGINT, poll, SIGKILL after 5 s (server.go stop()). */
async function stopProcess(ref) {
  if (!isAlive(ref)) return;
  killQuietly(ref.pid, 'SIGINT');
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (isAlive(ref) && Date.now() < deadline) await sleep(10);
  if (isAlive(ref)) {
    appLog('WARN', `timeout waiting for graceful shutdown; killing pid=${ref.pid}`);
    killQuietly(ref.pid, 'SIGKILL');
  }
}

async function cleanup() {
  let text;
  try {
    text = readFileSync(pidFile, 'utf8');
  } catch {
    return;
  }
  rmSync(pidFile, { force: true });
  const pid = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(pid) || pid <= 0) return;
  const ref = { pid, start: null };
  if (!isAlive(ref)) return;
  appLog('INFO', `detected previous ollama process, cleaning up pid=${pid}`);
  await stopProcess(ref);
}

/** The Expose/Browser/Models/ContextLength settings, via the real sqlite3 CLI (read-only). */
function settings() {
  const out = { expose: false, browser: false, models: '', contextLength: 0 };
  if (!existsSync(dbPath)) return out;
  const query = (sql) => {
    const r = spawnSync('/usr/bin/sqlite3', ['-readonly', dbPath, sql], { encoding: 'utf8', timeout: 5000 });
    return r.status === 0 ? r.stdout.trim() : null;
  };
  out.expose = query('SELECT expose FROM settings WHERE id = 1;') === '1';
  // The other columns may be absent from a minimal test database.
  out.browser = query('SELECT browser FROM settings WHERE id = 1;') === '1';
  out.models = query('SELECT models FROM settings WHERE id = 1;') ?? '';
  out.contextLength = Number(query('SELECT context_length FROM settings WHERE id = 1;') ?? 0) || 0;
  return out;
}

function serverEnv() {
  const env = { ...process.env };
  const s = settings();
  if (s.expose) env.OLLAMA_HOST = '0.0.0.0';
  if (s.browser) env.OLLAMA_ORIGINS = '*';
  if (s.models !== '') {
    if (existsSync(s.models)) env.OLLAMA_MODELS = s.models;
    else appLog('WARN', `models path not accessible, using default path=${s.models}`);
  }
  if (s.contextLength > 0) env.OLLAMA_CONTEXT_LENGTH = String(s.contextLength);
  env.OLLAMA_NO_CLOUD = '0';
  return env;
}

/** logrotate.Rotate: server.log -> server-1.log -> … (five kept). */
function rotateLog() {
  try {
    mkdirSync(path.dirname(serverLogPath), { recursive: true });
    if (!existsSync(serverLogPath)) return;
    const base = serverLogPath.replace(/\.log$/, '');
    rmSync(`${base}-5.log`, { force: true });
    for (let i = 4; i >= 1; i--) if (existsSync(`${base}-${i}.log`)) renameSync(`${base}-${i}.log`, `${base}-${i + 1}.log`);
    renameSync(serverLogPath, `${base}-1.log`);
  } catch {
    // best effort
  }
}

/** ollamaServeArgs from server.go, told about the stand-in: `ollama [flags] serve|start`. */
function ollamaServeArgs(args) {
  if (args.length < 2) return false;
  if (!['ollama', 'ollama.exe'].includes(path.basename(args[0].replace(/"/g, '')))) return false;
  for (const raw of args.slice(1)) {
    const arg = raw.replace(/^"|"$/g, '');
    if (arg.startsWith('-')) continue;
    // Here `ollama` is node running fake-ollama.mjs: skip the script to reach the subcommand.
    if (arg.endsWith('fake-ollama.mjs')) continue;
    return arg === 'serve' || arg === 'start';
  }
  return false;
}

function reapServers() {
  for (const p of matchProcesses(dir, { pattern: 'ollama', exact: true })) {
    if (p.pid === process.pid) continue;
    if (!ollamaServeArgs(procCmdline(p.pid))) continue;
    if (killQuietly(p.pid, 'SIGTERM') || killQuietly(p.pid, 'SIGKILL')) appLog('INFO', `stopped external ollama process pid=${p.pid}`);
  }
}

function record(update) {
  try {
    withState(dir, (state) => {
      if (!state.app || state.app.pid !== process.pid) state.app = { ...procRef(process.pid), args: process.argv.slice(2), server: null, serverStarts: 0 };
      update(state.app);
    });
  } catch (err) {
    appLog('ERROR', `state update failed: ${err.message}`);
  }
}

async function shutdown() {
  if (stopping) return;
  stopping = true;
  appLog('INFO', 'received SIGINT or SIGTERM signal, shutting down');
  if (child && child.exitCode === null && child.signalCode === null) await stopProcess(procRef(child.pid));
  try {
    withState(dir, (state) => {
      if (state.app?.pid === process.pid) state.app = null;
    });
  } catch {
    // exiting anyway
  }
  process.exit(0);
}
process.on('SIGTERM', () => {
  let ignores = false;
  try {
    ignores = withState(dir, (state) => state.appIgnoresTerm === true);
  } catch {
    // no state: quit as usual
  }
  if (ignores) appLog('INFO', 'SIGTERM ignored (stigmer mac sandbox: a hung app)');
  else void shutdown();
});
process.on('SIGINT', () => void shutdown());

async function run() {
  record(() => {});
  await cleanup();
  rotateLog();
  for (let starts = 0; !stopping && starts < 10_000; starts++) {
    await sleep(RESTART_DELAY_MS);
    if (stopping) return;
    const env = serverEnv();
    const fd = openSync(serverLogPath, 'a');
    let c;
    try {
      c = spawn(serverBin, ['serve'], { env, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    if (c.pid === undefined) {
      appLog('ERROR', `failed to start ${serverBin}`);
      c.on('error', () => {});
      record((app) => {
        app.server = null;
      });
      process.exit(1);
    }
    child = c;
    try {
      writeFileSync(pidFile, String(c.pid), { mode: 0o644 });
    } catch {
      mkdirSync(supportDir, { recursive: true });
      writeFileSync(pidFile, String(c.pid), { mode: 0o644 });
    }
    record((app) => {
      app.server = procRef(c.pid);
      app.serverStarts = (app.serverStarts ?? 0) + 1;
      app.serverHost = env.OLLAMA_HOST ?? null;
    });
    const [code, signal] = await new Promise((resolve) => c.once('exit', (co, si) => resolve([co, si])));
    child = null;
    record((app) => {
      app.server = null;
      app.lastServerExit = { code, signal };
    });
    if (stopping) return;
    if (code === 1 && !reaped) {
      reaped = true;
      reapServers();
      appLog('DEBUG', 'conflicting server stopped, waiting for port to be released');
      continue;
    }
    appLog('ERROR', `ollama exited code=${code} signal=${signal}`);
  }
}

await run();
