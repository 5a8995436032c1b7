/**
 * The Ollama tray app, Windows' default install: per-user, %LOCALAPPDATA%\Programs\Ollama\ollama
 * app.exe, starting `ollama.exe serve` as its child with its own environment (app/server/server.go).
 *
 * The change is OLLAMA_HOST at User scope (what the FAQ says), then a restart of the app: stop
 * `ollama app.exe`, `ollama.exe` and `llama-server.exe` (the app restarts a killed server with its
 * old environment, so stopping only the server does nothing), wait until the port is free, and
 * start the app again, detached, with the User-scope value in its environment: a child of this Node
 * process would otherwise inherit our own, stale environment.
 */
import path, { type PlatformPath } from 'node:path';
import type { Context } from '../../scripts/context.ts';
import { bindScope, formatBindAddress, parseOllamaHost, sameBindAddress } from '../../scripts/ollama-host.ts';
import { describeFailure, StepError } from '../../scripts/system-files.ts';
import { SETUP_COMMAND } from '../commands.ts';
import { readExposeSetting } from '../expose.ts';
import { listensAsRequested, type Change, type DetectOptions, type Detection, type Plan, type PlanRequest, type Problem, type RestartChange, type RestartContext, type Strategy } from '../types.ts';
import { readListeners } from './listeners.ts';
import { excludedRangeFor, parseExcludedPortRanges, type ExcludedPortRange } from './parsers/netsh.ts';
import { readEnvironmentVariable, userEnvStore } from './powershell.ts';
import { tasklist } from './processes.ts';

/** The processes the installer stops, in the same order (app/ollama.iss): the app, the server, the runner. */
export const OLLAMA_IMAGES = ['ollama app.exe', 'ollama.exe', 'llama-server.exe'];
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
  appPath: string;
  installed: boolean;
  running: boolean;
  /** OLLAMA_HOST at User scope: what the app gets when it is started from the Start menu. */
  userHost?: string;
  /** At Machine scope; the User value overrides it for the user's programs. */
  machineHost?: string;
  expose?: boolean;
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

async function detect(ctx: Context, options: DetectOptions): Promise<WinAppDetection | undefined> {
  const appPath = appPathFor(options.env, options.path);
  const installed = (await ctx.fs.inspect(appPath))?.kind === 'file';
  const processes = await tasklist(ctx);
  const running = processes.some((entry) => entry.imageName.toLowerCase() === 'ollama app.exe');
  if (!installed && !running) return undefined;
  const [userHost, machineHost, expose, reserved] = await Promise.all([
    readEnvironmentVariable(ctx, 'OLLAMA_HOST', 'User'),
    readEnvironmentVariable(ctx, 'OLLAMA_HOST', 'Machine'),
    readExposeSetting(ctx, options.path.join(localAppData(options.env, options.path), 'Ollama', 'db.sqlite')),
    reservedRange(ctx, options.port),
  ]);
  // With the app running, the ollama.exe that owns the port is its server.
  const serverPid = running ? options.listeners?.find((listener) => listener.owner?.argv[0]?.toLowerCase() === 'ollama.exe')?.owner?.pid : undefined;
  const problems: Problem[] = [];
  if (reserved) problems.push(reservedProblem(reserved, options.port));
  if (userHost !== undefined && bindScope(parseOllamaHost(userHost).host) === 'wildcard') {
    problems.push({
      status: 'warn',
      message: `OLLAMA_HOST=${userHost} is set at User scope, so every program you start sees it, not only Ollama.`,
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
    expose,
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

function restartChange({ env, port }: RestartContext): RestartChange {
  const appPath = appPathFor(env ?? {}, path.win32);
  return { type: 'restart', strategy: 'win32-app', steps: [...OLLAMA_IMAGES.map((image) => ['taskkill', '/F', '/T', '/IM', image]), [appPath, '--hide']], privileged: false, port };
}

/** Stop the app, its server and runner; wait until they and the port are gone; start the app with the User-scope value. */
async function restart(ctx: Context, change: RestartChange): Promise<void> {
  const launch = change.steps.at(-1) as string[];
  for (const step of change.steps.slice(0, -1)) {
    const result = await ctx.exec(step[0] as string, step.slice(1), { timeoutMs: 15_000 });
    if (result.exitCode !== 0 && result.exitCode !== TASKKILL_NOT_FOUND) throw new StepError(describeFailure(step, result, 15_000));
  }
  for (let check = 0; check < QUIT_CHECKS; check++) {
    const gone = !(await tasklist(ctx)).some((entry) => OLLAMA_IMAGES.includes(entry.imageName.toLowerCase()));
    const portFree = change.port === undefined || ((await readListeners(ctx, change.port)) ?? []).length === 0;
    if (gone && portFree) break;
    if (check === QUIT_CHECKS - 1) throw new StepError(`Ollama did not stop within ${(QUIT_CHECKS * QUIT_STEP_MS) / 1000} s after taskkill; quit it from its tray icon and run setup again.`);
    await ctx.clock.sleep(QUIT_STEP_MS);
  }
  // The value the User scope holds now (set by setup, or put back by undo), passed explicitly: we
  // would otherwise hand the app our own environment, read before the change.
  const value = await readEnvironmentVariable(ctx, 'OLLAMA_HOST', 'User');
  const started = await ctx.launch(launch[0] as string, launch.slice(1), { env: { OLLAMA_HOST: value } });
  if ('error' in started) throw new StepError(`\`${launch.join(' ')}\` could not start: ${started.error}`);
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
  if (detection.expose && !sameBindAddress(parseOllamaHost('0.0.0.0'), request.target)) {
    base.warnings.push(`The app's "Expose Ollama to the network" setting is on: it starts its server on 0.0.0.0:11434 whatever OLLAMA_HOST says, so ${value} will not take effect. Turn it off in Ollama → Settings.`);
  }
  if (detection.machineHost !== undefined) {
    base.warnings.push(`OLLAMA_HOST=${detection.machineHost} is also set for the whole machine; the User value setup writes overrides it for your programs.`);
  }
  const configured = detection.configuredHost !== undefined && sameBindAddress(parseOllamaHost(detection.configuredHost), request.target);
  const restartIt = restartChange({ elevate: [], env: { LOCALAPPDATA: detection.localAppData }, port: request.target.port });
  if (configured) {
    if (listensAsRequested(request)) {
      base.summary = `The Ollama app already gets OLLAMA_HOST=${detection.configuredHost} (${detection.configuredIn}).`;
      return base;
    }
    base.changes = [restartIt];
    base.summary = `The Ollama app is configured with OLLAMA_HOST=${detection.configuredHost}, but the running server has not picked it up: restart the app.`;
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

export const winAppStrategy: Strategy<WinAppDetection> = {
  id: 'win32-app',
  detect,
  plan,
  persistent: true,
  commands: (detection) => ({
    start: `Start-Process '${detection.appPath}'`,
    restart: `taskkill /F /T /IM "ollama app.exe"; Start-Process '${detection.appPath}'`,
    logs: 'Get-Content -Tail 50 "$env:LOCALAPPDATA\\Ollama\\server.log"',
    widen: SETUP_COMMAND,
    stop: 'taskkill /F /T /IM "ollama app.exe"   # and turn Ollama off in Task Manager → Startup apps',
  }),
  restartChange,
  restart,
  settings: [{ store: 'windows-user-env', key: 'OLLAMA_HOST' }],
};

