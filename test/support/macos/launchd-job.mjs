#!/usr/bin/env node
// launchd-job.mjs: what launchd does for ONE loaded job of the sandbox's launchd model.
//
//   node launchd-job.mjs <sandbox-dir> <label> <generation> [spawn|wait-then-spawn]
//
// Started (detached) by `launchctl bootstrap` / `kickstart`. It spawns the job's program with the
// job's environment (launchd defaults < `launchctl setenv` < plist EnvironmentVariables), its
// WorkingDirectory and StandardOut/ErrorPath, records the pid in the sandbox state, and:
//   * on exit: records `last exit code` / `last terminating signal`; with KeepAlive it respawns,
//     throttled like launchd (not more than once per ThrottleInterval, default 10 s;
//     launchd.plist(5)); without KeepAlive it leaves the job loaded and "not running";
//   * SIGTERM (bootout): SIGTERM to the program, SIGKILL after ExitTimeOut (5 s), then exit;
//   * SIGUSR1 (kickstart -k): kill the running program and respawn at once;
//   * SIGUSR2 (kickstart): spawn now if not running.
// A program that cannot be executed ends like launchd reports it: last exit code = 78: EX_CONFIG.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { isAlive, jobEnv, keepAliveRespawns, procRef, withState } from './sandbox.mjs';

const [dir, label, gen, mode = 'spawn'] = process.argv.slice(2);
if (!dir || !label || !gen) {
  process.stderr.write('usage: launchd-job.mjs <sandbox-dir> <label> <generation> [mode]\n');
  process.exit(64);
}

let child = null;
let stopping = false;
let timer = null;
let forceRespawn = false;
let lastSpawnAt = 0;

const log = (msg) => process.stderr.write(`${new Date().toISOString()} [${label} ${process.pid}] ${msg}\n`);

function current(state) {
  const job = state.launchd.jobs[label];
  return job && job.gen === gen ? job : null;
}

function finish(code = 0) {
  try {
    withState(dir, (state) => {
      const job = current(state);
      if (job && job.supervisor?.pid === process.pid) {
        job.supervisor = null;
        job.nextSpawnAt = null;
      }
    });
  } catch (err) {
    log(`state update failed: ${err.message}`);
  }
  process.exit(code);
}

function openLog(file) {
  if (!file) return 'ignore';
  try {
    return openSync(file, 'a');
  } catch (err) {
    log(`cannot open ${file}: ${err.message}`);
    return 'ignore';
  }
}

function recordExit(code, signal, spawnError) {
  withState(dir, (state) => {
    const job = current(state);
    if (!job) return;
    job.proc = null;
    job.lastExit = signal ? { code: null, signal } : { code, signal: null };
    job.spawnError = spawnError ?? null;
  });
}

function afterExit(code, signal) {
  child = null;
  if (stopping) return finish(0);
  const decision = withState(dir, (state, cfg) => {
    const job = current(state);
    if (!job || job.phase === 'draining') return { stop: true };
    const respawn = forceRespawn || keepAliveRespawns(job.keepAlive, code, signal);
    if (!respawn) return { stop: true };
    const throttle = job.throttleMs ?? cfg.launchd.throttleMs;
    const delay = forceRespawn ? 0 : Math.max(0, lastSpawnAt + throttle - Date.now());
    job.nextSpawnAt = Date.now() + delay;
    return { delay };
  });
  forceRespawn = false;
  if (decision.stop) return finish(0);
  log(`respawning in ${decision.delay} ms`);
  timer = setTimeout(spawnNow, decision.delay);
}

function spawnNow() {
  timer = null;
  if (stopping) return finish(0);
  const plan = withState(dir, (state, cfg) => {
    const job = current(state);
    if (!job || job.phase === 'draining') return null;
    job.supervisor = procRef(process.pid);
    job.nextSpawnAt = null;
    job.inheritedEnv = { ...state.launchd.setenv };
    const cwd = job.workingDirectory && existsSync(job.workingDirectory) ? job.workingDirectory : '/';
    return { program: job.program, args: job.args, env: jobEnv(cfg, state, job), cwd, out: job.stdoutPath, err: job.stderrPath };
  });
  if (!plan) return finish(0);

  const out = openLog(plan.out);
  const err = plan.err && plan.err === plan.out ? out : openLog(plan.err);
  lastSpawnAt = Date.now();
  let c;
  try {
    c = spawn(plan.program, plan.args.slice(1), { argv0: plan.args[0], cwd: plan.cwd, env: plan.env, stdio: ['ignore', out, err] });
  } catch (e) {
    c = null;
    log(`spawn threw: ${e.message}`);
  }
  for (const fd of new Set([out, err])) if (typeof fd === 'number') closeSync(fd);
  if (!c || c.pid === undefined) {
    // posix_spawn failed (ENOENT, EACCES …): launchd shows this as exit status 78 (EX_CONFIG).
    c?.on('error', () => {});
    withState(dir, (state) => {
      const job = current(state);
      if (job) job.runs = (job.runs ?? 0) + 1;
    });
    recordExit(78, null, 'spawn failed');
    log(`cannot execute ${plan.program}`);
    return afterExit(78, null);
  }
  child = c;
  c.on('error', (e) => log(`child error: ${e.message}`));
  withState(dir, (state) => {
    const job = current(state);
    if (!job) return;
    job.proc = procRef(c.pid);
    job.runs = (job.runs ?? 0) + 1;
    job.spawnError = null;
  });
  log(`spawned ${plan.program} pid ${c.pid}`);
  c.on('exit', (code, signal) => {
    log(`pid ${c.pid} exited code=${code} signal=${signal}`);
    recordExit(code, signal);
    afterExit(code, signal);
  });
}

process.on('SIGTERM', () => {
  stopping = true;
  if (timer) clearTimeout(timer);
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const exitTimeout = withState(dir, (state) => current(state)?.exitTimeout ?? 5);
    setTimeout(() => child?.kill('SIGKILL'), exitTimeout * 1000);
  } else {
    finish(0);
  }
});

process.on('SIGUSR1', () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    forceRespawn = true;
    child.kill('SIGTERM');
  } else {
    if (timer) clearTimeout(timer);
    spawnNow();
  }
});

process.on('SIGUSR2', () => {
  if (!child) {
    if (timer) clearTimeout(timer);
    spawnNow();
  }
});

// Register as the job's supervisor, then start.
const ok = withState(dir, (state) => {
  const job = current(state);
  if (!job || job.phase === 'draining') return false;
  job.supervisor = procRef(process.pid);
  return true;
});
if (!ok) process.exit(0);

if (mode === 'wait-then-spawn') {
  // kickstart -k without a live supervisor: wait (bounded, 10 s) for the old program to go.
  const old = withState(dir, (state) => current(state)?.proc ?? null);
  let waited = 0;
  const tick = () => {
    if (!isAlive(old) || waited >= 10_000) spawnNow();
    else {
      waited += 20;
      setTimeout(tick, 20);
    }
  };
  tick();
} else {
  spawnNow();
}
