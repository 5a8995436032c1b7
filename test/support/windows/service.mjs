// service.mjs: a Windows service named "ollama" in the Windows sandbox, with its registry key, the
// service control manager's part of `sc`, and the PowerShell registry scripts that read and edit it.
//
// What it models (sources next to each part):
//   * The registry (registry.json): keys are case-insensitive, values have a kind (MultiString =
//     REG_MULTI_SZ, String, ExpandString, DWord). HKLM is readable by every user and writable only
//     by Administrators: a write without `admin` fails with PowerShell's "Requested registry access
//     is not allowed." and changes nothing.
//   * The SCM: the service's process (service-host.mjs, recorded under the program name of its
//     ImagePath, e.g. nssm.exe) gets the Machine environment plus the key's `Environment` entries,
//     read when the service starts, never while it runs. A change to the registry reaches the server
//     only through `sc stop` + `sc start`. Start = 4 (disabled): `sc start` fails with 1058.
//   * NSSM (Parameters\Application present; README "Environment variables"): the application gets
//     AppEnvironment instead of the service's environment when that is set, then AppEnvironmentExtra
//     on top, entries expanded (%VAR%) in order. Simplification: a server that exits during the
//     first 1.5 s (NSSM's default throttle) makes the service process exit, so the SCM shows STOPPED;
//     real NSSM would keep retrying (the service would stay up but Ollama would not answer).
//   * Injected failures (sandbox.json `serviceFailWhen`, `serviceStopHangs`): the service's program
//     exits at once when its server would get OLLAMA_HOST = serviceFailWhen; with serviceStopHangs
//     the service process ignores the stop control, and the service stays STOP_PENDING until
//     something ends it by pid (microsoft/WSL#4360 shows that state and the taskkill that ends it).
//
// installService() (tests) writes the key, the program file and the options, and starts the
// service if asked. Importing this module has no side effects.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CRLF, isRunning, procStat, readConfig, readJson, readStore, sandboxFile, SANDBOX_VAR, waitFor, writeConfig, writeJsonAtomic } from './sandbox.mjs';

export const SERVICE_HOST = fileURLToPath(new URL('./service-host.mjs', import.meta.url));
export const SERVICE_NAME = 'ollama';
export const SERVICE_KEY = 'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\ollama';
export const PARAMETERS_KEY = `${SERVICE_KEY}\\Parameters`;
const REGISTRY_FILE = 'registry.json';
const SERVICE_FILE = 'service.json';

const out = (text) => process.stdout.write(text);
const err = (text) => process.stderr.write(text);

// ---------------------------------------------------------------------------
// The registry: { "<key>": { "<value name>": { kind, value } } }, names case-insensitive

export function readRegistry(dir) {
  return readJson(path.join(dir, REGISTRY_FILE), {});
}

export function writeRegistry(dir, registry) {
  writeJsonAtomic(path.join(dir, REGISTRY_FILE), registry);
}

const same = (a, b) => a.toUpperCase() === b.toUpperCase();

export function findKey(registry, key) {
  return Object.keys(registry).find((k) => same(k, key));
}

export function getValue(registry, key, name) {
  const k = findKey(registry, key);
  if (k === undefined) return undefined;
  const n = Object.keys(registry[k]).find((v) => same(v, name));
  return n === undefined ? undefined : registry[k][n];
}

export function setValue(registry, key, name, entry) {
  const next = structuredClone(registry);
  const k = findKey(next, key) ?? key;
  next[k] ??= {};
  const n = Object.keys(next[k]).find((v) => same(v, name)) ?? name;
  if (entry === undefined) delete next[k][n];
  else next[k][n] = entry;
  return next;
}


// ---------------------------------------------------------------------------
// PowerShell

/**
 * ConvertTo-Json -Compress of Windows PowerShell 5.1 (JavaScriptSerializer): it escapes < > & ' and
 * every control character as \uXXXX; a hashtable's keys come in no particular order (here reversed).
 */
