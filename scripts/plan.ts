/**
 * The least change that works. Whether a change is needed at all is decided by a probe from a
 * container whenever one can run. Runtimes often forward host.docker.internal to the host's
 * loopback (Colima/Lima do; Docker Desktop's current networking is closed source; Podman machine
 * varies by version; Rancher Desktop on Windows depends on its networking mode:
 * container-runtimes.md), and there a loopback-only Ollama already works; binding 0.0.0.0 would
 * only widen its exposure. No table decides: the probe does.
 *
 * The same decision tells the checks whether to recommend setup, so `doctor` never sends someone
 * to a setup that then says "nothing to do".
 */
import type { Plan, PlanRequest } from '../platforms/types.ts';
import type { ContainerProbeResult } from './container-probe.ts';
import type { Facts } from './facts.ts';
import { describeListeners, widestScope } from './listeners.ts';
import { bindScope, formatBindAddress, parseOllamaHost } from './ollama-host.ts';

export interface ReachDecision {
  /** Setup would change how Ollama listens. */
  changeNeeded: boolean;
  /** Why nothing needs to change, when it doesn't. */
  reason: string;
}

/** The container probe, when one ran to a conclusion. */
export function concludedProbe(facts: Facts): ContainerProbeResult | undefined {
  const probe = facts.containerProbe;
  return 'skipped' in probe || probe.outcome === 'incomplete' ? undefined : probe;
}

/** A loopback-bound Ollama answered a foreign Host header with 403: the route ends at host loopback. */
export function loopbackRouteProven(facts: Facts): boolean {
  return concludedProbe(facts)?.foreignHostStatus === 403;
}

export function reachDecision(facts: Facts): ReachDecision {
  const listeners = facts.listeners;
  const scope = listeners ? widestScope(listeners) : undefined;
  const configuredScope = bindScope(parseOllamaHost(facts.detection?.configuredHost).host);
  // What runs now is what the next start brings back (or nothing could make it last anyway).
  const lasting = facts.strategy?.persistent === false || scope === undefined || configuredScope === scope;
  const probe = concludedProbe(facts);

  if (facts.container?.networkMode === 'host') {
    return { changeNeeded: false, reason: `${facts.containerName} uses --network host (Stigmer's Linux default), so it reaches Ollama on 127.0.0.1 as it is; nothing needs to change.` };
  }
  if (probe?.outcome === 'ok') {
    const route = loopbackRouteProven(facts)
      ? ` It gets there through the container runtime's forwarding to the host's loopback (a foreign Host header gets 403), so binding 0.0.0.0 would only expose Ollama to your network.`
      : '';
    // Reached only because of a bind the service won't bring back: on a native engine the next
    // restart breaks it, so make it last. Elsewhere loopback is forwarded, and a restart is harmless.
    const runtime = facts.docker.state === 'ok' ? facts.docker.runtime : undefined;
    if (lasting || runtime !== 'native') {
      return { changeNeeded: false, reason: `${probe.via} already reaches Ollama at ${probe.url}; nothing needs to change.${route}` };
    }
    return { changeNeeded: true, reason: '' };
  }
  // Beyond loopback already, and lasting: widening the bind can't fix a name, firewall or proxy problem.
  const bindIsFine = scope === 'wildcard' || (scope === 'specific' && probe?.outcome !== 'refused');
  if (lasting && bindIsFine && listeners && listeners.length > 0) {
    const problem = probe ? ' The container still fails for another reason: see container.probe below.' : '';
    return { changeNeeded: false, reason: `Ollama already listens on ${describeListeners(listeners)}, where containers can reach it; nothing needs to change.${problem}` };
  }
  return { changeNeeded: true, reason: '' };
}

export function decidePlan(facts: Facts, request: PlanRequest): Plan {
  if (!facts.strategy || !facts.detection) throw new Error(`no strategy for ${facts.platform}`);
  const scope = facts.listeners ? widestScope(facts.listeners) : undefined;
  const withListening: PlanRequest = { ...request, listening: facts.listeners ? scope ?? 'none' : undefined };
  const relay = facts.relay;
  // An explicit --host is the user's decision: only the strategy's own "already set" test applies,
  // after our relay, if it holds the address that bind needs, is removed.
  if (request.explicitHost) return withRelayRemoved(facts.strategy.plan(facts.detection, withListening), facts, request);
  const decision = reachDecision(facts);
  if (!decision.changeNeeded && !request.relay) {
    return { strategy: facts.detection.strategy, changes: [], summary: decision.reason, blockers: [], warnings: [] };
  }
  if (relay?.preflight.ok && facts.support.relay) {
    return facts.support.relay.plan(relay, { port: facts.port, elevate: request.elevate, listeners: facts.listeners, firewall: facts.firewall, detection: facts.detection });
  }
  const noRelay = relay && !relay.preflight.ok ? relay.preflight.reason : relay ? undefined : 'the relay exists on native Linux only';
  if (request.relay) {
    // Ollama beyond loopback already (an earlier --host 0.0.0.0): the way to the relay is back to
    // loopback first; suggesting the wide bind again would name the state the user wants to leave.
    const widened = scope === 'wildcard' || scope === 'specific';
    const fix = widened
      ? `Put Ollama back on loopback first (npx stigmer-setup --host 127.0.0.1:${facts.port}, or npx stigmer-setup undo if setup widened it), then run setup --relay again`
      : `Fix that and run setup --relay again, or let containers in with a wider bind: npx stigmer-setup --host 0.0.0.0:${facts.port}`;
    return {
      strategy: facts.detection.strategy,
      changes: [],
      summary: `--relay asks for the bridge-only relay, but it can't be set up here: ${noRelay}.`,
      blockers: [{ message: `No bridge-only relay: ${noRelay}.`, fix }],
      warnings: [],
    };
  }
  const own = facts.strategy.plan(facts.detection, withListening);
  // Today's plan (after removing our relay, if it holds the address that plan binds), and why
  // not the narrower relay (only where the relay exists at all).
  const plan = own.changes.length > 0 ? withRelayRemoved(own, facts, request) : own;
  if (relay && noRelay && plan.changes.length > 0) return { ...plan, warnings: [...plan.warnings, `No bridge-only relay instead: ${noRelay}.`] };
  return plan;
}

/**
 * --host with a wildcard or the gateway address, while our relay holds <gateway>:<port>: Linux
 * refuses that bind next to the relay's socket, so the plan removes the relay first.
 */
function withRelayRemoved(plan: Plan, facts: Facts, request: PlanRequest): Plan {
  const relay = facts.relay;
  const removal = relay && plan.blockers.length === 0 ? facts.support.relay?.removal(relay, { elevate: request.elevate, target: request.target }) : undefined;
  if (!relay || !removal) return plan;
  if (removal.blocker) return { ...plan, changes: [], blockers: [...plan.blockers, removal.blocker] };
  const listen = relay.installed?.listen;
  const summary = `Remove the bridge-only relay (its socket on ${listen ? formatBindAddress(listen) : 'the gateway'} would keep Ollama from binding ${formatBindAddress(request.target)}), then: ${plan.summary}`;
  return { ...plan, changes: [...removal.changes, ...plan.changes], summary };
}
