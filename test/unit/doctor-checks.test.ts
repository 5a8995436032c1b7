/**
 * The audits doctor added for the failure catalogue (F2, F3, F9, F10, F12, F15, §2, Stigmer's own
 * configuration): every outcome of every check, from hand-made facts. Each case is one machine
 * state and what a user reads for it: fail only when the agent-runner can't use Ollama now, a
 * warning for each risk, and always the exact fix. The facts themselves come from parsers tested
 * on real captured output (docker-json-parsers, firewall-parsers, linux-audits).
 */
import { describe, expect, it } from 'vitest';
import { darwinPlatform } from '../../platforms/darwin/index.ts';
import { aliasCheck } from '../../scripts/checks/alias.ts';
import { conflictCheck } from '../../scripts/checks/conflict.ts';
import { firewallCheck } from '../../scripts/checks/firewall.ts';
import { ipv6Check } from '../../scripts/checks/ipv6.ts';
import { modelCheck } from '../../scripts/checks/model.ts';
import { persistenceCheck } from '../../scripts/checks/persistence.ts';
import { proxyCheck } from '../../scripts/checks/proxy.ts';
import { rootlessCheck } from '../../scripts/checks/rootless.ts';
import { stigmerConfigCheck } from '../../scripts/checks/stigmer-config.ts';
import { versionCheck } from '../../scripts/checks/version.ts';
import type { FirewallFacts } from '../../platforms/types.ts';
import { bypassesProxy, capturingProxy, noProxyWith, proxyFromEnvironment } from '../../scripts/proxy.ts';
import { parseDocument } from 'yaml';
import { parseStigmerConfig } from '../../scripts/stigmer-config.ts';
import { compareVersions, olderThan, parseVersion } from '../../scripts/version.ts';
import { facts, listener, manualFacts, probe, runnerContainer, systemdDetection } from './support/facts.ts';

const SKIPPED = { skipped: 'there is no stigmer-agent-runner container and no local image with python3 to probe from' };
const CONFIG = '/home/user/.stigmer/config.yaml';
const ollama = (pid: number) => ({ pid, argv: ['/usr/local/bin/ollama', 'serve'] });

describe('ollama.conflict', () => {
  it('is ok with one server, naming its process and addresses', () => {
    const finding = conflictCheck.diagnose(facts({ listeners: [listener('::', { owner: ollama(812) })] }));
    expect(finding).toEqual({ status: 'ok', message: 'One server holds port 11434: pid 812: /usr/local/bin/ollama serve (on [::]:11434).' });
  });

  it('warns when two servers share the port on different addresses, naming both, and keeps the detected one', () => {
    const finding = conflictCheck.diagnose(
      facts({
        detection: systemdDetection({ serverPid: 812 }),
        listeners: [listener('127.0.0.1', { owner: ollama(812) }), listener('172.17.0.1', { owner: { pid: 4242, argv: ['ollama', 'serve'] } })],
      }),
    );
    expect(finding.status).toBe('warn');
    expect(finding.message).toBe('2 servers listen on port 11434: pid 812: /usr/local/bin/ollama serve (on 127.0.0.1:11434); pid 4242: ollama serve (on 172.17.0.1:11434).');
    expect(finding.fix).toContain('stop pid 4242 (kill 4242)');
    expect(finding.fix).toContain('keep systemd unit ollama.service');
  });

  it('fails when the port is held by something that is not Ollama, naming it', () => {
    const finding = conflictCheck.diagnose(
      facts({
        listeners: [listener('127.0.0.1', { owner: { pid: 999, argv: ['python3', '-m', 'http.server', '11434'] } })],
        hostProbe: { ok: false, url: 'http://127.0.0.1:11434', kind: 'not-ollama', error: 'HTTP 404 from http://127.0.0.1:11434/api/version is not Ollama\'s answer' },
      }),
    );
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('Port 11434 is held by pid 999: python3 -m http.server 11434 (on 127.0.0.1:11434), which is not Ollama');
    expect(finding.fix).toMatch(/^Stop pid 999 \(kill 999\) or move it to another port, then: sudo systemctl start ollama/);
  });

  it('reports two installations competing for the port (the registry\'s conflict), and skips when nothing listens', () => {
    const conflict = { status: 'warn' as const, message: 'Both the Homebrew service and Ollama.app start an Ollama on port 11434.', why: 'w', fix: 'brew services stop ollama' };
    expect(conflictCheck.diagnose(facts({ conflict })).message).toBe(conflict.message);
    expect(conflictCheck.diagnose(facts({ listeners: [] })).status).toBe('skip');
  });
});

