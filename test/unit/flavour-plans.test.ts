/**
 * The plan follows the consumer (issue 14 part 1): one test per outcome of the design's table, on
 * each platform where the outcome differs, and the doctor findings that go with it. Facts are
 * hand-made, as in plans.test.ts; the flavour is what scripts/stigmer-flavour.ts would report.
 */
import { describe, expect, it } from 'vitest';
import { darwinPlatform } from '../../platforms/darwin/index.ts';
import { linuxPlatform } from '../../platforms/linux/index.ts';
import { win32Platform } from '../../platforms/win32/index.ts';
import { SETUP_COMMAND } from '../../platforms/commands.ts';
import type { PlanRequest, PlatformSupport } from '../../platforms/types.ts';
import { runChecks, summarize } from '../../scripts/checks/index.ts';
import type { Finding } from '../../scripts/checks/types.ts';
import type { Facts } from '../../scripts/facts.ts';
import { decidePlan, reachDecision } from '../../scripts/plan.ts';
import { renderFindings } from '../../scripts/report.ts';
import type { StigmerFlavour } from '../../scripts/stigmer-flavour.ts';
import { facts, listener, probe, runnerContainer, systemdDetection } from './support/facts.ts';

const REQUEST: PlanRequest = { target: { host: '0.0.0.0', port: 11434 }, explicitHost: false, elevate: [] };
const THROWAWAY = 'a throwaway python:3.11-slim container';

const NATIVE: StigmerFlavour = { kind: 'native', evidence: ['the TypeScript CLI @stigmer/cli 3.13.0 on PATH (/usr/local/bin/stigmer)'] };
const GO_CLI_HOST: StigmerFlavour = { kind: 'docker-cli', network: 'host', evidence: ["Stigmer's configuration (~/.stigmer/config.yaml)"] };
const GO_CLI_BRIDGE: StigmerFlavour = { kind: 'docker-cli', network: 'bridge', evidence: ['the Go CLI 0.0.12 on PATH (/opt/homebrew/bin/stigmer)'] };
const NONE: StigmerFlavour = { kind: 'none', evidence: [] };

/** Linux as it is: a platform with the relay hook. */
const linuxWithRelay: PlatformSupport = linuxPlatform;

const PLATFORMS: [string, PlatformSupport, Facts['platform']][] = [
  ['Linux', linuxWithRelay, 'linux'],
  ['macOS', darwinPlatform, 'darwin'],
  ['Windows', win32Platform, 'win32'],
];

/**
 * Ollama on 127.0.0.1 (the systemd unit with no OLLAMA_HOST), Docker running, no runner container:
 * the probe runs from a throwaway container and is refused.
 */
function loopbackNoRunner(flavour: StigmerFlavour | undefined, overrides: Partial<Facts> = {}): Facts {
  return facts({
    detection: systemdDetection({ effectiveHost: undefined }),
    listeners: [listener('127.0.0.1')],
    container: undefined,
    containerProbe: probe('refused', { via: THROWAWAY }),
    flavour,
    ...overrides,
  });
}

const finding = (findings: Finding[], id: string) => findings.find((item) => item.id === id) as Finding;

