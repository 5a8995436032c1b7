/**
 * What real systemd does with configuration stigmer-setup did not write, and the two defects of
 * the first release: a specific --host rolled back because only 127.0.0.1 was probed, and drop-ins
 * edited without a daemon-reload. Real systemd as PID 1 in a container, ollama.service as install.sh
 * writes it, the stand-in as the server.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { check, parseReport, runInContainer } from './cli.ts';
import {
  buildHostUsrImage,
  buildSystemdImage,
  dockerExec,
  dockerExecOk,
  installOllamaUnit,
  probeFrom,
  removeContainers,
  requireDocker,
  setOllamaDropIn,
  startSystemdContainer,
  waitForOllamaInContainer,
  writeFileInContainer,
} from './support/index.ts';

const HOST = 'stigmer-e2e-systemd-config';
const DROP_IN_DIR = '/etc/systemd/system/ollama.service.d';
const DROP_IN = `${DROP_IN_DIR}/stigmer-setup.conf`;

describe('systemd configuration beyond our drop-in', () => {
  let ip: string;
  let sibling: string;
  const listening = async () => (await dockerExecOk(HOST, ['ss', '-ltnH', 'sport = :11434'])).trim().split(/\s+/)[3];
  const reset = async () => {
    await dockerExec(HOST, ['sh', '-c', `rm -rf ${DROP_IN_DIR} /etc/default/ollama /etc/ollama /var/lib/stigmer-setup && systemctl daemon-reload && systemctl restart ollama`], { timeout: '60s' });
    await waitForOllamaInContainer(HOST);
  };

  beforeAll(async () => {
    await requireDocker();
    sibling = await buildHostUsrImage();
    await buildSystemdImage();
    ip = await startSystemdContainer(HOST);
    await installOllamaUnit(HOST);
  });
  afterAll(async () => {
    await removeContainers(HOST);
  });
  beforeEach(reset);

  it('a specific --host is probed where it binds, so the change stays; doctor warns that 127.0.0.1 is refused', async () => {
    const run = await runInContainer(HOST, ['--yes', '--json', '--host', `${ip}:11434`]);
    const report = parseReport(run);
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    expect(await listening()).toBe(`${ip}:11434`);
    expect(await dockerExecOk(HOST, ['cat', DROP_IN])).toContain(`Environment="OLLAMA_HOST=${ip}:11434"`);
    const probe = await probeFrom(sibling, `http://${ip}:11434/api/tags`, { addHostGateway: false, expect: 'ok' });
    expect(probe.status).toBe(200);
    const hostProbe = check(report, 'ollama.host-probe');
    expect(hostProbe.status).toBe('warn');
    expect(hostProbe.message).toContain(`answers on http://${ip}:11434`);
    expect(hostProbe.message).toContain('but not on http://127.0.0.1:11434');
    expect(check(report, 'ollama.exposure').status).toBe('warn');
    expect((await runInContainer(HOST, ['undo', '--yes'])).exitCode).toBe(0);
  });

  const mainPid = async () => (await dockerExecOk(HOST, ['systemctl', 'show', 'ollama', '--property=MainPID'])).trim();
  type ErrorReport = ReturnType<typeof parseReport> & { error: string };

  it('a drop-in edited without daemon-reload is a warning with the reload-and-restart command, and setup refuses until it is loaded', async () => {
    expect((await runInContainer(HOST, ['--yes'])).exitCode).toBe(0);
    await dockerExecOk(HOST, ['sh', '-c', `echo 'Environment="OLLAMA_DEBUG=1"' >> ${DROP_IN}`]);
    expect((await dockerExecOk(HOST, ['systemctl', 'show', 'ollama', '--property=NeedDaemonReload'])).trim()).toBe('NeedDaemonReload=yes');
    const config = check(parseReport(await runInContainer(HOST, ['doctor', '--json'])), 'ollama.service-config');
    expect(config).toMatchObject({ status: 'warn', fix: 'sudo systemctl daemon-reload && sudo systemctl restart ollama' });
    expect(config.message).toContain('NeedDaemonReload=yes');
    // Setup would load that edit with its own restart: it refuses, and leaves the edit alone.
    const refused = await runInContainer(HOST, ['--yes', '--json', '--host', '[::]:11434']);
    expect(refused.exitCode).toBe(1);
    expect((parseReport(refused) as ErrorReport).error).toContain('ollama.service has unit-file changes systemd has not loaded yet');
    expect(await dockerExecOk(HOST, ['cat', DROP_IN])).toContain('OLLAMA_DEBUG=1');
    // Once the user has reloaded, a run that rewrites the drop-in (another --host) keeps a copy
    // of the edit in kept/ first.
    await dockerExecOk(HOST, ['systemctl', 'daemon-reload']);
    const again = parseReport(await runInContainer(HOST, ['--yes', '--json', '--host', '[::]:11434'])) as ReturnType<typeof parseReport> & { warnings: string[] };
    expect(again.warnings.join(' ')).toMatch(/stigmer-setup\.conf was edited after stigmer-setup wrote it; your version will be kept as \/var\/lib\/stigmer-setup\/kept\//);
    expect(await dockerExecOk(HOST, ['sh', '-c', 'cat /var/lib/stigmer-setup/kept/*'])).toContain('OLLAMA_DEBUG=1');
  });

  it('an EnvironmentFile= that sets OLLAMA_HOST blocks setup, naming the file, because no drop-in can beat it', async () => {
    await writeFileInContainer(HOST, '/etc/default/ollama', 'OLLAMA_HOST=127.0.0.1:11434\n');
    await setOllamaDropIn(HOST, 'env.conf', '[Service]\nEnvironmentFile=/etc/default/ollama\n');
    const run = await runInContainer(HOST, ['--yes', '--json']);
    const report = parseReport(run) as ReturnType<typeof parseReport> & { error: string };
    expect(run.exitCode).toBe(1);
    expect(report.changes).toEqual([]);
    expect(report.error).toContain('/etc/default/ollama (an EnvironmentFile= of ollama.service) sets OLLAMA_HOST=127.0.0.1:11434.');
    expect((await dockerExec(HOST, ['test', '-e', DROP_IN])).exitCode).toBe(1);
  });

  it('an EnvironmentFile= added after setup is the failed check that names it', async () => {
    expect((await runInContainer(HOST, ['--yes'])).exitCode).toBe(0);
    await writeFileInContainer(HOST, '/etc/default/ollama', 'OLLAMA_HOST="127.0.0.1:11434"\n');
    await setOllamaDropIn(HOST, 'env.conf', '[Service]\nEnvironmentFile=/etc/default/ollama\n');
    await waitForOllamaInContainer(HOST);
    expect(await listening()).toBe('127.0.0.1:11434');
    const config = check(parseReport(await runInContainer(HOST, ['doctor', '--json'])), 'ollama.service-config');
    expect(config.status).toBe('fail');
    expect(config.message).toContain('/etc/default/ollama (an EnvironmentFile= of ollama.service) sets OLLAMA_HOST=127.0.0.1:11434, which overrides stigmer-setup.conf');
  });

  it('a later drop-in that sets OLLAMA_HOST on a continued line is named as the file responsible', async () => {
    expect((await runInContainer(HOST, ['--yes'])).exitCode).toBe(0);
    await setOllamaDropIn(HOST, 'zz-local.conf', '[Service]\nEnvironment="OLLAMA_DEBUG=1" \\\n  "OLLAMA_HOST=127.0.0.1:11434"\n');
    await waitForOllamaInContainer(HOST);
    expect(await listening()).toBe('127.0.0.1:11434');
    const config = check(parseReport(await runInContainer(HOST, ['doctor', '--json'])), 'ollama.service-config');
    expect(config.status).toBe('fail');
    expect(config.message).toContain(`${DROP_IN_DIR}/zz-local.conf sets OLLAMA_HOST=127.0.0.1:11434, which overrides stigmer-setup.conf`);
  });

  it.each([
    // systemd 252 reports NeedDaemonReload=no for a new drop-in in a folder it did not see at its
    // last reload; setup finds it on disk all the same.
    ['a new drop-in folder (NeedDaemonReload=no)', async () => writeFileInContainer(HOST, `${DROP_IN_DIR}/10-gpu.conf`, '[Service]\nEnvironment="CUDA_VISIBLE_DEVICES=0"\n')],
    [
      'an edited, loaded drop-in (NeedDaemonReload=yes)',
      async () => {
        await setOllamaDropIn(HOST, '10-gpu.conf', '[Service]\nEnvironment="CUDA_VISIBLE_DEVICES=0"\n');
        await waitForOllamaInContainer(HOST);
        await writeFileInContainer(HOST, `${DROP_IN_DIR}/10-gpu.conf`, '[Service]\nEnvironment="CUDA_VISIBLE_DEVICES=1"\n');
        expect((await dockerExecOk(HOST, ['systemctl', 'show', 'ollama', '--property=NeedDaemonReload'])).trim()).toBe('NeedDaemonReload=yes');
      },
    ],
  ] as const)('an unrelated unit edit systemd has not loaded, %s: setup refuses up front, and Ollama keeps running as it was', async (_case, edit) => {
    await edit();
    const pid = await mainPid();
    const run = await runInContainer(HOST, ['--yes', '--json']);
    expect(run.exitCode).toBe(1);
    const report = parseReport(run) as ErrorReport;
    expect(report.error).toContain('ollama.service has unit-file changes systemd has not loaded yet');
    expect(report.error).toContain('run `systemctl daemon-reload` yourself, check `systemctl status ollama`, then run setup again');
    expect(report.changes).toEqual([]);
    expect(await mainPid()).toBe(pid);
    expect(await listening()).toBe('127.0.0.1:11434');
    expect((await dockerExec(HOST, ['test', '-e', DROP_IN])).exitCode).toBe(1);
  });

  /** Two runs of setup: both refused, naming `file`; Ollama never restarted. */
  async function expectRefusedTwice(file: string): Promise<void> {
    const pid = await mainPid();
    for (let attempt = 0; attempt < 2; attempt++) {
      const run = await runInContainer(HOST, ['--yes', '--json']);
      expect(run.exitCode).toBe(1);
      const report = parseReport(run) as ErrorReport;
      expect(report.error).toContain(file);
      expect(report.changes).toEqual([]);
    }
    expect(await mainPid()).toBe(pid);
    expect((await dockerExec(HOST, ['test', '-e', DROP_IN])).exitCode).toBe(1);
  }

  it('UnsetEnvironment=OLLAMA_HOST in a drop-in: systemd removes it last; setup refuses naming the file, doctor names it', async () => {
    await setOllamaDropIn(HOST, '50-unset.conf', '[Service]\nEnvironment="OLLAMA_HOST=0.0.0.0:11434"\nUnsetEnvironment=OLLAMA_HOST\n');
    await waitForOllamaInContainer(HOST);
    // Real systemd: the Environment= line is there, and the service still gets no OLLAMA_HOST.
    expect(await listening()).toBe('127.0.0.1:11434');
    expect((await dockerExecOk(HOST, ['systemctl', 'show', 'ollama', '--property=UnsetEnvironment'])).trim()).toBe('UnsetEnvironment=OLLAMA_HOST');
    await expectRefusedTwice(`UnsetEnvironment= in ${DROP_IN_DIR}/50-unset.conf removes OLLAMA_HOST`);
    const config = check(parseReport(await runInContainer(HOST, ['doctor', '--json'])), 'ollama.service-config');
    expect(config.message).toContain(`UnsetEnvironment= in ${DROP_IN_DIR}/50-unset.conf removes OLLAMA_HOST`);
    expect(config.fix).not.toBe('sudo systemctl daemon-reload && sudo systemctl restart ollama');
  });

  it('EnvironmentFile= with a wildcard: systemd expands it; setup refuses naming the file that matched', async () => {
    await writeFileInContainer(HOST, '/etc/ollama/10-host.env', 'OLLAMA_HOST=127.0.0.1:11434\n');
    await writeFileInContainer(HOST, '/etc/ollama/20-debug.env', 'OLLAMA_DEBUG=1\n');
    // No '-': if systemd did not expand the pattern, this start would fail.
    await setOllamaDropIn(HOST, 'env.conf', '[Service]\nEnvironment="OLLAMA_HOST=0.0.0.0:11434"\nEnvironmentFile=/etc/ollama/*.env\n');
    await waitForOllamaInContainer(HOST);
    expect(await listening()).toBe('127.0.0.1:11434');
    await expectRefusedTwice('/etc/ollama/10-host.env (an EnvironmentFile= of ollama.service) sets OLLAMA_HOST=127.0.0.1:11434');
  });

  it('an empty Environment= in a drop-in read after ours: setup refuses naming it, with no restart on every run', async () => {
    await setOllamaDropIn(HOST, 'zz-reset.conf', '[Service]\nEnvironment=\nEnvironment="OLLAMA_MODELS=/usr/share/ollama/models"\n');
    await waitForOllamaInContainer(HOST);
    await expectRefusedTwice(`${DROP_IN_DIR}/zz-reset.conf has an empty Environment= line, which systemd reads after stigmer-setup.conf`);
  });

  it('a restart that fails with the new configuration is rolled back, and Ollama runs on the old one', async () => {
    // Read before ours, so it is loaded like any admin's drop-in: the start fails when Ollama would
    // listen on every interface, as a site policy might make it.
    await setOllamaDropIn(HOST, '00-policy.conf', '[Service]\nExecStartPre=/bin/sh -c \'test "$OLLAMA_HOST" != 0.0.0.0:11434\'\n');
    await waitForOllamaInContainer(HOST);
    const run = await runInContainer(HOST, ['--yes', '--json']);
    const report = parseReport(run) as ErrorReport;
    expect(run.exitCode).toBe(1);
    expect(report.error).toContain('Every change was rolled back');
    expect(report.changes.every((change) => !(change as { applied: boolean }).applied)).toBe(true);
    expect((await dockerExec(HOST, ['test', '-e', DROP_IN])).exitCode).toBe(1);
    await waitForOllamaInContainer(HOST);
    expect(await listening()).toBe('127.0.0.1:11434');
    expect((await dockerExecOk(HOST, ['systemctl', 'is-active', 'ollama'])).trim()).toBe('active');
  });

  it('an undo whose restart fails puts the drop-in back, and Ollama runs on the configuration it had', async () => {
    expect((await runInContainer(HOST, ['--yes'])).exitCode).toBe(0);
    // Loaded before undo runs: without an OLLAMA_HOST, the start fails.
    await setOllamaDropIn(HOST, '00-policy.conf', '[Service]\nExecStartPre=/bin/sh -c \'test -n "$OLLAMA_HOST"\'\n');
    await waitForOllamaInContainer(HOST);
    const undo = await runInContainer(HOST, ['undo', '--yes', '--json']);
    expect(undo.exitCode).toBe(1);
    expect((parseReport(undo) as ErrorReport).error).toContain('Every change was rolled back');
    expect(await dockerExecOk(HOST, ['cat', DROP_IN])).toContain('OLLAMA_HOST=0.0.0.0:11434');
    await waitForOllamaInContainer(HOST);
    expect(await listening()).toMatch(/^(\*|\[::\]|0\.0\.0\.0):11434$/);
    expect((await dockerExecOk(HOST, ['systemctl', 'is-active', 'ollama'])).trim()).toBe('active');
  });

  it("undo refuses, changing nothing, while someone else's unit edit waits for daemon-reload", async () => {
    expect((await runInContainer(HOST, ['--yes'])).exitCode).toBe(0);
    await writeFileInContainer(HOST, `${DROP_IN_DIR}/10-gpu.conf`, '[Service]\nEnvironment="CUDA_VISIBLE_DEVICES=0"\n');
    const pid = await mainPid();
    const undo = await runInContainer(HOST, ['undo', '--yes', '--json']);
    expect(undo.exitCode).toBe(1);
    expect((parseReport(undo) as ErrorReport).error).toContain('ollama.service has unit-file changes systemd has not loaded yet');
    expect(await mainPid()).toBe(pid);
    expect(await dockerExecOk(HOST, ['cat', DROP_IN])).toContain('OLLAMA_HOST=0.0.0.0:11434');
    await dockerExecOk(HOST, ['systemctl', 'daemon-reload']);
    expect((await runInContainer(HOST, ['undo', '--yes'])).exitCode).toBe(0);
    expect((await dockerExec(HOST, ['test', '-e', DROP_IN])).exitCode).toBe(1);
  });
});
