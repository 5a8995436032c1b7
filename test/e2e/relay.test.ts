/**
 * The relay on real Linux Docker (issue 14): a systemd host (systemd 252, Debian 12) that runs its
 * own rootful dockerd, the stand-in Ollama on 127.0.0.1:11434 as ollama.service, a bridge runner
 * container, a second user-defined network, and a network namespace standing for a LAN neighbour
 * that routes the inner bridge subnet through the host. The built CLI runs inside the host.
 *
 * One host container for the whole file (it boots in ~5 s); the tests run in order and each
 * builds on the state the previous one left, as a user's machine would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check, parseReport, runInContainer, type JsonReport } from './cli.ts';
import {
  buildPythonImage,
  dockerExec,
  dockerExecOk,
  PYTHON_IMAGE,
  requireDocker,
  waitFor,
  waitForOllamaInContainer,
} from './support/index.ts';
import {
  buildRelayHostImage,
  innerBridge,
  LAN_HOST_ADDRESS,
  listenersOn,
  removeRelayHost,
  restartRelayHost,
  SECOND_NETWORK,
  startRelayHost,
  urllibFromContainer,
  urllibFromLan,
  urllibOnHost,
  type RelayHost,
  type UrllibResult,
} from './support/relay-host.ts';

const HOST = 'stigmer-e2e-relay';
const RUNNER = 'stigmer-agent-runner';
const PORT = 11434;
const SOCKET_UNIT = '/etc/systemd/system/stigmer-ollama-relay.socket';
const SERVICE_UNIT = '/etc/systemd/system/stigmer-ollama-relay.service';
const OLLAMA_DROP_IN = '/etc/systemd/system/ollama.service.d/stigmer-setup.conf';
const CHAIN = 'STIGMER-OLLAMA-RELAY';
/** ~5.2 MB of NDJSON from the stand-in's POST /api/generate. */
const LONG_GENERATE = { model: 'qwen2.5-coder:7b', prompt: 'through the relay', options: { num_predict: 50_000 } };

/** The runner's main process: idles, and exits on SIGTERM (as PID 1 it would otherwise ignore it, and every stop would wait out docker's 10 s). */
const RUNNER_MAIN = 'import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\ntime.sleep(3600)';

type SetupReport = JsonReport & { summary?: string; error?: string; warnings?: string[] };

const describeRun = (r: UrllibResult): string => JSON.stringify('body' in r ? { ...r, body: r.body.slice(0, 200) } : r);
const status = (r: UrllibResult): number | string => ('status' in r ? r.status : r.error);
/** A connection that never got an HTTP answer: refused (RST) or dropped (timeout). */
const notConnected = (r: UrllibResult): boolean => 'error' in r && (r.error === 'refused' || r.error === 'timeout');

