/**
 * The bridge-only relay (issue 14 §2): its units, the gateway it listens on, the preflight that
 * decides whether it is offered, and the plans that install it, prefer it, refuse it, and remove
 * it for an explicit --host. Facts are hand-made; the gateway readers run on real captured
 * `docker network inspect` output (test/fixtures/SOURCES.md).
 */
import { describe, expect, it } from 'vitest';
import { linuxPlatform } from '../../platforms/linux/index.ts';
import { bpfFirewallFromMounts, chooseProtection, gatewayFromDaemonConfig, gatewayFromDockerdArgs, readGatewayFrom, relayPreflight, relayTarget, SERVICE_PATH, SOCKET_PATH } from '../../platforms/linux/relay.ts';
import { parseServiceUnit, parseSocketUnit, RelayUnitError, renderServiceUnit, renderSocketUnit, type RelayUnitOptions } from '../../platforms/linux/relay-units.ts';
import type { RelayFacts } from '../../platforms/types.ts';
import { parseNetworkInspect } from '../../scripts/parsers/docker-json.ts';
import { decidePlan } from '../../scripts/plan.ts';
import { facts, listener, manualFacts, probe, PORT, systemdDetection } from './support/facts.ts';
import { fixture } from './support/fixtures.ts';

const UNIT: RelayUnitOptions = {
  gateway: '172.17.0.1',
  port: PORT,
  target: '127.0.0.1',
  protection: 'iptables',
  subnets: ['172.17.0.0/16', '172.18.0.0/16'],
  iptables: '/usr/sbin/iptables',
  proxyd: '/usr/lib/systemd/systemd-socket-proxyd',
  ollamaUnit: true,
};

