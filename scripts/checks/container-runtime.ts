/** container.runtime — which container engine runs here, and how the agent-runner is networked. */
import type { Check } from './types.ts';

const RUNTIME_NAMES = {
  'docker-desktop': 'Docker Desktop',
  orbstack: 'OrbStack',
  colima: 'Colima',
  'rancher-desktop': 'Rancher Desktop',
  podman: 'Podman',
  native: 'native Docker Engine',
} as const;

export const containerRuntimeCheck: Check = {
  id: 'container.runtime',
  diagnose(facts) {
    const docker = facts.docker;
    if (docker.state === 'missing') return { status: 'skip', message: 'No container runtime: `docker` is not on PATH.' };
    if (docker.state === 'unreachable' && /permission denied/i.test(docker.detail)) {
      return {
        status: 'warn',
        message: `Docker runs, but this user may not use it: ${docker.detail}`,
        why: 'Without access to the Docker socket, nothing can be checked from inside a container.',
        fix: 'sudo usermod -aG docker "$USER"   # then log out and in again, or run: sudo npx stigmer-setup doctor',
      };
    }
    if (docker.state === 'unreachable') {
      return {
        status: 'warn',
        message: `Docker is installed but its engine does not answer: ${docker.detail}`,
        why: "Stigmer's agent-runner runs in a container, so it can't start without an engine.",
        fix: 'sudo systemctl start docker   # or open Docker Desktop',
      };
    }
    const container = facts.container
      ? `${facts.containerName} uses network "${facts.container.networkMode}"${facts.container.running ? '' : ' (stopped)'}`
      : `no ${facts.containerName} container`;
    const wsl = facts.wsl ? ', inside WSL' : '';
    const host = facts.host ? ` on ${facts.host}` : '';
    return { status: 'ok', message: `${RUNTIME_NAMES[docker.runtime]} ${docker.serverVersion} (${docker.operatingSystem}${wsl})${host}; ${container}.` };
  },
};
