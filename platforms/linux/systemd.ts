/**
 * Ollama installed by its install.sh: a system unit /etc/systemd/system/ollama.service.
 *
 * install.sh rewrites that unit on every run, so the only change that lasts is a drop-in
 * (ollama/ollama#5905). We write our own file, stigmer-setup.conf, and never touch the unit or a
 * user's override.conf, so undo can remove exactly what we added.
 */
import path from 'node:path';
import type { Context } from '../../scripts/context.ts';
import { formatBindAddress, parseOllamaHost, sameBindAddress, type BindAddress } from '../../scripts/ollama-host.ts';
import { lastLine } from '../../scripts/text.ts';
import { SETUP_COMMAND } from '../commands.ts';
import { listensAsRequested, type Change, type DetectOptions, type Detection, type Plan, type PlanRequest, type Problem, type RestartChange, type RestartContext, type Strategy } from '../types.ts';
import { environmentAssignmentsInUnitFile, environmentFileAssignment, parseEnvironmentFiles, parseEnvironmentList, parseSystemctlShowAll } from './systemctl-show.ts';

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
}

export interface EnvironmentFile {
  path: string;
  /** What the file sets OLLAMA_HOST to, if it does. EnvironmentFile= values beat Environment= lines. */
  ollamaHost?: string;
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
export function unitFileSetsHost(detection: Pick<SystemdDetection, 'effectiveHost' | 'environmentFiles' | 'dropIns'>): boolean {
  return detection.effectiveHost !== undefined && overridingEnvironmentFile(detection) === undefined && !detection.dropIns.some((dropIn) => dropIn.ollamaHost.length > 0);
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
  const ours = detection.dropIns.find((dropIn) => dropIn.path === DROP_IN_PATH);
  const envFile = overridingEnvironmentFile(detection);
  if (ours && ours.ollamaHost.length > 0 && envFile) {
    problems.push({
      status: 'fail',
      message: `${envFile.path} (an EnvironmentFile= of ${UNIT}) sets OLLAMA_HOST=${envFile.ollamaHost}, which overrides ${DROP_IN_NAME}: systemd lets EnvironmentFile= values win over Environment= lines.`,
      why: `The address stigmer-setup configured is not the one Ollama uses.`,
      fix: `Remove the OLLAMA_HOST line from ${envFile.path}, then: ${RESTART_COMMAND}`,
    });
  }
  const winner = winningDropIn(detection.dropIns, DROP_IN_PATH);
  if (ours && ours.ollamaHost.length > 0 && winner && winner.path !== DROP_IN_PATH) {
    problems.push({
      status: 'fail',
      message: `${winner.path} sets OLLAMA_HOST=${winner.ollamaHost.at(-1)}, which overrides ${DROP_IN_NAME} (systemd reads drop-ins in name order; the last one wins).`,
      why: `The address stigmer-setup configured is not the one Ollama uses (effective: ${detection.effectiveHost ?? 'unset'}).`,
      fix: `Remove the OLLAMA_HOST line from ${winner.path}, then: ${RESTART_COMMAND}`,
    });
  }
  if (unitFileSetsHost(detection)) {
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
      message: `${UNIT}'s files changed on disk, but systemd has not reloaded them (NeedDaemonReload=yes).`,
      why: 'systemd still runs Ollama with the settings it read before the edit, and will again at the next restart.',
      fix: RESTART_COMMAND,
    });
  }
  return problems;
}

async function readEnvironmentFiles(ctx: Context, root: string, values: string[]): Promise<EnvironmentFile[]> {
  const files: EnvironmentFile[] = [];
  for (const file of parseEnvironmentFiles(values)) {
    // Someone else's file: reading through a symlink is harmless, but a FIFO still refuses.
    const text = await ctx.fs.readText(path.join(root, file.path), { follow: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'EACCES') return undefined;
      throw error;
    });
    files.push({ path: file.path, ollamaHost: text === undefined ? undefined : environmentFileAssignment(text, 'OLLAMA_HOST') });
  }
  return files;
}