export function psJson(value) {
  const text = JSON.stringify(value, (_key, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v));
  return text.replace(/[<>&'\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const Q = `'([^']+)'`;
const ws = (text) => text.replace(/\s+/g, ' ').trim();

/** The read of one value (platforms/win32/registry.ts readValueScript), recognised as a whole. */
const READ = new RegExp(
  `^if \\(-not \\(Test-Path -LiteralPath ${Q}\\)\\) \\{ ConvertTo-Json -Compress -InputObject @\\{ key = \\$false \\} \\} ` +
    `elseif \\(\\(Get-Item -LiteralPath ${Q} -ErrorAction Stop\\)\\.GetValueNames\\(\\) -notcontains ${Q}\\) \\{ ConvertTo-Json -Compress -InputObject @\\{ key = \\$true \\} \\} ` +
    `else \\{ \\$item = Get-Item -LiteralPath ${Q} -ErrorAction Stop; ConvertTo-Json -Compress -Depth 2 -InputObject @\\{ key = \\$true; kind = \\[string\\]\\$item\\.GetValueKind\\(${Q}\\); value = \\$item\\.GetValue\\(${Q}, \\$null, 'DoNotExpandEnvironmentNames'\\) \\} \\}$`,
  'i',
);

/** The edit of one NAME=VALUE entry (registry.ts editValueScript): one pattern per line. */
const EDIT = [
  /^trap \[System\.Security\.SecurityException\] \{ \[Console\]::Error\.WriteLine\('This needs an elevated PowerShell \(Run as administrator\): ' \+ \$_\.Exception\.Message\); exit 5 \}$/i,
  /^trap \{ \[Console\]::Error\.WriteLine\(\$_\.Exception\.Message\); exit 1 \}$/i,
  /^\$set = \$(true|false)$/i,
  new RegExp(`^\\$item = Get-Item -LiteralPath ${Q} -ErrorAction Stop$`, 'i'),
  /^\$list = \[string\[\]\]@\(\)$/i,
  new RegExp(
    `^if \\(\\$item\\.GetValueNames\\(\\) -contains ${Q}\\) \\{ if \\(\\[string\\]\\$item\\.GetValueKind\\(${Q}\\) -ne 'MultiString'\\) \\{ throw '([^']+)' \\}; \\$list = \\[string\\[\\]\\]\\$item\\.GetValue\\(${Q}, \\$null, 'DoNotExpandEnvironmentNames'\\) \\}$`,
    'i',
  ),
  /^\$prefix = '([A-Za-z][A-Za-z0-9_]*)='$/,
  /^\$found = \$false$/i,
  /^\$new = New-Object System\.Collections\.Generic\.List\[string\]$/i,
  /^foreach \(\$entry in \$list\) \{ if \(\$entry\.StartsWith\(\$prefix, \[StringComparison\]::OrdinalIgnoreCase\)\) \{ if \(\$set -and -not \$found\) \{ \$new\.Add\(\$entry\.Substring\(0, \$prefix\.Length\) \+ \[string\]\$env:STIGMER_SETUP_VALUE\) \}; \$found = \$true \} else \{ \$new\.Add\(\$entry\) \} \}$/i,
  /^if \(\$set -and -not \$found\) \{ \$new\.Add\(\$prefix \+ \[string\]\$env:STIGMER_SETUP_VALUE\) \}$/i,
  new RegExp(
    `^if \\(\\$new\\.Count -gt 0\\) \\{ Set-ItemProperty -LiteralPath ${Q} -Name ${Q} -Type MultiString -Value \\$new\\.ToArray\\(\\) -ErrorAction Stop \\} elseif \\(\\$item\\.GetValueNames\\(\\) -contains ${Q}\\) \\{ Remove-ItemProperty -LiteralPath ${Q} -Name ${Q} -ErrorAction Stop \\}$`,
    'i',
  ),
];

const PARENT = /^\(Get-CimInstance Win32_Process -Filter 'ProcessId = ([0-9]+)'\)\.ParentProcessId$/i;

function allSame(values) {
  return values.every((v) => same(v, values[0]));
}

function parseEdit(script) {
  const lines = script.split(/\r?\n/).map((line) => ws(line)).filter((line) => line !== '');
  if (lines.length !== EDIT.length) return undefined;
  const m = lines.map((line, n) => EDIT[n].exec(line)).slice(2);
  if (m.some((x) => x === null)) return undefined;
  const keys = [m[1][1], m[9][1], m[9][4]];
  const names = [m[3][1], m[3][2], m[3][4], m[9][2], m[9][3], m[9][5]];
  if (!allSame(keys) || !allSame(names)) return undefined;
  return { set: m[0][1].toLowerCase() === 'true', key: keys[0], name: names[0], thrown: m[3][3], prefix: `${m[4][1]}=` };
}

/** The NAME=VALUE edit, as the script means it: the entry for NAME keeps its place; other entries stay. */
function editList(list, prefix, set, value) {
  const next = [];
  let found = false;
  for (const entry of list) {
    if (entry.toUpperCase().startsWith(prefix.toUpperCase())) {
      if (set && !found) next.push(entry.slice(0, prefix.length) + value);
      found = true;
    } else next.push(entry);
  }
  if (set && !found) next.push(prefix + value);
  return next;
}

/**
 * The service's PowerShell scripts. Returns the exit code, or undefined when `script` is not one of
 * them (the general PowerShell shim then handles or refuses it).
 */
export function servicePowerShell({ dir, script, config }) {
  const flat = ws(script);
  let m = READ.exec(flat);
  if (m) {
    const keys = [m[1], m[2], m[4]];
    const names = [m[3], m[5], m[6]];
    if (!allSame(keys) || !allSame(names)) return undefined;
    const registry = readRegistry(dir);
    const key = keys[0];
    if (findKey(registry, key) === undefined) out(`${psJson({ key: false })}${CRLF}`);
    else {
      const entry = getValue(registry, key, names[0]);
      out(`${entry === undefined ? psJson({ key: true }) : psJson({ key: true, kind: entry.kind, value: entry.value })}${CRLF}`);
    }
    return 0;
  }
  m = PARENT.exec(flat);
  if (m) {
    const stat = procStat(m[1]);
    if (stat !== undefined) out(`${stat.ppid}${CRLF}`);
    return 0;
  }
  const edit = parseEdit(script);
  if (!edit) return undefined;
  const registry = readRegistry(dir);
  // The script's traps print the exception's message alone (and say "elevated" for a SecurityException).
  if (findKey(registry, edit.key) === undefined) {
    err(`Cannot find path '${edit.key}' because it does not exist.${CRLF}`);
    return 1;
  }
  const current = getValue(registry, edit.key, edit.name);
  if (current !== undefined && current.kind !== 'MultiString') {
    err(`${edit.thrown}${CRLF}`);
    return 1;
  }
  const next = editList(current?.value ?? [], edit.prefix, edit.set, process.env.STIGMER_SETUP_VALUE ?? '');
  if (next.length === 0 && current === undefined) return 0;
  if (!config.admin) {
    // HKLM\SYSTEM is writable by Administrators only: Set-/Remove-ItemProperty throw a
    // SecurityException, "Requested registry access is not allowed.", and nothing is written.
    err(`This needs an elevated PowerShell (Run as administrator): Requested registry access is not allowed.${CRLF}`);
    return 5;
  }
  writeRegistry(dir, setValue(registry, edit.key, edit.name, next.length > 0 ? { kind: 'MultiString', value: next } : undefined));
  return 0;
}

// ---------------------------------------------------------------------------
// The service control manager: sc queryex | query | start | stop ollama

export function readService(dir) {
  return readJson(path.join(dir, SERVICE_FILE), {});
}

function writeService(dir, state) {
  writeJsonAtomic(path.join(dir, SERVICE_FILE), state);
}

/** The SCM's view: RUNNING, START_PENDING, STOP_PENDING or STOPPED, and the service process's pid. */
export function serviceStatus(dir) {
  const state = readService(dir);
  if (!state.pid || !isRunning(state.pid, state.startTime)) return { state: 'STOPPED', pid: 0, exitCode: state.exitCode ?? 0 };
  if (state.stopRequested) return { state: 'STOP_PENDING', pid: state.pid, exitCode: 0 };
  return { state: state.running ? 'RUNNING' : 'START_PENDING', pid: state.pid, exitCode: 0 };
}

const STATE_LINES = {
  RUNNING: ['4  RUNNING ', '(STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)'],
  START_PENDING: ['2  START_PENDING ', '(NOT_STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)'],
  STOP_PENDING: ['3  STOP_PENDING ', '(STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)'],
  STOPPED: ['1  STOPPED ', undefined],
};

/** The block sc prints (query: no PID; queryex and start: PID and FLAGS), laid out as the captures in test/fixtures/win32. */
export function formatServiceBlock(status, { pid }) {
  const [state, flags] = STATE_LINES[status.state];
  const exit = status.exitCode ?? 0;
  return [
    '',
    `SERVICE_NAME: ${SERVICE_NAME}`,
    '        TYPE               : 10  WIN32_OWN_PROCESS  ',
    `        STATE              : ${state}`,
    ...(flags ? [`                                ${flags}`] : []),
    `        WIN32_EXIT_CODE    : ${exit}  (0x${exit.toString(16)})`,
    '        SERVICE_EXIT_CODE  : 0  (0x0)',
    '        CHECKPOINT         : 0x0',
    `        WAIT_HINT          : ${status.state.endsWith('PENDING') ? '0x7d0' : '0x0'}`,
    ...(pid ? [`        PID                : ${status.pid}`, '        FLAGS              : '] : []),
    '',
    '',
  ].join(CRLF);
}

function scFailed(what, code, message) {
  out(`[SC] ${what} FAILED ${code}:${CRLF}${CRLF}${message}${CRLF}${CRLF}`);
  return code;
}

// sc's error lines and their texts, as public captures show them (exact-string index of public
// GitHub write-ups; repositories not exposed, so lower provenance): `sc start wuauserv` on a
// disabled service -> "[SC] StartService FAILED 1058:" / blank / "The service cannot be started,
// either because it is disabled or …"; `sc.exe stop VSS` -> "[SC] ControlService FAILED 1062:" /
// blank / "The service has not been started."; `sc start npf` unelevated -> "[SC] StartService:
// OpenService FAILED 5:" / blank / "Access is denied."; "[SC] StartService FAILED 1056:" / "An
// instance of the service is already running.". 1061's text is Windows' message for
// ERROR_SERVICE_CANNOT_ACCEPT_CTRL (no capture found). One write-up measured that sc's exit status
// on Windows 11 is the code's low byte too (1056 -> 32, 1062 -> 38): the product reads the
// "[SC] … FAILED <code>:" line, never the exit status.
const MESSAGES = {
  5: 'Access is denied.',
  1056: 'An instance of the service is already running.',
  1058: 'The service cannot be started, either because it is disabled or because it has no enabled devices associated with it.',
  1061: 'The service cannot accept control messages at this time.',
  1062: 'The service has not been started.',
};

/** The SCM's environment for the service's process: the sandbox's own variables, the Machine store, then the key's Environment. */
export function scmEnvironment(dir, base = process.env) {
  const env = { [SANDBOX_VAR]: dir };
  if (base.PATH !== undefined) env.PATH = base.PATH;
  const put = (name, value) => {
    for (const existing of Object.keys(env)) if (same(existing, name)) delete env[existing];
    env[name] = value;
  };
  for (const [name, value] of Object.entries(readStore(dir, 'Machine'))) if (!same(name, 'PATH')) put(name, value);
  const environment = getValue(readRegistry(dir), SERVICE_KEY, 'Environment');
  if (environment?.kind === 'MultiString') {
    for (const entry of environment.value) {
      const at = entry.indexOf('=', 1);
      if (at > 0) put(entry.slice(0, at), entry.slice(at + 1));
    }
  }
  return env;
}

function startService(dir, base = process.env) {
  const registry = readRegistry(dir);
  const image = getValue(registry, SERVICE_KEY, 'ImagePath')?.value ?? '';
  const program = /^"([^"]+)"/.exec(image)?.[1] ?? image.split(' ')[0];
  const child = spawn(process.execPath, [SERVICE_HOST, '--sandbox', dir, '--image', path.win32.basename(program || 'service.exe')], {
    cwd: dir,
    env: scmEnvironment(dir, base),
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  const stat = procStat(child.pid);
  writeService(dir, { pid: child.pid, startTime: stat?.startTime, running: false, stopRequested: false });
  return child.pid;
}

export async function serviceSc({ dir, args, config }) {
  const rest = args[0]?.startsWith('\\\\') ? args.slice(1) : args;
  const verb = (rest[0] ?? '').toLowerCase();
  if (rest.length !== 2 || !['query', 'queryex', 'start', 'stop'].includes(verb)) {
    err(`sc (Windows sandbox): only query, queryex, start and stop <service> are implemented${CRLF}`);
    return 1;
  }
  // `sc delete` removes the service's key: without it there is no such service.
  if (!same(rest[1], SERVICE_NAME) || findKey(readRegistry(dir), SERVICE_KEY) === undefined) {
    out(`[SC] EnumQueryServicesStatus:OpenService FAILED 1060:${CRLF}${CRLF}The specified service does not exist as an installed service.${CRLF}${CRLF}`);
    return 1060;
  }
  const status = serviceStatus(dir);
  if (verb === 'query' || verb === 'queryex') {
    out(formatServiceBlock(status, { pid: verb === 'queryex' }));
    return 0;
  }
  // Starting and stopping need SERVICE_START / SERVICE_STOP, which Users don't have on a service.
  if (!config.admin) return scFailed(verb === 'start' ? 'StartService: OpenService' : 'OpenService', 5, MESSAGES[5]);
  if (verb === 'start') {
    if (status.state !== 'STOPPED') return scFailed('StartService', status.state === 'STOP_PENDING' ? 1061 : 1056, MESSAGES[status.state === 'STOP_PENDING' ? 1061 : 1056]);
    if (Number(getValue(readRegistry(dir), SERVICE_KEY, 'Start')?.value) === 4) return scFailed('StartService', 1058, MESSAGES[1058]);
    startService(dir);
    out(formatServiceBlock(serviceStatus(dir), { pid: true }));
    return 0;
  }
  if (status.state === 'STOPPED') return scFailed('ControlService', 1062, MESSAGES[1062]);
  if (status.state === 'STOP_PENDING') return scFailed('ControlService', 1061, MESSAGES[1061]);
  writeService(dir, { ...readService(dir), stopRequested: true });
  try {
    process.kill(status.pid, 'SIGTERM');
  } catch {
    // it has just exited: the SCM reports STOPPED at the next query
  }
  out(formatServiceBlock(serviceStatus(dir), { pid: false }));
  return 0;
}

// ---------------------------------------------------------------------------
// Tests' entry point

/**
 * Install the ollama service in a sandbox: its key (ImagePath, Start, Environment; NSSM's
 * Parameters when `nssm`), the program file, and the options; `running` starts it through the SCM
 * model and waits until its server listens (or the service stopped).
 */
export async function installService(box, options = {}) {
  const { nssm = false, environment, appEnvironmentExtra, appEnvironment, start = 2, running = true, program } = options;
  const image = program ?? (nssm ? 'C:\\Program Files\\nssm\\win64\\nssm.exe' : 'C:\\ollama\\ollama-service.exe');
  let registry = readRegistry(box.dir);
  registry = setValue(registry, SERVICE_KEY, 'ImagePath', { kind: 'ExpandString', value: `"${image}"` });
  registry = setValue(registry, SERVICE_KEY, 'Start', { kind: 'DWord', value: start });
  registry = setValue(registry, SERVICE_KEY, 'Type', { kind: 'DWord', value: 16 });
  if (environment !== undefined) registry = setValue(registry, SERVICE_KEY, 'Environment', typeof environment === 'object' && !Array.isArray(environment) ? environment : { kind: 'MultiString', value: environment });
  if (nssm) {
    registry = setValue(registry, PARAMETERS_KEY, 'Application', { kind: 'ExpandString', value: 'C:\\ollama\\ollama.exe' });
    registry = setValue(registry, PARAMETERS_KEY, 'AppParameters', { kind: 'ExpandString', value: 'serve' });
    if (appEnvironmentExtra !== undefined) registry = setValue(registry, PARAMETERS_KEY, 'AppEnvironmentExtra', { kind: 'MultiString', value: appEnvironmentExtra });
    if (appEnvironment !== undefined) registry = setValue(registry, PARAMETERS_KEY, 'AppEnvironment', { kind: 'MultiString', value: appEnvironment });
  }
  writeRegistry(box.dir, registry);
  if (program !== null) fs.writeFileSync(sandboxFile(box.dir, image), 'MZ (the service program of the Windows sandbox)\n');
  const config = readConfig(box.dir);
  writeConfig(box.dir, { ...config, service: 'running', serviceLive: true, serviceFailWhen: options.failWhen ?? null, serviceStopHangs: Boolean(options.stopHangs) });
  if (running) {
    startService(box.dir, box.env);
    await waitFor(() => serviceStatus(box.dir).state !== 'START_PENDING', 15_000, 'the ollama service to leave START_PENDING');
  }
  return image;
}

/** Uninstall the service as `nssm remove ollama confirm` / `sc delete ollama` would: stop it, delete its key. */
export async function uninstallService(box) {
  const { pid } = serviceStatus(box.dir);
  if (pid) {
    for (const record of box.processes()) if (record.pid === pid || record.parentPid === pid) process.kill(record.pid, 'SIGKILL');
    await waitFor(() => serviceStatus(box.dir).state === 'STOPPED', 10_000, 'the ollama service to stop');
  }
  const registry = readRegistry(box.dir);
  for (const key of Object.keys(registry)) if (key.toUpperCase().startsWith(SERVICE_KEY.toUpperCase())) delete registry[key];
  writeRegistry(box.dir, registry);
}
