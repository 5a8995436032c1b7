/**
 * Ollama installed by its install.sh: a system unit /etc/systemd/system/ollama.service.
 *
 * install.sh rewrites that unit on every run, so the only change that lasts is a drop-in
 * (ollama/ollama#5905). We write our own file, stigmer-setup.conf, and never touch the unit or a
 * user's override.conf, so undo can remove exactly what we added.
 */
import path from 'node:path';
import type { Context } from '../../scripts/context.ts';
import { formatBindAddress, ollamaHostProblem, parseHostOption, parseOllamaHost, sameBindAddress, type BindAddress } from '../../scripts/ollama-host.ts';
import { shellWord as quotePosix } from './quote.ts';
import { cleanField, lastLine, oneLine } from '../../scripts/text.ts';
import { SETUP_COMMAND } from '../commands.ts';
import { listensAsRequested, type Change, type DetectOptions, type Detection, type Plan, type PlanRequest, type Problem, type RestartChange, type RestartContext, type Strategy } from '../types.ts';
import { environmentAssignmentsInUnitFile, environmentFileAssignment, environmentSources, parseEnvironmentFiles, parseEnvironmentList, parseSystemctlShowAll, splitQuotedWords, unsetRemoves, type EnvironmentSources } from './systemctl-show.ts';

export const UNIT = 'ollama.service';
export const DROP_IN_DIR = '/etc/systemd/system/ollama.service.d';
export const DROP_IN_NAME = 'stigmer-setup.conf';
export const DROP_IN_PATH = `${DROP_IN_DIR}/${DROP_IN_NAME}`;
const UNIT_FILE_LOCATIONS = ['/etc/systemd/system/ollama.service', '/usr/lib/systemd/system/ollama.service', '/lib/systemd/system/ollama.service'];
const RESTART_COMMAND = 'sudo systemctl daemon-reload && sudo systemctl restart ollama';

export interface DropIn {
  /** Path on the live system, as systemd reports it. */
  path: string;
  /** The OLLAMA_HOST values this file assigns, in order; the last one counts. */
  ollamaHost: string[];
  /** The file's text, when it could be read: what it does to OLLAMA_HOST is read from it in systemd's order. */
  text?: string;
  /** Why the file could not be read (a 0600 drop-in, as a user who is not root). */
  unreadable?: string;
}

export interface EnvironmentFile {
  path: string;
  /** What the file sets OLLAMA_HOST to, if it does. EnvironmentFile= values beat Environment= lines. */
  ollamaHost?: string;
  /** Why the file could not be read: then what it sets is unknown. */
  unreadable?: string;
  /** Listed without '-' and absent: systemd refuses to start the service. */
  missing?: boolean;
}

export interface SystemdDetection extends Detection {
  strategy: 'linux-systemd';
  /** systemd is PID 1. False in a container or WSL without systemd. */
  systemdRunning: boolean;
  /** systemd runs, but `systemctl show` failed, so the unit's settings are unknown. */
  systemctlError?: string;
  unitPath: string;
  activeState: string;
  /** OLLAMA_HOST in the unit's effective Environment=, from `systemctl show`. */
  effectiveHost?: string;
  dropIns: DropIn[];
  /** EnvironmentFile= files of the unit. */
  environmentFiles?: EnvironmentFile[];
  /** Unit files changed on disk and `systemctl daemon-reload` has not run since (NeedDaemonReload=yes). */
  needsReload?: boolean;
  /** Our drop-in as written on disk (with --root prefix): its bytes, mode and owner if it exists. */
  ourDropIn: { path: string; content?: Buffer; mode?: number; uid?: number; gid?: number };
  /** The unit file's own text, when readable: it comes first in systemd's order. */
  unitText?: string;
  /** Which files decide OLLAMA_HOST's Environment= value, read as systemd reads them. */
  sources?: EnvironmentSources;
  /** OLLAMA_HOST that Environment= or an EnvironmentFile= gives, before UnsetEnvironment= removes it. */
  assignedHost?: string;
  /** UnsetEnvironment= removes OLLAMA_HOST from what the service gets (named: the file that says so). */
  unsetBy?: string;
  /** Drop-ins on disk that systemd has not loaded (NeedDaemonReload= does not always show them). */
  unloadedDropIns?: string[];
  /** The pending reload is only our own drop-in, exactly as stigmer-setup writes it (a run stopped before its daemon-reload). */
  pendingReloadIsOurs?: boolean;
}

