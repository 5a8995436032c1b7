import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_LINES } from '../../scripts/text.ts';
import {
  firewallVerdict,
  ipv4CidrContains,
  parseFirewalldActiveZones,
  parseFirewalldZone,
  parseFirewalldZones,
  parseIptablesRules,
  parseUfwStatus,
} from '../../platforms/linux/firewall.ts';

// Every file is real tool output; test/fixtures/SOURCES.md says where each one comes from.
const read = (name: string) => readFileSync(new URL(`../fixtures/firewall/${name}`, import.meta.url), 'utf8');

const OLLAMA = { port: 11434, subnets: ['172.17.0.0/16'], interfaces: ['docker0'] };
const UFW_FIX = 'sudo ufw allow from 172.17.0.0/16 to any port 11434 proto tcp';
const IPTABLES_FIX = 'sudo iptables -I INPUT -s 172.17.0.0/16 -p tcp --dport 11434 -j ACCEPT';

describe('parseUfwStatus', () => {
  it('reads an active verbose status: default policy, app profiles, v6 twins and routed rules', () => {
    const status = parseUfwStatus(read('ufw-status-verbose-active-deny-incoming-ufw-docker-21.txt'));
    expect(status.active).toBe(true);
    expect(status.defaultIncoming).toBe('deny');
    expect(status.rules).toHaveLength(6);
    expect(status.rules[0]).toMatchObject({ to: '22/tcp (OpenSSH)', action: 'allow', direction: 'in', from: 'Anywhere', port: 22, proto: 'tcp', v6: false, app: 'OpenSSH' });
    expect(status.rules[1]).toMatchObject({ to: '22/tcp (OpenSSH (v6))', from: 'Anywhere (v6)', v6: true, app: 'OpenSSH' });
    expect(status.rules.filter((rule) => rule.direction === 'fwd').map((rule) => rule.port)).toEqual([80, 443, 80, 443]);
  });

  it('reads "Status: inactive" as inactive with no rules', () => {
    expect(parseUfwStatus(read('ufw-status-inactive-ufw-docker-62.txt'))).toEqual({ active: false, rules: [] });
  });

  it('reads rows that keep ufw\'s column padding, with a source-only and a destination-only rule', () => {
    const status = parseUfwStatus(read('ufw-status-verbose-from-and-to-127-padded-vagrant.txt'));
    expect(status.defaultIncoming).toBe('deny');
    expect(status.rules.map((rule) => rule.raw)).toContain('Anywhere                   ALLOW IN    127.0.0.1');
    const fromLoopback = status.rules.find((rule) => rule.to === 'Anywhere');
    expect(fromLoopback).toMatchObject({ from: '127.0.0.1', fromAddress: '127.0.0.1' });
    expect(fromLoopback?.ports).toBeUndefined();
    const toLoopback = status.rules.find((rule) => rule.to === '127.0.0.1');
    expect(toLoopback).toMatchObject({ toAddress: '127.0.0.1', from: 'Anywhere' });
    expect(status.rules.find((rule) => rule.to === '443')).toMatchObject({ port: 443, ports: [443] });
    expect(status.rules.find((rule) => rule.to === '443')?.proto).toBeUndefined();
  });

  it('reads numbered output: ranges, an interface, a comment, a DENY', () => {
    const status = parseUfwStatus(read('ufw-status-numbered-11434-from-172.16.0.0-12-head20.txt'));
    expect(status.active).toBe(true);
    expect(status.defaultIncoming).toBeUndefined();
    expect(status.rules).toHaveLength(16);
    expect(status.rules[2]).toMatchObject({ to: '8433:8443/tcp', ports: [[8433, 8443]], proto: 'tcp' });
    expect(status.rules[2]?.port).toBeUndefined();
    expect(status.rules[6]).toMatchObject({ to: 'Anywhere on lo', interface: 'lo' });
    expect(status.rules[9]).toMatchObject({ to: '11434/tcp', port: 11434, from: '172.16.0.0/12', fromAddress: '172.16.0.0/12', comment: 'Ollama: só containers docker' });
    expect(status.rules[10]).toMatchObject({ to: 'Anywhere', action: 'deny', from: '187.38.47.142' });
    expect(status.rules.slice(11).every((rule) => rule.v6)).toBe(true);
  });

  it('treats a pasted rule table without its Status line as active, and reads "on docker0"', () => {
    const status = parseUfwStatus(read('ufw-status-verbose-table-only-anywhere-on-docker0.txt'));
    expect(status.active).toBe(true);
    expect(status.rules).toHaveLength(30);
    expect(status.rules.find((rule) => rule.to === 'Anywhere on docker0')).toMatchObject({ interface: 'docker0', v6: false });
    expect(status.rules.find((rule) => rule.to === 'Anywhere (v6) on docker0')).toMatchObject({ interface: 'docker0', v6: true });
    expect(status.rules.find((rule) => rule.to === '500/udp')).toMatchObject({ port: 500, proto: 'udp' });
  });

  it('reads the rows of a translated status but not its translated header lines', () => {
    const status = parseUfwStatus(read('ufw-status-verbose-italian-locale-export.txt'));
    expect(status.active).toBe(true);
    expect(status.defaultIncoming).toBeUndefined();
    expect(status.rules).toHaveLength(17);
    expect(status.rules[0]).toMatchObject({ to: '6335/tcp', action: 'allow', fromAddress: '172.17.0.0/16', comment: 'RAG Service - Docker bridge' });
    expect(status.rules[4]).toMatchObject({ to: '3001', action: 'deny', port: 3001, from: 'Anywhere' });
  });

  it('reads LIMIT rules with a destination address and interface, and addresses with /tcp appended', () => {
    const status = parseUfwStatus(read('ufw-status-numbered-limit-on-interface-to-address.txt'));
    expect(status.rules).toHaveLength(7);
    expect(status.rules[0]).toMatchObject({ action: 'limit', toAddress: '192.168.50.250', port: 2234, proto: 'tcp', interface: 'enp86s0', fromAddress: '192.168.50.118' });
    expect(status.rules[5]).toMatchObject({ action: 'allow', toAddress: '192.168.50.0/24', proto: 'tcp', fromAddress: '172.17.0.0/16', comment: 'LANSUBNET 172.17.0.0 Docker' });
    expect(status.rules[5]?.ports).toBeUndefined();
  });
});

