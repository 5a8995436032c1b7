/**
 * The Ollama tray app, Windows' default install: per-user, %LOCALAPPDATA%\Programs\Ollama\ollama
 * app.exe, starting `ollama.exe serve` as its child with its own environment (app/server/server.go).
 *
 * The change is OLLAMA_HOST at User scope (what the FAQ says), then a restart of the app: stop
 * `ollama app.exe`, `ollama.exe` and `llama-server.exe` (the app restarts a killed server with its
 * old environment, so stopping only the server does nothing), wait until those processes are gone,
 * and start the app again, detached, with the environment Explorer would give it: a child of this
 * Node process would otherwise inherit our own, stale environment.
 *
 * The restart guarantee: nothing is stopped before we know how to start it again (the running app's
 * own executable, which must still exist), and once something was stopped the restart always ends
 * by starting the app, whatever failed on the way; its message then says what did.
 */
import path, { type PlatformPath } from 'node:path';
import { describeKind, type Context } from '../../scripts/context.ts';
import { bindScope, formatBindAddress, parseOllamaHost, sameBindAddress } from '../../scripts/ollama-host.ts';
import { quotePowerShell, UnquotableError } from '../../scripts/shell-quote.ts';
import { describeFailure, StepError } from '../../scripts/system-files.ts';
import { SETUP_COMMAND } from '../commands.ts';
import { describeExpose, exposeUnknownProblem, readExpose } from '../expose.ts';
import { listensAsRequested, type Change, type DetectOptions, type Detection, type Plan, type PlanRequest, type Problem, type RestartChange, type RestartContext, type Strategy } from '../types.ts';
import { excludedRangeFor, parseExcludedPortRanges, type ExcludedPortRange } from './parsers/netsh.ts';
import type { TasklistEntry } from './parsers/tasklist.ts';
import { explorerEnvironmentValue, readEnvironmentVariable, userEnvStore } from './powershell.ts';
import { processPaths, readTasklist, tasklist } from './processes.ts';

/** The processes the installer stops, in the same order (app/ollama.iss): the app, the server, the runner. */
export const OLLAMA_IMAGES = ['ollama app.exe', 'ollama.exe', 'llama-server.exe'];
const APP_IMAGE = 'ollama app.exe';
const QUIT_CHECKS = 60;
const QUIT_STEP_MS = 250;
/** taskkill's exit code when no process matched ("ERROR: The process … not found."). */
const TASKKILL_NOT_FOUND = 128;

export function localAppData(env: Readonly<Record<string, string | undefined>>, paths: PlatformPath): string {
  return env.LOCALAPPDATA ?? paths.join(env.USERPROFILE ?? 'C:\\Users\\Default', 'AppData', 'Local');
}

export function appPathFor(env: Readonly<Record<string, string | undefined>>, paths: PlatformPath): string {
  return paths.join(localAppData(env, paths), 'Programs', 'Ollama', 'ollama app.exe');
}

export interface WinAppDetection extends Detection {
  strategy: 'win32-app';
  /** %LOCALAPPDATA%, where the app is installed and keeps its settings. */
  localAppData: string;
  /** The app's executable: the running app's own, else the default install's. */
  appPath: string;
  installed: boolean;
  running: boolean;
  /** OLLAMA_HOST at User scope: what the app gets when it is started from the Start menu. */
  userHost?: string;
  /** At Machine scope; the User value overrides it for the user's programs. */
  machineHost?: string;
  /** Why OLLAMA_HOST could not be read (then nothing may be changed: "unset" would be a guess). */
  unreadable?: string;
  /** Why the app could not be started again after a stop (then it must not be stopped), and what to do. */
  relaunchRefused?: string;
  relaunchFix?: string;
  expose?: boolean;
  /** Why `expose` is undefined: it could not be read (never taken for "off"). */
  exposeUnknownBecause?: string;
  /** A range Windows reserved (Hyper-V, WinNAT) that holds the port, when one does. */
  reserved?: ExcludedPortRange;
  port: number;
}

/** `netsh interface ipv4 show excludedportrange protocol=tcp`: a port inside a reserved range can't be bound. */
export async function reservedRange(ctx: Context, port: number): Promise<ExcludedPortRange | undefined> {
  const netsh = await ctx.exec('netsh', ['interface', 'ipv4', 'show', 'excludedportrange', 'protocol=tcp'], { timeoutMs: 15_000 });
  return netsh.exitCode === 0 ? excludedRangeFor(parseExcludedPortRanges(netsh.stdout), port) : undefined;
}

