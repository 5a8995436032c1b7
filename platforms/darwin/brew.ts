/**
 * Ollama as a Homebrew service (`brew services start ollama`): a LaunchAgent that Homebrew
 * generates from the formula, ~/Library/LaunchAgents/homebrew.mxcl.ollama.plist (newer Homebrew
 * may call it sh.brew.ollama; `brew services info --json` says which).
 *
 * Homebrew 6.0.15 and later merge ~/.homebrew/services/ollama.env into the job on every
 * `brew services start` and `restart`: that is the change that lasts, and the plist is left alone.
 * The env file is read the way brew reads it (parsers/brew-env.ts) and edited as bytes.
 * Older Homebrew has no such file, so the plist itself is edited (the seed's fix) and reloaded with
 * launchctl; the next `brew services start` or `restart` regenerates it from the formula and drops
 * the setting, and the user is told so. `brew upgrade` does not touch that plist (it writes only
 * the keg's copy); Homebrew itself (6.0.15 and later) arrives with `brew update`.
 */
import { posix } from 'node:path';
import { UnsafePathError, type Context, type FileContent } from '../../scripts/context.ts';
import { formatBindAddress, parseOllamaHost, sameBindAddress } from '../../scripts/ollama-host.ts';
import { quotePosix, UnquotableError } from '../../scripts/shell-quote.ts';
import { StepError } from '../../scripts/system-files.ts';
import { oneLine } from '../../scripts/text.ts';
import { SETUP_COMMAND } from '../commands.ts';
import { listensAsRequested, type Change, type DetectOptions, type Detection, type Locations, type Plan, type PlanRequest, type Problem, type RestartChange, type RestartContext, type StepRunner, type Strategy } from '../types.ts';
import { guiDomain, reloadJob, reloadSteps } from './launchd.ts';
import { parseBrewServicesInfo, parseBrewVersion, supportsServiceEnvFile, type BrewServiceInfo, type BrewVersion } from './parsers/brew.ts';
import { lineText, misappliedEntries, parseBrewEnvFile, withBrewEnvValue, type BrewEnvFile } from './parsers/brew-env.ts';
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
  /** The env file as brew reads it. */
  envFileParsed?: BrewEnvFile;
  /** OLLAMA_HOST as brew passes it from the env file (quotes and all), if a line sets it. */
  envFileHost?: string;
  /** `brew services info` failed, and the env file is why: brew can't read it (not UTF-8). */
  infoFailed?: boolean;
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

/** `<command> <path>` for a fix, with the path quoted for sh (or a note when no quoting can carry it). */
function fixFor(command: string, file: string): string {
  try {
    return `${command} ${quotePosix(file)}`;
  } catch (error) {
    if (!(error instanceof UnquotableError)) throw error;
    return `${command} on ${JSON.stringify(file)} (its name holds a control character: rename it first)`;
  }
}

/** The env file's line `number` can't be read by brew: what it does, for a finding and a blocker. */
function notUtf8Message(detection: Pick<BrewDetection, 'envFilePath'>, line: number): string {
  return `Homebrew can't read ${detection.envFilePath}: line ${line} is not UTF-8, and brew stops with "invalid byte sequence in UTF-8" (\`brew services info\`, \`start\` and \`restart\` all fail, and a restart leaves Ollama stopped).`;
}