export function renderDropIn(target: BindAddress): string {
  return [
    `# Added by stigmer-setup so containers can reach Ollama. Remove: npx stigmer-setup undo (or delete this file, then systemctl daemon-reload && systemctl restart ollama)`,
    '[Service]',
    `Environment="OLLAMA_HOST=${formatBindAddress(target)}"`,
    '',
  ].join('\n');
}

/**
 * The drop-in that decides OLLAMA_HOST once ours is in place. systemd reads drop-ins in file-name
 * order, whatever folder they are in, and a later assignment of the same variable wins.
 */
export function winningDropIn(dropIns: DropIn[], ourPath: string): DropIn | undefined {
  const setters = dropIns.filter((dropIn) => dropIn.ollamaHost.length > 0 || dropIn.path === ourPath);
  // systemd compares file names byte by byte (strcmp), not by locale.
  const byName = [...setters].sort((a, b) => {
    const left = path.basename(a.path);
    const right = path.basename(b.path);
    return left < right ? -1 : left > right ? 1 : 0;
  });
  return byName.at(-1);
}

/** The EnvironmentFile= that sets OLLAMA_HOST for the service, if any (the last one read wins). */
export function overridingEnvironmentFile(detection: Pick<SystemdDetection, 'environmentFiles'>): EnvironmentFile | undefined {
  return [...(detection.environmentFiles ?? [])].reverse().find((file) => file.ollamaHost !== undefined);
}

/** OLLAMA_HOST comes from the unit file itself: no EnvironmentFile= and no drop-in sets it. */
export function unitFileSetsHost(detection: Pick<SystemdDetection, 'effectiveHost' | 'environmentFiles' | 'dropIns'> & Partial<Pick<SystemdDetection, 'sources' | 'unitPath'>>): boolean {
  if (detection.effectiveHost === undefined || overridingEnvironmentFile(detection) !== undefined) return false;
  // Read in systemd's order, a drop-in's empty Environment= can throw away what a drop-in set.
  if (detection.sources?.setBy) return detection.sources.setBy.path === detection.unitPath;
  return !detection.dropIns.some((dropIn) => dropIn.ollamaHost.length > 0);
}

