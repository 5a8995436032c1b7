#!/usr/bin/env node
// service-host.mjs: the process of the sandbox's "ollama" Windows service (see service.mjs): a
// wrapper such as nssm.exe that runs `ollama.exe serve` (test/support/fake-ollama.mjs) as its child.
//
// Its environment is the one the SCM built (service.mjs scmEnvironment: Machine store + the key's
// Environment, as they were when the service started). With NSSM's Parameters it applies
// AppEnvironment (replace) and AppEnvironmentExtra (add, %VAR% expanded in order) for the child.
// It tells the SCM "running" once the server has lived 1.5 s; a server that exits before that makes
// it exit 1 (the service fails to start). A stop control (SIGTERM) stops the server, then itself,
// unless the sandbox says serviceStopHangs.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { FAKE_OLLAMA, readConfig, readJson, recordProcess, SANDBOX_VAR, SERVER_IMAGE, writeJsonAtomic } from './sandbox.mjs';
import { getValue, PARAMETERS_KEY, readRegistry } from './service.mjs';

const START_WINDOW_MS = 1500;
const argv = process.argv.slice(2);
const option = (name) => argv[argv.indexOf(name) + 1];
const dir = option('--sandbox');
const image = option('--image') ?? 'service.exe';
const stateFile = path.join(dir, 'service.json');
const config = readConfig(dir);
const registry = readRegistry(dir);

recordProcess(dir, { pid: process.pid, image, ollamaHost: process.env.OLLAMA_HOST });

function markState(patch) {
  const state = readJson(stateFile, {});
  if (state.pid === process.pid) writeJsonAtomic(stateFile, { ...state, ...patch });
}

function entries(name) {
  const value = getValue(registry, PARAMETERS_KEY, name);
  return value?.kind === 'MultiString' ? value.value : undefined;
}

/** The child's environment: ours, or NSSM's AppEnvironment instead; then AppEnvironmentExtra on top. */
function applicationEnv() {
  const nssm = getValue(registry, PARAMETERS_KEY, 'Application') !== undefined;
  let env = { ...process.env };
  if (!nssm) return env;
  const put = (target, entry) => {
    const at = entry.indexOf('=', 1);
    if (at <= 0) return;
    const name = entry.slice(0, at);
    const value = entry.slice(at + 1).replace(/%([^%]+)%/g, (whole, v) => {
      const key = Object.keys(target).find((k) => k.toUpperCase() === v.toUpperCase());
      return key === undefined ? whole : target[key];
    });
    for (const k of Object.keys(target)) if (k.toUpperCase() === name.toUpperCase()) delete target[k];
    target[name] = value;
  };
  const replace = entries('AppEnvironment');
  if (replace !== undefined && replace.length > 0) {
    // The sandbox keeps PATH and its own variable: without them no shim or node could run.
    const kept = { PATH: process.env.PATH, [SANDBOX_VAR]: process.env[SANDBOX_VAR] };
    env = { ...kept };
    for (const entry of replace) put(env, entry);
  }
  for (const entry of entries('AppEnvironmentExtra') ?? []) put(env, entry);
  return env;
}

const env = applicationEnv();
if (config.serviceFailWhen && env.OLLAMA_HOST === config.serviceFailWhen) {
  // Injected: the service's program fails on this configuration before it starts anything.
  markState({ exitCode: 1067 });
  process.exit(1);
}

const server = spawn(process.execPath, [FAKE_OLLAMA, 'serve'], { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
let stderr = '';
server.stderr.on('data', (chunk) => (stderr = `${stderr}${chunk}`.slice(-4000)));
server.once('spawn', () => recordProcess(dir, { pid: server.pid, image: SERVER_IMAGE, parentPid: process.pid, ollamaHost: env.OLLAMA_HOST }));
let stopping = false;
const started = setTimeout(() => markState({ running: true }), START_WINDOW_MS);
server.once('exit', (code) => {
  clearTimeout(started);
  if (!stopping) {
    fs.appendFileSync(path.join(dir, 'service.log'), `server exited with ${code}: ${stderr}\n`);
    markState({ exitCode: 1067 });
  }
  process.exit(stopping ? 0 : 1);
});

process.on('SIGTERM', () => {
  if (readConfig(dir).serviceStopHangs) return; // the stop control is never answered: STOP_PENDING
  stopping = true;
  server.kill('SIGTERM');
  setTimeout(() => server.kill('SIGKILL'), 5000).unref();
});