describe('firewalld', () => {
  it('reads --get-active-zones', () => {
    expect(parseFirewalldActiveZones(read('firewalld-get-active-zones-docker-public-firewalld-869.txt'))).toEqual([
      { zone: 'docker', interfaces: ['br-ad6c9a723c27', 'docker0'], sources: [], isDefault: false },
      { zone: 'public', interfaces: ['eth0'], sources: [], isDefault: false },
    ]);
    const modern = parseFirewalldActiveZones(read('firewalld-get-active-zones-docker-bridges-public-default.txt'));
    expect(modern.map((zone) => zone.zone)).toEqual(['docker', 'public']);
    expect(modern[0]?.interfaces).toHaveLength(11);
    expect(modern[0]?.interfaces).toContain('docker0');
    expect(modern[1]).toEqual({ zone: 'public', interfaces: [], sources: [], isDefault: true });
  });

  it('reads --list-all of a default-target zone', () => {
    expect(parseFirewalldZone(read('firewalld-list-all-public-target-default-firewalld-869.txt'))).toEqual({
      zone: 'public',
      target: 'default',
      interfaces: ['eth0'],
      sources: [],
      services: ['dhcpv6-client', 'ssh'],
      ports: [
        { port: 22222, proto: 'tcp' },
        { port: 10051, proto: 'tcp' },
      ],
      protocols: [],
      richRules: [],
      isDefault: false,
      active: true,
    });
    const modern = parseFirewalldZone(read('firewalld-list-all-public-default-active-no-interfaces.txt'));
    expect(modern).toMatchObject({ zone: 'public', isDefault: true, active: true, interfaces: [], services: ['dhcpv6-client'] });
    expect(modern.ports.map((entry) => entry.port)).toEqual([8443, 80, 443, 52022]);
  });

  it('reads the docker zone and a tab-indented rich rule', () => {
    expect(parseFirewalldZone(read('firewalld-info-zone-docker-accept-libnetwork-2548.txt'))).toMatchObject({ zone: 'docker', target: 'ACCEPT', interfaces: ['docker0'], active: true });
    const withRule = parseFirewalldZone(read('firewalld-list-all-docker-zone-rich-rule-reject-libnetwork-2651.txt'));
    expect(withRule.interfaces).toEqual(['docker0', 'br-c6d4a486127d', 'br-6e7f995ee7b1']);
    expect(withRule.richRules).toEqual(['rule family="ipv4" source address="192.168.222.1" port port="80" protocol="tcp" reject']);
  });

  it('reads every zone of --list-all-zones', () => {
    const zones = parseFirewalldZones(read('firewalld-list-all-zones-excerpt-libnetwork-2682.txt'));
    expect(zones.map((zone) => [zone.zone, zone.target])).toEqual([
      ['block', '%%REJECT%%'],
      ['dmz', 'default'],
      ['docker', 'ACCEPT'],
      ['drop', 'DROP'],
      ['external', 'default'],
      ['home', 'default'],
    ]);
    expect(zones[2]).toMatchObject({ active: true, interfaces: ['br-07d0391e2b4b', 'docker0'] });
    expect(zones[5]?.services).toEqual(['cockpit', 'dhcpv6-client', 'mdns', 'samba-client', 'ssh']);
  });

  it('gives an unnamed empty zone for text without a zone', () => {
    expect(parseFirewalldZone('FirewallD is not running\n')).toMatchObject({ zone: '', target: '', interfaces: [] });
  });
});

