/**
 * Ollama installed by its install.sh: a system unit /etc/systemd/system/ollama.service.
 *
 * install.sh rewrites that unit on every run, so the only change that lasts is a drop-in
 * (ollama/ollama#5905). We write our own file, stigmer-setup.conf, and never touch the unit or a
 * user's override.conf, so undo can remove exactly what we added.
 */
import path from 'node:path';
import type { Context } from '../../scripts/context.ts';
import { applyWithBackups } from '../../scripts/apply.ts';
import { formatBindAddress, parseOllamaHost, sameBindAddress, type BindAddress } from '../../scripts/ollama-host.ts';
import { environmentAssignmentsInUnitFile, parseEnvironmentList, parseSystemctlShow } from '../../scripts/parsers/systemctl-show.ts';
import { listensAsRequested, type Change, type DetectOptions, type Detection, type Plan, type PlanRequest, type Strategy } from '../types.ts';

export const UNIT = 'ollama.service';
export const DROP_IN_DIR = '/etc/systemd/system/ollama.service.d';
export const DROP_IN_NAME = 'stigmer-setup.conf';
export const DROP_IN_PATH = `${DROP_IN_DIR}/${DROP_IN_NAME}`;
const UNIT_FILE_LOCATIONS = ['/etc/systemd/system/ollama.service', '/usr/lib/systemd/system/ollama.service', '/lib/systemd/system/ollama.service'];

export interface DropIn {
  /** Path on the live system, as systemd reports it. */
  path: string;
  /** The OLLAMA_HOST values this file assigns, in order; the last one counts. */
  ollamaHost: string[];
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
  /** Our drop-in as written on disk (with --root prefix), and its content if it exists. */
  ourDropIn: { path: string; content?: string };
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

async function detect(ctx: Context, options: DetectOptions): Promise<SystemdDetection | undefined> {
  const show = await ctx.exec('systemctl', ['show', UNIT, '--property=LoadState,FragmentPath,DropInPaths,Environment,ActiveState'], { timeoutMs: 5000 });
  const properties = show.exitCode === 0 ? parseSystemctlShow(show.stdout) : new Map<string, string>();
  const loaded = properties.get('LoadState') === 'loaded';
  let unitPath = properties.get('FragmentPath') ?? '';
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
      systemctlError = (show.stderr.trim().split('\n').at(-1) ?? '') || (show.failure === 'not-found' ? 'systemctl is not on PATH' : `exit ${show.exitCode}`);
    }
  }
  const ourPath = path.join(options.root, DROP_IN_PATH);
  const listedDropIns = (properties.get('DropInPaths') ?? '').split(/\s+/).filter(Boolean);
  if (!listedDropIns.includes(DROP_IN_PATH) && (await ctx.fs.exists(ourPath))) listedDropIns.push(DROP_IN_PATH);
  const dropIns: DropIn[] = [];
  for (const dropInPath of listedDropIns) {
    const text = (await ctx.fs.readText(path.join(options.root, dropInPath))) ?? '';
    dropIns.push({ path: dropInPath, ollamaHost: environmentAssignmentsInUnitFile(text, 'OLLAMA_HOST') });
  }
  const effectiveHost = parseEnvironmentList(properties.get('Environment') ?? '').get('OLLAMA_HOST');
  const setter = [...dropIns].reverse().find((dropIn) => dropIn.ollamaHost.length > 0);
  return {
    strategy: 'linux-systemd',
    description: `systemd unit ${UNIT} (${unitPath})`,
    systemdRunning: loaded || systemctlError !== undefined,
    systemctlError,
    unitPath,
    activeState: properties.get('ActiveState') ?? 'unknown',
    effectiveHost,
    configuredHost: effectiveHost,
    configuredIn: effectiveHost === undefined ? undefined : setter?.path ?? unitPath,
    dropIns,
    ourDropIn: { path: ourPath, content: await ctx.fs.readText(ourPath) },
  };
}

function plan(detection: SystemdDetection, request: PlanRequest): Plan {
  const base: Plan = {
    strategy: 'linux-systemd',
    target: request.target,
    changes: [],
    summary: '',
    blockers: [],
    warnings: [],
    restart: [
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'restart', 'ollama'],
    ],
    reverts: [],
  };
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
    base.blockers.push({
      message: `\`systemctl show ${UNIT}\` failed: ${detection.systemctlError}`,
      fix: 'Run stigmer-setup as root: sudo npx stigmer-setup',
    });
    return base;
  }
  const desired = renderDropIn(request.target);
  const effective = detection.effectiveHost === undefined ? undefined : parseOllamaHost(detection.effectiveHost);
  const effectiveMatches = effective !== undefined && sameBindAddress(effective, request.target);
  const ourPathLive = DROP_IN_PATH;
  const dropIns = detection.dropIns.some((d) => d.path === ourPathLive)
    ? detection.dropIns.map((d) => (d.path === ourPathLive ? { ...d, ollamaHost: [formatBindAddress(request.target)] } : d))
    : [...detection.dropIns, { path: ourPathLive, ollamaHost: [formatBindAddress(request.target)] }];
  const winner = winningDropIn(dropIns, ourPathLive);
  if (winner && winner.path !== ourPathLive) {
    base.warnings.push(
      `${winner.path} also sets OLLAMA_HOST=${winner.ollamaHost.at(-1)} and systemd reads it after ${DROP_IN_NAME}, so it will win. Remove that line from ${winner.path}.`,
    );
  }
  // Already configured, by our drop-in or the user's own: writing another file would add nothing.
  if (effectiveMatches && (detection.ourDropIn.content === undefined || detection.ourDropIn.content === desired)) {
    const configured = `OLLAMA_HOST=${detection.effectiveHost}${detection.configuredIn ? ` (from ${detection.configuredIn})` : ''}`;
    if (listensAsRequested(request)) {
      base.summary = `${UNIT} already runs with ${configured}.`;
      return base;
    }
    // systemd has loaded it, but Ollama was not restarted since: it still listens the old way.
    base.changes = [{ type: 'command', argv: [...request.sudo, 'systemctl', 'restart', 'ollama'] }];
    base.summary = `${UNIT} is configured with ${configured}, but the running Ollama has not picked it up: restart it.`;
    return base;
  }
  const changes: Change[] = [];
  if (detection.ourDropIn.content !== desired) {
    changes.push({
      type: 'file',
      path: detection.ourDropIn.path,
      action: detection.ourDropIn.content === undefined ? 'create' : 'modify',
      before: detection.ourDropIn.content,
      after: desired,
      privileged: request.sudo.length > 0,
    });
  }
  for (const argv of base.restart) changes.push({ type: 'command', argv: [...request.sudo, ...argv] });
  base.changes = changes;
  base.summary = `Set OLLAMA_HOST=${formatBindAddress(request.target)} for ${UNIT} with a drop-in, then reload systemd and restart Ollama.`;
  return base;
}

export const systemdStrategy: Strategy<SystemdDetection> = {
  id: 'linux-systemd',
  detect,
  plan,
  apply: applyWithBackups,
};
