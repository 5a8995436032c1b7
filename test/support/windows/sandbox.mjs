// sandbox.mjs: a Windows sandbox on Linux for stigmer-setup's win32 code.
//
// The product computes Windows paths with path.win32 ("C:\Users\ada\AppData\Local\..."). On Linux
// those strings contain no "/", so they are plain file names: the sandbox runs the product with
// cwd = the sandbox folder, and every Windows path becomes a file (or folder) of exactly that name
// inside it. Windows commands are shims in ./bin (first on PATH); the Ollama tray app is a node
// script written into the sandbox under its Windows name, and its server is test/support/fake-ollama.mjs.
//
// Layout of a sandbox folder (besides the Windows-named files):
//   sandbox.json        the options (admin, service, excludedPorts, runtime, ...)
//   env-user.json       HKCU\Environment: the User-scope store ([Environment]::...('User'))
//   env-machine.json    HKLM\...\Environment: the Machine-scope store
//   processes/<pid>.json  one file per process with a Windows image name ("ollama app.exe", "ollama.exe");
//                       a record counts only while /proc/<pid> has the same start time (no pid reuse)
//   transcript.jsonl    one JSON line per shim call, in order
// Every JSON state file is written atomically (temp file + rename).
//
// Shared by the shims (./bin), the fake app (./app.mjs) and the tests (types: ./sandbox.d.mts).
// Importing this module has no side effects.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SANDBOX_VAR = 'STIGMER_WIN_SANDBOX';
export const BIN_DIR = fileURLToPath(new URL('./bin', import.meta.url));
export const APP_MODULE = fileURLToPath(new URL('./app.mjs', import.meta.url));
export const FAKE_OLLAMA = fileURLToPath(new URL('../fake-ollama.mjs', import.meta.url));
export const APP_IMAGE = 'ollama app.exe';
export const SERVER_IMAGE = 'ollama.exe';
export const CRLF = '\r\n';

const CONFIG_FILE = 'sandbox.json';
const PROCESS_DIR = 'processes';
const TRANSCRIPT_FILE = 'transcript.jsonl';
const STORE_FILES = { User: 'env-user.json', Machine: 'env-machine.json' };

export const DEFAULTS = Object.freeze({
  localAppData: 'C:\\Users\\ada\\AppData\\Local',
  /** The app's folder (a Windows path); undefined: the per-user default, %LOCALAPPDATA%\\Programs\\Ollama. */
  appDir: undefined,
  /** Pids that taskkill /F reports as terminated but that keep running (a process stuck in a driver call). */
  stuckPids: [],
  userProfile: 'C:\\Users\\ada',
  appInstalled: true,
  admin: false,
  service: false,
  excludedPorts: [],
  runtime: 'no-forward',
  userEnv: {},
  machineEnv: {},
});

// ---------------------------------------------------------------------------
// Windows paths as sandbox files

/** The Windows paths the fake app and the product use, for one %LOCALAPPDATA%. */
export function winPaths(localAppData, appDir) {
  const w = path.win32;
  const installDir = appDir ?? w.join(localAppData, 'Programs', 'Ollama');
  const dataDir = w.join(localAppData, 'Ollama');
  return {
    installDir,
    app: w.join(installDir, APP_IMAGE),
    dataDir,
    db: w.join(dataDir, 'db.sqlite'),
    appLog: w.join(dataDir, 'app.log'),
    serverLog: w.join(dataDir, 'server.log'),
    pidFile: w.join(dataDir, 'ollama.pid'),
    stateDir: w.join(localAppData, 'stigmer-setup'),
    undoFile: w.join(localAppData, 'stigmer-setup', 'undo.json'),
  };
}

/** The Linux file that stands for `winPath` in the sandbox folder `dir`. */
export function sandboxFile(dir, winPath) {
  if (winPath.includes('/') || winPath === '' || winPath === '.' || winPath === '..') {
    throw new Error(`not a Windows path the sandbox can map to one file name: ${JSON.stringify(winPath)}`);
  }
  return path.join(dir, winPath);
}

// ---------------------------------------------------------------------------
// JSON state

export function readJson(file, fallback) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return fallback;
  }
}

