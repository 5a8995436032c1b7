/**
 * Ollama.app, the desktop app (also the `ollama-app` cask). It starts `ollama serve` itself, with
 * the environment launchd gives apps: `launchctl setenv OLLAMA_HOST` changes that now, and a login
 * LaunchAgent of ours repeats it at every login, because setenv alone is lost at reboot
 * (ollama/ollama#4091). The app must then be restarted: `pkill -x Ollama` (AppleScript's quit only
 * hides it), wait until the app and its server (by pid) are gone, and open the bundle it ran from.
 *
 * The restart guarantee: before anything is stopped, the bundle the running app was started from
 * is found in the process table and checked (it exists, and its Info.plist is Ollama's); if it
 * can't be, nothing is stopped. Once pkill has run, the app is always opened again, even when it
 * did not quit in time, and the error says which of the two happened.
 *
 * After a reboot launchd starts the app's own login item and our LaunchAgent in no set order, and
 * the setenv from before is gone. So the agent, after `launchctl setenv`, starts the app again if
 * it was already running (it would have started its server without OLLAMA_HOST); see AGENT_SCRIPT.
 *
 * The app's own "Expose Ollama to the network" setting forces OLLAMA_HOST=0.0.0.0 and overrides
 * ours; it is read (read-only) from the app's SQLite settings and reported.
 */
import type { Context, FileContent } from '../../scripts/context.ts';
import { bindScope, formatBindAddress, parseOllamaHost, sameBindAddress } from '../../scripts/ollama-host.ts';
import { quotePosix, UnquotableError } from '../../scripts/shell-quote.ts';
import { describeFailure, StepError } from '../../scripts/system-files.ts';
import { SETUP_COMMAND } from '../commands.ts';
import { describeExpose, exposeUnknownProblem, readExpose } from '../expose.ts';
import { listensAsRequested, type Blocker, type Change, type DetectOptions, type Detection, type Locations, type Plan, type PlanRequest, type Problem, type RestartChange, type RestartContext, type Strategy } from '../types.ts';
import { launchdEnvStore } from './launchd.ts';
import { PlistError, buildPlist, readPlistDict } from './plist-file.ts';
import { ollamaProcesses, readOllamaProcesses, type OllamaProcess } from './processes.ts';

export const AGENT_LABEL = 'com.stigmer.ollama-host';
/** The bundle ids Ollama.app has shipped with (ollama-facts.md §5: the legacy Electron one is still current). */
const BUNDLE_IDS = ['com.electron.ollama', 'com.ollama.ollama'];
const PKILL = ['pkill', '-x', 'Ollama'];
/** open(1) with a path opens that very bundle; `-a Ollama` lets LaunchServices pick a copy by name. */
const OPEN_BY_NAME = ['open', '-a', 'Ollama', '--args', 'hidden'];
/** The app stops its server (SIGINT, SIGKILL after 5 s) before it exits: wait that long, in steps, for both pids. */
const QUIT_CHECKS = 60;
const QUIT_STEP_MS = 250;
/** A bundle path longer than this is not one we will put into a command. */
const MAX_BUNDLE_CHARS = 1024;

/** The command that starts the app again: the bundle it ran from when known, else by name. */
export function openArgv(bundle: string | undefined): string[] {
  return bundle === undefined ? [...OPEN_BY_NAME] : ['open', bundle, '--args', 'hidden'];
}

/**
 * Why `bundle` can't be started again, or undefined when it can: it must be an absolute path to a
 * folder ending in .app, with no control characters, whose Contents/Info.plist names one of
 * Ollama's bundle ids and whose Contents/MacOS/<CFBundleExecutable> is there. The path comes from
 * ps, which anyone's process can make say anything, so nothing about it is taken on trust.
 */
