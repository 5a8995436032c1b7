/**
 * Each strategy decision: whether a change is needed at all (decidePlan), and the exact file
 * changes and commands each Linux strategy plans. Plans are pure, so the detections are hand-made;
 * one case runs the real systemd detect against a temporary --root to pin the path it writes.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { notInstalledStrategy } from '../../platforms/linux/index.ts';
import { manualStrategy } from '../../platforms/linux/manual.ts';
import { snapDetectionOf, snapStrategy } from '../../platforms/linux/snap.ts';
import { DROP_IN_PATH, renderDropIn, systemdStrategy, type SystemdDetection } from '../../platforms/linux/systemd.ts';
import type { Change, FileChange, PlanRequest } from '../../platforms/types.ts';
import { decidePlan } from '../../scripts/plan.ts';
import { facts, listener, manualDetection, probe, runnerContainer, snapDetection, snapFacts, systemdDetection } from './support/facts.ts';
import { ok, tempRoot, testContext } from './support/context.ts';

const ROOT = '/tmp/stigmer-root';
const OUR_FILE = `${ROOT}/etc/systemd/system/ollama.service.d/stigmer-setup.conf`;
const OVERRIDE = '/etc/systemd/system/ollama.service.d/override.conf';
const DEFAULT_REQUEST: PlanRequest = { target: { host: '0.0.0.0', port: 11434 }, explicitHost: false, elevate: [] };
const request = (overrides: Partial<PlanRequest> = {}): PlanRequest => ({ ...DEFAULT_REQUEST, ...overrides });

/** A systemd host as install.sh leaves it: no OLLAMA_HOST, loopback only, no drop-in of ours. */
const fresh = (overrides: Partial<SystemdDetection> = {}) => systemdDetection({ effectiveHost: undefined, ...overrides }, ROOT);
/** Every command the changes run, in order: a setting's command and each step of a restart. */
const commands = (changes: Change[]) => changes.flatMap((change) => (change.type === 'restart' ? change.steps : change.type === 'setting' ? [change.argv] : []));
const files = (changes: Change[]) => changes.filter((change): change is FileChange => change.type === 'file');

const EXPECTED_DROP_IN = [
  '[Service]',
  'Environment="OLLAMA_HOST=0.0.0.0:11434"',
];

