/**
 * doctor and the bridge-only relay (issue 14): every finding of ollama.relay, and the container
 * probe's "reset", from hand-made facts. Each case is one machine state with the relay installed
 * (systemd-socket-proxyd on Docker's gateway, forwarding to a loopback Ollama) and what a user
 * reads for it: the status, the words that say why, and the exact command. The probe script's new
 * outcome is tested for real: python3 runs PROBE_SCRIPT against a local server that resets.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { darwinPlatform } from '../../platforms/darwin/index.ts';
import type { RelayFacts } from '../../platforms/types.ts';
import { containerProbeCheck } from '../../scripts/checks/container-probe.ts';
import { CHECKS, runChecks } from '../../scripts/checks/index.ts';
import { isRelayListener, relayCheck } from '../../scripts/checks/relay.ts';
import { PROBE_SCRIPT, readProbeOutput } from '../../scripts/container-probe.ts';
import type { Facts } from '../../scripts/facts.ts';
import { facts, listener, probe, systemdDetection } from './support/facts.ts';
import { because, needs } from './support/portability.ts';

type Installed = NonNullable<RelayFacts['installed']>;

const SOCKET = '/etc/systemd/system/stigmer-ollama-relay.socket';
const SERVICE = '/etc/systemd/system/stigmer-ollama-relay.service';
const JOURNAL = 'sudo journalctl -u stigmer-ollama-relay.socket -u stigmer-ollama-relay.service -n 50 --no-pager';
const RESTART = 'sudo systemctl restart stigmer-ollama-relay.socket';
const RELAY_SETUP = 'npx stigmer-setup --yes --relay';
const SYSTEMD_PID1 = { pid: 1, argv: ['/sbin/init'] };

/** The relay as setup leaves it on a cgroup v2 machine: active on 172.17.0.1, IPAddressAllow= the default bridge. */
function relay(overrides: Partial<RelayFacts> = {}, installed: Partial<Installed> = {}): RelayFacts {
  return {
    installed: {
      socketPath: SOCKET,
      servicePath: SERVICE,
      listen: { host: '172.17.0.1', port: 11434 },
      target: { host: '127.0.0.1', port: 11434 },
      protection: 'ip-address-allow',
      allowed: ['172.17.0.0/16'],
      ours: true,
      socketState: 'active',
      protectionActive: true,
      ...installed,
    },
    gateway: { address: '172.17.0.1', from: 'docker network inspect bridge' },
    bridges: [{ name: 'bridge', subnet: '172.17.0.0/16', interface: 'docker0' }],
    bpfFirewall: true,
    iptables: '/usr/sbin/iptables',
    proxyd: '/usr/lib/systemd/systemd-socket-proxyd',
    systemd: true,
    ollamaUnit: true,
    foreignHostStatus: 403,
    preflight: { ok: true },
    paths: { socket: '/etc/systemd/system/stigmer-ollama-relay.socket', service: '/etc/systemd/system/stigmer-ollama-relay.service' },
    ...overrides,
  };
}

/** The same relay protected by its iptables chain (cgroup v1, or ufw active), the chain in INPUT. */
function iptablesRelay(overrides: Partial<RelayFacts> = {}, installed: Partial<Installed> = {}): RelayFacts {
  return relay({ bpfFirewall: false, ...overrides }, { protection: 'iptables', allowed: [], protectionActive: true, ...installed });
}

/** A machine with the relay: Ollama's unit on loopback (no OLLAMA_HOST), the relay's socket on the gateway. */
function relayFacts(relayFacts: RelayFacts = relay(), overrides: Partial<Facts> = {}): Facts {
  return facts({
    detection: systemdDetection({ effectiveHost: undefined }),
    listeners: [listener('127.0.0.1'), listener('172.17.0.1', { owner: SYSTEMD_PID1 })],
    relay: relayFacts,
    ...overrides,
  });
}

const REFUSED = probe('refused');
const RESET = probe('reset', { detail: '[Errno 104] Connection reset by peer' });
const NOT_PROBED = { skipped: 'there is no stigmer-agent-runner container and no local image with python3 to probe from' };
const OLLAMA_DOWN = { hostProbe: { ok: false as const, url: 'http://127.0.0.1:11434', kind: 'refused' as const, error: 'connect ECONNREFUSED 127.0.0.1:11434' } };

