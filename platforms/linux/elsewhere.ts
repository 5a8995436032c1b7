/**
 * Ollama that runs, but not as anything stigmer-setup configures: in a Docker container (the port
 * is held by docker-proxy, which publishes it), or as a per-user `systemd --user` unit. Reporting
 * these as "not installed" would send the user to reinstall an Ollama they already have; each is
 * named for what it is, with the command that does reach it.
 */
import path from 'node:path';
import type { ProcessInfo } from '../../scripts/listeners.ts';
import { bindScope, formatBindAddress } from '../../scripts/ollama-host.ts';
import type { DetectOptions, Detection, Plan, PlanRequest, Strategy } from '../types.ts';
import { shellWord } from './quote.ts';

/** docker-proxy is what dockerd runs to publish a container's port on the host (`-p`). */
export function isDockerProxy(process: ProcessInfo): boolean {
  return path.posix.basename(process.argv[0] ?? '') === 'docker-proxy';
}

/** A service of a user's own systemd (cgroup .../user@1000.service/.../ollama.service). */
export function isUserUnit(process: ProcessInfo): boolean {
  return /\/user@\d+\.service\//.test(process.cgroup ?? '') && (process.unit ?? '').endsWith('.service');
}

function flag(argv: string[], name: string): string | undefined {
  const index = argv.indexOf(name);
  return index >= 0 ? argv[index + 1] : undefined;
}

export interface DockerDetection extends Detection {
  strategy: 'linux-docker';
  proxy: ProcessInfo;
  /** Where docker-proxy publishes the port on the host (-host-ip). */
  hostIp: string;
  containerIp?: string;
  port: number;
}

/** The shell snippet that finds the container publishing `port`, for the commands we print. */
const publisher = (port: number, all = false) => `$(docker ps -q${all ? 'a' : ''} --filter publish=${port})`;

export const dockerStrategy: Strategy<DockerDetection> = {
  id: 'linux-docker',
  persistent: true,
  async detect(_ctx, options: DetectOptions) {
    const owner = options.listeners?.find((listener) => listener.owner && isDockerProxy(listener.owner));
    if (!owner?.owner) return undefined;
    const hostIp = flag(owner.owner.argv, '-host-ip') ?? owner.address;
    const containerIp = flag(owner.owner.argv, '-container-ip');
    const published = formatBindAddress({ host: hostIp, port: options.port });
    return {
      strategy: 'linux-docker',
      description: `Ollama in a Docker container, published on ${published} by docker-proxy (pid ${owner.owner.pid}${containerIp ? `, container ${containerIp}` : ''})`,
      proxy: owner.owner,
      hostIp,
      containerIp,
      port: options.port,
      configuredHost: published,
      configuredIn: "the container's published port (docker run -p)",
      serverPid: owner.owner.pid,
    };
  },
  plan(detection: DockerDetection, request: PlanRequest): Plan {
    const fix = this.commands(detection, request.target.port).widen;
    return {
      strategy: 'linux-docker',
      target: request.target,
      changes: [],
      summary: `Ollama runs in a Docker container: ${detection.description}. Where it listens is decided by how that container publishes its port, not by OLLAMA_HOST.`,
      blockers: [{ message: `Ollama runs in a Docker container, which stigmer-setup does not reconfigure.`, fix }],
      warnings: [],
    };
  },
  commands(detection, port) {
    const widen =
      bindScope(detection.hostIp) === 'loopback'
        ? `It is published on ${detection.hostIp} only. Recreate that container (docker ps --filter publish=${port}) with -p ${port}:11434 instead of -p ${detection.hostIp}:${port}:11434, or run the agent-runner on the same Docker network and set OLLAMA_BASE_URL=http://<that container's name>:11434`
        : `Run the agent-runner on the same Docker network as that container (docker ps --filter publish=${port}) and set OLLAMA_BASE_URL=http://<that container's name>:11434`;
    return {
      start: `docker start ${publisher(port, true)}`,
      restart: `docker restart ${publisher(port)}`,
      logs: `docker logs --tail 50 ${publisher(port)}`,
      widen,
      stop: `docker stop ${publisher(port)}`,
      upgrade: `docker pull ollama/ollama, then recreate the container (docker ps --filter publish=${port}) from the new image`,
    };
  },
};

export interface UserUnitDetection extends Detection {
  strategy: 'linux-systemd-user';
  process: ProcessInfo;
  unit: string;
  uid?: number;
}

export const systemdUserStrategy: Strategy<UserUnitDetection> = {
  id: 'linux-systemd-user',
  persistent: true,
  async detect(_ctx, options: DetectOptions) {
    const owner = options.listeners?.find((listener) => listener.owner && isUserUnit(listener.owner))?.owner;
    if (!owner) return undefined;
    const unit = owner.unit ?? 'ollama.service';
    const uid = Number(/\/user@(\d+)\.service\//.exec(owner.cgroup ?? '')?.[1]);
    return {
      strategy: 'linux-systemd-user',
      description: `systemd --user unit ${unit}${Number.isInteger(uid) ? ` of user ${uid}` : ''} (pid ${owner.pid})`,
      process: owner,
      unit,
      uid: Number.isInteger(uid) ? uid : undefined,
      serverPid: owner.pid,
    };
  },
  plan(detection: UserUnitDetection, request: PlanRequest): Plan {
    return {
      strategy: 'linux-systemd-user',
      target: request.target,
      changes: [],
      summary: `Ollama runs as ${detection.description}, a per-user service; stigmer-setup configures the system-wide ollama.service only.`,
      blockers: [{ message: `Ollama runs as ${detection.description}.`, fix: `As that user: ${this.commands(detection, request.target.port).widen}` }],
      warnings: [],
    };
  },
  commands(detection, port) {
    // The unit name comes from a process's cgroup: quoted, it stays one word whatever it holds.
    const unit = detection.unit;
    const base = shellWord(unit.replace(/\.service$/, ''));
    const folder = `~/.config/systemd/user/${shellWord(`${unit}.d`)}`;
    return {
      start: `systemctl --user start ${base}`,
      restart: `systemctl --user daemon-reload && systemctl --user restart ${base}`,
      logs: `journalctl --user -u ${base} -n 50`,
      widen: `mkdir -p ${folder} && printf '[Service]\\nEnvironment="OLLAMA_HOST=0.0.0.0:${port}"\\n' > ${folder}/stigmer-setup.conf && systemctl --user daemon-reload && systemctl --user restart ${base}`,
      stop: `systemctl --user disable --now ${base}`,
    };
  },
};