describe('decidePlan', () => {
  // Facts for the seed's machine: systemd, loopback-only Ollama, a bridge runner that is refused.
  const broken = (overrides: Parameters<typeof facts>[0] = {}) =>
    facts({ detection: fresh(), listeners: [listener('127.0.0.1')], containerProbe: probe('refused'), ...overrides });

  it('changes nothing when the container already reaches Ollama, and says so', () => {
    const plan = decidePlan(broken({ containerProbe: probe('ok') }), request());
    expect(plan.changes).toEqual([]);
    expect(plan.blockers).toEqual([]);
    expect(plan.strategy).toBe('linux-systemd');
    expect(plan.summary).toContain('stigmer-agent-runner already reaches Ollama at http://host.docker.internal:11434');
    expect(plan.summary).toContain('nothing needs to change');
  });

  it('changes nothing when the runner uses --network host', () => {
    const plan = decidePlan(broken({ container: runnerContainer({ networkMode: 'host' }), containerProbe: { skipped: 'x' } }), request());
    expect(plan.changes).toEqual([]);
    expect(plan.summary).toContain('--network host');
  });

  it('changes nothing when there is no probe and the service already listens beyond loopback', () => {
    const noProbe = { container: undefined, containerProbe: { skipped: 'no docker' } };
    const wildcard = decidePlan(broken({ ...noProbe, detection: fresh({ effectiveHost: '0.0.0.0:11434' }), listeners: [listener('0.0.0.0')] }), request());
    expect(wildcard.changes).toEqual([]);
    expect(wildcard.summary).toContain('already listens on 0.0.0.0:11434');
    const specific = decidePlan(broken({ ...noProbe, detection: fresh({ effectiveHost: '192.168.1.10:11434' }), listeners: [listener('192.168.1.10')] }), request());
    expect(specific.changes).toEqual([]);
  });

  it('makes a wide bind last when the service is still configured for loopback', () => {
    // Someone restarted Ollama by hand with OLLAMA_HOST; the unit would bring loopback back.
    const plan = decidePlan(broken({ detection: fresh(), listeners: [listener('0.0.0.0')], container: undefined, containerProbe: { skipped: 'no docker' } }), request());
    expect(files(plan.changes).map((change) => change.path)).toEqual([OUR_FILE]);
  });

  it('changes nothing when Ollama listens on all interfaces and the container fails for another reason', () => {
    const plan = decidePlan(broken({ detection: fresh({ effectiveHost: '0.0.0.0:11434' }), listeners: [listener('::')], containerProbe: probe('timeout') }), request());
    expect(plan.changes).toEqual([]);
    expect(plan.summary).toContain('see container.probe');
  });

  it('widens a bind to one specific address when the container is refused', () => {
    const plan = decidePlan(broken({ detection: fresh({ effectiveHost: '192.168.1.10:11434' }), listeners: [listener('192.168.1.10')], containerProbe: probe('refused') }), request());
    expect(commands(plan.changes)).toEqual([['systemctl', 'daemon-reload'], ['systemctl', 'restart', 'ollama']]);
    expect(files(plan.changes)[0]?.after?.toString()).toContain('OLLAMA_HOST=0.0.0.0:11434');
  });

  it('only restarts when the service is configured right but Ollama was not restarted', () => {
    // e.g. the user's override.conf says 0.0.0.0 and daemon-reload ran, but no restart.
    const detection = fresh({ effectiveHost: '0.0.0.0:11434', configuredIn: '/etc/systemd/system/ollama.service.d/override.conf', dropIns: [{ path: '/etc/systemd/system/ollama.service.d/override.conf', ollamaHost: ['0.0.0.0:11434'] }] });
    const plan = decidePlan(broken({ detection, listeners: [listener('127.0.0.1')] }), request());
    expect(plan.changes).toEqual([{ type: 'restart', strategy: 'linux-systemd', steps: [['systemctl', 'restart', 'ollama']], privileged: false }]);
    expect(plan.summary).toContain('has not picked it up');
  });

  it('writes the drop-in even when the value is right, if it sits in the unit file that install.sh rewrites', () => {
    // Someone edited ollama.service itself: it works today and is gone after the next upgrade (F7).
    const detection = fresh({ effectiveHost: '0.0.0.0:11434', configuredIn: '/etc/systemd/system/ollama.service', dropIns: [] });
    expect(detection.problems?.find((problem) => problem.kind === 'persistence')?.message).toBe('OLLAMA_HOST=0.0.0.0:11434 is set in /etc/systemd/system/ollama.service itself, not in a drop-in.');
    // The finding's fix names the value with --host, which goes to the strategy as the user's decision.
    expect(detection.problems?.find((problem) => problem.kind === 'persistence')?.fix).toContain('npx stigmer-setup --yes --host 0.0.0.0:11434');
    const plan = decidePlan(broken({ detection, listeners: [listener('0.0.0.0')], containerProbe: probe('ok') }), request({ explicitHost: true, target: { host: '0.0.0.0', port: 11434 } }));
    expect(files(plan.changes).map((change) => change.path)).toEqual([OUR_FILE]);
  });

  it('hands an explicit --host to the strategy even when nothing would need to change', () => {
    const target = { host: '::', port: 11434 };
    const plan = decidePlan(broken({ listeners: [listener('0.0.0.0')], containerProbe: probe('ok') }), request({ explicitHost: true, target }));
    expect(plan.target).toEqual(target);
    expect(files(plan.changes).map((change) => change.path)).toEqual([OUR_FILE]);
  });

  it('asks the strategy when the container is refused by a loopback Ollama', () => {
    const plan = decidePlan(broken(), request());
    expect(plan.strategy).toBe('linux-systemd');
    expect(files(plan.changes).map((change) => change.path)).toEqual([OUR_FILE]);
  });

  it('asks the strategy when there is no probe and Ollama listens on loopback only (no runtime: still apply)', () => {
    const plan = decidePlan(broken({ docker: { state: 'missing' }, container: undefined, containerProbe: { skipped: 'no docker' } }), request());
    expect(files(plan.changes).map((change) => change.path)).toEqual([OUR_FILE]);
    expect(commands(plan.changes)).toHaveLength(2);
  });

  it('asks the snap strategy on a snap machine', () => {
    const plan = decidePlan(snapFacts(undefined, { listeners: [listener('127.0.0.1')], containerProbe: probe('refused') }), request());
    expect(plan.strategy).toBe('linux-snap');
    expect(commands(plan.changes)[0]).toEqual(['snap', 'set', '-t', 'ollama', 'host="0.0.0.0:11434"']);
  });

  it('refuses to plan without a strategy (a platform not implemented)', () => {
    expect(() => decidePlan(facts({ platform: 'darwin', strategy: undefined, detection: undefined }), request())).toThrow(/darwin/);
  });
});

