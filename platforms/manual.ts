/**
 * Ollama running as a plain process, on any OS: `ollama serve` typed in a terminal, or started by
 * Stigmer's own CLI (which records ~/.stigmer/llm.pid and gives the server only its own
 * environment). No configuration file decides where it listens at the next start, so nothing
 * stigmer-setup writes would last: the plan says so and gives the exact command instead.
 * Each OS says which listener owner counts as a plain process and how to read its environment.
 */
import type { Context } from '../scripts/context.ts';
import type { ProcessInfo } from '../scripts/listeners.ts';
import { formatBindAddress } from '../scripts/ollama-host.ts';
import { stripControl } from '../scripts/text.ts';
import type { DetectOptions, Detection, Plan, PlanRequest, Problem, Strategy } from './types.ts';
import { quotePosix } from '../scripts/shell-quote.ts';

export interface ManualDetection extends Detection {
  process: ProcessInfo;
  startedByStigmer: boolean;
}

/** What the service-config check says about a server nothing will start again the same way. */
export function manualProblems(description: string, startedByStigmer: boolean): Problem[] {
  const fix = 'Install Ollama as a service (Linux: curl -fsSL https://ollama.com/install.sh | sh; macOS: brew services start ollama, or the Ollama app), then run: npx stigmer-setup';
  if (startedByStigmer) {
    return [{
      status: 'warn',
      kind: 'persistence',
      message: `Ollama runs as ${description}; it has only the environment of the Stigmer CLI that started it, and no service setting reaches it.`,
      why: 'Where it listens lasts only until Stigmer starts it again, from whatever shell that happens in.',
      fix,
    }];
  }
  return [{
    status: 'warn',
    kind: 'persistence',
    message: `Ollama runs as ${description}; where it listens lasts only until that process stops.`,
    why: 'Nothing restarts it with the same settings after a reboot, so containers may lose Ollama later.',
    fix,
  }];
}

export function manualDescription(process: ProcessInfo, startedByStigmer: boolean): string {
  return startedByStigmer ? `\`ollama serve\` started by Stigmer (pid ${process.pid})` : `a hand-started \`${stripControl(process.argv.join(' ')).slice(0, 200)}\` (pid ${process.pid})`;
}

export interface ManualOptions {
  id: string;
  /** The listener owner, when it is a plain process on this OS. */
  owner(options: DetectOptions): ProcessInfo | undefined;
  /** OLLAMA_HOST from the process's environment, where the OS lets us read it. */
  readOllamaHost?(ctx: Context, pid: number): Promise<string | undefined>;
  /** How to install a lasting Ollama on this OS. */
  install: string;
}

export function manualStrategy(options: ManualOptions): Strategy<ManualDetection> {
  const { id, install } = options;
  return {
    id,
    persistent: false,
    async detect(ctx, detect) {
      const owner = options.owner(detect);
      if (!owner) return undefined;
      const pidFile = detect.path.join(detect.home, '.stigmer', 'llm.pid');
      // Never a relative path: with HOME unset or relative it would name a file in the current folder.
      const stigmerPid = detect.home && detect.path.isAbsolute(detect.home) ? (await ctx.fs.readText(pidFile).catch(() => undefined))?.trim() : undefined;
      const startedByStigmer = stigmerPid === String(owner.pid);
      const configuredHost = await options.readOllamaHost?.(ctx, owner.pid);
      const description = manualDescription(owner, startedByStigmer);
      return {
        strategy: id,
        description,
        process: owner,
        startedByStigmer,
        serverPid: owner.pid,
        configuredHost,
        configuredIn: configuredHost === undefined ? undefined : `the environment of pid ${owner.pid}`,
        problems: manualProblems(description, startedByStigmer),
      };
    },
    plan(detection: ManualDetection, request: PlanRequest): Plan {
      const value = formatBindAddress(request.target);
      const fix = detection.startedByStigmer
        ? `Stop Stigmer's Ollama (kill ${detection.process.pid}) and start Stigmer again from a shell where OLLAMA_HOST=${value} is exported, or install Ollama as a service (${install}) and re-run: npx stigmer-setup`
        : `Stop it (kill ${detection.process.pid}) and start it again with: OLLAMA_HOST=${value} ollama serve — or install Ollama as a service (${install}) and re-run: npx stigmer-setup`;
      return {
        strategy: id,
        target: request.target,
        changes: [],
        summary: `Ollama runs as ${detection.description}; no configuration file decides where it listens, so no change stigmer-setup makes would outlast it.`,
        blockers: [{ message: `Ollama runs as ${detection.description}, which can't be reconfigured persistently.`, fix }],
        warnings: [],
      };
    },
    commands: (detection, port) => ({
      start: `OLLAMA_HOST=0.0.0.0:${port} ollama serve`,
      restart: `kill ${detection.process.pid}, then: OLLAMA_HOST=0.0.0.0:${port} ollama serve`,
      logs: detection.startedByStigmer ? '~/.stigmer/logs/llm.log' : 'the terminal where `ollama serve` runs',
      widen: `Stop it (kill ${detection.process.pid}), then start it with: OLLAMA_HOST=0.0.0.0:${port} ollama serve`,
      stop: `kill ${detection.process.pid}`,
      // The pull's proxy fix restarts the server with the bind it has now: widening it here would
      // undo a loopback-only setup (and clash with the relay's socket on the gateway address).
      proxy: `kill ${detection.process.pid}, then: HTTPS_PROXY=http://PROXY:PORT ${currentBind(detection.configuredHost)}ollama serve`,
    }),
  };
}

/** `OLLAMA_HOST=<value> ` as the server runs with it now, quoted for sh; nothing when unset or unquotable. */
function currentBind(configuredHost: string | undefined): string {
  if (configuredHost === undefined) return '';
  try {
    return `OLLAMA_HOST=${quotePosix(configuredHost)} `;
  } catch {
    // A control character (read from the process's environment) can't be pasted: leave it out
    // rather than print a command that does something else.
    return '';
  }
}
