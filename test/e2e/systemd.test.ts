/**
 * Scenario B: a systemd host. Real systemd (PID 1 in a container), ollama.service as Ollama's
 * install.sh writes it (running the stand-in as user ollama), a user's override.conf, and the
 * built CLI run inside with --yes. A sibling container on the same bridge is the "other container".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check, parseReport, runInContainer, type JsonReport } from './cli.ts';
import {
  buildHostUsrImage,
  buildSystemdImage,
  CONTAINER_NODE,
  dockerExec,
  dockerExecOk,
  installOllamaUnit,
  probeFrom,
  removeContainers,
  REPO_MOUNT,
  requireDocker,
  setOllamaDropIn,
  startSystemdContainer,
  waitForOllamaInContainer,
} from './support/index.ts';

const HOST = 'stigmer-e2e-systemd-host';
const DROP_IN = '/etc/systemd/system/ollama.service.d/stigmer-setup.conf';
const OVERRIDE = '/etc/systemd/system/ollama.service.d/override.conf';
const OVERRIDE_TEXT = '[Service]\nEnvironment="OLLAMA_MODELS=/usr/share/ollama/models"\n';

describe('scenario B: Ollama as a systemd service', () => {
  let ip: string;
  let sibling: string;

  const environment = async () => (await dockerExecOk(HOST, ['systemctl', 'show', 'ollama', '--property=Environment'])).trim();
  const mainPid = async () => (await dockerExecOk(HOST, ['systemctl', 'show', 'ollama', '--property=MainPID'])).trim();
  // ss (iproute2) reads the kernel's socket table independently of stigmer-setup's /proc parser.
  const listening = async () => (await dockerExecOk(HOST, ['ss', '-ltnH', 'sport = :11434'])).trim().split(/\s+/)[3];
  const fromSibling = (expect: 'ok' | 'fail') => probeFrom(sibling, `http://${ip}:11434/api/tags`, { addHostGateway: false, expect });

  beforeAll(async () => {
    await requireDocker();
    sibling = await buildHostUsrImage();
    await buildSystemdImage();
    ip = await startSystemdContainer(HOST);
    await installOllamaUnit(HOST);
    await setOllamaDropIn(HOST, 'override.conf', OVERRIDE_TEXT);
    await waitForOllamaInContainer(HOST);
  });

  afterAll(async () => {
    await removeContainers(HOST);
  });

  it('starts out like the seed: loopback only, refused from a sibling container', async () => {
    expect(await listening()).toBe('127.0.0.1:11434');
    const probe = await fromSibling('fail');
    expect(probe.kind).toBe('refused');
    // No container runtime in here, so the loopback listener is the failing check.
    const doctor = await runInContainer(HOST, ['doctor', '--json']);
    expect(doctor.exitCode).toBe(1);
    const report = parseReport(doctor);
    expect(report.strategy).toBe('linux-systemd');
    expect(check(report, 'ollama.listener').status).toBe('fail');
    expect(check(report, 'container.probe').status).toBe('skip');
  });

  it('--dry-run shows the exact drop-in and commands, and changes nothing', async () => {
    const run = await runInContainer(HOST, ['--dry-run']);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toContain(`Would create ${DROP_IN}`);
    expect(run.stdout).toContain('+[Service]');
    expect(run.stdout).toContain('+Environment="OLLAMA_HOST=0.0.0.0:11434"');
    expect(run.stdout).toContain('[dry run] Command not executed: systemctl daemon-reload');
    expect(run.stdout).toContain('[dry run] Command not executed: systemctl restart ollama');
    expect((await dockerExec(HOST, ['test', '-e', DROP_IN])).exitCode).toBe(1);
  });

  it('bad --host input exits 2 with one line and changes nothing', async () => {
    const run = await runInContainer(HOST, ['--yes', '--host', 'http://0.0.0.0']);
    expect(run.exitCode).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('port 80');
    expect((await dockerExec(HOST, ['test', '-e', DROP_IN])).exitCode).toBe(1);
  });

  it('interactively, on a real terminal, asks first; "n" exits 130 and changes nothing', async () => {
    // `script` gives the CLI a pseudo-terminal, as a person's shell would; "n" answers the prompt.
    const run = await dockerExec(HOST, ['script', '-qec', `${CONTAINER_NODE} ${REPO_MOUNT}/dist/stigmer-setup.mjs`, '/dev/null'], { input: 'n', timeout: '60s' });
    expect(run.exitCode).toBe(130);
    expect(run.stdout).toContain('Apply these changes?');
    expect(run.stdout).toContain('Cancelled; nothing was changed.');
    // A spinner must not flood a terminal that reports no size (this one has none).
    expect(run.stdout.length).toBeLessThan(20_000);
    expect((await dockerExec(HOST, ['test', '-e', DROP_IN])).exitCode).toBe(1);
  });

  let firstSetup: JsonReport;
  it('setup --yes writes the drop-in, keeps override.conf, and the service listens on all interfaces', async () => {
    const run = await runInContainer(HOST, ['--yes', '--json']);
    firstSetup = parseReport(run);
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    expect(firstSetup.ok).toBe(true);
    expect(firstSetup.changes).toEqual([
      expect.objectContaining({ type: 'file', path: DROP_IN, action: 'create', applied: true }),
      { type: 'command', argv: ['systemctl', 'daemon-reload'], applied: true },
      { type: 'command', argv: ['systemctl', 'restart', 'ollama'], applied: true },
    ]);

    const dropIn = await dockerExecOk(HOST, ['cat', DROP_IN]);
    expect(dropIn).toMatch(/^# .*undo/);
    expect(dropIn).toContain('[Service]\nEnvironment="OLLAMA_HOST=0.0.0.0:11434"\n');
    expect(await dockerExecOk(HOST, ['cat', OVERRIDE])).toBe(OVERRIDE_TEXT);
    const env = await environment();
    expect(env).toContain('OLLAMA_HOST=0.0.0.0:11434');
    expect(env).toContain('OLLAMA_MODELS=/usr/share/ollama/models');
    expect(await listening()).toMatch(/^(\*|\[::\]|0\.0\.0\.0):11434$/);
    expect(check(firstSetup, 'ollama.listener').status).toBe('ok');
    expect(check(firstSetup, 'ollama.service-config').status).toBe('ok');

    const probe = await fromSibling('ok');
    expect(probe).toMatchObject({ ok: true, status: 200 });
  });

  it('running setup again changes nothing and does not restart Ollama', async () => {
    const pidBefore = await mainPid();
    const dropInBefore = await dockerExecOk(HOST, ['stat', '-c', '%Y %s', DROP_IN]);
    const run = await runInContainer(HOST, ['--yes', '--json']);
    const report = parseReport(run);
    expect(run.exitCode).toBe(0);
    expect(report.changes).toEqual([]);
    expect(await mainPid()).toBe(pidBefore);
    expect(await dockerExecOk(HOST, ['stat', '-c', '%Y %s', DROP_IN])).toBe(dropInBefore);
  });

  it('undo restores loopback, removes only the drop-in, and the sibling is refused again', async () => {
    const run = await runInContainer(HOST, ['undo', '--yes', '--json']);
    const report = parseReport(run);
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    expect(report.changes).toEqual(
      expect.arrayContaining([expect.objectContaining({ type: 'file', path: DROP_IN, action: 'delete', applied: true })]),
    );
    expect((await dockerExec(HOST, ['test', '-e', DROP_IN])).exitCode).toBe(1);
    expect(await dockerExecOk(HOST, ['cat', OVERRIDE])).toBe(OVERRIDE_TEXT);
    expect(await environment()).not.toContain('OLLAMA_HOST');
    await waitForOllamaInContainer(HOST);
    expect(await listening()).toBe('127.0.0.1:11434');
    expect((await fromSibling('fail')).kind).toBe('refused');

    const again = await runInContainer(HOST, ['undo', '--yes']);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toContain('Nothing to undo');
  });

  it('a later drop-in that also sets OLLAMA_HOST is a failed check that names the file', async () => {
    await setOllamaDropIn(HOST, 'zz-local.conf', '[Service]\nEnvironment="OLLAMA_HOST=127.0.0.1:11434"\n');
    const run = await runInContainer(HOST, ['--yes', '--json']);
    const report = parseReport(run);
    expect(run.exitCode).toBe(1);
    const config = check(report, 'ollama.service-config');
    expect(config.status).toBe('fail');
    expect(config.message).toContain('/etc/systemd/system/ollama.service.d/zz-local.conf');
    expect(config.fix).toContain('zz-local.conf');
    // undo still returns the machine to where it was before setup.
    expect((await runInContainer(HOST, ['undo', '--yes'])).exitCode).toBe(0);
    expect((await dockerExec(HOST, ['test', '-e', DROP_IN])).exitCode).toBe(1);
  });
});
