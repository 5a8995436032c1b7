/**
 * The platform registry and the rules it exists for: nothing outside platforms/ branches on an OS,
 * paths follow the target OS, every installation is found, and doctor never recommends a setup
 * that would then say "nothing to do".
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { darwinPlatform } from '../../platforms/darwin/index.ts';
import { detectInstallations, loadPlatform } from '../../platforms/index.ts';
import { linuxPlatform } from '../../platforms/linux/index.ts';
import { win32Platform } from '../../platforms/win32/index.ts';
import { dockerStrategy, systemdUserStrategy } from '../../platforms/linux/elsewhere.ts';
import { SETUP_COMMAND } from '../../platforms/commands.ts';
import type { PlanRequest } from '../../platforms/types.ts';
import { runChecks } from '../../scripts/checks/index.ts';
import type { Facts } from '../../scripts/facts.ts';
import { listenerAt, type ProcessInfo } from '../../scripts/listeners.ts';
import { decidePlan } from '../../scripts/plan.ts';
import { ok, testContext } from './support/context.ts';
import { facts, listener, manualFacts, probe, runnerContainer, snapFacts, systemdDetection } from './support/facts.ts';

const PLATFORMS = { linux: linuxPlatform, darwin: darwinPlatform, win32: win32Platform };

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    return statSync(file).isDirectory() ? sourceFiles(file) : file.endsWith('.ts') ? [file] : [];
  });
}

describe('the registry', () => {
  it('loads each OS\'s entry on demand, the same object the platform module exports', async () => {
    expect(await loadPlatform('linux')).toBe(linuxPlatform);
    expect(await loadPlatform('darwin')).toBe(darwinPlatform);
    expect(await loadPlatform('win32')).toBe(win32Platform);
  });

  it('is the only place that knows an OS: no platform-name branch and no platforms/<os>/ import outside platforms/', () => {
    const offenders: string[] = [];
    for (const file of sourceFiles(path.join(REPO, 'scripts'))) {
      const text = readFileSync(file, 'utf8');
      for (const [index, line] of text.split('\n').entries()) {
        // The Platform type and --platform parsing name the platforms; nothing may branch on one.
        if (/platform(\(\))?\s*[!=]==?\s*'(linux|darwin|win32)'|'(linux|darwin|win32)'\s*[!=]==?\s*\w*platform/i.test(line) || /from '(\.\.\/)+platforms\/(linux|darwin|win32)\//.test(line)) {
          offenders.push(`${path.relative(REPO, file)}:${index + 1}: ${line.trim()}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });

  it('follows the target OS for paths, not the machine running the tests', () => {
    const env = { LOCALAPPDATA: 'C:\\Users\\ada\\AppData\\Local', USERPROFILE: 'C:\\Users\\ada', HOME: '/home/ada' };
    expect(PLATFORMS.win32.stateDir({ root: '/', home: PLATFORMS.win32.home(env), env })).toBe('C:\\Users\\ada\\AppData\\Local\\stigmer-setup');
    expect(PLATFORMS.win32.stateDir({ root: '/', home: 'C:\\Users\\ada', env: {} })).toBe('C:\\Users\\ada\\AppData\\Local\\stigmer-setup');
    expect(PLATFORMS.darwin.stateDir({ root: '/', home: PLATFORMS.darwin.home(env), env })).toBe('/home/ada/Library/Application Support/stigmer-setup');
    expect(PLATFORMS.linux.stateDir({ root: '/srv/test-root', home: '/home/ada', env })).toBe('/srv/test-root/var/lib/stigmer-setup');
    expect(PLATFORMS.win32.path.join('C:\\a', 'b')).toBe('C:\\a\\b');
  });

  it('has no sudo outside Linux: macOS changes are per-user, Windows has no sudo', () => {
    const ctx = testContext({ isRoot: false });
    expect(PLATFORMS.linux.elevation(ctx, true)).toEqual(['sudo', '-n']);
    expect(PLATFORMS.darwin.elevation(ctx, true)).toEqual([]);
    expect(PLATFORMS.win32.elevation(ctx, false)).toEqual([]);
  });
});

describe('detecting every installation', () => {
  const handStarted: ProcessInfo = { pid: 5151, argv: ['ollama', 'serve'], unit: 'session-3.scope', cgroup: '/user.slice/user-1000.slice/session-3.scope' };
  /** systemd knows ollama.service but it is inactive (MainPID=0); a hand-started server holds the port. */
  const inactiveUnit = ['LoadState=loaded', 'FragmentPath=/etc/systemd/system/ollama.service', 'DropInPaths=', 'Environment=', 'ActiveState=inactive', 'NeedDaemonReload=no', 'MainPID=0', ''].join('\n');

  it('finds a unit and a hand-started server together, configures the one that owns the port, and reports the conflict', async () => {
    const ctx = testContext({ exec: (command) => (command === 'systemctl' ? ok(inactiveUnit) : { exitCode: null, stdout: '', stderr: '', failure: 'not-found' }) });
    const support = { ...linuxPlatform, readListeners: async () => [listenerAt('127.0.0.1', 11434, 4, handStarted)] };
    const found = await detectInstallations(ctx, support, { root: '/nonexistent-root', home: '/nonexistent-home', env: {}, port: 11434 });
    expect(found.installations.map((installation) => installation.strategy.id)).toEqual(['linux-systemd', 'linux-manual']);
    expect(found.primary.strategy.id).toBe('linux-manual');
    expect(found.conflict?.message).toMatch(/Ollama is installed 2 ways here: systemd unit ollama\.service .*; a hand-started `ollama serve` \(pid 5151\)\. pid 5151: ollama serve .* holds port 11434\./);
    expect(found.conflict?.fix).toBe('Keep one. To stop the other: sudo systemctl disable --now ollama');
  });

  it('counts a server once when two strategies see it (the unit\'s MainPID owns the port)', async () => {
    const active = inactiveUnit.replace('ActiveState=inactive', 'ActiveState=active').replace('MainPID=0', 'MainPID=5151');
    const ctx = testContext({ exec: (command) => (command === 'systemctl' ? ok(active) : { exitCode: null, stdout: '', stderr: '', failure: 'not-found' }) });
    const support = { ...linuxPlatform, readListeners: async () => [listenerAt('127.0.0.1', 11434, 4, handStarted)] };
    const found = await detectInstallations(ctx, support, { root: '/nonexistent-root', home: '/nonexistent-home', env: {}, port: 11434 });
    expect(found.installations.map((installation) => installation.strategy.id)).toEqual(['linux-systemd']);
    expect(found.conflict).toBeUndefined();
  });

  it('reports an Ollama in Docker (docker-proxy holds the port) as that, with the republish fix, not as "not installed"', async () => {
    const proxy: ProcessInfo = { pid: 777, argv: ['/usr/bin/docker-proxy', '-proto', 'tcp', '-host-ip', '127.0.0.1', '-host-port', '11434', '-container-ip', '172.17.0.5', '-container-port', '11434'], unit: 'docker.service', cgroup: '/system.slice/docker.service' };
    const detection = await dockerStrategy.detect(testContext(), { root: '/', home: '/', env: {}, port: 11434, listeners: [listenerAt('127.0.0.1', 11434, 4, proxy)], path: path.posix });
    expect(detection?.description).toBe('Ollama in a Docker container, published on 127.0.0.1:11434 by docker-proxy (pid 777, container 172.17.0.5)');
    const plan = dockerStrategy.plan(detection!, { target: { host: '0.0.0.0', port: 11434 }, explicitHost: false, elevate: [] });
    expect(plan.changes).toEqual([]);
    expect(plan.blockers[0]?.fix).toContain('-p 11434:11434 instead of -p 127.0.0.1:11434:11434');
  });

  it('reports a systemd --user unit as that, with the per-user drop-in that does reach it', async () => {
    const owner: ProcessInfo = { pid: 888, argv: ['/usr/local/bin/ollama', 'serve'], unit: 'ollama.service', cgroup: '/user.slice/user-1000.slice/user@1000.service/app.slice/ollama.service' };
    const detection = await systemdUserStrategy.detect(testContext(), { root: '/', home: '/', env: {}, port: 11434, listeners: [listenerAt('127.0.0.1', 11434, 4, owner)], path: path.posix });
    expect(detection?.description).toBe('systemd --user unit ollama.service of user 1000 (pid 888)');
    const plan = systemdUserStrategy.plan(detection!, { target: { host: '0.0.0.0', port: 11434 }, explicitHost: false, elevate: [] });
    expect(plan.blockers[0]?.fix).toContain('~/.config/systemd/user/ollama.service.d/stigmer-setup.conf');
    expect(plan.blockers[0]?.fix).toContain('systemctl --user daemon-reload && systemctl --user restart ollama');
  });
});

