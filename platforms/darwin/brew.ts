/**
 * Ollama as a Homebrew service (`brew services start ollama`): a LaunchAgent that Homebrew
 * generates from the formula, ~/Library/LaunchAgents/homebrew.mxcl.ollama.plist (newer Homebrew
 * may call it sh.brew.ollama; `brew services info --json` says which).
 *
 * Homebrew 6.0.15 and later merge ~/.homebrew/services/ollama.env into the job on every start and
 * restart, and keep it across upgrades: that is the change that lasts, and the plist is left alone.
 * Older Homebrew has no such file, so the plist itself is edited (the seed's fix) and reloaded with
 * launchctl; the next `brew services restart` or `brew upgrade` regenerates it and drops the
 * setting, and the user is told so.
 */
import type { Context, FileContent } from '../../scripts/context.ts';
import { formatBindAddress, parseOllamaHost, sameBindAddress } from '../../scripts/ollama-host.ts';
import { SETUP_COMMAND } from '../commands.ts';
import { listensAsRequested, type Change, type DetectOptions, type Detection, type Locations, type Plan, type PlanRequest, type Problem, type RestartChange, type RestartContext, type Strategy } from '../types.ts';
import { guiDomain, reloadJob, reloadSteps } from './launchd.ts';
import { parseBrewServicesInfo, parseBrewVersion, supportsServiceEnvFile, type BrewVersion } from './parsers/brew.ts';
import { parseLaunchctlPrint } from './parsers/launchctl-print.ts';
import { environmentVariables, PlistError, readPlistDict, withEnvironmentVariable, type PlistDict } from './plist-file.ts';

/** The labels Homebrew gives the ollama service: the classic one, and the newer sh.brew one (Homebrew/brew#23741). */
export const BREW_LABELS = ['homebrew.mxcl.ollama', 'sh.brew.ollama'] as const;
const RESTART_BREW = ['brew', 'services', 'restart', 'ollama'];

export interface BrewDetection extends Detection {
  strategy: 'darwin-brew';
  /** undefined: `brew --version` gave none we can trust (a shallow install). */
  version?: BrewVersion;
  envFileSupported: boolean;
  plistPath: string;
  plist?: FileContent;
  /** The parsed plist, or why it can't be edited. */
  plistDict?: PlistDict;
  plistError?: PlistError;
  envFilePath: string;
  envFile?: FileContent;
  /** OLLAMA_HOST in the env file, if it sets it. */
  envFileHost?: string;
  /** The environment launchd gave the loaded job (`launchctl print`), when it is loaded. */
  jobEnvironment?: Map<string, string>;
  uid?: number;
}

/**
 * Where Homebrew looks for the service's env file: $HOMEBREW_USER_CONFIG_HOME/services/, which
 * bin/brew itself sets to $XDG_CONFIG_HOME/homebrew when XDG_CONFIG_HOME is set, else ~/.homebrew,
 * overwriting any value the user exported (so that value is never what brew uses).
 */
export function brewEnvFilePath(locations: Pick<Locations, 'env' | 'home'>, path: DetectOptions['path']): string {
  const { env, home } = locations;
  const config = env.XDG_CONFIG_HOME ? path.join(env.XDG_CONFIG_HOME, 'homebrew') : path.join(home, '.homebrew');
  return path.join(config, 'services', 'ollama.env');
}

const ENV_LINE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/;

