/**
 * Ollama from the Snap Store. A snap does not take its environment from systemd drop-ins; its
 * configure hook reads `snap set ollama host=...` (MemMachine/MemMachine#918), so that is the
 * change, and undo sets the previous value back (or unsets it).
 */
import type { Context } from '../../scripts/context.ts';
import { applyWithBackups } from '../../scripts/apply.ts';
import { formatBindAddress, parseOllamaHost, sameBindAddress } from '../../scripts/ollama-host.ts';
import { listensAsRequested, type Detection, type Plan, type PlanRequest, type Strategy } from '../types.ts';

export interface SnapDetection extends Detection {
  strategy: 'linux-snap';
  /** `snap get ollama host`, undefined when unset. */
  host?: string;
}

async function detect(ctx: Context): Promise<SnapDetection | undefined> {
  const list = await ctx.exec('snap', ['list', 'ollama'], { timeoutMs: 5000 });
  if (list.exitCode !== 0) return undefined;
  const get = await ctx.exec('snap', ['get', 'ollama', 'host'], { timeoutMs: 5000 });
  return snapDetection(get.exitCode === 0 && get.stdout.trim() !== '' ? get.stdout.trim() : undefined);
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

function plan(detection: SnapDetection, request: PlanRequest): Plan {
  const value = formatBindAddress(request.target);
  const result: Plan = {
    strategy: 'linux-snap',
    target: request.target,
    changes: [],
    summary: '',
    blockers: [],
    warnings: [],
    restart: [['snap', 'restart', 'ollama']],
    reverts: [detection.host === undefined ? ['snap', 'unset', 'ollama', 'host'] : ['snap', 'set', 'ollama', `host=${detection.host}`]],
  };
  if (detection.host !== undefined && sameBindAddress(parseOllamaHost(detection.host), request.target)) {
    result.reverts = [];
    if (listensAsRequested(request)) {
      result.summary = `The ollama snap already has host=${detection.host}.`;
      return result;
    }
    result.changes = [{ type: 'command', argv: [...request.sudo, 'snap', 'restart', 'ollama'] }];
    result.summary = `The ollama snap has host=${detection.host}, but the running Ollama has not picked it up: restart it.`;
    return result;
  }
  result.changes = [
    { type: 'command', argv: [...request.sudo, 'snap', 'set', 'ollama', `host=${value}`] },
    { type: 'command', argv: [...request.sudo, 'snap', 'restart', 'ollama'] },
  ];
  result.summary = `Set the ollama snap's host option to ${value} and restart it.`;
  return result;
}

export const snapStrategy: Strategy<SnapDetection> = { id: 'linux-snap', detect, plan, apply: applyWithBackups };
