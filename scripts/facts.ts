/**
 * Everything the plan and the checks look at, gathered once per run. Docker's answers and the
 * detection of every Ollama installation run at the same time; then the host probe and the
 * container probe run concurrently, each with its own timeout.
 */
import { detectInstallations } from '../platforms/index.ts';
import type { Detection, Installation, PlatformSupport, Problem, Strategy } from '../platforms/types.ts';
import { isIPv4 } from 'node:net';
import type { Context, NetworkAddress, Platform } from './context.ts';
import { probeFromContainer, probeFromImage, type ContainerProbeResult } from './container-probe.ts';
import type { Listener } from './listeners.ts';
import { isRelayListener } from './checks/relay.ts';
import { bindScope, DEFAULT_PORT, formatBindAddress, ollamaHostProblem, parseOllamaHost, urlEndpoint } from './ollama-host.ts';
import { classifyRuntime, parseDockerInspect, type ContainerInfo, type ContainerRuntime } from './parsers/docker.ts';
import { lastLine } from './text.ts';
import { parseDockerInfoJson, type DockerNetwork } from './parsers/docker-json.ts';
import { probeExposure, readDockerNetworks, readPodman, readProxySources, type ExposureProbe } from './audit-facts.ts';
import { proxyFromEnvironment, type ProxySettings } from './proxy.ts';
import { readStigmerConfig, STIGMER_DEFAULTS, type StigmerConfig } from './stigmer-config.ts';
import type { FirewallFacts, RelayFacts } from '../platforms/types.ts';
import { classifyFlavour, readStigmerInstall, type StigmerFlavour } from './stigmer-flavour.ts';

export const DEFAULT_CONTAINER = 'stigmer-agent-runner';
export const HOST_PROBE_TIMEOUT_MS = 3000;

export type HostProbe =
  | { ok: true; url: string; version: string; models: string[] }
  | { ok: false; url: string; error: string; kind: 'refused' | 'timeout' | 'not-ollama' | 'other' };

export type DockerFacts =
  | { state: 'missing' }
  | { state: 'unreachable'; detail: string }
  | {
      state: 'ok';
      runtime: ContainerRuntime;
      operatingSystem: string;
      serverVersion: string;
      /** A rootless engine (SecurityOptions name=rootless): the host's loopback is off limits by default. */
      rootless?: boolean;
      /** The daemon's own proxy settings (for its pulls), from `docker info`. */
      daemonProxy?: ProxySettings;
    };

export type ContainerProbeFact = ContainerProbeResult | { skipped: string; fix?: string };

export interface Facts {
  platform: Platform;
  support: PlatformSupport;
  wsl: boolean;
  /** The OS and version, when the platform can tell. */
  host?: string;
  port: number;
  /** Every Ollama installation found ("none found" is one, so this is never empty after detection). */
  installations: Installation[];
  /** The installation to configure and to quote commands for. */
  strategy?: Strategy<any>;
  detection?: Detection;
  /** Two installations compete for the port. */
  conflict?: Problem;
  /** undefined when this platform has no listener reader yet. */
  listeners?: Listener[];
  /** Where Ollama was asked, on the host, and what it answered. */
  hostProbe: HostProbe;
  /** The same on 127.0.0.1, when Ollama is bound to one other address (local tools use loopback). */
  loopbackProbe?: HostProbe;
  docker: DockerFacts;
  containerName: string;
  /** The agent-runner container, when it exists. */
  container?: ContainerInfo;
  containerProbe: ContainerProbeFact;
  expectedModel?: string;
  /** The machine's own addresses, to tell a LAN address from a Docker bridge. */
  addresses: NetworkAddress[];
  /**
   * Docker's bridge networks (subnets, interfaces): where container traffic comes from. Read, with
   * the firewall, only when the container probe did not reach Ollama: they explain a failure.
   */
  networks: DockerNetwork[];
  /** Rootless Podman, when Podman is the engine. */
  podman?: { rootless: boolean; networkCmd?: string };
  /** DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK of a rootless dockerd, when it could be read. */
  rootlessHostLoopback?: string;
  /** What the host's firewall does to bridge traffic to the port; undefined where it isn't read. */
  firewall?: FirewallFacts;
  /** Proxy settings from the shell and the docker CLI's config (the runner's own are in container.env). */
  proxies: ProxySettings[];
  /** net.ipv6.bindv6only, where the OS has it: 1 makes a [::] listener IPv6-only. */
  bindV6Only?: boolean;
  /** Where on the network (LAN, public) Ollama answers without authentication. */
  exposure: ExposureProbe[];
  stigmer: StigmerConfig;
  /**
   * Which Stigmer runs here (runner container, Docker-era Go CLI, native runner, none): whether a
   * consumer needs a bridge route at all. Always filled by gatherFacts; hand-made facts without it
   * are judged by the container alone (scripts/plan.ts stigmerFlavour).
   */
  flavour?: StigmerFlavour;
  /** The bridge-only relay and what it needs (Linux only; undefined elsewhere). */
  relay?: RelayFacts;
}

