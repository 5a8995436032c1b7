/**
 * Which Stigmer runs here, read from real folders laid out as each Stigmer CLI leaves them
 * (test/fixtures/stigmer/, sources in SOURCES.md): the home and PATH are real temporary folders,
 * only the process table's answer (is this pid alive) is the test's.
 */
import { cp, mkdir, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { classifyFlavour, needsBridgeRoute, readStigmerInstall, type StigmerFlavour } from '../../scripts/stigmer-flavour.ts';
import { tempRoot, testContext } from './support/context.ts';
import { runnerContainer } from './support/facts.ts';
import { goNativeRuntime } from './support/stigmer-layout.ts';
import { because, needs } from './support/portability.ts';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/stigmer');

let root: string;
let cleanup: () => Promise<void>;
let home: string;
let bin: string;

beforeEach(async () => {
  ({ root, cleanup } = await tempRoot());
  home = path.join(root, 'home');
  bin = path.join(root, 'bin');
  await mkdir(home, { recursive: true });
  await mkdir(bin, { recursive: true });
});
afterEach(() => cleanup());

/** A home laid out like the fixture `layout` (its .stigmer folder). */
async function layout(name: string): Promise<void> {
  await cp(path.join(FIXTURES, name, '.stigmer'), path.join(home, '.stigmer'), { recursive: true });
}

/** The Go CLI as install.sh leaves it: a compiled binary of tens of MB (sparse here). */
async function goBinary(dir = bin): Promise<string> {
  const file = path.join(dir, 'stigmer');
  await writeFile(file, Buffer.from([0x7f, 0x45, 0x4c, 0x46]), { mode: 0o755 });
  await truncate(file, 48 * 1024 * 1024);
  return file;
}

/** npm install -g @stigmer/cli: <prefix>/lib/node_modules/@stigmer/cli, and <prefix>/bin/stigmer a symlink to its bin. */
async function npmGlobalCli(): Promise<void> {
  const prefix = path.join(root, 'npm');
  await cp(path.join(FIXTURES, 'ts-cli-prefix'), prefix, { recursive: true });
  await mkdir(path.join(prefix, 'bin'));
  await symlink('../lib/node_modules/@stigmer/cli/dist/cli/stigmer.js', path.join(prefix, 'bin', 'stigmer'));
}

async function detect(options: { alive?: (pid: number) => boolean; path?: string[]; stigmerNetwork?: 'host' | 'bridge'; container?: Parameters<typeof classifyFlavour>[1] } = {}): Promise<StigmerFlavour> {
  const ctx = testContext({ env: { HOME: home, PATH: (options.path ?? [bin]).join(path.delimiter) }, alive: options.alive ?? (() => false) });
  const install = await readStigmerInstall(ctx, { home, env: ctx.env, path });
  return classifyFlavour(install, options.container, options.stigmerNetwork ?? 'host');
}

describe('Stigmer flavour', () => {
  it('is none on a machine with no ~/.stigmer and no stigmer on PATH', async () => {
    const flavour = await detect();
    expect(flavour).toEqual({ kind: 'none', evidence: [] });
    expect(needsBridgeRoute(flavour)).toBe(false);
  });

  it('is the runner container when it exists, running or stopped, and its network mode decides', async () => {
    await layout('go-docker-era');
    const bridged = await detect({ container: runnerContainer({ running: false, networkMode: 'bridge' }), stigmerNetwork: 'host' });
    expect(bridged).toMatchObject({ kind: 'runner-container', network: 'bridge', running: false });
    expect(bridged.evidence[0]).toContain('stopped, network "bridge"');
    expect(needsBridgeRoute(bridged)).toBe(true);
    const host = await detect({ container: runnerContainer({ networkMode: 'host' }), stigmerNetwork: 'bridge' });
    expect(host).toMatchObject({ kind: 'runner-container', network: 'host', running: true });
    expect(needsBridgeRoute(host)).toBe(false);
    // A user network is a bridge too.
    expect(await detect({ container: runnerContainer({ networkMode: 'stigmer_default' }) })).toMatchObject({ network: 'bridge', networkMode: 'stigmer_default' });
  });

  it('is the Docker-era Go CLI from its binary on PATH: host network on Linux, a bridge on macOS and Windows', async () => {
    await goBinary();
    const linux = await detect({ stigmerNetwork: 'host' });
    expect(linux).toMatchObject({ kind: 'docker-cli', network: 'host' });
    expect(linux.evidence.join('\n')).toContain('the Go CLI on PATH');
    expect(needsBridgeRoute(linux)).toBe(false);
    const mac = await detect({ stigmerNetwork: 'bridge' });
    expect(mac).toMatchObject({ kind: 'docker-cli', network: 'bridge' });
    expect(needsBridgeRoute(mac)).toBe(true);
  });

  it("reads the Go CLI's version from a Homebrew Cellar path", async () => {
    const cellar = path.join(root, 'Cellar', 'stigmer', '0.0.12', 'bin');
    await mkdir(cellar, { recursive: true });
    const binary = await goBinary(cellar);
    await symlink(binary, path.join(bin, 'stigmer'));
    const flavour = await detect();
    expect(flavour.evidence[0]).toMatch(/^the Go CLI 0\.0\.12 on PATH \(.*→ .*Cellar\/stigmer\/0\.0\.12\/bin\/stigmer, a compiled binary\)$/);
  });

  it("is the Docker-era Go CLI from its traces in ~/.stigmer: the container id file, its Ollama pid, config.yaml", async () => {
    await layout('go-docker-era');
    const flavour = await detect({ path: [], stigmerNetwork: 'bridge' });
    expect(flavour.kind).toBe('docker-cli');
    const evidence = flavour.evidence.join('\n');
    expect(evidence).toContain(`~${path.sep}${path.join('.stigmer', 'data', 'agent-runner.containerid')}`);
    expect(evidence).toContain('llm.pid');
    expect(evidence).toContain('config.yaml');
  });

  it('counts config.yaml alone as a Stigmer of unknown CLI: its runner shares the host network on Linux, and is taken as bridged elsewhere', async () => {
    await mkdir(path.join(home, '.stigmer'));
    await cp(path.join(FIXTURES, 'go-docker-era', '.stigmer', 'config.yaml'), path.join(home, '.stigmer', 'config.yaml'));
    expect(await detect({ stigmerNetwork: 'host' })).toMatchObject({ kind: 'docker-cli', network: 'host' });
    expect(await detect({ stigmerNetwork: 'bridge' })).toMatchObject({ kind: 'docker-cli', network: 'bridge' });
  });

  it("is native with the Go CLI's Python runtime under ~/.stigmer/runtimes/agent-runner/, even with the Go binary on PATH", async () => {
    await layout('go-native');
    await goNativeRuntime(home);
    await goBinary();
    const flavour = await detect({ stigmerNetwork: 'bridge' });
    expect(flavour.kind).toBe('native');
    expect(flavour.evidence[0]).toContain(path.join('runtimes', 'agent-runner'));
    expect(needsBridgeRoute(flavour)).toBe(false);
  });

  it('is native with the runner the TypeScript CLI installed under ~/.stigmer/runtimes/<version>/', async () => {
    await layout('ts-native');
    const flavour = await detect({ stigmerNetwork: 'bridge' });
    expect(flavour.kind).toBe('native');
    expect(flavour.evidence.join('\n')).toContain(path.join('3.13.0', 'node_modules', '@stigmer', 'runner-slim', 'main.js'));
  });

  it('honours STIGMER_RUNTIMES_DIR, where the TypeScript CLI looks for its runtimes', async () => {
    const elsewhere = path.join(root, 'runtimes');
    await cp(path.join(FIXTURES, 'ts-native', '.stigmer', 'runtimes'), elsewhere, { recursive: true });
    await mkdir(path.join(home, '.stigmer'));
    const ctx = testContext({ env: { HOME: home, PATH: '', STIGMER_RUNTIMES_DIR: elsewhere } });
    const install = await readStigmerInstall(ctx, { home, env: ctx.env, path });
    expect(classifyFlavour(install, undefined, 'bridge').kind).toBe('native');
  });

  it('is native with a live runner process named by ~/.stigmer/data/runner.pid; not with a dead one, nor with a reused pid', async () => {
    await mkdir(path.join(home, '.stigmer', 'data'), { recursive: true });
    await cp(path.join(FIXTURES, 'ts-native', '.stigmer', 'data', 'runner.pid'), path.join(home, '.stigmer', 'data', 'runner.pid'));
    // The process table is the one thing faked: whether pid 52117 is alive, and what /proc says it runs.
    const withProcess = async (alive: boolean, cmdline: string | undefined) => {
      const ctx = testContext({ env: { HOME: home, PATH: '' }, alive: (pid) => alive && pid === 52117 });
      const real = ctx.fs;
      const proc = '/proc/52117/cmdline';
      ctx.fs = {
        ...real,
        inspect: async (file, options) => (file === proc ? (cmdline === undefined ? undefined : { kind: 'file', mode: 0o444, uid: 0, gid: 0, size: 0 }) : real.inspect(file, options)),
        readText: async (file, options) => (file === proc ? cmdline : real.readText(file, options)),
      };
      return classifyFlavour(await readStigmerInstall(ctx, { home, env: ctx.env, path }), undefined, 'bridge');
    };
    const runner = `node\0${home}/.stigmer/runtimes/3.13.0/node_modules/@stigmer/runner-slim/main.js\0`;
    const live = await withProcess(true, runner);
    expect(live.kind).toBe('native');
    expect(live.evidence[0]).toMatch(/^a runner process \(pid 52117: node .*runner-slim\/main\.js\) named by ~.*runner\.pid$/);
    expect((await withProcess(false, runner)).kind).toBe('none');
    expect((await withProcess(true, 'bash\0-l\0')).kind).toBe('none');
    // Where there is no /proc (macOS, Windows), a live pid is taken at its word.
    expect((await withProcess(true, undefined)).kind).toBe('native');
  });

  it.skipIf(needs.symlinks)('is native with the TypeScript CLI on PATH (npm install -g @stigmer/cli), naming its version' + because(needs.symlinks), async () => {
    await npmGlobalCli();
    const flavour = await detect({ path: [path.join(root, 'npm', 'bin')], stigmerNetwork: 'bridge' });
    expect(flavour.kind).toBe('native');
    expect(flavour.evidence[0]).toMatch(/^the TypeScript CLI @stigmer\/cli 3\.13\.0 on PATH \(.*stigmer → .*dist\/cli\/stigmer\.js\)$/);
  });

  it("is native with npm's Windows shim stigmer.cmd on PATH", async () => {
    await writeFile(path.join(bin, 'stigmer.cmd'), '@ECHO off\r\nGOTO start\r\n:find_dp0\r\nSET dp0=%~dp0\r\nEXIT /b\r\n:start\r\nSETLOCAL\r\nCALL :find_dp0\r\n"%_prog%"  "%dp0%\\node_modules\\@stigmer\\cli\\dist\\cli\\stigmer.js" %*\r\n');
    expect((await detect({ stigmerNetwork: 'bridge' })).kind).toBe('native');
  });

  it('takes the first stigmer on PATH, as a shell would', async () => {
    await npmGlobalCli().catch(() => undefined);
    await goBinary();
    const first = await detect({ path: [bin, path.join(root, 'npm', 'bin')], stigmerNetwork: 'bridge' });
    expect(first.kind).toBe('docker-cli');
  });
});
