/**
 * Ollama from the Snap Store. A snap does not take its environment from systemd drop-ins; its
 * configure hook reads `snap set ollama host=...` (MemMachine/MemMachine#918). The change is a
 * typed setting, so undo puts back the value it had before the first setup (or unsets it).
 */
import type { Context } from '../../scripts/context.ts';
import { formatBindAddress, parseOllamaHost, sameBindAddress } from '../../scripts/ollama-host.ts';
import { SETUP_COMMAND } from '../commands.ts';
import { listensAsRequested, type Detection, type Plan, type PlanRequest, type RestartChange, type RestartContext, type SettingStore, type Strategy } from '../types.ts';

export interface SnapDetection extends Detection {
  strategy: 'linux-snap';
  /** `snap get ollama host`, undefined when unset. */
  host?: string;
}

/** `snap get/set/unset ollama <key>`: the snap's configuration options. */
export const snapStore: SettingStore = {
  id: 'snap',
  privileged: true,
  async read(ctx: Context, key: string) {
    const get = await ctx.exec('snap', ['get', 'ollama', key], { timeoutMs: 5000 });
    return get.exitCode === 0 && get.stdout.trim() !== '' ? get.stdout.trim() : undefined;
  },
  command(key, value) {
    return { argv: value === undefined ? ['snap', 'unset', 'ollama', key] : ['snap', 'set', 'ollama', `${key}=${value}`] };
  },
};

async function detect(ctx: Context): Promise<SnapDetection | undefined> {
  const list = await ctx.exec('snap', ['list', 'ollama'], { timeoutMs: 5000 });
  if (list.exitCode !== 0) return undefined;
  return snapDetection(await snapStore.read(ctx, 'host'));
}

/** What detect reports for a snap whose host option is `host` (undefined: unset). */
export function snapDetection(host: string | undefined): SnapDetection {
  return {
    strategy: 'linux-snap',
    description: 'snap package ollama',
    host,
    configuredHost: host,
    configuredIn: host === undefined ? undefined : 'snap get ollama host',
  };
}

function restartChange({ elevate }: RestartContext): RestartChange {
  return { type: 'restart', strategy: 'linux-snap', steps: [[...elevate, 'snap', 'restart', 'ollama']], privileged: elevate.length > 0 };
}

function plan(detection: SnapDetection, request: PlanRequest): Plan {
  const value = formatBindAddress(request.target);
  const result: Plan = { strategy: 'linux-snap', target: request.target, changes: [], summary: '', blockers: [], warnings: [] };
  if (detection.host !== undefined && sameBindAddress(parseOllamaHost(detection.host), request.target)) {
    if (listensAsRequested(request)) {
      result.summary = `The ollama snap already has host=${detection.host}.`;
      return result;
    }
    result.changes = [restartChange(request)];
    result.summary = `The ollama snap has host=${detection.host}, but the running Ollama has not picked it up: restart it.`;
    return result;
  }
  result.changes = [
    {
      type: 'setting',
      store: 'snap',
      key: 'host',
      before: detection.host,
      after: value,
      privileged: request.elevate.length > 0,
      argv: [...request.elevate, ...snapStore.command('host', value).argv],
    },
    restartChange(request),
  ];
  result.summary = `Set the ollama snap's host option to ${value} and restart it.`;
  return result;
}

export const snapStrategy: Strategy<SnapDetection> = {
  id: 'linux-snap',
  detect,
  plan,
  persistent: true,
  commands: () => ({
    start: 'sudo snap start ollama',
    restart: 'sudo snap restart ollama',
    logs: 'sudo snap logs ollama -n 50',
    widen: SETUP_COMMAND,
    stop: 'sudo snap stop --disable ollama',
    upgrade: 'sudo snap refresh ollama',
  }),
  restartChange,
  settings: [{ store: 'snap', key: 'host' }],
};
