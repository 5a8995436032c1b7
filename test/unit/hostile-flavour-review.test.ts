/**
 * Hostile review of issue 14 part 1 (flavour → plan): inputs where "nothing needs to change" would
 * be wrong and the runner would then fail with "All connection attempts failed".
 */
import { cp, mkdir, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { linuxPlatform } from '../../platforms/linux/index.ts';
import type { PlanRequest } from '../../platforms/types.ts';
import { runChecks } from '../../scripts/checks/index.ts';
import type { Facts } from '../../scripts/facts.ts';
import { decidePlan, reachDecision } from '../../scripts/plan.ts';
import { classifyFlavour, needsBridgeRoute, readStigmerInstall, type StigmerFlavour } from '../../scripts/stigmer-flavour.ts';
import { tempRoot, testContext } from './support/context.ts';
import { facts, listener, probe, runnerContainer, systemdDetection } from './support/facts.ts';
import { goNativeRuntime } from './support/stigmer-layout.ts';

const REQUEST: PlanRequest = { target: { host: '0.0.0.0', port: 11434 }, explicitHost: false, elevate: [] };

/** Linux, Ollama on loopback, the runner container on --network host; the probe from inside it is refused. */
function hostRunnerOn(docker: Facts['docker'], flavour?: StigmerFlavour): Facts {
  const container = runnerContainer({ networkMode: 'host', extraHosts: [] });
  return facts({
    support: linuxPlatform,
    platform: 'linux',
    docker,
    detection: systemdDetection({ effectiveHost: undefined }),
    listeners: [listener('127.0.0.1')],
    container,
    containerProbe: probe('refused', { via: 'stigmer-agent-runner', url: 'http://localhost:11434' }),
    flavour: flavour ?? { kind: 'runner-container', network: 'host', networkMode: 'host', running: true, evidence: [] },
  });
}

describe("--network host is the host's loopback only on a rootful native engine", () => {
  // Docker Desktop for Linux runs containers in a VM: "host" is the VM's network (stigmer.md §5).
  const desktop: Facts['docker'] = { state: 'ok', runtime: 'docker-desktop', operatingSystem: 'Docker Desktop', serverVersion: '27.3.1' };
  // Rootless Docker: "host" is RootlessKit's namespace, not the host's.
  const rootless: Facts['docker'] = { state: 'ok', runtime: 'native', operatingSystem: 'Ubuntu 24.04 LTS', serverVersion: '27.3.1', rootless: true };

  for (const [name, docker] of [['Docker Desktop for Linux', desktop], ['rootless Docker', rootless]] as const) {
    it(`${name}: a host-network runner that can't reach Ollama is not "nothing needs to change"`, () => {
      const state = hostRunnerOn(docker);
      expect(reachDecision(state).changeNeeded).toBe(true);
      const probeFinding = runChecks(state).find((finding) => finding.id === 'container.probe');
      expect(probeFinding?.status).toBe('fail');
    });

    it(`${name}: the Go CLI that will start a host-network runner lets the probe decide`, () => {
      const state = { ...hostRunnerOn(docker, { kind: 'docker-cli', network: 'host', evidence: ["Stigmer's configuration (~/.stigmer/config.yaml)"] }), container: undefined };
      expect(decidePlan(state, REQUEST).summary).not.toMatch(/nothing needs to change for Stigmer/);
    });
  }

  it('a rootful native engine: a stopped host-network runner (nothing to probe from) still needs nothing', () => {
    const state = {
      ...hostRunnerOn({ state: 'ok', runtime: 'native', operatingSystem: 'Debian GNU/Linux 12 (bookworm)', serverVersion: '20.10.24' }),
      container: runnerContainer({ networkMode: 'host', extraHosts: [], running: false }),
      containerProbe: { skipped: 'stigmer-agent-runner exists but is not running' },
    };
    expect(reachDecision(state).changeNeeded).toBe(false);
  });
});

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/stigmer');

describe('the `stigmer` on PATH is the one that will run', () => {
  it('macOS: Homebrew\'s Docker-era Go CLI 0.0.12 next to a runtime the TypeScript CLI left (npx) is a bridged runner to come, not native', async () => {
    const { root, cleanup } = await tempRoot();
    try {
      const home = path.join(root, 'home');
      const bin = path.join(root, 'bin');
      const cellar = path.join(root, 'Cellar', 'stigmer', '0.0.12', 'bin');
      await mkdir(cellar, { recursive: true });
      await mkdir(bin, { recursive: true });
      await cp(path.join(FIXTURES, 'ts-native', '.stigmer'), path.join(home, '.stigmer'), { recursive: true });
      const binary = path.join(cellar, 'stigmer');
      await writeFile(binary, Buffer.from([0xcf, 0xfa, 0xed, 0xfe]), { mode: 0o755 });
      await truncate(binary, 48 * 1024 * 1024);
      await symlink(binary, path.join(bin, 'stigmer'));
      const ctx = testContext({ env: { HOME: home, PATH: bin }, alive: () => false });
      const install = await readStigmerInstall(ctx, { home, env: ctx.env, path });
      const flavour = classifyFlavour(install, undefined, 'bridge');
      expect(flavour).toMatchObject({ kind: 'docker-cli', network: 'bridge' });
      expect(needsBridgeRoute(flavour)).toBe(true);
      expect(flavour.evidence.join('\n')).toContain('runner-slim');
    } finally {
      await cleanup();
    }
  });
});

describe("a probe from inside Stigmer's own runner speaks for Stigmer", () => {
  // Linux, rootful native Docker, the Docker-era runner on --network host, but its OLLAMA_BASE_URL
  // names host.docker.internal (a user's config.yaml), which --network host doesn't map: the runner
  // itself fails, so doctor must not call that a note about other containers.
  it('a host-network runner whose own request fails is a failure, not a note', () => {
    const state = facts({
      support: linuxPlatform,
      detection: systemdDetection({ effectiveHost: undefined }),
      listeners: [listener('127.0.0.1')],
      container: runnerContainer({ networkMode: 'host', extraHosts: [] }),
      containerProbe: probe('dns', { via: 'stigmer-agent-runner', address: undefined }),
      flavour: { kind: 'runner-container', network: 'host', networkMode: 'host', running: true, evidence: [] },
    });
    const findings = runChecks(state);
    const failing = findings.filter((finding) => finding.id === 'container.probe' || finding.id === 'container.alias').map((finding) => finding.status);
    expect(failing).toContain('fail');
    expect(failing).not.toContain('note');
  });
});

describe('a Docker-era runner container while the engine is down', () => {
  it('macOS, Docker Desktop not started: the id file of an unless-stopped runner next to a native runtime is a bridged runner to come', async () => {
    const { root, cleanup } = await tempRoot();
    try {
      const home = path.join(root, 'home');
      await cp(path.join(FIXTURES, 'go-docker-era', '.stigmer'), path.join(home, '.stigmer'), { recursive: true });
      await goNativeRuntime(home);
      const ctx = testContext({ env: { HOME: home, PATH: '' }, alive: () => false });
      const install = await readStigmerInstall(ctx, { home, env: ctx.env, path });
      const down = classifyFlavour(install, undefined, 'bridge', true);
      expect(down).toMatchObject({ kind: 'docker-cli', network: 'bridge' });
      expect(needsBridgeRoute(down)).toBe(true);
      // With the engine answering and no such container, the id file is stale: native.
      expect(classifyFlavour(install, undefined, 'bridge', false).kind).toBe('native');
    } finally {
      await cleanup();
    }
  });
});
