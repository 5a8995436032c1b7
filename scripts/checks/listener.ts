/** ollama.listener: what the Ollama port is bound to (F1: loopback-only is the classic failure). */
import { describeListeners, describeProcess, widestScope, type Listener } from '../listeners.ts';
import { concludedProbe, otherContainersAdvice, stigmerNeedsNothing } from '../plan.ts';
import { describeFlavour } from '../stigmer-flavour.ts';
import { installationCommands, wideningNeeded, widenBindFix } from './fixes.ts';
import type { Check } from './types.ts';

function owner(listeners: Listener[]): string {
  const process = listeners.find((listener) => listener.owner)?.owner;
  return process ? ` (${describeProcess(process)})` : '';
}

export const LOOPBACK_WHY = "A container's traffic arrives on the Docker bridge, not on the host's loopback, so a 127.0.0.1 listener refuses it.";

export const listenerCheck: Check = {
  id: 'ollama.listener',
  diagnose(facts) {
    const listeners = facts.listeners;
    if (!listeners) return { status: 'skip', message: `Reading listeners is not implemented on ${facts.platform} yet.` };
    const scope = widestScope(listeners);
    if (!scope) {
      return {
        status: 'fail',
        message: `Nothing listens on port ${facts.port}.`,
        why: 'Ollama is not running, or it listens on another port, so nothing can use it.',
        fix: installationCommands(facts).start,
      };
    }
    const where = `${describeListeners(listeners)}${owner(listeners)}`;
    if (scope === 'wildcard') return { status: 'ok', message: `Ollama listens on ${where}: all interfaces.` };
    if (scope === 'specific') return { status: 'ok', message: `Ollama listens on ${where}.` };
    // Stigmer reaches loopback as it is (a native runner, or one on the host's network): setup
    // would change nothing, so this must not send anyone there.
    const satisfied = stigmerNeedsNothing(facts);
    if (satisfied?.kind === 'runner-container') {
      return { status: 'ok', message: `Ollama listens on ${where} only; that is enough because ${facts.containerName} shares the host's network (--network host).` };
    }
    if (satisfied) {
      return { status: 'ok', message: `Ollama listens on ${where} only; that is enough for Stigmer, which runs ${describeFlavour({ ...satisfied, evidence: [] })}. ${otherContainersAdvice(facts)}` };
    }
    // Loopback-only is the point of the relay: its socket on the bridge gateway carries containers
    // (ollama.relay reports whether it works).
    const relay = facts.relay?.installed;
    if (relay?.ours && relay.listen && relay.socketState === 'active') {
      return { status: 'ok', message: `Ollama listens on ${where} only; stigmer-setup's relay on ${relay.listen.host}:${relay.listen.port} forwards Docker bridge containers to it.` };
    }
    const probe = concludedProbe(facts);
    if (!wideningNeeded(facts) && probe?.outcome === 'ok') {
      return { status: 'ok', message: `Ollama listens on ${where} only; that is enough here: ${probe.via} reaches it through the container runtime's forwarding to the host's loopback.` };
    }
    // With a container to probe from, the probe decides; without one, loopback-only is the failure.
    return { status: probe ? 'warn' : 'fail', message: `Ollama listens on ${where} only: loopback.`, why: LOOPBACK_WHY, fix: widenBindFix(facts) };
  },
};
