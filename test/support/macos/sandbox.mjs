// sandbox.mjs: a macOS sandbox for stigmer-setup's darwin code, on Linux.
//
// README
// ------
// The product's bundle runs with `--platform darwin`, HOME and --root pointed at temporary folders,
// and PATH starting with ./bin, whose scripts stand in for macOS commands:
//
//   launchctl  a launchd model: setenv/unsetenv/getenv, print, bootstrap, bootout (with the drain
//              window), enable/disable, kickstart, list; legacy load/unload are accepted no-ops
//   brew       --version, --prefix, list, services start|stop|restart|info|list (Homebrew's real
//              plist generator, the 6.0.15+ services/<formula>.env merge, brew's real messages)
//   open       `open -a Ollama [--args …]` or `open <bundle.app> [--args …]` starts fake-ollama-app.mjs
//              as the "Ollama" process of that bundle
//   ps         `ps aux`, and `ps -p <pid[,pid]> -o <keyword>=` (command, comm, pid)
//   pkill,     macOS/BSD pgrep/pkill over this sandbox's processes (-x, -f, -l, -P, -n, -o, -signal)
//   pgrep
//   lsof       `lsof -nP -iTCP:<port> -sTCP:LISTEN` read from the real kernel tables (/proc/net/tcp*)
//              and printed in macOS lsof's layout
//   docker     Docker Desktop for Mac as far as the container probe needs it (info, inspect, image ls,
//              run/exec of `python3 -c`), with host.docker.internal routed per `runtime`
//
// PATH is <dir>/bin (sh wrappers running ./bin/<shim> with process.execPath), then /usr/bin:/bin.
//
// Every shim appends {"cmd","args"} to $STIGMER_MAC_SANDBOX/transcript.jsonl before doing anything,
// so a test can pin the exact command sequence the product ran. Helpers in this file that drive the
// shims for test set-up (brewServicesStart, openApp, launchctl…) do NOT write the transcript unless
// asked to ({ record: true }); they set STIGMER_MAC_NO_TRANSCRIPT=1.
//
// All state is JSON in $STIGMER_MAC_SANDBOX/state.json (read-modify-write under a mkdir lock,
// written with an atomic rename), so shims, launchd job supervisors and the fake app can run
// concurrently. Every long-lived process a shim starts (launchd job supervisors, the job's program,
// the app and its server) carries STIGMER_MAC_SANDBOX=<dir> in its environment; that is how
// pgrep/pkill scope themselves to the sandbox and how killAll() finds everything to stop.
//
// Usage from a vitest file:
//
//   import { createSandbox, brewServicesStart, openApp } from '../support/macos/sandbox.mjs';
//   const sb = createSandbox({ dir, home, brewVersion: '6.1.0' });
//   await brewServicesStart(sb);
//   … spawn(process.execPath, [bundle, 'doctor', '--platform', 'darwin', …], { env: sb.env }) …
//   expect(sb.transcript()).toEqual([{ cmd: 'brew', args: ['--version'] }, …]);
//   await sb.killAll();   // in afterEach
//
// Types for the test-facing API are in sandbox.d.mts. Everything else exported here is shared by
// the shims and may change.
//
// Choices where the documentation is silent (and where it was overruled by source)
// --------------------------------------------------------------------------------
// launchd
//  * getenv of an unset variable prints nothing and exits 0 (no capture found either way).
//  * Jobs get: PATH=<shims>:/usr/bin:/bin:/usr/sbin:/sbin (launchd's default PATH, the shims
//    standing in for /usr/bin's macOS tools), HOME, USER, LOGNAME, SHELL, TMPDIR, then the
//    `setenv` map as it is AT EACH SPAWN, then the plist's EnvironmentVariables, then
//    XPC_SERVICE_NAME=<label>, and STIGMER_MAC_SANDBOX (the sandbox marker).
//  * Each loaded job with a process has a supervisor (launchd-job.mjs). KeepAlive respawns are
//    throttled like launchd.plist(5) ThrottleInterval (10 s unless the plist or the sandbox's
//    launchdThrottleMs says otherwise); `print` says `state = spawn scheduled` meanwhile.
//  * `print` states: running, not running, spawn scheduled, and `stopping` while a booted-out label
//    drains (the real word is unknown). Exit/signal lines follow the captures: `last exit code = N`
//    (`78: EX_CONFIG` when the program cannot be executed), `last terminating signal = Killed: 9`,
//    `last exit code = (never exited)`.
//  * bootout waits up to 1 s for the process to exit (0), else `Boot-out failed: 36: Operation now in
//    progress` (the NixOS installer filters this exact message; Homebrew's stop loop retries on
//    EINPROGRESS). A second bootout of a draining label also answers 36.
//  * bootstrap errors: missing file `Bootstrap failed: 2: No such file or directory`; unreadable
//    plist 5; disabled label `Bootstrap failed: 119: Service is disabled` (lima-vm's
//    socket_vmnet cask comment quotes it); already loaded or draining 5 (ollama-facts.md §7).
//  * print of an absent label: `Bad request.` + `Could not find service …` on stderr, exit 113;
//    wrong uid 112, bad specifier 64 (SOURCES.md, "launchctl print exit codes"). Only gui/<uid of
//    this process> exists; user/<uid> and system/ answer like a missing domain.
//  * A job whose ProgramArguments are `/bin/launchctl setenv|unsetenv …` is applied to the model at
//    bootstrap (synchronously; real launchd runs it a moment later) and is then "not running",
//    `last exit code = 0`. kickstart runs it again.
//  * `launchctl list [<label>]` is modelled from memory (old plist-dict form), unverified.
// Homebrew (Homebrew/brew at aad366f = 6.0.18-157, read from source)
//  * `start` of a RUNNING service prints "Service `ollama` already started, use `brew services
//    restart ollama` to restart." and changes nothing (Services::Cli.start); only a stopped service
//    gets a regenerated plist, `launchctl enable`, `launchctl bootstrap`. A bootstrap failure
//    prints launchctl's error and "Error: Failure while executing; `/bin/launchctl bootstrap …`
//    exited with N." (exit 1). brew's internal launchctl calls are not in the transcript.
//  * `stop` = bootout, retried every second while it answers 36 or the label is still loaded, then
//    the plist is deleted. `restart` = stop (if loaded) + start.
//  * The env file's folder is computed as bin/brew does: $XDG_CONFIG_HOME/homebrew, else
//    $HOMEBREW_XDG_CONFIG_HOME/homebrew, else $HOME/.homebrew. HOMEBREW_USER_CONFIG_HOME from the
//    caller is IGNORED: bin/brew lists it in BIN_BREW_EXPORTED_VARS ("not allowed to be overridden
//    by the user"). Parsing: lines stripped, blank/# skipped, KEY=value split at the first "=",
//    key and value stripped, bad lines warned about ("Skipping invalid line in …"), world- then
//    group-writable files skipped with brew's warning. Homebrew skips the file for root services;
//    the sandbox always plays a non-root user although the tests run as root.
//  * `info --json` keys follow FormulaWrapper#to_hash; `registered` appears from 4.4.27
//    (615fb764a1) and `loaded_file` from 4.4.29 (52a7b67ba5). pid/exit_code/loaded_file are read
//    from the `launchctl print` text with brew's own regexes. `info` of a formula that is not
//    installed answers (status "none"), as Formulary.factory does not require an install; only
//    start/restart fail ("Error: Formula `ollama` is not installed.", exit 1).
//  * `--version`: before 4.0.2 a second line `Homebrew/homebrew-core N/A` (d60d2fe).
//  * The keg's `ollama` is a sh wrapper exec'ing node through a symlink named "ollama", so the
//    server's process name is "ollama" (pgrep -x ollama, lsof COMMAND), as on a Mac.
// Ollama.app
//  * Several copies can be installed (installAppAt). LaunchServices, asked for an app by name
//    (`open -a Ollama`), picks one registered copy: here the first one installed (real
//    LaunchServices prefers by version and location; either way it need not be the copy that
//    ran). `open <path to a bundle>` opens that very bundle, registered or not (open(1)).
//  * setAppIgnoresTerm(sb, true) makes the app ignore SIGTERM (a hung app): `pkill -x Ollama` then
//    leaves it running. SIGINT and SIGKILL still end it.
//  * reboot(sb, { order }) models a restart of the Mac and the next login: every process ends, the
//    `launchctl setenv` values and loaded jobs are gone (ollama-facts.md §5); at login launchd loads
//    every plist in ~/Library/LaunchAgents and starts the app's own login item, in the order asked
//    for ('app-first': the app's server is up before the agents run; 'agents-first').
//  * Server start waits restartDelay (1 s) first, also the first time, and re-reads db.sqlite on
//    every start (app/server/server.go Run/cmd). The app's process name is "Ollama".
//  * reapServers() is modelled (exit status 1 → SIGTERM to other `ollama serve` processes once),
//    limited to this sandbox's processes.
// pgrep/pkill: only processes carrying this sandbox's marker; the caller and its ancestors are
//    never matched (BSD pgrep's default).
// docker: the URL is NOT rewritten. The probe runs on the host's python3 behind a prelude:
//    host.docker.internal resolves to Docker Desktop's host address 192.168.65.254 (IPv4 only),
//    connections to it go to 127.0.0.1 ('forward-loopback') or to this machine's first non-internal
//    IPv4 ('no-forward'), and connections to the container's loopback are refused. So the Host
//    header, the resolved address and the outcome are what a container on a Mac would see.
//    `inspect --type container <missing>` prints `[]` and "Error response from daemon: No such
//    container: <name>" (exit 1), as docker 28.2.2 on this machine does; the fixture's
//    "Error: No such object:" is kept for an untyped inspect. runtime 'none' keeps `docker` on
//    PATH with the engine down (Docker Desktop installed, not running: the usual macOS case);
//    "docker absent" is not offered: this machine has a real docker in /usr/bin, which the sandbox
//    PATH must keep (sh, sqlite3, ss, python3 live there), so leaving the shim out would expose it.

import { spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { build as buildPlist, parse as parsePlist } from 'plist';
import { brewEnvOverrides } from './brew-env.mjs';

// ---------------------------------------------------------------------------
// Paths (all relative to this file: never a hard-coded checkout location)

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..', '..');
export const SHIM_DIR = path.join(HERE, 'bin');
export const STANDIN = path.join(REPO, 'test', 'support', 'fake-ollama.mjs');
export const JOB_RUNNER = path.join(HERE, 'launchd-job.mjs');
export const FAKE_APP = path.join(HERE, 'fake-ollama-app.mjs');
export const APP_INFO_PLIST_FIXTURE = path.join(REPO, 'test', 'fixtures', 'darwin', 'Ollama.app-Info.plist');

/** launchd's default PATH for jobs (`default environment` in `launchctl print`). */
export const LAUNCHD_DEFAULT_PATH = '/usr/bin:/bin:/usr/sbin:/sbin';
export const FORMULA_ENV = Object.freeze({ OLLAMA_FLASH_ATTENTION: '1', OLLAMA_KV_CACHE_TYPE: 'q8_0' });
export const OLLAMA_KEG_VERSION = '0.13.5';
const SESSION_TYPES = ['Aqua', 'Background', 'LoginWindow', 'StandardIO', 'System'];

// ---------------------------------------------------------------------------
// Small helpers

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Block this thread for `ms` (shims are short synchronous scripts). */
export function sleepSync(ms) {
  Atomics.wait(sleepCell, 0, 0, Math.max(0, ms));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function readJson(file, fallback) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return fallback;
  }
}

/** Write via a temporary file and rename(2), so readers never see half a file. */
export function writeFileAtomic(file, text, mode) {
  const tmp = `${file}.tmp.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, text, mode === undefined ? undefined : { mode });
  if (mode !== undefined) chmodSync(tmp, mode);
  renameSync(tmp, file);
}

/** POSIX sh single-quoting. */
export function shQuote(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

/** Homebrew's Utils::Shell.sh_quote (Shellwords-like: backslash-escape anything unsafe). */
export function rubyShQuote(s) {
  const str = String(s);
  if (str === '') return "''";
  return str.replace(/([^A-Za-z0-9_\-.,:+/@\n])/g, '\\$1').replace(/\n/g, "'\n'");
}

export function ensureDir(dir) {
  mkdirSync(dir, { recursive: true });
  return dir;
}

// ---------------------------------------------------------------------------
// Linux /proc: processes

/** Fields of /proc/<pid>/stat we use, or null if the process is gone. */
export function procStat(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < 0) return null;
  const fields = text.slice(close + 2).split(' ');
  return { pid, comm: text.slice(open + 1, close), state: fields[0], ppid: Number(fields[1]), start: fields[19] };
}

/** {pid, start}: start time disambiguates a reused pid. */
export function procRef(pid) {
  const st = procStat(pid);
  return st ? { pid, start: st.start } : { pid, start: null };
}

/** Alive = exists, is not a zombie, and (when known) started at the recorded time. */
export function isAlive(ref) {
  if (!ref || !Number.isInteger(ref.pid) || ref.pid <= 0) return false;
  const st = procStat(ref.pid);
  if (!st || st.state === 'Z' || st.state === 'X') return false;
  return ref.start === undefined || ref.start === null || st.start === ref.start;
}

export function listPids() {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .sort((a, b) => a - b);
}

export function procCmdline(pid) {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const parts = raw.split('\0');
    if (parts.at(-1) === '') parts.pop();
    return parts;
  } catch {
    return [];
  }
}

function procEnvironRaw(pid) {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8');
  } catch {
    return '';
  }
}

export function procUid(pid) {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Does this process's (initial) environment name this sandbox? */
export function inSandbox(pid, dir) {
  const marker = `STIGMER_MAC_SANDBOX=${dir}`;
  return procEnvironRaw(pid).split('\0').includes(marker);
}

/** Live processes whose environment names this sandbox. */
export function sandboxPids(dir) {
  return listPids().filter((pid) => {
    if (!inSandbox(pid, dir)) return false;
    const st = procStat(pid);
    return st !== null && st.state !== 'Z' && st.state !== 'X';
  });
}

/** The pids from `pid` up to init (inclusive of `pid`). */
export function ancestors(pid) {
  const out = [];
  let cur = pid;
  for (let i = 0; i < 256 && cur > 0; i++) {
    out.push(cur);
    const st = procStat(cur);
    if (!st) break;
    cur = st.ppid;
  }
  return out;
}

/** Children of `pid`: /proc/<pid>/task/<tid>/children when the kernel has it, else a ppid scan. */
export function childPids(pid) {
  const found = new Set();
  let usedChildrenFile = false;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
        usedChildrenFile = true;
        for (const c of text.trim().split(/\s+/)) if (/^\d+$/.test(c)) found.add(Number(c));
      } catch {
        // no children file in this kernel
      }
    }
  } catch {
    return [];
  }
  if (!usedChildrenFile) {
    for (const p of listPids()) if (procStat(p)?.ppid === pid) found.add(p);
  }
  return [...found].filter((c) => {
    const st = procStat(c);
    return st && st.state !== 'Z';
  });
}

export function killQuietly(pid, signal = 'SIGTERM') {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

const PASSWD_CACHE = new Map();
export function userName(uid) {
  if (PASSWD_CACHE.has(uid)) return PASSWD_CACHE.get(uid);
  let name = String(uid);
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length > 2 && Number(f[2]) === uid) {
        name = f[0];
        break;
      }
    }
  } catch {
    // keep the number
  }
  PASSWD_CACHE.set(uid, name);
  return name;
}

// ---------------------------------------------------------------------------
// Sandbox config, state, lock, transcript

export function configPath(dir) {
  return path.join(dir, 'config.json');
}

export function loadConfig(dir) {
  const cfg = readJson(configPath(dir), null);
  if (!cfg) throw new Error(`stigmer mac sandbox: no config.json in ${dir}`);
  return cfg;
}

function emptyState() {
  return { launchd: { setenv: {}, disabled: {}, jobs: {} }, app: null };
}

function lockOwnerAlive(owner) {
  const [pidText, start] = String(owner).trim().split(':');
  return isAlive({ pid: Number(pidText), start: start || null });
}

/** mkdir(2) lock with a stale-owner check; bounded at 15 s. Returns the release function. */
export function acquireLock(dir) {
  const lock = path.join(dir, 'state.lock');
  const ownerFile = path.join(lock, 'owner');
  const me = `${process.pid}:${procStat(process.pid)?.start ?? ''}`;
  const deadline = Date.now() + 15_000;
  for (let attempt = 0; ; attempt++) {
    try {
      mkdirSync(lock);
      writeFileSync(ownerFile, me);
      return () => rmSync(lock, { recursive: true, force: true });
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    let owner = null;
    try {
      owner = readFileSync(ownerFile, 'utf8');
    } catch {
      owner = null;
    }
    if (owner !== null && owner !== '' && !lockOwnerAlive(owner)) {
      // The holder died inside its critical section. Re-read just before removing to narrow the
      // race with another process that is stealing the same stale lock.
      let again = null;
      try {
        again = readFileSync(ownerFile, 'utf8');
      } catch {
        again = null;
      }
      if (again === owner) rmSync(lock, { recursive: true, force: true });
      continue;
    }
    if (owner === null || owner === '') {
      try {
        if (Date.now() - statSync(lock).mtimeMs > 3000) rmSync(lock, { recursive: true, force: true });
      } catch {
        // gone already
      }
    }
    if (Date.now() > deadline) throw new Error(`stigmer mac sandbox: timed out waiting for ${lock}`);
    sleepSync(1 + (attempt % 8));
  }
}

/**
 * Read-modify-write the sandbox state under the lock. `fn(state, cfg)` may mutate `state`; its
 * return value is returned. Dead processes and finished drains are settled first.
 */
export function withState(dir, fn) {
  const cfg = loadConfig(dir);
  const release = acquireLock(dir);
  try {
    const file = path.join(dir, 'state.json');
    const state = readJson(file, null) ?? emptyState();
    settle(state, cfg);
    const result = fn(state, cfg);
    writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`);
    return result;
  } finally {
    release();
  }
}

