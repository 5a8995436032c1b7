/**
 * The whole CLI through run(argv, ctx): real files under a temporary --root, a real stand-in
 * Ollama on a random loopback port, a real /proc; systemctl is the small fake in
 * support/fake-systemd.ts (the e2e suite runs the real one).
 */
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CHECKS } from '../../scripts/checks/index.ts';
import { run } from '../../scripts/cli.ts';
import { readListeners } from '../../platforms/linux/listeners.ts';
import { widestScope } from '../../scripts/listeners.ts';
import type { SignalName } from '../../scripts/interrupt.ts';
import { createNodeContext } from '../../scripts/node-context.ts';
import { freePort } from '../support/standin-process.ts';
import { failed, NOT_FOUND, ok, tempRoot, testContext, type TestContext } from './support/context.ts';
import { FakeSystemd } from './support/fake-systemd.ts';
import { fixture } from './support/fixtures.ts';
import { because, needs } from './support/portability.ts';

let root: string;
let cleanup: () => Promise<void>;
let port: number;
let systemd: FakeSystemd;

beforeEach(async () => {
  ({ root, cleanup } = await tempRoot());
  port = await freePort();
  systemd = new FakeSystemd(root, `127.0.0.1:${port}`);
  await systemd.start();
});
afterEach(async () => {
  await systemd.stop();
  await cleanup();
});

const dropIn = () => path.join(root, 'etc/systemd/system/ollama.service.d/stigmer-setup.conf');
const scope = async () => widestScope(await readListeners(createNodeContext(), port));

function machine(options: Parameters<typeof testContext>[0] = {}): TestContext {
  return testContext({
    exec: async (command, args) => {
      // Strip a sudo prefix: the fake machine runs privileged commands like any other.
      if (command === 'sudo') return machine.sudo(args);
      if (command === 'systemctl') return systemd.exec(args);
      return NOT_FOUND; // no docker, no snap
    },
    ...options,
  });
}
machine.sudo = async (args: string[]) => {
  const rest = args[0] === '-n' ? args.slice(1) : args;
  if (rest[0] === 'systemctl') return systemd.exec(rest.slice(1));
  return ok();
};

function json(ctx: TestContext): Record<string, any> {
  expect(ctx.json).toHaveLength(1);
  return ctx.json[0] as Record<string, any>;
}