describe('parseIptablesRules', () => {
  it('reads iptables -S INPUT captured on Debian 12 with the DROP rule inserted', () => {
    expect(parseIptablesRules(read('iptables-S-INPUT-drop-docker-subnet-11434-captured-debian12.txt'))).toEqual({
      policies: { INPUT: 'ACCEPT' },
      chains: ['INPUT'],
      rules: [
        {
          table: 'filter',
          chain: 'INPUT',
          source: '172.17.0.0/16',
          protocol: 'tcp',
          dports: [11434],
          negated: [],
          unevaluated: [],
          target: 'DROP',
          goto: false,
          raw: '-A INPUT -s 172.17.0.0/16 -p tcp -m tcp --dport 11434 -j DROP',
        },
      ],
    });
  });

  it('keeps only the filter table of iptables-save: nat has an INPUT chain too', () => {
    const captured = parseIptablesRules(read('iptables-save-drop-docker-subnet-11434-captured-debian12.txt'));
    expect(captured.policies).toEqual({ INPUT: 'ACCEPT', FORWARD: 'DROP', OUTPUT: 'ACCEPT' });
    expect(captured.rules).toHaveLength(12);
    expect(captured.rules.some((rule) => rule.target === 'MASQUERADE')).toBe(false);
    const vpn = parseIptablesRules(read('iptables-save-nat-input-accept-filter-input-drop-algo-296-excerpt.txt'));
    expect(vpn.policies.INPUT).toBe('DROP');
    expect(vpn.rules.find((rule) => rule.destination === '172.16.0.1/32' && rule.protocol === 'tcp')?.dports).toEqual([8080, 8118]);
  });

  it('reads multiport lists and ranges', () => {
    const ruleset = parseIptablesRules(read('iptables-S-policy-drop-multiport-fail2ban-hestiacp-1849-excerpt.txt'));
    expect(ruleset.policies).toEqual({ INPUT: 'DROP', FORWARD: 'ACCEPT', OUTPUT: 'ACCEPT' });
    expect(ruleset.chains).toContain('fail2ban-RECIDIVE');
    const input = ruleset.rules.filter((rule) => rule.chain === 'INPUT');
    expect(input[0]?.dports).toEqual([25, 465, 587, 110, 995, 143, 993]);
    expect(input[3]).toMatchObject({ dports: [[1, 65535]], target: 'fail2ban-RECIDIVE' });
    expect(input.find((rule) => rule.raw.includes('12000'))?.dports).toEqual([21, [12000, 12100]]);
  });

  it('reads states, TCP flags, user chains and negations', () => {
    const vpn = parseIptablesRules(read('iptables-save-filter-input-drop-reject-syn-flood-setup-ipsec-vpn-499.txt'));
    expect(vpn.chains).toEqual(['INPUT', 'FORWARD', 'OUTPUT', 'syn-flood']);
    expect(vpn.rules.find((rule) => rule.states?.includes('NEW'))).toMatchObject({ states: ['NEW'], dports: [22] });
    expect(vpn.rules.find((rule) => rule.target === 'syn-flood')?.tcpFlags).toEqual({ mask: ['FIN', 'SYN', 'RST', 'ACK'], set: ['SYN'] });
    const nixos = parseIptablesRules(read('iptables-save-nixos-fw-docker0-trusted-nixpkgs-81172-excerpt.txt'));
    expect(nixos.rules.find((rule) => rule.chain === 'nixos-fw-refuse')?.negated).toEqual(['--tcp-flags']);
    expect(nixos.rules.find((rule) => rule.chain === 'nixos-fw-log-refuse')).toMatchObject({ negated: ['--pkt-type'], packetType: 'unicast' });
    expect(nixos.rules.find((rule) => rule.raw === '-A FORWARD -i docker0 ! -o docker0 -j ACCEPT')).toMatchObject({ inInterface: 'docker0', outInterface: 'docker0', negated: ['-o'] });
  });
});