export function readState(dir) {
  return withState(dir, (state) => structuredClone(state));
}

export function appendTranscript(dir, cmd, args) {
  if (process.env.STIGMER_MAC_NO_TRANSCRIPT === '1') return;
  appendFileSync(path.join(dir, 'transcript.jsonl'), `${JSON.stringify({ cmd, args })}\n`);
}

/**
 * Common start of every shim: find the sandbox, record the invocation, return its config.
 * Exits 70 (EX_SOFTWARE) when run outside a sandbox, so a stray shim on PATH is obvious.
 */
export function shimStart(cmd) {
  const dir = process.env.STIGMER_MAC_SANDBOX;
  const args = process.argv.slice(2);
  if (!dir || !existsSync(configPath(dir))) {
    process.stderr.write(`${cmd}: stigmer mac sandbox shim: STIGMER_MAC_SANDBOX does not name a sandbox (see test/support/macos/sandbox.mjs)\n`);
    process.exit(70);
  }
  appendTranscript(dir, cmd, args);
  return { dir, cfg: loadConfig(dir), args };
}

// ---------------------------------------------------------------------------
// Environments

/** What every process the sandbox starts gets, whatever else it gets. */
function baseSessionEnv(cfg) {
  return {
    HOME: cfg.home,
    USER: cfg.user,
    LOGNAME: cfg.user,
    SHELL: '/bin/zsh',
    TMPDIR: cfg.tmpdir,
    // launchd's default PATH, with the sandbox's shims standing in for /usr/bin's macOS tools.
    PATH: `${cfg.shimDir}:${LAUNCHD_DEFAULT_PATH}`,
  };
}

/**
 * The environment launchd gives a job: its defaults, then the user domain's `launchctl setenv`
 * variables, then the plist's EnvironmentVariables (the plist wins), then XPC_SERVICE_NAME.
 */
export function jobEnv(cfg, state, job) {
  return {
    ...baseSessionEnv(cfg),
    ...state.launchd.setenv,
    ...(job.environment ?? {}),
    XPC_SERVICE_NAME: job.label,
    STIGMER_MAC_SANDBOX: cfg.dir,
  };
}

/** The environment LaunchServices gives an app started with `open`: the launchd user domain's. */
export function appEnv(cfg, state, bundleId) {
  return {
    ...baseSessionEnv(cfg),
    ...state.launchd.setenv,
    XPC_FLAGS: '0x0',
    XPC_SERVICE_NAME: `application.${bundleId}.${process.pid}`,
    __CFBundleIdentifier: bundleId,
    STIGMER_MAC_SANDBOX: cfg.dir,
  };
}

// ---------------------------------------------------------------------------
// launchd model

export function domainTarget(cfg) {
  return `gui/${cfg.uid}`;
}

const ERRNO_TEXT = {
  2: 'No such file or directory',
  3: 'No such process',
  5: 'Input/output error',
  36: 'Operation now in progress',
  119: 'Service is disabled',
};

/**
 * Parse `gui/<uid>[/<label>]`. Errors follow the observed launchctl ones: 64 "Unrecognized target
 * specifier." and 112 "Could not find domain for user gui: <n>" (see SOURCES.md, "launchctl print
 * exit codes"). Domains other than gui/<our uid> are not modelled and answer like a missing domain.
 */
export function parseTarget(cfg, spec, { wantService }) {
  const text = String(spec ?? '');
  const system = /^system(?:\/(.+))?$/.exec(text);
  if (system) {
    // Only the user's gui domain is modelled; the system domain has no jobs here.
    if (system[1]) return { error: { code: 113, text: `Could not find service "${system[1]}" in domain for system\n` } };
    if (wantService) return { error: { code: 64, text: 'Unrecognized target specifier.\n' } };
    return { error: { code: 112, text: 'stigmer mac sandbox: the system domain is not modelled\n' } };
  }
  const m = /^(gui|user|login|session|pid)\/(\d+)(?:\/(.+))?$/.exec(text);
  if (!m) return { error: { code: 64, text: 'Unrecognized target specifier.\n' } };
  const [, kind, id, label] = m;
  if (kind !== 'gui' || Number(id) !== cfg.uid) return { error: { code: 112, text: `Could not find domain for user ${kind}: ${id}\n` } };
  if (wantService && !label) return { error: { code: 64, text: 'Unrecognized target specifier.\n' } };
  return { domain: `gui/${id}`, label };
}

export function serviceMissingText(cfg, label) {
  return `Could not find service "${label}" in domain for user gui: ${cfg.uid}\n`;
}

/** A loaded job's state word for `launchctl print`. */
function jobStateWord(job) {
  if (job.phase === 'draining') return 'stopping';
  if (job.proc && isAlive(job.proc)) return 'running';
  if (job.nextSpawnAt) return 'spawn scheduled';
  return 'not running';
}

function settle(state, cfg) {
  const now = Date.now();
  for (const [label, job] of Object.entries(state.launchd.jobs)) {
    if (job.supervisor && !isAlive(job.supervisor)) {
      job.supervisor = null;
      job.nextSpawnAt = null;
    }
    if (job.proc && !isAlive(job.proc)) job.proc = null;
    if (job.phase === 'draining' && now >= job.drainUntil && !job.supervisor && !job.proc) delete state.launchd.jobs[label];
  }
  if (state.app) {
    // `open` registers a placeholder before the app process has recorded itself.
    const pending = !state.app.pid && state.app.pending && now - state.app.pending < 5000;
    if (!pending && !isAlive(state.app)) state.app = null;
    else if (state.app?.server && !isAlive(state.app.server)) state.app.server = null;
  }
  void cfg;
}

function exitStatusText(code) {
  if (code === 78) return '78: EX_CONFIG';
  return String(code);
}

const SIGNAL_TEXT = {
  SIGTERM: 'Terminated: 15',
  SIGKILL: 'Killed: 9',
  SIGINT: 'Interrupt: 2',
  SIGHUP: 'Hangup: 1',
  SIGABRT: 'Abort trap: 6',
  SIGSEGV: 'Segmentation fault: 11',
};

