/**
 * ollama.exposure: who else can reach Ollama. It has no authentication (§2 of the failure
 * catalogue), so a bind to every interface, or to a LAN address, lets anyone on that network use
 * it. A Docker bridge address (docker0, br-*) is reachable from containers only.
 */
import type { NetworkAddress } from '../context.ts';
import type { Listener } from '../listeners.ts';
import { formatBindAddress } from '../ollama-host.ts';
import type { Check } from './types.ts';

/** Interfaces that exist for containers and VMs on this machine, not for the network around it. */
const BRIDGE_INTERFACE = /^(docker\d*|br-[0-9a-f]+|cni\d*|podman\d*|virbr\d*|lxcbr\d*|lxdbr\d*|cali[0-9a-f]*|flannel[.\w]*)$/;

function interfaceOf(address: string, addresses: NetworkAddress[]): NetworkAddress | undefined {
  return addresses.find((entry) => entry.address === address);
}

function exposedSpecific(listeners: Listener[], addresses: NetworkAddress[]): { listener: Listener; where?: NetworkAddress }[] {
  return listeners
    .filter((listener) => listener.scope === 'specific')
    .map((listener) => ({ listener, where: interfaceOf(listener.address, addresses) }))
    .filter(({ where }) => !where || (!where.internal && !BRIDGE_INTERFACE.test(where.name)));
}

export const exposureCheck: Check = {
  id: 'ollama.exposure',
  diagnose(facts) {
    if (!facts.listeners || facts.listeners.length === 0) return { status: 'skip', message: 'Nothing listens, so nothing is exposed.' };
    const why = 'Ollama has no authentication: anyone on your network who reaches this port can use your models and pull new ones.';
    if (facts.listeners.some((listener) => listener.scope === 'wildcard')) {
      return { status: 'warn', message: `Ollama accepts connections on every interface, port ${facts.port}.`, why, fix: facts.support.commands.limitExposure(facts.port) };
    }
    const exposed = exposedSpecific(facts.listeners, facts.addresses);
    if (exposed.length > 0) {
      const bridge = facts.addresses.find((entry) => entry.family === 4 && BRIDGE_INTERFACE.test(entry.name));
      const described = exposed.map(({ listener, where }) => `${formatBindAddress({ host: listener.address, port: listener.port })}${where ? ` (${where.name})` : ''}`).join(', ');
      return {
        status: 'warn',
        message: `Ollama listens on ${described}, an address other machines on your network can reach.`,
        why,
        fix: bridge
          ? `Bind it to the Docker bridge instead, which only containers reach: npx stigmer-setup --yes --host ${bridge.address}:${facts.port}`
          : facts.support.commands.limitExposure(facts.port),
      };
    }
    if (facts.listeners.every((listener) => listener.scope === 'loopback')) return { status: 'ok', message: 'Only programs on this machine can connect to Ollama.' };
    return { status: 'ok', message: 'Ollama listens on loopback and Docker bridge addresses only, which containers reach and the network does not.' };
  },
};