describe('doctor and setup agree', () => {
  const REQUEST: PlanRequest = { target: { host: '0.0.0.0', port: 11434 }, explicitHost: false, elevate: [] };
  const fresh = (overrides = {}) => systemdDetection({ effectiveHost: undefined, ...overrides });

  /** Machine states across strategies, runtimes and probe outcomes. */
  const states: [string, Facts][] = [
    ['the seed: loopback, refused', facts({ detection: fresh(), listeners: [listener('127.0.0.1')], containerProbe: probe('refused') })],
    ['loopback, no probe', facts({ detection: fresh(), listeners: [listener('127.0.0.1')], container: undefined, containerProbe: { skipped: 'no docker' } })],
    ['configured wide, running loopback', facts({ detection: fresh({ effectiveHost: '0.0.0.0:11434' }), listeners: [listener('127.0.0.1')], containerProbe: probe('refused') })],
    ['configured wide, nothing running', facts({ detection: fresh({ effectiveHost: '0.0.0.0:11434' }), listeners: [], containerProbe: probe('refused') })],
    ['running wide by hand, unit on loopback, native engine', facts({ detection: fresh(), listeners: [listener('0.0.0.0')], containerProbe: probe('ok') })],
    [
      'running wide by hand, unit on loopback, Docker Desktop',
      facts({ detection: fresh(), listeners: [listener('0.0.0.0')], containerProbe: probe('ok'), docker: { state: 'ok', runtime: 'docker-desktop', operatingSystem: 'Docker Desktop', serverVersion: '28.0.0' } }),
    ],
    [
      'loopback, reached through a forwarding runtime (403 proof)',
      facts({ detection: fresh(), listeners: [listener('127.0.0.1')], containerProbe: probe('ok', { foreignHostStatus: 403 }), docker: { state: 'ok', runtime: 'colima', operatingSystem: 'Ubuntu 24.04 LTS', serverVersion: '27.0.0' } }),
    ],
    ['all good', facts()],
    ['wide, but a firewall times out', facts({ containerProbe: probe('timeout') })],
    ['wide, name does not resolve', facts({ containerProbe: probe('dns') })],
    ['loopback, 403 from a foreign Host', facts({ detection: fresh(), listeners: [listener('127.0.0.1')], containerProbe: probe('http-error', { status: 403 }) })],
    ['loopback, probe incomplete', facts({ detection: fresh(), listeners: [listener('127.0.0.1')], containerProbe: probe('incomplete') })],
    ['runner on the host network', facts({ detection: fresh(), listeners: [listener('127.0.0.1')], container: runnerContainer({ networkMode: 'host' }), containerProbe: { skipped: 'x' } })],
    ['snap on loopback, refused', snapFacts(undefined, { listeners: [listener('127.0.0.1')], containerProbe: probe('refused') })],
    ['snap configured, not restarted', snapFacts('0.0.0.0:11434', { listeners: [listener('127.0.0.1')], containerProbe: probe('refused') })],
    ['hand-started, loopback', manualFacts({ containerProbe: probe('refused') })],
    ['specific bind, refused', facts({ detection: fresh({ effectiveHost: '192.168.1.10:11434' }), listeners: [listener('192.168.1.10')], containerProbe: probe('refused') })],
  ];

  it.each(states)('%s: a finding recommends setup only when setup plans a change, and a planned change has a finding behind it', (_name, state) => {
    const findings = runChecks(state);
    const recommendsSetup = findings.some((finding) => finding.fix === SETUP_COMMAND && finding.status !== 'ok');
    const plan = decidePlan(state, REQUEST);
    if (recommendsSetup) expect(plan.changes.length + plan.blockers.length, JSON.stringify({ findings, plan: plan.summary })).toBeGreaterThan(0);
    if (plan.changes.length > 0) expect(findings.some((finding) => finding.status === 'fail' || finding.status === 'warn'), JSON.stringify(findings)).toBe(true);
  });

  it('changes nothing where a loopback route is proven, and says why binding wider would be worse', () => {
    const state = states.find(([name]) => name.startsWith('loopback, reached through'))?.[1] as Facts;
    const plan = decidePlan(state, REQUEST);
    expect(plan.changes).toEqual([]);
    expect(plan.summary).toContain("forwarding to the host's loopback (a foreign Host header gets 403), so binding 0.0.0.0 would only expose Ollama to your network");
    expect(runChecks(state).find((finding) => finding.id === 'ollama.listener')?.status).toBe('ok');
  });

  it('makes a by-hand wide bind last on a native engine, where loopback is not forwarded', () => {
    const state = states.find(([name]) => name.endsWith('native engine'))?.[1] as Facts;
    expect(decidePlan(state, REQUEST).changes.length).toBeGreaterThan(0);
    const other = states.find(([name]) => name.endsWith('Docker Desktop'))?.[1] as Facts;
    expect(decidePlan(other, REQUEST).changes).toEqual([]);
  });
});