describe('the relay: bridge containers reach a loopback Ollama, the LAN does not', () => {
  let host: RelayHost;
  const viaRelay = (path = '/api/version', extra: { host?: string; body?: unknown } = {}, network = 'bridge') =>
    urllibFromContainer(HOST, { url: `http://host.docker.internal:${PORT}${path}`, ...extra }, network);
  const fromRunner = async (): Promise<UrllibResult> => {
    // The runner itself, as `docker exec stigmer-agent-runner python3 -c …` (what stigmer-setup's probe does).
    const script = `import urllib.request,json
try: print(json.dumps({"status": urllib.request.urlopen("http://host.docker.internal:${PORT}/api/version", timeout=5).status, "bytes":0,"lines":0,"sha256":"","textSha256":"","done":False,"body":""}))
except Exception as e:
  r = getattr(e, "reason", e); print(json.dumps({"error": "refused" if isinstance(r, ConnectionRefusedError) else "timeout" if isinstance(r, TimeoutError) else "reset" if isinstance(r, ConnectionResetError) else "other", "detail": repr(e)}))`;
    const r = await dockerExec(HOST, ['docker', 'exec', RUNNER, 'python3', '-c', script], { timeout: '30s' });
    return JSON.parse(r.stdout.trim() || '{"error":"other","detail":"no output"}') as UrllibResult;
  };
  const fileExists = async (path: string) => (await dockerExec(HOST, ['test', '-e', path])).exitCode === 0;
  const chainExists = async () => (await dockerExec(HOST, ['iptables', '-w', '-S', CHAIN])).exitCode === 0;
  const ollamaEnvironment = async () => (await dockerExecOk(HOST, ['systemctl', 'show', 'ollama', '--property=Environment'])).trim();
  /**
   * The runner as Stigmer's Go CLI starts it: on the bridge like macOS/Windows, with host.docker.internal
   * (added by hand here, as the agent-runner's docs say for Linux); on Linux `--network host` with
   * no --add-host, reaching http://localhost:11434 (stigmer.md §1).
   */
  const startRunner = async (network: 'bridge' | 'host') => {
    await dockerExec(HOST, ['docker', 'rm', '-f', RUNNER], { timeout: '30s' });
    const how = network === 'host'
      ? ['--network', 'host', '-e', `OLLAMA_BASE_URL=http://localhost:${PORT}`]
      : ['--add-host', 'host.docker.internal:host-gateway', '-e', `OLLAMA_BASE_URL=http://host.docker.internal:${PORT}`];
    await dockerExecOk(HOST, ['docker', 'run', '-d', '--name', RUNNER, '--restart', 'unless-stopped', ...how, PYTHON_IMAGE, 'python3', '-c', RUNNER_MAIN], { timeout: '60s' });
  };
  /** Which protection the installed socket unit carries (read from the unit, as systemd reads it). */
  const protectionInUnit = async () => {
    const unit = await dockerExecOk(HOST, ['cat', SOCKET_UNIT]);
    return { iptables: unit.includes(`-j ${CHAIN}`), ipAddressAllow: /^IPAddressDeny=any$/m.test(unit) };
  };

  beforeAll(async () => {
    await requireDocker();
    await buildPythonImage();
    await buildRelayHostImage();
    host = await startRelayHost(HOST);
    await startRunner('bridge');
  });

  afterAll(async () => {
    await removeRelayHost(HOST);
  });

  it('harness: the inner engine chose its own bridge subnet, and a routed LAN neighbour reaches a plain listener on the gateway address', async () => {
    // The gateway is read, never assumed: the outer 172.17/16 is routed here, so dockerd picks another.
    expect(host.gateway).not.toBe('172.17.0.1');
    expect(host.bridgeSubnet).toMatch(/^\d+\.\d+\.\d+\.\d+\/\d+$/);
    // Without any protection, Linux delivers the neighbour's packet for the gateway address (the
    // issue's measurement). This is what makes the refusals below the relay's doing.
    // A transient unit, so the listener outlives this `docker exec` and is stopped by name.
    await dockerExecOk(HOST, ['systemd-run', '--unit=stigmer-e2e-plain-listener', 'python3', '-m', 'http.server', '--bind', host.gateway, '18080']);
    try {
      const reached = await waitFor(
        async () => {
          const r = await urllibFromLan(HOST, { url: `http://${host.gateway}:18080/` });
          return 'status' in r ? r : undefined;
        },
        { timeoutMs: 15_000, intervalMs: 500, what: 'the LAN neighbour to reach a listener on the gateway' },
      );
      expect(reached.status).toBe(200);
    } finally {
      await dockerExec(HOST, ['systemctl', 'stop', 'stigmer-e2e-plain-listener']);
    }
  });

  it('before setup: Ollama is on 127.0.0.1 only and the bridge runner is refused', async () => {
    expect(await listenersOn(HOST, PORT)).toEqual([`127.0.0.1:${PORT}`]);
    const r = await fromRunner();
    expect(status(r), describeRun(r)).toBe('refused');
  });

  it('setup --yes installs the relay on the bridge-facing address and leaves Ollama on 127.0.0.1', async () => {
    const run = await runInContainer(HOST, ['--yes', '--json']);
    const report = parseReport(run) as SetupReport;
    expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(report.strategy).toBe('linux-relay');
    const files = report.changes.flatMap((c) => (c.type === 'file' ? [c.path] : []));
    expect(files).toEqual(expect.arrayContaining([SOCKET_UNIT, SERVICE_UNIT]));
    expect(files).not.toContain(OLLAMA_DROP_IN);
    // The relay's socket on the gateway, Ollama's own bind unchanged (ss reads the kernel's table).
    expect(await listenersOn(HOST, PORT)).toEqual([`127.0.0.1:${PORT}`, `${host.gateway}:${PORT}`].sort());
    expect(await ollamaEnvironment()).not.toContain('OLLAMA_HOST');
    expect(await fileExists(OLLAMA_DROP_IN)).toBe(false);
    const socket = await dockerExecOk(HOST, ['cat', SOCKET_UNIT]);
    expect(socket).toContain(`ListenStream=${host.gateway}:${PORT}`);
    expect(await dockerExecOk(HOST, ['systemctl', 'is-active', 'stigmer-ollama-relay.socket'])).toBe('active\n');
    expect(await dockerExecOk(HOST, ['systemctl', 'is-enabled', 'stigmer-ollama-relay.socket'])).toBe('enabled\n');
    // This host mounts cgroup2 at /sys/fs/cgroup/unified (systemd 252's hybrid mode, even on a cgroup
    // v1 machine) and its firewall lets bridge traffic in, so systemd's own IP filter is the choice.
    expect(await protectionInUnit()).toEqual({ iptables: false, ipAddressAllow: true });
    // doctor measures that filter (a connection from 127.0.0.1, not allowed, must be dropped)
    // rather than inferring it from the cgroup2 mount: here systemd does enforce it.
    const relayFinding = check(parseReport(await runInContainer(HOST, ['doctor', '--json'])), 'ollama.relay');
    expect(relayFinding, JSON.stringify(relayFinding)).toMatchObject({ status: 'ok', message: expect.stringContaining('measured in force') });
  });

  it('the runner reaches Ollama through it; a 5 MB stream arrives intact; Host: host.docker.internal passes the 403 guard, a custom alias does not', async () => {
    const runner = await fromRunner();
    expect(status(runner), describeRun(runner)).toBe(200);

    const reference = await urllibOnHost(HOST, { url: `http://127.0.0.1:${PORT}/api/generate`, body: LONG_GENERATE });
    const relayed = await viaRelay('/api/generate', { body: LONG_GENERATE, host: `host.docker.internal:${PORT}` });
    if (!('status' in reference) || !('status' in relayed)) throw new Error(`stream failed: ${describeRun(reference)} / ${describeRun(relayed)}`);
    expect(relayed.status).toBe(200);
    expect(relayed.bytes).toBeGreaterThan(5_000_000);
    expect(relayed.done).toBe(true);
    expect(relayed.lines).toBe(LONG_GENERATE.options.num_predict + 1);
    // Same lines and the same text as on the host's own loopback (timestamps differ, so the raw bytes can't be compared).
    expect({ lines: relayed.lines, text: relayed.textSha256 }).toEqual({ lines: reference.lines, text: reference.textSha256 });

    // The relay is L4: Ollama still sees the container's Host header, and its loopback-only guard still holds.
    const alias = await viaRelay('/api/version', { host: `ollama:${PORT}` });
    expect(status(alias), describeRun(alias)).toBe(403);
  });

  it('a container on a second user-defined network (br-…) reaches it too', async () => {
    const r = await viaRelay('/api/version', {}, SECOND_NETWORK);
    expect(status(r), describeRun(r)).toBe(200);
  });

  it('the LAN neighbour is refused: on the host\'s LAN-facing address, and through the route for the bridge subnet', async () => {
    const lanFacing = await urllibFromLan(HOST, { url: `http://${LAN_HOST_ADDRESS}:${PORT}/api/version` });
    expect(notConnected(lanFacing), describeRun(lanFacing)).toBe(true);
    const routed = await urllibFromLan(HOST, { url: `http://${host.gateway}:${PORT}/api/version`, host: `host.docker.internal:${PORT}` });
    expect(notConnected(routed), describeRun(routed)).toBe(true);
  });

  it('after a restart of the host the relay is back (it binds before docker0 exists: FreeBind), and the LAN is still refused', async () => {
    await restartRelayHost(host);
    await waitForOllamaInContainer(HOST, { timeoutMs: 30_000 });
    expect((await innerBridge(HOST)).gateway).toBe(host.gateway);
    expect(await dockerExecOk(HOST, ['systemctl', 'is-active', 'stigmer-ollama-relay.socket'])).toBe('active\n');
    expect(await listenersOn(HOST, PORT)).toEqual([`127.0.0.1:${PORT}`, `${host.gateway}:${PORT}`].sort());
    await dockerExecOk(HOST, ['docker', 'start', RUNNER], { timeout: '30s' });
    const runner = await fromRunner();
    expect(status(runner), describeRun(runner)).toBe(200);
    const routed = await urllibFromLan(HOST, { url: `http://${host.gateway}:${PORT}/api/version` });
    expect(notConnected(routed), describeRun(routed)).toBe(true);
  });

  it('undo removes both units and the iptables chain; Ollama stays on loopback and the runner is refused again', async () => {
    const run = await runInContainer(HOST, ['undo', '--yes', '--json']);
    expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(await fileExists(SOCKET_UNIT)).toBe(false);
    expect(await fileExists(SERVICE_UNIT)).toBe(false);
    expect(await fileExists('/etc/systemd/system/sockets.target.wants/stigmer-ollama-relay.socket')).toBe(false);
    expect(await chainExists()).toBe(false);
    expect((await dockerExecOk(HOST, ['iptables', '-w', '-S', 'INPUT'])).includes(CHAIN)).toBe(false);
    expect(await listenersOn(HOST, PORT)).toEqual([`127.0.0.1:${PORT}`]);
    const r = await fromRunner();
    expect(status(r), describeRun(r)).toBe('refused');
  });

  it('behind a default-deny firewall, setup protects the relay with its own iptables chain: the runner gets in, the LAN does not, undo removes the chain', async () => {
    // A firewall like ufw's default: INPUT drops what it does not accept, loopback and replies accepted.
    const firewall = ['iptables -w -A INPUT -i lo -j ACCEPT', 'iptables -w -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT', 'iptables -w -P INPUT DROP'];
    await dockerExecOk(HOST, ['sh', '-c', firewall.join(' && ')]);
    try {
      // Before setup nothing gets through (dropped, so a timeout rather than a refusal).
      const blocked = await fromRunner();
      expect(notConnected(blocked), describeRun(blocked)).toBe(true);
      const run = await runInContainer(HOST, ['--yes', '--json']);
      const report = parseReport(run) as SetupReport;
      expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect(report.strategy).toBe('linux-relay');
      expect(await protectionInUnit()).toMatchObject({ iptables: true });
      expect(await chainExists()).toBe(true);
      const runner = await fromRunner();
      expect(status(runner), describeRun(runner)).toBe(200);
      const second = await viaRelay('/api/version', {}, SECOND_NETWORK);
      expect(status(second), describeRun(second)).toBe(200);
      const routed = await urllibFromLan(HOST, { url: `http://${host.gateway}:${PORT}/api/version` });
      expect(notConnected(routed), describeRun(routed)).toBe(true);
      const undo = await runInContainer(HOST, ['undo', '--yes', '--json']);
      expect(undo.exitCode, `${undo.stdout}\n${undo.stderr}`).toBe(0);
      expect(await chainExists()).toBe(false);
      expect((await dockerExecOk(HOST, ['iptables', '-w', '-S', 'INPUT'])).includes(CHAIN)).toBe(false);
      expect(await fileExists(SOCKET_UNIT)).toBe(false);
    } finally {
      await dockerExec(HOST, ['sh', '-c', 'iptables -w -P INPUT ACCEPT; iptables -w -D INPUT -i lo -j ACCEPT; iptables -w -D INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT']);
    }
  });

  it('with a host-network runner, setup changes nothing and says why', async () => {
    await startRunner('host');
    const run = await runInContainer(HOST, ['--yes', '--json']);
    const report = parseReport(run) as SetupReport;
    expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(report.changes).toEqual([]);
    expect(report.summary ?? '').toMatch(/network host|host network|host's network/i);
    expect(await listenersOn(HOST, PORT)).toEqual([`127.0.0.1:${PORT}`]);
    expect(await fileExists(SOCKET_UNIT)).toBe(false);
    // And it is true: the host-network runner reaches Ollama on 127.0.0.1 as it is.
    const ok = await dockerExec(HOST, ['docker', 'exec', RUNNER, 'python3', '-c', `import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:${PORT}/api/version", timeout=5).status)`], { timeout: '30s' });
    expect(ok.stdout.trim()).toBe('200');
  });

  it('with a native Stigmer (agent-runner as a host process, no container), setup changes nothing and says why', async () => {
    await dockerExec(HOST, ['docker', 'rm', '-f', RUNNER], { timeout: '30s' });
    // The TypeScript CLI's layout (stigmer.md §1, §6): the runner's runtime under ~/.stigmer/runtimes/agent-runner/.
    await dockerExecOk(HOST, ['sh', '-c', 'mkdir -p /root/.stigmer/runtimes/agent-runner && printf "backend:\\n  type: local\\n" > /root/.stigmer/config.yaml']);
    try {
      const run = await runInContainer(HOST, ['--yes', '--json']);
      const report = parseReport(run) as SetupReport;
      expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect(report.changes).toEqual([]);
      expect(report.summary ?? '').toMatch(/native|host process/i);
      expect(await listenersOn(HOST, PORT)).toEqual([`127.0.0.1:${PORT}`]);
    } finally {
      await dockerExec(HOST, ['rm', '-rf', '/root/.stigmer']);
    }
  });
});