export async function bundleProblem(ctx: Context, bundle: string): Promise<string | undefined> {
  if (bundle.length > MAX_BUNDLE_CHARS) return `its path is longer than ${MAX_BUNDLE_CHARS} characters`;
  if (/[\x00-\x1f\x7f-\x9f]/.test(bundle) || !bundle.startsWith('/') || !bundle.endsWith('.app') || bundle.split('/').includes('..')) return 'that is not a path to an app bundle';
  const folder = await ctx.fs.inspect(bundle).catch(() => undefined);
  if (folder === undefined) return 'it is not there any more';
  if (folder.kind !== 'directory' && folder.kind !== 'symlink') return 'it is not a folder';
  const infoPlist = `${bundle}/Contents/Info.plist`;
  const info = await ctx.fs.read(infoPlist, { follow: true }).catch(() => undefined);
  if (!info) return 'it has no readable Contents/Info.plist';
  let executable: unknown;
  try {
    const dict = readPlistDict(info.content, infoPlist);
    if (!BUNDLE_IDS.includes(String(dict.CFBundleIdentifier))) return 'its Info.plist is not Ollama.app\'s (another bundle id)';
    executable = dict.CFBundleExecutable ?? 'Ollama';
  } catch (error) {
    if (!(error instanceof PlistError)) throw error;
    return 'its Info.plist is not a valid property list';
  }
  if (typeof executable !== 'string' || executable === '' || executable.includes('/')) return 'its Info.plist names no executable';
  const program = await ctx.fs.inspect(`${bundle}/Contents/MacOS/${executable}`).catch(() => undefined);
  if (program === undefined || (program.kind !== 'file' && program.kind !== 'symlink')) return `its program Contents/MacOS/${executable} is missing`;
  return undefined;
}

/** What a restart of the app needs to know before it stops anything. */
interface Relaunch {
  /** The bundle to open again; undefined: open by name (nothing of the app runs, so nothing is stopped). */
  bundle?: string;
  /** The app's pids and its server's, to wait for after pkill. */
  waitFor: OllamaProcess[];
  /** Why the app must not be stopped. */
  refusal?: string;
}

function shownPath(path: string): string {
  return JSON.stringify(path.length > 200 ? `${path.slice(0, 200)}…` : path);
}

/**
 * From one `ps aux`: which bundle the running app came from, checked. Several bundles, or one that
 * can't be started again, mean refusing before anything is stopped.
 */
async function planRelaunch(ctx: Context, processes: OllamaProcess[], hint: string | undefined): Promise<Relaunch> {
  const apps = processes.filter((process) => process.kind === 'app');
  if (apps.length === 0) {
    // Nothing to stop. Start the bundle setup saw (when it still checks out), else by name.
    const bundle = hint !== undefined && (await bundleProblem(ctx, hint)) === undefined ? hint : undefined;
    return { bundle, waitFor: [] };
  }
  const bundles = [...new Set(apps.map((app) => app.bundle ?? ''))];
  if (bundles.length > 1) {
    return { waitFor: [], refusal: `Ollama.app runs from ${bundles.length} places (${bundles.slice(0, 3).map(shownPath).join(', ')}), so stigmer-setup can't tell which one to start again. Nothing was stopped. Quit the extra copies and run it again.` };
  }
  const bundle = bundles[0] as string;
  const problem = bundle === '' ? 'ps does not show which bundle it runs from' : await bundleProblem(ctx, bundle);
  if (problem !== undefined) {
    return {
      waitFor: [],
      refusal: `Ollama.app (pid ${apps.map((app) => app.pid).join(', ')}) runs from ${shownPath(bundle)}, but ${problem}, so it could not be started again after a restart. Nothing was stopped. Quit Ollama.app, start it from where it is installed now, and run stigmer-setup again.`,
    };
  }
  const servers = processes.filter((process) => process.kind === 'app-server' && process.bundle === bundle);
  return { bundle, waitFor: [...apps, ...servers] };
}

/** The processes of `waiting` that still run, by pid and command (a reused pid is another process). */
function stillRunning(waiting: OllamaProcess[], now: OllamaProcess[]): OllamaProcess[] {
  return waiting.filter((process) => now.some((current) => current.pid === process.pid && current.command === process.command));
}

export interface AppDetection extends Detection {
  strategy: 'darwin-app';
  /** The bundle the running app came from, else the one installed in /Applications or ~/Applications. */
  bundle?: string;
  running: boolean;
  /** Why a restart would have to refuse (the running app's bundle can't be started again). */
  relaunchProblem?: string;
  /** `launchctl getenv OLLAMA_HOST`: what the app gets at its next start. */
  launchdHost?: string;
  agentPath: string;
  agent?: FileContent;
  /** The OLLAMA_HOST our LaunchAgent sets at login, if it exists and is ours. */
  agentHost?: string;
  /** The app's "Expose Ollama to the network" setting; undefined when it could not be read. */
  expose?: boolean;
  /** Why `expose` is undefined: it could not be read (never taken for "off"). */
  exposeUnknownBecause?: string;
}

