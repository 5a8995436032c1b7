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
    await dockerExec(HOST, ['sh', '-c', `rm -rf ${DROP_IN_DIR} /etc/default/ollama /var/lib/stigmer-setup && systemctl daemon-reload && systemctl restart ollama`], { timeout: '60s' });
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

  it('a drop-in edited without daemon-reload is a warning with the reload-and-restart command', async () => {
    expect((await runInContainer(HOST, ['--yes'])).exitCode).toBe(0);
    await dockerExecOk(HOST, ['sh', '-c', `echo 'Environment="OLLAMA_DEBUG=1"' >> ${DROP_IN}`]);
    expect((await dockerExecOk(HOST, ['systemctl', 'show', 'ollama', '--property=NeedDaemonReload'])).trim()).toBe('NeedDaemonReload=yes');
    const config = check(parseReport(await runInContainer(HOST, ['doctor', '--json'])), 'ollama.service-config');
    expect(config).toMatchObject({ status: 'warn', fix: 'sudo systemctl daemon-reload && sudo systemctl restart ollama' });
    expect(config.message).toContain('NeedDaemonReload=yes');
    // A run that has nothing to change leaves the edit alone; one that rewrites the drop-in (another
    // --host) keeps a copy of the edit in kept/ first.
    expect(parseReport(await runInContainer(HOST, ['--yes', '--json'])).changes).toEqual([]);
    expect(await dockerExecOk(HOST, ['cat', DROP_IN])).toContain('OLLAMA_DEBUG=1');
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
});
