/**
 * doctor, against the field's failure classes injected for real: a real dockerd, real containers,
 * real iptables, real proxies and listeners, and the stand-in Ollama. Each case sets up one
 * failure, runs the built CLI on the host as a user would, asserts that doctor names it (check id,
 * message) with the right fix, and puts the machine back as it was, even when the assertions fail.
 *
 * No DNS query leaves the machine: containers that must fail a name lookup get --dns 127.0.0.1, so
 * the lookup goes to a port nothing listens on inside the container itself.
 */
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { check, parseReport, runOnHost, type JsonReport } from './cli.ts';
import { bridgeGateway, buildHostUsrImage, freePort, REPO_DIR, removeContainers, requireDocker, sh, shTry, startStandin, waitFor, type RunningStandin } from './support/index.ts';

const RUNNER = 'stigmer-agent-runner';

/** true once something accepts TCP connections on 127.0.0.1:port, else undefined (for waitFor). */
function accepts(port: number): Promise<true | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(undefined));
  });
}
const OLLAMA_CONTAINER = 'stigmer-e2e-ollama';

describe('doctor names each failure class from the field, with its fix', () => {
  let image: string;
  let gateway: string;
  let subnet: string;
  let port: number;
  let home: string;
  /** Undo steps for the case that is running, run in reverse order after it. */
  let restore: (() => Promise<unknown>)[] = [];
  const standins: RunningStandin[] = [];

  async function standin(ollamaHost: string, env: Record<string, string> = {}): Promise<RunningStandin> {
    const started = await startStandin({ ollamaHost, env });
    standins.push(started);
    return started;
  }

  /** The agent-runner as Stigmer's docs start it on Linux, plus whatever the case adds. */
  async function runner(extra: string[], baseUrl = `http://host.docker.internal:${port}`): Promise<void> {
    await removeContainers(RUNNER);
    restore.push(() => removeContainers(RUNNER));
    await sh({ timeout: '60s' })`docker run -d --name ${RUNNER} ${extra} -e ${`OLLAMA_BASE_URL=${baseUrl}`} -v /usr:/usr:ro ${image} sleep 3600`;
  }

  async function doctor(env: Record<string, string> = {}): Promise<{ report: JsonReport; human: string; exitCode: number | null }> {
    const runEnv = { HOME: home, ...env };
    const [json, human] = await Promise.all([runOnHost(['doctor', '--json'], runEnv), runOnHost(['doctor'], runEnv)]);
    return { report: parseReport(json), human: human.stdout, exitCode: json.exitCode };
  }

  beforeAll(async () => {
    await requireDocker();
    image = await buildHostUsrImage();
    gateway = await bridgeGateway();
    subnet = (await sh`docker network inspect bridge -f ${'{{range .IPAM.Config}}{{.Subnet}} {{end}}'}`).stdout.trim().split(/\s+/)[0] || '172.17.0.0/16';
  });

  afterEach(async () => {
    for (const step of restore.reverse()) await step().catch(() => undefined);
    restore = [];
    await Promise.all(standins.splice(0).map((running) => running.stop()));
    rmSync(home, { recursive: true, force: true });
  });

  afterAll(async () => {
    await removeContainers(RUNNER, OLLAMA_CONTAINER);
  });

  // A fresh port and an empty home for every case: nothing one case leaves can decide the next.
  beforeEach(async () => {
    port = await freePort();
    home = mkdtempSync(path.join(os.tmpdir(), 'stigmer-doctor-home-'));
  });

  it('a bridge container started without --add-host: the alias does not resolve, and the flag to add', async () => {
    await standin(`0.0.0.0:${port}`);
    await runner(['--dns', '127.0.0.1']);
    const { report, exitCode } = await doctor();
    expect(exitCode).toBe(1);
    const alias = check(report, 'container.alias');
    expect(alias.status).toBe('fail');
    expect(alias.message).toBe(`Inside ${RUNNER}, host.docker.internal does not resolve.`);
    expect(alias.fix).toContain('--add-host=host.docker.internal:host-gateway');
    expect(check(report, 'container.probe').message).toContain('name did not resolve: host.docker.internal');
  });

  it('an iptables DROP from the bridge subnet to the port: a timeout, the firewall, and the exact rule to add', async () => {
    await standin(`0.0.0.0:${port}`);
    await runner(['--add-host=host.docker.internal:host-gateway']);
    const rule = ['INPUT', '-s', subnet, '-p', 'tcp', '--dport', String(port), '-j', 'DROP'];
    await sh`iptables -I ${rule}`;
    restore.push(() => sh`iptables -D ${rule}`);
    const { report, exitCode } = await doctor();
    expect(exitCode).toBe(1);
    expect(check(report, 'container.probe').message).toContain('timed out');
    const firewall = check(report, 'host.firewall');
    expect(firewall.status).toBe('fail');
    expect(firewall.message).toContain('timed out');
    expect(firewall.message).toContain(`-A INPUT -s ${subnet}`);
    expect(firewall.message).toContain('-j DROP');
    expect(firewall.fix).toBe(`sudo iptables -I INPUT -s ${subnet} -p tcp --dport ${port} -j ACCEPT`);
  });

  it('a container HTTP_PROXY that answers HTML: a proxy captures the route, with NO_PROXY', async () => {
    await standin(`0.0.0.0:${port}`);
    const proxy = http.createServer((_request, response) => {
      response.writeHead(200, { 'Content-Type': 'text/html' });
      response.end('<html><body><h1>Corporate proxy</h1>Access denied.</body></html>');
    });
    await new Promise<void>((resolve) => proxy.listen(0, gateway, resolve));
    restore.push(() => new Promise((resolve) => proxy.close(resolve)));
    const proxyUrl = `http://${gateway}:${(proxy.address() as { port: number }).port}`;
    await runner(['--add-host=host.docker.internal:host-gateway', '-e', `HTTP_PROXY=${proxyUrl}`]);
    const { report, exitCode } = await doctor();
    expect(exitCode).toBe(1);
    expect(check(report, 'container.probe').message).toContain('non-Ollama answer (HTTP 200: <html>');
    const finding = check(report, 'container.proxy');
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain(`HTTP_PROXY=${proxyUrl}`);
    expect(finding.fix).toContain(`-e NO_PROXY=host.docker.internal,${gateway}`);
  });

  it('two listeners (127.0.0.1 and the bridge address): a conflict that names both processes', async () => {
    const local = await standin(`127.0.0.1:${port}`);
    const bridged = await standin(`${gateway}:${port}`);
    await runner(['--add-host=host.docker.internal:host-gateway']);
    const { report } = await doctor();
    const conflict = check(report, 'ollama.conflict');
    expect(conflict.status).toBe('warn');
    expect(conflict.message).toContain(`pid ${local.child.pid}: `);
    expect(conflict.message).toContain(`(on 127.0.0.1:${port})`);
    expect(conflict.message).toContain(`pid ${bridged.child.pid}: `);
    expect(conflict.message).toContain(`(on ${gateway}:${port})`);
  });

  it('a non-Ollama server on the port: a conflict that names its process', async () => {
    const other = spawn(process.execPath, ['-e', `require('http').createServer((q, s) => s.end('<html>not ollama</html>')).listen(${port}, '127.0.0.1')`], { stdio: 'ignore' });
    restore.push(async () => other.kill('SIGKILL'));
    await waitFor(() => accepts(port), { timeoutMs: 10_000, what: 'the non-Ollama server' });
    await runner(['--add-host=host.docker.internal:host-gateway']);
    const { report, exitCode } = await doctor();
    expect(exitCode).toBe(1);
    const conflict = check(report, 'ollama.conflict');
    expect(conflict.status).toBe('fail');
    expect(conflict.message).toContain(`Port ${port} is held by pid ${other.pid}: ${process.execPath} -e`);
    expect(conflict.message).toContain('which is not Ollama');
    expect(conflict.fix).toContain(`kill ${other.pid}`);
  });

  it('the stand-in on [::1] only: IPv6 loopback only', async () => {
    await standin(`[::1]:${port}`);
    await runner(['--add-host=host.docker.internal:host-gateway']);
    const { report, exitCode } = await doctor();
    expect(exitCode).toBe(1);
    const ipv6 = check(report, 'ollama.ipv6');
    expect(ipv6.status).toBe('fail');
    expect(ipv6.message).toBe(`Ollama listens on [::1]:${port} only: IPv6 loopback.`);
    expect(ipv6.fix).toContain(`OLLAMA_HOST=0.0.0.0:${port} ollama serve`);
  });

  it('the stand-in reporting 0.16.0 on 0.0.0.0: the version warning', async () => {
    await standin(`0.0.0.0:${port}`, { STANDIN_VERSION: '0.16.0' });
    await runner(['--add-host=host.docker.internal:host-gateway']);
    const { report } = await doctor();
    const version = check(report, 'ollama.version');
    expect(version.status).toBe('warn');
    expect(version.message).toMatch(/^Ollama 0\.16\.0 is older than 0\.17\.1 and listens beyond loopback/);
    expect(version.why).toContain('CVE-2026-7482');
    expect(version.fix).toBe('curl -fsSL https://ollama.com/install.sh | sh');
  });

  it('config.yaml naming a model that is not pulled: the exact ollama pull', async () => {
    await standin(`127.0.0.1:${port}`, { STANDIN_MODELS: 'qwen2.5-coder:7b' });
    mkdirSync(path.join(home, '.stigmer'));
    writeFileSync(path.join(home, '.stigmer', 'config.yaml'), `backend:\n  type: local\n  local:\n    llm:\n      provider: ollama\n      model: llama3.2:1b\n      base_url: http://localhost:${port}\n`, { mode: 0o600 });
    const { report } = await doctor();
    const model = check(report, 'ollama.model');
    expect(model.status).toBe('warn');
    expect(model.message).toContain(`llama3.2:1b (from ${path.join(home, '.stigmer', 'config.yaml')}) is not pulled`);
    expect(model.fix).toBe('ollama pull llama3.2:1b');
  });

  it('a malformed config.yaml: a warning with the file and the line, not a crash', async () => {
    await standin(`127.0.0.1:${port}`);
    mkdirSync(path.join(home, '.stigmer'));
    const file = path.join(home, '.stigmer', 'config.yaml');
    writeFileSync(file, 'backend:\n  type: local\n  local:\n    llm:\n      model: "qwen2.5-coder:7b\n      base_url: http://localhost:11434\n', { mode: 0o600 });
    const { report, human } = await doctor();
    const config = check(report, 'stigmer.config');
    expect(config.status).toBe('warn');
    expect(config.message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5: `));
    expect(config.fix).toContain(`Fix line 5 of ${file}`);
    expect(human).toContain(`! stigmer.config`);
  });

  it('a healthy machine: only ✓ lines, exit 0, and --json carries the same findings', async () => {
    // Ollama in a container published on 127.0.0.1 (a managed, lasting install), the runner on the
    // host's network as Stigmer starts it on Linux, the model pulled, Stigmer's config pointing at it.
    await removeContainers(OLLAMA_CONTAINER);
    restore.push(() => removeContainers(OLLAMA_CONTAINER));
    await sh({ timeout: '60s' })`docker run -d --name ${OLLAMA_CONTAINER} -p ${`127.0.0.1:${port}:11434`} -e OLLAMA_HOST=0.0.0.0:11434 -v /usr:/usr:ro -v ${`${REPO_DIR}:/repo:ro`} ${image} /usr/bin/node /repo/test/support/fake-ollama.mjs serve`;
    await waitFor(async () => ((await shTry`curl -sf ${`http://127.0.0.1:${port}/api/version`}`).exitCode === 0 ? true : undefined), { timeoutMs: 20_000, what: 'the stand-in in its container' });
    await runner(['--network', 'host'], `http://localhost:${port}`);
    mkdirSync(path.join(home, '.stigmer'));
    writeFileSync(path.join(home, '.stigmer', 'config.yaml'), `backend:\n  type: local\n  local:\n    llm:\n      provider: ollama\n      model: qwen2.5-coder:7b\n      base_url: http://localhost:${port}\n`, { mode: 0o600 });
    const { report, human, exitCode } = await doctor();
    expect(report.checks.filter((finding) => finding.status !== 'ok'), JSON.stringify(report.checks, null, 2)).toEqual([]);
    expect(exitCode).toBe(0);
    const lines = human.trimEnd().split('\n');
    for (const line of lines) expect(line).toMatch(/^✓ /);
    // Every finding of --json is a ✓ line of the human output, in the same order, with the same words.
    expect(lines.slice(0, -1)).toEqual(report.checks.map((finding) => expect.stringMatching(new RegExp(`^✓ ${finding.id.replace('.', '\\.')} +${finding.message.slice(0, 40).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))));
    expect(lines.at(-1)).toBe(`✓ All ${report.checks.length} checks passed`);
  });
});
