/**
 * Linux's read-only audits, fed the real output of ufw, firewall-cmd and iptables (fixtures with
 * their sources in test/fixtures/SOURCES.md). The commands can't be run here with the rules each
 * case needs, so their answers are scripted; the files under /proc are the real ones.
 */
import { describe, expect, it } from 'vitest';
import { readBindV6Only, readFirewall, readRootlessHostLoopback } from '../../platforms/linux/audits.ts';
import { failed, NOT_FOUND, ok, testContext, type ExecScript } from './support/context.ts';
import { fixture } from './support/fixtures.ts';
import { because, needs } from './support/portability.ts';

const REQUEST = { port: 11434, subnets: ['172.17.0.0/16'], interfaces: ['docker0'] };

/** firewall-cmd --state on a machine without a running firewalld: "not running", exit 252 (firewall-cmd(1)). */
const FIREWALLD_STOPPED = { exitCode: 252, stdout: fixture('firewall/firewalld-state-not-running.txt'), stderr: '' };

function machine(answers: Record<string, ReturnType<ExecScript>>): ExecScript {
  return (command, args) => answers[[command, ...args].join(' ')] ?? NOT_FOUND;
}

describe('readFirewall', () => {
  it('as root, finds the DROP rule in iptables and gives the rule to add', async () => {
    const ctx = testContext({
      exec: machine({
        'firewall-cmd --state': FIREWALLD_STOPPED,
        'iptables -S': ok(fixture('firewall/iptables-S-INPUT-drop-docker-subnet-11434-captured-debian12.txt')),
      }),
    });
    const facts = await readFirewall(ctx, REQUEST);
    expect(facts).toMatchObject({
      verdict: 'blocked',
      by: 'iptables',
      rule: '-A INPUT -s 172.17.0.0/16 -p tcp -m tcp --dport 11434 -j DROP',
      fix: 'sudo iptables -I INPUT -s 172.17.0.0/16 -p tcp --dport 11434 -j ACCEPT',
      unreadable: [],
      subnets: ['172.17.0.0/16'],
    });
    // ufw translates its status lines; every tool runs untranslated.
    for (const call of ctx.calls) expect(call.options.env).toMatchObject({ LC_ALL: 'C' });
  });

  it('as a user, names iptables as unreadable (needs root) and judges nothing', async () => {
    const ctx = testContext({
      isRoot: false,
      exec: machine({
        'firewall-cmd --state': FIREWALLD_STOPPED,
        'iptables -S': failed(fixture('firewall/iptables-S-non-root-captured-debian12.stderr.txt'), 4),
      }),
    });
    const facts = await readFirewall(ctx, REQUEST);
    expect(facts.verdict).toBe('unknown');
    expect(facts.unreadable).toEqual(['iptables: needs root']);
  });

  it('reads firewalld\'s zones when it runs: docker0 in a zone with target ACCEPT lets the bridge in', async () => {
    const ctx = testContext({
      exec: machine({
        'firewall-cmd --state': ok(fixture('firewall/firewalld-state-running.txt')),
        'firewall-cmd --get-active-zones': ok(fixture('firewall/firewalld-get-active-zones-docker-public-firewalld-869.txt')),
        'firewall-cmd --zone=docker --list-all': ok(fixture('firewall/firewalld-info-zone-docker-accept-libnetwork-2548.txt')),
        'firewall-cmd --zone=public --list-all': ok(fixture('firewall/firewalld-list-all-public-target-default-firewalld-869.txt')),
      }),
    });
    const facts = await readFirewall(ctx, REQUEST);
    expect(facts).toMatchObject({ verdict: 'allowed', by: 'firewalld' });
    // Zone names come from firewall-cmd's own output, and only well-formed ones are asked about.
    expect(ctx.calls.filter((call) => call.args[0]?.startsWith('--zone=')).map((call) => call.args[0]).sort()).toEqual(['--zone=docker', '--zone=public']);
  });

  it('blocks when ufw is active with its default deny and no rule for the bridge', async () => {
    const ctx = testContext({
      exec: machine({
        'ufw status verbose': ok(fixture('firewall/ufw-status-verbose-docker-host-default-deny-debian12.txt')),
        'firewall-cmd --state': FIREWALLD_STOPPED,
        'iptables -S': ok(fixture('firewall/iptables-S-docker-ufw-policy-drop-ubuntu-desktop.txt')),
      }),
    });
    expect(await readFirewall(ctx, REQUEST)).toMatchObject({ verdict: 'blocked', by: 'ufw', fix: 'sudo ufw allow from 172.17.0.0/16 to any port 11434 proto tcp' });
  });

  it('is unknown, not "allowed", on a machine with none of the tools', async () => {
    const facts = await readFirewall(testContext(), REQUEST);
    expect(facts.verdict).toBe('unknown');
    expect(facts.unreadable).toEqual([]);
  });
});

describe('readBindV6Only', () => {
  it.skipIf(needs.proc)('reads the real /proc/sys/net/ipv6/bindv6only of this machine as a boolean' + because(needs.proc), async () => {
    const value = await readBindV6Only(testContext());
    const text = (await testContext().fs.readText('/proc/sys/net/ipv6/bindv6only', { follow: true }))?.trim();
    expect(value).toBe(text === undefined ? undefined : text === '1');
  });
});

describe('readRootlessHostLoopback', () => {
  it("reads the variable from the user unit's Environment=, and is undefined when it is not there", async () => {
    // A real `systemctl show --property=Environment` line (Docker's proxy docs): no rootless variable in it.
    const ctx = testContext({ exec: machine({ 'systemctl --user show docker.service --property=Environment': ok(fixture('systemctl/show-property-environment-docker-proxy-docs.txt')) }) });
    expect(await readRootlessHostLoopback(ctx)).toBeUndefined();
    expect(ctx.calls[0]?.args).toEqual(['--user', 'show', 'docker.service', '--property=Environment']);
    expect(await readRootlessHostLoopback(testContext())).toBeUndefined();
  });
});
