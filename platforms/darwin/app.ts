/**
 * Ollama.app, the desktop app (also the `ollama-app` cask). It starts `ollama serve` itself, with
 * the environment launchd gives apps: `launchctl setenv OLLAMA_HOST` changes that now, and a login
 * LaunchAgent of ours repeats it at every login, because setenv alone is lost at reboot
 * (ollama/ollama#4091). The app must then be restarted: `pkill -x Ollama` (AppleScript's quit only
 * hides it), wait until it and the port are gone, `open -a Ollama --args hidden`.
 *
 * The app's own "Expose Ollama to the network" setting forces OLLAMA_HOST=0.0.0.0 and overrides
 * ours; it is read (read-only) from the app's SQLite settings and reported.
 */
import type { Context, FileContent } from '../../scripts/context.ts';
import { formatBindAddress, parseOllamaHost, sameBindAddress } from '../../scripts/ollama-host.ts';
import { describeFailure, StepError } from '../../scripts/system-files.ts';
import { SETUP_COMMAND } from '../commands.ts';
import { readExposeSetting } from '../expose.ts';
import { listensAsRequested, type Change, type DetectOptions, type Detection, type Locations, type Plan, type PlanRequest, type Problem, type RestartChange, type RestartContext, type Strategy } from '../types.ts';
import { launchdEnvStore } from './launchd.ts';
import { readListeners } from './listeners.ts';
import { PlistError, buildPlist, readPlistDict } from './plist-file.ts';
import { ollamaProcesses } from './processes.ts';

export const AGENT_LABEL = 'com.stigmer.ollama-host';
/** The bundle ids Ollama.app has shipped with (ollama-facts.md §5: the legacy Electron one is still current). */
const BUNDLE_IDS = ['com.electron.ollama', 'com.ollama.ollama'];
const PKILL = ['pkill', '-x', 'Ollama'];
const OPEN = ['open', '-a', 'Ollama', '--args', 'hidden'];
/** The app gives its server a moment to stop: wait that long, in steps, for the app and the port to be gone. */
const QUIT_CHECKS = 60;
const QUIT_STEP_MS = 250;

export interface AppDetection extends Detection {
  strategy: 'darwin-app';
  bundle?: string;
  running: boolean;
  /** `launchctl getenv OLLAMA_HOST`: what the app gets at its next start. */
  launchdHost?: string;
  agentPath: string;
  agent?: FileContent;
  /** The OLLAMA_HOST our LaunchAgent sets at login, if it exists and is ours. */
  agentHost?: string;
  /** The app's "Expose Ollama to the network" setting; undefined when it could not be read. */
  expose?: boolean;
}

export function agentPath(locations: Pick<Locations, 'home'>, path: DetectOptions['path']): string {
  return path.join(locations.home, 'Library', 'LaunchAgents', `${AGENT_LABEL}.plist`);
}

/** The login LaunchAgent: at every login, `launchctl setenv OLLAMA_HOST <value>` again. */
export function renderAgent(value: string): Buffer {
  return buildPlist({ Label: AGENT_LABEL, ProgramArguments: ['/bin/launchctl', 'setenv', 'OLLAMA_HOST', value], RunAtLoad: true });
}