/** What the service-config check reports about this unit, most serious first. */
export function systemdProblems(detection: SystemdDetection): Problem[] {
  const problems: Problem[] = [];
  if (detection.systemctlError) {
    problems.push({
      status: 'warn',
      message: `\`systemctl show ${UNIT}\` failed: ${detection.systemctlError}`,
      why: "Without it, the service's OLLAMA_HOST and drop-ins can't be checked.",
      fix: 'sudo npx stigmer-setup doctor',
    });
    return problems;
  }
  if (!detection.systemdRunning) {
    problems.push({
      status: 'warn',
      message: `${detection.unitPath} is installed, but systemd is not running, so that unit does not start Ollama.`,
      why: 'Whatever runs Ollama here is not the service, and settings in the unit do not apply.',
      fix: 'Enable systemd (WSL: [boot] systemd=true in /etc/wsl.conf, then `wsl --shutdown`).',
    });
    return problems;
  }
  for (const file of [...detection.dropIns, ...(detection.environmentFiles ?? [])]) {
    if (!file.unreadable) continue;
    problems.push({
      status: 'warn',
      message: `${file.path} (read by ${UNIT}) can't be read: ${file.unreadable}.`,
      why: 'What it sets for Ollama is unknown, so the address found here may not be the one Ollama uses.',
      fix: 'sudo npx stigmer-setup doctor',
    });
  }
  for (const file of detection.environmentFiles ?? []) {
    if (!file.missing) continue;
    problems.push({
      status: 'fail',
      message: `${file.path} is an EnvironmentFile= of ${UNIT} without a '-' prefix, and it does not exist.`,
      why: 'systemd refuses to start the service until the file exists, so the next restart leaves Ollama stopped.',
      fix: `Create ${quotePosix(file.path)} (or mark it optional as EnvironmentFile=-${file.path}), then: ${RESTART_COMMAND}`,
    });
  }
  if (detection.unsetBy !== undefined || (detection.assignedHost !== undefined && detection.effectiveHost === undefined)) {
    const where = detection.unsetBy ?? `a file of ${UNIT}`;
    problems.push({
      status: detection.dropIns.some((dropIn) => dropIn.path === DROP_IN_PATH) ? 'fail' : 'warn',
      message: `UnsetEnvironment= in ${where} removes OLLAMA_HOST from ${UNIT}'s environment${detection.assignedHost !== undefined ? ` (OLLAMA_HOST=${cleanField(detection.assignedHost)} is set, then removed)` : ''}.`,
      why: 'systemd applies UnsetEnvironment= last, after every Environment= and EnvironmentFile=, so Ollama starts on its default 127.0.0.1:11434 whatever a drop-in sets.',
      fix: `Remove OLLAMA_HOST from the UnsetEnvironment= line in ${quotePosix(where)}, then: ${RESTART_COMMAND}`,
    });
  }
  const resetBy = detection.sources?.resetBy;
  const ours = detection.dropIns.find((dropIn) => dropIn.path === DROP_IN_PATH);
  if (ours && ours.ollamaHost.length > 0 && resetBy !== undefined && resetBy !== DROP_IN_PATH) {
    problems.push({
      status: 'fail',
      message: `${resetBy} has an empty Environment= line, read after ${DROP_IN_NAME}: it throws away every Environment= before it, OLLAMA_HOST included.`,
      why: 'systemd reads drop-ins in file-name order, and an empty Environment= resets the list gathered so far.',
      fix: `Remove the empty Environment= line from ${quotePosix(resetBy)}, then: ${RESTART_COMMAND}`,
    });
  }
  if (detection.effectiveHost !== undefined) {
    const invalid = ollamaHostProblem(detection.effectiveHost);
    if (invalid) {
      problems.push({
        status: 'fail',
        message: `${UNIT} starts Ollama with OLLAMA_HOST=${JSON.stringify(cleanField(detection.effectiveHost))}${detection.configuredIn ? ` (from ${detection.configuredIn})` : ''}, which is no address: ${invalid}.`,
        why: 'Ollama fails to listen, or listens where no client can name it.',
        fix: `${SETUP_COMMAND}   # writes a drop-in with a valid OLLAMA_HOST; or correct the value in ${quotePosix(detection.configuredIn ?? detection.unitPath)}`,
      });
    }
  }
  const envFile = overridingEnvironmentFile(detection);
  if (ours && ours.ollamaHost.length > 0 && envFile) {
    problems.push({
      status: 'fail',
      message: `${envFile.path} (an EnvironmentFile= of ${UNIT}) sets OLLAMA_HOST=${envFile.ollamaHost}, which overrides ${DROP_IN_NAME}: systemd lets EnvironmentFile= values win over Environment= lines.`,
      why: `The address stigmer-setup configured is not the one Ollama uses.`,
      fix: `Remove the OLLAMA_HOST line from ${quotePosix(envFile.path)}, then: ${RESTART_COMMAND}`,
    });
  }
  const winner = winningDropIn(detection.dropIns, DROP_IN_PATH);
  if (ours && ours.ollamaHost.length > 0 && winner && winner.path !== DROP_IN_PATH) {
    problems.push({
      status: 'fail',
      message: `${winner.path} sets OLLAMA_HOST=${winner.ollamaHost.at(-1)}, which overrides ${DROP_IN_NAME} (systemd reads drop-ins in name order; the last one wins).`,
      why: `The address stigmer-setup configured is not the one Ollama uses (effective: ${detection.effectiveHost ?? 'unset'}).`,
      fix: `Remove the OLLAMA_HOST line from ${quotePosix(winner.path)}, then: ${RESTART_COMMAND}`,
    });
  }
  if (unitFileSetsHost(detection) && ollamaHostProblem(detection.effectiveHost as string) === undefined) {
    problems.push({
      status: 'warn',
      kind: 'persistence',
      message: `OLLAMA_HOST=${detection.effectiveHost} is set in ${detection.unitPath} itself, not in a drop-in.`,
      why: "Ollama's install.sh rewrites that file on every upgrade (F7), and the setting is lost with it.",
      fix: `${SETUP_COMMAND} --host ${formatBindAddress(parseOllamaHost(detection.effectiveHost))}   # writes the same value to a drop-in, which upgrades leave alone`,
    });
  }
  if (detection.needsReload) {
    problems.push({
      status: 'warn',
      message: detection.unloadedDropIns?.length
        ? `${detection.unloadedDropIns.join(', ')} ${detection.unloadedDropIns.length === 1 ? 'is' : 'are'} on disk, but systemd has not loaded ${detection.unloadedDropIns.length === 1 ? 'it' : 'them'} (no daemon-reload since).`
        : `${UNIT}'s files changed on disk, but systemd has not reloaded them (NeedDaemonReload=yes).`,
      why: 'systemd still runs Ollama with the settings it read before the edit; the next daemon-reload and restart apply the edit, whatever it is.',
      fix: RESTART_COMMAND,
    });
  }
  return problems;
}