export function agentPath(locations: Pick<Locations, 'home'>, path: DetectOptions['path']): string {
  return path.join(locations.home, 'Library', 'LaunchAgents', `${AGENT_LABEL}.plist`);
}

/**
 * What our LaunchAgent runs at login, with /bin/sh -c: $0 is the label, $1 the OLLAMA_HOST value
 * (an argument, never part of the script, so no value needs quoting). launchd starts the app's own
 * login item and this agent in no set order, and `launchctl setenv` from before the reboot is gone:
 *   - agent first: it sets the variable, finds no app, and the app starts later with it;
 *   - app first: the app started its server without OLLAMA_HOST. The agent sets the variable, then
 *     quits the app (SIGTERM, as `pkill -x Ollama`), waits until ps no longer shows that pid with
 *     that command (at most 30 s), and opens the bundle it ran from again, which now starts its
 *     server with the value.
 * When launchd already holds the value (a second login without a reboot), it does nothing.
 * Every tool it uses is in launchd's default PATH (/usr/bin:/bin:/usr/sbin:/sbin), added after
 * whatever PATH the job has.
 */
export const AGENT_SCRIPT = [
  '# Written by stigmer-setup; `npx stigmer-setup undo` removes it.',
  'PATH="$PATH:/usr/bin:/bin:/usr/sbin:/sbin"',
  'value=$1',
  '[ "$(launchctl getenv OLLAMA_HOST)" = "$value" ] && exit 0',
  'launchctl setenv OLLAMA_HOST "$value" || exit 1',
  '# Ollama.app already running started its server without the value: start it again.',
  'for pid in $(pgrep -x Ollama); do',
  '  command=$(ps -p "$pid" -o command=) || continue',
  '  bundle=${command%%/Contents/MacOS/Ollama*}',
  '  [ "$bundle" != "$command" ] && [ -d "$bundle" ] || continue',
  '  kill "$pid" || continue',
  '  waited=0',
  '  while [ "$(ps -p "$pid" -o command= 2>/dev/null)" = "$command" ] && [ "$waited" -lt 30 ]; do sleep 1; waited=$((waited + 1)); done',
  '  open "$bundle" --args hidden',
  '  exit $?',
  'done',
  'exit 0',
  '',
].join('\n');

/** The login LaunchAgent: at every login, set OLLAMA_HOST for apps and start a too-early app again. */
export function renderAgent(value: string): Buffer {
  return buildPlist({ Label: AGENT_LABEL, ProgramArguments: ['/bin/sh', '-c', AGENT_SCRIPT, AGENT_LABEL, value], RunAtLoad: true });
}

/** The value our agent sets: the current form, or the plain `launchctl setenv` one earlier versions wrote. */
function agentValue(agent: FileContent | undefined, file: string): string | undefined {
  if (!agent) return undefined;
  try {
    const dict = readPlistDict(agent.content, file);
    const args = dict.ProgramArguments;
    if (dict.Label !== AGENT_LABEL || !Array.isArray(args)) return undefined;
    if (args.length === 5 && args[0] === '/bin/sh' && args[1] === '-c' && args[2] === AGENT_SCRIPT && typeof args[4] === 'string') return args[4];
    if (args.length === 4 && args[1] === 'setenv' && args[2] === 'OLLAMA_HOST' && typeof args[3] === 'string') return args[3];
  } catch (error) {
    if (!(error instanceof PlistError)) throw error;
  }
  return undefined;
}

async function findBundle(ctx: Context, options: DetectOptions): Promise<string | undefined> {
  for (const bundle of [options.path.join(options.root, 'Applications', 'Ollama.app'), options.path.join(options.home, 'Applications', 'Ollama.app')]) {
    const infoPlist = options.path.join(bundle, 'Contents', 'Info.plist');
    // Inside an app bundle: reading through a symlink is harmless, and a FIFO is still refused.
    const info = await ctx.fs.read(infoPlist, { follow: true }).catch(() => undefined);
    if (!info) continue;
    try {
      if (BUNDLE_IDS.includes(String(readPlistDict(info.content, infoPlist).CFBundleIdentifier))) return bundle;
    } catch (error) {
      if (!(error instanceof PlistError)) throw error;
    }
  }
  return undefined;
}