/** `launchctl print gui/<uid>/<label>` for a loaded job, laid out like the real captures. */
export function printJobText(cfg, state, job) {
  const t = '\t';
  const lines = [];
  const running = job.proc && isAlive(job.proc);
  const inherited = { SSH_AUTH_SOCK: `/private/tmp/com.apple.launchd.${cfg.launchdCookie}/Listeners`, ...(job.inheritedEnv ?? state.launchd.setenv) };
  lines.push(`${domainTarget(cfg)}/${job.label} = {`);
  lines.push(`${t}active count = ${running ? 1 : 0}`);
  lines.push(`${t}path = ${job.plistPath}`);
  lines.push(`${t}type = LaunchAgent`);
  lines.push(`${t}state = ${jobStateWord(job)}`);
  lines.push('');
  lines.push(`${t}program = ${job.program}`);
  lines.push(`${t}arguments = {`);
  for (const a of job.args) lines.push(`${t}${t}${a}`);
  lines.push(`${t}}`);
  lines.push('');
  if (job.workingDirectory) {
    lines.push(`${t}working directory = ${job.workingDirectory}`);
    lines.push('');
  }
  if (job.stdoutPath) lines.push(`${t}stdout path = ${job.stdoutPath}`);
  if (job.stderrPath) lines.push(`${t}stderr path = ${job.stderrPath}`);
  lines.push(`${t}inherited environment = {`);
  for (const [k, v] of Object.entries(inherited)) lines.push(`${t}${t}${k} => ${v}`);
  lines.push(`${t}}`);
  lines.push('');
  lines.push(`${t}default environment = {`);
  lines.push(`${t}${t}PATH => ${LAUNCHD_DEFAULT_PATH}`);
  lines.push(`${t}}`);
  lines.push('');
  lines.push(`${t}environment = {`);
  for (const [k, v] of Object.entries(job.environment ?? {})) lines.push(`${t}${t}${k} => ${v}`);
  lines.push(`${t}${t}XPC_SERVICE_NAME => ${job.label}`);
  lines.push(`${t}}`);
  lines.push('');
  lines.push(`${t}domain = ${domainTarget(cfg)} [100057]`);
  lines.push(`${t}asid = 100057`);
  lines.push(`${t}minimum runtime = ${Math.round((job.throttleMs ?? 10_000) / 1000)}`);
  lines.push(`${t}exit timeout = ${job.exitTimeout ?? 5}`);
  lines.push(`${t}runs = ${job.runs ?? 0}`);
  if (running) lines.push(`${t}pid = ${job.proc.pid}`);
  lines.push(`${t}immediate reason = ${job.runs > 1 ? 'inefficient' : 'speculative'}`);
  lines.push(`${t}forks = 0`);
  lines.push(`${t}execs = ${job.runs ?? 0}`);
  lines.push(`${t}initialized = 1`);
  lines.push(`${t}trampolined = 1`);
  lines.push(`${t}started suspended = 0`);
  lines.push(`${t}proxy started suspended = 0`);
  if (job.lastExit?.signal) lines.push(`${t}last terminating signal = ${SIGNAL_TEXT[job.lastExit.signal] ?? job.lastExit.signal}`);
  else if (job.lastExit && job.lastExit.code !== undefined && job.lastExit.code !== null) lines.push(`${t}last exit code = ${exitStatusText(job.lastExit.code)}`);
  else lines.push(`${t}last exit code = (never exited)`);
  if (job.spawnError) lines.push(`${t}job state = ${job.spawnError}`);
  lines.push('');
  lines.push(`${t}spawn type = daemon (3)`);
  lines.push(`${t}jetsam priority = 40`);
  lines.push(`${t}jetsam memory limit (active) = (unlimited)`);
  lines.push(`${t}jetsam memory limit (inactive) = (unlimited)`);
  lines.push(`${t}jetsamproperties category = daemon`);
  lines.push(`${t}submitted job. ignore execute allowed`);
  lines.push(`${t}jetsam thread limit = 32`);
  lines.push(`${t}cpumon = default`);
  lines.push('');
  const props = [];
  if (job.keepAlive) props.push('keepalive');
  if (job.runAtLoad) props.push('runatload');
  props.push('inferred program');
  lines.push(`${t}properties = ${props.join(' | ')}`);
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** Result of a `launchctl print` of a service, without the transcript: {code, stdout, stderr}. */
export function launchctlPrintService(dir, label) {
  return withState(dir, (state, cfg) => {
    const job = state.launchd.jobs[label];
    if (!job) return { code: 113, stdout: '', stderr: `Bad request.\n${serviceMissingText(cfg, label)}` };
    return { code: 0, stdout: printJobText(cfg, state, job), stderr: '' };
  });
}

function keepAliveWanted(keepAlive) {
  return keepAlive === true || (keepAlive !== null && typeof keepAlive === 'object');
}

/** Does KeepAlive ask for a respawn after this exit? (launchd.plist(5) KeepAlive) */
export function keepAliveRespawns(keepAlive, code, signal) {
  if (keepAlive === true) return true;
  if (!keepAlive || typeof keepAlive !== 'object') return false;
  if (typeof keepAlive.SuccessfulExit === 'boolean') {
    const successful = signal === null && code === 0;
    if (keepAlive.SuccessfulExit === successful) return true;
  }
  if (typeof keepAlive.Crashed === 'boolean') {
    const crashed = signal !== null && signal !== 'SIGTERM' && signal !== 'SIGKILL';
    if (keepAlive.Crashed === crashed) return true;
  }
  return false;
}

/** Our LaunchAgent form: ProgramArguments = /bin/launchctl setenv|unsetenv … (applied to the model). */
function launchctlEnvJob(job) {
  const [prog, sub] = job.args;
  return (prog === '/bin/launchctl' || prog === 'launchctl') && (sub === 'setenv' || sub === 'unsetenv');
}

function applyLaunchctlEnvArgs(state, args) {
  const [, sub, ...rest] = args;
  if (sub === 'setenv') {
    if (rest.length < 2 || rest.length % 2 !== 0) return 64;
    for (let i = 0; i < rest.length; i += 2) state.launchd.setenv[rest[i]] = rest[i + 1];
    return 0;
  }
  if (rest.length < 1) return 64;
  for (const k of rest) delete state.launchd.setenv[k];
  return 0;
}

/** Start a job supervisor (launchd-job.mjs) for a loaded job. */
function spawnSupervisor(cfg, label, gen, mode = 'spawn') {
  const logDir = ensureDir(path.join(cfg.dir, 'logs'));
  const fd = openSync(path.join(logDir, `launchd-${label}.log`), 'a');
  try {
    const child = spawn(cfg.node, [JOB_RUNNER, cfg.dir, label, gen, mode], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { STIGMER_MAC_SANDBOX: cfg.dir, PATH: `${cfg.shimDir}:${LAUNCHD_DEFAULT_PATH}`, HOME: cfg.home, STIGMER_MAC_NO_TRANSCRIPT: '1' },
      cwd: '/',
    });
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** Wait (bounded) until `probe()` returns a value other than undefined. */
export function pollSync(probe, timeoutMs, intervalMs = 10) {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < Math.ceil(timeoutMs / intervalMs) + 1; i++) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() >= deadline) break;
    sleepSync(intervalMs);
  }
  return undefined;
}

/** Read a launchd plist the way bootstrap does. Returns {job} or {error: {code, text}}. */
function readJobPlist(plistPath) {
  let text;
  try {
    text = readFileSync(plistPath, 'utf8');
  } catch (err) {
    const code = err.code === 'ENOENT' ? 2 : 5;
    return { error: { code, text: `Bootstrap failed: ${code}: ${ERRNO_TEXT[code]}\n` } };
  }
  let data;
  try {
    data = parsePlist(text);
  } catch {
    data = null;
  }
  const args = Array.isArray(data?.ProgramArguments) ? data.ProgramArguments.map(String) : typeof data?.Program === 'string' ? [data.Program] : null;
  if (!data || typeof data !== 'object' || typeof data.Label !== 'string' || !args || args.length === 0) {
    return { error: { code: 5, text: 'Bootstrap failed: 5: Input/output error\n' } };
  }
  const env = {};
  if (data.EnvironmentVariables && typeof data.EnvironmentVariables === 'object') {
    for (const [k, v] of Object.entries(data.EnvironmentVariables)) env[k] = String(v);
  }
  return {
    job: {
      label: data.Label,
      plistPath,
      program: typeof data.Program === 'string' ? data.Program : args[0],
      args,
      environment: env,
      keepAlive: data.KeepAlive ?? false,
      runAtLoad: data.RunAtLoad === true,
      workingDirectory: typeof data.WorkingDirectory === 'string' ? data.WorkingDirectory : null,
      stdoutPath: typeof data.StandardOutPath === 'string' ? data.StandardOutPath : null,
      stderrPath: typeof data.StandardErrorPath === 'string' ? data.StandardErrorPath : null,
      exitTimeout: Number.isInteger(data.ExitTimeOut) ? data.ExitTimeOut : 5,
      throttleMs: Number.isInteger(data.ThrottleInterval) ? data.ThrottleInterval * 1000 : null,
    },
  };
}

