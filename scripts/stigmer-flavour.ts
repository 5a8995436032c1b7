/**
 * Which Stigmer runs here, and so whether anything of Stigmer's reaches Ollama from a Docker
 * bridge (stigmer.md §1, §6). Stigmer has had three ways of running its agent-runner:
 *
 *   - the Go CLI of January–February 2026 (v0.0.8–v0.0.12): its server's supervisor starts the
 *     `stigmer-agent-runner` container, with `--network host` on Linux only and a bridge elsewhere
 *     (backend/services/stigmer-server/pkg/supervisor/supervisor.go, startAgentRunner), and
 *     records its id in ~/.stigmer/data/agent-runner.containerid;
 *   - the Go CLI from 2026-03-01: a native process on a hermetic CPython under
 *     ~/.stigmer/runtimes/agent-runner/<cli-version>/<platform>/
 *     (client-apps/cli/internal/cli/daemon/agent_runner_native.go; the Docker code was removed the
 *     same day, _changelog/2026-03/2026-03-01-194354-consolidate-lifecycle-management-single-daemon.md);
 *   - the TypeScript CLI, npm `@stigmer/cli` (bin `stigmer` → dist/cli/stigmer.js): a native Node
 *     process from ~/.stigmer/runtimes/<version>/node_modules/@stigmer/runner-slim/main.js
 *     (client-apps/cli/src/local/runtime/runner.ts), its pid in ~/.stigmer/data/runner.pid
 *     (src/local/constants.ts RUNNER_PID_FILE, src/local/paths.ts dataDir).
 *
 * Everything here is read from the user's home and PATH, so all of it is untrusted: a FIFO or a
 * folder where a file belongs is passed over, a symlink is followed only to read, a file is read
 * only when it is small, and every name that ends up in a message is one clean line.
 */
import type { PlatformPath } from 'node:path';
import type { Context } from './context.ts';
import type { ContainerInfo } from './parsers/docker.ts';
import { cleanField, oneLine, parseDecimal } from './text.ts';

export type StigmerFlavour =
  | { kind: 'runner-container'; network: 'host' | 'bridge'; networkMode: string; running: boolean; evidence: string[] }
  /** The Go CLI of the Docker-runner era: it will start a runner container. */
  | { kind: 'docker-cli'; network: 'host' | 'bridge'; evidence: string[] }
  /** The agent-runner runs as a host process (TS CLI, ~/.stigmer/runtimes/agent-runner/). */
  | { kind: 'native'; evidence: string[] }
  | { kind: 'none'; evidence: string[] };

/** A consumer that reaches Ollama from a Docker bridge exists or will (the only case a bridge route is needed for Stigmer). */
export function needsBridgeRoute(flavour: StigmerFlavour): boolean {
  return (flavour.kind === 'runner-container' || flavour.kind === 'docker-cli') && flavour.network === 'bridge';
}

/** What was found on disk and in the process table, before the container (if any) is known. */
export interface StigmerInstall {
  /** A native runner: its runtimes, or a live runner process. */
  native: string[];
  /** The TypeScript CLI on PATH (it only ever runs the runner natively). */
  tsCli: string[];
  /** The Go CLI on PATH, or the traces it leaves (container id file, its own Ollama). */
  goCli: string[];
  /** Stigmer is configured, but nothing says which CLI did it. */
  configured: string[];
  /**
   * The `stigmer` on PATH is a Go CLI whose version (Homebrew's Cellar path) is of the Docker-runner
   * era (0.0.x up to v0.0.12, all tagged before the Docker code was removed on 2026-03-01): it is the
   * one that will run, and it starts a runner container whatever runtimes another CLI left behind.
   */
  dockerEraCli?: boolean;
  /** ~/.stigmer/data/agent-runner.containerid: the Docker-era supervisor created a runner container. */
  runnerContainerIdFile?: boolean;
}

/** Files we read are small by nature (a pid, a package.json, an npm shim); anything bigger is not what we look for. */
const MAX_SMALL_FILE = 64 * 1024;
/** Bound the walks: PATH entries, and version folders under runtimes/. */
const MAX_PATH_ENTRIES = 64;
const MAX_RUNTIME_VERSIONS = 32;
/** A compiled CLI (the Go binary is tens of MB); the TS CLI is a small script. */
const MIN_BINARY_SIZE = 1024 * 1024;

export interface FlavourOptions {
  home: string;
  env: Readonly<Record<string, string | undefined>>;
  path: PlatformPath;
}