describe('ollama.relay', () => {
  it('sits with the route from the container: after container.proxy, before host.firewall', () => {
    const ids = CHECKS.map((check) => check.id);
    expect(ids.indexOf('ollama.relay')).toBe(ids.indexOf('container.proxy') + 1);
    expect(ids.indexOf('host.firewall')).toBe(ids.indexOf('ollama.relay') + 1);
  });

  it('is skipped off Linux and where no relay is installed', () => {
    const mac = relayCheck.diagnose(facts({ platform: 'darwin', support: darwinPlatform, relay: undefined }));
    expect(mac).toEqual({ status: 'skip', message: 'There is no bridge-only relay on darwin (it exists on Linux only).' });
    const notLooked = relayCheck.diagnose(facts({ support: { ...facts().support, relay: { ...(facts().support.relay as NonNullable<Facts['support']['relay']>), inspect: async () => relay() } }, relay: undefined }));
    expect(notLooked).toEqual({ status: 'skip', message: 'The relay was not looked at on this run.' });
    const none = relayCheck.diagnose(facts({ relay: relay({ installed: undefined }) }));
    expect(none).toEqual({ status: 'ok', message: 'No stigmer-setup relay is installed (nothing of the relay to check).' });
  });

  it('is ok with the relay on the gateway, Ollama loopback-only, and names IPAddressAllow= as the protection in force', () => {
    const finding = relayCheck.diagnose(relayFacts(relay({ bridges: [{ name: 'bridge', subnet: '172.17.0.0/16', interface: 'docker0' }, { name: 'app_default', subnet: '172.18.0.0/16', interface: 'br-1a2b3c4d5e6f' }] }, { allowed: ['172.17.0.0/16', '172.18.0.0/16'] })));
    expect(finding).toEqual({
      status: 'ok',
      message:
        "The relay listens on 172.17.0.1:11434 (Docker's host-gateway, from docker network inspect bridge) and forwards to 127.0.0.1:11434, where Ollama is loopback-only (a foreign Host header gets 403); it lets in Docker's bridges only: IPAddressAllow=172.17.0.0/16, 172.18.0.0/16 on the socket, measured in force (a connection from 127.0.0.1, which it does not allow, was dropped).",
    });
  });

  it('is ok with the iptables protection in force, and says when whether it is in force could not be read', () => {
    const active = relayCheck.diagnose(relayFacts(iptablesRelay()));
    expect(active.status).toBe('ok');
    expect(active.message).toContain('the iptables chain STIGMER-OLLAMA-RELAY, which accepts lo, docker0, br-+ only (in force)');
    const unread = relayCheck.diagnose(relayFacts(iptablesRelay({}, { protectionActive: undefined })));
    expect(unread.status).toBe('ok');
    expect(unread.message).toContain('whether it is in force could not be read (iptables needs root)');
  });

  it('warns when the relay listens on an address that is no longer the gateway (a changed bip), with the fix', () => {
    const finding = relayCheck.diagnose(relayFacts(relay({ gateway: { address: '10.200.0.1', from: '/etc/docker/daemon.json bip' }, bridges: [{ name: 'bridge', subnet: '10.200.0.0/24', interface: 'docker0' }] }, { allowed: ['10.200.0.0/24'] })));
    expect(finding.status).toBe('warn');
    expect(finding.message).toBe(
      "The relay listens on 172.17.0.1:11434, but Docker's host-gateway is now 10.200.0.1 (from /etc/docker/daemon.json bip): containers reach host.docker.internal there, where nothing forwards to Ollama.",
    );
    expect(finding.why).toContain('bip');
    expect(finding.fix).toBe(`${RELAY_SETUP}   # renders the relay again for 10.200.0.1`);
  });

  it('fails when the units are present but the socket does not listen, with the exact journalctl command', () => {
    const finding = relayCheck.diagnose(relayFacts(relay({}, { socketState: 'failed' }), { listeners: [listener('127.0.0.1')], containerProbe: REFUSED }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toBe('The relay is installed, but stigmer-ollama-relay.socket is failed: nothing listens on 172.17.0.1:11434.');
    expect(finding.why).toBe('Containers that reach Ollama at host.docker.internal (172.17.0.1) are refused.');
    expect(finding.fix).toBe(`${JOURNAL}   # says why it stopped; then: ${RESTART}`);
  });

  it('without systemctl\'s answer, a listener on the relay\'s address says it listens; without either it is "installed", never a failure', () => {
    expect(relayCheck.diagnose(relayFacts(relay({}, { socketState: undefined }))).message).toMatch(/^The relay listens on 172\.17\.0\.1:11434/);
    const unknown = relayCheck.diagnose(relayFacts(relay({}, { socketState: undefined }), { listeners: undefined }));
    expect(unknown.status).toBe('ok');
    expect(unknown.message).toMatch(/^The relay is installed for 172\.17\.0\.1:11434/);
  });

  it('fails when systemd is not PID 1: the units are on disk and nothing runs them', () => {
    const finding = relayCheck.diagnose(relayFacts(relay({ systemd: false }, { socketState: undefined }), { listeners: [listener('127.0.0.1')], containerProbe: REFUSED }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('systemd does not run this machine');
    expect(finding.fix).toContain('npx stigmer-setup undo');
  });

  it('fails when its socket unit names no address it can read', () => {
    const finding = relayCheck.diagnose(relayFacts(relay({}, { listen: undefined })));
    expect(finding.status).toBe('fail');
    expect(finding.message).toBe(`The relay's socket unit ${SOCKET} has no ListenStream= address stigmer-setup can read.`);
    expect(finding.fix).toBe(`npx stigmer-setup undo   # removes the relay; then, to set it up again: ${RELAY_SETUP}`);
  });

  it('fails when IPAddressAllow= was measured not in force (cgroup2 mounted, systemd started the socket unfiltered), naming setup --relay as the fix', () => {
    const finding = relayCheck.diagnose(relayFacts(relay({}, { protectionActive: false })));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('not in force, measured');
    expect(finding.why).toMatch(/reaches Ollama through the relay/);
    expect(finding.fix).toContain(RELAY_SETUP);
    expect(finding.fix).toContain('iptables');
  });

  it('keeps a measured hole a failure even while the runner reaches Ollama through the relay', () => {
    const finding = relayCheck.diagnose(relayFacts(relay({}, { protectionActive: false }), { containerProbe: probe('ok') }));
    expect(finding.status).toBe('fail');
  });

  it('says IPAddressAllow= was not measured when the probe could not tell, and does not claim it in force', () => {
    const finding = relayCheck.diagnose(relayFacts(relay({}, { protectionActive: undefined })));
    expect(finding.status).toBe('ok');
    expect(finding.message).toContain('should enforce (not measured)');
    expect(finding.message).not.toContain('measured in force');
  });

  it('warns when IPAddressAllow= is configured but systemd has no BPF firewall to enforce it, with the fix', () => {
    // Not measured (the probe could not tell): the missing cgroup2 mount is what says so.
    const finding = relayCheck.diagnose(relayFacts(relay({ bpfFirewall: false }, { protectionActive: undefined })));
    expect(finding.status).toBe('warn');
    expect(finding.message).toContain("The relay's IPAddressAllow= is not in force");
    expect(finding.message).toContain('cgroup v2');
    expect(finding.why).toContain('a machine on your network that routes 172.17.0.1 through this host reaches Ollama');
    expect(finding.fix).toBe(`${RELAY_SETUP}   # switches the relay to its iptables protection (an INPUT rule for exactly 172.17.0.1:11434)`);
  });

  it('warns when the iptables chain is configured but not in INPUT, with the restart that adds it and the command that checks it', () => {
    const finding = relayCheck.diagnose(relayFacts(iptablesRelay({}, { protectionActive: false })));
    expect(finding.status).toBe('warn');
    expect(finding.message).toBe("The relay's iptables chain STIGMER-OLLAMA-RELAY is not in INPUT for 172.17.0.1:11434 now: something removed it after the relay started (`iptables -F`, or a firewall tool that rewrites the whole ruleset).");
    expect(finding.fix).toBe(`${RESTART}   # its ExecStartPre lines add the chain again; check: sudo iptables -w -C INPUT -d 172.17.0.1/32 -p tcp --dport 11434 -j STIGMER-OLLAMA-RELAY`);
  });

  it('fails when the chain is missing and ufw drops the bridge traffic it let in: containers time out', () => {
    const ufw = { verdict: 'blocked' as const, by: 'ufw', rule: 'default policy DROP', unreadable: [], subnets: ['172.17.0.0/16'] };
    const finding = relayCheck.diagnose(relayFacts(iptablesRelay({}, { protectionActive: false }), { firewall: ufw, containerProbe: probe('timeout') }));
    expect(finding.status).toBe('fail');
    expect(finding.why).toContain('ufw drops the bridge traffic that chain accepted, so containers time out');
    expect(finding.fix).toMatch(new RegExp(`^${RESTART}`));
  });

  it('warns, naming the network and the fix, when a bridge subnet is not in IPAddressAllow=', () => {
    const bridges = [
      { name: 'bridge', subnet: '172.17.0.0/16', interface: 'docker0' },
      { name: 'webui_default', subnet: '172.19.0.0/16', interface: 'br-0f1e2d3c4b5a' },
    ];
    const finding = relayCheck.diagnose(relayFacts(relay({ bridges })));
    expect(finding.status).toBe('warn');
    expect(finding.message).toBe("Docker network webui_default (172.19.0.0/16) is not in the relay's IPAddressAllow=, so its containers can't reach Ollama through it (their connections time out).");
    expect(finding.fix).toBe(`${RELAY_SETUP}   # adds every current bridge subnet to IPAddressAllow=`);
  });

  it('counts a subnet inside a wider allowed prefix, or covered by adjacent ones, as let in; a gap is not', () => {
    const bridges = [{ name: 'app', subnet: '172.18.0.0/16', interface: 'br-aaaaaaaaaaaa' }];
    expect(relayCheck.diagnose(relayFacts(relay({ bridges }, { allowed: ['172.16.0.0/12'] }))).status).toBe('ok');
    expect(relayCheck.diagnose(relayFacts(relay({ bridges }, { allowed: ['172.18.128.0/17', '172.18.0.0/17'] }))).status).toBe('ok');
    expect(relayCheck.diagnose(relayFacts(relay({ bridges }, { allowed: ['any'] }))).status).toBe('ok');
    expect(relayCheck.diagnose(relayFacts(relay({ bridges }, { allowed: ['172.18.0.0/24', '172.18.255.0/24'] }))).status).toBe('warn');
    // An IPv6 subnet is not the relay's business (it listens on the IPv4 gateway).
    expect(relayCheck.diagnose(relayFacts(relay({ bridges: [{ name: 'v6', subnet: 'fd00:1::/64', interface: 'br-bbbbbbbbbbbb' }] }))).status).toBe('ok');
  });

  it('warns when a bridge with its own interface name is not accepted by the iptables chain, naming it', () => {
    const bridges = [
      { name: 'bridge', subnet: '172.17.0.0/16', interface: 'docker0' },
      { name: 'lab', subnet: '172.20.0.0/16', interface: 'labbr0' },
    ];
    const finding = relayCheck.diagnose(relayFacts(iptablesRelay({ bridges })));
    expect(finding.status).toBe('warn');
    expect(finding.message).toContain('Docker network lab (interface labbr0) is not let in');
    expect(finding.fix).toMatch(/^sudo iptables -w -I STIGMER-OLLAMA-RELAY 1 -i labbr0 -j ACCEPT/);
  });

  it('warns when the units keep no one out', () => {
    const finding = relayCheck.diagnose(relayFacts(relay({}, { protection: 'none', allowed: [] })));
    expect(finding.status).toBe('warn');
    expect(finding.message).toContain('neither IPAddressAllow= nor the iptables chain');
  });

  describe('the port clash', () => {
    it('fails when Ollama is configured for 0.0.0.0 while the relay holds the gateway, so Ollama does not start; the fix is undo or --host', () => {
      const detection = systemdDetection({ effectiveHost: '0.0.0.0:11434' });
      const finding = relayCheck.diagnose(relayFacts(relay({ foreignHostStatus: undefined }), { detection, listeners: [listener('172.17.0.1', { owner: SYSTEMD_PID1 })], containerProbe: RESET, ...OLLAMA_DOWN }));
      expect(finding.status).toBe('fail');
      expect(finding.message).toBe(
        "Port clash: Ollama is configured for 0.0.0.0:11434 in /etc/systemd/system/ollama.service.d/stigmer-setup.conf, which it can't bind while the relay listens on 172.17.0.1:11434, so Ollama does not start.",
      );
      expect(finding.why).toContain('listen tcp 0.0.0.0:11434: bind: address already in use');
      expect(finding.fix).toContain('Remove the relay: npx stigmer-setup undo');
      expect(finding.fix).toContain('npx stigmer-setup --yes --host 0.0.0.0:11434 (it removes the relay first)');
      expect(finding.fix).toContain('set OLLAMA_HOST back to 127.0.0.1:11434 (or remove it) in /etc/systemd/system/ollama.service.d/stigmer-setup.conf');
      // Not also "Ollama is not running behind the relay": the clash is why.
      expect(finding.message).not.toContain('Also:');
    });

    it('warns while the Ollama running now still holds loopback: its next restart fails', () => {
      const detection = systemdDetection({ effectiveHost: '[::]:11434' });
      const finding = relayCheck.diagnose(relayFacts(relay(), { detection }));
      expect(finding.status).toBe('warn');
      expect(finding.message).toContain('Port clash: Ollama is configured for [::]:11434');
      expect(finding.message).toContain('its next restart fails');
      expect(finding.fix).toContain("--host '[::]:11434'");
    });

    it('is no clash when Ollama is configured for another port, or for loopback', () => {
      expect(relayCheck.diagnose(relayFacts(relay(), { detection: systemdDetection({ effectiveHost: '0.0.0.0:11500' }) })).status).toBe('ok');
      expect(relayCheck.diagnose(relayFacts(relay(), { detection: systemdDetection({ effectiveHost: '127.0.0.1:11434' }) })).status).toBe('ok');
    });

    it('fails when something already holds 0.0.0.0:<port> and the relay can\'t listen, naming it', () => {
      const dockerProxy = { pid: 3120, argv: ['/usr/bin/docker-proxy', '-proto', 'tcp', '-host-ip', '0.0.0.0', '-host-port', '11434'] };
      const finding = relayCheck.diagnose(relayFacts(relay({}, { socketState: 'failed' }), { listeners: [listener('127.0.0.1'), listener('0.0.0.0', { owner: dockerProxy })], containerProbe: NOT_PROBED }));
      expect(finding.status).toBe('fail');
      expect(finding.message).toBe(
        "Port clash: the relay can't listen on 172.17.0.1:11434 (stigmer-ollama-relay.socket is failed): 0.0.0.0:11434 is held by pid 3120: /usr/bin/docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 11434.",
      );
      expect(finding.fix).toContain('Remove the relay: npx stigmer-setup undo');
      expect(finding.fix).toContain(`Or keep the relay: stop pid 3120, then: ${RESTART}`);
    });

    it('warns, not fails, when Ollama bound wide took the port first and the runner reaches it that way; keeping the relay means loopback for Ollama', () => {
      const ollama = { pid: 812, argv: ['/usr/local/bin/ollama', 'serve'], unit: 'ollama.service' };
      const detection = systemdDetection({ effectiveHost: '0.0.0.0:11434' });
      const finding = relayCheck.diagnose(relayFacts(relay({ foreignHostStatus: 200 }, { socketState: 'failed' }), { detection, listeners: [listener('0.0.0.0', { owner: ollama })], containerProbe: probe('ok') }));
      expect(finding.status).toBe('warn');
      expect(finding.message).toMatch(/^Port clash: the relay can't listen on 172\.17\.0\.1:11434 .*0\.0\.0\.0:11434 is held by pid 812/);
      expect(finding.fix).toContain(`Or keep the relay: set OLLAMA_HOST back to 127.0.0.1:11434 (or remove it) in /etc/systemd/system/ollama.service.d/stigmer-setup.conf, then: sudo systemctl daemon-reload && sudo systemctl restart ollama, then: ${RESTART}`);
      // The same machine whose runner does not get through is a failure.
      expect(relayCheck.diagnose(relayFacts(relay({ foreignHostStatus: 200 }, { socketState: 'failed' }), { detection, listeners: [listener('0.0.0.0', { owner: ollama })], containerProbe: probe('timeout') })).status).toBe('fail');
    });
  });

  it('fails when Ollama is not running behind the relay, with the start command', () => {
    const finding = relayCheck.diagnose(relayFacts(relay({ foreignHostStatus: undefined }), { listeners: [listener('172.17.0.1', { owner: SYSTEMD_PID1 })], containerProbe: RESET, ...OLLAMA_DOWN }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toBe('Ollama is not running behind the relay: nothing answers on 127.0.0.1:11434, where it forwards.');
    expect(finding.why).toContain('ECONNRESET');
    expect(finding.fix).toContain('sudo systemctl start ollama');
  });

  it('warns when Ollama behind the relay accepts a foreign Host header: it is not loopback-only', () => {
    const finding = relayCheck.diagnose(relayFacts(relay({ foreignHostStatus: 200 })));
    expect(finding.status).toBe('warn');
    expect(finding.message).toContain('accepts a foreign Host header (HTTP 200)');
  });

  it('leads with the worst problem and names the others after it, each fix once', () => {
    const finding = relayCheck.diagnose(relayFacts(relay({ bpfFirewall: false, bridges: [{ name: 'bridge', subnet: '172.17.0.0/16' }, { name: 'new', subnet: '172.21.0.0/16' }] }, { socketState: 'inactive', protectionActive: false }), { listeners: [listener('127.0.0.1')], containerProbe: REFUSED }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toMatch(/^The relay is installed, but stigmer-ollama-relay\.socket is inactive/);
    expect(finding.message).toContain("Also: The relay's IPAddressAllow= is not in force");
    expect(finding.message).toContain('Also: Docker network new (172.21.0.0/16)');
    expect(finding.fix?.startsWith(JOURNAL)).toBe(true);
    expect(finding.fix).toContain(`; also: ${RELAY_SETUP}`);
  });

  it('runs in the catalogue, with its troubleshooting link', () => {
    const finding = runChecks(relayFacts(relay({}, { socketState: 'failed' }), { listeners: [listener('127.0.0.1')], containerProbe: REFUSED })).find((f) => f.id === 'ollama.relay');
    expect(finding?.status).toBe('fail');
    expect(finding?.docs).toMatch(/TROUBLESHOOTING\.md#ollamarelay$/);
  });
});

describe('isRelayListener', () => {
  it("tells the relay's own socket (systemd, or the proxy's service) from a server on the same port", () => {
    const proxyd = { pid: 930, argv: ['/usr/lib/systemd/systemd-socket-proxyd', '127.0.0.1:11434'], unit: 'stigmer-ollama-relay.service' };
    expect(isRelayListener(listener('172.17.0.1', { owner: SYSTEMD_PID1 }), relay())).toBe(true);
    expect(isRelayListener(listener('172.17.0.1', { owner: proxyd }), relay())).toBe(true);
    expect(isRelayListener(listener('172.17.0.1'), relay())).toBe(true);
    // Not ours: Ollama itself on the gateway address (the relay then can't listen), another port, no relay.
    const ollama = { pid: 812, argv: ['/usr/local/bin/ollama', 'serve'], unit: 'ollama.service' };
    expect(isRelayListener(listener('172.17.0.1', { owner: ollama }), relay({}, { socketState: 'failed' }))).toBe(false);
    expect(isRelayListener(listener('172.17.0.1'), relay({}, { socketState: 'failed' }))).toBe(false);
    expect(isRelayListener(listener('127.0.0.1', { owner: ollama }), relay())).toBe(false);
    expect(isRelayListener(listener('172.17.0.1', { owner: SYSTEMD_PID1, port: 8080 }), relay())).toBe(false);
    expect(isRelayListener(listener('172.17.0.1', { owner: SYSTEMD_PID1 }), relay({ installed: undefined }))).toBe(false);
  });
});

describe('container.probe through the relay', () => {
  it('says the answer came through the relay, not through a runtime forwarding to loopback', () => {
    const finding = containerProbeCheck.diagnose(relayFacts(relay(), { containerProbe: probe('ok', { foreignHostStatus: 403 }) }));
    expect(finding.status).toBe('ok');
    expect(finding.message).toContain('It arrives through the stigmer-setup relay on 172.17.0.1:11434 at a loopback-only Ollama');
    expect(containerProbeCheck.diagnose(facts({ containerProbe: probe('ok', { foreignHostStatus: 403 }) })).message).toContain("runtime's forwarding");
  });
});

describe('container.probe: a reset', () => {
  const reset = probe('reset', { detail: '[Errno 104] Connection reset by peer' });

  it('with our relay installed and Ollama down: "Ollama is not running behind the relay", with the start command', () => {
    const finding = containerProbeCheck.diagnose(relayFacts(relay({ foreignHostStatus: undefined }), { containerProbe: reset, ...OLLAMA_DOWN }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toBe('From stigmer-agent-runner, http://host.docker.internal:11434: connection reset: Ollama is not running behind the relay (172.17.0.1:11434 → 127.0.0.1:11434).');
    expect(finding.why).toContain('not "connection refused"');
    expect(finding.fix).toBe('sudo systemctl start ollama (then `journalctl -u ollama -n 50` if it does not stay up)');
  });

  it('with our relay installed and Ollama answering on the host: the relay dials the wrong place, see its journal', () => {
    const finding = containerProbeCheck.diagnose(relayFacts(relay(), { containerProbe: reset }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('the relay (172.17.0.1:11434 → 127.0.0.1:11434) accepted, but could not reach Ollama');
    expect(finding.fix).toBe(`${JOURNAL}   # "Failed to connect to remote host" names what it dials`);
  });

  it('without a relay, or from an address that is not the relay\'s, a plain reset with the command that finds the listener', () => {
    for (const machine of [facts({ containerProbe: reset }), relayFacts(relay(), { containerProbe: probe('reset', { address: '192.168.1.10' }) })]) {
      const finding = containerProbeCheck.diagnose(machine);
      expect(finding.status).toBe('fail');
      expect(finding.message).toContain('connection reset by');
      expect(finding.message).not.toContain('relay');
      expect(finding.fix).toBe("Check what listens on port 11434: sudo ss -ltnp 'sport = :11434'");
    }
  });

  it('through the relay, a 403 is the custom alias: use host.docker.internal or the gateway address', () => {
    const finding = containerProbeCheck.diagnose(relayFacts(relay(), { containerProbe: probe('http-error', { url: 'http://ollama:11434', status: 403, detail: 'HTTP Error 403: Forbidden' }) }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('rejected the Host header "ollama" that came through the relay');
    expect(finding.why).toContain('extra_hosts');
    expect(finding.fix).toBe('Use OLLAMA_BASE_URL=http://host.docker.internal:11434 or http://172.17.0.1:11434 in stigmer-agent-runner, not a custom alias.');
  });

  it('readProbeOutput keeps the outcome', () => {
    const line = JSON.stringify({ url: 'http://host.docker.internal:11434', address: '172.17.0.1', outcome: 'reset', detail: '[Errno 104] Connection reset by peer' });
    expect(readProbeOutput({ exitCode: 0, stdout: `${line}\n`, stderr: '' }, '(its OLLAMA_BASE_URL)', 'stigmer-agent-runner', 4000)).toMatchObject({ outcome: 'reset', address: '172.17.0.1' });
  });
});

describe('PROBE_SCRIPT against a server that resets (python3 on this machine)', () => {
  const servers: net.Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  });

  /** A loopback server that hands each connection to `handle`; resetAndDestroy closes with SO_LINGER 0, an RST. */
  async function serve(handle: (socket: net.Socket) => void): Promise<number> {
    const server = net.createServer(handle);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as net.AddressInfo).port;
  }

  async function runProbe(url: string): Promise<Record<string, unknown>> {
    // Python's own timeouts are 2.5 s and 1 s; the process gets a bound of its own.
    const { stdout } = await promisify(execFile)('python3', ['-c', PROBE_SCRIPT, url], { timeout: 15_000 });
    return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
  }

  it.skipIf(needs.python3)(`a reset after the request arrived, as systemd-socket-proxyd does with nothing behind it, is "reset"${because(needs.python3)}`, async () => {
    // The proxy closes with the request unread, which makes the kernel send an RST.
    const port = await serve((socket) => socket.once('data', () => socket.resetAndDestroy()));
    const result = await runProbe(`http://127.0.0.1:${port}`);
    expect(result.outcome).toBe('reset');
    expect(String(result.detail)).toMatch(/reset/i);
  });

  it.skipIf(needs.python3)(`a reset while the answer is being read is "reset" too${because(needs.python3)}`, async () => {
    const port = await serve((socket) =>
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"models": [', () => {
          // Let the client take the headers and wait for the body first (a reset before that is "reset" as well).
          setTimeout(() => socket.resetAndDestroy(), 200);
        });
      }),
    );
    const result = await runProbe(`http://127.0.0.1:${port}`);
    expect(result.outcome).toBe('reset');
  });

  it.skipIf(needs.python3)(`a port nothing listens on is still "refused"${because(needs.python3)}`, async () => {
    const port = await serve(() => undefined);
    await new Promise((resolve) => (servers.pop() as net.Server).close(resolve));
    expect((await runProbe(`http://127.0.0.1:${port}`)).outcome).toBe('refused');
  });
});
