/**
 * container.probe — the probe from inside a container, classified so each outcome names its cause
 * (failure catalogue F1, F2, F3, F8, F12, F13) and the fix for it.
 */
import { describeListeners, widestScope } from '../listeners.ts';
import { bindScope, urlEndpoint, type BindAddress } from '../ollama-host.ts';
import { oneLine } from '../text.ts';
import { ADD_HOST_FIX, aliasCheck } from './alias.ts';
import { installationCommands, routeFinding, widenBindFix } from './fixes.ts';
import { LOOPBACK_WHY } from './listener.ts';
import { relayLogsCommand, shown, shownAddress } from './relay.ts';
import type { Check, Finding } from './types.ts';

const urlHost = (url: string): string => urlEndpoint(url)?.host ?? '';

/** A route that fails is a failure only for a consumer that needs it: see routeFinding. */
export const containerProbeCheck: Check = {
  id: 'container.probe',
  diagnose(facts) {
    return routeFinding(facts, diagnoseProbe(facts));
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
        const relay = facts.relay?.installed;
        const viaRelay = relay?.listen !== undefined && probe.address === relay.listen.host;
        const route =
          probe.foreignHostStatus !== 403
            ? ''
            : viaRelay
              ? ` It arrives through the stigmer-setup relay on ${shownAddress(relay.listen as BindAddress)} at a loopback-only Ollama (a foreign Host header gets 403).`
              : " It arrives through the runtime's forwarding to the host's loopback (a foreign Host header gets 403).";
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
      case 'reset': {
        // Through our relay a reset is its answer when nothing is behind it (relay-and-pull.md A1):
        // systemd-socket-proxyd accepts, fails to connect to Ollama, and closes.
        const relay = facts.relay?.installed;
        const viaRelay = relay !== undefined && (probe.address === undefined || relay.listen === undefined || probe.address === relay.listen.host);
        if (relay && viaRelay) {
          const route = `${relay.listen ? shownAddress(relay.listen) : 'the relay'} → ${relay.target ? shownAddress(relay.target) : '127.0.0.1'}`;
          if (facts.hostProbe.ok) {
            return {
              status: 'fail',
              message: `${from}: connection reset: the relay (${route}) accepted, but could not reach Ollama, which answers at ${facts.hostProbe.url}.`,
              why: 'The relay resets every connection it cannot forward: it dials another address or port than the one Ollama listens on, or its service is not allowed to.',
              fix: `${relayLogsCommand(facts, relay)}   # "Failed to connect to remote host" names what it dials`,
            };
          }
          return {
            status: 'fail',
            message: `${from}: connection reset: Ollama is not running behind the relay (${route}).`,
            why: 'The relay accepts the connection for Ollama and, with nothing to forward to, resets it: a container sees ECONNRESET, not "connection refused".',
            fix: installationCommands(facts).start,
          };
        }
        return {
          status: 'fail',
          message: `${from}: connection reset${probe.address ? ` by ${probe.address}:${port}` : ''}: something accepted the connection and dropped it without an answer.`,
          why: 'A port forwarder or proxy whose backend is down, or a server that crashed while answering, resets the connection; Ollama itself answers or refuses.',
          fix: `Check what listens on port ${port}: ${facts.support.commands.portOwner(Number(port))}`,
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
        if (probe.status === 403 && facts.relay?.installed) {
          // Behind the relay Ollama stays on loopback, so its Host guard stays on: only the names it
          // allows pass (relay-and-pull.md A4); a compose alias mapped to host-gateway does not.
          const gateway = facts.relay.gateway?.address ?? facts.relay.installed.listen?.host;
          return {
            status: 'fail',
            message: `${from}: HTTP 403: Ollama rejected the Host header "${urlHost(probe.url)}" that came through the relay.`,
            why: 'Behind the relay Ollama stays on loopback, where it accepts only Host names like localhost, *.internal or an IP address; a custom alias such as `ollama` (compose extra_hosts "ollama:host-gateway") gets 403 (F13).',
            fix: `Use OLLAMA_BASE_URL=http://host.docker.internal:${port}${gateway ? ` or http://${shown(gateway)}:${port}` : ''} in ${facts.containerName}, not a custom alias.`,
          };
        }
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