describe('ipv4CidrContains', () => {
  it('contains a Docker subnet in a wider private range, but not in a neighbouring /16', () => {
    expect(ipv4CidrContains('172.16.0.0/12', '172.17.0.0/16')).toBe(true);
    expect(ipv4CidrContains('172.17.0.0/16', '172.16.0.0/12')).toBe(false);
    // chaifeng/ufw-docker#53: `ALLOW 172.16.0.0/16` does not let 172.17.x.x in.
    expect(ipv4CidrContains('172.16.0.0/16', '172.17.0.0/16')).toBe(false);
    expect(ipv4CidrContains('0.0.0.0/0', '172.17.0.0/16')).toBe(true);
    expect(ipv4CidrContains('172.17.0.0/16', '172.17.0.2')).toBe(true);
  });
});

describe('firewallVerdict: iptables', () => {
  it('blames the captured DROP rule and gives the iptables fix', () => {
    for (const name of ['iptables-S-INPUT-drop-docker-subnet-11434-captured-debian12.txt', 'iptables-save-drop-docker-subnet-11434-captured-debian12.txt']) {
      expect(firewallVerdict({ ...OLLAMA, iptables: parseIptablesRules(read(name)) })).toEqual({
        verdict: 'blocked',
        by: 'iptables',
        rule: '-A INPUT -s 172.17.0.0/16 -p tcp -m tcp --dport 11434 -j DROP',
        fix: IPTABLES_FIX,
      });
    }
  });

  it('lets another Docker network past the DROP rule that names only 172.17.0.0/16', () => {
    const ruleset = parseIptablesRules(read('iptables-S-INPUT-drop-docker-subnet-11434-captured-debian12.txt'));
    expect(firewallVerdict({ port: 11434, subnets: ['172.18.0.0/16'], interfaces: ['br-3cdb1cb92a36'], iptables: ruleset })).toEqual({ verdict: 'allowed', by: 'iptables', rule: 'default policy ACCEPT' });
  });

  it('allows on an ACCEPT policy when nothing in INPUT matches (Docker adds no INPUT rules)', () => {
    const ruleset = parseIptablesRules(read('iptables-S-docker-engine-no-input-rules-captured-debian12.txt'));
    expect(ruleset.rules.some((rule) => rule.chain === 'INPUT')).toBe(false);
    expect(firewallVerdict({ ...OLLAMA, iptables: ruleset })).toEqual({ verdict: 'allowed', by: 'iptables', rule: 'default policy ACCEPT' });
  });

  it('follows a SYN through a user chain that RETURNs, to the final REJECT', () => {
    const ruleset = parseIptablesRules(read('iptables-save-filter-input-drop-reject-syn-flood-setup-ipsec-vpn-499.txt'));
    expect(firewallVerdict({ ...OLLAMA, iptables: ruleset })).toMatchObject({ verdict: 'blocked', by: 'iptables', rule: '-A INPUT -j REJECT --reject-with icmp-host-prohibited', fix: IPTABLES_FIX });
    // Port 22 is accepted before the REJECT is reached.
    expect(firewallVerdict({ ...OLLAMA, port: 22, iptables: ruleset })).toMatchObject({ verdict: 'allowed', rule: '-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT' });
  });

  it('falls to a DROP policy past multiport rules and fail2ban chains', () => {
    const ruleset = parseIptablesRules(read('iptables-S-policy-drop-multiport-fail2ban-hestiacp-1849-excerpt.txt'));
    expect(firewallVerdict({ ...OLLAMA, iptables: ruleset })).toEqual({ verdict: 'blocked', by: 'iptables', rule: 'default policy DROP', fix: IPTABLES_FIX });
    expect(firewallVerdict({ ...OLLAMA, port: 12050, iptables: ruleset })).toMatchObject({ verdict: 'allowed', rule: '-A INPUT -p tcp -m multiport --dports 21,12000:12100 -j ACCEPT' });
  });

  it('uses the filter table\'s INPUT DROP, not the nat table\'s INPUT ACCEPT', () => {
    const ruleset = parseIptablesRules(read('iptables-save-nat-input-accept-filter-input-drop-algo-296-excerpt.txt'));
    expect(firewallVerdict({ ...OLLAMA, iptables: ruleset })).toMatchObject({ verdict: 'blocked', rule: 'default policy DROP' });
  });

  it('follows nested jumps to an ACCEPT for docker0', () => {
    const ruleset = parseIptablesRules(read('iptables-save-nixos-fw-docker0-trusted-nixpkgs-81172-excerpt.txt'));
    expect(firewallVerdict({ ...OLLAMA, iptables: ruleset })).toEqual({ verdict: 'allowed', by: 'iptables', rule: '-A nixos-fw-accept -j ACCEPT' });
  });

  it('says unknown when some of the described packets are dropped and others are not', () => {
    const ruleset = parseIptablesRules(read('iptables-S-INPUT-drop-docker-subnet-11434-captured-debian12.txt'));
    const verdict = firewallVerdict({ port: 11434, subnets: ['172.16.0.0/12'], interfaces: ['docker0'], iptables: ruleset });
    expect(verdict).toMatchObject({ verdict: 'unknown', by: 'iptables', rule: '-A INPUT -s 172.17.0.0/16 -p tcp -m tcp --dport 11434 -j DROP' });
    expect(verdict.fix).toBe('sudo iptables -I INPUT -s 172.16.0.0/12 -p tcp --dport 11434 -j ACCEPT');
  });
});

