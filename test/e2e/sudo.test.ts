/**
 * setup without root, on real systemd and real sudo: only the privileged steps go through
 * `sudo -n` under --yes, and a sudo that wants a password stops setup with nothing changed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReport } from './cli.ts';
import {
  buildSystemdImage,
  CONTAINER_NODE,
  dockerExec,
  dockerExecOk,
  installOllamaUnit,
  removeContainers,
  REPO_MOUNT,
  requireDocker,
  startSystemdContainer,
  writeFileInContainer,
} from './support/index.ts';

const HOST = 'stigmer-e2e-sudo-host';
const DROP_IN = '/etc/systemd/system/ollama.service.d/stigmer-setup.conf';

/** The built CLI as an ordinary user (runuser keeps it non-interactive, like CI). */
const runAs = (user: string, args: string[]) =>
  dockerExec(HOST, ['runuser', '-u', user, '--', 'env', `HOME=/home/${user}`, CONTAINER_NODE, `${REPO_MOUNT}/dist/stigmer-setup.mjs`, ...args], { timeout: '90s' });

describe('setup as a user who is not root', () => {
  beforeAll(async () => {
    await requireDocker();
    await buildSystemdImage();
    await startSystemdContainer(HOST);
    await installOllamaUnit(HOST);
    // dev may sudo without a password; alice must type hers, which --yes never does; dave may run
    // anything but systemctl, so sudo -n fails half-way through setup.
    for (const user of ['dev', 'alice', 'dave']) await dockerExecOk(HOST, ['useradd', '-m', user]);
    await dockerExecOk(HOST, ['sh', '-c', 'echo alice:correct-horse | chpasswd']);
    await writeFileInContainer(
      HOST,
      '/etc/sudoers.d/e2e',
      'dev ALL=(ALL) NOPASSWD: ALL\nalice ALL=(ALL) ALL\ndave ALL=(ALL) NOPASSWD: ALL, !/usr/bin/systemctl, !/bin/systemctl\n',
      '0440',
    );
  });

  afterAll(async () => {
    await removeContainers(HOST);
  });

  it('without D-Bus, where systemctl fails for a user, names that error instead of guessing', async () => {
    await dockerExecOk(HOST, ['systemctl', 'stop', 'dbus.socket', 'dbus.service']);
    try {
      const run = await runAs('dev', ['--yes', '--json']);
      expect(run.exitCode).toBe(1);
      const error = (parseReport(run) as unknown as { error: string }).error;
      expect(error).toContain('`systemctl show ollama.service` failed: Failed to connect to bus');
      expect(error).toContain('sudo npx stigmer-setup');
      expect((await dockerExec(HOST, ['test', '-e', DROP_IN])).exitCode).toBe(1);
    } finally {
      await dockerExecOk(HOST, ['systemctl', 'start', 'dbus.socket', 'dbus.service']);
    }
  });

  it('with a sudo that needs a password, --yes fails fast, says what to do, and changes nothing', async () => {
    const run = await runAs('alice', ['--yes', '--json']);
    const report = parseReport(run);
    expect(run.exitCode).toBe(1);
    expect(report.ok).toBe(false);
    expect((report as unknown as { error: string }).error).toContain('sudo needs a password, and --yes never prompts. Run `sudo -v` first, or run stigmer-setup as root.');
    expect((await dockerExec(HOST, ['test', '-e', DROP_IN])).exitCode).toBe(1);
    expect((await dockerExec(HOST, ['test', '-e', '/var/lib/stigmer-setup/undo.json'])).exitCode).toBe(1);
    expect((await dockerExecOk(HOST, ['ss', '-ltnH', 'sport = :11434'])).trim().split(/\s+/)[3]).toBe('127.0.0.1:11434');
  });

  it('with passwordless sudo, runs only the privileged steps through sudo -n, and undo works the same way', async () => {
    const run = await runAs('dev', ['--yes', '--json']);
    const report = parseReport(run);
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    expect(report.changes.filter((change) => change.type === 'command').map((change) => (change as { argv: string[] }).argv)).toEqual([
      ['sudo', '-n', 'systemctl', 'daemon-reload'],
      ['sudo', '-n', 'systemctl', 'restart', 'ollama'],
    ]);
    // Written by root through `sudo install`, readable by systemd and everyone.
    expect((await dockerExecOk(HOST, ['stat', '-c', '%U %a', DROP_IN])).trim()).toBe('root 644');
    expect((await dockerExecOk(HOST, ['ss', '-ltnH', 'sport = :11434'])).trim().split(/\s+/)[3]).toMatch(/^(\*|\[::\]|0\.0\.0\.0):11434$/);

    const undo = await runAs('dev', ['undo', '--yes']);
    expect(undo.exitCode, undo.stdout + undo.stderr).toBe(0);
    expect((await dockerExec(HOST, ['test', '-e', DROP_IN])).exitCode).toBe(1);
  });

  const listening = async () => (await dockerExecOk(HOST, ['ss', '-ltnH', 'sport = :11434'])).trim().split(/\s+/)[3];
  const mainPid = async () => (await dockerExecOk(HOST, ['systemctl', 'show', 'ollama', '--property=MainPID'])).trim();
  type ErrorReport = ReturnType<typeof parseReport> & { error: string };

  it('when sudo -n is refused half-way (systemctl not allowed), the written drop-in is rolled back and Ollama is untouched', async () => {
    const pid = await mainPid();
    const run = await runAs('dave', ['--yes', '--json']);
    expect(run.exitCode).toBe(1);
    const report = parseReport(run) as ErrorReport;
    expect(report.error).toMatch(/not allowed to execute '\/(usr\/)?bin\/systemctl daemon-reload' as root/);
    // The file is put back; the rollback's own daemon-reload is refused the same way, and says so
    // (systemd never loaded our drop-in, so nothing needed reloading: the lead is told).
    expect((await dockerExec(HOST, ['test', '-e', DROP_IN])).exitCode).toBe(1);
    expect(await mainPid()).toBe(pid);
    expect(await listening()).toBe('127.0.0.1:11434');
  });

  it('a 0600 drop-in a user can not read: doctor reports it and goes on; setup refuses without a raw EACCES', async () => {
    await writeFileInContainer(HOST, '/etc/systemd/system/ollama.service.d/secret.conf', '[Service]\nEnvironment="HF_TOKEN=x"\n', '0600');
    await dockerExecOk(HOST, ['sh', '-c', 'systemctl daemon-reload && systemctl restart ollama']);
    try {
      const doctor = await runAs('dev', ['doctor', '--json']);
      const report = parseReport(doctor);
      expect(report.checks.length).toBeGreaterThan(5);
      const config = report.checks.find((check) => check.id === 'ollama.service-config');
      expect(config?.message).toBe("/etc/systemd/system/ollama.service.d/secret.conf (read by ollama.service) can't be read: permission denied (run as root to read it).");
      expect(doctor.stdout + doctor.stderr).not.toContain('EACCES');
      const setup = await runAs('dev', ['--yes', '--json']);
      expect(setup.exitCode).toBe(1);
      expect((parseReport(setup) as ErrorReport).error).toContain("secret.conf (read by ollama.service) can't be read");
      expect((await dockerExec(HOST, ['test', '-e', DROP_IN])).exitCode).toBe(1);
    } finally {
      await dockerExecOk(HOST, ['sh', '-c', 'rm -f /etc/systemd/system/ollama.service.d/secret.conf && systemctl daemon-reload && systemctl restart ollama']);
    }
  });

  it('a 0600 EnvironmentFile= is not taken as "does not set OLLAMA_HOST": setup as a user refuses, changing nothing', async () => {
    await writeFileInContainer(HOST, '/etc/default/ollama', 'OLLAMA_HOST=127.0.0.1:11434\n', '0600');
    await writeFileInContainer(HOST, '/etc/systemd/system/ollama.service.d/env.conf', '[Service]\nEnvironmentFile=/etc/default/ollama\n');
    await dockerExecOk(HOST, ['sh', '-c', 'systemctl daemon-reload && systemctl restart ollama']);
    try {
      const setup = await runAs('dev', ['--yes', '--json']);
      expect(setup.exitCode).toBe(1);
      expect((parseReport(setup) as ErrorReport).error).toContain("/etc/default/ollama (read by ollama.service) can't be read");
      expect((await dockerExec(HOST, ['test', '-e', DROP_IN])).exitCode).toBe(1);
    } finally {
      await dockerExecOk(HOST, ['sh', '-c', 'rm -f /etc/default/ollama /etc/systemd/system/ollama.service.d/env.conf && systemctl daemon-reload && systemctl restart ollama']);
    }
  });

  it('two runs through sudo that both find a stale lock: never both take it over', async () => {
    // A lock left by a run that was killed, written through sudo (a symlink naming its pid).
    await dockerExecOk(HOST, ['sh', '-c', 'mkdir -p /var/lib/stigmer-setup && ln -sfn 999999 /var/lib/stigmer-setup/lock']);
    const [first, second] = await Promise.all([runAs('dev', ['--yes', '--json']), runAs('dev', ['--yes', '--json'])]);
    const outcomes = [first, second];
    expect(outcomes.filter((run) => run.exitCode === 0).length).toBeGreaterThanOrEqual(1);
    for (const run of outcomes.filter((outcome) => outcome.exitCode !== 0)) {
      expect((parseReport(run) as ErrorReport).error).toMatch(/another stigmer-setup \(pid \d+\) is running|changed since/);
    }
    // -L too: a lock written through sudo is a symlink to a pid, dangling by design.
    for (const leftover of ['/var/lib/stigmer-setup/lock', '/var/lib/stigmer-setup/lock.takeover']) {
      expect((await dockerExec(HOST, ['sh', '-c', `test -e ${leftover} || test -L ${leftover}`])).exitCode).toBe(1);
    }
    expect(await listening()).toMatch(/^(\*|\[::\]|0\.0\.0\.0):11434$/);
    expect((await runAs('dev', ['undo', '--yes'])).exitCode).toBe(0);
  });
});