function brewProblems(detection: BrewDetection): Problem[] {
  const problems: Problem[] = [];
  if (detection.plistError) {
    problems.push({
      status: 'warn',
      message: detection.plistError.message,
      why: 'stigmer-setup can only read and change a LaunchAgent that is an XML property list.',
      fix: detection.plistError.reason === 'binary' ? fixFor('plutil -convert xml1', detection.plistPath) : fixFor('plutil -lint', detection.plistPath),
    });
  }
  const parsed = detection.envFileParsed;
  if (parsed?.notUtf8Line !== undefined && detection.envFileSupported) {
    problems.push({
      status: 'fail',
      message: notUtf8Message(detection, parsed.notUtf8Line),
      why: 'Whatever the file sets, OLLAMA_HOST included, does not reach the service, and brew can\'t start it again until the file is fixed.',
      fix: `Save ${detection.envFilePath} as UTF-8 (fix line ${parsed.notUtf8Line}), then: ${SETUP_COMMAND}`,
    });
  }
  const envBytes = detection.envFile?.content;
  for (const line of parsed && envBytes && detection.envFileSupported ? misappliedEntries(parsed, 'OLLAMA_HOST') : []) {
    problems.push({
      status: 'warn',
      message: `${detection.envFilePath} line ${line.number} (${JSON.stringify(lineText(envBytes as Buffer, line))}) sets a variable named ${JSON.stringify(line.key)}, not OLLAMA_HOST: Homebrew takes each line as KEY=value, with no \`export\` and nothing else around the name.`,
      why: 'Ollama never sees that value.',
      fix: SETUP_COMMAND,
    });
  }
  const plistHost = detection.plistDict ? environmentVariables(detection.plistDict).OLLAMA_HOST : undefined;
  if (plistHost !== undefined && detection.envFileHost === undefined) {
    problems.push({
      status: 'warn',
      kind: 'persistence',
      message: `OLLAMA_HOST=${plistHost} is set in ${detection.plistPath}, which Homebrew generates: the next \`brew services start ollama\` or \`brew services restart ollama\` rewrites it from the formula and drops the setting.`,
      why: 'Ollama then comes back on 127.0.0.1, where containers may not reach it.',
      fix: detection.envFileSupported
        ? SETUP_COMMAND
        : `brew update (Homebrew 6.0.15 and later keep it in ${detection.envFilePath}), then: ${SETUP_COMMAND}`,
    });
  }
  if (detection.envFile && (detection.envFile.mode & 0o022) !== 0) {
    problems.push({
      status: 'warn',
      message: `${detection.envFilePath} can be written by other users (mode ${detection.envFile.mode.toString(8)}), so Homebrew ignores it.`,
      why: 'Whatever it sets, OLLAMA_HOST included, does not reach the service.',
      fix: fixFor('chmod 600', detection.envFilePath),
    });
  }
  return problems;
}

/**
 * Whether brew has the formula installed. `brew services info ollama` answers for a formula brew
 * merely knows (it loads it with Formulary.factory, installed or not: status "none", `file` in the
 * would-be opt prefix), so an entry that is not loaded, not running and not registered is checked
 * with `brew list --versions ollama`, which exits 1 when there is no keg (cmd/list.rb).
 */
async function formulaInstalled(ctx: Context, service: BrewServiceInfo | undefined): Promise<boolean> {
  if (service && (service.loaded === true || service.running === true || service.registered === true || service.pid !== undefined)) return true;
  const list = await ctx.exec('brew', ['list', '--versions', 'ollama'], { timeoutMs: 30_000 });
  return list.exitCode === 0 && /^ollama \S/m.test(list.stdout);
}