describe('firewallVerdict: ufw', () => {
  it('blocks on the default deny when no rule covers the port, with the ufw fix', () => {
    expect(firewallVerdict({ ...OLLAMA, ufw: parseUfwStatus(read('ufw-status-verbose-active-deny-incoming-ufw-docker-21.txt')) })).toEqual({
      verdict: 'blocked',
      by: 'ufw',
      rule: 'Default: deny (incoming), allow (outgoing), deny (routed)',
      fix: UFW_FIX,
    });
    expect(firewallVerdict({ ...OLLAMA, ufw: parseUfwStatus(read('ufw-status-verbose-from-and-to-127-padded-vagrant.txt')) })).toMatchObject({
      verdict: 'blocked',
      rule: 'Default: deny (incoming), allow (outgoing), disabled (routed)',
      fix: UFW_FIX,
    });
  });

  it('ignores routed (FWD) rules and v6 rules: neither is on the IPv4 INPUT path', () => {
    const routed = parseUfwStatus(read('ufw-status-verbose-active-deny-incoming-ufw-docker-21.txt'));
    expect(firewallVerdict({ ...OLLAMA, port: 80, ufw: routed })).toMatchObject({ verdict: 'blocked', rule: 'Default: deny (incoming), allow (outgoing), deny (routed)' });
    // `11435 (v6) DENY IN Anywhere (v6)` has no IPv4 twin, and this status has no readable default.
    const translated = parseUfwStatus(read('ufw-status-verbose-italian-locale-export.txt'));
    expect(firewallVerdict({ ...OLLAMA, port: 11435, ufw: translated })).toMatchObject({ verdict: 'unknown', rule: expect.stringContaining('default incoming policy not found') });
    expect(firewallVerdict({ ...OLLAMA, port: 6333, ufw: translated })).toMatchObject({ verdict: 'blocked', rule: expect.stringContaining('6333                       DENY IN') });
  });

  it('allows through a rule whose source range contains the Docker subnet', () => {
    const ufw = parseUfwStatus(read('ufw-status-numbered-11434-from-172.16.0.0-12-head20.txt'));
    expect(firewallVerdict({ ...OLLAMA, ufw })).toEqual({
      verdict: 'allowed',
      by: 'ufw',
      rule: '[10] 11434/tcp                  ALLOW IN    172.16.0.0/12              # Ollama: só containers docker',
    });
  });

  it('allows through "Anywhere on docker0" only for docker0', () => {
    const ufw = parseUfwStatus(read('ufw-status-verbose-table-only-anywhere-on-docker0.txt'));
    expect(firewallVerdict({ ...OLLAMA, ufw })).toMatchObject({ verdict: 'allowed', by: 'ufw', rule: 'Anywhere on docker0        ALLOW IN    Anywhere' });
    const otherBridge = firewallVerdict({ port: 11434, subnets: ['172.18.0.0/16'], interfaces: ['br-624f27f9908f'], ufw });
    expect(otherBridge.verdict).toBe('unknown');
    expect(otherBridge.rule).toMatch(/default incoming policy not found/);
  });

  it('takes ufw\'s default from the INPUT policy when the status does not print it', () => {
    const ufw = parseUfwStatus(read('ufw-status-verbose-table-only-anywhere-on-docker0.txt'));
    const iptables = parseIptablesRules(read('iptables-S-policy-drop-multiport-fail2ban-hestiacp-1849-excerpt.txt'));
    expect(firewallVerdict({ port: 11434, subnets: ['172.18.0.0/16'], interfaces: ['br-624f27f9908f'], ufw, iptables })).toEqual({
      verdict: 'blocked',
      by: 'ufw',
      rule: 'default policy DROP',
      fix: 'sudo ufw allow from 172.18.0.0/16 to any port 11434 proto tcp',
    });
  });

  it('prefers an active ufw over the iptables view, and ignores an inactive one', () => {
    const acceptPolicy = parseIptablesRules(read('iptables-S-docker-engine-no-input-rules-captured-debian12.txt'));
    const active = parseUfwStatus(read('ufw-status-verbose-active-deny-incoming-ufw-docker-21.txt'));
    expect(firewallVerdict({ ...OLLAMA, ufw: active, iptables: acceptPolicy })).toMatchObject({ verdict: 'blocked', by: 'ufw' });
    const inactive = parseUfwStatus(read('ufw-status-inactive-ufw-docker-62.txt'));
    const drop = parseIptablesRules(read('iptables-S-INPUT-drop-docker-subnet-11434-captured-debian12.txt'));
    expect(firewallVerdict({ ...OLLAMA, ufw: inactive, iptables: drop })).toMatchObject({ verdict: 'blocked', by: 'iptables', fix: IPTABLES_FIX });
  });

  it('is unsure about a rule limited to a destination address it cannot check', () => {
    const ufw = parseUfwStatus(read('ufw-status-numbered-limit-on-interface-to-address.txt'));
    expect(firewallVerdict({ ...OLLAMA, ufw })).toMatchObject({ verdict: 'unknown', by: 'ufw', rule: expect.stringContaining('[ 6] 192.168.50.0/24/tcp') });
  });
});