async function detect(ctx: Context, options: DetectOptions): Promise<SystemdDetection | undefined> {
  const show = await ctx.exec(
    'systemctl',
    ['show', UNIT, '--property=LoadState,FragmentPath,DropInPaths,Environment,EnvironmentFiles,ActiveState,NeedDaemonReload,MainPID'],
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
  const listedDropIns = (property('DropInPaths') ?? '').split(/\s+/).filter(Boolean);
  if (!listedDropIns.includes(DROP_IN_PATH) && (await ctx.fs.exists(ourPath))) listedDropIns.push(DROP_IN_PATH);
  const dropIns: DropIn[] = [];
  for (const dropInPath of listedDropIns) {
    const livePath = path.join(options.root, dropInPath);
    // Ours is read without following a link (we may rewrite it); others are only read.
    const text = dropInPath === DROP_IN_PATH ? await ctx.fs.readText(livePath) : await ctx.fs.readText(livePath, { follow: true });
    dropIns.push({ path: dropInPath, ollamaHost: environmentAssignmentsInUnitFile(text ?? '', 'OLLAMA_HOST') });
  }
  const environmentFiles = await readEnvironmentFiles(ctx, options.root, all.get('EnvironmentFiles') ?? []);
  const fromEnvironment = parseEnvironmentList(property('Environment') ?? '').get('OLLAMA_HOST');
  const envFile = overridingEnvironmentFile({ environmentFiles });
  const effectiveHost = envFile?.ollamaHost ?? fromEnvironment;
  const setter = [...dropIns].reverse().find((dropIn) => dropIn.ollamaHost.length > 0);
  const ours = await ctx.fs.read(ourPath);
  const mainPid = Number(property('MainPID') ?? 0);
  const detection: SystemdDetection = {
    strategy: 'linux-systemd',
    description: `systemd unit ${UNIT} (${unitPath})`,
    systemdRunning: loaded || systemctlError !== undefined,
    systemctlError,
    unitPath,
    activeState: property('ActiveState') ?? 'unknown',
    effectiveHost,
    configuredHost: effectiveHost,
    configuredIn: effectiveHost === undefined ? undefined : envFile?.path ?? setter?.path ?? unitPath,
    dropIns,
    environmentFiles,
    needsReload: property('NeedDaemonReload') === 'yes',
    serverPid: mainPid > 0 ? mainPid : undefined,
    ourDropIn: { path: ourPath, content: ours?.content, mode: ours?.mode, uid: ours?.uid, gid: ours?.gid },
  };
  detection.problems = systemdProblems(detection);
  return detection;
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
  const envFile = overridingEnvironmentFile(detection);
  if (envFile && !sameBindAddress(parseOllamaHost(envFile.ollamaHost), request.target)) {
    // A drop-in can't beat an EnvironmentFile= value, so writing one would change nothing.
    base.summary = `${envFile.path} sets OLLAMA_HOST=${envFile.ollamaHost} for ${UNIT}, and no drop-in can override an EnvironmentFile= value.`;
    base.blockers.push({
      message: `${envFile.path} (an EnvironmentFile= of ${UNIT}) sets OLLAMA_HOST=${envFile.ollamaHost}.`,
      fix: `Change that line to OLLAMA_HOST=${value} (or remove it and run stigmer-setup again), then: ${RESTART_COMMAND}`,
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
  const winner = winningDropIn(dropIns, DROP_IN_PATH);
  if (winner && winner.path !== DROP_IN_PATH) {
    base.warnings.push(`${winner.path} also sets OLLAMA_HOST=${winner.ollamaHost.at(-1)} and systemd reads it after ${DROP_IN_NAME}, so it will win. Remove that line from ${winner.path}.`);
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
  }),
  restartChange,
  installed,
  writablePaths: (locations, platformPath) => [platformPath.join(locations.root, DROP_IN_PATH)],
};
