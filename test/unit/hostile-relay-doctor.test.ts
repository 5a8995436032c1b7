/**
 * Hostile values in what ollama.relay reads back (issue 14): the relay's units, `systemctl
 * is-active`, Docker's networks and daemon.json are all on the machine, so anything in them may be
 * crafted: control characters that would drive the terminal or split a pasted command, shell
 * syntax in a name, and lists large enough to make a careless check slow or its message endless.
 * Whatever comes in, the finding holds no control character (not in --json either), every command
 * is one pasteable command or says to type a value by hand, and the message stays bounded.
 */
import { describe, expect, it } from 'vitest';
import type { RelayFacts } from '../../platforms/types.ts';
import { containerProbeCheck } from '../../scripts/checks/container-probe.ts';
import { relayCheck } from '../../scripts/checks/relay.ts';
import type { Finding } from '../../scripts/checks/types.ts';
import type { Facts } from '../../scripts/facts.ts';
import { renderFindings } from '../../scripts/report.ts';
import { hasControl } from '../../scripts/text.ts';
import { facts, listener, probe, systemdDetection } from './support/facts.ts';

type Installed = NonNullable<RelayFacts['installed']>;

function relay(overrides: Partial<RelayFacts> = {}, installed: Partial<Installed> = {}): RelayFacts {
  return {
    installed: {
      socketPath: '/etc/systemd/system/stigmer-ollama-relay.socket',
      servicePath: '/etc/systemd/system/stigmer-ollama-relay.service',
      listen: { host: '172.17.0.1', port: 11434 },
      target: { host: '127.0.0.1', port: 11434 },
      protection: 'ip-address-allow',
      allowed: ['172.17.0.0/16'],
      ours: true,
      socketState: 'active',
      ...installed,
    },
    gateway: { address: '172.17.0.1', from: 'docker network inspect bridge' },
    bridges: [{ name: 'bridge', subnet: '172.17.0.0/16', interface: 'docker0' }],
    bpfFirewall: true,
    systemd: true,
    ollamaUnit: true,
    foreignHostStatus: 403,
    preflight: { ok: true },
    paths: { socket: '/etc/systemd/system/stigmer-ollama-relay.socket', service: '/etc/systemd/system/stigmer-ollama-relay.service' },
    ...overrides,
  };
}

function machine(relayFacts: RelayFacts, overrides: Partial<Facts> = {}): Facts {
  return facts({ detection: systemdDetection({ effectiveHost: undefined }), listeners: [listener('127.0.0.1')], relay: relayFacts, ...overrides });
}

/** Nothing in the finding a terminal would act on, in the text or in --json. */
function expectClean(finding: Omit<Finding, 'id'>): void {
  for (const field of [finding.message, finding.why, finding.fix]) if (field !== undefined) expect(hasControl(field), JSON.stringify(field)).toBe(false);
  expect(renderFindings([{ id: 'ollama.relay', ...finding }])).not.toMatch(/\x1b/);
}

const ESCAPE = '\x1b]0;pwned\x07\x1b[2J';