describe('relay units', () => {
  it('the socket listens on the gateway with FreeBind and hooks its own chain into INPUT for exactly that address and port', () => {
    const socket = renderSocketUnit(UNIT);
    expect(socket.split('\n')[0]).toMatch(/^# Written by stigmer-setup/);
    expect(socket).toContain('ListenStream=172.17.0.1:11434\nFreeBind=yes\n');
    expect(socket).toContain('ExecStartPre=/usr/sbin/iptables -w -I INPUT 1 -d 172.17.0.1/32 -p tcp --dport 11434 -j STIGMER-OLLAMA-RELAY');
    expect(socket).toContain('ExecStartPre=/usr/sbin/iptables -w -A STIGMER-OLLAMA-RELAY -i br-+ -j ACCEPT');
    expect(socket).toContain('ExecStopPost=-/usr/sbin/iptables -w -X STIGMER-OLLAMA-RELAY');
    expect(socket).not.toMatch(/BindToDevice|IPAddressAllow/);
    expect(socket).toContain('[Install]\nWantedBy=sockets.target');
  });

  it('with systemd IP filtering, the socket allows only the bridge subnets and the proxy may dial only loopback', () => {
    const options = { ...UNIT, protection: 'ip-address-allow' as const };
    expect(renderSocketUnit(options)).toContain('IPAddressAllow=172.17.0.0/16 172.18.0.0/16\nIPAddressDeny=any');
    expect(renderSocketUnit(options)).not.toContain('iptables');
    expect(renderServiceUnit(options)).toContain('IPAddressAllow=localhost\nIPAddressDeny=any');
  });

  it('the service is a Type=simple socket-proxyd to the loopback literal, with no PrivateNetwork, and Wants= ollama.service only when it exists', () => {
    const service = renderServiceUnit(UNIT);
    expect(service).toContain('ExecStart=/usr/lib/systemd/systemd-socket-proxyd 127.0.0.1:11434');
    expect(service).toContain('Requires=stigmer-ollama-relay.socket\nAfter=stigmer-ollama-relay.socket\nWants=ollama.service\nAfter=ollama.service');
    expect(service).not.toMatch(/Type=notify|PrivateNetwork|Requires=ollama/);
    expect(renderServiceUnit({ ...UNIT, ollamaUnit: false })).not.toContain('ollama.service');
  });

  it('reads its own units back: listen address, target, protection and allowed subnets', () => {
    expect(parseSocketUnit(renderSocketUnit(UNIT))).toEqual({ ours: true, listen: { host: '172.17.0.1', port: PORT }, protection: 'iptables', allowed: [] });
    expect(parseSocketUnit(renderSocketUnit({ ...UNIT, protection: 'ip-address-allow' }))).toMatchObject({ protection: 'ip-address-allow', allowed: ['172.17.0.0/16', '172.18.0.0/16'] });
    expect(parseServiceUnit(renderServiceUnit(UNIT))).toEqual({ ours: true, target: { host: '127.0.0.1', port: PORT } });
  });

  it('reads a hand-edited unit as systemd would: a reset ListenStream= and a second address are no single listen address; no marker is not ours', () => {
    const edited = renderSocketUnit(UNIT).replace('ListenStream=172.17.0.1:11434', 'ListenStream=\nListenStream=10.0.0.5:11434\nListenStream=[::]:11434');
    expect(parseSocketUnit(edited).listen).toBeUndefined();
    const reset = renderSocketUnit(UNIT).replace('ListenStream=172.17.0.1:11434', 'ListenStream=1.2.3.4:1\nListenStream=\nListenStream=10.0.0.5:11434');
    expect(parseSocketUnit(reset).listen).toEqual({ host: '10.0.0.5', port: 11434 });
    expect(parseSocketUnit(renderSocketUnit(UNIT).split('\n').slice(1).join('\n')).ours).toBe(false);
  });

  // Every value comes from the machine: systemd reads % as a specifier, and a newline or a space
  // would start another directive or another argument.
  const hostile = ['%h', '172.17.0.1%n', '172.17.0.1\nExecStartPre=/bin/sh -c id', '172.17.0.1 ', '\x1b[2J', '172.17.0.1\t', '$HOME', "'x'"];
  for (const field of ['gateway', 'target', 'proxyd', 'iptables'] as const) {
    it(`refuses a hostile ${field} rather than writing it into a unit`, () => {
      for (const value of hostile) {
        const options = { ...UNIT, [field]: field === 'proxyd' || field === 'iptables' ? `/usr/lib/${value}` : value };
        expect(() => renderSocketUnit(options), `${field} ${JSON.stringify(value)}`).toThrow(RelayUnitError);
        expect(() => renderServiceUnit(options), `${field} ${JSON.stringify(value)}`).toThrow(RelayUnitError);
      }
    });
  }
  it('refuses a hostile subnet, a non-IPv4 gateway, a target beyond loopback and a bad port', () => {
    for (const subnet of ['172.17.0.0/16 10.0.0.0/8', '172.17.0.0/16%i', '172.17.0.0/16\n', 'any', '::/0', '172.17.0.0/33']) {
      expect(() => renderSocketUnit({ ...UNIT, protection: 'ip-address-allow', subnets: [subnet] }), subnet).toThrow(RelayUnitError);
    }
    expect(() => renderSocketUnit({ ...UNIT, gateway: 'fe80::1' })).toThrow(/not one a relay unit can hold/);
    expect(() => renderSocketUnit({ ...UNIT, target: '192.168.1.10' })).toThrow(RelayUnitError);
    expect(() => renderSocketUnit({ ...UNIT, target: 'localhost' })).toThrow(RelayUnitError);
    expect(() => renderSocketUnit({ ...UNIT, port: 0 })).toThrow(RelayUnitError);
    expect(() => renderSocketUnit({ ...UNIT, gateway: '%' })).toThrow(/specifier/);
  });
});

describe('the gateway host-gateway resolves to', () => {
  const capturedBridge = parseNetworkInspect(fixture('docker/network-inspect-bridge-with-gateway-captured-debian12.json'));
  const olderBridge = parseNetworkInspect(fixture('docker/network-inspect-bridge-captured-debian12.json'));
  const ipv6Network = parseNetworkInspect(fixture('docker/network-inspect-user-bridge-ipv6-captured-debian12.json'));

  it("is the default bridge's IPAM gateway", () => {
    expect(readGatewayFrom({ networks: capturedBridge })).toEqual({ gateway: { address: '172.17.0.1', from: '`docker network inspect bridge` (IPAM gateway)' } });
  });

  it("is docker0's own address when the engine lists the bridge without a gateway (Docker 20.10)", () => {
    expect(olderBridge[0]?.gateways).toEqual([]);
    const result = readGatewayFrom({ networks: olderBridge, interfaceAddress: (name) => (name === 'docker0' ? '172.17.0.1' : undefined) });
    expect(result).toMatchObject({ gateway: { address: '172.17.0.1', from: expect.stringContaining('docker0') } });
  });

  it('follows a default bridge moved off 172.17.0.1 (a custom bip), and reports its IPv6 gateway', () => {
    // The captured network has the IPAM shape of such a default bridge: 10.99.0.1 and an IPv6 gateway.
    const moved = ipv6Network.map((network) => ({ ...network, name: 'bridge' }));
    expect(readGatewayFrom({ networks: moved })).toEqual({ gateway: { address: '10.99.0.1', from: expect.any(String), ipv6: 'fd00:5e:7::1' } });
  });

  it('is the configured host-gateway-ips when set (daemon.json or dockerd flags), IPv6 entry reported', () => {
    const config = gatewayFromDaemonConfig('{"bip": "10.99.0.1/24", "host-gateway-ips": ["192.168.50.1", "fd00::1"]}');
    expect(config).toEqual({ ipv4: '192.168.50.1', ipv6: 'fd00::1' });
    expect(readGatewayFrom({ configured: { config: config!, from: '/etc/docker/daemon.json' }, networks: capturedBridge })).toEqual({ gateway: { address: '192.168.50.1', from: '/etc/docker/daemon.json', ipv6: 'fd00::1' } });
    expect(gatewayFromDaemonConfig('{"host-gateway-ip": "10.1.2.3"}')).toEqual({ ipv4: '10.1.2.3', ipv6: undefined });
    expect(gatewayFromDaemonConfig('{"bip": "10.99.0.1/24"}')).toBeUndefined();
    expect(gatewayFromDaemonConfig('not json')).toBeUndefined();
    expect(gatewayFromDockerdArgs(['/usr/bin/dockerd', '-H', 'fd://', '--host-gateway-ip=10.5.0.1', '--host-gateway-ip', 'fd00::5'])).toEqual({ ipv4: '10.5.0.1', ipv6: 'fd00::5' });
  });

  it('is refused when host-gateway-ips has only an IPv6 address', () => {
    const config = gatewayFromDaemonConfig('{"host-gateway-ips": ["fd00::1"]}')!;
    expect(readGatewayFrom({ configured: { config, from: '/etc/docker/daemon.json' }, networks: capturedBridge })).toEqual({ problem: expect.stringMatching(/no IPv4 address \(only fd00::1\)/) });
  });

  it('is refused when the default bridge is disabled ("bridge": "none") and nothing is configured', () => {
    expect(ipv6Network.some((network) => network.name === 'bridge')).toBe(false);
    expect(readGatewayFrom({ networks: ipv6Network })).toEqual({ problem: expect.stringMatching(/default bridge is disabled/) });
  });

  it('tells a cgroup2 mount from cgroup v1 in /proc/self/mounts', () => {
    expect(bpfFirewallFromMounts('cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n')).toBe(true);
    expect(bpfFirewallFromMounts('cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n')).toBe(true);
    expect(bpfFirewallFromMounts('tmpfs /sys/fs/cgroup tmpfs ro 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n')).toBe(false);
    expect(bpfFirewallFromMounts('cgroup2 /mnt/elsewhere cgroup2 rw 0 0\n')).toBe(false);
  });
});

/** Relay facts on a machine where the relay can be offered: the preflight's "pass" row. */
function relayFacts(overrides: Partial<RelayFacts> = {}): RelayFacts {
  return {
    paths: { socket: SOCKET_PATH, service: SERVICE_PATH },
    gateway: { address: '172.17.0.1', from: '`docker network inspect bridge` (IPAM gateway)' },
    bridges: [
      { name: 'bridge', subnet: '172.17.0.0/16', interface: 'docker0' },
      { name: 'compose_default', subnet: '172.18.0.0/16', interface: 'br-0123456789ab' },
    ],
    bpfFirewall: false,
    iptables: '/usr/sbin/iptables',
    proxyd: '/usr/lib/systemd/systemd-socket-proxyd',
    systemd: true,
    ollamaUnit: true,
    foreignHostStatus: 403,
    preflight: { ok: true },
    ...overrides,
  };
}

const NATIVE = { nativeRootfulDocker: true, port: PORT, listeners: [listener('127.0.0.1')] };

describe('the relay preflight', () => {
  const rows: [string, Partial<RelayFacts>, Partial<typeof NATIVE & { engine: string }>, RegExp | undefined][] = [
    ['passes: systemd, rootful native Docker, a gateway, proxyd, iptables, Ollama proven loopback-only', {}, {}, undefined],
    ['passes with systemd IP filtering and no iptables', { bpfFirewall: true, iptables: undefined }, {}, undefined],
    ['fails without systemd as PID 1', { systemd: false }, {}, /systemd is not PID 1/],
    ['fails on rootless Docker', {}, { nativeRootfulDocker: false, engine: 'rootless Docker' }, /rootful Docker engine .* this one is rootless Docker/],
    ['fails on Docker Desktop', {}, { nativeRootfulDocker: false, engine: 'Docker Desktop' }, /this one is Docker Desktop/],
    ['fails when the gateway is unreadable', { gateway: undefined, gatewayProblem: 'the default bridge is disabled' }, {}, /default bridge is disabled/],
    ['fails without systemd-socket-proxyd', { proxyd: undefined }, {}, /systemd-socket-proxyd is not installed/],
    ['fails with no protection available', { bpfFirewall: false, iptables: undefined }, {}, /neither systemd's IP filtering .* nor iptables/],
    ['fails when Ollama answers a foreign Host header (not loopback-only)', { foreignHostStatus: 200 }, {}, /answered HTTP 200 .* not proven/],
    ['fails when Ollama does not answer', { foreignHostStatus: undefined }, {}, /does not answer on 127\.0\.0\.1:11434/],
    ['fails when something listens on 0.0.0.0', {}, { listeners: [listener('127.0.0.1'), listener('0.0.0.0')] }, /listens on 0\.0\.0\.0:11434/],
    ['fails when something listens on [::]', {}, { listeners: [listener('127.0.0.1'), listener('::')] }, /listens on \[::\]:11434/],
    ['fails when something else listens on the gateway', {}, { listeners: [listener('127.0.0.1'), listener('172.17.0.1')] }, /other than stigmer-setup's relay listens on 172\.17\.0\.1:11434/],
    ['fails when Ollama listens on IPv6 loopback only', {}, { listeners: [listener('::1')] }, /IPv6 loopback only/],
  ];
  for (const [name, relay, request, reason] of rows) {
    it(name, () => {
      expect(relayPreflight(relayFacts(relay), { ...NATIVE, ...request })).toEqual(reason ? expect.stringMatching(reason) : undefined);
    });
  }
  it('passes when the listener on the gateway is our own relay', () => {
    const installed = { socketPath: SOCKET_PATH, servicePath: SERVICE_PATH, listen: { host: '172.17.0.1', port: PORT }, protection: 'iptables' as const, allowed: [], socketState: 'active', ours: true };
    expect(relayPreflight(relayFacts({ installed }), { ...NATIVE, listeners: [listener('127.0.0.1'), listener('172.17.0.1')] })).toBeUndefined();
  });
  it("forwards to Ollama's own loopback literal", () => {
    expect(relayTarget([listener('127.0.0.2')])).toBe('127.0.0.2');
    expect(relayTarget([listener('::1'), listener('127.0.0.1')])).toBe('127.0.0.1');
    expect(relayTarget(undefined)).toBe('127.0.0.1');
  });
  it('keeps an installed iptables protection; uses IP filtering only where systemd enforces it and the firewall lets bridges in', () => {
    const allowed = { verdict: 'allowed' as const, unreadable: [], subnets: [] };
    const blocked = { verdict: 'blocked' as const, by: 'ufw', unreadable: [], subnets: [] };
    expect(chooseProtection(relayFacts({ bpfFirewall: true }), allowed)).toBe('ip-address-allow');
    expect(chooseProtection(relayFacts({ bpfFirewall: true }), blocked)).toBe('iptables');
    expect(chooseProtection(relayFacts({ bpfFirewall: true }), undefined)).toBe('iptables');
    expect(chooseProtection(relayFacts({ bpfFirewall: false }), allowed)).toBe('iptables');
    const installed = { socketPath: SOCKET_PATH, servicePath: SERVICE_PATH, protection: 'iptables' as const, allowed: [], ours: true };
    expect(chooseProtection(relayFacts({ bpfFirewall: true, installed }), allowed)).toBe('iptables');
  });
});

describe('plans with the relay', () => {
  // A hand-started Ollama on loopback, a bridged runner refused: today's plan could only say "restart it on 0.0.0.0".
  const loopbackOllama = (relay: RelayFacts, extra: Parameters<typeof facts>[0] = {}) => manualFacts({ containerProbe: probe('refused'), relay, ...extra });
  const request = { target: { host: '0.0.0.0', port: PORT }, explicitHost: false, elevate: ['sudo'] };

  it('prefers the relay when a change is needed and the preflight passes: two units and the relay restart, Ollama stays on loopback', () => {
    const plan = decidePlan(loopbackOllama(relayFacts()), request);
    expect(plan.strategy).toBe('linux-relay');
    expect(plan.target).toEqual({ host: '127.0.0.1', port: PORT });
    expect(plan.blockers).toEqual([]);
    expect(plan.changes.map((change) => (change.type === 'file' ? `${change.action} ${change.path}` : change.type === 'restart' ? `restart ${change.strategy}` : change.type))).toEqual([
      `create ${SOCKET_PATH}`,
      `create ${SERVICE_PATH}`,
      'restart linux-relay',
    ]);
    expect(plan.summary).toMatch(/listens on 172\.17\.0\.1:11434.* forwards to Ollama on 127\.0\.0\.1:11434\. Ollama stays on loopback.*--host 0\.0\.0\.0:11434/);
    expect(plan.warnings.join('\n')).toMatch(/host\.docker\.internal .* 403/);
    expect(plan.warnings.join('\n')).toMatch(/STIGMER-OLLAMA-RELAY/);
    expect(plan.changes.every((change) => change.privileged)).toBe(true);
  });

  it('says so when the relay also opens ufw for the bridges, and warns that an IPv6 host-gateway is not relayed', () => {
    const firewall = { verdict: 'blocked' as const, by: 'ufw', unreadable: [], subnets: ['172.17.0.0/16'] };
    const plan = decidePlan(loopbackOllama(relayFacts({ gateway: { address: '172.17.0.1', from: 'x', ipv6: 'fd00::1' } }), { firewall }), request);
    expect(plan.warnings.join('\n')).toMatch(/ahead of|before ufw's chains/);
    expect(plan.warnings.join('\n')).toMatch(/fd00::1 \(IPv6\), which the relay does not serve/);
  });

  it('changes nothing when the relay is in place and running', () => {
    const first = decidePlan(loopbackOllama(relayFacts()), request);
    const files = first.changes.filter((change) => change.type === 'file');
    const installed = {
      socketPath: SOCKET_PATH,
      servicePath: SERVICE_PATH,
      listen: { host: '172.17.0.1', port: PORT },
      protection: 'iptables' as const,
      allowed: [],
      socketState: 'active',
      protectionActive: true,
      ours: true,
      socketFile: { content: files[0]!.after!, mode: 0o644, uid: 0, gid: 0 },
      serviceFile: { content: files[1]!.after!, mode: 0o644, uid: 0, gid: 0 },
    };
    const again = decidePlan(loopbackOllama(relayFacts({ installed }), { listeners: [listener('127.0.0.1'), listener('172.17.0.1')] }), { ...request, relay: true });
    expect(again.changes).toEqual([]);
    expect(again.summary).toMatch(/The relay is in place/);
    // Stopped since: only the restart.
    const stopped = decidePlan(loopbackOllama(relayFacts({ installed: { ...installed, socketState: 'inactive' } })), request);
    expect(stopped.changes.map((change) => change.type)).toEqual(['restart']);
  });

  it('re-plans a relay whose IPAddressAllow= was measured not in force with the iptables chain (the fix doctor names: setup --yes --relay)', () => {
    const firewall = { verdict: 'allowed' as const, unreadable: [], subnets: ['172.17.0.0/16'] };
    const first = decidePlan(loopbackOllama(relayFacts({ bpfFirewall: true }), { firewall }), request);
    const files = first.changes.filter((change) => change.type === 'file');
    expect(files[0]!.after!.toString()).toContain('IPAddressDeny=any');
    const installed = {
      socketPath: SOCKET_PATH,
      servicePath: SERVICE_PATH,
      listen: { host: '172.17.0.1', port: PORT },
      protection: 'ip-address-allow' as const,
      allowed: ['172.17.0.0/16', '172.18.0.0/16'],
      socketState: 'active',
      ours: true,
      socketFile: { content: files[0]!.after!, mode: 0o644, uid: 0, gid: 0 },
      serviceFile: { content: files[1]!.after!, mode: 0o644, uid: 0, gid: 0 },
    };
    const listeners = [listener('127.0.0.1'), listener('172.17.0.1')];
    // Measured in force: nothing to do.
    const enforced = decidePlan(loopbackOllama(relayFacts({ bpfFirewall: true, installed: { ...installed, protectionActive: true } }), { firewall, listeners }), { ...request, relay: true });
    expect(enforced.changes).toEqual([]);
    // Measured open: the units are rewritten with the chain, and the relay restarted to load them.
    const open = decidePlan(loopbackOllama(relayFacts({ bpfFirewall: true, installed: { ...installed, protectionActive: false } }), { firewall, listeners }), { ...request, relay: true });
    const socket = open.changes.find((change) => change.type === 'file' && change.path === SOCKET_PATH);
    expect(socket?.type === 'file' && socket.after?.toString()).toContain('-j STIGMER-OLLAMA-RELAY');
    expect(socket?.type === 'file' && socket.after?.toString()).not.toContain('IPAddressDeny=any');
    expect(open.changes.at(-1)?.type).toBe('restart');
    // A stopped socket was not measured open: it keeps its IPAddressAllow= and is only started.
    const stopped = decidePlan(loopbackOllama(relayFacts({ bpfFirewall: true, installed: { ...installed, socketState: 'inactive', protectionActive: false } }), { firewall, listeners: [listener('127.0.0.1')] }), { ...request, relay: true });
    expect(stopped.changes.map((change) => change.type)).toEqual(['restart']);
  });

  it('gives today\'s plan, saying why, when the preflight fails and --relay was not given', () => {
    const plan = decidePlan(facts({ containerProbe: probe('refused'), detection: systemdDetection({ effectiveHost: undefined }), listeners: [listener('127.0.0.1')], relay: relayFacts({ preflight: { ok: false, reason: 'systemd-socket-proxyd is not installed' } }) }), request);
    expect(plan.strategy).toBe('linux-systemd');
    expect(plan.warnings).toContain('No bridge-only relay instead: systemd-socket-proxyd is not installed.');
  });

  it('--relay with a failing preflight is a blocker naming the reason, and changes nothing', () => {
    const plan = decidePlan(loopbackOllama(relayFacts({ preflight: { ok: false, reason: 'the relay is for a rootful Docker engine' } })), { ...request, relay: true });
    expect(plan.changes).toEqual([]);
    expect(plan.blockers).toEqual([{ message: 'No bridge-only relay: the relay is for a rootful Docker engine.', fix: expect.stringContaining('--host 0.0.0.0:11434') }]);
  });

  it('--relay overrides "nothing to change" (a bridge container that is not Stigmer\'s may need it)', () => {
    const plan = decidePlan(manualFacts({ containerProbe: probe('ok'), listeners: [listener('0.0.0.0')], relay: relayFacts() }), request);
    expect(plan.changes).toEqual([]);
    expect(decidePlan(loopbackOllama(relayFacts(), { containerProbe: probe('ok'), container: undefined }), { ...request, relay: true }).strategy).toBe('linux-relay');
  });

  it('refuses while ollama.service has a pending unit edit (the relay\'s daemon-reload would load it)', () => {
    const detection = systemdDetection({ effectiveHost: undefined, needsReload: true, unloadedDropIns: ['/etc/systemd/system/ollama.service.d/mine.conf'] });
    const plan = decidePlan(facts({ detection, containerProbe: probe('refused'), listeners: [listener('127.0.0.1')], relay: relayFacts() }), request);
    expect(plan.changes).toEqual([]);
    expect(plan.blockers[0]?.message).toMatch(/mine\.conf not loaded.*daemon-reload would load them too/);
  });

  it('an explicit --host 0.0.0.0 removes an installed relay first, then makes the strategy\'s own change', () => {
    const content = Buffer.from(renderSocketUnit(UNIT));
    const installed = { socketPath: SOCKET_PATH, servicePath: SERVICE_PATH, listen: { host: '172.17.0.1', port: PORT }, protection: 'iptables' as const, allowed: [], socketState: 'active', ours: true, socketFile: { content, mode: 0o644, uid: 0, gid: 0 }, serviceFile: { content: Buffer.from(renderServiceUnit(UNIT)), mode: 0o644, uid: 0, gid: 0 } };
    const base = facts({ detection: systemdDetection({ effectiveHost: undefined }), listeners: [listener('127.0.0.1'), listener('172.17.0.1')], relay: relayFacts({ installed }) });
    const plan = decidePlan(base, { ...request, explicitHost: true });
    expect(plan.changes.map((change) => (change.type === 'file' ? `${change.action} ${change.path}` : change.type === 'restart' ? `restart ${change.strategy}` : change.type))).toEqual([
      `delete ${SOCKET_PATH}`,
      `delete ${SERVICE_PATH}`,
      'restart linux-relay',
      'file /etc/systemd/system/ollama.service.d/stigmer-setup.conf'.replace('file', 'create'),
      'restart linux-systemd',
    ]);
    expect(plan.summary).toMatch(/^Remove the bridge-only relay/);
    // A specific address that is not the gateway does not clash: the relay stays.
    const specific = decidePlan(base, { ...request, explicitHost: true, target: { host: '192.168.1.10', port: PORT } });
    expect(specific.changes.some((change) => change.type === 'restart' && change.strategy === 'linux-relay')).toBe(false);
  });

  it('the relay is wired into Linux: inspection, plan, removal and a strategy that never detects an installation', async () => {
    expect(linuxPlatform.relay).toBeDefined();
    const strategy = linuxPlatform.strategies.find((candidate) => candidate.id === 'linux-relay');
    expect(await strategy?.detect({} as never, {} as never)).toBeUndefined();
    expect(strategy?.writablePaths?.({ root: '/r', home: '/h', env: {} }, linuxPlatform.path)).toEqual([`/r${SOCKET_PATH}`, `/r${SERVICE_PATH}`]);
  });
});

describe('the relay next to the other checks and options', () => {
  it('PID 1 holding a socket (the relay\'s) is not a hand-started Ollama', async () => {
    const { plainOwner } = await import('../../platforms/linux/manual.ts');
    const systemd = { pid: 1, argv: ['/lib/systemd/systemd'], unit: 'init.scope' };
    const ollama = { pid: 4242, argv: ['ollama', 'serve'] };
    expect(plainOwner({ listeners: [listener('172.17.0.1', { owner: systemd })] })).toBeUndefined();
    expect(plainOwner({ listeners: [listener('172.17.0.1', { owner: systemd }), listener('127.0.0.1', { owner: ollama })] })).toBe(ollama);
  });

  it('ollama.listener is content with loopback-only behind an active relay of ours, and not behind a stopped one', async () => {
    const { listenerCheck } = await import('../../scripts/checks/listener.ts');
    const installed = { socketPath: SOCKET_PATH, servicePath: SERVICE_PATH, listen: { host: '172.17.0.1', port: PORT }, protection: 'iptables' as const, allowed: [], socketState: 'active', ours: true };
    const base = manualFacts({ containerProbe: { skipped: 'no container' }, container: undefined });
    expect(listenerCheck.diagnose({ ...base, relay: relayFacts({ installed }) })).toMatchObject({ status: 'ok', message: expect.stringMatching(/relay on 172\.17\.0\.1:11434 forwards/) });
    expect(listenerCheck.diagnose({ ...base, relay: relayFacts({ installed: { ...installed, socketState: 'failed' } }) }).status).toBe('fail');
  });

  it('--relay with --host, or with doctor, is bad usage (exit 2), nothing looked at', async () => {
    const { run } = await import('../../scripts/cli.ts');
    const { testContext } = await import('./support/context.ts');
    for (const argv of [['--relay', '--host', '0.0.0.0:11434', '--json'], ['doctor', '--relay', '--json']]) {
      const ctx = testContext();
      expect(await run(argv, ctx)).toBe(2);
      expect(ctx.calls).toEqual([]);
      expect(ctx.json[0]).toMatchObject({ ok: false, error: expect.stringMatching(/--relay/) });
    }
  });
});

describe('the relay and a plan that widens the bind without --host', () => {
  it('removes our relay first when the preflight fails and today\'s plan binds 0.0.0.0 (Ollama could not bind next to it)', () => {
    const content = Buffer.from(renderSocketUnit(UNIT));
    const installed = { socketPath: SOCKET_PATH, servicePath: SERVICE_PATH, listen: { host: '172.17.0.1', port: PORT }, protection: 'iptables' as const, allowed: [], socketState: 'active', ours: true, socketFile: { content, mode: 0o644, uid: 0, gid: 0 } };
    const relay = relayFacts({ installed, foreignHostStatus: undefined, preflight: { ok: false, reason: 'Ollama does not answer on 127.0.0.1:11434' } });
    const plan = decidePlan(facts({ detection: systemdDetection({ effectiveHost: undefined }), containerProbe: probe('refused'), listeners: [], relay }), { target: { host: '0.0.0.0', port: PORT }, explicitHost: false, elevate: [] });
    expect(plan.changes.map((change) => change.type === 'file' ? change.action : change.type)).toEqual(['delete', 'restart', 'create', 'restart']);
    expect(plan.summary).toMatch(/^Remove the bridge-only relay/);
    expect(plan.warnings).toContain('No bridge-only relay instead: Ollama does not answer on 127.0.0.1:11434.');
  });
});
