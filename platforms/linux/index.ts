/**
 * Linux: which way Ollama is installed decides what to change. The order matters — a systemd unit
 * or a snap may also show up as a listening process, and the managed form is the one to configure.
 */
import type { Context } from '../../scripts/context.ts';
import type { ApplyOutcome, DetectOptions, Detection, Plan, PlanRequest, Strategy } from '../types.ts';
import { manualStrategy } from './manual.ts';
import { snapStrategy } from './snap.ts';
import { systemdStrategy } from './systemd.ts';

/** Nothing found: no unit, no snap, nobody listening. */
export const notInstalledStrategy: Strategy = {
  id: 'linux-none',
  async detect(): Promise<Detection> {
    return { strategy: 'linux-none', description: 'no Ollama service, snap or process found' };
  },
  plan(_detection: Detection, request: PlanRequest): Plan {
    return {
      strategy: 'linux-none',
      target: request.target,
      changes: [],
      summary: 'Ollama does not seem to be installed: there is no ollama.service, no ollama snap, and nothing listens on the port.',
      blockers: [
        {
          message: 'No Ollama installation was found (no systemd unit ollama.service, no snap, no running `ollama serve`).',
          fix: 'Install Ollama with its official script, which sets up ollama.service: curl -fsSL https://ollama.com/install.sh | sh — then re-run: npx stigmer-setup',
        },
      ],
      warnings: [],
      restart: [],
      reverts: [],
    };
  },
  async apply(): Promise<ApplyOutcome> {
    return { ok: true, applied: [], rolledBack: false };
  },
};

// Each strategy's plan() takes its own Detection type; detectLinux always returns a strategy
// together with the detection it produced, so the pair is consistent even though the list is not
// typed per element.
const ORDER: Strategy<any>[] = [systemdStrategy, snapStrategy, manualStrategy];

export async function detectLinux(ctx: Context, options: DetectOptions): Promise<{ strategy: Strategy<any>; detection: Detection }> {
  for (const strategy of ORDER) {
    const detection = await strategy.detect(ctx, options);
    if (detection) return { strategy, detection };
  }
  return { strategy: notInstalledStrategy, detection: await notInstalledStrategy.detect(ctx, options) as Detection };
}