export interface GatherOptions {
  support: PlatformSupport;
  root: string;
  /** --container: the user named it, so its absence is an error rather than a fallback. */
  container?: string;
  /** --host's port, or the port just configured by setup. */
  port?: number;
}

export class ContainerNotFoundError extends Error {}

/** "127.0.0.1" for loopback and wildcard binds (never localhost: Node tries ::1 first, ollama/ollama-js#102). */
export function hostProbeAddress(host: string): string {
  const scope = bindScope(host);
  if (scope === 'specific') return host;
  // A loopback address Ollama was given by number (127.0.0.2, ::1) is the only place it answers:
  // asking 127.0.0.1 there would wait the whole restart timeout for nothing.
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (scope === 'loopback' && (bare === '::1' || isIPv4(bare))) return bare;
  return '127.0.0.1';
}

/** Where to ask Ollama on the host: where it is bound, as far as the listeners or its configuration say. */
export function probeAddressFor(listeners: Listener[] | undefined, configuredHost: string | undefined): string {
  if (listeners && listeners.length > 0) {
    if (listeners.some((listener) => listener.scope === 'wildcard' || (listener.scope === 'loopback' && listener.address === '127.0.0.1'))) return '127.0.0.1';
    return hostProbeAddress((listeners.find((listener) => listener.scope === 'specific') ?? listeners[0] as Listener).address);
  }
  // A configured value that is no address (service-config reports it) can't be asked; Ollama's
  // default can, and is where a server that failed to read it would be.
  if (configuredHost !== undefined && ollamaHostProblem(configuredHost) !== undefined) return '127.0.0.1';
  return hostProbeAddress(parseOllamaHost(configuredHost).host);
}

export async function probeHost(ctx: Context, address: string, port: number): Promise<HostProbe> {
  const base = `http://${formatBindAddress({ host: address, port })}`;
  // Never let an address that came from the machine end the run with `Invalid URL`.
  if (!URL.canParse(base)) return { ok: false, url: base, kind: 'other', error: `${JSON.stringify(address)} can't be asked: it is not an address a URL can hold` };
  const [version, tags] = await Promise.all([
    ctx.http.get(`${base}/api/version`, { timeoutMs: HOST_PROBE_TIMEOUT_MS }),
    ctx.http.get(`${base}/api/tags`, { timeoutMs: HOST_PROBE_TIMEOUT_MS }),
  ]);
  for (const result of [version, tags]) {
    if (result.kind === 'error') return { ok: false, url: base, kind: result.code === 'refused' || result.code === 'timeout' ? result.code : 'other', error: result.message };
  }
  try {
    const versionBody = JSON.parse((version as { body: string }).body) as { version?: unknown };
    const tagsBody = JSON.parse((tags as { body: string }).body) as { models?: { name?: unknown }[] };
    if (typeof versionBody.version !== 'string' || !Array.isArray(tagsBody.models)) throw new Error('missing fields');
    return { ok: true, url: base, version: versionBody.version.slice(0, 64), models: tagsBody.models.slice(0, 10_000).map((model) => String(model?.name ?? '').slice(0, 200)) };
  } catch {
    const status = version.kind === 'response' ? version.status : 0;
    return { ok: false, url: base, kind: 'not-ollama', error: `HTTP ${status} from ${base}/api/version is not Ollama's answer` };
  }
}