/**
 * The names `stigmer` has on PATH: the Go binary and npm's POSIX symlink are `stigmer`; on Windows
 * npm writes `stigmer.cmd` (and .ps1) shims, and a Go build is `stigmer.exe`. Looking for all three
 * everywhere costs a few lookups and needs no test of which OS this is.
 */
const COMMAND_NAMES = ['stigmer', 'stigmer.exe', 'stigmer.cmd'] as const;

/** A path as the user knows it: under the home folder, as ~/…; one line with no control characters. */
function shown(file: string, options: Pick<FlavourOptions, 'home' | 'path'>): string {
  const { home, path } = options;
  const relative = home && path.isAbsolute(home) ? path.relative(home, file) : undefined;
  const text = relative !== undefined && relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative) ? `~${path.sep}${relative}` : file;
  return oneLine(cleanField(text), 200);
}

/** What is at a path, following a symlink (a dotfiles link is normal); undefined when nothing is, or it can't be looked at. */
async function kindAt(ctx: Context, file: string): Promise<{ kind: string; size: number } | undefined> {
  return ctx.fs.inspect(file, { follow: true }).catch(() => undefined);
}

/** A small regular file's text; undefined for anything else (missing, a FIFO, a folder, too big, unreadable). */
async function readSmall(ctx: Context, file: string): Promise<string | undefined> {
  const info = await kindAt(ctx, file);
  if (info?.kind !== 'file' || info.size > MAX_SMALL_FILE) return undefined;
  const text = await ctx.fs.readText(file, { follow: true }).catch(() => undefined);
  // It may have grown between the look and the read.
  return text === undefined ? undefined : text.slice(0, MAX_SMALL_FILE);
}

async function isDirectory(ctx: Context, dir: string): Promise<boolean> {
  return (await kindAt(ctx, dir))?.kind === 'directory';
}

/** A version as a folder or a package.json names it, or undefined for anything that isn't one. */
function versionText(value: unknown): string | undefined {
  return typeof value === 'string' && /^v?\d+(\.\d+){0,3}([-+][0-9A-Za-z.-]{1,40})?$/.test(value) ? value : undefined;
}

/** The @stigmer/cli package.json next to a resolved bin script (…/@stigmer/cli/dist/cli/stigmer.js). */
async function tsCliVersion(ctx: Context, script: string, path: PlatformPath): Promise<string | undefined> {
  const packageDir = path.dirname(path.dirname(path.dirname(script)));
  const text = await readSmall(ctx, path.join(packageDir, 'package.json'));
  if (text === undefined) return undefined;
  try {
    const manifest = JSON.parse(text) as { name?: unknown; version?: unknown };
    return manifest.name === '@stigmer/cli' ? versionText(manifest.version) : undefined;
  } catch {
    return undefined;
  }
}

/** 0.0.x up to 0.0.12: the Go CLI's tags (v0.0.1 2026-01-20 … v0.0.12 2026-01-25), all before the native runner. */
function isDockerEraVersion(version: string): boolean {
  const match = /^v?0\.0\.(\d+)(?:[-+.]|$)/.exec(version);
  return match !== null && Number(match[1]) <= 12;
}

const normalise = (file: string) => file.replace(/\\/g, '/');

