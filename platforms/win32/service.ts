/**
 * Ollama run as a Windows service named `ollama`. Ollama ships none: docs/windows.mdx points to
 * tools such as NSSM wrapping `ollama serve`, so the service's process is a wrapper (nssm.exe, or
 * another) and the server is its child `ollama.exe`.
 *
 * Where the server's environment comes from:
 *   - the service control manager starts the service's process with the machine's environment plus
 *     the service key's own `Environment` value (REG_MULTI_SZ, HKLM\SYSTEM\CurrentControlSet\
 *     Services\ollama), read when the service starts, never while it runs;
 *   - NSSM (its README, "Environment variables"): `Parameters\AppEnvironment` replaces that
 *     environment for the application, and `Parameters\AppEnvironmentExtra` (REG_MULTI_SZ,
 *     KEY=VALUE entries) is added on top of it, last. So for an NSSM service the setting that wins
 *     is AppEnvironmentExtra, and that is the one setup edits; for any other service, `Environment`.
 *
 * Setup changes only the OLLAMA_HOST entry of that list, in place (every other entry keeps its
 * place and its bytes), then restarts the service. Both need an elevated PowerShell, and only this
 * strategy ever does.
 *
 * The restart never stops what it can't start again: before `sc stop` it checks that the service
 * is not disabled and that its program exists. A stop that hangs (STOP_PENDING, the state
 * microsoft/WSL#4360 shows) is ended with taskkill on the service's own pid, and then the service
 * is started. So a rollback, which restarts again on the restored setting, ends with the service
 * started, whatever the first attempt did.
 */
import type { Context } from '../../scripts/context.ts';
import { formatBindAddress, parseOllamaHost, sameBindAddress } from '../../scripts/ollama-host.ts';
import { quotePowerShell } from '../../scripts/shell-quote.ts';
import { describeFailure, StepError } from '../../scripts/system-files.ts';
import { cleanField, lastLine, parseDecimal } from '../../scripts/text.ts';
import { SETUP_COMMAND } from '../commands.ts';
import { listensAsRequested, type DetectOptions, type Detection, type Plan, type PlanRequest, type Problem, type RestartChange, type SettingStoreId, type Strategy } from '../types.ts';
import { reservedProblem, reservedRange } from './app.ts';
import { parseScQuery, scServiceMissing, type ScQueryResult } from './parsers/sc-query.ts';
import { isElevated, readEnvironmentVariable, runPowerShell } from './powershell.ts';
import { entryValue, multiStringEntries, multiStringEnvStore, readRegistryValue, SERVICES_KEY, type RegistryValue } from './registry.ts';

export const SERVICE_NAME = 'ollama';
export const SERVICE_KEY = `${SERVICES_KEY}\\${SERVICE_NAME}`;
export const PARAMETERS_KEY = `${SERVICE_KEY}\\Parameters`;
const SERVICE_ENV_WHERE = `the ollama service's Environment (${SERVICE_KEY})`;
const NSSM_ENV_WHERE = `NSSM's AppEnvironmentExtra of the ollama service (${PARAMETERS_KEY})`;

/** The service's own environment (the `Environment` value of its key), one entry at a time. */
export const serviceEnvStore = multiStringEnvStore('windows-service-env', SERVICE_KEY, 'Environment', SERVICE_ENV_WHERE);
/** NSSM's AppEnvironmentExtra: what NSSM adds to the application's environment, last. */
export const nssmEnvStore = multiStringEnvStore('windows-nssm-env', PARAMETERS_KEY, 'AppEnvironmentExtra', NSSM_ENV_WHERE);

/** SERVICE_DISABLED, the `Start` value of a service that `sc start` refuses (error 1058). */
const START_DISABLED = 4;
/** sc's error codes (winerror.h). */
const SC = { accessDenied: 5, alreadyRunning: 1056, notStarted: 1062, cannotAcceptControl: 1061 } as const;
const POLL_MS = 250;
const STOP_WAIT_MS = 20_000;
const KILL_WAIT_MS = 10_000;
const START_WAIT_MS = 30_000;
/** Windows' limit for one environment variable (SetEnvironmentVariable: 32,767 characters with its NUL). */
const MAX_ENV_VALUE = 32_767;