/** Write JSON so that a concurrent reader sees the old or the new file, never half of one. */
export function writeJsonAtomic(file, value) {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

export function readConfig(dir) {
  const config = readJson(path.join(dir, CONFIG_FILE), undefined);
  if (config === undefined) throw new Error(`${dir} is not a Windows sandbox (no ${CONFIG_FILE})`);
  return config;
}

export function writeConfig(dir, config) {
  writeJsonAtomic(path.join(dir, CONFIG_FILE), config);
}

// ---------------------------------------------------------------------------
// The User and Machine environment stores (names are case-insensitive on Windows)

function storeFile(dir, scope) {
  const file = STORE_FILES[scope];
  if (file === undefined) throw new Error(`unknown environment scope ${scope}`);
  return path.join(dir, file);
}

export function readStore(dir, scope) {
  return readJson(storeFile(dir, scope), {});
}

export function writeStore(dir, scope, store) {
  writeJsonAtomic(storeFile(dir, scope), store);
}

export function storeGet(store, name) {
  const key = Object.keys(store).find((k) => k.toUpperCase() === name.toUpperCase());
  return key === undefined ? undefined : store[key];
}

/** A copy of `store` with `name` set to `value`, or removed when `value` is undefined. */
export function storeSet(store, name, value) {
  const next = {};
  for (const [k, v] of Object.entries(store)) if (k.toUpperCase() !== name.toUpperCase()) next[k] = v;
  if (value !== undefined) next[name] = value;
  return next;
}

// ---------------------------------------------------------------------------
// Processes (the real Linux ones)

/** /proc/<pid>/stat: state, parent and start time (clock ticks since boot), or undefined. */
export function procStat(pid) {
  let text;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const rest = text.slice(close + 2).split(' ');
  return { pid: Number(pid), comm, state: rest[0] ?? '?', ppid: Number(rest[1]), startTime: rest[19] ?? '' };
}

/** Running (not exited, not a zombie). With `startTime`, also the same process, not a reused pid. */
export function isRunning(pid, startTime) {
  const stat = procStat(pid);
  if (stat === undefined || stat.state === 'Z' || stat.state === 'X') return false;
  return startTime === undefined || stat.startTime === startTime;
}

/** Every process in /proc. */
export function listProcs() {
  const procs = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    const stat = procStat(name);
    if (stat !== undefined && stat.state !== 'Z' && stat.state !== 'X') procs.push(stat);
  }
  return procs;
}

/** Descendants of `pid`, deepest first (the order taskkill /T reports them). */
export function descendantsOf(pid, procs = listProcs()) {
  const children = new Map();
  for (const p of procs) {
    if (!children.has(p.ppid)) children.set(p.ppid, []);
    children.get(p.ppid).push(p);
  }
  const out = [];
  const seen = new Set([pid]);
  const visit = (parent) => {
    for (const child of children.get(parent) ?? []) {
      if (seen.has(child.pid)) continue;
      seen.add(child.pid);
      visit(child.pid);
      out.push(child);
    }
  };
  visit(pid);
  return out;
}