/**
 * `launchctl bootstrap gui/<uid> <plist>`. Returns {code, stdout, stderr}.
 * Already loaded, or still draining after a bootout: `Bootstrap failed: 5: Input/output error`.
 */
export function launchdBootstrap(dir, plistArg) {
  const plistPath = path.resolve(plistArg);
  const read = readJobPlist(plistPath);
  if (read.error) return { code: read.error.code, stdout: '', stderr: read.error.text };
  const parsed = read.job;
  const plan = withState(dir, (state, cfg) => {
    if (state.launchd.disabled[parsed.label] === true) return { error: { code: 119, text: 'Bootstrap failed: 119: Service is disabled\n' } };
    if (state.launchd.jobs[parsed.label]) return { error: { code: 5, text: 'Bootstrap failed: 5: Input/output error\n' } };
    const gen = randomBytes(6).toString('hex');
    const job = {
      ...parsed,
      throttleMs: parsed.throttleMs ?? cfg.launchd.throttleMs,
      gen,
      loadedAt: Date.now(),
      phase: 'loaded',
      drainUntil: null,
      supervisor: null,
      proc: null,
      lastExit: null,
      runs: 0,
      nextSpawnAt: null,
      inheritedEnv: { ...state.launchd.setenv },
    };
    state.launchd.jobs[parsed.label] = job;
    if (launchctlEnvJob(job)) {
      if (job.runAtLoad || keepAliveWanted(job.keepAlive)) {
        job.runs = 1;
        job.lastExit = { code: applyLaunchctlEnvArgs(state, job.args), signal: null };
      }
      return { gen, start: false, cfg };
    }
    return { gen, start: job.runAtLoad || keepAliveWanted(job.keepAlive), cfg };
  });
  if (plan.error) return { code: plan.error.code, stdout: '', stderr: plan.error.text };
  if (plan.start) {
    spawnSupervisor(plan.cfg, parsed.label, plan.gen);
    // launchd starts a RunAtLoad job at once; wait (bounded) until it has a pid or has failed, so
    // that a `print` right after bootstrap sees what it would see on a Mac.
    pollSync(() => {
      const s = readJson(path.join(dir, 'state.json'), null);
      const j = s?.launchd?.jobs?.[parsed.label];
      if (!j || j.gen !== plan.gen) return true;
      return j.proc || j.lastExit || j.runs > 0 ? true : undefined;
    }, 3000, 10);
  }
  return { code: 0, stdout: '', stderr: '' };
}

/**
 * `launchctl bootout gui/<uid>/<label>`: SIGTERM the job and unload it. The label keeps draining
 * for cfg.launchd.drainMs (and until its process has exited): `print` still finds it and a
 * `bootstrap` of it fails with 5. Unknown label: `Boot-out failed: 3: No such process`.
 * Draining label, or a process that has not exited within bootoutWaitMs: 36, EINPROGRESS.
 */
export function launchdBootout(dir, label) {
  const plan = withState(dir, (state, cfg) => {
    const job = state.launchd.jobs[label];
    if (!job) return { error: 3 };
    if (job.phase === 'draining') return { error: 36 };
    job.phase = 'draining';
    job.drainUntil = Date.now() + cfg.launchd.drainMs;
    job.nextSpawnAt = null;
    return { supervisor: job.supervisor, proc: job.proc, cfg };
  });
  if (plan.error) return { code: plan.error, stdout: '', stderr: `Boot-out failed: ${plan.error}: ${ERRNO_TEXT[plan.error]}\n` };
  if (plan.supervisor && isAlive(plan.supervisor)) killQuietly(plan.supervisor.pid, 'SIGTERM');
  else if (plan.proc && isAlive(plan.proc)) killQuietly(plan.proc.pid, 'SIGTERM');
  const gone = pollSync(() => (isAlive(plan.proc) ? undefined : true), plan.cfg.launchd.bootoutWaitMs, 10);
  if (!gone) return { code: 36, stdout: '', stderr: `Boot-out failed: 36: ${ERRNO_TEXT[36]}\n` };
  return { code: 0, stdout: '', stderr: '' };
}

export function launchdSetDisabled(dir, label, disabled) {
  withState(dir, (state) => {
    state.launchd.disabled[label] = disabled;
  });
}

/** `launchctl kickstart [-k] [-p] gui/<uid>/<label>`. */
export function launchdKickstart(dir, label, { kill, printPid }) {
  const plan = withState(dir, (state, cfg) => {
    const job = state.launchd.jobs[label];
    if (!job || job.phase === 'draining') return { error: true, cfg };
    if (launchctlEnvJob(job)) {
      job.runs += 1;
      job.lastExit = { code: applyLaunchctlEnvArgs(state, job.args), signal: null };
      return { done: true, cfg };
    }
    const running = job.proc && isAlive(job.proc);
    return { running, supervisor: job.supervisor, gen: job.gen, proc: job.proc, cfg };
  });
  if (plan.error) return { code: 113, stdout: '', stderr: serviceMissingText(plan.cfg, label) };
  if (plan.done) return { code: 0, stdout: '', stderr: '' };
  const before = plan.proc?.pid;
  if (plan.running) {
    if (!kill) return { code: 0, stdout: printPid ? `${before}\n` : '', stderr: '' };
    if (plan.supervisor && isAlive(plan.supervisor)) killQuietly(plan.supervisor.pid, 'SIGUSR1');
    else {
      killQuietly(plan.proc.pid, 'SIGTERM');
      spawnSupervisor(plan.cfg, label, plan.gen, 'wait-then-spawn');
    }
  } else if (plan.supervisor && isAlive(plan.supervisor)) {
    killQuietly(plan.supervisor.pid, 'SIGUSR2');
  } else {
    spawnSupervisor(plan.cfg, label, plan.gen, 'spawn');
  }
  const pid = pollSync(() => {
    const j = readJson(path.join(dir, 'state.json'), null)?.launchd?.jobs?.[label];
    if (!j) return null;
    return j.proc && j.proc.pid !== before && isAlive(j.proc) ? j.proc.pid : undefined;
  }, 3000, 10);
  return { code: 0, stdout: printPid && pid ? `${pid}\n` : '', stderr: '' };
}

// ---------------------------------------------------------------------------
// Homebrew model

export function parseVersion(text) {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(String(text));
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
}

export function versionAtLeast(text, min) {
  const v = parseVersion(text);
  const w = parseVersion(min);
  for (let i = 0; i < 3; i++) if (v[i] !== w[i]) return v[i] > w[i];
  return true;
}

export function brewPaths(cfg) {
  const prefix = cfg.brew.prefix;
  const cellar = path.join(prefix, 'Cellar', 'ollama', OLLAMA_KEG_VERSION);
  return {
    prefix,
    cellar,
    optPrefix: path.join(prefix, 'opt', 'ollama'),
    optBin: path.join(prefix, 'opt', 'ollama', 'bin', 'ollama'),
    var: path.join(prefix, 'var'),
    log: path.join(prefix, 'var', 'log', 'ollama.log'),
    kegPlist: path.join(cellar, `${cfg.brew.label}.plist`),
    dest: path.join(cfg.home, 'Library', 'LaunchAgents', `${cfg.brew.label}.plist`),
  };
}

export function brewInstalled(cfg) {
  const dir = path.join(cfg.brew.prefix, 'Cellar', 'ollama');
  try {
    return readdirSync(dir).length > 0;
  } catch {
    return false;
  }
}

