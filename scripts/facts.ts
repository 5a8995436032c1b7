/**
 * Everything the plan and the checks look at, gathered once per run. Detection runs first (it tells
 * which port Ollama is configured for); then the listener read, the host probe and the container
 * probe run concurrently, each with its own timeout.
 */
import { detectLinux } from '../platforms/linux/index.ts';
import type { Detection, Strategy } from '../platforms/types.ts';
import type { Context, Platform } from './context.ts';
import { probeFromContainer, probeFromImage, type ContainerProbeResult } from './container-probe.ts';
import { findOwners, readListeners, type Listener } from './listeners.ts';
import { DEFAULT_PORT, parseOllamaHost } from './ollama-host.ts';
import { classifyRuntime, parseDockerInspect, type ContainerInfo, type ContainerRuntime } from './parsers/docker.ts';

export const DEFAULT_CONTAINER = 'stigmer-agent-runner';
/** Stigmer's default local model (stigmer/stigmer config.go GetDefault). */
export const DEFAULT_STIGMER_MODEL = 'qwen2.5-coder:7b';
export const HOST_PROBE_TIMEOUT_MS = 3000;

export type HostProbe =
  | { ok: true; version: string; models: string[] }
  | { ok: false; error: string; kind: 'refused' | 'timeout' | 'not-ollama' | 'other' };

export type DockerFacts =
  | { state: 'missing' }
  | { state: 'unreachable'; detail: string }
  | { state: 'ok'; runtime: ContainerRuntime; operatingSystem: string; serverVersion: string };

export type ContainerProbeFact = ContainerProbeResult | { skipped: string; fix?: string };

export interface Facts {
  platform: Platform;
  wsl: boolean;
  port: number;
  strategy?: Strategy<any>;
  detection?: Detection;
  /** undefined when this platform has no listener reader yet. */
  listeners?: Listener[];
  hostProbe: HostProbe;
  docker: DockerFacts;
  containerName: string;
  /** The agent-runner container, when it exists. */
  container?: ContainerInfo;
  containerProbe: ContainerProbeFact;
  expectedModel?: string;
}

export interface GatherOptions {
  platform: Platform;
  root: string;
  /** --container: the user named it, so its absence is an error rather than a fallback. */
  container?: string;
  /** --host's port, or the port just configured by setup. */
  port?: number;
}

export class ContainerNotFoundError extends Error {}

export async function probeHost(ctx: Context, port: number): Promise<HostProbe> {
  // 127.0.0.1, never localhost: Node tries ::1 first for localhost (ollama/ollama-js#102).
  const base = `http://127.0.0.1:${port}`;
  const [version, tags] = await Promise.all([
    ctx.http.get(`${base}/api/version`, { timeoutMs: HOST_PROBE_TIMEOUT_MS }),
    ctx.http.get(`${base}/api/tags`, { timeoutMs: HOST_PROBE_TIMEOUT_MS }),
  ]);
  for (const result of [version, tags]) {
    if (result.kind === 'error') return { ok: false, kind: result.code === 'refused' || result.code === 'timeout' ? result.code : 'other', error: result.message };
  }
  try {
    const versionBody = JSON.parse((version as { body: string }).body) as { version?: unknown };
    const tagsBody = JSON.parse((tags as { body: string }).body) as { models?: { name?: string }[] };
    if (typeof versionBody.version !== 'string' || !Array.isArray(tagsBody.models)) throw new Error('missing fields');
    return { ok: true, version: versionBody.version, models: tagsBody.models.map((model) => String(model.name ?? '')) };
  } catch {
    const status = version.kind === 'response' ? version.status : 0;
    return { ok: false, kind: 'not-ollama', error: `HTTP ${status} from ${base}/api/version is not Ollama's answer` };
  }
}

async function dockerFacts(ctx: Context): Promise<DockerFacts> {
  const info = await ctx.exec('docker', ['info', '--format', '{{.OperatingSystem}}|{{.Name}}|{{.ServerVersion}}'], { timeoutMs: 8000 });
  if (info.failure === 'not-found') return { state: 'missing' };
  if (info.exitCode !== 0) {
    return { state: 'unreachable', detail: (info.stderr.trim().split('\n').at(-1) ?? '') || (info.failure === 'timeout' ? 'docker info timed out' : `docker info exited ${info.exitCode}`) };
  }
  const [operatingSystem = '', name = '', serverVersion = ''] = info.stdout.trim().split('|');
  return { state: 'ok', runtime: classifyRuntime(operatingSystem, name), operatingSystem, serverVersion };
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

function urlPort(url: string): number | undefined {
  try {
    const parsed = new URL(url);
    return parsed.port ? Number(parsed.port) : undefined;
  } catch {
    return undefined;
  }
}

async function probeContainer(ctx: Context, docker: DockerFacts, container: ContainerInfo | undefined, name: string, port: number): Promise<ContainerProbeFact> {
  if (docker.state === 'missing') return { skipped: 'no container runtime: `docker` is not on PATH' };
  if (docker.state === 'unreachable') return { skipped: `the Docker engine does not answer (${docker.detail})`, fix: 'Start Docker (sudo systemctl start docker, or open Docker Desktop), then run: npx stigmer-setup doctor' };
  if (container && !container.running) return { skipped: `${name} exists but is not running`, fix: `docker start ${name}` };
  if (container) {
    const result = await probeFromContainer(ctx, name);
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
  const result = await probeFromImage(ctx, image, `http://host.docker.internal:${port}`, docker.runtime === 'native');
  if ('unavailable' in result) return { skipped: `could not probe from a throwaway ${image} container: ${result.unavailable}` };
  return result;
}

async function readListenersWithOwners(ctx: Context, port: number): Promise<Listener[]> {
  const listeners = await readListeners(ctx, port);
  await findOwners(ctx, listeners);
  return listeners;
}

export async function gatherFacts(ctx: Context, options: GatherOptions): Promise<Facts> {
  const containerName = options.container ?? DEFAULT_CONTAINER;
  const [docker, wslText] = await Promise.all([dockerFacts(ctx), options.platform === 'linux' ? ctx.fs.readText('/proc/version') : Promise.resolve(undefined)]);
  const container = docker.state === 'ok' ? await inspectContainer(ctx, containerName) : undefined;
  if (options.container && docker.state === 'ok' && !container) {
    throw new ContainerNotFoundError(`--container ${options.container}: no such container (see \`docker ps -a\`).`);
  }
  const portHint = options.port ?? urlPort(containerBaseUrl(container)) ?? DEFAULT_PORT;

  let strategy: Strategy<any> | undefined;
  let detection: Detection | undefined;
  if (options.platform === 'linux') {
    ({ strategy, detection } = await detectLinux(ctx, { root: options.root, port: portHint }));
  }
  const port = options.port ?? (detection?.configuredHost !== undefined ? parseOllamaHost(detection.configuredHost).port : portHint);

  const [listeners, hostProbe, containerProbe] = await Promise.all([
    options.platform === 'linux' ? readListenersWithOwners(ctx, port) : Promise.resolve(undefined),
    probeHost(ctx, port),
    probeContainer(ctx, docker, container, containerName, port),
  ]);
  const provider = container?.env.get('STIGMER_LLM_PROVIDER') ?? 'ollama';
  return {
    platform: options.platform,
    wsl: /microsoft/i.test(wslText ?? ''),
    port,
    strategy,
    detection,
    listeners,
    hostProbe,
    docker,
    containerName,
    container,
    containerProbe,
    expectedModel: provider === 'ollama' ? container?.env.get('STIGMER_LLM_MODEL') ?? DEFAULT_STIGMER_MODEL : undefined,
  };
}
