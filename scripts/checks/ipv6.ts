/**
 * ollama.ipv6: the IPv4/IPv6 mismatches of F9. A container reaches the host over IPv4 (the bridge,
 * host-gateway), and local tools are told to use 127.0.0.1, so an Ollama on [::1] only is out of
 * reach for both; a [::] socket takes IPv4 too unless net.ipv6.bindv6only=1; and an alias that
 * resolves to an IPv6 address first sends clients that try only the first answer (Node 17+) to a
 * family Ollama may not listen on.
 */
import { describeListeners } from '../listeners.ts';
import { concludedProbe } from '../plan.ts';
import { widenBindFix } from './fixes.ts';
import type { Check } from './types.ts';

export const ipv6Check: Check = {
  id: 'ollama.ipv6',
  diagnose(facts) {
    const listeners = facts.listeners;
    if (!listeners) return { status: 'skip', message: `Reading listeners is not implemented on ${facts.platform} yet.` };
    if (listeners.length === 0) return { status: 'skip', message: `Nothing listens on port ${facts.port}.` };
    const probe = concludedProbe(facts);
    const containerReaches = probe?.outcome === 'ok';
    const takesIpv4 = listeners.some((listener) => listener.family === 4) || (listeners.some((listener) => listener.scope === 'wildcard') && facts.bindV6Only !== true);

    if (listeners.every((listener) => listener.family === 6 && listener.scope === 'loopback')) {
      return {
        status: containerReaches ? 'warn' : 'fail',
        message: `Ollama listens on ${describeListeners(listeners)} only: IPv6 loopback.`,
        why: 'Containers reach the host over IPv4, and tools on this machine use 127.0.0.1; both are refused (F9).',
        fix: widenBindFix(facts),
      };
    }
    if (!takesIpv4) {
      // The host probe asked 127.0.0.1: its answer says whether the [::] socket takes IPv4 after all.
      const ipv4Answers = facts.hostProbe.ok && facts.hostProbe.url.includes('//127.0.0.1:');
      if (!ipv4Answers) {
        return {
          status: containerReaches ? 'warn' : 'fail',
          message: `Ollama listens on ${describeListeners(listeners)}, and net.ipv6.bindv6only=1 makes that socket IPv6-only: IPv4 connections are refused.`,
          why: 'Containers reach the host over IPv4 (F9).',
          fix: `npx stigmer-setup --yes --host 0.0.0.0:${facts.port}   # or: sudo sysctl -w net.ipv6.bindv6only=0`,
        };
      }
    }
    const address = probe?.address;
    if (address?.includes(':') && !listeners.some((listener) => listener.family === 6)) {
      return {
        status: 'warn',
        message: `Inside ${probe?.via}, the Ollama URL's name resolves to the IPv6 address ${address} first, but Ollama listens on IPv4 only (${describeListeners(listeners)}).`,
        why: 'Clients that try only the first address (Node 17+ among them) are refused; others lose time before falling back to IPv4 (F9).',
        fix: `Point OLLAMA_BASE_URL at an IPv4 address (http://172.17.0.1:${facts.port} on a native engine), or bind both families: npx stigmer-setup --yes --host [::]:${facts.port}`,
      };
    }
    const families = takesIpv4 && listeners.some((listener) => listener.family === 6) ? 'IPv4 and IPv6' : takesIpv4 ? 'IPv4' : 'IPv6';
    return { status: 'ok', message: `Ollama takes ${families} connections (${describeListeners(listeners)})${address ? `; inside ${probe?.via} its address is ${address}` : ''}.` };
  },
};
