/**
 * The hostile-input suite: everything stigmer-setup reads back is untrusted. Each case replays an
 * attack or an accident on real files, real processes and the real systemd-analyze: a crafted
 * undo.json, symlinks and FIFOs where files belong, '%' and zone ids, hung commands with children,
 * concurrent runs, and edits between the plan and the write. Every case asserts the outcome a user
 * relies on: exit code, one clear line, and nothing changed.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { renderDropIn } from '../../platforms/linux/systemd.ts';
import { run } from '../../scripts/cli.ts';
import { readProbeOutput } from '../../scripts/container-probe.ts';
import { createNodeContext } from '../../scripts/node-context.ts';
import { parseHostOption } from '../../scripts/ollama-host.ts';
import { stripControl } from '../../scripts/text.ts';
import { sha256 } from '../../scripts/undo-record.ts';
import { freePort } from '../support/standin-process.ts';
import { NOT_FOUND, ok, tempRoot, testContext, type TestContext } from './support/context.ts';
import { FakeSystemd } from './support/fake-systemd.ts';
import { because, needs } from './support/portability.ts';

let root: string;
let outside: string;
let cleanup: () => Promise<void>;
let cleanupOutside: () => Promise<void>;
let port: number;
let systemd: FakeSystemd;
const children: ChildProcess[] = [];

beforeEach(async () => {
  ({ root, cleanup } = await tempRoot());
  ({ root: outside, cleanup: cleanupOutside } = await tempRoot());
  port = await freePort();
  systemd = new FakeSystemd(root, `127.0.0.1:${port}`);
  await systemd.start();
});
afterEach(async () => {
  await systemd.stop();
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await cleanup();
  await cleanupOutside();
});

const dropInDir = () => path.join(root, 'etc/systemd/system/ollama.service.d');
const dropIn = () => path.join(dropInDir(), 'stigmer-setup.conf');
const stateDir = () => path.join(root, 'var/lib/stigmer-setup');
const recordPath = () => path.join(stateDir(), 'undo.json');

function machine(options: Parameters<typeof testContext>[0] = {}): TestContext {
  return testContext({
    exec: async (command, args) => {
      if (command === 'systemctl') return systemd.exec(args);
      return NOT_FOUND;
    },
    ...options,
  });
}

/** A process that stays alive until the test ends: another run's pid, for the lock. */
function liveProcess(): number {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  children.push(child);
  return child.pid as number;
}

async function runCli(argv: string[], ctx = machine()): Promise<{ code: number; ctx: TestContext }> {
  return { code: await run([...argv, '--root', root], ctx), ctx };
}

const mkfifo = (file: string) => execFileSync('mkfifo', [file]);

