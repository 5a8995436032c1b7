/**
 * container.alias: the name in the runner's OLLAMA_BASE_URL resolves inside the container (F2).
 * On a native Linux engine host.docker.internal exists only when the container was started with
 * --add-host=host.docker.internal:host-gateway (compose: extra_hosts). Docker Desktop, OrbStack,
 * Colima and Rancher Desktop provide it themselves, and on Rancher Desktop adding host-gateway
 * points it at the wrong place (rancher-desktop#7611), so the flag is never suggested there.
 */
import { ipFamily } from '../text.ts';
import { containerBaseUrl } from '../facts.ts';
import { urlEndpoint } from '../ollama-host.ts';
import { concludedProbe } from '../plan.ts';
import type { Facts } from '../facts.ts';
import { routeFinding } from './fixes.ts';
import type { Check, Finding } from './types.ts';

export const ADD_HOST_FIX = '--add-host=host.docker.internal:host-gateway (compose: extra_hosts: ["host.docker.internal:host-gateway"])';

export const aliasCheck: Check = {
  id: 'container.alias',
  diagnose(facts) {
    // Only a consumer that needs the bridge route makes its failure a failure (routeFinding).
    return routeFinding(facts, diagnoseAlias(facts));
  },
};

function diagnoseAlias(facts: Facts): Omit<Finding, 'id'> {
  {
    const docker = facts.docker;
    if (docker.state !== 'ok') return { status: 'skip', message: 'No container engine answers.' };
    const container = facts.container;
    if (container?.networkMode === 'host') return { status: 'ok', message: `${facts.containerName} shares the host's network (--network host): it needs no host alias.` };
    const probe = concludedProbe(facts);
    const url = probe && !probe.url.startsWith('(') ? probe.url : containerBaseUrl(container);
    const name = urlEndpoint(url)?.host;
    if (!name) return { status: 'skip', message: `The Ollama URL ${url} has no host name to resolve.` };
    if (ipFamily(name) !== undefined || name === 'localhost') return { status: 'ok', message: `The Ollama URL names ${name}, an address, not an alias: nothing to resolve.` };
    const rancher = docker.runtime === 'rancher-desktop';
    const mapped = container?.extraHosts.some((entry) => entry.split(':')[0] === name);
    if (rancher && mapped && container?.extraHosts.some((entry) => entry === `${name}:host-gateway`)) {
      return {
        status: probe?.outcome === 'ok' ? 'warn' : 'fail',
        message: `${facts.containerName} maps ${name} to host-gateway, which on Rancher Desktop is the VM's 172.17.0.1, not this machine.`,
        why: 'Rancher Desktop provides host.docker.internal itself; the added mapping overrides it with the wrong address (rancher-desktop#7611).',
        fix: `Recreate ${facts.containerName} without --add-host=${name}:host-gateway (remove it from extra_hosts).`,
      };
    }
    const via = probe?.via ?? facts.containerName;
    if (probe?.outcome === 'dns') {
      return {
        status: 'fail',
        message: `Inside ${via}, ${name} does not resolve.`,
        why: rancher
          ? 'Rancher Desktop normally provides host.docker.internal; a custom DNS or network setting removed it.'
          : 'On a native Linux Docker Engine the alias exists only when the container is started with --add-host (F2).',
        fix: rancher ? `Use http://host.rancher-desktop.internal:${facts.port} as OLLAMA_BASE_URL` : `Recreate ${facts.containerName} with ${ADD_HOST_FIX}`,
      };
    }
    if (probe?.address) return { status: 'ok', message: `Inside ${via}, ${name} resolves to ${probe.address}.` };
    // No probe ran to a conclusion: judge from how the container was created.
    if (container && docker.runtime === 'native' && !mapped) {
      return {
        status: 'warn',
        message: `${facts.containerName} was created without a mapping for ${name}, so on this native engine the name will not resolve.`,
        why: 'Without the alias the agent-runner fails with "Name or service not known" (F2).',
        fix: `Recreate ${facts.containerName} with ${ADD_HOST_FIX}`,
      };
    }
    return { status: 'skip', message: `Whether ${name} resolves inside a container is unknown: no container probe ran to the end.` };
  }
}
