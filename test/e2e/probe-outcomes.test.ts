/**
 * The container probe's classification, from inside a real container against real servers we
 * start in sibling containers: a listener that never answers (timed out), one that answers 403,
 * and one that is not Ollama. (Refused and ok are covered by the seed-bug scenario.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check, parseReport, runOnHost } from './cli.ts';
import { buildPythonImage, containerIp, removeContainers, requireDocker, sh } from './support/index.ts';

const RUNNER = 'stigmer-agent-runner';
const SERVERS = { silent: 'stigmer-e2e-silent', forbidden: 'stigmer-e2e-forbidden', other: 'stigmer-e2e-other-http' };

// Listens and accepts nothing: the connect completes from the kernel's backlog, then no answer.
const SILENT = "import socket, time\ns = socket.socket()\ns.bind(('0.0.0.0', 11434))\ns.listen(8)\ntime.sleep(3600)";
const HTTP = (status: number, body: string) =>
  `import http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(${status})\n        self.end_headers()\n        self.wfile.write(b${JSON.stringify(body)})\nhttp.server.HTTPServer(('0.0.0.0', 11434), H).serve_forever()`;

describe('container probe outcomes', () => {
  let image: string;
  const ips: Record<string, string> = {};

  beforeAll(async () => {
    await requireDocker();
    image = await buildPythonImage();
    await removeContainers(RUNNER, ...Object.values(SERVERS));
    const scripts = { silent: SILENT, forbidden: HTTP(403, 'Forbidden'), other: HTTP(200, '<html>corporate proxy</html>') };
    for (const [key, name] of Object.entries(SERVERS)) {
      await sh`docker run -d --name ${name} ${image} python3 -c ${scripts[key as keyof typeof scripts]}`;
      ips[key] = await containerIp(name);
    }
  });

  afterAll(async () => {
    await removeContainers(RUNNER, ...Object.values(SERVERS));
  });

  async function probeFromRunnerTo(server: keyof typeof SERVERS) {
    await removeContainers(RUNNER);
    await sh`docker run -d --name ${RUNNER} -e ${`OLLAMA_BASE_URL=http://${ips[server]}:11434`} ${image} python3 -c ${'import time; time.sleep(3600)'}`;
    const started = Date.now();
    const report = parseReport(await runOnHost(['doctor', '--json']));
    return { finding: check(report, 'container.probe'), seconds: (Date.now() - started) / 1000 };
  }

  it('a listener that never answers is "timed out", within the probe timeout, with a firewall fix', async () => {
    const { finding, seconds } = await probeFromRunnerTo('silent');
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain(`http://${ips.silent}:11434: timed out`);
    expect(finding.fix).toContain('ufw allow in on docker0');
    expect(seconds).toBeLessThan(15);
  });

  it('an HTTP 403 is named as such', async () => {
    const { finding } = await probeFromRunnerTo('forbidden');
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('HTTP 403');
  });

  it('an answer that is not Ollama is named, with the proxy fix', async () => {
    const { finding } = await probeFromRunnerTo('other');
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('non-Ollama answer (HTTP 200: <html>corporate proxy</html>)');
    expect(finding.fix).toContain('NO_PROXY');
  });
});