async function detect(ctx: Context, options: DetectOptions): Promise<AppDetection | undefined> {
  const [installed, processes] = await Promise.all([findBundle(ctx, options), ollamaProcesses(ctx)]);
  const apps = processes.filter((process) => process.kind === 'app');
  const running = apps.length > 0;
  if (!installed && !running) return undefined;
  const relaunch = running ? await planRelaunch(ctx, processes, undefined) : undefined;
  // The copy that runs is the one a restart starts again, wherever it is installed.
  const bundle = relaunch?.bundle ?? installed;
  const servers = processes.filter((process) => process.kind === 'app-server').map((process) => process.pid);
  const serverListener = options.listeners?.find((listener) => listener.owner && servers.includes(listener.owner.pid));
  const owner = serverListener?.owner?.pid;
  const launchdHost = await launchdEnvStore.read(ctx, 'OLLAMA_HOST');
  const file = agentPath(options, options.path);
  const agent = await ctx.fs.read(file);
  const agentHost = agentValue(agent, file);
  const exposeReading = await readExpose(ctx, options.path.join(options.home, 'Library', 'Application Support', 'Ollama', 'db.sqlite'));
  const expose = exposeReading.value;
  const problems: Problem[] = [];
  if (expose === undefined) problems.push(exposeUnknownProblem(exposeReading));
  if (launchdHost !== undefined && agentHost !== launchdHost) {
    problems.push({
      status: 'warn',
      kind: 'persistence',
      message: `launchctl setenv OLLAMA_HOST=${launchdHost} is set for this session only: no login agent sets it again, so it is lost at the next reboot.`,
      why: 'After a reboot the app starts Ollama on 127.0.0.1 again.',
      fix: `npx stigmer-setup --yes --host ${quotePosix(formatBindAddress(parseOllamaHost(launchdHost)))}`,
    });
  }
  // The app started before the value was there (it came up at login before our agent ran, say):
  // its server listens elsewhere than launchd and our agent say it should.
  const expected = expose ? undefined : (launchdHost ?? agentHost);
  if (running && serverListener && expected !== undefined) {
    const wanted = parseOllamaHost(expected);
    if (wanted.port === serverListener.port && bindScope(wanted.host) !== serverListener.scope) {
      const value = formatBindAddress(wanted);
      const where = launchdHost !== undefined ? `launchctl getenv OLLAMA_HOST says ${value}` : `the login agent ${AGENT_LABEL} sets OLLAMA_HOST=${value}`;
      problems.push({
        status: 'warn',
        message: `Ollama.app runs without the OLLAMA_HOST it was configured with: its server (pid ${serverListener.owner?.pid}) listens on ${serverListener.family === 6 ? `[${serverListener.address}]` : serverListener.address}:${serverListener.port}, but ${where}. It started before the value was set.`,
        why: 'The app reads OLLAMA_HOST only when it starts, so containers reach Ollama only after it starts again.',
        fix: `npx stigmer-setup --yes --host ${quotePosix(value)}`,
      });
    }
  }
  return {
    strategy: 'darwin-app',
    description: `Ollama.app${bundle ? ` (${bundle})` : ''}${running ? ', running' : ', not running'}`,
    bundle,
    running,
    relaunchProblem: relaunch?.refusal,
    launchdHost,
    agentPath: file,
    agent,
    agentHost,
    expose,
    exposeUnknownBecause: exposeReading.unknownBecause,
    // The Expose setting overrides whatever the environment says (app/server/server.go).
    configuredHost: expose ? '0.0.0.0' : launchdHost,
    configuredIn: expose ? 'the app\'s "Expose Ollama to the network" setting' : launchdHost === undefined ? undefined : 'launchctl getenv OLLAMA_HOST',
    serverPid: owner ?? servers[0],
    problems,
  };
}

