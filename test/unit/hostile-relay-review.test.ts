/**
 * A hostile review of the relay (issue 14 §2): what a user of an installer that touches system
 * config would hit. Each test is a case found wrong in review; it runs the real apply/undo
 * machinery with real files under a temporary --root, and the fake systemctl/iptables of
 * support/fake-relay-systemd.ts (systemd 252 as measured), or the parsers on the text systemd reads.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { linuxPlatform } from '../../platforms/linux/index.ts';
import { IPTABLES_LOCATIONS, SERVICE_PATH, SOCKET_PATH } from '../../platforms/linux/relay.ts';
import type { Plan, RelayFacts } from '../../platforms/types.ts';
import { applySetup, applyUndo, planUndo, type Applier } from '../../scripts/apply.ts';
import { allowedFor, readRecord } from '../../scripts/undo-record.ts';
import type { TestContext } from './support/context.ts';
import type { FakeRelaySystemd } from './support/fake-relay-systemd.ts';
import { createRelayMachine, type RelayMachine } from './support/relay-machine.ts';
import { listener, PORT } from './support/facts.ts';
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

async function record() {
  return readRecord(ctx, allowedFor(linuxPlatform, { root, home: '/nonexistent-home', env: {} }), applier.stateDir);
}

describe.skipIf(needs.proc)('relay undo and rollback' + because(needs.proc), () => {
  it('undo on a machine where systemd is no longer PID 1 removes the units and the wants link, instead of failing and putting them back', async () => {
    expect((await applySetup(applier, relayPlan(), {})).ok).toBe(true);
    // Rebooted without systemd as init (WSL with systemd turned off, another init): nothing runs,
    // no chain exists, and systemctl can only edit files.
    Object.assign(fake, { booted: false, active: false, chain: false, hook: undefined, loaded: {} });
    const state = await record();
    const { changes } = await planUndo(applier, state!.record, new Date());
    const outcome = await applyUndo(applier, changes, state!);
    expect(outcome.error).toBeUndefined();
    expect(outcome.ok).toBe(true);
    expect(existsSync(path.join(root, SOCKET_PATH))).toBe(false);
    expect(existsSync(path.join(root, SERVICE_PATH))).toBe(false);
    expect(fake.enabled).toBe(false);
  });
});

describe.skipIf(needs.proc)('undo after a unit was deleted by hand' + because(needs.proc), () => {
  it.each([SOCKET_PATH, SERVICE_PATH])('%s removed by hand while the relay runs: undo still stops, disables and removes the rest, chain included', async (gone) => {
    const { rm } = await import('node:fs/promises');
    expect((await applySetup(applier, relayPlan(), {})).ok).toBe(true);
    await rm(path.join(root, gone));
    const state = await record();
    const { changes } = await planUndo(applier, state!.record, new Date());
    const outcome = await applyUndo(applier, changes, state!);
    expect(outcome.error).toBeUndefined();
    expect(existsSync(path.join(root, SOCKET_PATH)) || existsSync(path.join(root, SERVICE_PATH))).toBe(false);
    expect(fake).toMatchObject({ enabled: false, active: false, hook: undefined });
  });
});

describe('our units read back the way systemd reads them', () => {
  const options = { gateway: '172.17.0.1', port: PORT, target: '127.0.0.1', subnets: ['172.17.0.0/16'], iptables: '/usr/sbin/iptables', proxyd: '/usr/lib/systemd/systemd-socket-proxyd', ollamaUnit: false };

  it('a continued IPAddressAllow= line (a comment inside the continuation skipped) is one list, and an allow of everyone is no protection', async () => {
    const { parseSocketUnit, renderSocketUnit } = await import('../../platforms/linux/relay-units.ts');
    const text = renderSocketUnit({ ...options, protection: 'ip-address-allow' }).replace('IPAddressAllow=172.17.0.0/16', 'IPAddressAllow=172.17.0.0/16 \\\n# let the VPN in too\n  0.0.0.0/0');
    const parsed = parseSocketUnit(text);
    // systemd reads "IPAddressAllow=172.17.0.0/16   0.0.0.0/0": everyone may connect.
    expect(parsed.allowed).toEqual(['172.17.0.0/16', '0.0.0.0/0']);
    expect(parsed.protection).toBe('none');
    expect(parseSocketUnit(renderSocketUnit({ ...options, protection: 'ip-address-allow' }).replace('IPAddressAllow=172.17.0.0/16', 'IPAddressAllow=any')).protection).toBe('none');
  });

  it('an empty ExecStartPre= resets the list: the chain is no longer added, so the protection is none', async () => {
    const { parseSocketUnit, renderSocketUnit } = await import('../../platforms/linux/relay-units.ts');
    const rendered = renderSocketUnit({ ...options, protection: 'iptables' });
    expect(parseSocketUnit(rendered).protection).toBe('iptables');
    const reset = rendered.replace(/(ExecStopPost=[^\n]*\n)(?![\s\S]*ExecStopPost=)/, '$1ExecStartPre=\n');
    expect(reset).toMatch(/^ExecStartPre=$/m);
    expect(parseSocketUnit(reset).protection).toBe('none');
  });
});

describe.skipIf(needs.proc)('drop-ins for our own units' + because(needs.proc), () => {
  it('a drop-in that lets everyone in is read with the unit: doctor no longer reads the relay as protected, and the plan names it', async () => {
    const { inspectRelay } = await import('../../platforms/linux/relay.ts');
    const bpf = relayFacts({ bpfFirewall: true });
    const plan = linuxPlatform.relay!.plan(bpf, { port: PORT, elevate: [], listeners: [listener('127.0.0.1')], firewall: { verdict: 'allowed' } as never });
    expect(plan.changes[0]).toMatchObject({ type: 'file' });
    expect((await applySetup(applier, plan, {})).ok).toBe(true);
    const dir = path.join(root, SOCKET_PATH + '.d');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'wide.conf'), '[Socket]\nIPAddressAllow=\nIPAddressAllow=any\n');
    await fake.systemctl(['daemon-reload']);
    const networks = [{ name: 'bridge', driver: 'bridge', subnets: ['172.17.0.0/16'], gateways: ['172.17.0.1'], bridgeInterface: 'docker0' }];
    const found = await inspectRelay(ctx, { root, home: '/nonexistent-home', env: {}, port: PORT, listeners: [listener('127.0.0.1')], nativeRootfulDocker: true, networks, path: path.posix });
    expect(found.installed?.protection).toBe('none');
    expect(found.installed?.dropIns).toEqual([path.join(root, SOCKET_PATH + '.d/wide.conf')]);
    const again = linuxPlatform.relay!.plan({ ...found, ...relayFacts({ bpfFirewall: true, installed: found.installed }) }, { port: PORT, elevate: [], listeners: [listener('127.0.0.1')], firewall: { verdict: 'allowed' } as never });
    expect(again.warnings.join(' ')).toContain('wide.conf');
  });
});

describe('hostile gateway values from Docker', () => {
  it.each(['0.0.0.0', '127.0.0.1', '224.0.0.1', '255.255.255.255'])('host-gateway-ips %s in daemon.json is never where the relay listens', async (address) => {
    const { gatewayFromDaemonConfig, readGatewayFrom } = await import('../../platforms/linux/relay.ts');
    const { renderSocketUnit, RelayUnitError } = await import('../../platforms/linux/relay-units.ts');
    const config = gatewayFromDaemonConfig(JSON.stringify({ 'host-gateway-ips': [address] }));
    const read = readGatewayFrom({ configured: { config: config!, from: '/etc/docker/daemon.json' }, networks: [] });
    // 0.0.0.0 would be ListenStream=0.0.0.0:11434: every address, the LAN's included, behind a
    // chain hooked for -d 0.0.0.0/32, which matches no packet.
    expect(read).toEqual({ problem: expect.stringContaining(address) });
    expect(() => renderSocketUnit({ gateway: address, port: PORT, target: '127.0.0.1', protection: 'iptables', subnets: [], iptables: '/usr/sbin/iptables', proxyd: '/usr/lib/systemd/systemd-socket-proxyd', ollamaUnit: false })).toThrow(RelayUnitError);
  });
});

describe.skipIf(needs.proc)('a drop-in deleted since the last reload' + because(needs.proc), () => {
  it('systemd still lists it, the file is gone: the relay is still ours, not blocked as unreadable', async () => {
    const { inspectRelay } = await import('../../platforms/linux/relay.ts');
    const { rm } = await import('node:fs/promises');
    expect((await applySetup(applier, relayPlan(), {})).ok).toBe(true);
    const dir = path.join(root, SOCKET_PATH + '.d');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'old.conf'), '[Socket]\nBacklog=64\n');
    await fake.systemctl(['daemon-reload']);
    await rm(path.join(dir, 'old.conf'));
    const networks = [{ name: 'bridge', driver: 'bridge', subnets: ['172.17.0.0/16'], gateways: ['172.17.0.1'], bridgeInterface: 'docker0' }];
    const found = await inspectRelay(ctx, { root, home: '/nonexistent-home', env: {}, port: PORT, listeners: [listener('127.0.0.1')], nativeRootfulDocker: true, networks, path: path.posix });
    expect(found.installed).toMatchObject({ ours: true });
    expect(found.installed?.problem).toBeUndefined();
  });
});

describe.skipIf(needs.proc)("doctor's reading of the iptables protection" + because(needs.proc), () => {
  it('a chain whose rules were flushed (its hook still in INPUT) is not in force: packets fall through to INPUT, the LAN gets in', async () => {
    const { inspectRelay } = await import('../../platforms/linux/relay.ts');
    // The inspection finds iptables on the real machine's paths only.
    if (!IPTABLES_LOCATIONS.some((file) => existsSync(file))) return;
    expect((await applySetup(applier, relayPlan(), {})).ok).toBe(true);
    const networks = [{ name: 'bridge', driver: 'bridge', subnets: ['172.17.0.0/16'], gateways: ['172.17.0.1'], bridgeInterface: 'docker0' }];
    const inspect = () => inspectRelay(ctx, { root, home: '/nonexistent-home', env: {}, port: PORT, listeners: [listener('127.0.0.1')], nativeRootfulDocker: true, networks, path: path.posix });
    expect((await inspect()).installed?.protectionActive).toBe(true);
    // `iptables -F STIGMER-OLLAMA-RELAY` (or a tool that empties chains it does not know):
    // the hook jumps into an empty chain, returns, and INPUT's policy decides.
    fake.iptables(['-w', '-F', 'STIGMER-OLLAMA-RELAY']);
    expect(fake.hook).toBeDefined();
    expect((await inspect()).installed?.protectionActive).toBe(false);
  });
});

describe('the preflight when the relay could not serve the default bridge', () => {
  it('a default bridge with its own name ("bridge": "mybr0", podman0) on a machine without a BPF firewall: no relay, and the reason says why', async () => {
    const { relayPreflight } = await import('../../platforms/linux/relay.ts');
    const request = { nativeRootfulDocker: true, port: PORT, listeners: [listener('127.0.0.1')] };
    const odd = relayFacts({ bridges: [{ name: 'bridge', subnet: '172.17.0.0/16', interface: 'mybr0' }] });
    // The chain accepts lo, docker0 and br-+ only: every container on mybr0 would be dropped,
    // and setup would report a relay installed that no container can use.
    expect(relayPreflight(odd, request)).toMatch(/mybr0/);
    expect(relayPreflight(relayFacts(), request)).toBeUndefined();
    // With systemd's IPAddressAllow= (by subnet, not interface) it can serve it.
    expect(relayPreflight({ ...odd, bpfFirewall: true }, request)).toBeUndefined();
  });
});

describe('a second setup after a first', () => {
  it('--host 0.0.0.0 then --relay: the refusal tells how to get back to loopback, not to bind 0.0.0.0 again', async () => {
    const { decidePlan } = await import('../../scripts/plan.ts');
    const { facts } = await import('./support/facts.ts');
    const reason = 'Ollama already listens on 0.0.0.0:11434, beyond loopback';
    // facts(): ollama.service with our drop-in OLLAMA_HOST=0.0.0.0:11434, listening on 0.0.0.0.
    const plan = decidePlan(facts({ relay: relayFacts({ preflight: { ok: false, reason } }) }), { target: { host: '0.0.0.0', port: PORT }, explicitHost: false, elevate: [], relay: true });
    expect(plan.changes).toEqual([]);
    const fix = plan.blockers.map((blocker) => blocker.fix).join(' ');
    expect(fix).not.toContain('--host 0.0.0.0');
    expect(fix).toContain(`--host 127.0.0.1:${PORT}`);
  });
});

describe.skipIf(needs.proc)('undo of a relay says what it does' + because(needs.proc), () => {
  it('undo of the relay alone never claims to restart Ollama: the relay never stops it', async () => {
    const { run } = await import('../../scripts/cli.ts');
    expect((await applySetup(applier, relayPlan(), {})).ok).toBe(true);
    expect(await run(['undo', '--yes', '--json', '--root', root], ctx)).toBe(0);
    const report = ctx.json.at(-1) as { ok: boolean; summary: string };
    expect(report.ok).toBe(true);
    expect(report.summary).not.toMatch(/restart Ollama/);
    expect(report.summary).toMatch(/relay/);
    expect(existsSync(path.join(root, SOCKET_PATH))).toBe(false);
  });
});

describe.skipIf(needs.proc)('a failed relay install tells the truth' + because(needs.proc), () => {
  it.each(['enable', 'restart', 'is-active'])('systemctl %s fails during the install: every unit removed, nothing enabled, active or hooked, and the message says Ollama runs as before', async (verb) => {
    fake.failNext = { verb, stderr: `Failed to ${verb}: Access denied` };
    const outcome = await applySetup(applier, relayPlan(), {});
    expect(outcome.ok).toBe(false);
    expect(outcome.rolledBack).toBe(true);
    expect(outcome.error).toMatch(/Ollama was not restarted, so it runs as before/);
    expect(existsSync(path.join(root, SOCKET_PATH)) || existsSync(path.join(root, SERVICE_PATH))).toBe(false);
    expect(fake).toMatchObject({ enabled: false, active: false, chain: false, hook: undefined });
  });

  it('the socket fails to bind (a port clash): rolled back, and the message does not claim Ollama was restarted', async () => {
    fake.clash = true;
    const outcome = await applySetup(applier, relayPlan(), {});
    expect(outcome.ok).toBe(false);
    expect(outcome.rolledBack).toBe(true);
    expect(outcome.error).toMatch(/rolled back/);
    // The relay's restart never stops or starts Ollama: it runs as it did.
    expect(outcome.error).not.toMatch(/Ollama was restarted/);
    expect(outcome.error).toMatch(/Ollama was not restarted|Ollama runs as before/);
  });
});

describe.skipIf(needs.proc)('--relay twice' + because(needs.proc), () => {
  it('the second run reads the first one back and changes nothing', async () => {
    const { inspectRelay, relayPreflight } = await import('../../platforms/linux/relay.ts');
    if (!IPTABLES_LOCATIONS.some((file) => existsSync(file))) return;
    expect((await applySetup(applier, relayPlan(), {})).ok).toBe(true);
    const networks = [{ name: 'bridge', driver: 'bridge', subnets: ['172.17.0.0/16'], gateways: ['172.17.0.1'], bridgeInterface: 'docker0' }];
    const found = await inspectRelay(ctx, { root, home: '/nonexistent-home', env: {}, port: PORT, listeners: [listener('127.0.0.1')], nativeRootfulDocker: true, networks, path: path.posix });
    const relay = { ...relayFacts(), installed: found.installed };
    expect(relayPreflight(relay, { nativeRootfulDocker: true, port: PORT, listeners: [listener('127.0.0.1')] })).toBeUndefined();
    const again = relayPlan(relay);
    expect(again.changes).toEqual([]);
    expect(again.summary).toMatch(/in place/);
  });
});

describe('relay then --host 0.0.0.0', () => {
  it('the plan that removes the relay prints the removal it runs, not "enable" and "restart" of the relay', () => {
    const installed = { socketPath: path.join(root ?? '/', SOCKET_PATH), servicePath: path.join(root ?? '/', SERVICE_PATH), listen: { host: '172.17.0.1', port: PORT }, protection: 'iptables' as const, allowed: [], socketState: 'active', protectionActive: true, ours: true, socketFile: { content: Buffer.from('# Written by stigmer-setup'), mode: 0o644, uid: 0, gid: 0 }, serviceFile: { content: Buffer.from('# Written by stigmer-setup'), mode: 0o644, uid: 0, gid: 0 } };
    const removal = linuxPlatform.relay!.removal(relayFacts({ installed }), { elevate: ['sudo'], target: { host: '0.0.0.0', port: PORT } });
    const restart = removal?.changes.find((change) => change.type === 'restart');
    expect(restart?.type).toBe('restart');
    const printed = restart?.type === 'restart' ? restart.steps.map((step) => step.join(' ')) : [];
    expect(printed).toContain('sudo systemctl disable stigmer-ollama-relay.socket stigmer-ollama-relay.service');
    expect(printed.some((step) => / (enable|restart) stigmer-ollama-relay\.socket$/.test(step))).toBe(false);
  });
});

describe.skipIf(needs.symlinks || needs.proc)('a drop-in that is a symlink' + because(needs.symlinks || needs.proc), () => {
  it('is never followed; our units stay ours (setup may still update or remove them), and the protection reads as unknown', async () => {
    const { inspectRelay } = await import('../../platforms/linux/relay.ts');
    const { symlink } = await import('node:fs/promises');
    if (!IPTABLES_LOCATIONS.some((file) => existsSync(file))) return;
    expect((await applySetup(applier, relayPlan(), {})).ok).toBe(true);
    const dir = path.join(root, SOCKET_PATH + '.d');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(root, 'shared.conf'), '[Socket]\nIPAddressAllow=any\n');
    await symlink(path.join(root, 'shared.conf'), path.join(dir, 'shared.conf'));
    await fake.systemctl(['daemon-reload']);
    const networks = [{ name: 'bridge', driver: 'bridge', subnets: ['172.17.0.0/16'], gateways: ['172.17.0.1'], bridgeInterface: 'docker0' }];
    const found = await inspectRelay(ctx, { root, home: '/nonexistent-home', env: {}, port: PORT, listeners: [listener('127.0.0.1')], nativeRootfulDocker: true, networks, path: path.posix });
    expect(found.installed).toMatchObject({ ours: true, dropIns: [path.join(dir, 'shared.conf')] });
    expect(found.installed?.protectionActive).toBeUndefined();
  });
});