describe('ollama.ipv6', () => {
  it('fails on a [::1]-only listener when the container does not reach it, with the widening fix', () => {
    const finding = ipv6Check.diagnose(facts({ detection: systemdDetection({ effectiveHost: '[::1]:11434' }), listeners: [listener('::1')], containerProbe: probe('refused') }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toBe('Ollama listens on [::1]:11434 only: IPv6 loopback.');
    expect(finding.fix).toBe('npx stigmer-setup --yes');
  });

  it('fails on a [::] listener that bindv6only=1 makes IPv6-only, when 127.0.0.1 is refused too', () => {
    const finding = ipv6Check.diagnose(
      facts({ listeners: [listener('::')], bindV6Only: true, hostProbe: { ok: false, url: 'http://127.0.0.1:11434', kind: 'refused', error: 'ECONNREFUSED' }, containerProbe: probe('refused') }),
    );
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('net.ipv6.bindv6only=1');
    expect(finding.fix).toContain('sysctl -w net.ipv6.bindv6only=0');
  });

  it('is ok on [::] with bindv6only=1 when 127.0.0.1 answers after all (Go sets the socket dual-stack itself)', () => {
    expect(ipv6Check.diagnose(facts({ listeners: [listener('::')], bindV6Only: true })).status).toBe('ok');
  });

  it('warns when the alias resolves to IPv6 first while Ollama listens on IPv4 only', () => {
    const finding = ipv6Check.diagnose(facts({ listeners: [listener('0.0.0.0')], containerProbe: probe('ok', { address: 'fd00::1' }) }));
    expect(finding.status).toBe('warn');
    expect(finding.message).toContain('resolves to the IPv6 address fd00::1 first');
    expect(finding.fix).toContain('--host [::]:11434');
  });

  it('is ok and says which families are taken', () => {
    expect(ipv6Check.diagnose(facts({ listeners: [listener('::')] })).message).toBe('Ollama takes IPv4 and IPv6 connections ([::]:11434); inside stigmer-agent-runner its address is 172.17.0.1.');
    expect(ipv6Check.diagnose(facts({ listeners: [listener('0.0.0.0')], containerProbe: SKIPPED })).message).toBe('Ollama takes IPv4 connections (0.0.0.0:11434).');
  });
});

describe('ollama.version', () => {
  const answering = (version: string) => ({ ok: true as const, url: 'http://127.0.0.1:11434', version, models: [] });

  it('warns when an Ollama older than 0.17.1 listens beyond loopback, naming the CVE and the upgrade of this installation', () => {
    const finding = versionCheck.diagnose(facts({ hostProbe: answering('0.16.0'), exposure: [{ address: '192.168.1.10', interfaceName: 'eth0', family: 4, answered: true }] }));
    expect(finding.status).toBe('warn');
    expect(finding.message).toBe('Ollama 0.16.0 is older than 0.17.1 and listens beyond loopback (it answers on 192.168.1.10).');
    expect(finding.why).toContain('CVE-2026-7482');
    expect(finding.fix).toBe('curl -fsSL https://ollama.com/install.sh | sh');
  });

  it('is ok, with the advice, when the old version listens on loopback only; ok from 0.17.1 on', () => {
    const loopback = versionCheck.diagnose(facts({ hostProbe: answering('0.12.0-rc1'), listeners: [listener('127.0.0.1')] }));
    expect(loopback.status).toBe('ok');
    expect(loopback.message).toContain('older than 0.17.1 (CVE-2026-7482), which matters less while it listens on loopback only');
    expect(versionCheck.diagnose(facts({ hostProbe: answering('0.17.1') })).message).toBe('Ollama 0.17.1 has the fix for CVE-2026-7482 (0.17.1 or later).');
  });

  it('does not judge a source build (0.0.0) or a version it can\'t read, and skips when Ollama does not answer', () => {
    expect(versionCheck.diagnose(facts({ hostProbe: answering('0.0.0') })).message).toContain("can't be compared");
    expect(versionCheck.diagnose(facts({ hostProbe: answering('main-abc') })).status).toBe('ok');
    expect(versionCheck.diagnose(facts({ hostProbe: { ok: false, url: 'u', kind: 'refused', error: 'e' } })).status).toBe('skip');
  });

  it('orders versions like semver: a pre-release comes before its release', () => {
    expect(olderThan('0.17.1-rc2', '0.17.1')).toBe(true);
    expect(olderThan('0.17.10', '0.17.1')).toBe(false);
    expect(olderThan('v0.9.4', '0.17.1')).toBe(true);
    expect(compareVersions(parseVersion('1.0.0') as NonNullable<ReturnType<typeof parseVersion>>, parseVersion('0.99.99') as NonNullable<ReturnType<typeof parseVersion>>)).toBeGreaterThan(0);
    expect(parseVersion('0.17')).toBeUndefined();
  });
});

describe('ollama.persistence', () => {
  it('warns about a value in the unit file install.sh rewrites, with the setup command that moves it to a drop-in', () => {
    const detection = systemdDetection({ effectiveHost: '0.0.0.0:11434', configuredIn: '/etc/systemd/system/ollama.service', dropIns: [] });
    const finding = persistenceCheck.diagnose(facts({ detection }));
    expect(finding.status).toBe('warn');
    expect(finding.message).toBe('OLLAMA_HOST=0.0.0.0:11434 is set in /etc/systemd/system/ollama.service itself, not in a drop-in.');
    expect(finding.fix).toContain('npx stigmer-setup --yes --host 0.0.0.0:11434');
  });

  it('warns that a hand-started server lasts until it stops, and says where a service brings it back otherwise', () => {
    expect(persistenceCheck.diagnose(manualFacts()).message).toContain('lasts only until that process stops');
    expect(persistenceCheck.diagnose(facts())).toEqual({
      status: 'ok',
      message: `Where Ollama listens lasts: systemd unit ollama.service (/etc/systemd/system/ollama.service) brings it back on 0.0.0.0:11434 (set by /etc/systemd/system/ollama.service.d/stigmer-setup.conf) after every restart, upgrade and reboot.`,
    });
  });
});

describe('container.rootless', () => {
  it('warns on rootless Docker, naming the opt-in and the bind that works', () => {
    const finding = rootlessCheck.diagnose(facts({ docker: { state: 'ok', runtime: 'native', operatingSystem: 'Debian GNU/Linux 12 (bookworm)', serverVersion: '20.10.24', rootless: true }, listeners: [listener('127.0.0.1')], containerProbe: probe('refused') }));
    expect(finding.status).toBe('warn');
    expect(finding.message).toContain('DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK is unset, so true');
    expect(finding.fix).toContain('DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK=false');
    expect(finding.fix).toContain('"host-gateway-ip": "10.0.2.2"');
    expect(finding.fix).toContain('--host 0.0.0.0:11434');
  });

  it('is ok on rootless Docker once the host loopback is opened', () => {
    const docker = { state: 'ok' as const, runtime: 'native' as const, operatingSystem: 'Debian', serverVersion: '20.10.24', rootless: true };
    expect(rootlessCheck.diagnose(facts({ docker, rootlessHostLoopback: 'false', containerProbe: probe('refused') })).status).toBe('ok');
  });

  it('warns on rootless Podman with pasta on Linux, but not inside a VM (Podman machine), where rootless says nothing about the host', () => {
    const podman = { state: 'ok' as const, runtime: 'podman' as const, operatingSystem: 'fedora', serverVersion: '5.4.0' };
    const linux = rootlessCheck.diagnose(facts({ docker: podman, podman: { rootless: true, networkCmd: 'pasta' }, containerProbe: probe('refused') }));
    expect(linux.status).toBe('warn');
    expect(linux.message).toContain('Podman runs rootless with pasta');
    expect(linux.fix).toContain('--map-host-loopback');
    const mac = rootlessCheck.diagnose(facts({ support: darwinPlatform, platform: 'darwin', docker: podman, podman: { rootless: true, networkCmd: 'pasta' }, containerProbe: probe('refused') }));
    expect(mac.status).toBe('ok');
  });
});

describe('container.alias', () => {
  it('fails when the name does not resolve on a native engine, with the --add-host flag and the compose form', () => {
    const finding = aliasCheck.diagnose(facts({ container: runnerContainer({ extraHosts: [] }), containerProbe: probe('dns', { address: undefined }) }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toBe('Inside stigmer-agent-runner, host.docker.internal does not resolve.');
    expect(finding.fix).toBe('Recreate stigmer-agent-runner with --add-host=host.docker.internal:host-gateway (compose: extra_hosts: ["host.docker.internal:host-gateway"])');
  });

  it('never suggests host-gateway on Rancher Desktop, and flags it when it is there', () => {
    const rancher = { state: 'ok' as const, runtime: 'rancher-desktop' as const, operatingSystem: 'Rancher Desktop WSL Distribution', serverVersion: '27.3.1' };
    const missing = aliasCheck.diagnose(facts({ docker: rancher, container: runnerContainer({ extraHosts: [] }), containerProbe: probe('dns', { address: undefined }) }));
    expect(missing.status).toBe('fail');
    expect(missing.fix).not.toContain('host-gateway');
    expect(missing.fix).toContain('host.rancher-desktop.internal');
    const added = aliasCheck.diagnose(facts({ docker: rancher, containerProbe: probe('refused') }));
    expect(added.status).toBe('fail');
    expect(added.message).toContain("which on Rancher Desktop is the VM's 172.17.0.1");
    expect(added.fix).toContain('without --add-host=host.docker.internal:host-gateway');
  });

  it('is ok with the address it resolved to, or with --network host', () => {
    expect(aliasCheck.diagnose(facts()).message).toBe('Inside stigmer-agent-runner, host.docker.internal resolves to 172.17.0.1.');
    expect(aliasCheck.diagnose(facts({ container: runnerContainer({ networkMode: 'host' }) })).message).toContain('needs no host alias');
  });

  it('warns from the container\'s settings when no probe ran: created without the mapping on a native engine', () => {
    const finding = aliasCheck.diagnose(facts({ container: runnerContainer({ running: false, extraHosts: [] }), containerProbe: { skipped: 'stigmer-agent-runner exists but is not running' } }));
    expect(finding.status).toBe('warn');
    expect(finding.fix).toContain('--add-host=host.docker.internal:host-gateway');
  });
});

describe('container.proxy', () => {
  const withProxy = (env: Record<string, string>) => runnerContainer({ env: new Map([['OLLAMA_BASE_URL', 'http://host.docker.internal:11434'], ...Object.entries(env)]) });

  it('fails when the runner\'s HTTP_PROXY captures the alias and the probe got the proxy\'s answer, with NO_PROXY', () => {
    const finding = proxyCheck.diagnose(facts({ container: withProxy({ HTTP_PROXY: 'http://172.17.0.1:3128' }), containerProbe: probe('not-ollama', { status: 200 }) }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain("stigmer-agent-runner's environment has HTTP_PROXY=http://172.17.0.1:3128 and no NO_PROXY");
    expect(finding.fix).toBe('Recreate stigmer-agent-runner with -e NO_PROXY=host.docker.internal,172.17.0.1 -e no_proxy=host.docker.internal,172.17.0.1');
  });

  it('keeps what NO_PROXY already lists, and is ok when it covers the alias', () => {
    const partial = proxyCheck.diagnose(facts({ container: withProxy({ http_proxy: 'http://proxy:3128', no_proxy: 'localhost,.corp' }), containerProbe: probe('not-ollama') }));
    expect(partial.fix).toContain('-e NO_PROXY=localhost,.corp,host.docker.internal,172.17.0.1');
    expect(proxyCheck.diagnose(facts({ container: withProxy({ HTTP_PROXY: 'http://proxy:3128', NO_PROXY: '.docker.internal' }) })).status).toBe('ok');
  });

  it('warns about the docker CLI\'s config.json proxies, which every new container gets', () => {
    const proxies = [{ source: 'this shell' }, { source: '/home/user/.docker/config.json (docker adds it to every new container)', httpProxy: 'http://proxy.example.com:3128', noProxy: '*.test.example.com,.example.org' }];
    const finding = proxyCheck.diagnose(facts({ proxies }));
    expect(finding.status).toBe('warn');
    expect(finding.fix).toBe('Set "noProxy": "*.test.example.com,.example.org,host.docker.internal,172.17.0.1" under proxies.default in that file');
  });

  it('without a runner, judges the alias on Ollama\'s own port', () => {
    const proxies = [{ source: 'this shell', httpProxy: 'http://proxy:3128', noProxy: 'host.docker.internal:11500' }];
    expect(proxyCheck.diagnose(facts({ container: undefined, containerProbe: SKIPPED, port: 11500, proxies })).message).toContain('No proxy captures host.docker.internal:11500');
    expect(proxyCheck.diagnose(facts({ container: undefined, containerProbe: SKIPPED, proxies })).status).toBe('warn');
  });

  it('reports the daemon\'s own proxy without blaming it: it only carries image pulls', () => {
    const docker = { state: 'ok' as const, runtime: 'docker-desktop' as const, operatingSystem: 'Docker Desktop', serverVersion: '28.2.2', daemonProxy: { source: 'the Docker daemon (docker info)', httpProxy: 'http.docker.internal:3128', noProxy: 'hubproxy.docker.internal' } };
    const finding = proxyCheck.diagnose(facts({ docker }));
    expect(finding.status).toBe('ok');
    expect(finding.message).toContain("The Docker daemon's own proxy (http.docker.internal:3128) only carries its image pulls.");
  });

  it('matches NO_PROXY the way urllib and httpx do', () => {
    expect(bypassesProxy('*', 'host.docker.internal', 11434)).toBe(true);
    expect(bypassesProxy('.internal', 'host.docker.internal', 11434)).toBe(true);
    expect(bypassesProxy('docker.internal', 'host.docker.internal', 11434)).toBe(true);
    expect(bypassesProxy('*.docker.internal', 'host.docker.internal', 11434)).toBe(true);
    expect(bypassesProxy('ker.internal', 'host.docker.internal', 11434)).toBe(false);
    expect(bypassesProxy('host.docker.internal:8080', 'host.docker.internal', 11434)).toBe(false);
    expect(bypassesProxy('host.docker.internal:11434', 'host.docker.internal', 11434)).toBe(true);
    expect(capturingProxy(proxyFromEnvironment('x', (name) => ({ http_proxy: 'http://a:1', HTTP_PROXY: 'http://b:2' })[name]), 'h', 1)).toBe('http://a:1');
    expect(noProxyWith(' a, ,b', ['b', 'c'])).toBe('a,b,c');
  });
});

describe('host.firewall', () => {
  const blocked: FirewallFacts = { verdict: 'blocked', by: 'iptables', rule: '-A INPUT -s 172.17.0.0/16 -p tcp -m tcp --dport 11434 -j DROP', fix: 'sudo iptables -I INPUT -s 172.17.0.0/16 -p tcp --dport 11434 -j ACCEPT', unreadable: [], subnets: ['172.17.0.0/16'] };

  it('fails on a timeout with the rule that drops it and the rule to add', () => {
    const finding = firewallCheck.diagnose(facts({ firewall: blocked, containerProbe: probe('timeout') }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toBe('stigmer-agent-runner timed out: iptables drops TCP from 172.17.0.0/16 to port 11434: -A INPUT -s 172.17.0.0/16 -p tcp -m tcp --dport 11434 -j DROP.');
    expect(finding.fix).toBe(blocked.fix);
  });

  it('is ok whenever the container reaches Ollama, whatever the rules say', () => {
    expect(firewallCheck.diagnose(facts({ firewall: blocked })).status).toBe('ok');
  });

  it('fails without a probe when the rules drop the bridge (nothing would get through)', () => {
    expect(firewallCheck.diagnose(facts({ firewall: blocked, container: undefined, containerProbe: SKIPPED })).status).toBe('fail');
  });

  it('on a timeout with unreadable rules, says so and asks for root', () => {
    const finding = firewallCheck.diagnose(facts({ firewall: { verdict: 'unknown', unreadable: ['iptables: needs root'], subnets: ['172.17.0.0/16'] }, containerProbe: probe('timeout') }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('(iptables: needs root)');
    expect(finding.fix).toContain('sudo npx stigmer-setup doctor');
  });

  it('on a timeout where the rules allow it, points past iptables (nftables, an outside firewall)', () => {
    const finding = firewallCheck.diagnose(facts({ firewall: { verdict: 'allowed', by: 'iptables', rule: 'default policy ACCEPT', unreadable: [], subnets: ['172.17.0.0/16'] }, containerProbe: probe('timeout') }));
    expect(finding.status).toBe('fail');
    expect(finding.fix).toContain('nft list ruleset');
  });

  it('where rules are not read (macOS, Windows), a timeout still fails with the platform\'s command', () => {
    const finding = firewallCheck.diagnose(facts({ support: darwinPlatform, platform: 'darwin', firewall: undefined, containerProbe: probe('timeout') }));
    expect(finding.status).toBe('fail');
    expect(finding.fix).toContain('socketfilterfw');
  });
});

describe('stigmer.config', () => {
  const config = (text: string | undefined, env: Record<string, string> = {}) => parseStigmerConfig(CONFIG, text, env, parseDocument);

  it('resolves llm.* like Stigmer: environment over the file over the default', () => {
    const parsed = config('backend:\n  type: local\n  local:\n    llm:\n      model: llama3.2:1b\n      base_url: http://localhost:11500\n', { STIGMER_LLM_MODEL: 'phi3' });
    expect(parsed.state).toBe('ok');
    expect(parsed.model).toEqual({ value: 'phi3', from: 'STIGMER_LLM_MODEL' });
    expect(parsed.baseUrl).toEqual({ value: 'http://localhost:11500', from: 'config.yaml', line: 6 });
    expect(parsed.provider).toEqual({ value: 'ollama', from: 'default' });
    expect(config(undefined)).toMatchObject({ state: 'missing', model: { value: 'qwen2.5-coder:7b', from: 'default' }, baseUrl: { value: 'http://localhost:11434' } });
  });

  it('names the file and the line of a YAML error, and of a value of the wrong type', () => {
    const quote = config('backend:\n  local:\n    llm:\n      model: "qwen\n      base_url: x\n');
    expect(quote).toMatchObject({ state: 'malformed', problem: { line: 4 } });
    expect(quote.problem?.message).toBe('the double quote opened on this line is never closed');
    const tab = config('backend:\n\tlocal: {}\n');
    expect(tab.state).toBe('malformed');
    expect(tab.problem?.line).toBe(2);
    const typed = config('backend:\n  local:\n    llm:\n      model: [a, b]\n');
    expect(typed).toMatchObject({ state: 'malformed', problem: { line: 4, message: '`backend.local.llm.model` is not a string' } });
    // A malformed file is not used: Stigmer's defaults stand.
    expect(typed.model.from).toBe('default');
  });

  it('survives hostile YAML: an alias bomb is refused, not expanded', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`)].join('\n');
    expect(config(bomb).state).toBe('malformed');
  });

  it('warns with file:line on a malformed file, with the fix', () => {
    const finding = stigmerConfigCheck.diagnose(facts({ stigmer: config('backend:\n  local:\n    llm:\n      model: "qwen\n') }));
    expect(finding.status).toBe('warn');
    expect(finding.message).toBe(`${CONFIG}:4: the double quote opened on this line is never closed.`);
    expect(finding.fix).toBe(`Fix line 4 of ${CONFIG} (YAML), then check with: stigmer config list`);
  });

  it('warns when Stigmer itself started the Ollama that runs, which no service setting reaches', () => {
    const finding = stigmerConfigCheck.diagnose(manualFacts({}, { startedByStigmer: true }));
    expect(finding.status).toBe('warn');
    expect(finding.message).toContain('`ollama serve` started by Stigmer (pid 4242)');
    expect(finding.fix).toContain('kill 4242');
  });

  it('warns when the runner has no OLLAMA_BASE_URL (Stigmer before v0.0.12): it talks to itself', () => {
    const finding = stigmerConfigCheck.diagnose(facts({ container: runnerContainer({ env: new Map() }) }));
    expect(finding.status).toBe('warn');
    expect(finding.fix).toContain('v0.0.12');
  });

  it('on macOS, warns about 127.0.0.1 (Stigmer rewrites only "localhost"), and accepts localhost', () => {
    const mac = (baseUrl: string) => facts({ support: darwinPlatform, platform: 'darwin', container: undefined, containerProbe: SKIPPED, stigmer: config(`backend:\n  local:\n    llm:\n      base_url: ${baseUrl}\n`) });
    const numeric = stigmerConfigCheck.diagnose(mac('http://127.0.0.1:11434'));
    expect(numeric.status).toBe('warn');
    expect(numeric.why).toContain('rewrites only "localhost"');
    expect(numeric.fix).toBe('stigmer config set llm.base_url http://localhost:11434');
    expect(stigmerConfigCheck.diagnose(mac('http://localhost:11434')).status).toBe('ok');
  });

  it('on Linux, accepts localhost (the runner shares the host network) and warns about a port Ollama is not on', () => {
    const linux = (baseUrl: string) => facts({ container: undefined, containerProbe: SKIPPED, stigmer: config(`backend:\n  local:\n    llm:\n      base_url: ${baseUrl}\n`) });
    expect(stigmerConfigCheck.diagnose(linux('http://localhost:11434'))).toEqual({ status: 'ok', message: 'Stigmer uses ollama model qwen2.5-coder:7b (default) at http://localhost:11434 (config.yaml).' });
    const port = stigmerConfigCheck.diagnose(linux('http://localhost'));
    expect(port.status).toBe('warn');
    expect(port.message).toContain('port 80 (a URL without a port), but Ollama listens on 11434');
  });

  it('judges the configured URL only for a runner Stigmer started with it, and reports the runner either way', () => {
    const runner = runnerContainer({ networkMode: 'host', env: new Map([['OLLAMA_BASE_URL', 'http://localhost:11434']]) });
    const finding = stigmerConfigCheck.diagnose(facts({ container: runner }));
    expect(finding).toEqual({ status: 'ok', message: 'Stigmer uses ollama model qwen2.5-coder:7b (default) at http://localhost:11434 (default); stigmer-agent-runner runs on network "host" with OLLAMA_BASE_URL=http://localhost:11434.' });
  });
});

describe('ollama.model, with the model Stigmer is configured with', () => {
  it('names config.yaml as where the model comes from when there is no runner', () => {
    const stigmer = parseStigmerConfig(CONFIG, 'backend:\n  local:\n    llm:\n      model: llama3.2:1b\n', {}, parseDocument);
    const finding = modelCheck.diagnose(facts({ container: undefined, containerProbe: SKIPPED, stigmer, expectedModel: 'llama3.2:1b' }));
    expect(finding.message).toContain(`llama3.2:1b (from ${CONFIG}) is not pulled`);
    expect(finding.fix).toBe('ollama pull llama3.2:1b');
  });
});
