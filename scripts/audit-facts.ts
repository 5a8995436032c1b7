/**
 * The facts behind doctor's audits: the firewall, proxy variables, rootless engines, Docker's
 * networks, IPv6, where Ollama answers on the network, and Stigmer's own configuration. Each
 * reader is read-only and tolerant: a tool that is missing, refuses (not root) or prints something
 * unexpected leaves its fact unknown, and the check that reads it says so instead of guessing.
 */
import type { PlatformSupport } from '../platforms/types.ts';
import type { Context, NetworkAddress } from './context.ts';
import type { Listener } from './listeners.ts';
import { formatBindAddress } from './ollama-host.ts';
import { parseDockerClientProxies, parseNetworkInspect, parsePodmanInfo, type DockerNetwork } from './parsers/docker-json.ts';
import { proxyFromEnvironment, type ProxySettings } from './proxy.ts';

/** Interfaces that exist for containers and VMs on this machine, not for the network around it. */
export const BRIDGE_INTERFACE = /^(docker\d*|br-[0-9a-f]+|cni\d*|podman\d*|virbr\d*|lxcbr\d*|lxdbr\d*|cali[0-9a-f]*|flannel[.\w]*|veth[0-9a-f]*)$/;

const EXPOSURE_PROBE_TIMEOUT_MS = 1500;
/** A machine with more addresses than this is probed on the first ones only: the report lists them, it does not scan. */
const MAX_EXPOSURE_PROBES = 16;

export interface ExposureProbe {
  address: string;
  interfaceName: string;
  family: 4 | 6;
  /** Ollama answered /api/version there, without any authentication. */
  answered: boolean;
}

/** An address on a LAN or public interface: not loopback, not a Docker/VM bridge, not link-local. */
export function isNetworkFacing(entry: NetworkAddress): boolean {
  if (entry.internal || BRIDGE_INTERFACE.test(entry.name)) return false;
  const address = entry.address.toLowerCase();
  // Link-local addresses need a zone to be probed and are not reachable beyond the link's own peers anyway.
  return !(address.startsWith('fe80:') || address.startsWith('169.254.'));
}

function listenerCovers(listener: Listener, entry: NetworkAddress): boolean {
  if (listener.scope === 'specific') return listener.address === entry.address;
  if (listener.scope !== 'wildcard') return false;
  // A wildcard IPv6 socket ([::]) is dual-stack unless bindv6only; IPv4 0.0.0.0 covers IPv4 only.
  return listener.family === 6 || entry.family === 4;
}

/** Ask Ollama on every LAN or public address it may answer on; all at once, each with a short timeout. */
export async function probeExposure(ctx: Context, listeners: Listener[] | undefined, addresses: NetworkAddress[], port: number): Promise<ExposureProbe[]> {
  if (!listeners || listeners.every((listener) => listener.scope === 'loopback')) return [];
  const targets = addresses.filter((entry) => isNetworkFacing(entry) && listeners.some((listener) => listenerCovers(listener, entry))).slice(0, MAX_EXPOSURE_PROBES);
  return Promise.all(
    targets.map(async (entry) => {
      const answer = await ctx.http.get(`http://${formatBindAddress({ host: entry.address, port })}/api/version`, { timeoutMs: EXPOSURE_PROBE_TIMEOUT_MS });
      const answered = answer.kind === 'response' && answer.status === 200 && /"version"\s*:/.test(answer.body);
      return { address: entry.address, interfaceName: entry.name, family: entry.family, answered };
    }),
  );
}

/** Docker's bridge networks: their subnets are where container traffic comes from. */
export async function readDockerNetworks(ctx: Context): Promise<DockerNetwork[]> {
  const list = await ctx.exec('docker', ['network', 'ls', '--quiet', '--filter', 'driver=bridge'], { timeoutMs: 5000 });
  if (list.exitCode !== 0) return [];
  const ids = list.stdout.split('\n').map((line) => line.trim()).filter((line) => /^[0-9a-f]{6,64}$/.test(line)).slice(0, 32);
  if (ids.length === 0) return [];
  const inspect = await ctx.exec('docker', ['network', 'inspect', ...ids], { timeoutMs: 5000 });
  return inspect.exitCode === 0 ? parseNetworkInspect(inspect.stdout) : [];
}

/** Rootless Podman's network helper (pasta or slirp4netns) decides whether the host's loopback is reachable. */
export async function readPodman(ctx: Context): Promise<ReturnType<typeof parsePodmanInfo>> {
  const info = await ctx.exec('podman', ['info', '--format', 'json'], { timeoutMs: 8000 });
  return info.exitCode === 0 ? parsePodmanInfo(info.stdout) : undefined;
}

/**
 * Proxy settings that may decide where the runner's requests go: the host's environment (what
 * tools and compose files started here pass on) and the docker CLI's config.json `proxies`, which
 * docker injects into every container it creates. The runner's own environment and the daemon's
 * settings come with the container and `docker info`.
 */
export async function readProxySources(ctx: Context, support: PlatformSupport): Promise<ProxySettings[]> {
  const sources: ProxySettings[] = [proxyFromEnvironment('this shell', (name) => ctx.env[name])];
  const home = support.home(ctx.env);
  const configDir = ctx.env.DOCKER_CONFIG || (home ? support.path.join(home, '.docker') : '');
  const configPath = support.path.join(configDir, 'config.json');
  // Never a relative path: with HOME unset (or relative) that would read ./.docker/config.json from
  // whatever folder the run started in, which is not the docker CLI's file.
  if (!configDir || !support.path.isAbsolute(configPath)) return sources;
  const text = await ctx.fs.readText(configPath, { follow: true }).catch(() => undefined);
  const client = text === undefined ? undefined : parseDockerClientProxies(text);
  if (client) sources.push({ source: `${configPath} (docker adds it to every new container)`, ...client });
  return sources;
}
