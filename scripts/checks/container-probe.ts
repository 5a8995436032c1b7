/**
 * container.probe — the probe from inside a container, classified so each outcome names its cause
 * (failure catalogue F1, F2, F3, F8, F12, F13) and the fix for it.
 */
import { describeListeners, widestScope } from '../listeners.ts';
import { bindScope, urlEndpoint } from '../ollama-host.ts';
import { oneLine } from '../text.ts';
import { ADD_HOST_FIX, aliasCheck } from './alias.ts';
import { installationCommands, widenBindFix } from './fixes.ts';
import { LOOPBACK_WHY } from './listener.ts';
import { bridgeRouteNeeded, otherContainersAdvice, stigmerFlavour, stigmerNeedsNothing } from '../plan.ts';
import { describeFlavour } from '../stigmer-flavour.ts';
import type { Check, Finding } from './types.ts';

const urlHost = (url: string): string => urlEndpoint(url)?.host ?? '';

/**
 * A route that fails is a failure only for a consumer that needs it (bridgeRouteNeeded). For a
 * native Stigmer, a runner on the host's network, or no Stigmer at all, it is a note: what it
 * means for another container, and the command for one that must get in.
 */
export const containerProbeCheck: Check = {
  id: 'container.probe',
  diagnose(facts) {
    const finding = diagnoseProbe(facts);
    if (finding.status !== 'fail' || bridgeRouteNeeded(facts)) return finding;
    const satisfied = stigmerNeedsNothing(facts);
    if (satisfied) {
      return {
        status: 'note',
        message: `${finding.message} Stigmer doesn't need this route: it runs ${describeFlavour({ ...satisfied, evidence: [] })}.`,
        why: otherContainersAdvice(facts),
        // Plain setup would say "nothing to change" for this Stigmer: only an explicit --host (or
        // --relay, in the advice) changes anything, so that is the command.
        fix: finding.fix === widenBindFix(facts) && finding.fix.includes('stigmer-setup') ? `npx stigmer-setup --host 0.0.0.0:${facts.port}   # exposes Ollama to your network too` : finding.fix,
      };
    }
    const none = stigmerFlavour(facts)?.kind === 'none';
    return {
      status: 'note',
      message: `${finding.message}${none ? ' No Stigmer was found here, so no consumer needs this route yet.' : ''}`,
      why: `${finding.why ?? ''} This matters for a container on a Docker bridge (Open WebUI, a compose stack, Stigmer's Docker-era runner).`.trim(),
      fix: finding.fix,
    };
  },
};