describe('firewallVerdict: firewalld', () => {
  it('allows docker0 in the docker zone with target ACCEPT', () => {
    const activeZones = parseFirewalldActiveZones(read('firewalld-get-active-zones-docker-public-firewalld-869.txt'));
    const zones = [parseFirewalldZone(read('firewalld-list-all-public-target-default-firewalld-869.txt')), parseFirewalldZone(read('firewalld-info-zone-docker-accept-libnetwork-2548.txt'))];
    expect(firewallVerdict({ ...OLLAMA, firewalld: { zones, activeZones } })).toEqual({ verdict: 'allowed', by: 'firewalld', rule: 'zone docker: target ACCEPT' });
    const allZones = parseFirewalldZones(read('firewalld-list-all-zones-excerpt-libnetwork-2682.txt'));
    expect(firewallVerdict({ ...OLLAMA, firewalld: { zones: allZones, activeZones: [] } })).toMatchObject({ verdict: 'allowed', rule: 'zone docker: target ACCEPT' });
  });

  it('says unknown when the zone bound to the bridge was not listed', () => {
    const activeZones = parseFirewalldActiveZones(read('firewalld-get-active-zones-docker-public-firewalld-869.txt'));
    const zones = [parseFirewalldZone(read('firewalld-list-all-public-target-default-firewalld-869.txt'))];
    expect(firewallVerdict({ ...OLLAMA, firewalld: { zones, activeZones } })).toMatchObject({ verdict: 'unknown', by: 'firewalld', rule: expect.stringContaining('zone docker') });
  });

  it('blocks a bridge that is in no zone: it falls to the default zone, which does not list the port', () => {
    const activeZones = parseFirewalldActiveZones(read('firewalld-get-active-zones-docker-bridges-public-default.txt'));
    const zones = [parseFirewalldZone(read('firewalld-list-all-public-default-active-no-interfaces.txt'))];
    expect(firewallVerdict({ port: 11434, subnets: ['172.30.0.0/16'], interfaces: ['br-0123456789ab'], firewalld: { zones, activeZones } })).toEqual({
      verdict: 'blocked',
      by: 'firewalld',
      rule: 'zone public (target: default) does not list 11434/tcp in ports or services',
      fix: 'sudo firewall-cmd --permanent --zone=public --add-port=11434/tcp && sudo firewall-cmd --reload',
    });
    expect(firewallVerdict({ port: 52022, subnets: ['172.30.0.0/16'], interfaces: ['br-0123456789ab'], firewalld: { zones, activeZones } })).toMatchObject({ verdict: 'allowed', rule: 'zone public: ports 52022/tcp' });
  });

  it('uses a trusted zone that holds docker0 even when it is not marked active', () => {
    const zones = [parseFirewalldZone(read('firewalld-list-all-public-ports-8080-firewalld-407.txt')), parseFirewalldZone(read('firewalld-list-all-trusted-docker0-not-active-firewalld-407.txt'))];
    expect(firewallVerdict({ ...OLLAMA, firewalld: { zones, activeZones: [] } })).toMatchObject({ verdict: 'allowed', rule: 'zone trusted: target ACCEPT' });
  });

  it('applies a reject rich rule before the zone\'s ACCEPT target, only to its own source and port', () => {
    const activeZones = parseFirewalldActiveZones(read('firewalld-get-active-zones-docker-mock-docker-libnetwork-2651.txt'));
    const zones = [parseFirewalldZone(read('firewalld-list-all-docker-zone-rich-rule-reject-libnetwork-2651.txt'))];
    expect(firewallVerdict({ ...OLLAMA, firewalld: { zones, activeZones } })).toMatchObject({ verdict: 'allowed', rule: 'zone docker: target ACCEPT' });
    expect(firewallVerdict({ port: 80, subnets: ['192.168.222.1/32'], interfaces: ['docker0'], firewalld: { zones, activeZones } })).toEqual({
      verdict: 'blocked',
      by: 'firewalld',
      rule: 'zone docker: rule family="ipv4" source address="192.168.222.1" port port="80" protocol="tcp" reject',
      fix: 'sudo firewall-cmd --permanent --zone=docker --add-port=80/tcp && sudo firewall-cmd --reload',
    });
  });
});

