/**
 * Ollama running as a plain process: `ollama serve` typed in a terminal, or started by Stigmer's own
 * CLI (which records ~/.stigmer/llm.pid). There is no configuration file that the next start reads,
 * so nothing stigmer-setup writes would last: the plan says so and gives the exact command instead.
 */
import path from 'node:path';
import type { Context } from '../../scripts/context.ts';
import { findOwners, readListeners, type ProcessInfo } from '../../scripts/listeners.ts';
import { formatBindAddress } from '../../scripts/ollama-host.ts';
import type { ApplyOutcome, DetectOptions, Detection, Plan, PlanRequest, Strategy } from '../types.ts';

export interface ManualDetection extends Detection {
  strategy: 'linux-manual';
  process: ProcessInfo;
  startedByStigmer: boolean;
}

async function detect(ctx: Context, options: DetectOptions): Promise<ManualDetection | undefined> {
  const listeners = await readListeners(ctx, options.port);
  await findOwners(ctx, listeners);
  const owner = listeners.find((listener) => listener.owner)?.owner;
  // A service-managed process belongs to the systemd or snap strategy, which run before this one.
  if (!owner || (owner.unit && owner.unit.endsWith('.service'))) return undefined;
  const home = ctx.env.HOME ?? '';
  const stigmerPid = home ? (await ctx.fs.readText(path.join(home, '.stigmer', 'llm.pid')))?.trim() : undefined;
  const startedByStigmer = stigmerPid === String(owner.pid);
  const environ = (await ctx.fs.readText(`/proc/${owner.pid}/environ`).catch(() => undefined)) ?? '';
  const configuredHost = environ.split('\0').find((entry) => entry.startsWith('OLLAMA_HOST='))?.slice('OLLAMA_HOST='.length);
  return {
    strategy: 'linux-manual',
    description: startedByStigmer ? `\`ollama serve\` started by Stigmer (pid ${owner.pid})` : `a hand-started \`${owner.argv.join(' ')}\` (pid ${owner.pid})`,
    process: owner,
    startedByStigmer,
    configuredHost,
    configuredIn: configuredHost === undefined ? undefined : `the environment of pid ${owner.pid}`,
  };
}

function plan(detection: ManualDetection, request: PlanRequest): Plan {
  const value = formatBindAddress(request.target);
  const fix = detection.startedByStigmer
    ? `Stop Stigmer's Ollama (kill ${detection.process.pid}) and start Stigmer again from a shell where OLLAMA_HOST=${value} is exported, or install Ollama's systemd service (curl -fsSL https://ollama.com/install.sh | sh) and re-run: npx stigmer-setup`
    : `Stop it (kill ${detection.process.pid}) and start it again with: OLLAMA_HOST=${value} ollama serve — or install Ollama's systemd service (curl -fsSL https://ollama.com/install.sh | sh) and re-run: npx stigmer-setup`;
  return {
    strategy: 'linux-manual',
    target: request.target,
    changes: [],
    summary: `Ollama runs as ${detection.description}; no configuration file decides where it listens, so no change stigmer-setup makes would outlast it.`,
    blockers: [{ message: `Ollama runs as ${detection.description}, which can't be reconfigured persistently.`, fix }],
    warnings: [],
    restart: [],
    reverts: [],
  };
}

async function apply(): Promise<ApplyOutcome> {
  // plan() never produces changes for a hand-started process.
  return { ok: true, applied: [], rolledBack: false };
}

export const manualStrategy: Strategy<ManualDetection> = { id: 'linux-manual', detect, plan, apply };