function agentValue(agent: FileContent | undefined, file: string): string | undefined {
  if (!agent) return undefined;
  try {
    const dict = readPlistDict(agent.content, file);
    const args = dict.ProgramArguments;
    if (dict.Label === AGENT_LABEL && Array.isArray(args) && args[1] === 'setenv' && args[2] === 'OLLAMA_HOST' && typeof args[3] === 'string') return args[3];
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
  const [bundle, processes] = await Promise.all([findBundle(ctx, options), ollamaProcesses(ctx)]);
  const running = processes.some((process) => process.kind === 'app');
  if (!bundle && !running) return undefined;
  const servers = processes.filter((process) => process.kind === 'app-server').map((process) => process.pid);
  const owner = options.listeners?.find((listener) => listener.owner && servers.includes(listener.owner.pid))?.owner?.pid;
  const launchdHost = await launchdEnvStore.read(ctx, 'OLLAMA_HOST');
  const file = agentPath(options, options.path);
  const agent = await ctx.fs.read(file);
  const agentHost = agentValue(agent, file);
  const expose = await readExposeSetting(ctx, options.path.join(options.home, 'Library', 'Application Support', 'Ollama', 'db.sqlite'));
  const problems: Problem[] = [];
  if (launchdHost !== undefined && agentHost !== launchdHost) {
    problems.push({
      status: 'warn',
      kind: 'persistence',
      message: `launchctl setenv OLLAMA_HOST=${launchdHost} is set for this session only: no login agent sets it again, so it is lost at the next reboot.`,
      why: 'After a reboot the app starts Ollama on 127.0.0.1 again.',
      fix: `npx stigmer-setup --yes --host ${formatBindAddress(parseOllamaHost(launchdHost))}`,
    });
  }
  return {
    strategy: 'darwin-app',
    description: `Ollama.app${bundle ? ` (${bundle})` : ''}${running ? ', running' : ', not running'}`,
    bundle,
    running,
    launchdHost,
    agentPath: file,
    agent,
    agentHost,
    expose,
    // The Expose setting overrides whatever the environment says (app/server/server.go).
    configuredHost: expose ? '0.0.0.0' : launchdHost,
    configuredIn: expose ? 'the app\'s "Expose Ollama to the network" setting' : launchdHost === undefined ? undefined : 'launchctl getenv OLLAMA_HOST',
    serverPid: owner ?? servers[0],
    problems,
  };
}

function restartChange({ port }: RestartContext): RestartChange {
  return { type: 'restart', strategy: 'darwin-app', steps: [PKILL, OPEN], privileged: false, port };
}

/** Quit the app (SIGTERM: it stops its server too), wait until it and the port are gone, open it again. */
async function restart(ctx: Context, change: RestartChange): Promise<void> {
  const quit = await ctx.exec(PKILL[0] as string, PKILL.slice(1), { timeoutMs: 10_000 });
  // pkill exits 1 when nothing matched: the app was not running, which is fine.
  if (quit.exitCode !== 0 && quit.exitCode !== 1) throw new StepError(describeFailure(PKILL, quit, 10_000));
  for (let check = 0; check < QUIT_CHECKS; check++) {
    const appGone = !(await ollamaProcesses(ctx)).some((process) => process.kind === 'app');
    const portFree = change.port === undefined || ((await readListeners(ctx, change.port)) ?? []).length === 0;
    if (appGone && portFree) break;
    if (check === QUIT_CHECKS - 1) throw new StepError(`Ollama.app did not quit within ${(QUIT_CHECKS * QUIT_STEP_MS) / 1000} s after \`pkill -x Ollama\`; quit it from its menu-bar icon and run setup again.`);
    await ctx.clock.sleep(QUIT_STEP_MS);
  }
  const open = await ctx.exec(OPEN[0] as string, OPEN.slice(1), { timeoutMs: 30_000 });
  if (open.exitCode !== 0) throw new StepError(describeFailure(OPEN, open, 30_000));
}

function plan(detection: AppDetection, request: PlanRequest): Plan {
  const value = formatBindAddress(request.target);
  const base: Plan = { strategy: 'darwin-app', target: request.target, changes: [], summary: '', blockers: [], warnings: [] };
  if (detection.expose) {
    if (sameBindAddress(parseOllamaHost('0.0.0.0'), request.target)) {
      base.summary = `Ollama.app's "Expose Ollama to the network" setting already makes it listen on 0.0.0.0:11434.`;
      if (!listensAsRequested(request)) {
        base.changes = [restartChange({ elevate: [], port: request.target.port })];
        base.summary += ' Restart the app so it does.';
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
  changes.push(restartChange({ elevate: [], port: request.target.port }));
  base.changes = changes;
  base.summary = `Set OLLAMA_HOST=${value} for apps (launchctl setenv), add a login agent that sets it at every login, and restart Ollama.app.`;
  return base;
}

export const appStrategy: Strategy<AppDetection> = {
  id: 'darwin-app',
  detect,
  plan,
  persistent: true,
  commands: () => ({
    start: 'open -a Ollama',
    restart: 'pkill -x Ollama; open -a Ollama --args hidden',
    logs: 'tail -n 50 ~/.ollama/logs/server.log',
    widen: SETUP_COMMAND,
    stop: 'pkill -x Ollama   # and turn Ollama off in System Settings → General → Login Items',
  }),
  restartChange,
  restart,
  writablePaths: (locations, path) => [agentPath(locations, path)],
  settings: [{ store: 'launchd-env', key: 'OLLAMA_HOST' }],
};