describe('hostile input', () => {
  it('stops at MAX_LINES and skips absurd lines without throwing', () => {
    const many = '-A INPUT -p tcp --dport 1 -j ACCEPT\n'.repeat(MAX_LINES + 5000);
    expect(parseIptablesRules(many).rules).toHaveLength(MAX_LINES);
    const long = `${'1'.repeat(100_000)} ALLOW IN Anywhere\n-A INPUT ${'! '.repeat(50_000)}\n"${' x'.repeat(10_000)}`;
    expect(parseUfwStatus(long).rules).toEqual([]);
    expect(parseIptablesRules(long).rules).toEqual([]);
    expect(parseFirewalldZones(`${'a'.repeat(70)} (${'default, '.repeat(10_000)})`)).toEqual([]);
  });

  it('does not follow a chain that jumps to itself forever', () => {
    const loop = parseIptablesRules('-P INPUT ACCEPT\n-N a\n-A INPUT -j a\n-A a -j a\n');
    expect(firewallVerdict({ ...OLLAMA, iptables: loop }).verdict).toBe('unknown');
  });

  it('names the chains it jumped over because the text does not show them', () => {
    // The first lines of `iptables -S -tfilter` on a ufw host (cuberite/cuberite#3288), without the -N lines.
    const inputOnly = parseIptablesRules('-P INPUT DROP\n-A INPUT -j ufw-before-logging-input\n-A INPUT -j ufw-before-input\n');
    expect(firewallVerdict({ ...OLLAMA, iptables: inputOnly })).toMatchObject({
      verdict: 'blocked',
      rule: 'default policy DROP',
      note: 'jumps to chains not in the text were passed over: ufw-before-logging-input, ufw-before-input',
    });
  });

  it('keeps untrusted names out of the fix command', () => {
    const ruleset = parseIptablesRules(read('iptables-S-INPUT-drop-docker-subnet-11434-captured-debian12.txt'));
    const verdict = firewallVerdict({ port: 11434, subnets: ['172.17.0.0/16; rm -rf /', '172.17.0.0/16'], interfaces: ['docker0'], iptables: ruleset });
    expect(verdict.fix).toBe(IPTABLES_FIX);
  });
});

