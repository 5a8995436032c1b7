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
    // dev may sudo without a password; alice must type hers, which --yes never does.
    await dockerExecOk(HOST, ['useradd', '-m', 'dev']);
    await dockerExecOk(HOST, ['useradd', '-m', 'alice']);
    await dockerExecOk(HOST, ['sh', '-c', 'echo alice:correct-horse | chpasswd']);
    await writeFileInContainer(HOST, '/etc/sudoers.d/e2e', 'dev ALL=(ALL) NOPASSWD: ALL\nalice ALL=(ALL) ALL\n', '0440');
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
});