export function reservedProblem(range: ExcludedPortRange, port: number): Problem {
  return {
    status: 'fail',
    message: `Port ${port} is inside ${range.start}-${range.end}, a range Windows reserved (netsh interface ipv4 show excludedportrange protocol=tcp).`,
    why: 'Ollama can\'t listen there: it fails with "An attempt was made to access a socket in a way forbidden by its access permissions" (ollama/ollama#8396).',
    fix: `From an elevated PowerShell: net stop winnat; net start winnat (it frees ranges reserved on the fly), or move Ollama to a free port: ${SETUP_COMMAND} --host 127.0.0.1:11500`,
  };
}

/** The app as started from the Start menu, whatever its folder: what RELAUNCH_FIX tells the user. */
const RELAUNCH_FIX = 'Quit Ollama from its tray icon, start it again from the Start menu, and run this again.';

/** Where to start the app from after a stop, or why it can't be (then nothing may be stopped). */
export interface Relaunch {
  /** The best known executable: the running app's own, else the default install's. */
  path: string;
  refused?: string;
  /** What the user does about a refusal. */
  fix?: string;
}

/** For an app that is not running, whose default install is not there: the Start menu knows where it is. */
const START_FIX = 'Start Ollama from the Start menu (that starts it from wherever it is installed), then run this again.';

/**
 * Know how to start the app again before stopping it: the executable the running app was started
 * from (tasklist has no paths; Win32_Process has), which must still be a file. Detection accepts an
 * app running from any folder, so the default install's path is only for an app that is not running.
 */
export async function findRelaunch(ctx: Context, defaultPath: string, running: readonly TasklistEntry[]): Promise<Relaunch> {
  const apps = running.filter((entry) => entry.imageName.toLowerCase() === APP_IMAGE);
  let path = defaultPath;
  if (apps.length > 0) {
    const pids = apps.map((app) => app.pid).join(', ');
    const found = await processPaths(ctx, APP_IMAGE);
    if ('error' in found) return { path, refused: `the Ollama app runs (pid ${pids}), but where it was started from can't be read (${found.error})` };
    const paths = new Set<string>();
    for (const app of apps) {
      const entry = found.processes.find((candidate) => candidate.pid === app.pid);
      if (entry?.rejectedPath) return { path, refused: `the Ollama app runs (pid ${app.pid}), but the path Windows gives for its executable holds a control character or is too long` };
      const known = entry?.path;
      if (known === undefined) return { path, refused: `the Ollama app runs (pid ${app.pid}), but Windows does not say which file it was started from (another user's app, or an elevated one, can't be read)` };
      paths.add(known);
    }
    if (paths.size > 1) return { path, refused: `Ollama apps run from ${paths.size} different files (${[...paths].join(', ')}), so which one to start again is not clear` };
    path = [...paths][0] as string;
  }
  const info = await ctx.fs.inspect(path);
  if (info?.kind !== 'file') {
    const what = apps.length > 0 ? 'the running app\'s executable' : 'the app';
    return { path, refused: `${what}, ${path}, ${info === undefined ? 'does not exist (moved or uninstalled)' : `is ${describeKind(info.kind)}, not a program`}, so the app could not be started again`, fix: apps.length > 0 ? RELAUNCH_FIX : START_FIX };
  }
  return { path };
}