/** `stigmer` on PATH: the npm package's node script, or a compiled binary (the Go CLI). */
async function findCli(ctx: Context, options: FlavourOptions): Promise<{ ts?: string; go?: string; dockerEra?: boolean }> {
  const { path } = options;
  const entries = (options.env.PATH ?? options.env.Path ?? '').split(path.delimiter).slice(0, MAX_PATH_ENTRIES);
  for (const dir of entries) {
    // A relative entry (".", "") names the current folder: whatever is there is not an installation.
    if (!dir || !path.isAbsolute(dir)) continue;
    for (const name of COMMAND_NAMES) {
      const candidate = path.join(dir, name);
      const info = await kindAt(ctx, candidate);
      if (info?.kind !== 'file') continue;
      const resolved = (await ctx.fs.realPath(candidate).catch(() => undefined)) ?? candidate;
      const where = resolved === candidate ? shown(candidate, options) : `${shown(candidate, options)} → ${shown(resolved, options)}`;
      const inPackage = /\/node_modules\/@stigmer\/cli\//.test(normalise(resolved));
      if (inPackage || /\.[cm]?js$/.test(resolved)) {
        const version = inPackage ? await tsCliVersion(ctx, resolved, path) : undefined;
        return { ts: `the TypeScript CLI${version ? ` @stigmer/cli ${cleanField(version)}` : ''} on PATH (${where})` };
      }
      if (info.size >= MIN_BINARY_SIZE) {
        // Homebrew keeps the version in the path (…/Cellar/stigmer/0.0.12/bin/stigmer).
        const version = versionText(/\/Cellar\/stigmer\/([^/]+)\//.exec(normalise(resolved))?.[1]);
        return { go: `the Go CLI${version ? ` ${cleanField(version)}` : ''} on PATH (${where}, a compiled binary)`, dockerEra: version !== undefined && isDockerEraVersion(version) };
      }
      // A small script: npm's shims (Windows stigmer.cmd, a POSIX wrapper) name the package they start.
      const text = await readSmall(ctx, candidate);
      if (text !== undefined && /@stigmer[\\/]cli|\bnode\b/.test(text.slice(0, 4096))) return { ts: `the TypeScript CLI on PATH (${where}, a script that runs node)` };
    }
  }
  return {};
}

/** The runner the TypeScript CLI acquired: ~/.stigmer/runtimes/<version>/node_modules/@stigmer/runner-slim/main.js. */
async function findTsRuntimes(ctx: Context, runtimes: string, options: FlavourOptions): Promise<string | undefined> {
  const versions = (await ctx.fs.listDir(runtimes).catch(() => [] as string[])).filter((name) => versionText(name) !== undefined).sort().slice(-MAX_RUNTIME_VERSIONS);
  for (const version of versions.reverse()) {
    const entry = options.path.join(runtimes, version, 'node_modules', '@stigmer', 'runner-slim', 'main.js');
    if ((await kindAt(ctx, entry))?.kind === 'file') return `the runner the TypeScript CLI installed (${shown(entry, options)})`;
  }
  return undefined;
}

/** A runner process named by ~/.stigmer/data/runner.pid that is alive now. */
async function liveRunner(ctx: Context, stigmer: string, options: FlavourOptions): Promise<string | undefined> {
  const pidFile = options.path.join(stigmer, 'data', 'runner.pid');
  const pid = parseDecimal((await readSmall(ctx, pidFile))?.trim());
  if (pid === undefined || pid < 1 || !ctx.processExists(pid)) return undefined;
  // Where the process table is /proc, make sure that pid is still a runner and not a reused number.
  const cmdline = await readSmall(ctx, `/proc/${pid}/cmdline`);
  if (cmdline !== undefined && !/runner|stigmer/.test(cmdline)) return undefined;
  const command = cmdline ? `: ${oneLine(cleanField(cmdline.split('\0').filter(Boolean).join(' ')), 120)}` : '';
  return `a runner process (pid ${pid}${command}) named by ${shown(pidFile, options)}`;
}

/** Everything on disk and in the process table that says which Stigmer this is. Never throws. */
export async function readStigmerInstall(ctx: Context, options: FlavourOptions): Promise<StigmerInstall> {
  const install: StigmerInstall = { native: [], tsCli: [], goCli: [], configured: [] };
  const { home, path } = options;
  const cli = await findCli(ctx, options).catch(() => ({}) as { ts?: string; go?: string; dockerEra?: boolean });
  if (cli.ts) install.tsCli.push(cli.ts);
  if (cli.go) install.goCli.push(cli.go);
  if (cli.dockerEra) install.dockerEraCli = true;
  // Never a relative home: it would name folders under the current one.
  if (!home || !path.isAbsolute(home)) return install;
  const stigmer = path.join(home, '.stigmer');
  if (!(await isDirectory(ctx, stigmer))) return install;
  const override = options.env.STIGMER_RUNTIMES_DIR;
  const runtimes = override && path.isAbsolute(override) ? override : path.join(stigmer, 'runtimes');
  const goRuntime = path.join(stigmer, 'runtimes', 'agent-runner');
  const [goNative, tsNative, live, containerId, ownOllama, llmPid, config] = await Promise.all([
    isDirectory(ctx, goRuntime),
    findTsRuntimes(ctx, runtimes, options),
    liveRunner(ctx, stigmer, options).catch(() => undefined),
    kindAt(ctx, path.join(stigmer, 'data', 'agent-runner.containerid')),
    kindAt(ctx, path.join(stigmer, 'bin', 'ollama')),
    kindAt(ctx, path.join(stigmer, 'llm.pid')),
    kindAt(ctx, path.join(stigmer, 'config.yaml')),
  ]);
  if (live) install.native.push(live);
  if (goNative) install.native.push(`the native runner's Python runtime (${shown(goRuntime, options)})`);
  if (tsNative) install.native.push(tsNative);
  if (containerId?.kind === 'file') install.runnerContainerIdFile = true;
  if (containerId?.kind === 'file') install.goCli.push(`the runner container's id file of the Docker era (${shown(path.join(stigmer, 'data', 'agent-runner.containerid'), options)})`);
  if (ownOllama?.kind === 'file') install.goCli.push(`the Ollama the Go CLI downloaded (${shown(path.join(stigmer, 'bin', 'ollama'), options)})`);
  if (llmPid?.kind === 'file') install.goCli.push(`the Go CLI's Ollama pid file (${shown(path.join(stigmer, 'llm.pid'), options)})`);
  if (config?.kind === 'file') install.configured.push(`Stigmer's configuration (${shown(path.join(stigmer, 'config.yaml'), options)})`);
  return install;
}

/**
 * The flavour, from what is installed and the runner container (running or stopped), when there
 * is one. `stigmerNetwork` is how the Docker-era supervisor networks the runner on this OS.
 */
export function classifyFlavour(install: StigmerInstall, container: ContainerInfo | undefined, stigmerNetwork: 'host' | 'bridge', engineDown = false): StigmerFlavour {
  const known = [...install.native, ...install.tsCli, ...install.goCli, ...install.configured];
  if (container) {
    // A container is what reaches Ollama, whatever else is installed: its network mode decides.
    const network = container.networkMode === 'host' ? 'host' : 'bridge';
    const state = container.running ? 'running' : 'stopped';
    return { kind: 'runner-container', network, networkMode: cleanField(container.networkMode), running: container.running, evidence: [`the container ${cleanField(container.name)} (${state}, network "${cleanField(container.networkMode)}")`, ...known] };
  }
  // The engine doesn't answer, so the runner container the id file names can't be ruled out: the
  // supervisor ran it with --restart unless-stopped, so it comes back with the engine.
  if (engineDown && install.runnerContainerIdFile) {
    return { kind: 'docker-cli', network: stigmerNetwork, evidence: [...install.goCli, 'the container engine does not answer, so that runner container may still exist (it restarts with the engine)', ...install.native, ...install.tsCli, ...install.configured] };
  }
  // A Docker-era Go CLI is what `stigmer` starts: leftovers of a native CLI don't change that.
  if (install.dockerEraCli) return { kind: 'docker-cli', network: stigmerNetwork, evidence: [...install.goCli, ...install.native, ...install.tsCli, ...install.configured] };
  // A native runtime or the TS CLI: this Stigmer runs its runner on the host, never in Docker.
  if (install.native.length > 0 || install.tsCli.length > 0) return { kind: 'native', evidence: [...install.native, ...install.tsCli, ...install.goCli, ...install.configured] };
  // The Go CLI, or only its configuration: whichever CLI wrote config.yaml, on Linux its runner
  // shares the host's network (container or native alike); elsewhere the Docker-era runner is
  // bridged, so the cautious reading is "a bridged runner is to come".
  if (install.goCli.length > 0 || install.configured.length > 0) return { kind: 'docker-cli', network: stigmerNetwork, evidence: [...install.goCli, ...install.configured] };
  return { kind: 'none', evidence: [] };
}

/** The flavour in a few words, for the plan and the checks: "a native agent-runner (…)". */
export function describeFlavour(flavour: StigmerFlavour): string {
  const from = flavour.evidence.length > 0 ? ` (found: ${flavour.evidence.slice(0, 3).join('; ')})` : '';
  switch (flavour.kind) {
    case 'runner-container':
      return `an agent-runner container on ${flavour.network === 'host' ? "the host's network (--network host)" : `a Docker bridge (network "${flavour.networkMode}")`}${from}`;
    case 'docker-cli':
      return `the Go CLI of Stigmer's Docker-runner era${from}, whose runner container ${flavour.network === 'host' ? "will share the host's network (--network host, its Linux default)" : 'will run on a Docker bridge (its default outside Linux)'}`;
    case 'native':
      return `a native agent-runner, a process on this machine with no container${from}`;
    case 'none':
      return 'no Stigmer installation (no runner container, no `stigmer` on PATH, no ~/.stigmer)';
  }
}