function restartChange({ port }: RestartContext, bundle?: string): RestartChange {
  return { type: 'restart', strategy: 'darwin-app', steps: [PKILL, openArgv(bundle)], privileged: false, port };
}

/** The bundle a planned restart names in its open step, if it names one. */
function plannedBundle(change: RestartChange): string | undefined {
  const open = change.steps.find((step) => step[0] === 'open');
  return open && open[1] !== '-a' ? open[1] : undefined;
}

/**
 * Quit the app (SIGTERM: it stops its server too), wait for those pids to exit, open it again.
 * Refuses before pkill when it can't know how to start the app again. After pkill it always opens
 * the app again, whatever happened, and says what did.
 */
/** What a restart would do now, from a fresh `ps aux`; a ps that fails is a refusal, not "nothing runs". */
async function relaunchNow(ctx: Context, change: RestartChange): Promise<Relaunch> {
  const processes = await readOllamaProcesses(ctx);
  if (processes === undefined) return { waitFor: [], refusal: '`ps aux` failed, so stigmer-setup can\'t tell whether Ollama.app runs or where from. Nothing was stopped.' };
  return planRelaunch(ctx, processes, plannedBundle(change));
}

async function restart(ctx: Context, change: RestartChange): Promise<void> {
  const relaunch = await relaunchNow(ctx, change);
  if (relaunch.refusal) throw new StepError(relaunch.refusal);
  const open = openArgv(relaunch.bundle);
  // The report lists the commands a restart ran: these are the ones (the bundle is where it runs now).
  change.steps = [PKILL, open];
  const quit = await ctx.exec(PKILL[0] as string, PKILL.slice(1), { timeoutMs: 10_000 });
  // pkill exits 1 when nothing matched: the app was not running, which is fine.
  const quitFailure = quit.exitCode !== 0 && quit.exitCode !== 1 ? describeFailure(PKILL, quit, 10_000) : undefined;
  let running = relaunch.waitFor;
  for (let check = 0; running.length > 0 && check < QUIT_CHECKS; check++) {
    await ctx.clock.sleep(QUIT_STEP_MS);
    // A ps that failed says nothing: those processes may still be quitting, so keep waiting for them
    // (opening the app while the old one exits would only wake the dying one).
    const now = await readOllamaProcesses(ctx);
    if (now !== undefined) running = stillRunning(running, now);
  }
  // Always try to start it again: the app must be running when we return, on one configuration or the other.
  const started = await ctx.exec(open[0] as string, open.slice(1), { timeoutMs: 30_000 });
  const openFailure = started.exitCode !== 0 ? describeFailure(open, started, 30_000) : undefined;
  const openCommand = `\`${open.map((word) => quoteForMessage(word)).join(' ')}\``;
  if (running.length > 0) {
    const pids = running.map((process) => process.pid).join(', ');
    const waited = (QUIT_CHECKS * QUIT_STEP_MS) / 1000;
    throw new StepError(
      `Ollama (pid ${pids}) was still running ${waited} s after \`pkill -x Ollama\`${quitFailure ? ` (${quitFailure})` : ''}, so it did not restart and keeps the settings it started with; ${openFailure ? `starting it again also failed: ${openFailure}` : `${openCommand} ran, so it keeps running`}. Quit Ollama from its menu-bar icon and run stigmer-setup again.`,
    );
  }
  if (openFailure) throw new StepError(`Ollama.app quit, but could not be started again: ${openFailure} Start it yourself: ${openCommand}.`);
  if (quitFailure) throw new StepError(`${quitFailure} Ollama.app was not restarted; ${openCommand} ran, so it is running.`);
}

/** A word of a command shown in a message: quoted for sh, or JSON-escaped when no quoting can show it. */
function quoteForMessage(word: string): string {
  try {
    return quotePosix(word);
  } catch (error) {
    if (error instanceof UnquotableError) return JSON.stringify(word);
    throw error;
  }
}