describe.skipIf(needs.proc)('setup --yes on a systemd host' + because(needs.proc), () => {
  it('a lock that can\'t be removed at the end does not turn a setup that worked into a failure', async () => {
    const ctx = machine();
    const remove = ctx.fs.remove.bind(ctx.fs);
    ctx.fs = { ...ctx.fs, remove: async (file: string) => (file.endsWith('/lock') ? Promise.reject(new Error(`EBUSY: resource busy or locked, unlink '${file}'`)) : remove(file)) };
    expect(await run(['--yes', '--json', '--root', root], ctx)).toBe(0);
    expect(json(ctx)).toMatchObject({ ok: true, command: 'setup' });
    expect(ctx.stderr.join('\n')).toMatch(/the lock in .* could not be removed \(EBUSY.*the next run takes it over/);
  });

  it('writes the drop-in under --root, restarts, and verifies that Ollama now listens on all interfaces', async () => {
    const ctx = machine();
    expect(await run(['--yes', '--json', '--root', root], ctx)).toBe(0);
    const report = json(ctx);
    expect(report).toMatchObject({ ok: true, command: 'setup', platform: 'linux', strategy: 'linux-systemd' });
    expect(report.changes).toEqual([
      expect.objectContaining({ type: 'file', path: dropIn(), action: 'create', applied: true }),
      { type: 'command', argv: ['systemctl', 'daemon-reload'], applied: true },
      { type: 'command', argv: ['systemctl', 'restart', 'ollama'], applied: true },
    ]);
    expect(await readFile(dropIn(), 'utf8')).toContain(`[Service]\nEnvironment="OLLAMA_HOST=0.0.0.0:${port}"\n`);
    expect(await scope()).toBe('wildcard');
    expect(report.checks.find((c: { id: string }) => c.id === 'ollama.listener')).toMatchObject({ status: 'ok' });
    expect(ctx.stdout).toEqual([]);
    // The reload and the restart ran with signals held off.
    const steps = ctx.calls.filter((call) => call.command === 'systemctl' && ['daemon-reload', 'restart'].includes(call.args[0] as string));
    expect(steps.map((call) => [call.args[0], call.shielded])).toEqual([['daemon-reload', true], ['restart', true]]);
  });

  it('changes nothing the second time, and undo brings loopback back', async () => {
    expect(await run(['--yes', '--root', root], machine())).toBe(0);
    const restarts = systemd.restarts;
    const again = machine();
    expect(await run(['--yes', '--json', '--root', root], again)).toBe(0);
    expect(json(again).changes).toEqual([]);
    expect(systemd.restarts).toBe(restarts);

    const undo = machine();
    expect(await run(['undo', '--yes', '--json', '--root', root], undo)).toBe(0);
    expect(json(undo)).toMatchObject({ ok: true, command: 'undo' });
    await expect(readFile(dropIn(), 'utf8')).rejects.toThrow(/ENOENT/);
    expect(await scope()).toBe('loopback');
  });

  it('rolls back and exits 1 when the restart fails', async () => {
    systemd.failNext = { verb: 'restart', stderr: 'Job for ollama.service failed.' };
    const ctx = machine();
    expect(await run(['--yes', '--json', '--root', root], ctx)).toBe(1);
    const report = json(ctx);
    expect(report.ok).toBe(false);
    expect(report.error).toMatch(/Job for ollama.service failed\. Every change was rolled back, and Ollama was restarted on the configuration it had before\./);
    expect(report.changes.every((change: { applied: boolean }) => !change.applied)).toBe(true);
    await expect(readFile(dropIn(), 'utf8')).rejects.toThrow(/ENOENT/);
    expect(systemd.loadedHost).toBe(`127.0.0.1:${port}`);
  });

  it('rolls back when Ollama, which answered before, does not come back after the change', async () => {
    systemd.crashesWith.add(`0.0.0.0:${port}`);
    const ctx = machine();
    expect(await run(['--yes', '--json', '--root', root], ctx)).toBe(1);
    const report = json(ctx);
    expect(report.error).toMatch(/Ollama did not answer on 127\.0\.0\.1:\d+ within 30 s after the change, so it was rolled back\. See: journalctl -u ollama/);
    await expect(readFile(dropIn(), 'utf8')).rejects.toThrow(/ENOENT/);
    expect(systemd.loadedHost).toBe(`127.0.0.1:${port}`);
    expect(await scope()).toBe('loopback');
    expect(report.checks.find((c: { id: string }) => c.id === 'ollama.host-probe')).toMatchObject({ status: 'ok' });
  });

  it('uses sudo -n for the privileged commands when not root', async () => {
    const ctx = machine({ isRoot: false });
    expect(await run(['--yes', '--json', '--root', root], ctx)).toBe(0);
    const commands = json(ctx).changes.filter((change: { type: string }) => change.type === 'command');
    expect(commands.map((change: { argv: string[] }) => change.argv)).toEqual([
      ['sudo', '-n', 'systemctl', 'daemon-reload'],
      ['sudo', '-n', 'systemctl', 'restart', 'ollama'],
    ]);
  });

  it('configures the address given with --host', async () => {
    const ctx = machine();
    expect(await run(['--yes', '--root', root, '--host', `[::]:${port}`], ctx)).toBe(0);
    expect(await readFile(dropIn(), 'utf8')).toContain(`Environment="OLLAMA_HOST=[::]:${port}"`);
  });
});

describe('interactive setup', () => {
  it('asks before changing anything, and "no" cancels with 130 and no change', async () => {
    const ctx = machine({ isTTY: true, answers: [false] });
    expect(await run(['--root', root], ctx)).toBe(130);
    expect(ctx.confirmations).toEqual(['Apply these changes?']);
    expect(ctx.stderr.join('\n')).toContain('Cancelled; nothing was changed.');
    await expect(readFile(dropIn(), 'utf8')).rejects.toThrow(/ENOENT/);
    expect(systemd.restarts).toBe(0);
  });

  it('Ctrl-C at the prompt exits 130', async () => {
    expect(await run(['--root', root], machine({ isTTY: true, answers: ['cancel'] }))).toBe(130);
    await expect(readFile(dropIn(), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it.skipIf(needs.proc)('"yes" applies, with plain sudo (which may ask for a password) when not root' + because(needs.proc), async () => {
    const ctx = machine({ isTTY: true, isRoot: false, answers: [true] });
    expect(await run(['--root', root], ctx)).toBe(0);
    // One password prompt up front (sudo -v), then the privileged steps reuse it.
    expect(ctx.calls.filter((call) => call.command === 'sudo').map((call) => call.args.join(' '))).toEqual(['-v', 'systemctl daemon-reload', 'systemctl restart ollama']);
    expect(ctx.calls.find((call) => call.command === 'sudo')?.options.inheritTerminal).toBe(true);
    expect(ctx.stdout.join('\n')).toMatch(/checks passed/);
  });

  it('a sudo that does not authenticate stops setup before anything changes', async () => {
    const ctx = testContext({
      isTTY: true,
      isRoot: false,
      answers: [true],
      exec: (command, args) => (command === 'sudo' && args[0] === '-v' ? failed('sudo: 3 incorrect password attempts\n') : command === 'systemctl' ? systemd.exec(args) : NOT_FOUND),
    });
    expect(await run(['--root', root], ctx)).toBe(1);
    expect(ctx.stderr).toContain('stigmer-setup: sudo did not authenticate; nothing was changed.');
    await expect(readFile(dropIn(), 'utf8')).rejects.toThrow(/ENOENT/);
    expect(systemd.restarts).toBe(0);
  });
});

describe('--dry-run', () => {
  it('prints the drop-in as a diff and each command, and changes nothing', async () => {
    const ctx = machine();
    expect(await run(['--dry-run', '--root', root], ctx)).toBe(0);
    const out = ctx.stdout.join('\n');
    expect(out).toContain(`Would create ${dropIn()}`);
    expect(out).toContain(`+Environment="OLLAMA_HOST=0.0.0.0:${port}"`);
    expect(out).toContain('[dry run] Command not executed: systemctl daemon-reload');
    expect(out).toContain('[dry run] Command not executed: systemctl restart ollama');
    expect(out).toContain('Dry run: nothing was changed.');
    await expect(readFile(dropIn(), 'utf8')).rejects.toThrow(/ENOENT/);
    expect(ctx.calls.map((call) => call.args[0])).not.toContain('restart');
  });
});

describe('input and usage', () => {
  it('without a terminal and without --yes, setup and undo refuse before looking at anything', async () => {
    for (const argv of [['--root', root], ['undo', '--root', root], ['--json', '--root', root]]) {
      const ctx = machine();
      expect(await run(argv, ctx)).toBe(2);
      expect(ctx.stderr).toEqual(['stigmer-setup: Run with --yes to apply unattended, or --dry-run to preview.']);
      expect(ctx.calls).toEqual([]);
      // --json still prints its one object, saying why; without it stdout stays empty.
      expect(ctx.json).toEqual(argv.includes('--json') ? [expect.objectContaining({ ok: false, command: 'setup', error: 'Run with --yes to apply unattended, or --dry-run to preview.', changes: [] })] : []);
    }
  });

  it.each([
    [['--host', 'http://0.0.0.0', '--yes'], /Ollama would read it as port 80/],
    [['--host', '0.0.0.0', '--yes'], /has no port/],
    [['--platform', 'beos'], /--platform must be one of darwin, win32, linux/],
    [['--container', 'bad name'], /not a valid container name/],
    [['--root', 'relative'], /--root must be an absolute path/],
    [['--root', '/definitely/not/here', 'doctor'], /does not exist/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
    [['setup', 'doctor'], /expected one command/],
    [['explode'], /unknown command "explode"/],
  ])('%j exits 2 with one line on stderr and, with --json, one object on stdout; nothing run', async (argv, message) => {
    const ctx = machine();
    expect(await run([...argv, '--json'], ctx)).toBe(2);
    expect(ctx.stderr).toHaveLength(1);
    expect(ctx.stderr[0]).toMatch(message);
    expect(ctx.json).toHaveLength(1);
    const report = ctx.json[0] as { ok: boolean; error: string; command: string; changes: unknown[] };
    expect(report.ok).toBe(false);
    expect(report.error).toMatch(message);
    expect(report.command).toBe(argv.includes('doctor') ? 'doctor' : 'setup');
    expect(report.changes).toEqual([]);
    expect(ctx.calls).toEqual([]);
    const plain = machine();
    expect(await run(argv, plain)).toBe(2);
    expect(plain.json).toEqual([]);
  });

  it('a --root that can\'t even be looked at (EACCES above it, as a normal user) is bad input: one line, one JSON object, no stack trace', async () => {
    const ctx = machine();
    ctx.fs = { ...ctx.fs, inspect: async () => { throw Object.assign(new Error("EACCES: permission denied, lstat '/root/x'"), { code: 'EACCES' }); } };
    expect(await run(['doctor', '--root', '/root/x', '--json'], ctx)).toBe(2);
    expect(ctx.stderr).toEqual(["stigmer-setup: --root /root/x can't be looked at: EACCES: permission denied, lstat '/root/x'."]);
    expect(ctx.json).toEqual([expect.objectContaining({ ok: false, command: 'doctor' })]);
    expect(ctx.calls).toEqual([]);
  });

  it('--help and --version', async () => {
    const help = machine();
    expect(await run(['--help'], help)).toBe(0);
    expect(help.stdout[0]).toMatch(/^Usage: stigmer-setup \[setup\|doctor\|undo\]/);
    expect(help.stdout[0]).toContain('130 cancelled');
    const version = machine();
    expect(await run(['-V'], version)).toBe(0);
    expect(version.stdout[0]).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('an unexpected error is one line; --debug adds its stack trace', async () => {
    const broken = () =>
      testContext({
        exec: () => {
          throw new Error('spawn went wrong\nsecond line');
        },
      });
    const quiet = broken();
    expect(await run(['doctor', '--root', root], quiet)).toBe(1);
    expect(quiet.stderr).toEqual(['stigmer-setup: spawn went wrong second line']);
    const loud = broken();
    expect(await run(['doctor', '--root', root, '--debug'], loud)).toBe(1);
    expect(loud.stderr[0]).toBe('stigmer-setup: spawn went wrong second line');
    expect(loud.stderr[1]).toMatch(/^Error: spawn went wrong\nsecond line\n\s+at /);
  });

  it('--container naming a missing container is invalid input (exit 2)', async () => {
    const ctx = testContext({
      exec: (command, args) => {
        if (command === 'docker' && args[0] === 'info') return ok(fixture('docker/info-json-native-rootful-captured-debian12.json'));
        if (command === 'docker' && args[0] === 'inspect') return failed(fixture('docker/inspect-no-such-object.txt'));
        return NOT_FOUND;
      },
    });
    expect(await run(['doctor', '--container', 'nope', '--root', root], ctx)).toBe(2);
    expect(ctx.stderr[0]).toContain('--container nope: no such container');
  });
});

describe('doctor', () => {
  it.skipIf(needs.proc)('is read-only and exits 1 when the only listener is loopback and no container can probe' + because(needs.proc), async () => {
    const ctx = machine();
    expect(await run(['doctor', '--json', '--root', root], ctx)).toBe(1);
    const report = json(ctx);
    expect(report.command).toBe('doctor');
    expect(report.checks.map((c: { id: string }) => c.id)).toEqual(CHECKS.map((check) => check.id));
    expect(report.checks[0]).toMatchObject({ status: 'fail', fix: 'npx stigmer-setup --yes' });
    expect(ctx.calls.every((call) => call.command !== 'systemctl' || call.args[0] === 'show')).toBe(true);
  });

  it.skipIf(needs.proc)('exits 0 when Ollama is healthy and reachable' + because(needs.proc), async () => {
    await run(['--yes', '--root', root], machine());
    const ctx = machine();
    expect(await run(['doctor', '--root', root], ctx)).toBe(0);
    expect(ctx.stdout.join('\n')).toMatch(/✓ ollama\.listener .*all interfaces/);
  });

  it('on Windows with no Ollama, setup names what it looked for and how to install it, and changes nothing', async () => {
    const ctx = machine({ env: { LOCALAPPDATA: 'C:\\Users\\ada\\AppData\\Local', USERPROFILE: 'C:\\Users\\ada' } });
    expect(await run(['--yes', '--json', '--platform', 'win32', '--root', root], ctx)).toBe(1);
    const report = json(ctx);
    expect(report).toMatchObject({ platform: 'win32', strategy: 'win32-none', changes: [] });
    expect(report.error).toContain('No Ollama installation was found (no Ollama app, no ollama service, and nothing listens on the port)');
    expect(report.error).toContain('https://ollama.com/download/windows');
  });

  it('on a Mac with no Ollama, setup names what it looked for and how to install it, and changes nothing', async () => {
    const ctx = machine({ env: { HOME: root } });
    expect(await run(['--yes', '--json', '--platform', 'darwin', '--root', root], ctx)).toBe(1);
    const report = json(ctx);
    expect(report).toMatchObject({ platform: 'darwin', strategy: 'darwin-none', changes: [] });
    expect(report.error).toContain('No Ollama installation was found (no Homebrew service, no Ollama.app, and nothing listens on the port)');
    expect(report.error).toContain('brew install ollama && brew services start ollama');
  });

  it('on a Mac, run through sudo, exits 2 before looking at anything: its changes are per-user', async () => {
    const ctx = machine({ env: { HOME: '/var/root', SUDO_USER: 'ada' } });
    expect(await run(['--yes', '--platform', 'darwin', '--root', root], ctx)).toBe(2);
    expect(ctx.stderr).toEqual([expect.stringMatching(/^stigmer-setup: run without sudo: on macOS stigmer-setup changes only your own launchd settings/)]);
    expect(ctx.calls).toEqual([]);
  });
});

describe('a signal at each step says what is in place, and keeps the JSON contract', () => {
  type Step = 'detect' | 'plan' | 'confirm' | 'apply' | 'wait' | 'verify';
  const lockFile = () => path.join(root, 'var/lib/stigmer-setup/lock');
  const recordFile = () => path.join(root, 'var/lib/stigmer-setup/undo.json');
  const undoHint = () => `Undo it with: npx stigmer-setup undo --root ${root}`;
  const exists = (file: string) => stat(file).then(() => true, () => false);

  /**
   * A machine on which `signal` arrives during `step`: as detection starts, when the undo record
   * is read for the plan, at the prompt, during the restart (inside the apply), at the first
   * probe after the restart (the wait for Ollama), or as the checks start.
   */
  function interruptedAt(step: Step, signal: SignalName): TestContext {
    let restarted = false;
    const ctx: TestContext = machine({
      isTTY: step === 'confirm',
      answers: step === 'confirm' ? [signal] : [],
      onSpinner: (text) => {
        if ((step === 'detect' && /^(Looking at|Checking) Ollama/.test(text)) || (step === 'verify' && text === 'Verifying…')) ctx.raise(signal);
      },
      exec: async (command, args) => {
        const systemctl = command === 'systemctl' ? args : command === 'sudo' && args[0] === 'systemctl' ? args.slice(1) : undefined;
        if (!systemctl) return command === 'sudo' ? ok() : NOT_FOUND;
        if (systemctl[0] === 'restart') {
          restarted = true;
          if (step === 'apply') ctx.raise(signal);
        }
        return systemd.exec(systemctl);
      },
    });
    const { http, fs } = ctx;
    ctx.http = {
      ...http,
      get: (url, options) => {
        if (step === 'wait' && restarted) ctx.raise(signal);
        return http.get(url, options);
      },
    };
    ctx.fs = {
      ...fs,
      read: (file, options) => {
        if (step === 'plan' && file === recordFile()) ctx.raise(signal);
        return fs.read(file, options);
      },
    };
    return ctx;
  }

  async function interruptedRun(argv: string[], step: Step, signal: SignalName) {
    const ctx = interruptedAt(step, signal);
    const args = step === 'confirm' ? [...argv, '--root', root] : [...argv, '--yes', '--json', '--root', root];
    const code = await run(args, ctx);
    const report = step === 'confirm' ? undefined : json(ctx);
    return { code, ctx, report, message: ctx.stderr.at(-1) ?? '' };
  }

  describe('setup', () => {
    it.each([
      ['detect', 'SIGINT', 130, 'while looking at Ollama and containers'],
      ['plan', 'SIGTERM', 143, 'while planning'],
      ['confirm', 'SIGTERM', 143, 'before applying'],
    ] as const)('during %s (%s): exit %i, "nothing was changed", nothing written, no lock', async (step, signal, exitCode, doing) => {
      const { code, ctx, report, message } = await interruptedRun([], step, signal);
      expect(code).toBe(exitCode);
      expect(message).toBe(`Stopped by ${signal} ${doing}; nothing was changed.`);
      if (report) {
        expect(report).toMatchObject({ ok: false, command: 'setup', signal, error: message, checks: [] });
        // Before the plan is made there is nothing to list; after, every change, none applied.
        if (step === 'plan') expect(report.changes.map((change: { applied: boolean }) => change.applied)).toEqual([false, false, false]);
        else expect(report.changes).toEqual([]);
      }
      expect(ctx.calls.filter((call) => call.args.includes('restart'))).toEqual([]);
      expect(await exists(dropIn())).toBe(false);
      expect(await exists(lockFile())).toBe(false);
    });

    it.each([
      ['apply', 'SIGINT', 130, 'while applying'],
      ['wait', 'SIGTERM', 143, 'while waiting for Ollama to answer after the restart'],
      ['verify', 'SIGINT', 130, 'while running the checks'],
    ] as const)('during %s (%s): exit %i, "the change is applied" and how to undo it, every change applied, lock released', async (step, signal, exitCode, doing) => {
      const { code, report, message } = await interruptedRun([], step, signal);
      expect(code).toBe(exitCode);
      expect(message).toBe(`Stopped by ${signal} ${doing}: the change is applied and stays in place, but it was not verified. Check it with: npx stigmer-setup doctor --root ${root}. ${undoHint()}`);
      expect(report).toMatchObject({ ok: false, command: 'setup', strategy: 'linux-systemd', signal, error: message, checks: [] });
      expect(report?.changes.map((change: { applied: boolean }) => change.applied)).toEqual([true, true, true]);
      // The change is live, and stays: a wait a signal cut short is no reason to roll back.
      expect(await readFile(dropIn(), 'utf8')).toContain(`OLLAMA_HOST=0.0.0.0:${port}`);
      expect(systemd.loadedHost).toBe(`0.0.0.0:${port}`);
      expect(await exists(recordFile())).toBe(true);
      expect(await exists(lockFile())).toBe(false);
    });

    it('during an apply that fails: the rollback finishes first, then "the change was rolled back" (exit 130)', async () => {
      systemd.failNext = { verb: 'restart', stderr: 'Job for ollama.service failed.' };
      const { code, report, message } = await interruptedRun([], 'apply', 'SIGINT');
      expect(code).toBe(130);
      expect(message).toBe('Stopped by SIGINT while applying; nothing is changed: `systemctl restart ollama` failed (exit 1): Job for ollama.service failed. Every change was rolled back, and Ollama was restarted on the configuration it had before.');
      expect(report?.changes.map((change: { applied: boolean }) => change.applied)).toEqual([false, false, false]);
      expect(await exists(dropIn())).toBe(false);
      expect(systemd.loadedHost).toBe(`127.0.0.1:${port}`);
      expect(await exists(lockFile())).toBe(false);
    });

    it('during the rollback after Ollama did not come back: it finishes, then "the change was rolled back"', async () => {
      systemd.crashesWith.add(`0.0.0.0:${port}`);
      let restarts = 0;
      const ctx: TestContext = machine({
        exec: async (command, args) => {
          if (command !== 'systemctl') return NOT_FOUND;
          // The second restart is the rollback's.
          if (args[0] === 'restart' && ++restarts === 2) ctx.raise('SIGTERM');
          return systemd.exec(args);
        },
      });
      expect(await run(['--yes', '--json', '--root', root], ctx)).toBe(143);
      const report = json(ctx);
      expect(report.error).toMatch(/^Stopped by SIGTERM while rolling back; nothing is changed: Ollama did not answer on 127\.0\.0\.1:\d+ within 30 s after the change, so it was rolled back\. See: journalctl -u ollama -n 50\.$/);
      expect(report.changes.map((change: { applied: boolean }) => change.applied)).toEqual([false, false, false]);
      expect(systemd.loadedHost).toBe(`127.0.0.1:${port}`);
      expect(await exists(lockFile())).toBe(false);
    });
  });

  describe.skipIf(needs.proc)('undo' + because(needs.proc), () => {
    beforeEach(async () => {
      expect(await run(['--yes', '--root', root], machine())).toBe(0);
    });

    it.each([
      ['plan', 'SIGTERM', 143, 'while planning'],
      ['confirm', 'SIGINT', 130, 'before applying'],
    ] as const)('during %s (%s): exit %i, "nothing was restored", setup\'s change still in place', async (step, signal, exitCode, doing) => {
      const { code, report, message } = await interruptedRun(['undo'], step, signal);
      expect(code).toBe(exitCode);
      // Interrupted while the record is read, the restore is not planned yet; at the prompt it is.
      const inPlace = step === 'plan' ? 'whatever setup changed is still in place' : "setup's change is still in place";
      expect(message).toBe(`Stopped by ${signal} ${doing}; nothing was restored: ${inPlace}. ${undoHint()}`);
      if (report) {
        expect(report).toMatchObject({ ok: false, command: 'undo', signal, error: message, checks: [], changes: [] });
      }
      expect(await readFile(dropIn(), 'utf8')).toContain(`OLLAMA_HOST=0.0.0.0:${port}`);
      expect(await exists(recordFile())).toBe(true);
      expect(await exists(lockFile())).toBe(false);
    });

    it.each([
      ['apply', 'SIGINT', 130, 'while applying'],
      ['wait', 'SIGTERM', 143, 'while waiting for Ollama to answer after the restart'],
      ['verify', 'SIGTERM', 143, 'while running the checks'],
    ] as const)('during %s (%s): exit %i, "the restore is applied", every change applied, lock released', async (step, signal, exitCode, doing) => {
      const { code, report, message } = await interruptedRun(['undo'], step, signal);
      expect(code).toBe(exitCode);
      expect(message).toBe(`Stopped by ${signal} ${doing}: the restore is applied, so the configuration from before setup is back, but it was not verified. Check it with: npx stigmer-setup doctor --root ${root}`);
      expect(report).toMatchObject({ ok: false, command: 'undo', signal, error: message, checks: [] });
      expect(report?.changes.length).toBeGreaterThan(0);
      expect(report?.changes.every((change: { applied: boolean }) => change.applied)).toBe(true);
      expect(await exists(dropIn())).toBe(false);
      expect(systemd.loadedHost).toBe(`127.0.0.1:${port}`);
      expect(await exists(lockFile())).toBe(false);
    });
  });

  it('doctor: exit 130, "nothing was changed", one JSON object', async () => {
    const { code, report, message } = await interruptedRun(['doctor'], 'detect', 'SIGINT');
    expect(code).toBe(130);
    expect(message).toBe('Stopped by SIGINT while looking at Ollama and containers; nothing was changed.');
    expect(report).toMatchObject({ ok: false, command: 'doctor', signal: 'SIGINT', checks: [], changes: [] });
  });
});

describe('--root', () => {
  it.skipIf(needs.symlinks)('a symlink to a folder is that folder: setup writes and records its real path' + because(needs.symlinks), async () => {
    const link = `${root}-link`;
    await symlink(root, link);
    try {
      const ctx = machine();
      expect(await run(['--yes', '--json', '--root', link], ctx)).toBe(0);
      expect(json(ctx).changes[0]).toMatchObject({ type: 'file', path: dropIn(), applied: true });
      expect(await readFile(dropIn(), 'utf8')).toContain(`OLLAMA_HOST=0.0.0.0:${port}`);
      // Undo through the link finds the record written under the real path.
      expect(await run(['undo', '--yes', '--root', link], machine())).toBe(0);
      expect(await stat(dropIn()).then(() => true, () => false)).toBe(false);
    } finally {
      await import('node:fs/promises').then(({ rm }) => rm(link, { force: true }));
    }
  });

  it.skipIf(needs.symlinks).each([
    ['a dangling symlink', async (link: string) => symlink(path.join(root, 'gone'), link), (link: string) => `--root ${link} is a symlink to ${path.join(root, 'gone')}, which does not exist (a dangling symlink).`],
    ['a symlink to a file', async (link: string) => {
      await writeFile(path.join(root, 'file'), '');
      await symlink(path.join(root, 'file'), link);
    }, (link: string) => `--root ${link} is a symlink to ${path.join(root, 'file')}, which is a regular file, not a folder.`],
    ['a regular file', async (link: string) => writeFile(link, ''), (link: string) => `--root ${link} is a regular file, not a folder.`],
    ['missing', async () => {}, (link: string) => `--root ${link} does not exist.`],
  ])('%s is refused, saying what it is (exit 2, nothing run)' + because(needs.symlinks), async (_, make, expected) => {
    await mkdir(path.join(root, 'links'));
    const link = path.join(root, 'links', 'root');
    await make(link);
    const ctx = machine();
    expect(await run(['doctor', '--root', link], ctx)).toBe(2);
    expect(ctx.stderr).toEqual([`stigmer-setup: ${expected(link)}`]);
    expect(ctx.calls).toEqual([]);
  });
});
