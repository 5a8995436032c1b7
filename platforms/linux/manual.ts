/**
 * Ollama running as a plain process: `ollama serve` typed in a terminal, or started by Stigmer's own
 * CLI (which records ~/.stigmer/llm.pid). There is no configuration file that the next start reads,
 * so nothing stigmer-setup writes would last: the plan says so and gives the exact command instead.
 */
import path from 'node:path';
import type { Context } from '../../scripts/context.ts';
import type { ProcessInfo } from '../../scripts/listeners.ts';
import { formatBindAddress } from '../../scripts/ollama-host.ts';
import { stripControl } from '../../scripts/text.ts';
import type { DetectOptions, Detection, Plan, PlanRequest, Problem, Strategy } from '../types.ts';
import { isDockerProxy, isUserUnit } from './elsewhere.ts';

export interface ManualDetection extends Detection {
  strategy: 'linux-manual';
  process: ProcessInfo;
  startedByStigmer: boolean;
}

/** The process that owns the port, if it is a plain process (not a service, not a container's proxy). */
export function plainOwner(options: Pick<DetectOptions, 'listeners'>): ProcessInfo | undefined {
  const owner = options.listeners?.find((listener) => listener.owner)?.owner;
  if (!owner || isDockerProxy(owner) || isUserUnit(owner)) return undefined;
  // A service-managed process belongs to the systemd or snap strategy.
  if (owner.unit && owner.unit.endsWith('.service')) return undefined;
  return owner;
}

async function detect(ctx: Context, options: DetectOptions): Promise<ManualDetection | undefined> {
  const owner = plainOwner(options);
  if (!owner) return undefined;
  const stigmerPid = options.home ? (await ctx.fs.readText(path.join(options.home, '.stigmer', 'llm.pid')).catch(() => undefined))?.trim() : undefined;
  const startedByStigmer = stigmerPid === String(owner.pid);
  const environ = (await ctx.fs.readText(`/proc/${owner.pid}/environ`, { follow: true }).catch(() => undefined)) ?? '';
  const configuredHost = environ.split('\0').find((entry) => entry.startsWith('OLLAMA_HOST='))?.slice('OLLAMA_HOST='.length);
  const description = startedByStigmer ? `\`ollama serve\` started by Stigmer (pid ${owner.pid})` : `a hand-started \`${stripControl(owner.argv.join(' ')).slice(0, 200)}\` (pid ${owner.pid})`;
  return {
    strategy: 'linux-manual',
    description,
    process: owner,
    startedByStigmer,
    serverPid: owner.pid,
    configuredHost,
    configuredIn: configuredHost === undefined ? undefined : `the environment of pid ${owner.pid}`,
    problems: manualProblems(description, startedByStigmer),
  };
}

/** What the service-config check says about a server nothing will start again the same way. */
export function manualProblems(description: string, startedByStigmer: boolean): Problem[] {
  const fix = 'Install Ollama as a service (curl -fsSL https://ollama.com/install.sh | sh), then run: npx stigmer-setup';
  if (startedByStigmer) {
    return [{
      status: 'warn',
      message: `Ollama runs as ${description}; it has only the environment of the Stigmer CLI that started it, and no service setting reaches it.`,
      why: 'Where it listens lasts only until Stigmer starts it again, from whatever shell that happens in.',
      fix,
    }];
  }
  return [{
    status: 'warn',
    message: `Ollama runs as ${description}; where it listens lasts only until that process stops.`,
    why: 'Nothing restarts it with the same settings after a reboot, so containers may lose Ollama later.',
    fix,
  }];
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
  };
}

export const manualStrategy: Strategy<ManualDetection> = {
  id: 'linux-manual',
  detect,
  plan,
  persistent: false,
  commands: (detection, port) => ({
    start: `OLLAMA_HOST=0.0.0.0:${port} ollama serve`,
    restart: `kill ${detection.process.pid}, then: OLLAMA_HOST=0.0.0.0:${port} ollama serve`,
    logs: detection.startedByStigmer ? '~/.stigmer/logs/llm.log' : 'the terminal where `ollama serve` runs',
    widen: `Stop it (kill ${detection.process.pid}), then start it with: OLLAMA_HOST=0.0.0.0:${port} ollama serve`,
    stop: `kill ${detection.process.pid}`,
  }),
};