export interface WinServiceDetection extends Detection {
  strategy: 'win32-service';
  state?: string;
  elevated: boolean;
  /** NSSM runs this service (it has NSSM's Parameters\Application): its AppEnvironmentExtra is where OLLAMA_HOST goes. */
  nssm: boolean;
  /** OLLAMA_HOST in the service's own Environment value. */
  serviceHost?: string;
  /** OLLAMA_HOST in NSSM's AppEnvironmentExtra, which NSSM applies last. */
  nssmHost?: string;
  machineHost?: string;
  port: number;
  reservedProblem?: Problem;
  /** Why the service could not be started again after a stop (disabled, its program missing): then nothing is stopped. */
  cannotStart?: string;
  /** A setting that can't be read or edited safely (not REG_MULTI_SZ, OLLAMA_HOST twice, a failed read). */
  unreadable?: string;
}

/** The program a service's ImagePath starts: the quoted path, or the unquoted text up to `.exe`. */
export function programOf(imagePath: string, env: Readonly<Record<string, string | undefined>>): string | undefined {
  const text = imagePath.trim();
  const raw = text.startsWith('"') ? text.slice(1, Math.max(1, text.indexOf('"', 1))) : (/^(.*?\.exe)(?:\s|$)/i.exec(text)?.[1] ?? text.split(/\s/)[0] ?? '');
  let unknown = false;
  // ImagePath is REG_EXPAND_SZ: %SystemRoot% and the like are the machine's variables.
  const expanded = raw.replace(/%([^%]+)%/g, (whole, name: string) => {
    const key = Object.keys(env).find((candidate) => candidate.toUpperCase() === name.toUpperCase());
    if (key === undefined || env[key] === undefined) unknown = true;
    return key === undefined ? whole : (env[key] ?? whole);
  });
  return unknown || expanded === '' ? undefined : expanded;
}

/** A string value (REG_SZ or REG_EXPAND_SZ), or undefined. */
function stringValue(value: RegistryValue): string | undefined {
  return value.key && value.kind !== undefined && typeof value.value === 'string' ? value.value : undefined;
}

/**
 * Why `sc start ollama` could not work after a stop, or undefined when it can: a disabled service
 * (error 1058), or a program (ImagePath) that does not exist. Read before anything is stopped.
 */
export async function whyCannotStart(ctx: Context): Promise<string | undefined> {
  const [start, image] = await Promise.all([readRegistryValue(ctx, SERVICE_KEY, 'Start'), readRegistryValue(ctx, SERVICE_KEY, 'ImagePath')]);
  if (start.key && start.kind !== undefined && Number(start.value) === START_DISABLED) {
    return 'The ollama service is disabled, so it could not be started again after a stop';
  }
  const imagePath = stringValue(image);
  const program = imagePath === undefined ? undefined : programOf(imagePath, ctx.env);
  // Only a full path (C:\…) is checked: a bare name is resolved by Windows, not by us. A symlink counts.
  const kind = program !== undefined && /^[A-Za-z]:\\/.test(program) ? (await ctx.fs.inspect(program))?.kind : 'file';
  if (kind !== 'file' && kind !== 'symlink') {
    return `The ollama service's program ${cleanField(program ?? '')} (its ImagePath) does not exist, so the service could not be started again after a stop`;
  }
  return undefined;
}

/** The parent of a process (Win32_Process.ParentProcessId), or undefined. A pid is a number, never text. */
async function parentPid(ctx: Context, pid: number): Promise<number | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const result = await runPowerShell(ctx, `(Get-CimInstance Win32_Process -Filter 'ProcessId = ${pid}').ParentProcessId`);
  return result.exitCode === 0 ? parseDecimal(result.stdout.trim(), 0xffffffff) : undefined;
}

/** The port's owner when it is an ollama.exe below the service's process (NSSM's child), else the service's pid. */
async function serverPidOf(ctx: Context, servicePid: number | undefined, options: DetectOptions): Promise<number | undefined> {
  if (!servicePid) return undefined;
  const owner = options.listeners?.find((listener) => listener.owner)?.owner;
  if (!owner || owner.pid === servicePid) return servicePid;
  let pid: number | undefined = owner.pid;
  for (let depth = 0; depth < 4 && pid !== undefined; depth++) {
    pid = await parentPid(ctx, pid);
    if (pid === servicePid) return owner.pid;
  }
  return servicePid;
}

