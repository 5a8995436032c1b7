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
 *
 * The plan follows the consumer first (scripts/stigmer-flavour.ts): a native agent-runner, or a
 * runner on the host's network, reaches 127.0.0.1 as it is, so for Stigmer nothing changes and the
 * bind stays on loopback; only a bridged runner (there now, or to come) or no Stigmer at all lets
 * the probe decide. An explicit --host (or --relay) is the user's own decision and overrides that.
 */
import type { Plan, PlanRequest } from '../platforms/types.ts';
import type { ContainerProbeResult } from './container-probe.ts';
import type { Facts } from './facts.ts';
import { describeListeners, widestScope } from './listeners.ts';
import { bindScope, formatBindAddress, parseOllamaHost } from './ollama-host.ts';
import { describeFlavour, needsBridgeRoute, type StigmerFlavour } from './stigmer-flavour.ts';

export interface ReachDecision {
  /** Setup would change how Ollama listens. */
  changeNeeded: boolean;
  /** Why nothing needs to change, when it doesn't. */
  reason: string;
  /**
   * Who the decision is for, when that is not Stigmer's runner: with no Stigmer found, the probe
   * speaks for containers in general, and the plan says so whichever way it goes.
   */
  consumer?: string;
}

/** The flavour gatherFacts found; for hand-made facts without one, what the container alone says. */
export function stigmerFlavour(facts: Facts): StigmerFlavour | undefined {
  if (facts.flavour) return facts.flavour;
  const container = facts.container;
  if (!container) return undefined;
  return { kind: 'runner-container', network: container.networkMode === 'host' ? 'host' : 'bridge', networkMode: container.networkMode, running: container.running, evidence: [] };
}

/**
 * Whether a failed route from a bridge container is a failure (doctor): only when a consumer that
 * needs it exists or will. Facts that don't say which Stigmer this is count as needing it.
 */
export function bridgeRouteNeeded(facts: Facts): boolean {
  const flavour = stigmerFlavour(facts);
  return flavour === undefined || needsBridgeRoute(flavour) || !hostNetworkIsHostLoopback(flavour, facts) || runnerOwnRequestFailed(facts);
}

/**
 * The probe ran inside the running container itself (the runner, or the one --container names)
 * and failed: that is the consumer's own failure, whatever its network says it should reach.
 */
function runnerOwnRequestFailed(facts: Facts): boolean {
  const probe = concludedProbe(facts);
  return facts.container?.running === true && probe !== undefined && probe.outcome !== 'ok' && probe.outcome !== 'error';
}

/**
 * `--network host` shares the host's loopback only where the engine runs on this kernel as root
 * (or Podman, which has no VM on Linux). Docker Desktop for Linux (and under WSL) runs containers
 * in a VM, so "host" is the VM's network (stigmer.md §5); rootless Docker's "host" is RootlessKit's
 * namespace. There a host-network runner is no proof of anything: the probe decides.
 */
function hostNetworkIsHostLoopback(flavour: StigmerFlavour, facts: Facts): boolean {
  if (!('network' in flavour) || flavour.network !== 'host') return true;
  const docker = facts.docker;
  if (docker.state !== 'ok') return true;
  return docker.runtime === 'podman' || (docker.runtime === 'native' && !docker.rootless);
}

/** Stigmer reaches a loopback Ollama as it is: a native runner, or one on the host's network. */
export function stigmerNeedsNothing(facts: Facts): StigmerFlavour | undefined {
  const flavour = stigmerFlavour(facts);
  return flavour && flavour.kind !== 'none' && !needsBridgeRoute(flavour) && hostNetworkIsHostLoopback(flavour, facts) && !runnerOwnRequestFailed(facts) ? flavour : undefined;
}

/**
 * What a loopback Ollama means for other containers (Open WebUI, a compose stack), in the words
 * and flags of this platform: the bridge-only relay where the platform has one (Linux), everywhere an explicit --host.
 */
export function otherContainersAdvice(facts: Facts): string {
  const wide = `npx stigmer-setup --host 0.0.0.0:${facts.port}`;
  const probe = concludedProbe(facts);
  if (probe?.outcome === 'ok') return `Containers on a Docker bridge reach it too here: ${probe.via} got an answer at ${probe.url}.`;
  const scope = facts.listeners ? widestScope(facts.listeners) : undefined;
  if (facts.listeners && scope && scope !== 'loopback') return `Ollama listens on ${describeListeners(facts.listeners)}, beyond loopback, and that stays as it is.`;
  // The relay exists where the platform has one (Linux); everywhere else, only a wider bind.
  const options = facts.support.relay ? `\`npx stigmer-setup --relay\` (a relay for Docker bridges only; Ollama stays on loopback) or \`${wide}\` (also exposes Ollama to your network)` : `\`${wide}\` (also exposes Ollama to your network)`;
  return `A container on a Docker bridge (Open WebUI, a compose stack) can't reach a loopback-only Ollama; if one needs to, run ${options}.`;
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

  const flavour = stigmerFlavour(facts);
  const satisfied = stigmerNeedsNothing(facts);
  if (satisfied) {
    const how =
      satisfied.kind === 'native'
        ? `Stigmer runs ${describeFlavour(satisfied)}: it reaches Ollama on 127.0.0.1 as it is`
        : satisfied.kind === 'runner-container'
          ? `${facts.containerName} uses --network host (Stigmer's Linux default), so it reaches Ollama on 127.0.0.1 as it is`
          : `Stigmer here is ${describeFlavour(satisfied)}, so that runner will reach Ollama on 127.0.0.1 as it is`;
    // Where Ollama already listens beyond loopback, that stays as it is too: nothing is narrowed.
    return { changeNeeded: false, reason: `${how}; nothing needs to change for Stigmer. ${otherContainersAdvice(facts)}` };
  }
  const consumer = flavour?.kind === 'none' ? 'No Stigmer was found here (no runner container, no `stigmer` on PATH, no ~/.stigmer), so this decision is about containers in general: whether one on a Docker bridge reaches Ollama.' : undefined;
  const decided = (decision: ReachDecision): ReachDecision => (consumer ? { ...decision, consumer, reason: decision.reason && `${consumer} ${decision.reason}` } : decision);
  return decided(probeDecision(facts, { lasting, scope, probe, listeners }));
}

function probeDecision(
  facts: Facts,
  { lasting, scope, probe, listeners }: { lasting: boolean; scope: ReturnType<typeof widestScope>; probe: ContainerProbeResult | undefined; listeners: Facts['listeners'] },
): ReachDecision {
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
  // No Stigmer found: the plan's summary says who the change is for (reachDecision's consumer).
  // It is context, not a warning: nothing is wrong with a machine that has no Stigmer yet.
  const forConsumer = (plan: Plan): Plan => (decision.consumer && plan.changes.length > 0 ? { ...plan, summary: `${plan.summary} ${decision.consumer}` } : plan);
  if (relay?.preflight.ok && facts.support.relay) {
    return forConsumer(facts.support.relay.plan(relay, { port: facts.port, elevate: request.elevate, listeners: facts.listeners, firewall: facts.firewall, detection: facts.detection }));
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
  const own = forConsumer(facts.strategy.plan(facts.detection, withListening));
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