describe('on a real Docker + ufw host (the complete iptables -S with every ufw chain)', () => {
  const ruleset = parseIptablesRules(read('iptables-S-docker-ufw-policy-drop-ubuntu-desktop.txt'));

  it('walks ufw\'s own chains to the INPUT policy: nothing there lets the bridge reach 11434', () => {
    const verdict = firewallVerdict({ port: 11434, subnets: ['172.17.0.0/16'], interfaces: ['docker0'], iptables: ruleset });
    expect(verdict).toMatchObject({ verdict: 'blocked', by: 'iptables', rule: 'default policy DROP', fix: IPTABLES_FIX });
  });

  it('lets ufw decide when it is active, and gives the ufw command', () => {
    const ufw = parseUfwStatus(read('ufw-status-verbose-docker-host-default-deny-debian12.txt'));
    expect(ufw.active).toBe(true);
    expect(ufw.defaultIncoming).toBe('deny');
    const verdict = firewallVerdict({ port: 11434, subnets: ['172.17.0.0/16'], interfaces: ['docker0'], ufw, iptables: ruleset });
    expect(verdict).toMatchObject({ verdict: 'blocked', by: 'ufw', fix: 'sudo ufw allow from 172.17.0.0/16 to any port 11434 proto tcp' });
    expect(verdict.rule).toContain('Default: deny (incoming)');
  });

  it('takes an "11434 ALLOW IN Anywhere" rule as letting the bridge in', () => {
    const ufw = parseUfwStatus(read('ufw-status-verbose-11434-allow-anywhere.txt'));
    const verdict = firewallVerdict({ port: 11434, subnets: ['172.17.0.0/16'], interfaces: ['docker0'], ufw });
    expect(verdict.verdict).toBe('allowed');
    expect(verdict.rule).toMatch(/^11434 +ALLOW IN +Anywhere/);
    // The same rule says nothing about another port.
    expect(firewallVerdict({ port: 8080, subnets: ['172.17.0.0/16'], interfaces: ['docker0'], ufw }).verdict).toBe('blocked');
  });
});
