/**
 * Scenario A: the seed's bug, reproduced and fixed, on a real dockerd.
 * A stand-in Ollama on the host's 127.0.0.1 and a bridge container named stigmer-agent-runner that
 * reaches the host through --add-host=host.docker.internal:host-gateway, as Stigmer's docs say.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check, parseReport, runOnHost } from './cli.ts';
import { buildHostUsrImage, freePort, removeContainers, requireDocker, sh, startStandin, type RunningStandin } from './support/index.ts';

const RUNNER = 'stigmer-agent-runner';

describe('scenario A: loopback-only Ollama on the host, agent-runner in a bridge container', () => {
  let image: string;
  let port: number;
  let standin: RunningStandin | undefined;

  beforeAll(async () => {
    await requireDocker();
    image = await buildHostUsrImage();
    // A random port keeps the test independent of anything on 11434; the runner's
    // OLLAMA_BASE_URL carries it, which is where stigmer-setup reads it from.
    port = await freePort();
    await removeContainers(RUNNER);
    await sh({ timeout: '60s' })`docker run -d --name ${RUNNER} --add-host=host.docker.internal:host-gateway -e ${`OLLAMA_BASE_URL=http://host.docker.internal:${port}`} -v /usr:/usr:ro ${image} sleep 3600`;
  });

  afterAll(async () => {
    await standin?.stop();
    await removeContainers(RUNNER);
  });

  it('doctor fails and says the container is refused because Ollama listens on loopback only', async () => {
    standin = await startStandin({ ollamaHost: `127.0.0.1:${port}` });
    const run = await runOnHost(['doctor', '--json']);
    const report = parseReport(run);
    expect(run.exitCode).toBe(1);
    expect(report.ok).toBe(false);
    const probe = check(report, 'container.probe');
    expect(probe.status).toBe('fail');
    expect(probe.message).toContain('refused: Ollama listens on loopback only');
    expect(probe.message).toContain(`http://host.docker.internal:${port}`);
    expect(check(report, 'ollama.listener').message).toContain(`127.0.0.1:${port}`);
    expect(check(report, 'ollama.host-probe').status).toBe('ok');

    // The same finding, brew-doctor style, for a person.
    const human = await runOnHost(['doctor']);
    expect(human.exitCode).toBe(1);
    expect(human.stdout).toMatch(/✖ container\.probe .*refused: Ollama listens on loopback only/);
    // A hand-started process has no configuration to change: the fix is to restart it with the variable.
    expect(human.stdout).toContain(`Fix: Stop it (kill ${standin.child.pid}), then start it with: OLLAMA_HOST=0.0.0.0:${port} ollama serve`);
    expect(human.stdout).toMatch(/checks passed \(.*1 failed/);
  });

  it('setup refuses to pretend it can fix a hand-started Ollama, and changes nothing', async () => {
    const run = await runOnHost(['--yes', '--json']);
    const report = parseReport(run);
    expect(run.exitCode).toBe(1);
    expect(report.strategy).toBe('linux-manual');
    expect(report.changes).toEqual([]);
    expect(run.stdout).toContain(`OLLAMA_HOST=0.0.0.0:${port} ollama serve`);
  });

  it('doctor passes once the stand-in is rebound to 0.0.0.0', async () => {
    await standin?.stop();
    standin = await startStandin({ ollamaHost: `0.0.0.0:${port}` });
    const run = await runOnHost(['doctor', '--json']);
    const report = parseReport(run);
    expect(run.exitCode, JSON.stringify(report.checks, null, 2)).toBe(0);
    expect(report.ok).toBe(true);
    expect(check(report, 'container.probe')).toMatchObject({ status: 'ok' });
    expect(check(report, 'container.probe').message).toContain('1 model');
    expect(check(report, 'ollama.listener').message).toContain('all interfaces');
    expect(check(report, 'ollama.exposure').status).toBe('warn');
  });
});
