/** No Ollama found: no change can help, so the plan blocks with the official install command. */
import type { Detection, Plan, PlanRequest, Strategy } from './types.ts';

export function notInstalled(id: string, where: string, install: string): Strategy {
  return {
    id,
    persistent: false,
    async detect(): Promise<Detection> {
      return { strategy: id, description: `no Ollama found (${where})` };
    },
    plan(_detection: Detection, request: PlanRequest): Plan {
      return {
        strategy: id,
        target: request.target,
        changes: [],
        summary: `Ollama does not seem to be installed: ${where}.`,
        blockers: [{ message: `No Ollama installation was found (${where}).`, fix: `Install Ollama: ${install} — then re-run: npx stigmer-setup` }],
        warnings: [],
      };
    },
    commands: () => ({ start: install, restart: install, logs: install, widen: install, stop: install }),
  };
}