/** The value an env file gives `key` (KEY=value lines, # comments; the last one wins). */
export function envFileValue(text: string, key: string): string | undefined {
  let value: string | undefined;
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line)) continue;
    const match = ENV_LINE.exec(line.replace(/\r$/, ''));
    if (match?.[1] === key) value = (match[2] ?? '').trim().replace(/^(["'])(.*)\1$/, '$2');
  }
  return value;
}

/**
 * The env file with `key=value`: the first line that sets the key is replaced, later ones (which
 * would override it) are dropped, every other line is kept byte for byte, and the line is appended
 * when no line set it.
 */
export function withEnvFileValue(content: Buffer | undefined, key: string, value: string): Buffer {
  const text = content?.toString('utf8') ?? '';
  const lines = text === '' ? [] : text.split('\n');
  const trailingNewline = text === '' || text.endsWith('\n');
  if (trailingNewline && lines.at(-1) === '') lines.pop();
  const out: string[] = [];
  let written = false;
  for (const line of lines) {
    const match = /^\s*#/.test(line) ? null : ENV_LINE.exec(line.replace(/\r$/, ''));
    if (match?.[1] !== key) {
      out.push(line);
      continue;
    }
    if (!written) out.push(`${key}=${value}${line.endsWith('\r') ? '\r' : ''}`);
    written = true;
  }
  if (!written) out.push(`${key}=${value}`);
  return Buffer.from(`${out.join('\n')}\n`);
}

function brewProblems(detection: BrewDetection): Problem[] {
  const problems: Problem[] = [];
  if (detection.plistError) {
    problems.push({
      status: 'warn',
      message: detection.plistError.message,
      why: 'stigmer-setup can only read and change a LaunchAgent that is an XML property list.',
      fix: detection.plistError.reason === 'binary' ? `plutil -convert xml1 ${detection.plistPath}` : `plutil -lint ${detection.plistPath}`,
    });
  }
  const plistHost = detection.plistDict ? environmentVariables(detection.plistDict).OLLAMA_HOST : undefined;
  if (plistHost !== undefined && detection.envFileHost === undefined) {
    problems.push({
      status: 'warn',
      kind: 'persistence',
      message: `OLLAMA_HOST=${plistHost} is set in ${detection.plistPath}, which Homebrew generates: the next \`brew services restart ollama\` or \`brew upgrade\` rewrites it and drops the setting.`,
      why: 'Ollama then comes back on 127.0.0.1, where containers may not reach it.',
      fix: detection.envFileSupported
        ? SETUP_COMMAND
        : `brew upgrade (Homebrew 6.0.15 and later keep it in ${detection.envFilePath}), then: ${SETUP_COMMAND}`,
    });
  }
  if (detection.envFile && (detection.envFile.mode & 0o022) !== 0) {
    problems.push({
      status: 'warn',
      message: `${detection.envFilePath} can be written by other users (mode ${detection.envFile.mode.toString(8)}), so Homebrew ignores it.`,
      why: 'Whatever it sets, OLLAMA_HOST included, does not reach the service.',
      fix: `chmod 600 ${detection.envFilePath}`,
    });
  }
  return problems;
}

async function detect(ctx: Context, options: DetectOptions): Promise<BrewDetection | undefined> {
  const info = await ctx.exec('brew', ['services', 'info', 'ollama', '--json'], { timeoutMs: 30_000 });
  if (info.failure || info.exitCode !== 0) return undefined;
  const service = parseBrewServicesInfo(info.stdout, 'ollama');
  if (!service) return undefined;
  const version = parseBrewVersion((await ctx.exec('brew', ['--version'], { timeoutMs: 15_000 })).stdout);
  // brew's JSON is only believed for a label we know: it names the one file we may edit.
  const label = BREW_LABELS.find((known) => known === service.serviceName) ?? BREW_LABELS[0];
  const { path } = options;
  const plistPath = path.join(options.home, 'Library', 'LaunchAgents', `${label}.plist`);
  const plist = await ctx.fs.read(plistPath);
  let plistDict: PlistDict | undefined;
  let plistError: PlistError | undefined;
  if (plist) {
    try {
      plistDict = readPlistDict(plist.content, plistPath);
    } catch (error) {
      if (!(error instanceof PlistError)) throw error;
      plistError = error;
    }
  }
  const envFilePath = brewEnvFilePath(options, path);
  const envFile = await ctx.fs.read(envFilePath);
  const envFileHost = envFile ? envFileValue(envFile.content.toString('utf8'), 'OLLAMA_HOST') : undefined;
  const print = service.loaded ? await ctx.exec('launchctl', ['print', `${guiDomain(ctx.uid)}/${label}`], { timeoutMs: 10_000 }) : undefined;
  const jobEnvironment = print?.exitCode === 0 ? parseLaunchctlPrint(print.stdout).environment : undefined;
  const envFileSupported = supportsServiceEnvFile(version);
  const plistHost = plistDict ? environmentVariables(plistDict).OLLAMA_HOST : undefined;
  // What the next start gives the server: the env file where Homebrew reads one, else the plist.
  const fromEnvFile = envFileSupported && envFileHost !== undefined && envFile !== undefined && (envFile.mode & 0o022) === 0;
  const configuredHost = fromEnvFile ? envFileHost : plistHost;
  const detection: BrewDetection = {
    strategy: 'darwin-brew',
    description: `Homebrew service ollama (${label}${version ? `, Homebrew ${version.major}.${version.minor}.${version.patch}` : ''})`,
    version,
    envFileSupported,
    plistPath,
    plist,
    plistDict,
    plistError,
    envFilePath,
    envFile,
    envFileHost,
    jobEnvironment,
    uid: ctx.uid,
    configuredHost,
    configuredIn: configuredHost === undefined ? undefined : fromEnvFile ? envFilePath : plistPath,
    serverPid: service.pid,
  };
  detection.problems = brewProblems(detection);
  return detection;
}

function restartChange({ uid, job }: RestartContext): RestartChange {
  // A restart by file (older Homebrew): launchd reloads exactly that plist, which `brew services
  // restart` would regenerate instead. Otherwise brew restarts it and merges the env file.
  if (job) return { type: 'restart', strategy: 'darwin-brew', steps: reloadSteps(uid, job), privileged: false, job };
  return { type: 'restart', strategy: 'darwin-brew', steps: [RESTART_BREW], privileged: false };
}

function plan(detection: BrewDetection, request: PlanRequest): Plan {
  const value = formatBindAddress(request.target);
  const base: Plan = { strategy: 'darwin-brew', target: request.target, changes: [], summary: '', blockers: [], warnings: [] };
  const alreadySet = detection.configuredHost !== undefined && sameBindAddress(parseOllamaHost(detection.configuredHost), request.target);
  const changes: Change[] = [];

  if (detection.envFileSupported) {
    const writable = detection.envFile === undefined || (detection.envFile.mode & 0o022) === 0;
    if (alreadySet && writable) {
      if (listensAsRequested(request)) {
        base.summary = `The Homebrew service already gets OLLAMA_HOST=${detection.configuredHost} from ${detection.configuredIn}.`;
        return base;
      }
      base.changes = [restartChange({ elevate: [] })];
      base.summary = `${detection.envFilePath} sets OLLAMA_HOST=${detection.configuredHost}, but the running service has not picked it up: restart it.`;
      return base;
    }
    if (!writable) base.warnings.push(`${detection.envFilePath} was writable by other users, so Homebrew ignored it; it is written 0600 now.`);
    changes.push({
      type: 'file',
      path: detection.envFilePath,
      action: detection.envFile ? 'modify' : 'create',
      before: detection.envFile?.content,
      after: withEnvFileValue(detection.envFile?.content, 'OLLAMA_HOST', value),
      // Homebrew skips an env file that group or others can write: 0600, or the file's own mode when it is safe.
      mode: detection.envFile && writable ? detection.envFile.mode : 0o600,
      privileged: false,
    });
    changes.push(restartChange({ elevate: [] }));
    base.changes = changes;
    base.summary = `Set OLLAMA_HOST=${value} in ${detection.envFilePath}, which Homebrew merges into the service on every start and keeps across upgrades, then restart the service.`;
    return base;
  }

  // Older Homebrew: the plist is the only place, as in the seed's fix.
  if (!detection.plist) {
    base.summary = `The Homebrew service has no LaunchAgent yet (${detection.plistPath}).`;
    base.blockers.push({ message: `${detection.plistPath} does not exist: the ollama service was never started with brew services.`, fix: 'brew services start ollama, then run: npx stigmer-setup' });
    return base;
  }
  if (detection.plistError || !detection.plistDict) {
    const error = detection.plistError as PlistError;
    base.summary = `${detection.plistPath} can't be edited safely.`;
    base.blockers.push({ message: error.message, fix: error.reason === 'binary' ? `plutil -convert xml1 ${detection.plistPath}` : `plutil -lint ${detection.plistPath}` });
    return base;
  }
  const loadedHost = detection.jobEnvironment?.get('OLLAMA_HOST');
  const loadedMatches = loadedHost !== undefined && sameBindAddress(parseOllamaHost(loadedHost), request.target);
  const drops = `\`brew services restart ollama\` and \`brew upgrade\` rewrite ${detection.plistPath} and drop OLLAMA_HOST; Homebrew 6.0.15 and later keep it in ${detection.envFilePath} instead (brew upgrade, then run stigmer-setup again).`;
  if (alreadySet) {
    base.warnings.push(drops);
    if (listensAsRequested(request) && loadedMatches) {
      base.summary = `${detection.plistPath} already sets OLLAMA_HOST=${detection.configuredHost}.`;
      return base;
    }
    base.changes = [restartChange({ elevate: [], uid: detection.uid, job: detection.plistPath })];
    base.summary = `${detection.plistPath} sets OLLAMA_HOST=${detection.configuredHost}, but launchd has not loaded it: reload the job.`;
    return base;
  }
  const plist = detection.plist;
  changes.push({
    type: 'file',
    path: detection.plistPath,
    action: 'modify',
    before: plist.content,
    after: withEnvironmentVariable(plist.content, detection.plistPath, 'OLLAMA_HOST', value),
    mode: plist.mode,
    privileged: false,
  });
  changes.push(restartChange({ elevate: [], uid: detection.uid, job: detection.plistPath }));
  base.changes = changes;
  base.warnings.push(drops);
  base.summary = `Add OLLAMA_HOST=${value} to ${detection.plistPath} (EnvironmentVariables), then reload it with launchctl bootout and bootstrap.`;
  return base;
}

export const brewStrategy: Strategy<BrewDetection> = {
  id: 'darwin-brew',
  detect,
  plan,
  persistent: true,
  commands: () => ({
    start: 'brew services start ollama',
    restart: 'brew services restart ollama',
    logs: 'tail -n 50 "$(brew --prefix)/var/log/ollama.log"',
    widen: SETUP_COMMAND,
    stop: 'brew services stop ollama',
    upgrade: 'brew upgrade ollama && brew services restart ollama',
  }),
  restartChange,
  async restart(ctx, change, run) {
    if (change.job) return reloadJob(ctx, ctx.uid, change.job);
    for (const step of change.steps) await run(step);
  },
  writablePaths: (locations, path) => [
    ...BREW_LABELS.map((label) => path.join(locations.home, 'Library', 'LaunchAgents', `${label}.plist`)),
    brewEnvFilePath(locations, path),
  ],
};

