/**
 * host.firewall: does the host's firewall let container traffic reach Ollama's port? (F3.) A
 * firewall that drops the packets shows as a timeout from the container, never as "refused".
 * The rules are read (ufw, firewalld, iptables on Linux) and judged for the subnets Docker's
 * bridge networks actually use, so the fix names the right subnet, not a guess.
 */
import { concludedProbe } from '../plan.ts';
import type { Facts } from '../facts.ts';
import { routeFinding } from './fixes.ts';
import type { Check, Finding } from './types.ts';

export const firewallCheck: Check = {
  id: 'host.firewall',
  diagnose(facts) {
    // Only a consumer that needs the bridge route makes its failure a failure (routeFinding).
    return routeFinding(facts, diagnoseFirewall(facts));
  },
};

function diagnoseFirewall(facts: Facts): Omit<Finding, 'id'> {
  {
    const probe = concludedProbe(facts);
    if (probe?.outcome === 'ok') return { status: 'ok', message: `${probe.via} reaches Ollama, so no firewall is in the way.` };
    const timedOut = probe?.outcome === 'timeout';
    const firewall = facts.firewall;
    if (!firewall) {
      if (timedOut) {
        return {
          status: 'fail',
          message: `${probe.via} timed out reaching Ollama: something drops the packets, most likely a firewall.`,
          why: 'A refusal would be instant; silence means the traffic is dropped on the way (F3).',
          fix: facts.support.commands.firewallAllow(facts.port),
        };
      }
      return { status: 'skip', message: facts.docker.state === 'ok' ? `Firewall rules are not read on ${facts.platform}; no probe timed out.` : 'No container engine answers, so there is no container traffic to judge.' };
    }
    const subnets = firewall.subnets.join(', ') || 'the Docker bridge';
    if (firewall.verdict === 'blocked') {
      return {
        status: timedOut || !probe ? 'fail' : 'warn',
        message: `${timedOut ? `${probe.via} timed out: ` : ''}${firewall.by ?? 'the firewall'} drops TCP from ${subnets} to port ${facts.port}: ${firewall.rule ?? 'its default policy'}.`,
        why: 'Containers come from those subnets; their connections to Ollama time out (F3).',
        fix: firewall.fix ?? facts.support.commands.firewallAllow(facts.port),
      };
    }
    if (firewall.verdict === 'allowed') {
      if (timedOut) {
        return {
          status: 'fail',
          message: `${probe.via} timed out, although ${firewall.by ?? 'the firewall rules read'} let${firewall.by ? 's' : ''} ${subnets} reach port ${facts.port}.`,
          why: 'Something else drops the packets: an nftables table iptables does not show, or a firewall outside this machine (F3).',
          fix: `sudo nft list ruleset | grep -n -e 'dport ${facts.port}' -e 'policy drop'   # then: ${facts.support.commands.firewallAllow(facts.port)}`,
        };
      }
      return { status: 'ok', message: `${firewall.by ? `${firewall.by} lets` : 'The firewall lets'} ${subnets} reach port ${facts.port}${firewall.rule ? ` (${firewall.rule})` : ''}.` };
    }
    const unread = firewall.unreadable.length ? ` (${firewall.unreadable.join('; ')})` : '';
    if (timedOut) {
      return {
        status: 'fail',
        message: `${probe.via} timed out reaching Ollama, and the firewall's rules could not be judged${unread}.`,
        why: 'A refusal would be instant; silence means the traffic is dropped on the way (F3).',
        fix: `sudo npx stigmer-setup doctor   # reads the rules as root; or allow the bridge: ${facts.support.commands.firewallAllow(facts.port)}`,
      };
    }
    if (firewall.unreadable.length) return { status: 'skip', message: `The firewall's rules could not be read${unread}; no probe timed out.`, fix: 'sudo npx stigmer-setup doctor' };
    return { status: 'ok', message: `No firewall rule on this machine stops ${subnets} from reaching port ${facts.port}.` };
  }
}