async function detect(ctx: Context, options: DetectOptions): Promise<BrewDetection | undefined> {
  const { path } = options;
  const envFilePath = brewEnvFilePath(options, path);
  const info = await ctx.exec('brew', ['services', 'info', 'ollama', '--json'], { timeoutMs: 30_000 });
  let service = info.failure || info.exitCode !== 0 ? undefined : parseBrewServicesInfo(info.stdout, 'ollama');
  let envFile: FileContent | undefined;
  let infoFailed = false;
  if (!service) {
    // brew fails outright on an env file it can't read; that is still a Homebrew installation.
    if (info.failure || info.exitCode === 0) return undefined;
    try {
      envFile = await ctx.fs.read(envFilePath);
    } catch (error) {
      // brew failed for some other reason; an env file we won't read says nothing about it.
      if (error instanceof UnsafePathError) return undefined;
      throw error;
    }
    if (!envFile || parseBrewEnvFile(envFile.content).notUtf8Line === undefined) return undefined;
    if (!(await formulaInstalled(ctx, undefined))) return undefined;
    infoFailed = true;
    // brew can't say whether its job runs; launchd can (either label brew uses).
    service = { name: 'ollama' };
    for (const label of BREW_LABELS) {
      const print = await ctx.exec('launchctl', ['print', `${guiDomain(ctx.uid)}/${label}`], { timeoutMs: 10_000 });
      if (print.exitCode !== 0) continue;
      const job = parseLaunchctlPrint(print.stdout);
      service = { name: 'ollama', serviceName: label, loaded: true, running: job.pid !== undefined, pid: job.pid };
      break;
    }
  } else {
    if (!(await formulaInstalled(ctx, service))) return undefined;
    envFile = await ctx.fs.read(envFilePath);
  }
  const version = parseBrewVersion((await ctx.exec('brew', ['--version'], { timeoutMs: 15_000 })).stdout);
  // brew's JSON is only believed for a label we know: it names the one file we may edit.
  const label = BREW_LABELS.find((known) => known === service.serviceName) ?? BREW_LABELS[0];
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
  const envFileSupported = supportsServiceEnvFile(version) || infoFailed;
  const envFileParsed = envFile ? parseBrewEnvFile(envFile.content) : undefined;
  const envFileHost = envFileParsed?.variables.get('OLLAMA_HOST');
  const print = service.loaded ? await ctx.exec('launchctl', ['print', `${guiDomain(ctx.uid)}/${label}`], { timeoutMs: 10_000 }) : undefined;
  const jobEnvironment = print?.exitCode === 0 ? parseLaunchctlPrint(print.stdout).environment : undefined;
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
    envFileParsed,
    envFileHost,
    infoFailed,
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
    const parsed = detection.envFileParsed;
    if (parsed?.notUtf8Line !== undefined) {
      // Restarting would stop Ollama and brew could not start it again: change nothing.
      base.summary = `${detection.envFilePath} can't be read by Homebrew.`;
      base.blockers.push({ message: notUtf8Message(detection, parsed.notUtf8Line), fix: `Save ${detection.envFilePath} as UTF-8 (fix line ${parsed.notUtf8Line}), then: ${SETUP_COMMAND}` });
      return base;
    }
    const writable = detection.envFile === undefined || (detection.envFile.mode & 0o022) === 0;
    const misapplied = parsed ? misappliedEntries(parsed, 'OLLAMA_HOST') : [];
    const after = withBrewEnvValue(detection.envFile?.content, 'OLLAMA_HOST', value);
    if (alreadySet && writable && misapplied.length === 0) {
      if (listensAsRequested(request)) {
        base.summary = `The Homebrew service already gets OLLAMA_HOST=${detection.configuredHost} from ${detection.configuredIn}.`;
        return base;
      }
      base.changes = [restartChange({ elevate: [] })];
      base.summary = `${detection.envFilePath} sets OLLAMA_HOST=${detection.configuredHost}, but the running service has not picked it up: restart it.`;
      return base;
    }
    if (!writable) base.warnings.push(`${detection.envFilePath} was writable by other users, so Homebrew ignored it; it is written 0600 now.`);
    for (const line of misapplied) {
      base.warnings.push(`${detection.envFilePath} line ${line.number} set a variable named ${JSON.stringify(line.key)}, which Ollama never sees; it is replaced by OLLAMA_HOST=${value}.`);
    }
    changes.push({
      type: 'file',
      path: detection.envFilePath,
      action: detection.envFile ? 'modify' : 'create',
      before: detection.envFile?.content,
      after,
      // Homebrew skips an env file that group or others can write: 0600, or the file's own mode when it is safe.
      mode: detection.envFile && writable ? detection.envFile.mode : 0o600,
      privileged: false,
    });
    // Only a value the service does not run with yet needs a restart (a junk `export …` line alone does not).
    if (!(alreadySet && writable && listensAsRequested(request))) changes.push(restartChange({ elevate: [] }));
    base.changes = changes;
    base.summary = `Set OLLAMA_HOST=${value} in ${detection.envFilePath}, which Homebrew merges into the service on every \`brew services start\` and \`restart\`${changes.length > 1 ? ', then restart the service' : ''}.`;
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
    base.blockers.push({ message: error.message, fix: error.reason === 'binary' ? fixFor('plutil -convert xml1', detection.plistPath) : fixFor('plutil -lint', detection.plistPath) });
    return base;
  }
  const loadedHost = detection.jobEnvironment?.get('OLLAMA_HOST');
  const loadedMatches = loadedHost !== undefined && sameBindAddress(parseOllamaHost(loadedHost), request.target);
  const drops = `\`brew services start ollama\` and \`brew services restart ollama\` rewrite ${detection.plistPath} from the formula and drop OLLAMA_HOST (\`brew upgrade\` leaves it alone); Homebrew 6.0.15 and later keep it in ${detection.envFilePath} instead (\`brew update\`, then run stigmer-setup again).`;
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