async function detect(ctx: Context, options: DetectOptions): Promise<WinAppDetection | undefined> {
  const defaultPath = appPathFor(options.env, options.path);
  const processes = await tasklist(ctx);
  const running = processes.some((entry) => entry.imageName.toLowerCase() === APP_IMAGE);
  if (!running && (await ctx.fs.inspect(defaultPath))?.kind !== 'file') return undefined;
  const relaunch = await findRelaunch(ctx, defaultPath, processes);
  const appPath = relaunch.path;
  const installed = (await ctx.fs.inspect(appPath))?.kind === 'file';
  const [hosts, exposeReading, reserved] = await Promise.all([
    Promise.all([readEnvironmentVariable(ctx, 'OLLAMA_HOST', 'User'), readEnvironmentVariable(ctx, 'OLLAMA_HOST', 'Machine')]).then(
      ([user, machine]) => ({ user, machine, unreadable: undefined as string | undefined }),
      (error: Error) => ({ user: undefined, machine: undefined, unreadable: error.message }),
    ),
    readExpose(ctx, options.path.join(localAppData(options.env, options.path), 'Ollama', 'db.sqlite')),
    reservedRange(ctx, options.port),
  ]);
  const { user: userHost, machine: machineHost, unreadable } = hosts;
  const expose = exposeReading.value;
  // With the app running, the ollama.exe that owns the port is its server.
  const serverPid = running ? options.listeners?.find((listener) => listener.owner?.argv[0]?.toLowerCase() === 'ollama.exe')?.owner?.pid : undefined;
  const problems: Problem[] = [];
  if (reserved) problems.push(reservedProblem(reserved, options.port));
  if (expose === undefined) problems.push(exposeUnknownProblem(exposeReading));
  if (unreadable) problems.push({ status: 'fail', message: `OLLAMA_HOST could not be read: ${unreadable}.`, why: 'Without it, where the app listens is a guess, and setup would not know what undo must put back.', fix: 'Check that powershell.exe runs: powershell -NoProfile -Command "[Environment]::GetEnvironmentVariable(\'OLLAMA_HOST\',\'User\')"' });
  if (relaunch.refused && running) {
    problems.push({ status: 'warn', message: `A restart of the Ollama app is not possible: ${relaunch.refused}.`, why: 'stigmer-setup stops the app only when it can start it again.', fix: relaunch.fix ?? RELAUNCH_FIX });
  }
  if (userHost !== undefined && bindScope(parseOllamaHost(userHost).host) === 'wildcard') {
    problems.push({
      status: 'warn',
      message: `OLLAMA_HOST=${shown(userHost)} is set at User scope, so every program you start sees it, not only Ollama.`,
      why: 'Clients that read OLLAMA_HOST and are not written in Go connect to 0.0.0.0 and fail with WinError 10049 (ollama/ollama#703).',
      fix: `Give such a client OLLAMA_HOST=127.0.0.1:${parseOllamaHost(userHost).port} in its own environment; or, if the container probe passes without it, remove it: ${SETUP_COMMAND.replace(' --yes', '')} undo`,
    });
  }
  const configuredHost = expose ? '0.0.0.0' : userHost ?? machineHost;
  return {
    strategy: 'win32-app',
    description: `the Ollama app (${appPath})${running ? ', running' : ', not running'}`,
    localAppData: localAppData(options.env, options.path),
    appPath,
    installed,
    running,
    userHost,
    machineHost,
    unreadable,
    relaunchRefused: relaunch.refused,
    relaunchFix: relaunch.fix,
    expose,
    exposeUnknownBecause: exposeReading.unknownBecause,
    reserved,
    port: options.port,
    configuredHost,
    configuredIn: expose
      ? 'the app\'s "Expose Ollama to the network" setting'
      : userHost !== undefined
        ? 'the User environment variable OLLAMA_HOST'
        : machineHost !== undefined
          ? 'the system (Machine) environment variable OLLAMA_HOST'
          : undefined,
    serverPid,
    problems,
  };
}

/** A machine-supplied value in a message: escaped when it holds a newline or another control character. */
function shown(value: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\x00-\x1f\x7f-\x9f]/.test(value) ? JSON.stringify(value) : value;
}

function restartChange({ env, port }: RestartContext): RestartChange {
  return restartFrom(appPathFor(env ?? {}, path.win32), port);
}

/** The restart's steps; the last one is the app to start again (restart() puts in the running app's own). */
function restartFrom(appPath: string, port: number | undefined): RestartChange {
  return { type: 'restart', strategy: 'win32-app', steps: [...OLLAMA_IMAGES.map((image) => ['taskkill', '/F', '/T', '/IM', image]), [appPath, '--hide']], privileged: false, port };
}

const isOllamaImage = (entry: TasklistEntry) => OLLAMA_IMAGES.includes(entry.imageName.toLowerCase());

