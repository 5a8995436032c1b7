/**
 * ollama.exposure: who else can reach Ollama. It has no authentication (§2 of the failure
 * catalogue), so wherever it answers on a LAN or public address, anyone on that network can use
 * your models and pull new ones. Each of this machine's network-facing addresses is probed (all at
 * once, short timeouts); a Docker bridge address is reachable from containers only.
 */
import { BRIDGE_INTERFACE, isNetworkFacing } from '../audit-facts.ts';
import { formatBindAddress } from '../ollama-host.ts';
import type { Check } from './types.ts';

export const exposureCheck: Check = {
  id: 'ollama.exposure',
  diagnose(facts) {
    const listeners = facts.listeners;
    if (!listeners || listeners.length === 0) return { status: 'skip', message: 'Nothing listens, so nothing is exposed.' };
    if (listeners.every((listener) => listener.scope === 'loopback')) return { status: 'ok', message: 'Only programs on this machine can connect to Ollama.' };
    const why = 'Ollama has no authentication: anyone on your network who reaches this port can use your models and pull new ones.';
    const answering = facts.exposure.filter((entry) => entry.answered);
    // A specific bind to a LAN address that could not be probed is exposed all the same.
    const specificOnNetwork = listeners.filter((listener) => {
      if (listener.scope !== 'specific') return false;
      const entry = facts.addresses.find((address) => address.address === listener.address);
      return entry ? isNetworkFacing(entry) : true;
    });
    const places = [
      ...answering.map((entry) => `${formatBindAddress({ host: entry.address, port: facts.port })} (${entry.interfaceName})`),
      ...specificOnNetwork.filter((listener) => !answering.some((entry) => entry.address === listener.address)).map((listener) => formatBindAddress({ host: listener.address, port: listener.port })),
    ];
    if (places.length > 0) {
      const bridge = facts.docker.state === 'ok' && facts.docker.runtime === 'native' ? facts.addresses.find((entry) => entry.family === 4 && BRIDGE_INTERFACE.test(entry.name)) : undefined;
      const narrower = bridge ? ` Or bind only the Docker bridge, which only containers reach: npx stigmer-setup --yes --host ${bridge.address}:${facts.port} (tools on this machine then use ${bridge.address} too).` : '';
      return {
        status: 'warn',
        message: `Ollama answers without authentication on ${places.join(', ')}: addresses other machines on your network can reach, unless a firewall stops them.`,
        why,
        fix: `${facts.support.commands.limitExposure(facts.port)}${narrower}`,
      };
    }
    const wildcard = listeners.some((listener) => listener.scope === 'wildcard');
    if (wildcard && facts.exposure.length === 0) {
      return { status: 'ok', message: `Ollama listens on every interface, port ${facts.port}, but this machine has no LAN or public address for it to answer on.` };
    }
    if (wildcard) return { status: 'ok', message: `Ollama listens on every interface, but did not answer on ${facts.exposure.map((entry) => entry.address).join(', ')} when asked from this machine.` };
    return { status: 'ok', message: 'Ollama listens on loopback and Docker bridge addresses only, which containers reach and the network does not.' };
  },
};