/** The LaunchAgent brew has registered for ollama, as it is now (label, path, bytes), if any. */
async function registeredAgent(ctx: Context): Promise<{ label: string; path: string; content: Buffer; mode: number } | undefined> {
  const home = ctx.env.HOME;
  if (!home) return undefined;
  for (const label of BREW_LABELS) {
    const file = posix.join(home, 'Library', 'LaunchAgents', `${label}.plist`);
    try {
      const found = await ctx.fs.read(file);
      if (found) return { label, path: file, content: found.content, mode: found.mode };
    } catch (error) {
      // Not a regular file: nothing we may put back or load.
      if (!(error instanceof UnsafePathError)) throw error;
    }
  }
  return undefined;
}

/**
 * `brew services restart ollama` is `stop` (bootout, and the plist deleted) then `start` (a new
 * plist from the formula and the env file, then bootstrap). When start fails, or brew is stopped
 * by our timeout in between, the service stays stopped: brew does not start the old one again.
 * So the plist brew had registered before is kept here, and if the restart fails and launchd no
 * longer has the job, that plist is put back and bootstrapped, so Ollama runs as it did. The step
 * still fails (so setup rolls back, or undo says so), with a message that says which state is in
 * place.
 */
async function restartWithBrew(ctx: Context, change: RestartChange, run: StepRunner): Promise<void> {
  const before = await registeredAgent(ctx);
  try {
    for (const step of change.steps) await run(step);
    return;
  } catch (error) {
    if (!(error instanceof StepError)) throw error;
    const failure = error.message;
    const domain = guiDomain(ctx.uid);
    const label = before?.label ?? BREW_LABELS[0];
    const loaded = await ctx.exec('launchctl', ['print', `${domain}/${label}`], { timeoutMs: 10_000 });
    if (loaded.exitCode === 0) throw new StepError(`${failure} launchd still has ${label} loaded.`);
    if (!before) throw new StepError(`${failure} The service is stopped, and there was no LaunchAgent to start it from: run \`brew services start ollama\`.`);
    try {
      const now = await ctx.fs.read(before.path);
      if (!now?.content.equals(before.content)) await ctx.fs.write(before.path, before.content, { mode: before.mode });
      // brew enables the label before each bootstrap (`launchctl enable`); a disabled label refuses to load.
      await ctx.exec('launchctl', ['enable', `${domain}/${label}`], { timeoutMs: 10_000 });
      await reloadJob(ctx, ctx.uid, before.path);
    } catch (retry) {
      throw new StepError(`${failure} Starting it again from ${before.path} failed too (${oneLine((retry as Error).message)}): Ollama is stopped; run \`brew services start ollama\`.`);
    }
    throw new StepError(`${failure} Ollama was started again from the LaunchAgent it had before (${before.path}, launchctl bootstrap).`);
  }
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
    // Homebrew 6.0.15+ reads ~/.homebrew/services/<formula>.env into the service's environment.
    proxy: `mkdir -p ~/.homebrew/services && echo 'HTTPS_PROXY=http://PROXY:PORT' >> ~/.homebrew/services/ollama.env && brew services restart ollama`,
    modelsDir: '~/.ollama/models',
  }),
  restartChange,
  async restart(ctx, change, run) {
    if (change.job) return reloadJob(ctx, ctx.uid, change.job);
    await restartWithBrew(ctx, change, run);
  },
  writablePaths: (locations, path) => [
    ...BREW_LABELS.map((label) => path.join(locations.home, 'Library', 'LaunchAgents', `${label}.plist`)),
    brewEnvFilePath(locations, path),
  ],
};