/** Reads that may fail: a failure is kept as the reason to refuse, never taken as "not set". */
async function attempt<T>(work: () => Promise<T>): Promise<{ value?: T; error?: string }> {
  try {
    return { value: await work() };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

async function queryService(ctx: Context): Promise<{ status: ScQueryResult; failed: boolean }> {
  const sc = await ctx.exec('sc', ['queryex', SERVICE_NAME], { timeoutMs: 15_000 });
  return { status: parseScQuery(sc.stdout), failed: sc.failure !== undefined };
}

async function detect(ctx: Context, options: DetectOptions): Promise<WinServiceDetection | undefined> {
  const { status, failed } = await queryService(ctx);
  if (failed || !status.exists || scServiceMissing(status)) return undefined;
  const [elevated, environment, application, extra, replaced, machineHost, reserved, cannotStart, serverPid] = await Promise.all([
    isElevated(ctx),
    attempt(async () => entryValue(multiStringEntries(await readRegistryValue(ctx, SERVICE_KEY, 'Environment'), SERVICE_ENV_WHERE), 'OLLAMA_HOST', SERVICE_ENV_WHERE)),
    attempt(() => readRegistryValue(ctx, PARAMETERS_KEY, 'Application')),
    attempt(async () => entryValue(multiStringEntries(await readRegistryValue(ctx, PARAMETERS_KEY, 'AppEnvironmentExtra'), NSSM_ENV_WHERE), 'OLLAMA_HOST', NSSM_ENV_WHERE)),
    attempt(async () => multiStringEntries(await readRegistryValue(ctx, PARAMETERS_KEY, 'AppEnvironment'), `NSSM's AppEnvironment of the ollama service (${PARAMETERS_KEY})`)),
    readEnvironmentVariable(ctx, 'OLLAMA_HOST', 'Machine'),
    reservedRange(ctx, options.port),
    attempt(() => whyCannotStart(ctx)),
    serverPidOf(ctx, status.pid, options),
  ]);
  const nssm = application.value?.key === true && application.value.kind !== undefined;
  const serviceHost = environment.value;
  const nssmHost = extra.value;
  const replacedHost = replaced.value && replaced.value.length > 0 ? (entryValue(replaced.value, 'OLLAMA_HOST', 'AppEnvironment') ?? null) : undefined;
  // NSSM: AppEnvironmentExtra last; AppEnvironment, when set, replaces everything below it.
  const configuredHost = nssm ? (nssmHost ?? (replacedHost !== undefined ? (replacedHost ?? undefined) : (serviceHost ?? machineHost))) : (serviceHost ?? machineHost);
  const configuredIn = (() => {
    if (nssm && nssmHost !== undefined) return NSSM_ENV_WHERE;
    if (nssm && replacedHost !== undefined) return replacedHost === null ? undefined : "NSSM's AppEnvironment of the ollama service";
    if (serviceHost !== undefined) return SERVICE_ENV_WHERE;
    return machineHost !== undefined ? 'the system (Machine) environment variable OLLAMA_HOST' : undefined;
  })();
  const unreadable = [environment.error, application.error, extra.error, replaced.error].filter((error): error is string => error !== undefined);
  const problems: Problem[] = [];
  if (reserved) problems.push(reservedProblem(reserved, options.port));
  return {
    strategy: 'win32-service',
    description: `Windows service ollama${nssm ? ' (NSSM)' : ''}${status.state ? ` (${status.state.toLowerCase()})` : ''}`,
    state: status.state,
    elevated,
    nssm,
    serviceHost,
    nssmHost,
    machineHost,
    port: options.port,
    reservedProblem: reserved ? reservedProblem(reserved, options.port) : undefined,
    cannotStart: cannotStart.value ?? cannotStart.error,
    unreadable: unreadable.length > 0 ? unreadable.join(' ') : undefined,
    configuredHost,
    configuredIn,
    serverPid,
    problems,
  };
}

function restartChange(): RestartChange {
  return {
    type: 'restart',
    strategy: 'win32-service',
    steps: [
      ['sc', 'stop', SERVICE_NAME],
      ['sc', 'start', SERVICE_NAME],
    ],
    privileged: true,
  };
}

/** The command a user runs again from an elevated PowerShell: the same --host, quoted for PowerShell. */
export function elevatedSetupCommand(request: Pick<PlanRequest, 'target' | 'explicitHost'>): string {
  return request.explicitHost ? `${SETUP_COMMAND} --host ${quotePowerShell(formatBindAddress(request.target))}` : SETUP_COMMAND;
}

function plan(detection: WinServiceDetection, request: PlanRequest): Plan {
  const value = formatBindAddress(request.target);
  const base: Plan = { strategy: 'win32-service', target: request.target, changes: [], summary: '', blockers: [], warnings: [] };
  if (detection.reservedProblem && detection.port === request.target.port) {
    base.summary = `Port ${request.target.port} is reserved by Windows, so no setting can make Ollama listen there.`;
    base.blockers.push({ message: detection.reservedProblem.message, fix: detection.reservedProblem.fix });
    return base;
  }
  if (detection.unreadable) {
    base.summary = "The ollama service's environment can't be read or edited safely, so setup changes nothing.";
    base.blockers.push({ message: cleanField(detection.unreadable), fix: `Check the values with regedit (${SERVICE_KEY}), then run: ${elevatedSetupCommand(request)}` });
    return base;
  }
  const store: SettingStoreId = detection.nssm ? 'windows-nssm-env' : 'windows-service-env';
  const before = detection.nssm ? detection.nssmHost : detection.serviceHost;
  const configured = detection.configuredHost !== undefined && sameBindAddress(parseOllamaHost(detection.configuredHost), request.target);
  if (configured && listensAsRequested(request)) {
    base.summary = `The ollama service already gets OLLAMA_HOST=${cleanField(detection.configuredHost ?? '')} (${detection.configuredIn}).`;
    return base;
  }
  // Undo hands the old value back to PowerShell in an environment variable, which Windows caps at
  // 32,767 characters: a longer one could be saved but never restored, so refuse it up front.
  if (!configured && before !== undefined && before.length >= MAX_ENV_VALUE) {
    base.summary = 'The OLLAMA_HOST entry the ollama service has now is too long for undo to put back, so setup changes nothing.';
    base.blockers.push({ message: `The service's OLLAMA_HOST entry is ${before.length} characters long; Windows passes at most ${MAX_ENV_VALUE - 1} to a program, so undo could not restore it. Nothing was changed.`, fix: `Shorten or remove that entry with regedit (${detection.nssm ? PARAMETERS_KEY : SERVICE_KEY}), then run: ${elevatedSetupCommand(request)}` });
    return base;
  }
  const argv = (detection.nssm ? nssmEnvStore : serviceEnvStore).command('OLLAMA_HOST', value).argv;
  const changes: Plan['changes'] = configured ? [] : [{ type: 'setting', store, key: 'OLLAMA_HOST', before, after: value, privileged: true, argv }];
  changes.push(restartChange());
  // Elevation is per change, and only this one needs it; Windows has no sudo to ask for it.
  if (!detection.elevated) {
    base.summary = `Changing the ollama service needs an elevated PowerShell.`;
    base.blockers.push({
      message: 'The ollama service runs as a Windows service, and changing its environment or restarting it needs Administrator rights, which this PowerShell does not have.',
      fix: `Open PowerShell with "Run as administrator", then: ${elevatedSetupCommand(request)}`,
    });
    return base;
  }
  if (detection.cannotStart) {
    base.summary = 'The ollama service could not be started again after a restart, so setup does not stop it.';
    base.blockers.push({ message: `${cleanField(detection.cannotStart)}; nothing was changed.`, fix: `Make the service startable (Set-Service -Name ${quotePowerShell(SERVICE_NAME)} -StartupType Manual, or repair its program), then run: ${elevatedSetupCommand(request)}` });
    return base;
  }
  base.changes = changes;
  const where = detection.nssm ? "NSSM's AppEnvironmentExtra for the ollama service (NSSM applies it last)" : "the ollama service's environment";
  base.summary = configured
    ? `The ollama service is configured with OLLAMA_HOST=${cleanField(detection.configuredHost ?? '')}, but has not picked it up: restart it.`
    : `Set OLLAMA_HOST=${value} in ${where}, then restart the service.`;
  return base;
}

// ---------------------------------------------------------------------------
// The restart: sc stop, wait (by the service's state, not by the port), sc start, wait for RUNNING.

/** The `[SC] … FAILED <code>:` an sc command printed (its exit status is cut to 8 bits off Windows). */
function scError(stdout: string): number | undefined {
  return parseScQuery(stdout).errorCode;
}

function scMessage(result: { stdout: string; stderr: string }): string {
  const lines = result.stdout.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('[SC]'));
  return cleanField(lines[0] ?? lastLine(result.stderr)).slice(0, 200);
}

async function waitForState(ctx: Context, done: (status: ScQueryResult) => boolean, timeoutMs: number): Promise<ScQueryResult> {
  const checks = Math.ceil(timeoutMs / POLL_MS);
  let status = (await queryService(ctx)).status;
  for (let check = 0; check < checks && !done(status); check++) {
    await ctx.clock.sleep(POLL_MS);
    status = (await queryService(ctx)).status;
  }
  return status;
}

async function runSc(ctx: Context, verb: 'stop' | 'start'): Promise<{ code?: number; message: string }> {
  const argv = ['sc', verb, SERVICE_NAME];
  const result = await ctx.exec('sc', argv.slice(1), { timeoutMs: 15_000 });
  if (result.failure) throw new StepError(describeFailure(argv, result, 15_000));
  return { code: scError(result.stdout) ?? (result.exitCode === 0 ? undefined : (result.exitCode ?? undefined)), message: scMessage(result) };
}

/** Stop the service and wait until the SCM says STOPPED; a hung stop is ended by taskkill on the service's pid. */
async function stopService(ctx: Context, before: ScQueryResult): Promise<void> {
  const stop = await runSc(ctx, 'stop');
  if (stop.code !== undefined && stop.code !== SC.notStarted && stop.code !== SC.cannotAcceptControl) {
    throw new StepError(`\`sc stop ollama\` failed (error ${stop.code}: ${stop.message}); the service was not stopped and still runs on its old configuration.`);
  }
  let status = await waitForState(ctx, (s) => s.state === 'STOPPED', STOP_WAIT_MS);
  if (status.state === 'STOPPED') return;
  const pid = status.pid || before.pid;
  if (!pid) throw new StepError(`The ollama service did not stop within ${STOP_WAIT_MS / 1000} s (it is ${status.state ?? 'in an unknown state'}), and sc shows no process to end.`);
  // microsoft/WSL#4360: a service stuck in STOP_PENDING is ended by its pid, then the SCM marks it STOPPED.
  await ctx.exec('taskkill', ['/F', '/T', '/PID', String(pid)], { timeoutMs: 15_000 });
  status = await waitForState(ctx, (s) => s.state === 'STOPPED', KILL_WAIT_MS);
  if (status.state !== 'STOPPED') {
    throw new StepError(`The ollama service did not stop within ${STOP_WAIT_MS / 1000} s, nor after \`taskkill /F /T /PID ${pid}\`; it is ${status.state ?? 'in an unknown state'}.`);
  }
}

/** Start the service and wait until it is RUNNING; it stopping again means it failed to start. */
async function startService(ctx: Context): Promise<void> {
  const start = await runSc(ctx, 'start');
  if (start.code !== undefined && start.code !== SC.alreadyRunning) {
    throw new StepError(`\`sc start ollama\` failed (error ${start.code}: ${start.message}).`);
  }
  const status = await waitForState(ctx, (s) => s.state === 'RUNNING' || s.state === 'STOPPED', START_WAIT_MS);
  if (status.state === 'RUNNING') return;
  if (status.state === 'STOPPED') throw new StepError('The ollama service stopped again right after `sc start ollama`: it failed to start (see the Application event log).');
  throw new StepError(`The ollama service did not report RUNNING within ${START_WAIT_MS / 1000} s after \`sc start ollama\` (it is ${status.state ?? 'in an unknown state'}).`);
}

/**
 * Restart the service. Nothing is stopped unless it can be started again; a stop that hangs is
 * ended by pid; the service is then started and must reach RUNNING. Setup's rollback runs this
 * again after restoring the setting, so a failed start ends with the service started on the old one.
 */
async function restart(ctx: Context): Promise<void> {
  const { status: before } = await queryService(ctx);
  // Uninstalled since setup (sc: 1060): there is nothing to restart, and undo must not fail for it.
  if (scServiceMissing(before)) return;
  if (!before.exists) throw new StepError('`sc queryex ollama` did not say what state the ollama service is in, so it was not stopped.');
  // Already stopped (a rollback after a start that failed, say): nothing is stopped here, so there
  // is nothing to refuse, and starting it can only help. Asking first could fail (PowerShell, the
  // registry) and leave the service down.
  if (before.state === 'STOPPED') return startService(ctx);
  const cannotStart = await whyCannotStart(ctx);
  if (cannotStart) throw new StepError(`${cannotStart}; it was not stopped.`);
  await stopService(ctx, before);
  await startService(ctx);
}

export const winServiceStrategy: Strategy<WinServiceDetection> = {
  id: 'win32-service',
  detect,
  plan,
  persistent: true,
  commands: () => ({
    start: `Start-Service -Name ${quotePowerShell(SERVICE_NAME)}   # from an elevated PowerShell`,
    restart: `Restart-Service -Name ${quotePowerShell(SERVICE_NAME)}   # from an elevated PowerShell`,
    logs: 'Get-EventLog -LogName Application -Newest 50 | Where-Object Source -Match ollama',
    widen: SETUP_COMMAND,
    stop: `Stop-Service -Name ${quotePowerShell(SERVICE_NAME)}; Set-Service -Name ${quotePowerShell(SERVICE_NAME)} -StartupType Disabled   # elevated`,
  }),
  restartChange,
  restart: (ctx) => restart(ctx),
  settings: [
    { store: 'windows-service-env', key: 'OLLAMA_HOST' },
    { store: 'windows-nssm-env', key: 'OLLAMA_HOST' },
  ],
};