async function dockerFacts(ctx: Context): Promise<DockerFacts> {
  const info = await ctx.exec('docker', ['info', '--format', '{{json .}}'], { timeoutMs: 8000 });
  if (info.failure === 'not-found') return { state: 'missing' };
  const parsed = info.exitCode === 0 ? parseDockerInfoJson(info.stdout) : undefined;
  if (!parsed || 'serverErrors' in parsed) {
    const detail = lastLine(info.stderr) || (parsed && 'serverErrors' in parsed ? parsed.serverErrors : '') || (info.failure === 'timeout' ? 'docker info timed out' : `docker info exited ${info.exitCode}`);
    return { state: 'unreachable', detail };
  }
  const daemonProxy = proxyFromEnvironment('the Docker daemon (docker info)', (name) => ({ HTTP_PROXY: parsed.httpProxy, HTTPS_PROXY: parsed.httpsProxy, NO_PROXY: parsed.noProxy })[name]);
  return {
    state: 'ok',
    runtime: classifyRuntime(parsed.operatingSystem, parsed.name, parsed.kernelVersion),
    operatingSystem: parsed.operatingSystem,
    serverVersion: parsed.serverVersion,
    rootless: parsed.rootless,
    daemonProxy,
  };
}

async function inspectContainer(ctx: Context, name: string): Promise<ContainerInfo | undefined> {
  const result = await ctx.exec('docker', ['inspect', '--type', 'container', name], { timeoutMs: 8000 });
  if (result.exitCode !== 0) return undefined;
  return parseDockerInspect(result.stdout);
}

/** A local image that has python3, to probe from when there is no agent-runner container. */
async function findProbeImage(ctx: Context): Promise<string | undefined> {
  const result = await ctx.exec('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}'], { timeoutMs: 8000 });
  if (result.exitCode !== 0) return undefined;
  const images = result.stdout.split('\n').map((line) => line.trim()).filter((line) => line && !line.includes('<none>'));
  const preferences = [/agent-runner/, /^python:/, /(^|\/)python[:-]/];
  for (const preference of preferences) {
    const match = images.find((image) => preference.test(image));
    if (match) return match;
  }
  return undefined;
}

export function containerBaseUrl(container: ContainerInfo | undefined): string {
  // The runner reads OLLAMA_BASE_URL; the probe script falls back to host.docker.internal like Stigmer's supervisor.
  return container?.env.get('OLLAMA_BASE_URL') ?? 'http://host.docker.internal:11434';
}

/** The port a URL writes out, if it does: only an explicit port says where Ollama is. */
function urlPort(url: string): number | undefined {
  const endpoint = urlEndpoint(url);
  return endpoint?.explicitPort ? endpoint.port : undefined;
}

async function probeContainer(
  ctx: Context,
  docker: DockerFacts,
  container: ContainerInfo | undefined,
  name: string,
  port: number,
  inRunner: Promise<ContainerProbeResult | { unavailable: string }>,
): Promise<ContainerProbeFact> {
  if (docker.state === 'missing') return { skipped: 'no container runtime: `docker` is not on PATH' };
  if (docker.state === 'unreachable') return { skipped: `the Docker engine does not answer (${docker.detail})`, fix: 'Start Docker (sudo systemctl start docker, or open Docker Desktop), then run: npx stigmer-setup doctor' };
  if (container && !container.running) return { skipped: `${name} exists but is not running`, fix: `docker start ${name}` };
  if (container) {
    const result = await inRunner;
    if ('unavailable' in result) return { skipped: `could not run python3 inside ${name}: ${result.unavailable}` };
    return result;
  }
  const image = await findProbeImage(ctx);
  if (!image) {
    return {
      skipped: `there is no ${name} container and no local image with python3 to probe from (stigmer-setup never pulls images on its own)`,
      fix: 'Start Stigmer so its agent-runner exists, or run `docker pull python:3.11-slim`; then run: npx stigmer-setup doctor',
    };
  }
  // Native Linux engines need the alias mapped; Docker Desktop and friends provide it, and adding
  // it on Rancher Desktop points it at the wrong place (rancher-desktop#7611).
  const result = await probeFromImage(ctx, image, `http://host.docker.internal:${port}`, docker.runtime === 'native');
  if ('unavailable' in result) return { skipped: `could not probe from a throwaway ${image} container: ${result.unavailable}` };
  return result;
}