function plan(detection: AppDetection, request: PlanRequest): Plan {
  const value = formatBindAddress(request.target);
  const base: Plan = { strategy: 'darwin-app', target: request.target, changes: [], summary: '', blockers: [], warnings: [] };
  if (detection.expose === undefined) base.warnings.push(`${describeExpose({ value: undefined, unknownBecause: detection.exposeUnknownBecause })}.`);
  if (detection.expose) {
    if (sameBindAddress(parseOllamaHost('0.0.0.0'), request.target)) {
      base.summary = `Ollama.app's "Expose Ollama to the network" setting already makes it listen on 0.0.0.0:11434.`;
      if (!listensAsRequested(request)) {
        base.changes = [restartChange({ elevate: [], port: request.target.port }, detection.bundle)];
        base.summary += ' Restart the app so it does.';
        base.blockers.push(...relaunchBlockers(detection));
      }
      return base;
    }
    base.warnings.push(`Ollama.app's "Expose Ollama to the network" setting is on: the app starts its server on 0.0.0.0:11434 whatever OLLAMA_HOST says, so ${value} will not take effect. Turn it off in Ollama → Settings.`);
  }
  const changes: Change[] = [];
  if (detection.launchdHost !== value) {
    changes.push({ type: 'setting', store: 'launchd-env', key: 'OLLAMA_HOST', before: detection.launchdHost, after: value, privileged: false, argv: launchdEnvStore.command('OLLAMA_HOST', value).argv });
  }
  const agent = renderAgent(value);
  if (!detection.agent?.content.equals(agent)) {
    changes.push({
      type: 'file',
      path: detection.agentPath,
      action: detection.agent ? 'modify' : 'create',
      before: detection.agent?.content,
      after: agent,
      mode: detection.agent?.mode ?? 0o644,
      privileged: false,
    });
  }
  const configured = detection.launchdHost !== undefined && sameBindAddress(parseOllamaHost(detection.launchdHost), request.target);
  if (changes.length === 0 && configured && listensAsRequested(request)) {
    base.summary = `Ollama.app already gets OLLAMA_HOST=${detection.launchdHost} from launchd, and a login agent sets it at every login.`;
    return base;
  }
  changes.push(restartChange({ elevate: [], port: request.target.port }, detection.bundle));
  base.changes = changes;
  base.blockers.push(...relaunchBlockers(detection));
  base.summary = `Set OLLAMA_HOST=${value} for apps (launchctl setenv), add a login agent that sets it at every login, and restart Ollama.app.`;
  return base;
}

/** A restart that could not start the app again is refused before anything changes. */
function relaunchBlockers(detection: AppDetection): Blocker[] {
  if (detection.relaunchProblem === undefined) return [];
  return [{ message: detection.relaunchProblem, fix: 'Quit Ollama.app from its menu-bar icon, open it again from where it is installed, then run npx stigmer-setup again.' }];
}

/** The commands a person runs for the app, with the bundle path quoted for sh. */
function appCommands(detection: AppDetection): AppCommands {
  let open: string;
  try {
    open = detection.bundle === undefined ? 'open -a Ollama' : `open ${quotePosix(detection.bundle)}`;
  } catch (error) {
    if (!(error instanceof UnquotableError)) throw error;
    // A path no quoting can paste safely: LaunchServices finds the app by name instead.
    open = 'open -a Ollama';
  }
  return {
    start: open,
    restart: `pkill -x Ollama; sleep 5; ${open} --args hidden`,
    logs: 'tail -n 50 ~/.ollama/logs/server.log',
    widen: SETUP_COMMAND,
    stop: 'pkill -x Ollama   # and turn Ollama off in System Settings → General → Login Items',
    // As Ollama's FAQ sets OLLAMA_HOST for the app: launchd's environment, then restart the app.
    proxy: `launchctl setenv HTTPS_PROXY http://PROXY:PORT; pkill -x Ollama; sleep 5; ${open} --args hidden`,
    modelsDir: '~/.ollama/models',
  };
}
type AppCommands = ReturnType<NonNullable<Strategy<AppDetection>['commands']>>;

export const appStrategy: Strategy<AppDetection> = {
  id: 'darwin-app',
  detect,
  plan,
  persistent: true,
  commands: (detection) => appCommands(detection),
  restartChange: (context) => restartChange(context),
  async checkRestart(ctx, change) {
    return (await relaunchNow(ctx, change)).refusal;
  },
  restart,
  writablePaths: (locations, path) => [agentPath(locations, path)],
  settings: [{ store: 'launchd-env', key: 'OLLAMA_HOST' }],
};
