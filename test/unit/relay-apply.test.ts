/**
 * The relay applied and undone through the real apply machinery (backups, the undo record,
 * rollback), with real files under a temporary --root and a fake systemctl/iptables that behaves
 * like systemd 252 (support/fake-relay-systemd.ts): a unit is read only at daemon-reload, and
 * disable reloads before it unlinks.
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { linuxPlatform } from '../../platforms/linux/index.ts';
import { IPTABLES_LOCATIONS, SERVICE_PATH, SOCKET_PATH } from '../../platforms/linux/relay.ts';
import type { Plan, RelayFacts } from '../../platforms/types.ts';
import { applySetup, applyUndo, planUndo, type Applier } from '../../scripts/apply.ts';
import { allowedFor, readRecord } from '../../scripts/undo-record.ts';
import { NOT_FOUND, testContext, type TestContext } from './support/context.ts';
import type { FakeRelaySystemd } from './support/fake-relay-systemd.ts';
import { createRelayMachine, type RelayMachine } from './support/relay-machine.ts';
import { PORT } from './support/facts.ts';
import { because, needs } from './support/portability.ts';

let machine: RelayMachine;
let root: string;
let fake: FakeRelaySystemd;
let ctx: TestContext;
let applier: Applier;

beforeEach(async () => {
  machine = await createRelayMachine();
  ({ root, fake, ctx, applier } = machine);
});
afterEach(() => machine.cleanup());

const relayFacts = (overrides?: Partial<RelayFacts>): RelayFacts => machine.relayFacts(overrides);
const relayPlan = (relay?: RelayFacts): Plan => machine.relayPlan(relay);

/** The restart finds iptables on the real machine's paths (it runs the fake's answers for it). */
const noIptables = IPTABLES_LOCATIONS.some((file) => existsSync(file)) ? false : 'needs an iptables binary on a standard path';
const exists = (file: string) => stat(file).then(() => true, () => false);

