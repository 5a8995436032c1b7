/**
 * Hand-made Facts for the pure checks and plans. `facts()` starts from a machine that works after
 * setup (systemd unit with our drop-in, Ollama on 0.0.0.0:11434, a bridge-networked agent-runner
 * that reaches it); each test overrides only what its case is about.
 */
import path from 'node:path';
import { linuxPlatform } from '../../../platforms/linux/index.ts';
import type { ManualDetection } from '../../../platforms/linux/manual.ts';
import { manualProblems, manualStrategy } from '../../../platforms/linux/manual.ts';
import { snapDetection, snapStrategy } from '../../../platforms/linux/snap.ts';
import type { SystemdDetection } from '../../../platforms/linux/systemd.ts';
import { DROP_IN_PATH, systemdProblems, systemdStrategy } from '../../../platforms/linux/systemd.ts';
import type { ContainerProbeResult } from '../../../scripts/container-probe.ts';
import type { Facts } from '../../../scripts/facts.ts';
import type { NetworkAddress } from '../../../scripts/context.ts';
import type { Listener, ProcessInfo } from '../../../scripts/listeners.ts';
import { bindScope } from '../../../scripts/ollama-host.ts';
import type { ContainerInfo } from '../../../scripts/parsers/docker.ts';
import type { DockerNetwork } from '../../../scripts/parsers/docker-json.ts';
import { parseStigmerConfig } from '../../../scripts/stigmer-config.ts';

export const PORT = 11434;
export const RUNNER = 'stigmer-agent-runner';
export const RUNNER_URL = `http://host.docker.internal:${PORT}`;

let nextInode = 1000;

/** This machine's interfaces: loopback, a LAN card and Docker's bridge. */
export const ADDRESSES: NetworkAddress[] = [
  { name: 'lo', address: '127.0.0.1', family: 4, internal: true },
  { name: 'eth0', address: '192.168.1.10', family: 4, internal: false },
  { name: 'docker0', address: '172.17.0.1', family: 4, internal: false },
];

/** One LISTEN socket, as readListeners reports it. */
export function listener(address: string, options: { port?: number; owner?: ProcessInfo } = {}): Listener {
  return {
    address,
    port: options.port ?? PORT,
    family: address.includes(':') ? 6 : 4,
    scope: bindScope(address),
    inode: nextInode++,
    owner: options.owner,
  };
}

export function systemdDetection(overrides: Partial<SystemdDetection> = {}, root = '/'): SystemdDetection {
  const effectiveHost = 'effectiveHost' in overrides ? overrides.effectiveHost : '0.0.0.0:11434';
  const detection: SystemdDetection = {
    strategy: 'linux-systemd',
    description: 'systemd unit ollama.service (/etc/systemd/system/ollama.service)',
    systemdRunning: true,
    unitPath: '/etc/systemd/system/ollama.service',
    activeState: 'active',
    effectiveHost,
    configuredHost: effectiveHost,
    configuredIn: effectiveHost === undefined ? undefined : DROP_IN_PATH,
    dropIns: [],
    ourDropIn: { path: path.join(root, DROP_IN_PATH) },
    ...overrides,
  };
  // The same problems the real detect computes from what it found.
  return { ...detection, problems: overrides.problems ?? systemdProblems(detection) };
}

export function manualDetection(overrides: Partial<ManualDetection> = {}): ManualDetection {
  const process: ProcessInfo = overrides.process ?? { pid: 4242, argv: ['ollama', 'serve'] };
  const startedByStigmer = overrides.startedByStigmer ?? false;
  const description = startedByStigmer ? `\`ollama serve\` started by Stigmer (pid ${process.pid})` : `a hand-started \`${process.argv.join(' ')}\` (pid ${process.pid})`;
  return {
    strategy: 'linux-manual',
    description,
    process,
    startedByStigmer,
    serverPid: process.pid,
    problems: manualProblems(description, startedByStigmer),
    ...overrides,
  };
}

export { snapDetection };

export function runnerContainer(overrides: Partial<ContainerInfo> = {}): ContainerInfo {
  return {
    name: RUNNER,
    running: true,
    networkMode: 'bridge',
    env: new Map([['OLLAMA_BASE_URL', RUNNER_URL]]),
    extraHosts: ['host.docker.internal:host-gateway'],
    image: 'stigmer/agent-runner:latest',
    ...overrides,
  };
}

/** What the probe inside the agent-runner found. */
export function probe(outcome: ContainerProbeResult['outcome'], overrides: Partial<ContainerProbeResult> = {}): ContainerProbeResult {
  return { outcome, url: RUNNER_URL, via: RUNNER, address: '172.17.0.1', ...(outcome === 'ok' ? { status: 200, models: 1 } : {}), ...overrides };
}

export function facts(overrides: Partial<Facts> = {}): Facts {
  const strategy = overrides.strategy ?? systemdStrategy;
  const detection = 'detection' in overrides ? overrides.detection : systemdDetection({ dropIns: [{ path: DROP_IN_PATH, ollamaHost: ['0.0.0.0:11434'] }] });
  return {
    platform: 'linux',
    support: linuxPlatform,
    wsl: false,
    port: PORT,
    installations: detection ? [{ strategy, detection }] : [],
    strategy,
    detection,
    listeners: [listener('0.0.0.0')],
    hostProbe: { ok: true, url: `http://127.0.0.1:${PORT}`, version: '0.17.1', models: ['qwen2.5-coder:7b'] },
    docker: { state: 'ok', runtime: 'native', operatingSystem: 'Debian GNU/Linux 12 (bookworm)', serverVersion: '20.10.24' },
    containerName: RUNNER,
    container: runnerContainer(),
    containerProbe: probe('ok'),
    expectedModel: 'qwen2.5-coder:7b',
    addresses: ADDRESSES,
    networks: [BRIDGE_NETWORK],
    proxies: [{ source: 'this shell' }],
    exposure: [],
    stigmer: parseStigmerConfig('/home/user/.stigmer/config.yaml', undefined, {}),
    ...overrides,
  };
}

/** Docker's default bridge, as `docker network inspect bridge` reports it on a native engine. */
export const BRIDGE_NETWORK: DockerNetwork = { name: 'bridge', driver: 'bridge', subnets: ['172.17.0.0/16'], gateways: ['172.17.0.1'], bridgeInterface: 'docker0' };

/** Facts for Ollama started by hand (no service), with its process as the listener's owner. */
export function manualFacts(overrides: Partial<Facts> = {}, detection: Partial<ManualDetection> = {}): Facts {
  const manual = manualDetection(detection);
  return facts({
    strategy: manualStrategy,
    detection: manual,
    listeners: [listener('127.0.0.1', { owner: manual.process })],
    ...overrides,
  });
}

export function snapFacts(host: string | undefined, overrides: Partial<Facts> = {}): Facts {
  return facts({ strategy: snapStrategy, detection: snapDetection(host), ...overrides });
}