describe('systemd plan', () => {
  it('on a fresh install: creates our drop-in, reloads systemd, restarts Ollama — nothing else', () => {
    const plan = systemdStrategy.plan(fresh(), request());
    expect(plan.changes).toEqual([
      { type: 'file', path: OUR_FILE, action: 'create', before: undefined, after: expect.any(Buffer), mode: 0o644, uid: undefined, gid: undefined, privileged: false },
      { type: 'restart', strategy: 'linux-systemd', steps: [['systemctl', 'daemon-reload'], ['systemctl', 'restart', 'ollama']], privileged: false },
    ]);
    const lines = (files(plan.changes)[0]?.after?.toString() ?? '').split('\n');
    expect(lines[0]).toMatch(/^# /);
    expect(lines[0]).toContain('stigmer-setup undo');
    expect(lines[0]).toContain('delete this file');
    expect(lines.slice(1, 3)).toEqual(EXPECTED_DROP_IN);
    expect(plan.blockers).toEqual([]);
    expect(plan.warnings).toEqual([]);
    expect(plan.target).toEqual({ host: '0.0.0.0', port: 11434 });
    // Undo rebuilds the same restart from the strategy's id, never from a command it stored.
    expect(systemdStrategy.restartChange?.({ elevate: [] })).toEqual(plan.changes[1]);
  });

  describe('with a real detect under --root', () => {
    let cleanup: (() => Promise<void>) | undefined;
    afterEach(async () => {
      await cleanup?.();
      cleanup = undefined;
    });

    it('writes the drop-in under the --root prefix', async () => {
      const temp = await tempRoot();
      cleanup = temp.cleanup;
      const show = ['LoadState=loaded', 'FragmentPath=/etc/systemd/system/ollama.service', 'DropInPaths=', 'Environment=PATH=/usr/local/bin:/usr/bin', 'ActiveState=active', ''].join('\n');
      const ctx = testContext({ exec: (command) => (command === 'systemctl' ? ok(show) : { exitCode: null, stdout: '', stderr: '', failure: 'not-found' }) });
      const detection = await systemdStrategy.detect(ctx, { root: temp.root, port: 11434, home: temp.root, env: {}, path: path.posix });
      expect(detection).toBeDefined();
      const plan = systemdStrategy.plan(detection as SystemdDetection, request());
      expect(files(plan.changes)).toEqual([
        expect.objectContaining({ path: path.join(temp.root, 'etc/systemd/system/ollama.service.d/stigmer-setup.conf'), action: 'create', privileged: false }),
      ]);
      expect(commands(plan.changes)).toEqual([
        ['systemctl', 'daemon-reload'],
        ['systemctl', 'restart', 'ollama'],
      ]);
    });
  });

  it('without root, prefixes each command with sudo and writes the file privileged', () => {
    const plan = systemdStrategy.plan(fresh(), request({ elevate: ['sudo', '-n'] }));
    expect(files(plan.changes).map((change) => change.privileged)).toEqual([true]);
    expect(commands(plan.changes)).toEqual([
      ['sudo', '-n', 'systemctl', 'daemon-reload'],
      ['sudo', '-n', 'systemctl', 'restart', 'ollama'],
    ]);
  });

  it('changes nothing when our drop-in is in place and systemd has loaded it (the second run)', () => {
    const detection = systemdDetection(
      { effectiveHost: '0.0.0.0:11434', dropIns: [{ path: DROP_IN_PATH, ollamaHost: ['0.0.0.0:11434'] }], ourDropIn: { path: OUR_FILE, content: Buffer.from(renderDropIn({ host: '0.0.0.0', port: 11434 })) } },
      ROOT,
    );
    const plan = systemdStrategy.plan(detection, request());
    expect(plan.changes).toEqual([]);
    expect(plan.blockers).toEqual([]);
    expect(plan.summary).toContain('already');
    expect(plan.summary).toContain('OLLAMA_HOST=0.0.0.0:11434');
  });

  it("changes nothing when the user's own override.conf already puts the address in effect", () => {
    const detection = systemdDetection({ effectiveHost: '0.0.0.0:11434', configuredIn: OVERRIDE, dropIns: [{ path: OVERRIDE, ollamaHost: ['0.0.0.0:11434'] }] }, ROOT);
    const plan = systemdStrategy.plan(detection, request());
    expect(plan.changes).toEqual([]);
    expect(plan.summary).toContain('OLLAMA_HOST=0.0.0.0:11434');
    expect(plan.summary).toContain(OVERRIDE);
  });

  it('only reloads and restarts when our drop-in is written but systemd has not loaded it', () => {
    const detection = fresh({ dropIns: [{ path: DROP_IN_PATH, ollamaHost: ['0.0.0.0:11434'] }], ourDropIn: { path: OUR_FILE, content: Buffer.from(renderDropIn({ host: '0.0.0.0', port: 11434 })) } });
    const plan = systemdStrategy.plan(detection, request());
    expect(plan.changes).toEqual([{ type: 'restart', strategy: 'linux-systemd', steps: [['systemctl', 'daemon-reload'], ['systemctl', 'restart', 'ollama']], privileged: false }]);
  });

  it('modifies our drop-in when it names another address, keeping what it held for the diff and undo', () => {
    const before = Buffer.from(renderDropIn({ host: '127.0.0.1', port: 11434 }));
    const detection = systemdDetection(
      { effectiveHost: '127.0.0.1:11434', dropIns: [{ path: DROP_IN_PATH, ollamaHost: ['127.0.0.1:11434'] }], ourDropIn: { path: OUR_FILE, content: before } },
      ROOT,
    );
    const plan = systemdStrategy.plan(detection, request());
    const [file] = files(plan.changes);
    expect(file).toMatchObject({ path: OUR_FILE, action: 'modify', before });
    expect(file?.after?.toString()).toContain('Environment="OLLAMA_HOST=0.0.0.0:11434"');
    expect(file?.after?.toString()).not.toContain('127.0.0.1');
    expect(commands(plan.changes)).toHaveLength(2);
  });

  it('warns, naming the file, when a drop-in that sorts after ours also sets OLLAMA_HOST', () => {
    const later = '/etc/systemd/system/ollama.service.d/zz-local.conf';
    const plan = systemdStrategy.plan(fresh({ dropIns: [{ path: later, ollamaHost: ['127.0.0.1:11434'] }] }), request());
    expect(plan.warnings).toHaveLength(1);
    expect(plan.warnings[0]).toContain(later);
    expect(plan.warnings[0]).toContain('OLLAMA_HOST=127.0.0.1:11434');
    expect(plan.warnings[0]).toContain('will win');
  });

  it('does not warn about an override.conf, which sorts before stigmer-setup.conf', () => {
    const plan = systemdStrategy.plan(fresh({ dropIns: [{ path: OVERRIDE, ollamaHost: ['127.0.0.1:11434'] }] }), request());
    expect(plan.warnings).toEqual([]);
    expect(files(plan.changes).map((change) => change.path)).toEqual([OUR_FILE]);
  });

  it('blocks with the real error when systemd runs but systemctl show failed (e.g. no D-Bus for a user)', () => {
    const plan = systemdStrategy.plan(fresh({ systemctlError: 'Failed to connect to bus: No such file or directory' }), request({ elevate: ['sudo', '-n'] }));
    expect(plan.changes).toEqual([]);
    expect(plan.blockers).toEqual([{ message: expect.stringContaining('Failed to connect to bus'), fix: 'Run stigmer-setup as root: sudo npx stigmer-setup' }]);
  });

  it('blocks, changing nothing, when the unit is installed but systemd is not running', () => {
    const plan = systemdStrategy.plan(fresh({ systemdRunning: false }), request());
    expect(plan.changes).toEqual([]);
    expect(plan.blockers).toHaveLength(1);
    expect(plan.blockers[0]?.message).toContain('systemd is not PID 1');
    expect(plan.blockers[0]?.fix).toContain('systemd=true');
    expect(plan.blockers[0]?.fix).toContain('OLLAMA_HOST=0.0.0.0:11434 ollama serve');
  });

  it('writes an IPv6 --host in brackets', () => {
    const plan = systemdStrategy.plan(fresh(), request({ explicitHost: true, target: { host: '::', port: 11434 } }));
    expect(files(plan.changes)[0]?.after?.toString()).toContain('Environment="OLLAMA_HOST=[::]:11434"');
  });

  it('never plans a change to ollama.service or a user override.conf', () => {
    const withOverride = [{ path: OVERRIDE, ollamaHost: ['127.0.0.1:11434'] }];
    const detections = [
      fresh(),
      fresh({ dropIns: withOverride }),
      fresh({ dropIns: [...withOverride, { path: '/etc/systemd/system/ollama.service.d/zz-local.conf', ollamaHost: ['127.0.0.1:8080'] }] }),
      fresh({ dropIns: [...withOverride, { path: DROP_IN_PATH, ollamaHost: ['127.0.0.1:11434'] }], ourDropIn: { path: OUR_FILE, content: Buffer.from(renderDropIn({ host: '127.0.0.1', port: 11434 })) } }),
    ];
    for (const detection of detections) {
      for (const sudo of [[], ['sudo']]) {
        const plan = systemdStrategy.plan(detection, request({ elevate: sudo }));
        expect(files(plan.changes).map((change) => change.path)).toEqual([OUR_FILE]);
        for (const argv of commands(plan.changes)) {
          expect(argv.join(' ')).not.toMatch(/override\.conf|ollama\.service\b/);
        }
      }
    }
  });
});

describe('snap plan', () => {
  it('only restarts when host= is already set but the running Ollama still listens on loopback', () => {
    const plan = snapStrategy.plan(snapDetection('0.0.0.0:11434'), request({ listening: 'loopback' }));
    expect(plan.changes).toEqual([{ type: 'restart', strategy: 'linux-snap', steps: [['snap', 'restart', 'ollama']], privileged: false }]);
  });

  it('sets the host option as a typed setting (unset before, so undo unsets it) and restarts the snap', () => {
    const plan = snapStrategy.plan(snapDetection(undefined), request({ elevate: ['sudo'] }));
    expect(plan.changes).toEqual([
      { type: 'setting', store: 'snap', key: 'host', before: undefined, after: '"0.0.0.0:11434"', privileged: true, argv: ['sudo', 'snap', 'set', '-t', 'ollama', 'host="0.0.0.0:11434"'] },
      { type: 'restart', strategy: 'linux-snap', steps: [['sudo', 'snap', 'restart', 'ollama']], privileged: true },
    ]);
    expect(plan.blockers).toEqual([]);
  });

  it('records the previous value as the setting\'s before, which undo sets back', () => {
    const plan = snapStrategy.plan(snapDetection('127.0.0.1:11434'), request());
    // The values are the option's JSON documents: `snap set -t` puts back exactly what `snap get -d` read.
    expect(commands(plan.changes)[0]).toEqual(['snap', 'set', '-t', 'ollama', 'host="0.0.0.0:11434"']);
    expect(plan.changes[0]).toMatchObject({ type: 'setting', before: '"127.0.0.1:11434"', after: '"0.0.0.0:11434"' });
  });

  it('records a host option that is a nested table as its JSON document, and says setup replaces it', () => {
    const plan = snapStrategy.plan(snapDetectionOf('{"primary":"127.0.0.1:11434","extra":{"port":1}}'), request());
    expect(plan.changes[0]).toMatchObject({ type: 'setting', before: '{"primary":"127.0.0.1:11434","extra":{"port":1}}', after: '"0.0.0.0:11434"' });
    expect(plan.warnings).toEqual([expect.stringMatching(/holds \{"primary".*not an address; setup replaces it, and undo puts it back exactly/)]);
  });

  it('changes nothing, with a blocker, when the host option could not be read (never "unset" by guess)', () => {
    const plan = snapStrategy.plan({ ...snapDetectionOf(undefined), readError: "Could not read the ollama snap's host option: boom." }, request());
    expect(plan.changes).toEqual([]);
    expect(plan.blockers).toEqual([{ message: "Could not read the ollama snap's host option: boom.", fix: expect.stringMatching(/sudo snap get -d ollama host/) }]);
  });

  it('changes nothing when the snap already has that address (":11434" is 0.0.0.0:11434 too)', () => {
    for (const host of ['0.0.0.0:11434', ':11434']) {
      const plan = snapStrategy.plan(snapDetection(host), request());
      expect(plan.changes).toEqual([]);
      expect(plan.summary).toContain(`already has host=${host}`);
    }
  });
});

describe('manual plan', () => {
  it('changes nothing and blocks with the exact command: kill that pid, start it bound for containers', () => {
    const plan = manualStrategy.plan(manualDetection({ process: { pid: 4242, argv: ['ollama', 'serve'] } }), request());
    expect(plan.changes).toEqual([]);
    expect(plan.blockers).toHaveLength(1);
    expect(plan.blockers[0]?.message).toContain("can't be reconfigured persistently");
    expect(plan.blockers[0]?.fix).toContain('kill 4242');
    expect(plan.blockers[0]?.fix).toContain('OLLAMA_HOST=0.0.0.0:11434 ollama serve');
    expect(plan.blockers[0]?.fix).toContain('install.sh');
  });

  it('uses the requested --host in the command', () => {
    const plan = manualStrategy.plan(manualDetection(), request({ explicitHost: true, target: { host: '::', port: 11500 } }));
    expect(plan.blockers[0]?.fix).toContain('OLLAMA_HOST=[::]:11500 ollama serve');
  });

  it('when Stigmer started Ollama, says to restart Stigmer with OLLAMA_HOST exported', () => {
    const plan = manualStrategy.plan(manualDetection({ process: { pid: 777, argv: ['ollama', 'serve'] }, startedByStigmer: true }), request());
    expect(plan.changes).toEqual([]);
    expect(plan.blockers[0]?.message).toContain('started by Stigmer (pid 777)');
    expect(plan.blockers[0]?.fix).toContain("Stop Stigmer's Ollama (kill 777)");
    expect(plan.blockers[0]?.fix).toContain('OLLAMA_HOST=0.0.0.0:11434 is exported');
  });
});

describe('no Ollama installed', () => {
  it('changes nothing and blocks with the official install command', () => {
    const plan = notInstalledStrategy.plan({ strategy: 'linux-none', description: 'no Ollama service, snap or process found' }, request());
    expect(plan.strategy).toBe('linux-none');
    expect(plan.changes).toEqual([]);
    expect(plan.blockers).toHaveLength(1);
    expect(plan.blockers[0]?.fix).toContain('curl -fsSL https://ollama.com/install.sh | sh');
  });
});