/** Wait until each of these processes (pid and image: Windows reuses pids) is gone; the ones still there at the end. */
async function waitForExit(ctx: Context, processes: readonly TasklistEntry[]): Promise<TasklistEntry[]> {
  let remaining = [...processes];
  for (let check = 0; check < QUIT_CHECKS && remaining.length > 0; check++) {
    if (check > 0) await ctx.clock.sleep(QUIT_STEP_MS);
    // A tasklist that failed says nothing: those processes may still be exiting, so keep waiting.
    const now = await readTasklist(ctx);
    if (now === undefined) continue;
    remaining = remaining.filter((old) => now.some((entry) => entry.pid === old.pid && entry.imageName.toLowerCase() === old.imageName.toLowerCase()));
  }
  return remaining;
}

/**
 * Stop the app, its server and runner; wait for those processes (by pid, not for the port: another
 * program may listen there too); start the app again with the environment Explorer would give it.
 * Refuses before stopping anything when the app could not be started again. Once it stopped
 * something it always ends by starting the app, and only then reports what went wrong.
 */
async function restart(ctx: Context, change: RestartChange): Promise<void> {
  const launch = change.steps.at(-1) as string[];
  const listed = await readTasklist(ctx);
  if (listed === undefined) throw new StepError(`Nothing was stopped: \`tasklist\` failed, so stigmer-setup can't tell whether the Ollama app runs or where from. ${RELAUNCH_FIX}`);
  const before = listed.filter(isOllamaImage);
  const relaunch = await findRelaunch(ctx, launch[0] as string, before);
  if (relaunch.refused) throw new StepError(`Nothing was stopped: ${relaunch.refused}. ${relaunch.fix ?? RELAUNCH_FIX}`);
  // The steps are also the report of what ran: the app started is the one that was running.
  change.steps[change.steps.length - 1] = [relaunch.path, ...launch.slice(1)];
  const problems: string[] = [];
  for (const step of change.steps.slice(0, -1)) {
    const result = await ctx.exec(step[0] as string, step.slice(1), { timeoutMs: 15_000 });
    if (result.exitCode !== 0 && result.exitCode !== TASKKILL_NOT_FOUND) problems.push(describeFailure(step, result, 15_000).replace(/\.$/, ''));
  }
  const lingering = await waitForExit(ctx, before);
  if (lingering.length > 0) {
    problems.push(`${lingering.map((entry) => `${entry.imageName} (pid ${entry.pid})`).join(', ')} still ran ${(QUIT_CHECKS * QUIT_STEP_MS) / 1000} s after taskkill`);
  }
  // The value the stores hold now (set by setup, or put back by undo), as Explorer would merge
  // them: the app would otherwise get our own environment, read before the change.
  let env: Record<string, string | undefined> = {};
  try {
    env = { OLLAMA_HOST: await explorerEnvironmentValue(ctx, 'OLLAMA_HOST') };
  } catch (error) {
    problems.push(`${(error as Error).message}, so the app got the environment stigmer-setup was started with`);
  }
  const started = await ctx.launch(relaunch.path, launch.slice(1), { env });
  if ('error' in started) {
    throw new StepError(`${[...problems, `\`${relaunch.path} ${launch.slice(1).join(' ')}\` could not start: ${started.error}`].join('; ')}. Start Ollama from the Start menu.`);
  }
  if (problems.length > 0) {
    throw new StepError(`${problems.join('; ')}. The app was started again from ${relaunch.path} (pid ${started.pid}), so Ollama runs, but it may not run with the new setting.`);
  }
}

function plan(detection: WinAppDetection, request: PlanRequest): Plan {
  const value = formatBindAddress(request.target);
  const base: Plan = { strategy: 'win32-app', target: request.target, changes: [], summary: '', blockers: [], warnings: [] };
  if (detection.reserved && detection.port === request.target.port) {
    const problem = reservedProblem(detection.reserved, request.target.port);
    base.summary = `Port ${request.target.port} is reserved by Windows, so no setting can make Ollama listen there.`;
    base.blockers.push({ message: problem.message, fix: problem.fix });
    return base;
  }
  if (detection.expose === undefined) base.warnings.push(`${describeExpose({ value: undefined, unknownBecause: detection.exposeUnknownBecause })}.`);
  if (detection.expose && !sameBindAddress(parseOllamaHost('0.0.0.0'), request.target)) {
    base.warnings.push(`The app's "Expose Ollama to the network" setting is on: it starts its server on 0.0.0.0:11434 whatever OLLAMA_HOST says, so ${value} will not take effect. Turn it off in Ollama → Settings.`);
  }
  if (detection.machineHost !== undefined) {
    base.warnings.push(`OLLAMA_HOST=${shown(detection.machineHost)} is also set for the whole machine; the User value setup writes overrides it for your programs.`);
  }
  if (detection.unreadable) {
    base.summary = 'OLLAMA_HOST could not be read, so nothing is changed.';
    base.blockers.push({ message: `OLLAMA_HOST could not be read: ${detection.unreadable}.`, fix: 'Check that powershell.exe runs, then run this again.' });
    return base;
  }
  const configured = detection.configuredHost !== undefined && sameBindAddress(parseOllamaHost(detection.configuredHost), request.target);
  if (detection.relaunchRefused && !(configured && listensAsRequested(request))) {
    base.summary = 'The Ollama app could not be started again after a restart, so it is not stopped and nothing is changed.';
    base.blockers.push({ message: `A restart of the Ollama app is not possible: ${detection.relaunchRefused}.`, fix: detection.relaunchFix ?? RELAUNCH_FIX });
    return base;
  }
  const restartIt = restartFrom(detection.appPath, request.target.port);
  if (configured) {
    if (listensAsRequested(request)) {
      base.summary = `The Ollama app already gets OLLAMA_HOST=${shown(detection.configuredHost as string)} (${detection.configuredIn}).`;
      return base;
    }
    base.changes = [restartIt];
    base.summary = `The Ollama app is configured with OLLAMA_HOST=${shown(detection.configuredHost as string)}, but the running server has not picked it up: restart the app.`;
    return base;
  }
  const changes: Change[] = [
    { type: 'setting', store: 'windows-user-env', key: 'OLLAMA_HOST', before: detection.userHost, after: value, privileged: false, argv: userEnvStore.command('OLLAMA_HOST', value).argv },
    restartIt,
  ];
  if (bindScope(request.target.host) === 'wildcard') {
    base.warnings.push(`A User-scope OLLAMA_HOST=${value} is seen by every program you start; clients not written in Go read it, connect to 0.0.0.0 and fail with WinError 10049. Give them OLLAMA_HOST=127.0.0.1:${request.target.port} in their own environment.`);
    // Docker Engine inside WSL (not Docker Desktop) connects from the WSL adapter, which Windows'
    // firewall treats as a public network (microsoft/WSL#4585).
    base.warnings.push(`If your containers run in a Docker Engine inside WSL, allow them through the firewall (elevated PowerShell): New-NetFirewallRule -DisplayName "Ollama for WSL containers" -Direction Inbound -Protocol TCP -LocalPort ${request.target.port} -InterfaceAlias "vEthernet (WSL)" -Action Allow`);
  }
  base.changes = changes;
  base.summary = `Set OLLAMA_HOST=${value} at User scope (PowerShell, not setx), then restart the Ollama app with it.`;
  return base;
}