describe('the plan follows the consumer', () => {
  it('the onboarding order on Linux (config.yaml, no runner container yet): nothing changes for Stigmer, and it says why and what it means for other containers', () => {
    const state = loopbackNoRunner(GO_CLI_HOST, { support: linuxWithRelay });
    const plan = decidePlan(state, REQUEST);
    expect(plan.changes).toEqual([]);
    expect(plan.blockers).toEqual([]);
    expect(plan.summary).toMatch(/^Stigmer here is the Go CLI of Stigmer's Docker-runner era \(found: Stigmer's configuration \(~\/\.stigmer\/config\.yaml\)\), whose runner container will share the host's network \(--network host, its Linux default\), so that runner will reach Ollama on 127\.0\.0\.1 as it is; nothing needs to change for Stigmer\. /);
    expect(plan.summary).toContain("A container on a Docker bridge (Open WebUI, a compose stack) can't reach a loopback-only Ollama; if one needs to, run `npx stigmer-setup --relay`");
    expect(plan.summary).toContain('`npx stigmer-setup --host 0.0.0.0:11434` (also exposes Ollama to your network)');
  });

  it('the same machine before this change would have widened the bind: with the flavour unknown, the refused probe decides', () => {
    // The old behaviour, kept for facts that don't say which Stigmer this is.
    expect(decidePlan(loopbackNoRunner(undefined), REQUEST).changes.length).toBeGreaterThan(0);
  });

  it.each(PLATFORMS)('a native runner on %s: nothing changes, whatever the probe from a throwaway container says', (_name, support, platform) => {
    const state = loopbackNoRunner(NATIVE, { support, platform });
    const plan = decidePlan(state, REQUEST);
    expect(plan.changes).toEqual([]);
    expect(plan.summary).toMatch(/^Stigmer runs a native agent-runner, a process on this machine with no container \(found: the TypeScript CLI @stigmer\/cli 3\.13\.0 on PATH/);
    expect(plan.summary).toContain('nothing needs to change for Stigmer.');
    // Only Linux has the relay; everywhere an explicit --host is the way for another container.
    expect(plan.summary.includes('--relay')).toBe(platform === 'linux');
    expect(plan.summary).toContain('npx stigmer-setup --host 0.0.0.0:11434');
  });

  it('a native runner where the probe got through: other containers reach it too, and the plan says that instead', () => {
    const plan = decidePlan(loopbackNoRunner(NATIVE, { containerProbe: probe('ok', { via: THROWAWAY, foreignHostStatus: 403 }), docker: { state: 'ok', runtime: 'colima', operatingSystem: 'Ubuntu 24.04 LTS', serverVersion: '27.0.0' } }), REQUEST);
    expect(plan.changes).toEqual([]);
    expect(plan.summary).toContain(`Containers on a Docker bridge reach it too here: ${THROWAWAY} got an answer`);
  });

  it('a native runner with Ollama already wide: nothing is narrowed, and the plan does not claim containers are locked out', () => {
    const plan = decidePlan(loopbackNoRunner(NATIVE, { listeners: [listener('0.0.0.0')], containerProbe: { skipped: 'no docker' } }), REQUEST);
    expect(plan.changes).toEqual([]);
    expect(plan.summary).toContain('Ollama listens on 0.0.0.0:11434, beyond loopback, and that stays as it is.');
    expect(plan.summary).not.toContain("can't reach");
  });

  it('a host-network runner container (running or stopped): nothing changes', () => {
    for (const running of [true, false]) {
      const state = loopbackNoRunner(undefined, { container: runnerContainer({ networkMode: 'host', running }), containerProbe: { skipped: 'x' } });
      const plan = decidePlan(state, REQUEST);
      expect(plan.changes).toEqual([]);
      expect(plan.summary).toContain('stigmer-agent-runner uses --network host');
    }
  });

  it.each([['macOS', darwinPlatform, 'darwin'], ['Windows', win32Platform, 'win32']] as const)('the Docker-era Go CLI on %s, runner still to come: bridged, so the probe decides as today', (_name, support, platform) => {
    expect(reachDecision(loopbackNoRunner(GO_CLI_BRIDGE, { support, platform })).changeNeeded).toBe(true);
    const reached = reachDecision(loopbackNoRunner(GO_CLI_BRIDGE, { support, platform, containerProbe: probe('ok', { via: THROWAWAY, foreignHostStatus: 403 }), docker: { state: 'ok', runtime: 'docker-desktop', operatingSystem: 'Docker Desktop', serverVersion: '28.0.0' } }));
    expect(reached.changeNeeded).toBe(false);
    expect(reached.reason).toContain(`${THROWAWAY} already reaches Ollama`);
  });

  it('a bridged runner container: the probe decides as today (refused: a change; reached: none)', () => {
    const bridged: StigmerFlavour = { kind: 'runner-container', network: 'bridge', networkMode: 'bridge', running: true, evidence: [] };
    const refused = loopbackNoRunner(bridged, { container: runnerContainer(), containerProbe: probe('refused') });
    expect(decidePlan(refused, REQUEST).changes.length).toBeGreaterThan(0);
    const reached = decidePlan(loopbackNoRunner(bridged, { container: runnerContainer(), containerProbe: probe('ok') }), REQUEST);
    expect(reached.changes).toEqual([]);
    expect(reached.summary).toContain('stigmer-agent-runner already reaches Ollama');
  });

  it('no Stigmer found: the probe decides as today, and the plan says the decision is about containers in general', () => {
    const refused = decidePlan(loopbackNoRunner(NONE), REQUEST);
    expect(refused.changes.length).toBeGreaterThan(0);
    expect(refused.summary).toContain('No Stigmer was found here (no runner container, no `stigmer` on PATH, no ~/.stigmer), so this decision is about containers in general: whether one on a Docker bridge reaches Ollama.');
    const reached = decidePlan(loopbackNoRunner(NONE, { containerProbe: probe('ok', { via: THROWAWAY, foreignHostStatus: 403 }), docker: { state: 'ok', runtime: 'colima', operatingSystem: 'Ubuntu 24.04 LTS', serverVersion: '27.0.0' } }), REQUEST);
    expect(reached.changes).toEqual([]);
    expect(reached.summary).toMatch(/^No Stigmer was found here .* about containers in general: .* already reaches Ollama/);
  });

  it('an explicit --host is the user\'s decision and overrides "nothing to change" for a native Stigmer', () => {
    const plan = decidePlan(loopbackNoRunner(NATIVE), { ...REQUEST, explicitHost: true });
    expect(plan.changes.length).toBeGreaterThan(0);
  });
});

describe('doctor follows the consumer', () => {
  it.each(PLATFORMS)('a native Stigmer on %s with a loopback Ollama: no failure and no warning, container.probe is a note, the summary passes', (_name, support, platform) => {
    const findings = runChecks(loopbackNoRunner(NATIVE, { support, platform, expectedModel: undefined }));
    const probeFinding = finding(findings, 'container.probe');
    expect(probeFinding.status).toBe('note');
    expect(probeFinding.message).toContain("refused: Ollama listens on loopback only (127.0.0.1:11434). Stigmer doesn't need this route: it runs a native agent-runner");
    // Never the plain setup, which would answer "nothing to change": the explicit --host that would.
    expect(probeFinding.fix).toBe('npx stigmer-setup --host 0.0.0.0:11434   # exposes Ollama to your network too');
    expect(finding(findings, 'ollama.listener')).toMatchObject({ status: 'ok' });
    expect(finding(findings, 'ollama.listener').message).toContain('that is enough for Stigmer, which runs a native agent-runner');
    expect(findings.filter((item) => item.status === 'fail' || item.status === 'warn').map((item) => item.id)).toEqual([]);
    // The note counts as passed; what is skipped here (no listener reader on a Linux-made state for
    // another OS, no firewall read) is only skipped.
    const ran = findings.filter((item) => item.status !== 'skip').length;
    expect(summarize(findings)).toBe(ran === findings.length ? `✓ All ${ran} checks passed (1 note)` : `${ran}/${ran} checks passed; ${findings.length - ran} skipped`);
    expect(findings.some((item) => item.fix === SETUP_COMMAND)).toBe(false);
  });

  it('summarizes notes as passed: all ok and notes is "✓ All N checks passed (n notes)"', () => {
    const ok = (id: string): Finding => ({ id, status: 'ok', message: 'fine' });
    expect(summarize([ok('a'), { id: 'b', status: 'note', message: 'n' }, ok('c')])).toBe('✓ All 3 checks passed (1 note)');
    expect(summarize([ok('a'), { id: 'b', status: 'note', message: 'n' }, { id: 'c', status: 'warn', message: 'w' }])).toBe('2/3 checks passed (1 warning)');
  });

  it('renders a note with its own symbol, what it means, and the command for whoever needs it', () => {
    const text = renderFindings(runChecks(loopbackNoRunner(NATIVE, { support: linuxWithRelay, expectedModel: undefined })));
    expect(text).toMatch(/^i container\.probe +From a throwaway/m);
    expect(text).toMatch(/^ +Note: A container on a Docker bridge .*--relay/m);
    expect(text).toMatch(/^ +If you need it: npx stigmer-setup --host 0\.0\.0\.0:11434/m);
    expect(text).not.toMatch(/^✖|^!/m);
  });

  it('the Docker-era Go CLI on macOS (a bridged runner to come): the refused probe is a failure, and setup is the fix', () => {
    const findings = runChecks(loopbackNoRunner(GO_CLI_BRIDGE, { support: darwinPlatform, platform: 'darwin' }));
    expect(finding(findings, 'container.probe').status).toBe('fail');
  });

  it('the onboarding order on Linux: the refused throwaway probe is a note, not a failure', () => {
    const findings = runChecks(loopbackNoRunner(GO_CLI_HOST, { support: linuxWithRelay }));
    expect(finding(findings, 'container.probe').status).toBe('note');
    expect(finding(findings, 'ollama.listener').status).toBe('ok');
  });

  it('no Stigmer found: a note whose fix is setup, which then does widen the bind (containers in general)', () => {
    const state = loopbackNoRunner(NONE);
    const probeFinding = finding(runChecks(state), 'container.probe');
    expect(probeFinding.status).toBe('note');
    expect(probeFinding.message).toContain('No Stigmer was found here, so no consumer needs this route yet.');
    expect(probeFinding.fix).toBe(SETUP_COMMAND);
    expect(decidePlan(state, REQUEST).changes.length).toBeGreaterThan(0);
  });

  it('the other route checks follow the same rule: a firewall dropping bridge traffic, an alias that does not resolve', () => {
    const firewall = { verdict: 'blocked' as const, by: 'ufw', rule: 'default deny (incoming)', fix: 'sudo ufw allow from 172.17.0.0/16 to any port 11434 proto tcp', unreadable: [], subnets: ['172.17.0.0/16'] };
    const timedOut = { containerProbe: probe('timeout', { via: THROWAWAY }), firewall };
    const native = runChecks(loopbackNoRunner(NATIVE, timedOut));
    expect(finding(native, 'host.firewall')).toMatchObject({ status: 'note', fix: firewall.fix });
    expect(finding(native, 'container.probe').status).toBe('note');
    const bridged = runChecks(loopbackNoRunner(GO_CLI_BRIDGE, { ...timedOut, support: darwinPlatform, platform: 'darwin' }));
    expect(finding(bridged, 'host.firewall').status).toBe('fail');
    const dns = runChecks(loopbackNoRunner(NATIVE, { containerProbe: probe('dns', { via: THROWAWAY }) }));
    expect(finding(dns, 'container.alias').status).toBe('note');
    expect(finding(dns, 'container.probe').status).toBe('note');
    expect(dns.filter((item) => item.status === 'fail').map((item) => item.id)).toEqual([]);
  });

  // The rule of plan.ts's header: a finding recommends setup only when setup plans a change, and a
  // planned change has a failure or warning behind it (as registry.test.ts checks for the runner-only states).
  const states: [string, Facts][] = [
    ['onboarding order, Linux', loopbackNoRunner(GO_CLI_HOST, { support: linuxWithRelay })],
    ['native, Linux, refused', loopbackNoRunner(NATIVE, { support: linuxWithRelay })],
    ['native, macOS, refused', loopbackNoRunner(NATIVE, { support: darwinPlatform, platform: 'darwin' })],
    ['native, timed out behind a firewall', loopbackNoRunner(NATIVE, { containerProbe: probe('timeout', { via: THROWAWAY }) })],
    ['native, nothing listens', loopbackNoRunner(NATIVE, { listeners: [] })],
    ['Go CLI to come, macOS, refused', loopbackNoRunner(GO_CLI_BRIDGE, { support: darwinPlatform, platform: 'darwin' })],
    ['no Stigmer, refused', loopbackNoRunner(NONE)],
    ['no Stigmer, no probe', loopbackNoRunner(NONE, { containerProbe: { skipped: 'no docker' } })],
  ];
  it.each(states)('%s: a finding recommends setup only when setup plans a change, and a planned change has a finding behind it', (_name, state) => {
    const findings = runChecks(state);
    const recommendsSetup = findings.some((item) => item.fix === SETUP_COMMAND && item.status !== 'ok');
    const plan = decidePlan(state, REQUEST);
    if (recommendsSetup) expect(plan.changes.length + plan.blockers.length, JSON.stringify({ findings, plan: plan.summary })).toBeGreaterThan(0);
    if (plan.changes.length > 0) expect(findings.some((item) => item.status === 'fail' || item.status === 'warn'), JSON.stringify(findings)).toBe(true);
  });

  it('a bridged runner container that is refused stays a failure', () => {
    const bridged: StigmerFlavour = { kind: 'runner-container', network: 'bridge', networkMode: 'bridge', running: true, evidence: [] };
    expect(finding(runChecks(loopbackNoRunner(bridged, { container: runnerContainer(), containerProbe: probe('refused') })), 'container.probe').status).toBe('fail');
  });

  it('stigmer.config names the flavour it found', () => {
    const cases: [StigmerFlavour, RegExp][] = [
      [NATIVE, /Stigmer found: a native agent-runner, a process on this machine with no container \(found: the TypeScript CLI @stigmer\/cli 3\.13\.0/],
      [GO_CLI_HOST, /Stigmer found: the Go CLI of Stigmer's Docker-runner era \(found: .*\), whose runner container will share the host's network/],
      [GO_CLI_BRIDGE, /Stigmer found: the Go CLI of Stigmer's Docker-runner era \(found: .*\), whose runner container will run on a Docker bridge/],
      [NONE, /Stigmer found: no Stigmer installation/],
      [{ kind: 'runner-container', network: 'bridge', networkMode: 'stigmer_net', running: false, evidence: ['the container stigmer-agent-runner (stopped, network "stigmer_net")'] }, /Stigmer found: an agent-runner container on a Docker bridge \(network "stigmer_net"\)/],
    ];
    for (const [flavour, expected] of cases) expect(finding(runChecks(loopbackNoRunner(flavour)), 'stigmer.config').message).toMatch(expected);
  });

  it('stigmer.config: 127.0.0.1 in base_url is right for a native runner on macOS (no container, no rewrite needed)', () => {
    const state = loopbackNoRunner(NATIVE, { support: darwinPlatform, platform: 'darwin' });
    const withUrl = { ...state, stigmer: { ...state.stigmer, baseUrl: { value: 'http://127.0.0.1:11434', from: 'config.yaml', line: 9 } } };
    expect(finding(runChecks(withUrl), 'stigmer.config').status).toBe('ok');
    // The Docker-era Go CLI there would hand 127.0.0.1 to a bridged container: that stays a warning.
    const goCli = { ...withUrl, flavour: GO_CLI_BRIDGE };
    expect(finding(runChecks(goCli), 'stigmer.config').status).toBe('warn');
  });
});
