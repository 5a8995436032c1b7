/**
 * The least change that works. Before asking a strategy for a change, look at whether one is needed
 * at all: a container that already reaches Ollama, a runner on the host network, or an Ollama that
 * already listens beyond loopback means there is nothing to widen.
 */
import type { Plan, PlanRequest } from '../platforms/types.ts';
import type { Facts } from './facts.ts';
import { describeListeners, widestScope } from './listeners.ts';

function nothingToDo(facts: Facts, summary: string): Plan {
  return { strategy: facts.detection?.strategy ?? 'none', changes: [], summary, blockers: [], warnings: [], restart: [], reverts: [] };
}

export function decidePlan(facts: Facts, request: PlanRequest): Plan {
  if (!facts.strategy || !facts.detection) throw new Error(`no strategy for ${facts.platform}`);
  // An explicit --host is the user's decision: only the strategy's own "already set" test applies.
  if (!request.explicitHost) {
    const probe = facts.containerProbe;
    if (!('skipped' in probe) && probe.outcome === 'ok') {
      return nothingToDo(facts, `${probe.via} already reaches Ollama at ${probe.url}; nothing needs to change.`);
    }
    if (facts.container?.networkMode === 'host') {
      return nothingToDo(facts, `${facts.containerName} uses --network host (Stigmer's Linux default), so it reaches Ollama on 127.0.0.1 as it is; nothing needs to change.`);
    }
    const scope = facts.listeners ? widestScope(facts.listeners) : undefined;
    if ('skipped' in probe && (scope === 'wildcard' || scope === 'specific')) {
      return nothingToDo(facts, `Ollama already listens on ${describeListeners(facts.listeners ?? [])}, where containers can reach it; nothing needs to change.`);
    }
  }
  return facts.strategy.plan(facts.detection, request);
}