/** Resident memory in KiB (VmRSS), or 0. */
export function memKb(pid) {
  try {
    const m = /^VmRSS:\s+([0-9]+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Does the process's environment say it belongs to sandbox `dir`? */
export function procInSandbox(pid, dir) {
  try {
    return fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`${SANDBOX_VAR}=${dir}`);
  } catch {
    return false;
  }
}

/** Remember that `pid` is a Windows process named `image` (only while it runs). */
export function recordProcess(dir, { pid, image, parentPid, ollamaHost, path: winPath }) {
  const stat = procStat(pid);
  if (stat === undefined) return undefined;
  const record = { pid, image, parentPid: parentPid ?? stat.ppid, startTime: stat.startTime, ollamaHost: ollamaHost ?? null, started: new Date().toISOString() };
  // The Windows path it was started from (Win32_Process.ExecutablePath); absent: Windows won't say.
  if (winPath !== undefined) record.path = winPath;
  fs.mkdirSync(path.join(dir, PROCESS_DIR), { recursive: true });
  writeJsonAtomic(path.join(dir, PROCESS_DIR, `${pid}.json`), record);
  return record;
}

/** The recorded processes that still run, by pid. */
export function liveRecords(dir) {
  let names = [];
  try {
    names = fs.readdirSync(path.join(dir, PROCESS_DIR));
  } catch {
    return [];
  }
  const records = [];
  for (const name of names) {
    if (!/^[0-9]+\.json$/.test(name)) continue;
    const record = readJson(path.join(dir, PROCESS_DIR, name), undefined);
    if (record && isRunning(record.pid, record.startTime)) records.push(record);
  }
  return records.sort((a, b) => a.pid - b.pid);
}

// ---------------------------------------------------------------------------
// Shims

export function appendTranscript(dir, entry) {
  fs.appendFileSync(path.join(dir, TRANSCRIPT_FILE), `${JSON.stringify(entry)}\n`);
}

export function readTranscript(dir) {
  let text = '';
  try {
    text = fs.readFileSync(path.join(dir, TRANSCRIPT_FILE), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));
}

/**
 * Run one shim: find the sandbox (env STIGMER_WIN_SANDBOX), append the call to the transcript
 * (before running, so a call that is killed is still recorded), run `impl`, exit with its code.
 * `impl({ dir, cmd, args, config })` writes to process.stdout/stderr itself and returns the exit code.
 */
export async function runShim(impl, { recordEnv = [] } = {}) {
  const cmd = path.basename(process.argv[1] ?? 'shim');
  const args = process.argv.slice(2);
  const dir = process.env[SANDBOX_VAR];
  if (!dir || !fs.existsSync(path.join(dir, CONFIG_FILE))) {
    process.stderr.write(`${cmd}: Windows-sandbox shim run outside a sandbox (${SANDBOX_VAR}=${dir ?? ''} is not a sandbox folder)\n`);
    process.exitCode = 2;
    return;
  }
  const entry = { cmd, args };
  if (recordEnv.length > 0) {
    entry.env = {};
    for (const name of recordEnv) if (process.env[name] !== undefined) entry.env[name] = process.env[name];
  }
  entry.pid = process.pid;
  entry.time = new Date().toISOString();
  appendTranscript(dir, entry);
  let code;
  try {
    code = await impl({ dir, cmd, args, config: readConfig(dir) });
  } catch (error) {
    process.stderr.write(`${cmd} (Windows-sandbox shim) failed: ${error?.stack ?? error}\n`);
    code = 255;
  }
  process.exitCode = code;
}

// ---------------------------------------------------------------------------
// The desktop app's settings database (%LOCALAPPDATA%\Ollama\db.sqlite)

/**
 * The settings table of the first released schema (ollama/ollama app/store: the "version 2 schema for
 * the app database, the first released schema to users"); the app reads `expose` from row id = 1.
 */
export const SETTINGS_SCHEMA = `CREATE TABLE IF NOT EXISTS settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    device_id TEXT NOT NULL DEFAULT '',
    has_completed_first_run BOOLEAN NOT NULL DEFAULT 0,
    expose BOOLEAN NOT NULL DEFAULT 0,
    survey BOOLEAN NOT NULL DEFAULT TRUE,
    browser BOOLEAN NOT NULL DEFAULT 0,
    models TEXT NOT NULL DEFAULT '',
    remote TEXT NOT NULL DEFAULT '',
    agent BOOLEAN NOT NULL DEFAULT 0,
    tools BOOLEAN NOT NULL DEFAULT 0,
    working_dir TEXT NOT NULL DEFAULT '',
    context_length INTEGER NOT NULL DEFAULT 4096,
    window_width INTEGER NOT NULL DEFAULT 0,
    window_height INTEGER NOT NULL DEFAULT 0,
    config_migrated BOOLEAN NOT NULL DEFAULT 0,
    schema_version INTEGER NOT NULL DEFAULT 2
);
INSERT OR IGNORE INTO settings (id) VALUES (1);
`;

export function sqlite(args, input) {
  return spawnSync('sqlite3', args, { input, encoding: 'utf8', timeout: 5000, env: { PATH: '/usr/bin:/bin' } });
}

// ---------------------------------------------------------------------------
// createSandbox (the tests' entry point)

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll `check` every 50 ms until it returns a value other than undefined/false, for at most `timeoutMs`. */
export async function waitFor(check, timeoutMs = 10_000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

const shQuote = (text) => `'${text.replace(/'/g, `'\\''`)}'`;

function launcherSource(dir, winPath) {
  // A shell script that execs node (same pid): a file named "...\ollama app.exe" would be neither an
  // ES module nor safe to load as CommonJS inside a "type": "module" package. It passes the app its
  // own Windows path, which Windows would know as the process's executable.
  return [
    '#!/bin/sh',
    '# Fake "ollama app.exe" of a stigmer-setup Windows sandbox; the logic is in app.mjs.',
    `exec ${shQuote(process.execPath)} ${shQuote(APP_MODULE)} --sandbox ${shQuote(dir)} --image-path ${shQuote(winPath)} "$@"`,
    '',
  ].join('\n');
}

export function createSandbox(options) {
  const opts = { ...DEFAULTS, ...options };
  if (typeof opts.dir !== 'string' || !path.isAbsolute(opts.dir)) throw new Error('createSandbox: dir must be an absolute path');
  const dir = path.resolve(opts.dir);
  fs.mkdirSync(path.join(dir, PROCESS_DIR), { recursive: true });
  const config = {
    localAppData: opts.localAppData,
    userProfile: opts.userProfile,
    appInstalled: Boolean(opts.appInstalled),
    admin: Boolean(opts.admin),
    service: opts.service === true ? 'running' : opts.service || false,
    excludedPorts: opts.excludedPorts,
    runtime: opts.runtime,
    appDir: opts.appDir,
    stuckPids: opts.stuckPids,
  };
  writeConfig(dir, config);
  writeStore(dir, 'User', { ...opts.userEnv });
  writeStore(dir, 'Machine', { ...opts.machineEnv });
  fs.writeFileSync(path.join(dir, TRANSCRIPT_FILE), '');

  const paths = winPaths(opts.localAppData, opts.appDir);
  const installApp = (winApp) => {
    fs.mkdirSync(sandboxFile(dir, path.win32.dirname(winApp)), { recursive: true });
    fs.writeFileSync(sandboxFile(dir, winApp), launcherSource(dir, winApp), { mode: 0o755 });
    fs.chmodSync(sandboxFile(dir, winApp), 0o755);
  };
  if (opts.appInstalled) installApp(paths.app);

  const pathDirs = [BIN_DIR, dir, '/usr/bin', '/bin'];
  const nodeDir = path.dirname(process.execPath);
  if (!pathDirs.includes(nodeDir)) pathDirs.push(nodeDir); // `#!/usr/bin/env node` must find node
  const env = {
    PATH: pathDirs.join(':'),
    LOCALAPPDATA: opts.localAppData,
    USERPROFILE: opts.userProfile,
    APPDATA: path.win32.join(opts.userProfile, 'AppData', 'Roaming'),
    USERNAME: path.win32.basename(opts.userProfile),
    [SANDBOX_VAR]: dir,
  };

  const file = (winPath) => sandboxFile(dir, winPath);
  const readText = (winPath) => {
    try {
      return fs.readFileSync(file(winPath), 'utf8');
    } catch {
      return undefined;
    }
  };

  const sandbox = {
    dir,
    cwd: dir,
    env,
    paths,
    file,
    readText,
    config: () => readConfig(dir),
    /** Install (another copy of) the app at a Windows path, e.g. 'C:\\Program Files\\Ollama\\ollama app.exe'. */
    installApp,
    configure(partial) {
      const next = { ...readConfig(dir), ...partial };
      if (partial.service === true) next.service = 'running';
      writeConfig(dir, next);
    },
    userEnv: () => readStore(dir, 'User'),
    machineEnv: () => readStore(dir, 'Machine'),
    transcript: () => readTranscript(dir),
    processes: () => liveRecords(dir),
    appLog: () => readText(paths.appLog) ?? '',
    serverLog: () => readText(paths.serverLog) ?? '',

    /** The environment Explorer would give a program started from the Start menu: Machine, then User (User wins). */
    explorerEnv(base = {}) {
      const merged = { ...env };
      for (const [k, v] of Object.entries(base)) {
        if (v === undefined) delete merged[k];
        else merged[k] = v;
      }
      for (const scope of ['Machine', 'User']) {
        for (const [k, v] of Object.entries(readStore(dir, scope))) {
          if (k.toUpperCase() === 'PATH') continue; // Windows appends Path; the sandbox keeps its shim PATH
          for (const existing of Object.keys(merged)) if (existing.toUpperCase() === k.toUpperCase()) delete merged[existing];
          merged[k] = v;
        }
      }
      return merged;
    },

    /**
     * Start the app as the Start menu would: from Explorer's environment, which holds the User and
     * Machine stores as they are now. Resolves with the app's pid once it registered itself (or
     * exited, e.g. because an instance is already running).
     */
    async startApp(base = {}, { timeoutMs = 10_000 } = {}) {
      const appFile = file(paths.app);
      if (!fs.existsSync(appFile)) throw new Error(`the app is not installed in this sandbox (${paths.app})`);
      const child = spawn(appFile, [], { cwd: dir, env: sandbox.explorerEnv(base), detached: true, stdio: 'ignore' });
      child.unref();
      const pid = await new Promise((resolve, reject) => {
        child.once('spawn', () => resolve(child.pid));
        child.once('error', reject);
      });
      let exited = false;
      child.once('exit', () => {
        exited = true;
      });
      await waitFor(() => exited || liveRecords(dir).some((r) => r.pid === pid), timeoutMs, `the app (pid ${pid}) to start`);
      return pid;
    },

    /**
     * Write the app's settings database (the "Expose Ollama to the network" toggle) with the real
     * sqlite3 CLI. Like the Settings page, a change restarts the server of a running app (SIGHUP).
     */
    setAppSettings({ expose, browser }, { restartServer = true } = {}) {
      fs.mkdirSync(file(paths.dataDir), { recursive: true });
      const sets = [];
      if (expose !== undefined) sets.push(`expose = ${expose ? 1 : 0}`);
      if (browser !== undefined) sets.push(`browser = ${browser ? 1 : 0}`);
      const sql = `${SETTINGS_SCHEMA}${sets.length ? `UPDATE settings SET ${sets.join(', ')} WHERE id = 1;\n` : ''}`;
      const result = sqlite([file(paths.db)], sql);
      if (result.status !== 0) throw new Error(`sqlite3 failed: ${result.error?.message ?? result.stderr}`);
      if (restartServer) for (const r of liveRecords(dir)) if (r.image === APP_IMAGE) process.kill(r.pid, 'SIGHUP');
    },

    /** SIGKILL every process of this sandbox (recorded, or carrying its STIGMER_WIN_SANDBOX) and their children. */
    async killAll({ timeoutMs = 10_000 } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const procs = listProcs();
        const targets = new Map();
        const apps = [];
        for (const r of liveRecords(dir)) {
          targets.set(r.pid, r);
          if (r.image === APP_IMAGE) apps.push(r.pid);
        }
        for (const p of procs) if (p.pid !== process.pid && procInSandbox(p.pid, dir)) targets.set(p.pid, p);
        for (const pid of [...targets.keys()]) for (const d of descendantsOf(pid, procs)) if (d.pid !== process.pid) targets.set(d.pid, d);
        if (targets.size === 0) return;
        // Apps first, so that none of them restarts a server we are about to kill.
        for (const pid of [...apps, ...targets.keys()]) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        if (Date.now() > deadline) throw new Error(`killAll: processes still running after ${timeoutMs} ms: ${[...targets.keys()].join(', ')}`);
        await sleep(50);
      }
    },
  };
  return sandbox;
}

// ---------------------------------------------------------------------------
// Small helpers shared by the shims

/** The first non-internal IPv4 address of this machine (what a container without loopback forwarding reaches). */
export function firstExternalIPv4() {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const info of list ?? []) {
      if ((info.family === 'IPv4' || info.family === 4) && !info.internal) return info.address;
    }
  }
  return undefined;
}