describe('a crafted undo.json', () => {
  /** A real record from a real setup, then changed the way an attacker would. */
  async function craft(edit: (record: Record<string, any>) => void): Promise<void> {
    expect((await runCli(['--yes'])).code).toBe(0);
    const record = JSON.parse(await readFile(recordPath(), 'utf8'));
    edit(record);
    await writeFile(recordPath(), JSON.stringify(record));
  }

  async function expectRefused(pattern: RegExp): Promise<TestContext> {
    const before = await readFile(dropIn(), 'utf8');
    const restarts = systemd.restarts;
    const { code, ctx } = await runCli(['undo', '--yes']);
    expect(code).toBe(1);
    expect(ctx.stderr).toHaveLength(1);
    expect(ctx.stderr[0]).toMatch(pattern);
    expect(ctx.stderr[0]).toContain('Nothing was changed');
    // Nothing ran and nothing was written: the drop-in and the service are as setup left them.
    expect(ctx.calls).toEqual([]);
    expect(await readFile(dropIn(), 'utf8')).toBe(before);
    expect(systemd.restarts).toBe(restarts);
    return ctx;
  }

  it('can not make undo run a command: a restart is a strategy id, and anything else is refused', async () => {
    const marker = path.join(outside, 'pwned');
    await craft((record) => (record.restart = [{ strategy: `sh -c 'touch ${marker}'` }]));
    await expectRefused(/undo\.json can't be trusted: restart\[0\]\.strategy "sh -c .* is not a strategy of this platform/);
    await writeFile(recordPath(), JSON.stringify({ ...JSON.parse(await readFile(recordPath(), 'utf8')), restart: [`sh -c 'touch ${marker}'`] }));
    await expectRefused(/restart\[0\] is not an object/);
    // A job file is data about which file to reload, and only one stigmer-setup writes.
    await writeFile(recordPath(), JSON.stringify({ ...JSON.parse(await readFile(recordPath(), 'utf8')), restart: [{ strategy: 'linux-systemd', job: marker }] }));
    await expectRefused(/restart\[0\]\.job ".*pwned" is not a file stigmer-setup writes here/);
    await expect(stat(marker)).rejects.toThrow(/ENOENT/);
  });

  it('refuses the old format that stored commands (reverts, restart argv)', async () => {
    await craft((record) => Object.assign(record, { version: 1, reverts: [['rm', '-rf', outside]] }));
    await expectRefused(/version 1 is not a version this stigmer-setup reads/);
    expect((await stat(outside)).isDirectory()).toBe(true);
  });

  it('can not make undo delete a file outside --root', async () => {
    const victim = path.join(outside, 'victim.conf');
    await writeFile(victim, 'keep me\n');
    await craft((record) => (record.files = [{ path: victim, existed: false, createdDirs: [] }]));
    await expectRefused(/files\[0\]\.path ".*victim\.conf" is not a file stigmer-setup writes here/);
    expect(await readFile(victim, 'utf8')).toBe('keep me\n');
  });

  it('can not make undo copy another file (a 0600 secret) into the drop-in: the backup must be ours, by name and hash', async () => {
    const secret = path.join(outside, 'id_rsa');
    await writeFile(secret, 'PRIVATE KEY\n', { mode: 0o600 });
    await craft((record) => {
      record.files[0] = { path: dropIn(), existed: true, backup: secret, backupSha256: sha256('PRIVATE KEY\n'), mode: 0o644, createdDirs: [] };
    });
    await expectRefused(/files\[0\]\.backup ".*id_rsa" is not the backup name of/);
  });

  it('refuses a backup that is a symlink to another file, even under the right name', async () => {
    const secret = path.join(outside, 'id_rsa');
    await writeFile(secret, 'PRIVATE KEY\n', { mode: 0o600 });
    await craft((record) => {
      const name = dropIn().replace(/^\/+/, '').replace(/\//g, '__');
      record.files[0] = { path: dropIn(), existed: true, backup: name, backupSha256: sha256('PRIVATE KEY\n'), mode: 0o644, createdDirs: [] };
    });
    const name = dropIn().replace(/^\/+/, '').replace(/\//g, '__');
    await mkdir(path.join(stateDir(), 'backups'), { recursive: true });
    await symlink(secret, path.join(stateDir(), 'backups', name));
    const { code, ctx } = await runCli(['undo', '--yes']);
    expect(code).toBe(1);
    expect(ctx.stderr[0]).toMatch(/is a symlink, not a regular file/);
    expect(await readFile(dropIn(), 'utf8')).toContain('OLLAMA_HOST=0.0.0.0');
  });

  it('refuses a backup whose content is not what setup saved (sha256 differs)', async () => {
    await mkdir(dropInDir(), { recursive: true });
    await writeFile(dropIn(), '[Service]\nEnvironment="OLLAMA_HOST=127.0.0.1:1"\n');
    await systemd.exec(['daemon-reload']); // loaded, as a user's drop-in is: a pending edit is refused
    expect((await runCli(['--yes'])).code).toBe(0);
    const [name] = await readdir(path.join(stateDir(), 'backups'));
    await writeFile(path.join(stateDir(), 'backups', name as string), 'something else\n');
    const { code, ctx } = await runCli(['undo', '--yes']);
    expect(code).toBe(1);
    expect(ctx.stderr[0]).toMatch(/is not the one setup saved \(its sha256 differs\), so undo won't restore it\. Nothing was changed\./);
    expect(await readFile(dropIn(), 'utf8')).toContain('OLLAMA_HOST=0.0.0.0');
  });

  it('can not make undo remove a folder outside the root', async () => {
    await craft((record) => (record.files[0].createdDirs = [outside]));
    await expectRefused(/files\[0\]\.createdDirs\[0\] ".*" is not a folder above .* and below/);
  });

  it('refuses settings this platform does not change, unknown fields, and control characters', async () => {
    await craft((record) => (record.settings = [{ store: 'shell', key: 'PATH', before: null }]));
    await expectRefused(/settings\[0\] \(shell PATH\) is not a setting stigmer-setup changes here/);
    await writeFile(recordPath(), JSON.stringify({ ...JSON.parse(await readFile(recordPath(), 'utf8')), settings: [], exec: 'rm -rf /' }));
    await expectRefused(/the record\.exec is not a field stigmer-setup writes/);
    await writeFile(recordPath(), JSON.stringify({ ...JSON.parse(await readFile(recordPath(), 'utf8')), exec: undefined, createdAt: '\u001b]0;pwned\u0007' }));
    await expectRefused(/createdAt .* is not plain text/);
  });

  it('refuses a record that other users can write', async () => {
    await craft(() => {});
    await chmod(recordPath(), 0o666);
    await expectRefused(/can be written by other users \(mode 666/);
  });

  it('refuses a record that is not JSON, naming the file', async () => {
    await craft(() => {});
    await writeFile(recordPath(), '{"version": 2, "files": [');
    await expectRefused(/undo\.json is not valid JSON/);
  });
});

describe('symlinks where files belong', () => {
  it('setup refuses a symlink at the drop-in path, and the file it points at is untouched', async () => {
    const victim = path.join(outside, 'passwd');
    await writeFile(victim, 'root:x:0:0\n');
    await mkdir(dropInDir(), { recursive: true });
    await symlink(victim, dropIn());
    const { code, ctx } = await runCli(['--yes']);
    expect(code).toBe(1);
    expect(ctx.stderr).toEqual([`stigmer-setup: ${dropIn()} is a symlink, not a regular file; stigmer-setup will not read or write it. Move it away and run again.`]);
    expect(await readFile(victim, 'utf8')).toBe('root:x:0:0\n');
    expect(systemd.restarts).toBe(0);
  });

  it('setup refuses to write through a symlinked drop-in folder', async () => {
    await mkdir(path.join(root, 'etc/systemd/system'), { recursive: true });
    await symlink(outside, dropInDir());
    const { code, ctx } = await runCli(['--yes', '--json']);
    expect(code).toBe(1);
    expect((ctx.json[0] as { error: string }).error).toMatch(/ollama\.service\.d is a symlink, not a folder/);
    expect(await readdir(outside)).toEqual([]);
  });

  it('undo refuses an undo.json that is a symlink', async () => {
    await mkdir(stateDir(), { recursive: true });
    await writeFile(path.join(outside, 'record.json'), '{}');
    await symlink(path.join(outside, 'record.json'), recordPath());
    const { code, ctx } = await runCli(['undo', '--yes']);
    expect(code).toBe(1);
    expect(ctx.stderr[0]).toMatch(/undo\.json is a symlink, not a regular file/);
  });
});

describe('FIFOs where files belong never hang a command', () => {
  it('setup, doctor and undo each stop with one line when the drop-in path is a FIFO', async () => {
    await mkdir(dropInDir(), { recursive: true });
    mkfifo(dropIn());
    for (const argv of [['--yes'], ['doctor']]) {
      const { code, ctx } = await runCli(argv);
      expect(code).toBe(1);
      expect(ctx.stderr).toEqual([`stigmer-setup: ${dropIn()} is a FIFO (named pipe), not a regular file; stigmer-setup will not read or write it. Move it away and run again.`]);
    }
  });

  it('doctor stops with that one line also when docker answers slowly (detection refuses first, meanwhile)', async () => {
    await mkdir(dropInDir(), { recursive: true });
    mkfifo(dropIn());
    let unhandled: unknown;
    const onUnhandled = (reason: unknown) => (unhandled = reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const ctx = machine({
        exec: async (command, args) => {
          if (command === 'systemctl') return systemd.exec(args);
          // docker takes its time: detection, which runs meanwhile, hits the FIFO first.
          if (command === 'docker') await new Promise((resolve) => setTimeout(resolve, 200));
          return NOT_FOUND;
        },
      });
      const { code } = await runCli(['doctor'], ctx);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(code).toBe(1);
      expect(ctx.stderr).toEqual([`stigmer-setup: ${dropIn()} is a FIFO (named pipe), not a regular file; stigmer-setup will not read or write it. Move it away and run again.`]);
      expect(unhandled).toBeUndefined();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('undo and setup stop with one line when undo.json is a FIFO', async () => {
    await mkdir(stateDir(), { recursive: true });
    mkfifo(recordPath());
    for (const argv of [['undo', '--yes'], ['--yes']]) {
      const { code, ctx } = await runCli(argv);
      expect(code).toBe(1);
      expect(ctx.stderr[0]).toMatch(/undo\.json is a FIFO \(named pipe\), not a regular file/);
    }
  });

  it("doctor finishes when the user's own ~/.stigmer/config.yaml and ~/.docker/config.json are FIFOs, and names the first", async () => {
    const home = path.join(outside, 'home');
    await mkdir(path.join(home, '.stigmer'), { recursive: true });
    await mkdir(path.join(home, '.docker'), { recursive: true });
    mkfifo(path.join(home, '.stigmer', 'config.yaml'));
    mkfifo(path.join(home, '.docker', 'config.json'));
    const ctx = machine({ env: { HOME: home } });
    await runCli(['doctor', '--json'], ctx);
    const report = ctx.json[0] as { checks: { id: string; status: string; message: string }[] };
    const config = report.checks.find((finding) => finding.id === 'stigmer.config');
    expect(config?.status).toBe('warn');
    expect(config?.message).toMatch(/^\/.*\/\.stigmer\/config\.yaml is a FIFO \(named pipe\), not a regular file/);
  });

  it('a FIFO named by EnvironmentFile= is refused, not opened for a blocking read', async () => {
    const fifo = path.join(root, 'etc/default/ollama');
    await mkdir(path.dirname(fifo), { recursive: true });
    mkfifo(fifo);
    const ctx = testContext({
      exec: async (command, args) => {
        if (command !== 'systemctl') return NOT_FOUND;
        const shown = await systemd.exec(args);
        return args[0] === 'show' ? ok(`${shown.stdout}\nEnvironmentFiles=/etc/default/ollama (ignore_errors=no)\n`) : shown;
      },
    });
    // doctor reports it as a finding and goes on with every other check.
    const { code } = await runCli(['doctor', '--json'], ctx);
    expect(code).toBe(1);
    const config = (ctx.json[0] as { checks: { id: string; message: string }[] }).checks.find((check) => check.id === 'ollama.service-config');
    expect(config?.message).toMatch(/etc\/default\/ollama \(read by ollama\.service\) can't be read: .*is a FIFO/);
  });
});

describe('--host that systemd would rewrite', () => {
  it.each([
    ['[fe80::1%eth0]:11434', /IPv6 zone ids \(fe80::1%eth0\) are not supported/],
    ['%h:11434', /systemd would expand it as a specifier/],
  ])('%s exits 2 with one line, before anything is looked at', async (host, message) => {
    const ctx = machine();
    expect(await run(['--yes', '--host', host, '--root', root], ctx)).toBe(2);
    expect(ctx.stderr).toHaveLength(1);
    expect(ctx.stderr[0]).toMatch(message);
    expect(ctx.calls).toEqual([]);
  });

  /** What real systemd resolves OLLAMA_HOST to from this drop-in, via `systemd-analyze verify`'s debug dump. */
  async function systemdReads(dropInText: string): Promise<{ value?: string; log: string }> {
    const unitDir = path.join(outside, `units-${Math.random().toString(36).slice(2)}`);
    await mkdir(path.join(unitDir, 'ollama.service.d'), { recursive: true });
    await writeFile(path.join(unitDir, 'ollama.service'), '[Unit]\nDescription=Ollama Service\n[Service]\nExecStart=/bin/true\n');
    await writeFile(path.join(unitDir, 'ollama.service.d', 'stigmer-setup.conf'), dropInText);
    const verify = spawnSync('systemd-analyze', ['verify', path.join(unitDir, 'ollama.service')], { env: { ...process.env, SYSTEMD_LOG_LEVEL: 'debug' }, encoding: 'utf8', timeout: 30_000 });
    const log = `${verify.stdout}${verify.stderr}`;
    return { value: /Environment: .*?OLLAMA_HOST=(\S+)/.exec(log)?.[1], log };
  }

  it('every accepted --host renders a drop-in that real systemd reads back unchanged', async () => {
    for (const host of ['0.0.0.0:11434', '[::]:11434', '172.17.0.1:11434', '[fd00::1]:8080', ':11500']) {
      const target = parseHostOption(host);
      if ('error' in target) throw new Error(target.error);
      const { value, log } = await systemdReads(renderDropIn(target));
      expect(value, log).toBe(host === ':11500' ? '0.0.0.0:11500' : host);
    }
  });

  it('is right to refuse: systemd expands %h and drops a line with a zone id', async () => {
    expect((await systemdReads('[Service]\nEnvironment="OLLAMA_HOST=%h:11434"\n')).value).toBe(`${os.userInfo().homedir}:11434`);
    const zone = await systemdReads('[Service]\nEnvironment="OLLAMA_HOST=[fe80::1%eth0]:11434"\n');
    expect(zone.value).toBeUndefined();
    expect(zone.log).toMatch(/Failed to resolve specifiers/);
  });
});

describe('hung commands', () => {
  it.skipIf(needs.proc)('a timeout kills the whole process group and the wait ends then, even when a child holds the pipe' + because(needs.proc), async () => {
    const ctx = createNodeContext();
    const started = Date.now();
    // The shell starts a background sleep that inherits stdout, prints its pid, then sleeps too.
    const result = await ctx.exec('sh', ['-c', 'sleep 30 & echo $!; sleep 30'], { timeoutMs: 300 });
    expect(result.failure).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(5000);
    const grandchild = Number(result.stdout.trim());
    expect(grandchild).toBeGreaterThan(0);
    // Killed with its group: gone, or a zombie waiting for init to reap it.
    const deadline = Date.now() + 5000;
    const alive = () => {
      try {
        return !/^\d+ \(.*\) Z/.test(execFileSync('cat', [`/proc/${grandchild}/stat`], { encoding: 'utf8' }));
      } catch {
        return false;
      }
    };
    while (alive() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(alive()).toBe(false);
  });

  it.skipIf(needs.proc)('runs each command in a process group of its own, so Ctrl-C on the terminal does not reach it' + because(needs.proc), async () => {
    const result = await createNodeContext().exec('sh', ['-c', 'cat /proc/$$/stat'], { timeoutMs: 5000 });
    const fields = result.stdout.replace(/^\d+ \(.*?\) /, '').split(' ');
    const [pid] = result.stdout.split(' ');
    // Field 5 of /proc/PID/stat is the process group: it leads its own.
    expect(fields[2]).toBe(pid);
    expect(fields[2]).not.toBe(String(process.pid));
  });
});

describe('one run at a time', () => {
  it('a second run waits briefly, then stops with the pid of the one that holds the lock, changing nothing', async () => {
    const other = liveProcess();
    await mkdir(stateDir(), { recursive: true });
    await writeFile(path.join(stateDir(), 'lock'), `${other}\n`);
    const { code, ctx } = await runCli(['--yes']);
    expect(code).toBe(1);
    expect(ctx.stderr).toEqual([expect.stringContaining(`another stigmer-setup (pid ${other}) is running`)]);
    await expect(stat(dropIn())).rejects.toThrow(/ENOENT/);
    expect(systemd.restarts).toBe(0);
  });

  it('takes over a stale lock whose process is gone, and releases it when done', async () => {
    const gone = spawn('true');
    await new Promise((resolve) => gone.once('exit', resolve));
    await mkdir(stateDir(), { recursive: true });
    await writeFile(path.join(stateDir(), 'lock'), `${gone.pid}\n`);
    expect((await runCli(['--yes'])).code).toBe(0);
    await expect(stat(path.join(stateDir(), 'lock'))).rejects.toThrow(/ENOENT/);
  });

  it('a lock that is not ours to read is never trusted: text that is not a pid and a symlink to a dead pid are stale; a FIFO is refused without a hang', async () => {
    const lock = () => path.join(stateDir(), 'lock');
    const gone = spawn('true');
    await new Promise((resolve) => gone.once('exit', resolve));
    await mkdir(stateDir(), { recursive: true });
    for (const plant of [() => writeFile(lock(), '$(touch /tmp/pwned)\n\u001b[2J'), () => symlink(String(gone.pid), lock())]) {
      await plant();
      expect((await runCli(['--yes'])).code).toBe(0);
      await expect(stat(lock())).rejects.toThrow(/ENOENT/);
      expect((await runCli(['undo', '--yes'])).code).toBe(0);
    }
    mkfifo(lock());
    const restartsBefore = systemd.restarts;
    const { code, ctx } = await runCli(['--yes']);
    expect(code).toBe(1);
    expect(ctx.stderr.join(' ')).toMatch(/lock is a FIFO \(named pipe\), not a regular file; stigmer-setup will not read or write it\. Move it away and run again\./);
    await expect(stat(dropIn())).rejects.toThrow(/ENOENT/);
    expect(systemd.restarts).toBe(restartsBefore);
  });

  it('of a setup and an undo started together, one runs; the other runs after it or stops with the reason; the original file is never lost', async () => {
    // A port of its own: Ollama's stand-in really binds it when undo restores this file.
    const original = `[Service]\nEnvironment="OLLAMA_HOST=127.0.0.1:${await freePort()}"\n`;
    await mkdir(dropInDir(), { recursive: true });
    await writeFile(dropIn(), original);
    await systemd.exec(['daemon-reload']); // loaded, as a user's drop-in is: a pending edit is refused
    expect((await runCli(['--yes'])).code).toBe(0);
    // Two runs at once, as two processes would be (each its own pid, both alive).
    const [a, b] = await Promise.all([runCli(['undo', '--yes'], machine({ pid: liveProcess() })), runCli(['--yes', '--host', `[::]:${port}`], machine({ pid: liveProcess() }))]);
    // A refusal at plan time is printed with the plan (stdout), one at apply time on stderr.
    const outcomes = [a, b].map(({ code, ctx }) => ({ code, error: [...ctx.stderr, ...ctx.stdout].join(' ') }));
    // The first to take the lock runs. The other stops, naming why: the lock, if the first is still
    // running after the wait; its plan, if the first changed the file meanwhile; or, when it looked
    // just after the first wrote the drop-in and before its daemon-reload, that unit edit waiting
    // for the reload (refused as any pending edit is). (On a slow machine the second may only plan
    // after the first is done; then it runs too, on fresh facts.)
    expect(outcomes.filter((outcome) => outcome.code === 0).length).toBeGreaterThanOrEqual(1);
    for (const outcome of outcomes.filter(({ code }) => code !== 0)) {
      expect(outcome.error).toMatch(/another stigmer-setup \(pid \d+\) is running|changed since|has unit-file changes systemd has not loaded yet/);
    }
    // Whatever ran, a final undo returns the user's original bytes.
    await runCli(['undo', '--yes']);
    expect(await readFile(dropIn(), 'utf8')).toBe(original);
  });

  it('setup and undo hold the lock until their verification is done, so each report is about its own change', async () => {
    for (const argv of [['--yes'], ['undo', '--yes']]) {
      const seenDuringVerification: string[] = [];
      const ctx = machine({ pid: liveProcess() });
      const exec = ctx.exec;
      const restartsBefore = systemd.restarts;
      ctx.exec = async (command, args, options) => {
        // After this run's restart, every systemctl call belongs to its verification.
        if (command === 'systemctl' && systemd.restarts > restartsBefore) {
          seenDuringVerification.push(await readFile(path.join(stateDir(), 'lock'), 'utf8').catch(() => 'no lock'));
        }
        return exec(command, args, options);
      };
      expect((await runCli(argv, ctx)).code).toBe(0);
      expect(seenDuringVerification.length).toBeGreaterThan(0);
      expect(new Set(seenDuringVerification)).toEqual(new Set([`${ctx.pid}\n`]));
      await expect(stat(path.join(stateDir(), 'lock'))).rejects.toThrow(/ENOENT/);
    }
  });
});

describe('no stale plans', () => {
  it('an edit made while the prompt is open stops setup before anything is written', async () => {
    await mkdir(dropInDir(), { recursive: true });
    await writeFile(dropIn(), '[Service]\nEnvironment="OLLAMA_HOST=127.0.0.1:1"\n');
    await systemd.exec(['daemon-reload']); // loaded, as a user's drop-in is: a pending edit is refused
    const ctx = machine({ isTTY: true });
    ctx.terminal.confirm = async () => {
      await writeFile(dropIn(), '# edited by hand while the prompt was open\n');
      return true;
    };
    expect(await run(['--root', root], ctx)).toBe(1);
    expect(ctx.stderr.join('\n')).toMatch(/stigmer-setup\.conf changed since the plan was made \(its content differs\)\. Nothing was changed; run stigmer-setup again/);
    expect(await readFile(dropIn(), 'utf8')).toBe('# edited by hand while the prompt was open\n');
    expect(systemd.restarts).toBe(0);
    await expect(stat(recordPath())).rejects.toThrow(/ENOENT/);
  });

  it('hand edits to its own drop-in survive a re-run: a copy goes to kept/, with a warning', async () => {
    expect((await runCli(['--yes'])).code).toBe(0);
    await writeFile(dropIn(), `${await readFile(dropIn(), 'utf8')}Environment="OLLAMA_DEBUG=1"\n`);
    const edited = await readFile(dropIn(), 'utf8');
    await systemd.exec(['daemon-reload']); // the user reloaded after the edit: a pending one is refused
    const { code, ctx } = await runCli(['--yes', '--json', '--host', `[::]:${port}`]);
    expect(code).toBe(0);
    const report = ctx.json[0] as { warnings: string[]; changes: { kept?: boolean; path: string }[] };
    expect(report.warnings[0]).toMatch(/stigmer-setup\.conf was edited after stigmer-setup wrote it; your version will be kept as /);
    const kept = await readdir(path.join(stateDir(), 'kept'));
    expect(await readFile(path.join(stateDir(), 'kept', kept[0] as string), 'utf8')).toBe(edited);
    expect(report.changes[0]).toMatchObject({ kept: true });
  });
});

describe('text from the system is not allowed to drive the terminal', () => {
  it('strips escape sequences, control characters and bidi overrides, and keeps tabs and newlines', () => {
    expect(stripControl('ollama\x1b]0;pwned\x07 serve\x1b[2J\x1b[31mred\x1b[0m\r\n\tok\u202ereversed\x9b')).toBe('ollama servered\n\tokreversed');
  });

  it('keeps only the known fields of the line a probe prints from inside a container', () => {
    const line = JSON.stringify({ outcome: 'ok', url: 'http://host.docker.internal:11434', models: 2, status: '200', foreignHostStatus: 403, __proto__: { polluted: true }, extra: 'x'.repeat(10_000) });
    const probe = readProbeOutput({ exitCode: 0, stdout: `noise\n${line}\n`, stderr: '' }, '(its OLLAMA_BASE_URL)', 'stigmer-agent-runner', 4000);
    expect(probe).toEqual({ outcome: 'ok', url: 'http://host.docker.internal:11434', via: 'stigmer-agent-runner', models: 2, foreignHostStatus: 403 });
  });
});
