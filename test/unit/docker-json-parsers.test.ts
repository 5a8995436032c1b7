/**
 * The Docker/Podman JSON parsers against real output: captured from the Docker 20.10 engine of the
 * development VM (files named *-captured-debian12.*) or published elsewhere (see
 * test/fixtures/SOURCES.md). Expected values are the ones that are in those files.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  parseDockerClientProxies,
  parseDockerInfoJson,
  parseNetworkInspect,
  parsePodmanInfo,
} from '../../scripts/parsers/docker-json.ts';
import { MAX_INPUT_CHARS } from '../../scripts/text.ts';

function fixture(name: string): string {
  return readFileSync(new URL(`../fixtures/docker/${name}`, import.meta.url), 'utf8');
}

const ROOTFUL = fixture('info-json-native-rootful-captured-debian12.json');
const ROOTLESS = fixture('info-json-rootless-captured-debian12.json');

describe('parseDockerInfoJson', () => {
  it('reads a rootful native engine (captured)', () => {
    expect(parseDockerInfoJson(ROOTFUL)).toEqual({
      operatingSystem: 'Debian GNU/Linux 12 (bookworm)',
      name: 'vm',
      serverVersion: '20.10.24+dfsg1',
      kernelVersion: '6.18.44-fc-v657',
      rootless: false,
      securityOptions: ['name=seccomp,profile=default'],
    });
  });

  it('sees rootless mode in SecurityOptions (captured rootless dockerd)', () => {
    const info = parseDockerInfoJson(ROOTLESS);
    expect(info).toMatchObject({ rootless: true, serverVersion: '20.10.24+dfsg1', securityOptions: ['name=seccomp,profile=default', 'name=rootless'] });
    // Nothing proxy-related is reported when the daemon has none: the JSON has "" for all three.
    expect(info).not.toHaveProperty('httpProxy');
    expect(info).not.toHaveProperty('noProxy');
  });

  it('reads the daemon proxy, with the credentials dockerd itself masks (captured)', () => {
    expect(parseDockerInfoJson(fixture('info-json-rootless-with-proxy-env-captured-debian12.json'))).toMatchObject({
      rootless: true,
      httpProxy: 'http://xxxxx:xxxxx@proxy.example.com:3128',
      httpsProxy: 'https://proxy.example.com:3129',
      noProxy: 'localhost,127.0.0.1,.corp',
    });
  });

  it("reads Docker Desktop's built-in proxy from a GET /info body (WSL2, 28.2.2)", () => {
    expect(parseDockerInfoJson(fixture('info-api-body-docker-desktop-wsl2-28.2-proxy-testcontainers-log.json'))).toEqual({
      operatingSystem: 'Docker Desktop',
      name: 'docker-desktop',
      serverVersion: '28.2.2',
      kernelVersion: '6.6.87.2-microsoft-standard-WSL2',
      rootless: false,
      securityOptions: ['name=seccomp,profile=builtin', 'name=cgroupns'],
      httpProxy: 'http.docker.internal:3128',
      httpsProxy: 'http.docker.internal:3128',
      noProxy: 'hubproxy.docker.internal',
    });
  });

  it('copes with a JSON that has no SecurityOptions at all (python-on-whales, Docker Desktop 20.10.2)', () => {
    expect(parseDockerInfoJson(fixture('info-json-docker-desktop-20.10-proxy-python-on-whales.json'))).toEqual({
      operatingSystem: 'Docker Desktop',
      name: 'docker-desktop',
      serverVersion: '20.10.2',
      kernelVersion: '4.19.121-linuxkit',
      rootless: false,
      securityOptions: [],
      httpProxy: 'gateway.docker.internal:3128',
      httpsProxy: 'gateway.docker.internal:3129',
    });
  });

  it('gives undefined for what docker CLI 28 prints with no daemon: every server field empty (captured)', () => {
    const text = fixture('info-json-daemon-unreachable-captured-debian12.json');
    // The fixture really is that shape: valid JSON, ServerVersion "", no ServerErrors key.
    const raw = JSON.parse(text) as Record<string, unknown>;
    expect(raw.ServerVersion).toBe('');
    expect(raw).not.toHaveProperty('ServerErrors');
    expect(parseDockerInfoJson(text)).toBeUndefined();
    // The reason is on stderr, which is not JSON.
    expect(parseDockerInfoJson(fixture('info-json-daemon-unreachable-captured-debian12.stderr.txt'))).toBeUndefined();
  });

  it('passes on the ServerErrors message of older CLIs', () => {
    expect(parseDockerInfoJson(fixture('info-json-server-errors-daemon-down-2021.json'))).toEqual({
      serverErrors: 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?',
    });
  });
});

describe('parsePodmanInfo', () => {
  it('reads host.security.rootless from `podman info --format json` (Podman 3.0 docs example)', () => {
    // Podman before 5.1 has no rootlessNetworkCmd, so no network command is made up.
    expect(parsePodmanInfo(fixture('podman-info-json-rootless-podman-docs-3.0.json'))).toEqual({ rootless: true, version: '3.0.0-dev' });
  });

  it('reads host.rootless, where Podman 2 put it (Podman 2.0 docs example)', () => {
    expect(parsePodmanInfo(fixture('podman-info-json-rootless-podman-docs-2.0.json'))).toEqual({ rootless: true, version: '2.0.0' });
  });

  it('reads rootless and pasta from the default YAML form (Podman 5.2.3)', () => {
    expect(parsePodmanInfo(fixture('podman-info-yaml-rootless-pasta-gitlab-runner-docs.txt'))).toEqual({ rootless: true, networkCmd: 'pasta', version: '5.2.3' });
  });

  it('does not take docker info output for podman info', () => {
    expect(parsePodmanInfo(ROOTLESS)).toBeUndefined();
    expect(parsePodmanInfo(fixture('info-text-rootless-captured-debian12.txt'))).toBeUndefined();
  });
});

describe('parseNetworkInspect', () => {
  it('reads the default bridge (captured): subnet 172.17.0.0/16, docker0, and no Gateway listed', () => {
    expect(parseNetworkInspect(fixture('network-inspect-bridge-captured-debian12.json'))).toEqual([
      { name: 'bridge', driver: 'bridge', subnets: ['172.17.0.0/16'], gateways: [], bridgeInterface: 'docker0' },
    ]);
  });

  it('names a user bridge br-<first 12 of Id> (captured)', () => {
    const text = fixture('network-inspect-user-bridge-captured-debian12.json');
    const [raw] = JSON.parse(text) as [{ Id: string }];
    expect(parseNetworkInspect(text)).toEqual([
      { name: 'stigmer-fixture-net', driver: 'bridge', subnets: ['172.18.0.0/16'], gateways: ['172.18.0.1'], bridgeInterface: `br-${raw.Id.slice(0, 12)}` },
    ]);
    expect(parseNetworkInspect(text)[0]?.bridgeInterface).toBe('br-4cfd9f01fefc');
  });

  it('prefers an explicit bridge name over br-<id> (docker_gwbridge)', () => {
    const object = fixture('network-inspect-docker-gwbridge-object-python-on-whales.json');
    expect(parseNetworkInspect(`[${object}]`)).toEqual([
      { name: 'docker_gwbridge', driver: 'bridge', subnets: ['172.18.0.0/16'], gateways: ['172.18.0.1'], bridgeInterface: 'docker_gwbridge' },
    ]);
    // `docker network inspect` prints an array; the bare object this fixture holds is not its output.
    expect(parseNetworkInspect(object)).toEqual([]);
  });
});

describe('parseDockerClientProxies', () => {
  it("reads proxies.default from the docs' config.json", () => {
    expect(parseDockerClientProxies(fixture('client-config-proxies-default-docker-docs.json'))).toEqual({
      httpProxy: 'http://proxy.example.com:3128',
      httpsProxy: 'https://proxy.example.com:3129',
      noProxy: '*.test.example.com,.example.org,127.0.0.0/8',
    });
  });

  it('keeps to the default entry when there are per-daemon ones', () => {
    expect(parseDockerClientProxies(fixture('client-config-proxies-per-daemon-docker-docs.json'))).toEqual({
      httpProxy: 'http://proxy.example.com:3128',
      httpsProxy: 'https://proxy.example.com:3129',
      noProxy: '*.test.example.com,.example.org,127.0.0.0/8',
    });
  });

  it('gives undefined for JSON without proxies', () => {
    expect(parseDockerClientProxies(ROOTFUL)).toBeUndefined();
  });
});

describe('hostile input', () => {
  /** The captured rootful info with some fields replaced. */
  function rootfulWith(changes: Record<string, unknown>): string {
    return JSON.stringify({ ...(JSON.parse(ROOTFUL) as Record<string, unknown>), ...changes });
  }

  it('never throws on non-JSON, and gives nothing', () => {
    for (const text of ['', 'null', '42', '"docker"', 'not json', '{', '['.repeat(100_000), fixture('info-permission-denied.txt')]) {
      expect(parseDockerInfoJson(text)).toBeUndefined();
      expect(parsePodmanInfo(text)).toBeUndefined();
      expect(parseNetworkInspect(text)).toEqual([]);
      expect(parseDockerClientProxies(text)).toBeUndefined();
    }
    for (const value of [undefined, null, 42, {}]) {
      expect(parseDockerInfoJson(value as unknown as string)).toBeUndefined();
      expect(parsePodmanInfo(value as unknown as string)).toBeUndefined();
      expect(parseNetworkInspect(value as unknown as string)).toEqual([]);
    }
  });

  it('wants an object where docker prints one, and an array where docker prints one', () => {
    expect(parseDockerInfoJson(`[${ROOTFUL}]`)).toBeUndefined();
    expect(parseDockerClientProxies(`[${fixture('client-config-proxies-default-docker-docs.json')}]`)).toBeUndefined();
    expect(parseNetworkInspect(ROOTFUL)).toEqual([]);
  });

  it('caps huge strings and strips terminal escapes', () => {
    const info = parseDockerInfoJson(rootfulWith({ Name: 'x'.repeat(100_000), OperatingSystem: '\x1b]0;pwned\x07Debian\x1b[2J', HttpProxy: 'h'.repeat(10_000) }));
    expect(info).toMatchObject({ name: 'x'.repeat(500), operatingSystem: 'Debian', httpProxy: 'h'.repeat(500) });
  });

  it('refuses input over the size limit instead of parsing it', () => {
    const padded = ROOTFUL + ' '.repeat(MAX_INPUT_CHARS);
    expect(JSON.parse(padded)).toBeTruthy();
    expect(parseDockerInfoJson(padded)).toBeUndefined();
  });

  it('ignores fields of the wrong type', () => {
    expect(parseDockerInfoJson(rootfulWith({ ServerVersion: 20 }))).toBeUndefined();
    expect(parseDockerInfoJson(rootfulWith({ SecurityOptions: 'name=rootless' }))).toMatchObject({ rootless: false, securityOptions: [] });
    expect(parseDockerInfoJson(rootfulWith({ SecurityOptions: [{ name: 'rootless' }, 7, 'name=rootless'] }))).toMatchObject({ rootless: true, securityOptions: ['name=rootless'] });
    expect(parseDockerInfoJson(rootfulWith({ HttpProxy: { url: 'http://x' }, NoProxy: ['a'] }))).not.toHaveProperty('httpProxy');
    expect(parseDockerInfoJson(rootfulWith({ ServerErrors: 'down', ServerVersion: '' }))).toBeUndefined();
    const podman = JSON.parse(fixture('podman-info-json-rootless-podman-docs-3.0.json')) as { host: { security: Record<string, unknown> } };
    podman.host.security.rootless = 'true';
    expect(parsePodmanInfo(JSON.stringify(podman))).toMatchObject({ rootless: false });
    expect(parseDockerClientProxies('{"proxies":{"default":{"httpProxy":3128,"noProxy":null}}}')).toBeUndefined();
  });

  it('matches name=rootless as a field, not as a substring', () => {
    expect(parseDockerInfoJson(rootfulWith({ SecurityOptions: ['name=seccomp,profile=/etc/rootless.json'] }))).toMatchObject({ rootless: false });
    expect(parseDockerInfoJson(rootfulWith({ SecurityOptions: ['name=seccomp,profile=default', 'name=rootless'] }))).toMatchObject({ rootless: true });
  });

  it('does not take the text of a YAML block scalar for keys', () => {
    // A multi-line value (`key: |` and its deeper-indented lines) is text, whatever it looks like.
    const yaml = fixture('podman-info-yaml-rootless-pasta-gitlab-runner-docs.txt').replace(
      '  uptime: 7h 48m 56.00s (Approximately 0.29 days)\n',
      '  uptime: |\n    rootlessNetworkCmd: slirp4netns\n    security:\n      rootless: false\n',
    );
    expect(yaml).toContain('rootlessNetworkCmd: slirp4netns');
    expect(parsePodmanInfo(yaml)).toEqual({ rootless: true, networkCmd: 'pasta', version: '5.2.3' });
  });

  it('does not read keys through __proto__', () => {
    expect(parseDockerInfoJson('{"__proto__":{"ServerVersion":"20.10"}}')).toBeUndefined();
  });

  it('keeps only real subnets, addresses and interface names from a network', () => {
    const [bridge] = JSON.parse(fixture('network-inspect-bridge-captured-debian12.json')) as [Record<string, unknown>];
    const hostile = {
      ...bridge,
      IPAM: { Config: [{ Subnet: '172.17.0.0/99', Gateway: 'not-an-ip' }, { Subnet: 1722, Gateway: ['172.17.0.1'] }, 'x', { Subnet: 'fd00::/64', Gateway: 'fd00::1' }] },
      Options: { 'com.docker.network.bridge.name': 'docker0; rm -rf /' },
    };
    expect(parseNetworkInspect(JSON.stringify([hostile, 'junk', null, { Name: 5 }]))).toEqual([
      { name: 'bridge', driver: 'bridge', subnets: ['fd00::/64'], gateways: ['fd00::1'] },
    ]);
    // No name option and an Id that is not hex: no bridge interface is guessed.
    expect(parseNetworkInspect(JSON.stringify([{ ...bridge, Options: {}, Id: '../../etc/passwd' }]))[0]).not.toHaveProperty('bridgeInterface');
  });
});
