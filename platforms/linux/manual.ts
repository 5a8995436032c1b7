/** Linux: a plain `ollama serve` process owns the port (not a service, not a container's proxy). */
import type { ProcessInfo } from '../../scripts/listeners.ts';
import { manualStrategy as plainProcessStrategy } from '../manual.ts';
import type { DetectOptions } from '../types.ts';
import { isDockerProxy, isUserUnit } from './elsewhere.ts';

export { manualProblems, type ManualDetection } from '../manual.ts';

/** The process that owns the port, if it is a plain process (not a service, not a container's proxy). */
export function plainOwner(options: Pick<DetectOptions, 'listeners'>): ProcessInfo | undefined {
  // PID 1 holds the listening sockets of socket units (stigmer-setup's relay on the bridge
  // gateway among them): systemd itself is never a hand-started Ollama.
  const owner = options.listeners?.find((listener) => listener.owner && listener.owner.pid !== 1)?.owner;
  if (!owner || isDockerProxy(owner) || isUserUnit(owner)) return undefined;
  // A service-managed process belongs to the systemd or snap strategy.
  if (owner.unit && owner.unit.endsWith('.service')) return undefined;
  return owner;
}

export const manualStrategy = plainProcessStrategy({
  id: 'linux-manual',
  owner: plainOwner,
  // /proc/PID/environ is readable for our own processes (and all of them as root).
  async readOllamaHost(ctx, pid) {
    const environ = (await ctx.fs.readText(`/proc/${pid}/environ`, { follow: true }).catch(() => undefined)) ?? '';
    return environ.split('\0').find((entry) => entry.startsWith('OLLAMA_HOST='))?.slice('OLLAMA_HOST='.length);
  },
  install: 'curl -fsSL https://ollama.com/install.sh | sh',
});
