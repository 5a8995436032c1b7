/**
 * The least change that works. Before asking a strategy for a change, look at whether one is needed
 * at all: a container that already reaches Ollama, a runner on the host network, or an Ollama that
 * already listens beyond loopback means there is nothing to widen.
 */
import type { Plan, PlanRequest } from '../platforms/types.ts';
import type { Facts } from './facts.ts';
import { describeListeners, widestScope } from './listeners.ts';
import { bindScope, parseOllamaHost } from './ollama-host.ts';

function nothingToDo(facts: Facts, summary: string): Plan {
  return { strategy: facts.detection?.strategy ?? 'none', changes: [], summary, blockers: [], warnings: [], restart: [], reverts: [] };
}

export function decidePlan(facts: Facts, request: PlanRequest): Plan {
  if (!facts.strategy || !facts.detection) throw new Error(`no strategy for ${facts.platform}`);
  const scope = facts.listeners ? widestScope(facts.listeners) : undefined;
  const withListening: PlanRequest = { ...request, listening: facts.listeners ? scope ?? 'none' : undefined };
  // An explicit --host is the user's decision: only the strategy's own "already set" test applies.
  if (request.explicitHost) return facts.strategy.plan(facts.detection, withListening);

  const probe = facts.containerProbe;
  if (!('skipped' in probe) && probe.outcome === 'ok') {
    return nothingToDo(facts, `${probe.via} already reaches Ollama at ${probe.url}; nothing needs to change.`);
  }
  if (facts.container?.networkMode === 'host') {
    return nothingToDo(facts, `${facts.containerName} uses --network host (Stigmer's Linux default), so it reaches Ollama on 127.0.0.1 as it is; nothing needs to change.`);
  }
  // Beyond loopback already, and lasting (the service starts it that way, or nothing could make a
  // hand-started process last anyway): widening the bind can't fix a name, firewall or proxy problem.
  const configured = facts.detection.configuredHost;
  const configuredScope = bindScope(parseOllamaHost(configured).host);
  const lasting = facts.detection.strategy === 'linux-manual' || configuredScope === scope;
  const bindIsFine = scope === 'wildcard' || (scope === 'specific' && ('skipped' in probe || probe.outcome !== 'refused'));
  if (lasting && bindIsFine) {
    const problem = 'skipped' in probe ? '' : ' The container still fails for another reason: see container.probe below.';
    return nothingToDo(facts, `Ollama already listens on ${describeListeners(facts.listeners ?? [])}, where containers can reach it; nothing needs to change.${problem}`);
  }
  return facts.strategy.plan(facts.detection, withListening);
}