export async function gatherFacts(ctx: Context, options: GatherOptions): Promise<Facts> {
  const { support } = options;
  const containerName = options.container ?? DEFAULT_CONTAINER;
  const home = support.home(ctx.env);
  // The probe inside the runner is the slowest step (a docker exec): it starts now, before docker
  // info and inspect say whether the runner exists, and its answer is used only if it does and runs.
  // Asking a container that isn't there fails at once.
  const inRunner = probeFromContainer(ctx, containerName);
  const engine = Promise.all([dockerFacts(ctx), inspectContainer(ctx, containerName)]);
  // Both are awaited later; a failure meanwhile must not count as an unhandled rejection.
  inRunner.catch(() => undefined);
  engine.catch(() => undefined);
  // Which Stigmer is installed (PATH, ~/.stigmer, the runner's pid): read alongside everything else.
  const install = readStigmerInstall(ctx, { home, env: ctx.env, path: support.path });
  install.catch(() => undefined);
  const [wsl, host, stigmer] = await Promise.all([support.isWsl(ctx), support.describeHost?.(ctx), readStigmerConfig(ctx, support)]);
  // Detection (reading the listeners, asking every strategy) runs while docker answers, on the port
  // Stigmer is configured with: a runner Stigmer started carries that same port. If the runner's
  // URL names another one, detection runs again on that port.
  const detect = (port: number) => detectInstallations(ctx, support, { root: options.root, home, env: ctx.env, port });
  const guessedPort = options.port ?? urlPort(stigmer.baseUrl.value) ?? DEFAULT_PORT;
  const early = detect(guessedPort);
  // Awaited below, after docker answers; until then a refusal (an unsafe path) must not count as
  // an unhandled rejection, which would end the process with a stack trace.
  early.catch(() => undefined);
  const [docker, inspected] = await engine;
  const container = docker.state === 'ok' ? inspected : undefined;
  if (options.container && docker.state === 'ok' && !container) {
    throw new ContainerNotFoundError(`--container ${options.container}: no such container (see \`docker ps -a\`).`);
  }
  // Which port is Ollama's: the runner's URL says; without a runner, the URL Stigmer is configured with.
  const portHint = options.port ?? (container ? urlPort(containerBaseUrl(container)) : undefined) ?? guessedPort;
  const found = portHint === guessedPort ? await early : (await early, await detect(portHint));
  const { installations, primary, conflict } = found;
  let listeners: Listener[] | undefined = found.listeners;
  const detection = primary.detection;
  const port = options.port ?? (detection?.configuredHost !== undefined ? parseOllamaHost(detection.configuredHost).port : portHint);
  if (port !== portHint) listeners = await support.readListeners(ctx, port);

  const address = probeAddressFor(listeners, detection?.configuredHost);
  const addresses = ctx.networkAddresses();
  const running = docker.state === 'ok' ? docker : undefined;
  // Every probe and every read-only audit at once: doctor takes as long as the slowest one.
  const containerProbe = probeContainer(ctx, docker, container, containerName, port, inRunner);
  // Where the bridge-only relay could serve (Linux, a rootful engine on this kernel), its plan
  // needs the bridge networks and the firewall's verdict whatever the probe finds: they are read
  // at once, alongside the probes.
  const relayEngine = support.relay && running?.runtime === 'native' && !running.rootless;
  const bridgeNetworks = relayEngine ? readDockerNetworks(ctx) : undefined;
  bridgeNetworks?.catch(() => undefined);
  // Elsewhere Docker's networks and the firewall only explain a route that fails; when the
  // container reaches Ollama there is nothing to explain, so they are read only after a probe
  // that did not succeed.
  const networksAndFirewall = containerProbe.then(async (probe) => {
    if (!running || (!relayEngine && 'outcome' in probe && probe.outcome === 'ok')) return { networks: [], firewall: undefined };
    const networks = await (bridgeNetworks ?? readDockerNetworks(ctx));
    const firewall = await support.audits?.firewall?.(ctx, {
      port,
      subnets: networks.flatMap((network) => network.subnets).filter((subnet) => !subnet.includes(':')),
      interfaces: networks.flatMap((network) => (network.bridgeInterface ? [network.bridgeInterface] : [])),
    });
    return { networks, firewall };
  });
  const relay = support.relay
    ? (async () =>
        support.relay?.inspect(ctx, {
          root: options.root,
          home,
          env: ctx.env,
          port,
          listeners,
          nativeRootfulDocker: relayEngine === true,
          engine: engineDescription(docker),
          networks: bridgeNetworks ? await bridgeNetworks : undefined,
          path: support.path,
        }))()
    : Promise.resolve(undefined);
  const [hostProbe, loopbackProbe, probed, exposure, { networks, firewall }, podman, rootlessHostLoopback, proxies, bindV6Only, relayFacts, installed] = await Promise.all([
    probeHost(ctx, address, port),
    bindScope(address) === 'specific' ? probeHost(ctx, '127.0.0.1', port) : Promise.resolve(undefined),
    containerProbe,
    probeExposure(ctx, listeners, addresses, port),
    networksAndFirewall,
    running?.runtime === 'podman' ? readPodman(ctx) : Promise.resolve(undefined),
    running?.rootless ? support.audits?.rootlessHostLoopback?.(ctx) : Promise.resolve(undefined),
    readProxySources(ctx, support),
    support.audits?.bindV6Only?.(ctx),
    relay,
    install,
  ]);
  // Our relay's socket on the bridge gateway is not Ollama listening there: the checks see
  // Ollama's own sockets (the relay facts keep what the relay holds).
  if (relayFacts?.installed && listeners) listeners = listeners.filter((entry) => !isRelayListener(entry, relayFacts));
  // The runner's own environment is what it uses; without a runner, what Stigmer's CLI would give it.
  const provider = container ? container.env.get('STIGMER_LLM_PROVIDER') ?? 'ollama' : stigmer.provider.value;
  const model = container ? container.env.get('STIGMER_LLM_MODEL') ?? STIGMER_DEFAULTS.model : stigmer.model.value;
  return {
    platform: support.id,
    support,
    wsl,
    host,
    port,
    installations,
    strategy: primary.strategy,
    detection,
    conflict,
    listeners,
    hostProbe,
    loopbackProbe,
    docker,
    containerName,
    container,
    containerProbe: probed,
    expectedModel: provider === 'ollama' ? model : undefined,
    addresses,
    networks,
    podman,
    rootlessHostLoopback,
    firewall,
    proxies,
    bindV6Only,
    exposure,
    stigmer,
    flavour: classifyFlavour(installed, container, support.stigmerRunnerNetwork, docker.state === 'unreachable'),
    ...(relayFacts ? { relay: relayFacts } : {}),
  };
}

/** What the container engine is, for the relay preflight's reason when it is not a rootful native one. */
function engineDescription(docker: DockerFacts): string | undefined {
  if (docker.state === 'missing') return 'not installed (`docker` is not on PATH)';
  if (docker.state === 'unreachable') return `not answering (${docker.detail})`;
  if (docker.rootless) return 'rootless Docker';
  return docker.runtime === 'native' ? undefined : { 'docker-desktop': 'Docker Desktop', orbstack: 'OrbStack', colima: 'Colima', 'rancher-desktop': 'Rancher Desktop', podman: 'Podman', native: '' }[docker.runtime];
}