/** Homebrew's HOMEBREW_USER_CONFIG_HOME, as bin/brew computes it (the variable cannot be overridden). */
export function brewUserConfigHome(env, home) {
  if (env.XDG_CONFIG_HOME) return `${env.XDG_CONFIG_HOME}/homebrew`;
  if (env.HOMEBREW_XDG_CONFIG_HOME) return `${env.HOMEBREW_XDG_CONFIG_HOME}/homebrew`;
  return `${env.HOME || home}/.homebrew`;
}

/**
 * Service#effective_environment_variables (Homebrew 6.0.15+, commit 9a239b2): the formula's
 * variables overlaid with $HOMEBREW_USER_CONFIG_HOME/services/ollama.env. Returns {env, warnings}.
 * Older Homebrew: the formula's variables only.
 */
export function brewServiceEnv(cfg, env) {
  const vars = { ...FORMULA_ENV };
  const warnings = [];
  if (!versionAtLeast(cfg.brew.version, '6.0.15')) return { env: vars, warnings, file: null };
  const file = `${brewUserConfigHome(env, cfg.home)}/services/ollama.env`;
  let st;
  try {
    st = statSync(file);
  } catch {
    return { env: vars, warnings, file };
  }
  if (!st.isFile()) return { env: vars, warnings, file };
  // Homebrew refuses this for root services; the sandbox always plays a non-root user (see README).
  if (st.mode & 0o002) {
    warnings.push(`Skipping ${file}: file is world-writable.`);
    return { env: vars, warnings, file };
  }
  if (st.mode & 0o020) {
    warnings.push(`Skipping ${file}: file is group-writable.`);
    return { env: vars, warnings, file };
  }
  // Read as bytes and parsed as Ruby does (brew-env.mjs); a file brew can't read throws, as brew does.
  const parsed = brewEnvOverrides(readFileSync(file), file);
  warnings.push(...parsed.warnings);
  for (const [key, value] of parsed.overrides) vars[key] = value;
  return { env: vars, warnings, file };
}

function sortedObject(obj) {
  const out = {};
  for (const k of Object.keys(obj).sort()) out[k] = obj[k];
  return out;
}

/** Service#to_plist for the ollama formula: keys sorted, tab-indented, like Ruby's plist gem. */
export function brewServicePlist(cfg, envVars) {
  const p = brewPaths(cfg);
  const obj = sortedObject({
    EnvironmentVariables: sortedObject(envVars),
    KeepAlive: true,
    Label: cfg.brew.label,
    LimitLoadToSessionType: SESSION_TYPES,
    ProgramArguments: [p.optBin, 'serve'],
    RunAtLoad: true,
    StandardErrorPath: p.log,
    StandardOutPath: p.log,
    WorkingDirectory: p.var,
  });
  return `${buildPlist(obj, { indent: '\t', offset: -1 })}\n`;
}

/** The ollama wrapper used as the keg's and the app's `ollama` binary. */
function writeOllamaWrapper(cfg, file) {
  ensureDir(path.dirname(file));
  const body = `#!/bin/sh\n# stigmer mac sandbox: stands in for the ollama binary (runs test/support/fake-ollama.mjs as "ollama")\nexec ${shQuote(cfg.ollamaNode)} ${shQuote(STANDIN)} "$@"\n`;
  writeFileSync(file, body, { mode: 0o755 });
  chmodSync(file, 0o755);
}

function forceSymlink(target, link) {
  ensureDir(path.dirname(link));
  try {
    lstatSync(link);
    unlinkSync(link);
  } catch {
    // not there
  }
  symlinkSync(target, link);
}

/** `brew install ollama`, as far as the sandbox needs: keg, opt link, bin link, keg plist, var/log. */
export function installBrewKeg(cfg) {
  const p = brewPaths(cfg);
  writeOllamaWrapper(cfg, path.join(p.cellar, 'bin', 'ollama'));
  forceSymlink(path.relative(path.join(p.prefix, 'opt'), p.cellar), p.optPrefix);
  forceSymlink(path.relative(path.join(p.prefix, 'bin'), path.join(p.cellar, 'bin', 'ollama')), path.join(p.prefix, 'bin', 'ollama'));
  ensureDir(path.join(p.var, 'log'));
  writeFileSync(p.kegPlist, brewServicePlist(cfg, { ...FORMULA_ENV }));
}

/** Install Ollama.app at `at` (default cfg.app.path): Info.plist (the real one), MacOS/Ollama, Resources/ollama. */
export function installApp(cfg, at = cfg.app.path) {
  const app = at;
  if (!cfg.apps.includes(app)) cfg.apps.push(app);
  ensureDir(path.join(app, 'Contents', 'MacOS'));
  copyFileSync(APP_INFO_PLIST_FIXTURE, path.join(app, 'Contents', 'Info.plist'));
  // The executable is node under the name "Ollama", so the process's name (comm) is "Ollama".
  forceSymlink(cfg.node, path.join(app, 'Contents', 'MacOS', 'Ollama'));
  writeOllamaWrapper(cfg, path.join(app, 'Contents', 'Resources', 'ollama'));
}

// ---------------------------------------------------------------------------
// pgrep / pkill matching (BSD semantics, scoped to the sandbox)

/**
 * Processes of this sandbox matching a pgrep/pkill selection. Like BSD pgrep, the calling process
 * and its ancestors are never matched. opts: {pattern, exact, full, ignoreCase, parents: number[]}.
 */
export function matchProcesses(dir, opts) {
  const excluded = new Set(ancestors(process.pid));
  let re = null;
  if (opts.pattern !== undefined) {
    const src = opts.exact ? `^(?:${opts.pattern})$` : opts.pattern;
    re = new RegExp(src, opts.ignoreCase ? 'i' : '');
  }
  const out = [];
  for (const pid of sandboxPids(dir)) {
    if (excluded.has(pid)) continue;
    const st = procStat(pid);
    if (!st) continue;
    if (opts.parents && !opts.parents.includes(st.ppid)) continue;
    if (re) {
      const subject = opts.full ? procCmdline(pid).join(' ') : st.comm;
      if (!re.test(subject)) continue;
    }
    out.push({ pid, comm: st.comm, args: procCmdline(pid), start: Number(st.start) });
  }
  return out;
}

const SIGNALS = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11, USR2: 12,
  PIPE: 13, ALRM: 14, TERM: 15, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, WINCH: 28, INFO: 29,
};

/**
 * pgrep/pkill (BSD/macOS flavour) over this sandbox's processes. Returns the exit status:
 * 0 something matched, 1 nothing matched, 2 usage error, 3 fatal.
 */
