/**
 * Runtimes and installations other than the seed's, on the real dockerd:
 *  - a runtime that forwards host.docker.internal to the host's loopback (what Colima/Lima,
 *    Podman machine and Rancher Desktop do with gvproxy): emulated here by the kernel itself, a
 *    DNAT from the Docker bridge to 127.0.0.1 with route_localnet. Setup must prove the route
 *    (a foreign Host header gets 403) and change nothing;
 *  - Ollama running in a container, its port published by docker-proxy: reported as that.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check, parseReport, runOnHost } from './cli.ts';
import { buildHostUsrImage, freePort, REPO_DIR, removeContainers, requireDocker, sh, shTry, startStandin, waitFor, type RunningStandin } from './support/index.ts';

const RUNNER = 'stigmer-agent-runner';
const ROUTE_LOCALNET = '/proc/sys/net/ipv4/conf/docker0/route_localnet';

describe('a runtime that forwards host.docker.internal to the host loopback', () => {
  let port: number;
  let standin: RunningStandin | undefined;
  let rule: string[] = [];

  beforeAll(async () => {
    await requireDocker();
    const image = await buildHostUsrImage();
    port = await freePort();
    standin = await startStandin({ ollamaHost: `127.0.0.1:${port}` });
    await removeContainers(RUNNER);
    await sh({ timeout: '60s' })`docker run -d --name ${RUNNER} --add-host=host.docker.internal:host-gateway -e ${`OLLAMA_BASE_URL=http://host.docker.internal:${port}`} -v /usr:/usr:ro ${image} sleep 3600`;
    // Traffic from the bridge to the gateway's port goes to 127.0.0.1, as gvproxy/vpnkit dial the host's loopback.
    writeFileSync(ROUTE_LOCALNET, '1');
    rule = ['PREROUTING', '-i', 'docker0', '-p', 'tcp', '--dport', String(port), '-j', 'DNAT', '--to-destination', `127.0.0.1:${port}`];
    await sh`iptables -t nat -I ${rule}`;
  });

  afterAll(async () => {
    if (rule.length) await shTry`iptables -t nat -D ${rule}`;
    writeFileSync(ROUTE_LOCALNET, '0');
    await standin?.stop();
    await removeContainers(RUNNER);
  });

  it('doctor passes with Ollama still on loopback, and names the proof: a foreign Host header gets 403', async () => {
    const run = await runOnHost(['doctor', '--json']);
    const report = parseReport(run);
    expect(run.exitCode, JSON.stringify(report.checks, null, 2)).toBe(0);
    expect(check(report, 'container.probe').message).toContain('a foreign Host header gets 403');
    expect(check(report, 'ollama.listener')).toMatchObject({ status: 'ok' });
    expect(check(report, 'ollama.listener').message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port} \\(pid \\d+: .*\\) only; that is enough here`));
    expect(check(report, 'ollama.exposure').message).toBe('Only programs on this machine can connect to Ollama.');
  });

  it('setup --yes changes nothing and says that binding 0.0.0.0 would only expose Ollama', async () => {
    const run = await runOnHost(['--yes', '--json']);
    const report = parseReport(run) as ReturnType<typeof parseReport> & { summary: string };
    expect(run.exitCode).toBe(0);
    expect(report.changes).toEqual([]);
    expect(report.summary).toContain('so binding 0.0.0.0 would only expose Ollama to your network');
    expect((await sh`ss -ltnH ${`sport = :${port}`}`).stdout.trim().split(/\s+/)[3]).toBe(`127.0.0.1:${port}`);
  });
});

describe('Ollama in a Docker container, published by docker-proxy', () => {
  const OLLAMA = 'stigmer-e2e-ollama-in-docker';
  let port: number;

  beforeAll(async () => {
    await requireDocker();
    const image = await buildHostUsrImage();
    port = await freePort();
    await removeContainers(OLLAMA);
    await sh({ timeout: '60s' })`docker run -d --name ${OLLAMA} -p ${`127.0.0.1:${port}:11434`} -e OLLAMA_HOST=0.0.0.0:11434 -v /usr:/usr:ro -v ${`${REPO_DIR}:/repo:ro`} ${image} /usr/bin/node /repo/test/support/fake-ollama.mjs serve`;
    await waitFor(async () => ((await shTry`curl -sf ${`http://127.0.0.1:${port}/api/version`}`).exitCode === 0 ? true : undefined), { timeoutMs: 30_000, intervalMs: 200, what: 'the containerised stand-in' });
  });

  afterAll(async () => {
    await removeContainers(OLLAMA);
  });

  it('doctor reports it as a container published on 127.0.0.1, not as "not installed"', async () => {
    const report = parseReport(await runOnHost(['doctor', '--json', '--host', `127.0.0.1:${port}`]));
    expect(report.strategy).toBe('linux-docker');
    expect(check(report, 'ollama.listener').message).toContain('docker-proxy');
  });

  it('setup changes nothing and gives the republish command', async () => {
    const run = await runOnHost(['--yes', '--json', '--host', `0.0.0.0:${port}`]);
    const report = parseReport(run) as ReturnType<typeof parseReport> & { error: string };
    expect(run.exitCode).toBe(1);
    expect(report.changes).toEqual([]);
    expect(report.error).toContain(`Ollama runs in a Docker container, which stigmer-setup does not reconfigure. Fix: It is published on 127.0.0.1 only.`);
    expect(report.error).toContain(`-p ${port}:11434`);
  });
});
