/**
 * What stigmer-setup needs from `docker inspect CONTAINER` (a JSON array with one object) and from
 * `docker info --format '{{.OperatingSystem}}'`.
 */
export interface ContainerInfo {
  name: string;
  running: boolean;
  /** HostConfig.NetworkMode: "host", "bridge", "default" (= bridge), or a user network name. */
  networkMode: string;
  env: Map<string, string>;
  extraHosts: string[];
  image: string;
}

interface InspectShape {
  Name?: string;
  State?: { Running?: boolean };
  Config?: { Env?: string[] | null; Image?: string };
  HostConfig?: { NetworkMode?: string; ExtraHosts?: string[] | null };
}

export function parseDockerInspect(text: string): ContainerInfo | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const first = (Array.isArray(parsed) ? parsed[0] : undefined) as InspectShape | undefined;
  if (!first || typeof first !== 'object') return undefined;
  const env = new Map<string, string>();
  for (const entry of first.Config?.Env ?? []) {
    const equals = entry.indexOf('=');
    if (equals > 0) env.set(entry.slice(0, equals), entry.slice(equals + 1));
  }
  return {
    name: (first.Name ?? '').replace(/^\//, ''),
    running: first.State?.Running === true,
    networkMode: first.HostConfig?.NetworkMode ?? 'default',
    env,
    extraHosts: first.HostConfig?.ExtraHosts ?? [],
    image: first.Config?.Image ?? '',
  };
}

export type ContainerRuntime = 'docker-desktop' | 'orbstack' | 'colima' | 'rancher-desktop' | 'podman' | 'native';

/**
 * Which runtime sits behind the docker CLI, from `docker info`'s OperatingSystem, Name and
 * KernelVersion. Older releases don't name themselves in OperatingSystem: Docker for Mac 17.x says
 * "Alpine Linux v3.5" with a "-moby" kernel and Name "moby"; OrbStack 0.7 says "Alpine Linux edge
 * (containerized)" with an "-orbstack" kernel. The kernel tells them apart from a real Alpine host.
 */
export function classifyRuntime(operatingSystem: string, name = '', kernelVersion = ''): ContainerRuntime {
  const text = `${operatingSystem} ${name}`.toLowerCase();
  const kernel = kernelVersion.toLowerCase();
  if (text.includes('docker desktop') || text.includes('docker-desktop')) return 'docker-desktop';
  if (text.includes('orbstack') || kernel.includes('orbstack')) return 'orbstack';
  if (text.includes('rancher desktop')) return 'rancher-desktop';
  if (text.includes('colima')) return 'colima';
  if (text.includes('podman') || text.includes('fedora coreos')) return 'podman';
  // Docker's own VMs: "-moby" kernels (Docker for Mac/Windows before the Docker Desktop name) and
  // LinuxKit kernels (every Docker Desktop since).
  if (name.toLowerCase() === 'moby' || /-moby\b/.test(kernel) || kernel.includes('linuxkit')) return 'docker-desktop';
  return 'native';
}