export function pgrepMain(name, argv, dir) {
  const isKill = name === 'pkill';
  const usage = () => {
    process.stderr.write(
      isKill
        ? 'usage: pkill [-signal] [-ILfilnovx] [-F pidfile] [-G gid]\n             [-P ppid] [-U uid] [-g pgrp] [-t tty] [-u euid] pattern ...\n'
        : 'usage: pgrep [-Lfilnoqvx] [-d delim] [-F pidfile] [-G gid]\n             [-P ppid] [-U uid] [-g pgrp] [-t tty] [-u euid] pattern ...\n',
    );
    return 2;
  };
  const args = [...argv];
  let signal = 'SIGTERM';
  if (isKill && args[0] && /^-/.test(args[0])) {
    const raw = args[0].slice(1).toUpperCase().replace(/^SIG/, '');
    if (/^\d+$/.test(raw)) {
      signal = Number(raw);
      args.shift();
    } else if (SIGNALS[raw] !== undefined) {
      signal = `SIG${raw}`;
      args.shift();
    }
  }
  const o = { exact: false, full: false, long: false, newest: false, oldest: false, quiet: false, invert: false, ignoreCase: false, ancestors: false, delim: '\n', parents: null };
  const patterns = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('-') || a === '-') {
      patterns.push(a);
      continue;
    }
    if (a === '--') {
      patterns.push(...args.slice(i + 1));
      break;
    }
    for (let j = 1; j < a.length; j++) {
      const c = a[j];
      const takeValue = () => {
        const rest = a.slice(j + 1);
        j = a.length;
        if (rest !== '') return rest;
        i += 1;
        return args[i];
      };
      switch (c) {
        case 'x': o.exact = true; break;
        case 'f': o.full = true; break;
        case 'l': o.long = true; break;
        case 'n': o.newest = true; break;
        case 'o': o.oldest = true; break;
        case 'q': o.quiet = true; break;
        case 'v': o.invert = true; break;
        case 'i': o.ignoreCase = true; break;
        case 'a': o.ancestors = true; break;
        case 'I': case 'L': break;
        case 'd': {
          const v = takeValue();
          if (v === undefined) return usage();
          o.delim = v;
          break;
        }
        case 'P': {
          const v = takeValue();
          if (v === undefined || !/^\d+(,\d+)*$/.test(v)) return usage();
          o.parents = v.split(',').map(Number);
          break;
        }
        case 'F': case 'G': case 'U': case 'g': case 't': case 'u': {
          const v = takeValue();
          if (v === undefined) return usage();
          process.stderr.write(`${name}: stigmer mac sandbox: -${c} is not modelled\n`);
          return 3;
        }
        default:
          return usage();
      }
    }
  }
  if (patterns.length === 0 && o.parents === null) return usage();
  if (o.newest && o.oldest) return usage();
  let matches;
  try {
    const sets = patterns.length === 0 ? [matchProcesses(dir, { parents: o.parents ?? undefined })] : patterns.map((p) => matchProcesses(dir, { pattern: p, exact: o.exact, full: o.full, ignoreCase: o.ignoreCase, parents: o.parents ?? undefined }));
    const byPid = new Map();
    for (const set of sets) for (const m of set) byPid.set(m.pid, m);
    matches = [...byPid.values()].sort((x, y) => x.pid - y.pid);
    if (o.invert) {
      const hit = new Set(matches.map((m) => m.pid));
      matches = matchProcesses(dir, { parents: o.parents ?? undefined }).filter((m) => !hit.has(m.pid));
    }
  } catch (err) {
    process.stderr.write(`${name}: Cannot compile regular expression \`${patterns[0]}' (${err.message})\n`);
    return 2;
  }
  if (o.newest && matches.length > 0) matches = [matches.reduce((a, b) => (b.start >= a.start ? b : a))];
  if (o.oldest && matches.length > 0) matches = [matches.reduce((a, b) => (b.start < a.start ? b : a))];
  if (matches.length === 0) return 1;
  if (isKill) {
    let failed = false;
    for (const m of matches) {
      try {
        process.kill(m.pid, signal);
        if (o.long) process.stdout.write(`${m.pid} ${o.full ? m.args.join(' ') : m.comm}\n`);
      } catch (err) {
        failed = true;
        process.stderr.write(`pkill: signalling pid ${m.pid}: ${err.code === 'EPERM' ? 'Operation not permitted' : 'No such process'}\n`);
      }
    }
    return failed ? 3 : 0;
  }
  if (!o.quiet) {
    const lines = matches.map((m) => (o.long ? `${m.pid} ${o.full ? m.args.join(' ') : m.comm}` : String(m.pid)));
    process.stdout.write(`${lines.join(o.delim)}\n`);
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Test-facing API

/**
 * Create a sandbox: config, initial state, the brew keg and/or the app bundle.
 * See sandbox.d.mts for the options and the returned object.
 */
export function createSandbox(opts) {
  if (!opts || !opts.dir || !opts.home) throw new Error('createSandbox: dir and home are required');
  const dir = path.resolve(opts.dir);
  const home = path.resolve(opts.home);
  ensureDir(dir);
  ensureDir(home);
  ensureDir(path.join(home, 'Library', 'LaunchAgents'));
  ensureDir(path.join(dir, 'logs'));
  const uid = process.getuid();
  const cfg = {
    dir,
    home,
    uid,
    user: userName(uid),
    tmpdir: ensureDir(path.join(dir, 'tmp')),
    node: process.execPath,
    ollamaNode: path.join(dir, 'libexec', 'ollama'),
    // PATH starts with a per-sandbox folder of wrappers for ./bin (see createSandbox).
    shimDir: path.join(dir, 'bin'),
    repo: REPO,
    launchdCookie: randomBytes(6).toString('base64url').slice(0, 10),
    brew: {
      version: opts.brewVersion ?? '4.4.6',
      label: opts.brewLabel ?? 'homebrew.mxcl.ollama',
      prefix: opts.brewPrefix ? path.resolve(opts.brewPrefix) : path.join(dir, 'homebrew'),
    },
    app: { path: opts.appPath ? path.resolve(opts.appPath) : path.join(home, 'Applications', 'Ollama.app') },
    // Bundles LaunchServices knows, in the order `open -a Ollama` prefers them (see README).
    apps: [],
    runtime: opts.runtime ?? 'forward-loopback',
    docker: {
      images: opts.dockerImages ?? ['python:3.11-slim'],
      gateway: '192.168.65.254',
      python: findPython(),
    },
    launchd: {
      drainMs: opts.drainMs ?? 300,
      throttleMs: opts.launchdThrottleMs ?? 10_000,
      bootoutWaitMs: 1000,
    },
  };
  // node under the name "ollama": the stand-in's process name (comm) is then "ollama", as on a Mac.
  forceSymlink(process.execPath, cfg.ollamaNode);
  rmSync(cfg.shimDir, { recursive: true, force: true });
  ensureDir(cfg.shimDir);
  for (const name of readdirSync(SHIM_DIR)) {
    // Run each shim with this very node (process.execPath), whatever PATH holds.
    const wrapper = path.join(cfg.shimDir, name);
    writeFileSync(wrapper, `#!/bin/sh\nexec ${shQuote(cfg.node)} ${shQuote(path.join(SHIM_DIR, name))} "$@"\n`, { mode: 0o755 });
    chmodSync(wrapper, 0o755);
  }
  writeFileAtomic(configPath(dir), `${JSON.stringify(cfg, null, 2)}\n`);
  if (!existsSync(path.join(dir, 'state.json'))) writeFileAtomic(path.join(dir, 'state.json'), `${JSON.stringify(emptyState(), null, 2)}\n`);
  if (!existsSync(path.join(dir, 'transcript.jsonl'))) writeFileSync(path.join(dir, 'transcript.jsonl'), '');
  if (opts.brewInstalled ?? true) installBrewKeg(cfg);
  if (opts.appInstalled ?? false) {
    installApp(cfg);
    writeFileAtomic(configPath(dir), `${JSON.stringify(cfg, null, 2)}\n`);
  }
  return makeHandle(cfg);
}

function findPython() {
  for (const candidate of ['/usr/bin/python3', '/usr/local/bin/python3', '/bin/python3']) if (existsSync(candidate)) return candidate;
  for (const d of (process.env.PATH ?? '').split(':')) {
    const f = path.join(d, 'python3');
    if (d && existsSync(f)) return f;
  }
  return 'python3';
}

function makeHandle(cfg) {
  const env = { PATH: `${cfg.shimDir}:/usr/bin:/bin`, STIGMER_MAC_SANDBOX: cfg.dir, HOME: cfg.home };
  return {
    dir: cfg.dir,
    home: cfg.home,
    uid: cfg.uid,
    shimDir: cfg.shimDir,
    brewPrefix: cfg.brew.prefix,
    brewLabel: cfg.brew.label,
    appPath: cfg.app.path,
    plistPath: brewPaths(cfg).dest,
    env,
    transcript() {
      const text = readFileSync(path.join(cfg.dir, 'transcript.jsonl'), 'utf8');
      return text
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => {
          const { cmd, args } = JSON.parse(line);
          return { cmd, args };
        });
    },
    clearTranscript() {
      writeFileSync(path.join(cfg.dir, 'transcript.jsonl'), '');
    },
    state() {
      return readState(cfg.dir);
    },
    run(cmd, args, options = {}) {
      return runShim(this, cmd, args, options);
    },
    killAll() {
      return killAll(cfg);
    },
  };
}