describe('ollama.relay with hostile values read back', () => {
  it('a control character in the listen address read back from the unit is shown escaped, and the command holding it says to type it by hand', () => {
    const hostile = `172.17.0.1${ESCAPE}`;
    const finding = relayCheck.diagnose(machine(relay({ bpfFirewall: false }, { listen: { host: hostile, port: 11434 }, protection: 'iptables', allowed: [], protectionActive: false })));
    expectClean(finding);
    expect(finding.status).toBe('warn');
    // Not the gateway any more (it is not the same string), and escaped where it is named.
    expect(finding.message).toContain(JSON.stringify(`${hostile}:11434`).slice(0, 40));
    expect(finding.fix).toContain("(type it by hand: it can't be pasted safely)");
  });

  it('a control character in the socket state or the configured-in path is escaped', () => {
    const state = relayCheck.diagnose(machine(relay({}, { socketState: `failed${ESCAPE}` }), { containerProbe: probe('refused') }));
    expectClean(state);
    expect(state.message).toContain('\\u001b');
    const detection = systemdDetection({ effectiveHost: '0.0.0.0:11434', configuredIn: `/etc/systemd/system/ollama.service.d/x.conf\n✓ ollama.relay  all good` });
    const clash = relayCheck.diagnose(machine(relay({ foreignHostStatus: undefined }), { detection, hostProbe: { ok: false, url: 'http://127.0.0.1:11434', kind: 'refused', error: 'ECONNREFUSED' }, containerProbe: probe('reset') }));
    expectClean(clash);
    expect(clash.status).toBe('fail');
    expect(clash.message).not.toContain('\n');
  });

  it('shell syntax in a unit file name or an interface name is quoted as one word', () => {
    const socket = relayCheck.diagnose(machine(relay({}, { socketPath: "/etc/systemd/system/x.socket'; reboot; '", socketState: 'failed' })));
    expect(socket.fix).toContain(`-u 'x.socket'\\''; reboot; '\\''' -u stigmer-ollama-relay.service`);
    const bridges = [{ name: 'lab', subnet: '172.20.0.0/16', interface: 'lab$(reboot)' }];
    const iface = relayCheck.diagnose(machine(relay({ bridges, bpfFirewall: false }, { protection: 'iptables', allowed: [], protectionActive: true })));
    expect(iface.fix).toMatch(/^sudo iptables -w -I STIGMER-OLLAMA-RELAY 1 -i 'lab\$\(reboot\)' -j ACCEPT/);
    const controlled = relayCheck.diagnose(machine(relay({ bridges: [{ name: `lab${ESCAPE}`, subnet: '172.20.0.0/16', interface: `lab${ESCAPE}` }], bpfFirewall: false }, { protection: 'iptables', allowed: [], protectionActive: true })));
    expectClean(controlled);
    expect(controlled.fix).toContain('type it by hand');
  });

  it('a hostile gateway and gatewayProblem are escaped and bounded', () => {
    const stale = relayCheck.diagnose(machine(relay({ gateway: { address: `10.0.0.1${ESCAPE}`, from: `daemon.json${ESCAPE}` } })));
    expectClean(stale);
    expect(stale.fix).toContain('renders the relay again for');
    const unread = relayCheck.diagnose(machine(relay({ gateway: undefined, gatewayProblem: `docker: ${'x'.repeat(100_000)}${ESCAPE}` })));
    expectClean(unread);
    expect(unread.status).toBe('ok');
    expect(unread.message.length).toBeLessThan(1000);
  });

  it('entries IPAddressAllow= does not take (bad octets, prefixes, IPv6, names) cover nothing', () => {
    const bridges = [{ name: 'app', subnet: '172.18.0.0/16', interface: 'br-0123456789ab' }];
    const finding = relayCheck.diagnose(machine(relay({ bridges }, { allowed: ['172.18.0.0/99', '999.18.0.0/16', '172.18.0.0/16 extra', 'fd00::/8', 'everything', ''] })));
    expect(finding.status).toBe('warn');
    expect(finding.message).toContain('Docker network app (172.18.0.0/16) is not in');
  });

  it('huge subnet and allow lists are judged, and the message names a few and counts the rest', () => {
    const bridges = Array.from({ length: 200_000 }, (_, index) => ({ name: `net${index}`, subnet: `10.${index >> 8 & 255}.${index & 255}.0/24`, interface: `br-${index.toString(16).padStart(12, '0')}` }));
    // Every other /24 is allowed, in a list as long as the networks' own.
    const allowed = bridges.filter((_, index) => index % 2 === 0).map((bridge) => bridge.subnet).concat(Array.from({ length: 100_000 }, () => '192.168.0.0/24'));
    const finding = relayCheck.diagnose(machine(relay({ bridges }, { allowed })));
    expectClean(finding);
    expect(finding.status).toBe('warn');
    // 65 536 distinct /24s under 10/8 in 200 000 networks (the rest repeat them): the odd ones are missing.
    expect(finding.message).toMatch(/^Docker networks net1 \(10\.0\.1\.0\/24\), net3 \(10\.0\.3\.0\/24\), .* and \d+ more are not in the relay's IPAddressAllow=/);
    expect(finding.message.length).toBeLessThan(1000);
    const ok = relayCheck.diagnose(machine(relay({ bridges }, { allowed: Array.from({ length: 200_000 }, (_, index) => `10.${index >> 8 & 255}.${index & 255}.0/24`) })));
    expect(ok.status).toBe('ok');
    expect(ok.message.length).toBeLessThan(1000);
  });

  it("a hostile relay address in container.probe's reset is escaped", () => {
    const finding = containerProbeCheck.diagnose(
      machine(relay({ foreignHostStatus: undefined }, { listen: { host: `172.17.0.1${ESCAPE}`, port: 11434 }, target: { host: `127.0.0.1${ESCAPE}`, port: 11434 } }), {
        containerProbe: probe('reset', { address: undefined }),
        hostProbe: { ok: false, url: 'http://127.0.0.1:11434', kind: 'refused', error: 'ECONNREFUSED' },
      }),
    );
    expectClean(finding);
    expect(finding.message).toContain('Ollama is not running behind the relay');
  });
});
