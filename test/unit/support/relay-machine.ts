/**
 * A Linux machine for the relay's apply/undo tests: a temporary --root with real files, the real
 * apply machinery, and the fake systemctl/iptables of fake-relay-systemd.ts (systemd 252 as
 * measured). One per test: create it in beforeEach, clean it up in afterEach.
 */
import path from 'node:path';
import { linuxPlatform } from '../../../platforms/linux/index.ts';
import { IPTABLES_LOCATIONS, SERVICE_PATH, SOCKET_PATH } from '../../../platforms/linux/relay.ts';
import type { Plan, RelayFacts } from '../../../platforms/types.ts';
import type { Applier } from '../../../scripts/apply.ts';
import { SystemFiles } from '../../../scripts/system-files.ts';
import { NOT_FOUND, tempRoot, testContext, type TestContext } from './context.ts';
import { FakeRelaySystemd } from './fake-relay-systemd.ts';
import { listener, PORT } from './facts.ts';

export interface RelayMachine {
  root: string;
  fake: FakeRelaySystemd;
  ctx: TestContext;
  applier: Applier;
  cleanup(): Promise<void>;
  /** What inspect would find on this machine before setup: a rootful engine, iptables, no relay yet. */
  relayFacts(overrides?: Partial<RelayFacts>): RelayFacts;
  /** The relay plan for those facts, with Ollama on 127.0.0.1. */
  relayPlan(relay?: RelayFacts): Plan;
}

export async function createRelayMachine(): Promise<RelayMachine> {
  const { root, cleanup } = await tempRoot();
  const fake = new FakeRelaySystemd(root);
  const ctx = testContext({
    exec: async (command, args) => {
      if (command === 'systemctl') return fake.systemctl(args);
      if (IPTABLES_LOCATIONS.includes(command)) return fake.iptables(args);
      return NOT_FOUND;
    },
  });
  const applier: Applier = { ctx, support: linuxPlatform, files: new SystemFiles(ctx, [], path.posix), stateDir: path.join(root, 'var/lib/stigmer-setup') };
  const relayFacts = (overrides: Partial<RelayFacts> = {}): RelayFacts => ({
    paths: { socket: path.join(root, SOCKET_PATH), service: path.join(root, SERVICE_PATH) },
    gateway: { address: '172.17.0.1', from: 'test' },
    bridges: [{ name: 'bridge', subnet: '172.17.0.0/16', interface: 'docker0' }],
    bpfFirewall: false,
    iptables: '/usr/sbin/iptables',
    proxyd: '/usr/lib/systemd/systemd-socket-proxyd',
    systemd: true,
    ollamaUnit: false,
    foreignHostStatus: 403,
    preflight: { ok: true },
    ...overrides,
  });
  const relayPlan = (relay = relayFacts()): Plan => linuxPlatform.relay!.plan(relay, { port: PORT, elevate: [], listeners: [listener('127.0.0.1')] });
  return { root, fake, ctx, applier, cleanup, relayFacts, relayPlan };
}
