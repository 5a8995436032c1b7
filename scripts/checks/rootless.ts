/**
 * container.rootless: engines that keep containers away from the host's loopback by design (F10).
 * Rootless Docker blocks 127.0.0.1 on the host (DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK
 * defaults to true, moby contrib/dockerd-rootless.sh); rootless Podman on Linux with pasta maps
 * host.containers.internal to the host's main interface, not its loopback (podman#28718). Either
 * way a loopback-only Ollama can't be reached, and the fix is an opt-in or a wider bind.
 */
import { concludedProbe } from '../plan.ts';
import type { Check } from './types.ts';

const ROOTLESS_OPT_IN =
  'DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK=false in the Environment= of ~/.config/systemd/user/docker.service (systemctl --user edit docker), {"host-gateway-ip": "10.0.2.2"} in ~/.config/docker/daemon.json, then: systemctl --user restart docker';

export const rootlessCheck: Check = {
  id: 'container.rootless',
  diagnose(facts) {
    const docker = facts.docker;
    if (docker.state !== 'ok') return { status: 'skip', message: 'No container engine answers.' };
    const reaches = concludedProbe(facts)?.outcome === 'ok';
    const wider = `npx stigmer-setup --yes --host 0.0.0.0:${facts.port}`;
    if (docker.rootless) {
      const value = facts.rootlessHostLoopback;
      if (value?.toLowerCase() === 'false') return { status: 'ok', message: 'Rootless Docker, with the host\'s loopback opened to containers (DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK=false).' };
      return {
        status: reaches ? 'ok' : 'warn',
        message: `Docker runs rootless, where containers can't reach the host's 127.0.0.1 (DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK is ${value ?? 'unset, so true'})${reaches ? '; the agent-runner reaches Ollama another way' : ''}.`,
        why: 'A loopback-only Ollama is out of reach by design, and host-gateway does not lead to the host.',
        fix: `Either opt in: ${ROOTLESS_OPT_IN}; or bind Ollama beyond loopback (${wider}) and set OLLAMA_BASE_URL to this machine's LAN address.`,
      };
    }
    if (docker.runtime === 'podman' && !facts.support.containersInVm && facts.podman?.rootless) {
      const helper = facts.podman.networkCmd ?? 'its default network helper';
      if (reaches) return { status: 'ok', message: `Rootless Podman (${helper}); the agent-runner reaches Ollama.` };
      return {
        status: 'warn',
        message: `Podman runs rootless with ${helper}: host.containers.internal leads to this machine's main interface, not to its loopback.`,
        why: 'A loopback-only Ollama is out of reach by design (podman#28718).',
        fix: `Bind Ollama beyond loopback: ${wider}; or map the loopback in: --network pasta:--map-host-loopback,169.254.1.3 --add-host host.containers.internal:169.254.1.3`,
      };
    }
    return { status: 'ok', message: `The container engine is not rootless (${docker.operatingSystem}).` };
  },
};