/** Why a file we only read could not be: a short reason, never a raw stack. */
function readFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied (run as root to read it)';
  return oneLine((error as Error).message ?? String(error), 200);
}

/** glob(3) for one path component: `*`, `?` and `[...]`; a leading dot is matched only by a dot. */
function globComponent(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i] as string;
    if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else if (char === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close < 0) source += '\\[';
      else {
        const body = pattern.slice(i + 1, close).replace(/^!/, '^').replace(/\\/g, '\\\\');
        source += `[${body}]`;
        i = close;
      }
    } else source += char.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

const GLOB_CHARACTERS = /[*?[]/;

/**
 * The files an EnvironmentFile= value names. systemd.exec(5): "an absolute filename or wildcard
 * expression"; systemd expands it with glob(3), which sorts the matches, and skips names starting
 * with '.' unless the pattern does. Wildcards are expanded in the last component only; one in a
 * folder name is reported as unreadable rather than guessed at.
 */
async function expandEnvironmentFile(ctx: Context, root: string, file: string): Promise<string[] | { unreadable: string }> {
  if (!GLOB_CHARACTERS.test(file)) return [file];
  const folder = path.posix.dirname(file);
  if (GLOB_CHARACTERS.test(folder)) return { unreadable: 'a wildcard in a folder name, which stigmer-setup does not expand' };
  const pattern = path.posix.basename(file);
  let matcher: RegExp;
  try {
    matcher = globComponent(pattern);
  } catch {
    // A bracket expression JavaScript can't hold ("[z-a]"): say so rather than guess.
    return { unreadable: `a wildcard stigmer-setup can't expand (${JSON.stringify(pattern)})` };
  }
  let names: string[];
  try {
    names = await ctx.fs.listDir(path.join(root, folder));
  } catch (error) {
    return { unreadable: readFailure(error) };
  }
  const hidden = pattern.startsWith('.');
  const matches = names.filter((name) => (hidden || !name.startsWith('.')) && matcher.test(name));
  // glob(3) sorts with strcoll; systemd runs in the C locale, so that is byte order.
  return matches.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((name) => path.posix.join(folder, name));
}

async function readEnvironmentFiles(ctx: Context, root: string, values: string[]): Promise<EnvironmentFile[]> {
  const files: EnvironmentFile[] = [];
  for (const entry of parseEnvironmentFiles(values)) {
    const expanded = await expandEnvironmentFile(ctx, root, entry.path);
    if (!Array.isArray(expanded)) {
      files.push({ path: entry.path, unreadable: expanded.unreadable });
      continue;
    }
    // A wildcard that matches nothing is a missing file to systemd (glob's GLOB_NOMATCH is ENOENT).
    if (expanded.length === 0 && !entry.optional) files.push({ path: entry.path, missing: true });
    for (const file of expanded) {
      try {
        // Someone else's file: reading through a symlink is harmless, but a FIFO still refuses.
        const text = await ctx.fs.readText(path.join(root, file), { follow: true });
        if (text === undefined) {
          if (!entry.optional) files.push({ path: file, missing: true });
          continue;
        }
        files.push({ path: file, ollamaHost: environmentFileAssignment(text, 'OLLAMA_HOST') });
      } catch (error) {
        files.push({ path: file, unreadable: readFailure(error) });
      }
    }
  }
  return files;
}

/** Drop-ins in systemd's order: by file name, whatever folder each is in (strcmp, not the locale). */
function byFileName(paths: string[]): string[] {
  return [...paths].sort((a, b) => {
    const left = path.posix.basename(a);
    const right = path.posix.basename(b);
    return left < right ? -1 : left > right ? 1 : 0;
  });
}

async function detect(ctx: Context, options: DetectOptions): Promise<SystemdDetection | undefined> {
  const show = await ctx.exec(
    'systemctl',
    ['show', UNIT, '--property=LoadState,FragmentPath,DropInPaths,Environment,EnvironmentFiles,UnsetEnvironment,ActiveState,NeedDaemonReload,MainPID'],
    { timeoutMs: 5000 },
  );
  const all = show.exitCode === 0 ? parseSystemctlShowAll(show.stdout) : new Map<string, string[]>();
  const property = (name: string) => all.get(name)?.at(-1);
  const loaded = property('LoadState') === 'loaded';
  let unitPath = property('FragmentPath') ?? '';
  let systemctlError: string | undefined;
  if (!loaded) {
    // systemd may not be running (a container, WSL without systemd) while the unit is installed:
    // still say so, because then nothing can restart Ollama for us.
    let found: string | undefined;
    for (const candidate of UNIT_FILE_LOCATIONS) {
      if (await ctx.fs.exists(path.join(options.root, candidate))) {
        found = candidate;
        break;
      }
    }
    if (!found || show.exitCode === 0) return undefined;
    unitPath = found;
    // sd_booted(3): systemd is PID 1 exactly when /run/systemd/system exists. If it is, systemctl
    // failed for another reason (no D-Bus for a non-root user, a policy): say that, not "no systemd".
    if (await ctx.fs.exists('/run/systemd/system')) {
      systemctlError = lastLine(show.stderr) || (show.failure === 'not-found' ? 'systemctl is not on PATH' : `exit ${show.exitCode}`);
    }
  }
  const ourPath = path.join(options.root, DROP_IN_PATH);
  const loadedDropIns = (property('DropInPaths') ?? '').split(/\s+/).filter(Boolean);
  const listedDropIns = [...loadedDropIns];
  const ours = await ctx.fs.read(ourPath);
  if (!listedDropIns.includes(DROP_IN_PATH) && ours) listedDropIns.push(DROP_IN_PATH);
  const dropIns: DropIn[] = [];
  for (const dropInPath of byFileName(listedDropIns)) {
    const livePath = path.join(options.root, dropInPath);
    if (dropInPath === DROP_IN_PATH) {
      // Ours is read without following a link (we may rewrite it), and refused if it is not a file.
      const text = ours?.content.toString('utf8') ?? '';
      dropIns.push({ path: dropInPath, ollamaHost: environmentAssignmentsInUnitFile(text, 'OLLAMA_HOST'), text });
      continue;
    }
    // Others are only read. A 0600 drop-in is readable by systemd (root) but not by a user: its
    // content is then unknown, which is a finding, not a crash.
    try {
      const text = (await ctx.fs.readText(livePath, { follow: true })) ?? '';
      dropIns.push({ path: dropInPath, ollamaHost: environmentAssignmentsInUnitFile(text, 'OLLAMA_HOST'), text });
    } catch (error) {
      dropIns.push({ path: dropInPath, ollamaHost: [], unreadable: readFailure(error) });
    }
  }
  let unitText: string | undefined;
  if (unitPath) unitText = await ctx.fs.readText(path.join(options.root, unitPath), { follow: true }).catch(() => undefined);
  const sources = environmentSources(
    [{ path: unitPath, text: unitText ?? '' }, ...dropIns.map((dropIn) => ({ path: dropIn.path, text: dropIn.text ?? '' }))],
    'OLLAMA_HOST',
  );
  const environmentFiles = await readEnvironmentFiles(ctx, options.root, all.get('EnvironmentFiles') ?? []);
  // What systemd loaded is the truth for Environment= and UnsetEnvironment=: it has read every
  // file, resets included, and it could read the ones we can't.
  const loadedEnvironment = parseEnvironmentList(property('Environment') ?? '');
  const fromEnvironment = loadedEnvironment.get('OLLAMA_HOST');
  const envFile = overridingEnvironmentFile({ environmentFiles });
  const assignedHost = envFile?.ollamaHost ?? fromEnvironment;
  const unsetWords = splitQuotedWords(property('UnsetEnvironment') ?? '');
  const unset = assignedHost !== undefined && unsetRemoves(unsetWords, 'OLLAMA_HOST', assignedHost);
  const effectiveHost = unset ? undefined : assignedHost;
  const unsetBy = unset || unsetRemoves(unsetWords, 'OLLAMA_HOST', undefined) ? (sources.unsetBy ?? unitPath) : undefined;
  // Where the surviving Environment= value comes from; when the files on disk disagree with what
  // systemd loaded (an edit not reloaded yet), the last drop-in that sets it is the best guess.
  const setter = sources.setBy?.path ?? [...dropIns].reverse().find((dropIn) => dropIn.ollamaHost.length > 0)?.path;
  const mainPid = Number(property('MainPID') ?? 0);
  // systemd notices an edited or removed drop-in (NeedDaemonReload=yes), but not always a new one:
  // systemd 252 says "no" for a file in an ollama.service.d/ it did not see at the last reload. A
  // .conf on disk that systemd has not loaded is a pending edit all the same.
  const onDisk = (await ctx.fs.listDir(path.join(options.root, DROP_IN_DIR)).catch(() => [] as string[])).filter((name) => name.endsWith('.conf'));
  const unloadedDropIns = onDisk.filter((name) => name !== DROP_IN_NAME && !loadedDropIns.includes(`${DROP_IN_DIR}/${name}`)).map((name) => `${DROP_IN_DIR}/${name}`);
  const needsReload = property('NeedDaemonReload') === 'yes' || unloadedDropIns.length > 0;
  let pendingReloadIsOurs = false;
  if (needsReload && unloadedDropIns.length === 0 && ours && !loadedDropIns.includes(DROP_IN_PATH)) {
    // A run that wrote our drop-in and stopped before its daemon-reload: the one pending change we
    // can prove is ours, as long as our file is exactly what stigmer-setup writes.
    const ourHosts = environmentAssignmentsInUnitFile(ours.content.toString('utf8'), 'OLLAMA_HOST');
    const target = ourHosts.length === 1 ? parseHostOption(ourHosts[0] as string) : { error: 'not ours' };
    pendingReloadIsOurs = !('error' in target) && ours.content.equals(Buffer.from(renderDropIn(target)));
  }
  const detection: SystemdDetection = {
    strategy: 'linux-systemd',
    description: `systemd unit ${UNIT} (${unitPath})`,
    systemdRunning: loaded || systemctlError !== undefined,
    systemctlError,
    unitPath,
    activeState: property('ActiveState') ?? 'unknown',
    effectiveHost,
    assignedHost,
    unsetBy,
    configuredHost: effectiveHost,
    configuredIn: effectiveHost === undefined ? undefined : envFile?.path ?? setter ?? unitPath,
    dropIns,
    environmentFiles,
    needsReload,
    unloadedDropIns,
    pendingReloadIsOurs,
    serverPid: mainPid > 0 ? mainPid : undefined,
    // Where a pull writes (issue 13's disk-full message); Environment= as systemd loaded it.
    modelsDir: loadedEnvironment.get('OLLAMA_MODELS'),
    ourDropIn: { path: ourPath, content: ours?.content, mode: ours?.mode, uid: ours?.uid, gid: ours?.gid },
    unitText,
    sources,
  };
  detection.problems = systemdProblems(detection);
  return detection;
}

/** The refusal for a unit edit systemd has not loaded yet, for setup's plan and undo's restart alike. */
function pendingEditBlocker(detection: SystemdDetection): { message: string; fix: string } {
  return {
    message: `${UNIT} has unit-file changes systemd has not loaded yet (${detection.unloadedDropIns?.length ? `${detection.unloadedDropIns.join(', ')} not loaded` : 'NeedDaemonReload=yes'}).`,
    fix: 'run `systemctl daemon-reload` yourself, check `systemctl status ollama`, then run setup again',
  };
}

function restartChange({ elevate }: RestartContext): RestartChange {
  return {
    type: 'restart',
    strategy: 'linux-systemd',
    steps: [
      [...elevate, 'systemctl', 'daemon-reload'],
      [...elevate, 'systemctl', 'restart', 'ollama'],
    ],
    privileged: elevate.length > 0,
  };
}

function plan(detection: SystemdDetection, request: PlanRequest): Plan {
  const base: Plan = { strategy: 'linux-systemd', target: request.target, changes: [], summary: '', blockers: [], warnings: [] };
  if (!detection.systemdRunning) {
    base.summary = `${UNIT} is installed, but systemd is not running, so it can't be configured and restarted.`;
    base.blockers.push({
      message: `${detection.unitPath} exists but systemd is not PID 1 here (a container, or WSL without systemd).`,
      fix: `Enable systemd (WSL: add "[boot]\\nsystemd=true" to /etc/wsl.conf, then \`wsl --shutdown\`), or start Ollama by hand with: OLLAMA_HOST=${formatBindAddress(request.target)} ollama serve`,
    });
    return base;
  }
  if (detection.systemctlError) {
    base.summary = `\`systemctl show ${UNIT}\` failed, so its current settings are unknown.`;
    base.blockers.push({ message: `\`systemctl show ${UNIT}\` failed: ${detection.systemctlError}`, fix: 'Run stigmer-setup as root: sudo npx stigmer-setup' });
    return base;
  }
  const value = formatBindAddress(request.target);
  const refuse = (summary: string, message: string, fix: string): Plan => {
    base.summary = summary;
    base.blockers.push({ message, fix });
    return base;
  };
  if (detection.needsReload && !detection.pendingReloadIsOurs) {
    // Our restart would load that edit too, whatever it is; if the restart then fails, no
    // daemon-reload can bring back the configuration systemd had loaded before. Don't start.
    const blocker = pendingEditBlocker(detection);
    return refuse(`${UNIT} has unit-file changes systemd has not loaded yet, so setup changes nothing.`, blocker.message, blocker.fix);
  }
  const unreadable = [...detection.dropIns, ...(detection.environmentFiles ?? [])].find((file) => file.unreadable);
  if (unreadable) {
    return refuse(
      `${unreadable.path} can't be read, so what ${UNIT} sets OLLAMA_HOST to is unknown.`,
      `${unreadable.path} (read by ${UNIT}) can't be read: ${unreadable.unreadable}.`,
      'Run stigmer-setup as root: sudo npx stigmer-setup',
    );
  }
  const missing = detection.environmentFiles?.find((file) => file.missing);
  if (missing) {
    // A restart would fail ("Failed to load environment files") and leave Ollama stopped.
    return refuse(
      `${missing.path}, a required EnvironmentFile= of ${UNIT}, does not exist: a restart would fail.`,
      `${missing.path} is an EnvironmentFile= of ${UNIT} without a '-' prefix, and it does not exist, so systemd would not start Ollama again.`,
      `Create ${quotePosix(missing.path)} or mark it optional (EnvironmentFile=-${missing.path}), then run setup again`,
    );
  }
  if (detection.unsetBy !== undefined) {
    return refuse(
      `UnsetEnvironment= in ${detection.unsetBy} removes OLLAMA_HOST from ${UNIT}, and no drop-in can set it back.`,
      `UnsetEnvironment= in ${detection.unsetBy} removes OLLAMA_HOST from ${UNIT}'s environment, after every Environment= and EnvironmentFile=.`,
      `Remove OLLAMA_HOST from that UnsetEnvironment= line in ${quotePosix(detection.unsetBy)}, then run setup again`,
    );
  }
  const envFile = overridingEnvironmentFile(detection);
  if (envFile && !sameBindAddress(parseOllamaHost(envFile.ollamaHost), request.target)) {
    // A drop-in can't beat an EnvironmentFile= value, so writing one would change nothing.
    base.summary = `${envFile.path} sets OLLAMA_HOST=${envFile.ollamaHost} for ${UNIT}, and no drop-in can override an EnvironmentFile= value.`;
    base.blockers.push({
      message: `${envFile.path} (an EnvironmentFile= of ${UNIT}) sets OLLAMA_HOST=${envFile.ollamaHost}.`,
      fix: `Change that line in ${quotePosix(envFile.path)} to OLLAMA_HOST=${value} (or remove it and run stigmer-setup again), then: ${RESTART_COMMAND}`,
    });
    return base;
  }
  const desired = Buffer.from(renderDropIn(request.target));
  const effective = detection.effectiveHost === undefined ? undefined : parseOllamaHost(detection.effectiveHost);
  // A value in the unit file itself is lost at the next upgrade: then write the drop-in anyway.
  const effectiveMatches = effective !== undefined && sameBindAddress(effective, request.target) && !detection.needsReload && !unitFileSetsHost(detection);
  const dropIns = detection.dropIns.some((d) => d.path === DROP_IN_PATH)
    ? detection.dropIns.map((d) => (d.path === DROP_IN_PATH ? { ...d, ollamaHost: [value] } : d))
    : [...detection.dropIns, { path: DROP_IN_PATH, ollamaHost: [value] }];
  // Read the files as systemd will once ours is written: a later drop-in's empty Environment=
  // would throw our line away, and setup would restart Ollama on every run for nothing.
  const after = environmentSources(
    [{ path: detection.unitPath, text: detection.unitText ?? '' }, ...byFileName(dropIns.map((d) => d.path)).map((p) => ({ path: p, text: p === DROP_IN_PATH ? desired.toString('utf8') : (detection.dropIns.find((d) => d.path === p)?.text ?? '') }))],
    'OLLAMA_HOST',
  );
  if (after.resetBy !== undefined && after.setBy === undefined) {
    return refuse(
      `${after.resetBy} resets Environment= after ${DROP_IN_NAME}, so a drop-in can't set OLLAMA_HOST for ${UNIT}.`,
      `${after.resetBy} has an empty Environment= line, which systemd reads after ${DROP_IN_NAME} (drop-ins go in file-name order) and which throws away OLLAMA_HOST.`,
      `Remove the empty Environment= line from ${quotePosix(after.resetBy)} (or set OLLAMA_HOST=${value} after it there), then run setup again`,
    );
  }
  const winner = winningDropIn(dropIns, DROP_IN_PATH);
  if (winner && winner.path !== DROP_IN_PATH) {
    base.warnings.push(`${winner.path} also sets OLLAMA_HOST=${cleanField(winner.ollamaHost.at(-1) ?? '')} and systemd reads it after ${DROP_IN_NAME}, so it will win. Remove that line from ${quotePosix(winner.path)}.`);
  }
  const ourContent = detection.ourDropIn.content;
  // Already configured, by our drop-in or the user's own: writing another file would add nothing.
  if (effectiveMatches && (ourContent === undefined || ourContent.equals(desired))) {
    const configured = `OLLAMA_HOST=${detection.effectiveHost}${detection.configuredIn ? ` (from ${detection.configuredIn})` : ''}`;
    if (listensAsRequested(request)) {
      base.summary = `${UNIT} already runs with ${configured}.`;
      return base;
    }
    // systemd has loaded it, but Ollama was not restarted since: it still listens the old way.
    const restart = restartChange(request);
    base.changes = [{ ...restart, steps: restart.steps.slice(1) }];
    base.summary = `${UNIT} is configured with ${configured}, but the running Ollama has not picked it up: restart it.`;
    return base;
  }
  const changes: Change[] = [];
  if (ourContent === undefined || !ourContent.equals(desired)) {
    changes.push({
      type: 'file',
      path: detection.ourDropIn.path,
      action: ourContent === undefined ? 'create' : 'modify',
      before: ourContent,
      after: desired,
      // Unit files must be readable by systemd and everyone; keep the owner an existing file has.
      mode: detection.ourDropIn.mode ?? 0o644,
      uid: detection.ourDropIn.uid,
      gid: detection.ourDropIn.gid,
      privileged: request.elevate.length > 0,
    });
  }
  changes.push(restartChange(request));
  base.changes = changes;
  base.summary = `Set OLLAMA_HOST=${value} for ${UNIT} with a drop-in, then reload systemd and restart Ollama.`;
  return base;
}

/**
 * Whether ollama.service still exists. `systemctl show` answers LoadState=not-found (exit 0) once
 * the unit file is gone; when systemctl can't answer, that is not "uninstalled".
 */
async function installed(ctx: Context): Promise<boolean | undefined> {
  const show = await ctx.exec('systemctl', ['show', UNIT, '--property=LoadState'], { timeoutMs: 5000 });
  if (show.failure || show.exitCode !== 0) return undefined;
  const state = parseSystemctlShowAll(show.stdout).get('LoadState')?.at(-1);
  return state === 'not-found' ? false : state === 'loaded' ? true : undefined;
}

export const systemdStrategy: Strategy<SystemdDetection> = {
  id: 'linux-systemd',
  detect,
  plan,
  persistent: true,
  commands: () => ({
    start: 'sudo systemctl start ollama (then `journalctl -u ollama -n 50` if it does not stay up)',
    restart: RESTART_COMMAND,
    logs: 'journalctl -u ollama -n 50',
    widen: SETUP_COMMAND,
    stop: 'sudo systemctl disable --now ollama',
    proxy: `sudo mkdir -p /etc/systemd/system/ollama.service.d && printf '[Service]\\nEnvironment="HTTPS_PROXY=http://PROXY:PORT"\\n' | sudo tee /etc/systemd/system/ollama.service.d/proxy.conf && sudo systemctl daemon-reload && sudo systemctl restart ollama`,
    // The install script's service user has its home there (useradd -d /usr/share/ollama).
    modelsDir: '/usr/share/ollama/.ollama/models',
  }),
  restartChange,
  installed,
  async restartBlocker(ctx, options) {
    const detection = await detect(ctx, options);
    if (!detection?.needsReload || detection.pendingReloadIsOurs) return undefined;
    return pendingEditBlocker(detection);
  },
  writablePaths: (locations, platformPath) => [platformPath.join(locations.root, DROP_IN_PATH)],
};
