/**
 * No agent-runner container: doctor probes from a throwaway container of a python image that is
 * already present locally (`docker run --rm --pull=never --add-host=host.docker.internal:host-gateway`),
 * and never pulls one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check, parseReport, runOnHost } from './cli.ts';
import { buildPythonImage, freePort, removeContainers, requireDocker, sh, startStandin, type RunningStandin } from './support/index.ts';

describe('container probe without an agent-runner container', () => {
  let image: string;
  let port: number;
  let standin: RunningStandin | undefined;

  beforeAll(async () => {
    await requireDocker();
    await removeContainers('stigmer-agent-runner');
    image = await buildPythonImage();
    port = await freePort();
  });

  afterAll(async () => {
    await standin?.stop();
  });

  it('is refused from a local python image while Ollama is on loopback', async () => {
    standin = await startStandin({ ollamaHost: `127.0.0.1:${port}` });
    const report = parseReport(await runOnHost(['doctor', '--json', '--host', `0.0.0.0:${port}`]));
    const probe = check(report, 'container.probe');
    // No Stigmer on this host (no runner container, no `stigmer` on PATH, no ~/.stigmer): nothing
    // needs the route, so the refusal is a note, with the same fix for a container that does.
    expect(probe.status).toBe('note');
    expect(probe.message).toContain(`From docker run ${image}, http://host.docker.internal:${port}: refused: Ollama listens on loopback only`);
    expect(probe.message).toContain('No Stigmer was found here, so no consumer needs this route yet.');
    // A probe container is run with --rm: nothing is left behind.
    expect((await sh`docker ps -a --filter ${`ancestor=${image}`} --format ${'{{.ID}}'}`).stdout.trim()).toBe('');
  });

  it('answers once Ollama listens on all interfaces', async () => {
    await standin?.stop();
    standin = await startStandin({ ollamaHost: `0.0.0.0:${port}` });
    const report = parseReport(await runOnHost(['doctor', '--json', '--host', `0.0.0.0:${port}`]));
    expect(check(report, 'container.probe')).toMatchObject({ status: 'ok' });
    expect(report.ok).toBe(true);
  });

  it('skips, and says how to get an image, when no local image has python', async () => {
    // Hide the python image for this run under a name the probe does not look for (a fresh
    // machine has no other python or agent-runner image; CI is one).
    await sh`docker tag ${image} stigmer-e2e/hidden-python:1`;
    await sh`docker rmi ${image}`;
    try {
      const report = parseReport(await runOnHost(['doctor', '--json', '--host', `0.0.0.0:${port}`]));
      const probe = check(report, 'container.probe');
      expect(probe.status).toBe('skip');
      expect(probe.message).toContain('never pulls images on its own');
      expect(probe.fix).toContain('docker pull python:3.11-slim');
    } finally {
      await sh`docker tag stigmer-e2e/hidden-python:1 ${image}`;
      await sh`docker rmi stigmer-e2e/hidden-python:1`;
    }
  });
});