function diagnoseProbe(facts: Parameters<Check['diagnose']>[0]): Omit<Finding, 'id'> {
  {
    const probe = facts.containerProbe;
    if ('skipped' in probe) return { status: 'skip', message: `No container probe: ${probe.skipped}.`, fix: probe.fix };
    const from = `From ${probe.via}, ${probe.url}`;
    const port = String(urlEndpoint(probe.url)?.port ?? facts.port);
    switch (probe.outcome) {
      case 'ok': {
        const route = probe.foreignHostStatus === 403 ? " It arrives through the runtime's forwarding to the host's loopback (a foreign Host header gets 403)." : '';
        return { status: 'ok', message: `${from} answers: Ollama with ${probe.models ?? 0} model${probe.models === 1 ? '' : 's'}.${route}` };
      }
      case 'incomplete':
        return {
          status: 'warn',
          message: `${from}: the probe did not finish: ${probe.detail ?? 'the docker client timed out'}.`,
          why: 'Docker itself, or a name lookup inside the container, hung. This is not a network timeout, so a firewall is not the suspect, and whether the container reaches Ollama is unknown.',
          fix: `docker exec ${facts.containerName} python3 -c "import socket; print(socket.getaddrinfo('host.docker.internal', ${facts.port}))"   # and check that \`docker ps\` answers quickly`,
        };
      case 'refused': {
        const inBridge = facts.container ? facts.container.networkMode !== 'host' : true;
        if (inBridge && bindScope(urlHost(probe.url)) === 'loopback') {
          return {
            status: 'fail',
            message: `${from}: refused: ${probe.url} points at the container itself, not the host.`,
            why: 'Inside a bridge-networked container, localhost is the container (F8).',
            fix: `Recreate ${facts.containerName} with OLLAMA_BASE_URL=http://host.docker.internal:${facts.port} and --add-host=host.docker.internal:host-gateway`,
          };
        }
        if (facts.listeners && widestScope(facts.listeners) === 'loopback') {
          return {
            status: 'fail',
            message: `${from}: refused: Ollama listens on loopback only (${describeListeners(facts.listeners)}).`,
            why: LOOPBACK_WHY,
            fix: widenBindFix(facts),
          };
        }
        return {
          status: 'fail',
          message: `${from}: refused: nothing listens at ${probe.address ?? urlHost(probe.url)}:${port}.`,
          why: `Ollama is not running there, or ${facts.containerName}'s URL names another port than Ollama's ${facts.port}.`,
          fix: `Check that Ollama runs (curl http://127.0.0.1:${facts.port}/api/version) and that OLLAMA_BASE_URL uses port ${facts.port}.`,
        };
      }
      case 'dns':
        // container.alias explains the name and gives the fix that fits this runtime.
        return {
          status: 'fail',
          message: `${from}: name did not resolve: ${urlHost(probe.url)}.`,
          why: 'The agent-runner cannot find the host by that name (F2); see container.alias.',
          fix: aliasCheck.diagnose(facts).fix ?? `Recreate ${facts.containerName} with ${ADD_HOST_FIX}`,
        };
      case 'timeout':
        return {
          status: 'fail',
          message: `${from}: timed out${probe.address ? ` connecting to ${probe.address}:${port}` : ''}.`,
          why: `A refusal would be instant; silence means a firewall drops traffic from the Docker bridge (F3)${facts.firewall?.verdict === 'blocked' ? `: ${facts.firewall.by} ${facts.firewall.rule ?? ''}`.trimEnd() : ''}; see host.firewall.`,
          fix: (facts.firewall?.verdict === 'blocked' && facts.firewall.fix) || facts.support.commands.firewallAllow(Number(port)),
        };
      case 'http-error':
        if (probe.status === 403) {
          return {
            status: 'fail',
            message: `${from}: HTTP 403: Ollama rejected the Host header "${urlHost(probe.url)}".`,
            why: 'While Ollama listens on loopback it only accepts Host names like localhost or *.internal (F13).',
            fix: `Use OLLAMA_BASE_URL=http://host.docker.internal:${facts.port}, or bind Ollama for containers: ${widenBindFix(facts)}`,
          };
        }
        return { status: 'fail', message: `${from}: HTTP ${probe.status}: ${oneLine(probe.detail ?? '')}`.trim(), why: 'Ollama answered with an error, so the agent-runner cannot use it.', fix: `${installationCommands(facts).logs}   # Ollama's log says why` };
      case 'not-ollama':
        return {
          status: 'fail',
          message: `${from}: non-Ollama answer (HTTP ${probe.status}${probe.detail ? `: ${oneLine(probe.detail, 80)}` : ''}).`,
          why: 'Something else answers at that address, most often an HTTP proxy configured in the container (F12; see container.proxy) or another server on the port (see ollama.conflict).',
          fix: `Set NO_PROXY=${urlHost(probe.url) || 'host.docker.internal'},172.17.0.1 in ${facts.containerName}'s environment, or check what listens on port ${port}: ${facts.support.commands.portOwner(Number(port))}`,
        };
      default:
        return { status: 'fail', message: `${from}: probe error: ${oneLine(probe.detail ?? 'unknown')}.`, why: 'The agent-runner cannot use Ollama.', fix: `docker exec ${facts.containerName} env | grep -i -e ollama -e proxy` };
    }
  }
}