describe.skipIf(needs.proc)('relay apply and undo' + because(needs.proc), () => {
  it('setup writes both units, reloads, enables and starts the socket, and its chain is in force; undo removes it all', async () => {
    const outcome = await applySetup(applier, relayPlan(), {});
    expect(outcome).toMatchObject({ ok: true });
    expect(await readFile(path.join(root, SOCKET_PATH), 'utf8')).toMatch(/^# Written by stigmer-setup/);
    expect((await stat(path.join(root, SERVICE_PATH))).mode & 0o777).toBe(0o644);
    expect(fake).toMatchObject({ enabled: true, active: true, chain: true, hook: '172.17.0.1/32' });

    const state = await readRecord(ctx, allowedFor(linuxPlatform, { root, home: '/nonexistent-home', env: {} }), applier.stateDir);
    expect(state?.record.restart).toEqual([{ strategy: 'linux-relay', job: path.join(root, SOCKET_PATH) }]);
    const { changes } = await planUndo(applier, state!.record, new Date());
    expect(changes.map((change) => change.type)).toEqual(['file', 'file', 'restart']);
    // What undo prints is what it runs: the removal.
    expect(changes[2]).toMatchObject({ type: 'restart', steps: [expect.arrayContaining(['stop']), ['systemctl', 'disable', 'stigmer-ollama-relay.socket', 'stigmer-ollama-relay.service'], ['systemctl', 'daemon-reload']] });
    expect(await applyUndo(applier, changes, state!)).toMatchObject({ ok: true });
    expect(await exists(path.join(root, SOCKET_PATH))).toBe(false);
    expect(await exists(path.join(root, SERVICE_PATH))).toBe(false);
    // Undo deleted the files before its restart: stopping first, while systemd still had the
    // old text loaded, ran ExecStopPost=, so the chain and its hook are gone too.
    expect(fake).toMatchObject({ enabled: false, active: false, chain: false, hook: undefined });
    const stop = fake.calls.findIndex((call) => call.join(' ') === 'systemctl stop stigmer-ollama-relay.socket stigmer-ollama-relay.service');
    const disable = fake.calls.map((call) => call[1]).lastIndexOf('disable');
    expect(stop).toBeGreaterThanOrEqual(0);
    expect(stop).toBeLessThan(disable);
  });

  it.skipIf(noIptables)('a chain left behind by a reload that lost ExecStopPost= is removed by the restart all the same', async () => {
    expect((await applySetup(applier, relayPlan(), {})).ok).toBe(true);
    const state = await readRecord(ctx, allowedFor(linuxPlatform, { root, home: '/nonexistent-home', env: {} }), applier.stateDir);
    const { changes } = await planUndo(applier, state!.record, new Date());
    // Someone ran daemon-reload between the delete and our restart: the unit's text is gone.
    const undoFiles = changes.filter((change) => change.type === 'file');
    await applyUndo(applier, undoFiles, state!).catch(() => undefined);
    await fake.systemctl(['daemon-reload']);
    fake.active = false;
    expect(fake.chain).toBe(true);
    const restart = linuxPlatform.strategies.find((strategy) => strategy.id === 'linux-relay')!;
    await restart.restart!(ctx, restart.restartChange!({ elevate: [], job: path.join(root, SOCKET_PATH), port: PORT }), async (argv) => {
      const result = await ctx.exec(argv[0]!, argv.slice(1));
      if (result.exitCode !== 0) throw new Error(result.stderr);
    });
    expect(fake).toMatchObject({ chain: false, hook: undefined, enabled: false });
  });

  it('a socket that does not start rolls everything back: units removed, relay disabled, no chain left', async () => {
    fake.clash = true;
    const outcome = await applySetup(applier, relayPlan(), {});
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toMatch(/stigmer-ollama-relay\.socket|Job for/);
    expect(outcome.error).toMatch(/rolled back/);
    expect(await exists(path.join(root, SOCKET_PATH))).toBe(false);
    expect(fake).toMatchObject({ enabled: false, active: false, chain: false });
    expect(await exists(path.join(applier.stateDir, 'undo.json'))).toBe(false);
  });

  it('a rollback before systemd ever loaded the units (the first reload failed) still ends clean', async () => {
    fake.failNext = { verb: 'daemon-reload', stderr: 'Failed to reload daemon: Access denied' };
    const outcome = await applySetup(applier, relayPlan(), {});
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toMatch(/Access denied.*Every change was rolled back/);
    expect(outcome.rolledBack).toBe(true);
    expect(fake).toMatchObject({ enabled: false, active: false, chain: false });
  });

  it('a changed gateway (a new bip) moves the relay: the old hook is removed by the old text before the new one starts', async () => {
    expect((await applySetup(applier, relayPlan(), {})).ok).toBe(true);
    const socketFile = await applier.files.read(path.join(root, SOCKET_PATH));
    const serviceFile = await applier.files.read(path.join(root, SERVICE_PATH));
    const installed = { socketPath: path.join(root, SOCKET_PATH), servicePath: path.join(root, SERVICE_PATH), listen: { host: '172.17.0.1', port: PORT }, protection: 'iptables' as const, allowed: [], socketState: 'active', protectionActive: true, ours: true, socketFile, serviceFile };
    const moved = relayPlan(relayFacts({ gateway: { address: '10.99.0.1', from: 'test' }, installed }));
    expect(moved.changes.map((change) => change.type)).toEqual(['file', 'restart']);
    const state = await readRecord(ctx, allowedFor(linuxPlatform, { root, home: '/nonexistent-home', env: {} }), applier.stateDir);
    expect((await applySetup(applier, moved, state!)).ok).toBe(true);
    expect(fake).toMatchObject({ active: true, chain: true, hook: '10.99.0.1/32' });
  });
});

describe.skipIf(needs.proc)('gatherFacts fills the relay facts on Linux' + because(needs.proc), () => {
  it('with a rootful native engine: Facts.relay, the bridge networks read once and shared, the firewall read though no probe ran', async () => {
    const { gatherFacts } = await import('../../scripts/facts.ts');
    const { fixture } = await import('./support/fixtures.ts');
    const info = fixture('docker/info-json-native-rootful-captured-debian12.json');
    const inspect = fixture('docker/network-inspect-bridge-with-gateway-captured-debian12.json');
    const docker = testContext({
      exec: async (command, args) => {
        if (command !== 'docker') return NOT_FOUND;
        if (args[0] === 'info') return { exitCode: 0, stdout: info, stderr: '' };
        if (args[0] === 'network' && args[1] === 'ls') return { exitCode: 0, stdout: 'e517020b2e16\n', stderr: '' };
        if (args[0] === 'network' && args[1] === 'inspect') return { exitCode: 0, stdout: inspect, stderr: '' };
        if (args[0] === 'image') return { exitCode: 0, stdout: '', stderr: '' };
        return { exitCode: 1, stdout: '', stderr: 'Error: No such object' };
      },
    });
    const found = await gatherFacts(docker, { support: linuxPlatform, root, port: PORT });
    expect(found.relay).toMatchObject({ gateway: { address: '172.17.0.1' }, bridges: [{ name: 'bridge', subnet: '172.17.0.0/16', interface: 'docker0' }], paths: { socket: path.join(root, SOCKET_PATH) } });
    expect(found.relay?.installed).toBeUndefined();
    expect(docker.calls.filter((call) => call.command === 'docker' && call.args[1] === 'inspect' && call.args[0] === 'network')).toHaveLength(1);
    expect(found.networks.map((network) => network.name)).toEqual(['bridge']);
    expect(found.firewall).toBeDefined();
    // Without a rootful native engine the preflight says why, and nothing extra is read.
    const none = testContext();
    const bare = await gatherFacts(none, { support: linuxPlatform, root, port: PORT });
    // (systemd is checked first, so which reason depends on the machine running the test.)
    expect(bare.relay?.preflight).toEqual({ ok: false, reason: expect.stringMatching(/systemd is not PID 1|rootful Docker engine .* not installed/) });
    expect(bare.firewall).toBeUndefined();
  });
});