/** Run a shim (or any command) with the sandbox environment; bounded at opts.timeoutMs (30 s). */
export function runShim(sandbox, cmd, args = [], opts = {}) {
  const env = { ...sandbox.env, ...(opts.env ?? {}) };
  const file = cmd.includes('/') ? cmd : path.join(sandbox.shimDir, cmd);
  const isShim = path.dirname(file) === sandbox.shimDir && existsSync(file);
  // Only a shim run directly is kept out of the transcript: anything else (the product's bundle,
  // a shell) must record the shims IT runs.
  if (isShim && !opts.record) env.STIGMER_MAC_NO_TRANSCRIPT = '1';
  for (const [k, v] of Object.entries(opts.env ?? {})) if (v === undefined) delete env[k];
  return new Promise((resolve, reject) => {
    const child = spawn(existsSync(file) ? file : cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd ?? sandbox.home });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Stop every process that carries this sandbox's marker (SIGTERM, then SIGKILL), and unload everything. */
async function killAll(cfg) {
  const self = new Set(ancestors(process.pid));
  const marked = () => sandboxPids(cfg.dir).filter((pid) => !self.has(pid));
  let pids = marked();
  for (const pid of pids) killQuietly(pid, 'SIGTERM');
  for (let i = 0; i < 75 && pids.length > 0; i++) {
    await sleep(20);
    pids = marked();
  }
  for (let round = 0; round < 50 && pids.length > 0; round++) {
    for (const pid of pids) killQuietly(pid, 'SIGKILL');
    await sleep(20);
    pids = marked();
  }
  if (pids.length > 0) throw new Error(`stigmer mac sandbox: processes still running after killAll: ${pids.join(' ')}`);
  withState(cfg.dir, (state) => {
    state.launchd.jobs = {};
    state.app = null;
  });
}

function quietOrRecorded(opts) {
  return { record: opts?.record === true, env: opts?.env };
}

/** `brew services start ollama`, as a user would run it (not in the transcript unless record). */
export async function brewServicesStart(sandbox, opts) {
  return assertOk(await runShim(sandbox, 'brew', ['services', 'start', 'ollama'], quietOrRecorded(opts)), 'brew services start ollama');
}

export async function brewServicesStop(sandbox, opts) {
  return assertOk(await runShim(sandbox, 'brew', ['services', 'stop', 'ollama'], quietOrRecorded(opts)), 'brew services stop ollama');
}

export async function brewServicesRestart(sandbox, opts) {
  return assertOk(await runShim(sandbox, 'brew', ['services', 'restart', 'ollama'], quietOrRecorded(opts)), 'brew services restart ollama');
}

/** `open -a Ollama --args hidden` (as install.sh does). */
export async function openApp(sandbox, opts) {
  return assertOk(await runShim(sandbox, 'open', ['-a', 'Ollama', '--args', 'hidden'], quietOrRecorded(opts)), 'open -a Ollama');
}

export async function launchctl(sandbox, args, opts) {
  return runShim(sandbox, 'launchctl', args, quietOrRecorded(opts));
}

export async function launchctlSetenv(sandbox, key, value, opts) {
  return assertOk(await runShim(sandbox, 'launchctl', ['setenv', key, value], quietOrRecorded(opts)), `launchctl setenv ${key}`);
}

function assertOk(result, what) {
  if (result.code !== 0) throw new Error(`${what} exited ${result.code}\n${result.stdout}${result.stderr}`);
  return result;
}

/** The Ollama app's settings database with `settings.expose` (and optionally browser/models). */
export function writeAppSettings(sandbox, settings) {
  const dbDir = ensureDir(path.join(sandbox.home, 'Library', 'Application Support', 'Ollama'));
  const db = path.join(dbDir, 'db.sqlite');
  const b = (v) => (v ? 1 : 0);
  const sql = [
    'CREATE TABLE IF NOT EXISTS settings (id INTEGER PRIMARY KEY CHECK (id = 1), expose BOOLEAN NOT NULL DEFAULT 0, browser BOOLEAN NOT NULL DEFAULT 0, models TEXT NOT NULL DEFAULT \'\', context_length INTEGER NOT NULL DEFAULT 0);',
    'INSERT OR IGNORE INTO settings (id) VALUES (1);',
    `UPDATE settings SET expose = ${b(settings.expose)}, browser = ${b(settings.browser)}, models = '${String(settings.models ?? '').replace(/'/g, "''")}', context_length = ${Number(settings.contextLength ?? 0) | 0} WHERE id = 1;`,
  ].join('\n');
  const r = spawnSync('/usr/bin/sqlite3', [db], { input: sql, encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`sqlite3 failed: ${r.stderr}`);
  return db;
}

/** Current state of the app process and its server, or null. */
export function appProcess(sandbox) {
  const s = readState(sandbox.dir);
  return s.app ? { pid: s.app.pid, serverPid: s.app.server?.pid ?? null } : null;
}

/** Current state of a launchd job (pid of its program, runs, last exit), or null if not loaded. */
export function launchdJob(sandbox, label) {
  const s = readState(sandbox.dir);
  const j = s.launchd.jobs[label ?? sandbox.brewLabel];
  if (!j) return null;
  return {
    label: j.label,
    plistPath: j.plistPath,
    phase: j.phase,
    pid: j.proc?.pid ?? null,
    runs: j.runs,
    lastExit: j.lastExit,
    environment: { ...j.environment },
  };
}

/** Install another copy of Ollama.app at `bundle` and register it with the sandbox's LaunchServices. */
export function installAppAt(sandbox, bundle) {
  const cfg = loadConfig(sandbox.dir);
  installApp(cfg, path.resolve(bundle));
  writeFileAtomic(configPath(sandbox.dir), `${JSON.stringify(cfg, null, 2)}\n`);
  return path.resolve(bundle);
}

/** `open <bundle> --args hidden`: start that very copy. */
export async function openAppAt(sandbox, bundle, opts) {
  return assertOk(await runShim(sandbox, 'open', [bundle, '--args', 'hidden'], quietOrRecorded(opts)), `open ${bundle}`);
}

/** Make the app ignore SIGTERM (true) or quit on it again (false). */
export function setAppIgnoresTerm(sandbox, ignores) {
  withState(sandbox.dir, (state) => {
    state.appIgnoresTerm = ignores === true;
  });
}

/** The bundle the running app was started from (its executable's path minus Contents/MacOS/Ollama), or null. */
export function runningAppBundle(sandbox) {
  const s = readState(sandbox.dir);
  if (!s.app?.pid) return null;
  const exe = procCmdline(s.app.pid)[0] ?? '';
  return exe.endsWith('/Contents/MacOS/Ollama') ? exe.slice(0, -'/Contents/MacOS/Ollama'.length) : null;
}

/**
 * A reboot and the next login (see README). Returns once the login is done: the agents have run
 * (their programs have exited) and the app's server has started once.
 */
export async function reboot(sandbox, options = {}) {
  const cfg = loadConfig(sandbox.dir);
  await killAll(cfg);
  withState(sandbox.dir, (state) => {
    state.launchd.setenv = {};
    state.launchd.jobs = {};
    state.app = null;
  });
  const agentsDir = path.join(cfg.home, 'Library', 'LaunchAgents');
  const agents = readdirSync(agentsDir).filter((name) => name.endsWith('.plist')).sort().map((name) => path.join(agentsDir, name));
  const loginItem = options.loginItem ?? cfg.app.path;
  const deadline = (ms) => Date.now() + ms;
  const startApp = async () => {
    await assertOk(await runShim(sandbox, 'open', [loginItem]), `login item ${loginItem}`);
    const until = deadline(15_000);
    while (Date.now() < until && !(readState(sandbox.dir).app?.serverStarts > 0)) await sleep(50);
  };
  const loadAgents = async () => {
    for (const plist of agents) {
      await runShim(sandbox, 'launchctl', ['bootstrap', domainTarget(cfg), plist]);
      const label = path.basename(plist, '.plist');
      // A RunAtLoad job that is not KeepAlive runs once: wait (bounded) until its program has exited.
      const until = deadline(45_000);
      for (;;) {
        const job = readState(sandbox.dir).launchd.jobs[label];
        if (!job || job.keepAlive || (job.runs > 0 && !job.proc && !job.supervisor) || Date.now() > until) break;
        await sleep(50);
      }
    }
  };
  if (options.order === 'app-first') {
    await startApp();
    await loadAgents();
  } else {
    await loadAgents();
    await startApp();
  }
}

export { buildPlist, parsePlist };