/** Start-Process for the app, its path quoted for PowerShell; the Start menu when no quoting can make it one command. */
export function startCommand(appPath: string): string {
  try {
    return `Start-Process -FilePath ${quotePowerShell(appPath)}`;
  } catch (error) {
    if (error instanceof UnquotableError) return 'Start Ollama from the Start menu';
    throw error;
  }
}

export const winAppStrategy: Strategy<WinAppDetection> = {
  id: 'win32-app',
  detect,
  plan,
  persistent: true,
  commands: (detection) => ({
    start: startCommand(detection.appPath),
    restart: `taskkill /F /T /IM "ollama app.exe"; ${startCommand(detection.appPath)}`,
    logs: 'Get-Content -Tail 50 "$env:LOCALAPPDATA\\Ollama\\server.log"',
    widen: SETUP_COMMAND,
    stop: 'taskkill /F /T /IM "ollama app.exe"   # and turn Ollama off in Task Manager → Startup apps',
    // The app inherits the user's environment (Ollama's FAQ), read when it starts.
    proxy: `[Environment]::SetEnvironmentVariable('HTTPS_PROXY', 'http://PROXY:PORT', 'User'); taskkill /F /T /IM "ollama app.exe"; ${startCommand(detection.appPath)}`,
    modelsDir: '$env:USERPROFILE\\.ollama\\models',
  }),
  restartChange,
  restart,
  settings: [{ store: 'windows-user-env', key: 'OLLAMA_HOST' }],
};

