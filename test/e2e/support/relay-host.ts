// The relay's e2e host: a Debian 12 systemd container that runs its own rootful dockerd (docker.io
// as a systemd unit), the stand-in Ollama on 127.0.0.1:11434 as ollama.service, and a network
// namespace standing for a LAN neighbour. The containers it starts inside are real bridge
// containers of that inner engine, so "a container reaches the host's gateway address" and "the LAN
// does not" are measured, not mocked.
//
// Facts of this machine that shape it: cgroup v1 (systemd's IPAddressAllow= is not enforced, so
// the relay's iptables protection is the one exercised), docker 20.10 with CAP_SYS_RESOURCE missing
// from our bounding set (so `--privileged` is refused by runc: we add every other capability and
// lift the confined /proc paths instead, which is what nested dockerd needs).
import fs from 'node:fs';
import path from 'node:path';
import { dockerExec, dockerExecOk, imageExists, removeContainers } from './docker.ts';
import { CACHE_DIR, debianMirror, prepareSystemdRootfs, PYTHON_IMAGE } from './images.ts';
import { sh, shTry, waitFor } from './shell.ts';
import { installOllamaUnit, startSystemdContainer } from './systemd.ts';

/** Bump the tag when the package list or the rootfs tweaks change. */
export const RELAY_HOST_IMAGE = 'stigmer-e2e/relay-host:1';

/** Packages on top of debootstrap's minbase: systemd as PID 1, the inner engine, iptables, python3 for the LAN client. */
const RELAY_HOST_PACKAGES = 'systemd,systemd-sysv,iproute2,passwd,sudo,dbus,docker.io,iptables,python3';

/** The LAN neighbour: a network namespace on a veth pair. 10.x so it collides with neither docker's 172.x pools nor the outer bridge. */
export const LAN_NETNS = 'lan';
export const LAN_HOST_ADDRESS = '10.203.0.1';
export const LAN_NEIGHBOUR_ADDRESS = '10.203.0.2';
/** A user-defined network inside the host: its bridge is br-<id>, not docker0. */
export const SECOND_NETWORK = 'stigmer-e2e-relay-second';

const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function log(msg: string): void {
  process.stderr.write(`[e2e] ${msg}\n`);
}

/**
 * Like buildSystemdImage, with docker.io, iptables and python3 in the debootstrap. The rootfs is
 * cached in .cache/e2e (debootstrap needs the mirror; 3 attempts), the image by name.
 */
export async function buildRelayHostImage(): Promise<string> {
  if (await imageExists(RELAY_HOST_IMAGE)) return RELAY_HOST_IMAGE;
  const started = Date.now();
  const rootfs = path.join(CACHE_DIR, `relay-host-rootfs-${RELAY_HOST_IMAGE.split(':')[1]}`);
  const marker = `${rootfs}.ok`;
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  if (!fs.existsSync(marker)) {
    const mirror = debianMirror();
    let lastErr = '';
    let ok = false;
    for (let attempt = 1; attempt <= 3 && !ok; attempt++) {
      fs.rmSync(rootfs, { recursive: true, force: true });
      log(`debootstrap bookworm (+docker.io) from ${mirror} (attempt ${attempt}/3)`);
      const r = await shTry({ timeout: '25m' })`debootstrap --variant=minbase --include=${RELAY_HOST_PACKAGES} bookworm ${rootfs} ${mirror}`;
      if (r.exitCode === 0) ok = true;
      else lastErr = `${r.stdout.slice(-2000)}${r.stderr.slice(-2000)}`;
    }
    if (!ok) throw new Error(`debootstrap failed 3 times:\n${lastErr}`);
    prepareSystemdRootfs(rootfs);
    fs.writeFileSync(path.join(rootfs, 'etc/hostname'), 'stigmer-e2e-relay\n');
    fs.writeFileSync(marker, new Date().toISOString());
  }
  await sh({ timeout: '10m' })`tar -C ${rootfs} --numeric-owner -c . | docker import --change ${`ENV ${PATH_ENV}`} --change ${'ENV container=docker'} - ${RELAY_HOST_IMAGE}`;
  log(`built ${RELAY_HOST_IMAGE} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return RELAY_HOST_IMAGE;
}

export interface RelayHost {
  name: string;
  volume: string;
  /** The inner default bridge's gateway (what host-gateway resolves to in there), read from the inner engine. */
  gateway: string;
  /** The inner default bridge's subnet. */
  bridgeSubnet: string;
  /** The host's address towards the LAN namespace. */
  lanAddress: string;
}

/**
 * Everything beyond startSystemdContainer's flags that a nested rootful dockerd needs here: every
 * capability we hold (ALL minus SYS_RESOURCE, which this machine's bounding set lacks, the reason
 * `--privileged` fails), no AppArmor/seccomp confinement, writable /proc/sys, and /var/lib/docker on
 * a volume (overlay2 cannot stack on the container's own overlay root).
 */
function nestedEngineArgs(volume: string): string[] {
  return [
    '--cap-add', 'ALL',
    '--cap-drop', 'SYS_RESOURCE',
    '--security-opt', 'apparmor=unconfined',
    '--security-opt', 'systempaths=unconfined',
    '--device-cgroup-rule', 'a *:* rwm',
    '--hostname', 'stigmer-e2e-relay',
    // systemd halts cleanly on SIGRTMIN+3 (it ignores SIGTERM as PID 1): `docker restart` then runs
    // the units' stop commands (the relay's ExecStopPost) and takes ~1 s instead of the 20 s kill timeout.
    '--stop-signal', 'SIGRTMIN+3',
    '-v', `${volume}:/var/lib/docker`,
  ];
}

/** Bounded wait until the inner engine answers. */
export async function waitForInnerDocker(name: string, timeoutMs = 90_000): Promise<void> {
  let last = '';
  try {
    await waitFor(
      async () => {
        const r = await dockerExec(name, ['docker', 'info', '--format', '{{.ServerVersion}}'], { timeout: '10s' });
        last = `${r.stdout}${r.stderr}`.trim();
        return r.exitCode === 0 ? true : undefined;
      },
      { timeoutMs, intervalMs: 1000, what: `dockerd inside ${name}` },
    );
  } catch (err) {
    const journal = await dockerExec(name, ['journalctl', '-u', 'docker', '-u', 'containerd', '--no-pager', '-n', '40']);
    throw new Error(`${(err as Error).message}; last: ${last}\n${journal.stdout}`);
  }
}

/**
 * The inner default bridge. The gateway is read where host-gateway gets it from, docker0's own
 * address: on Debian 12's docker.io 20.10, a default bridge whose subnet dockerd picked itself
 * (172.17/16 routed already, as here) has no Gateway in `docker network inspect`'s IPAM.Config.
 */
export async function innerBridge(name: string): Promise<{ gateway: string; subnet: string }> {
  const ipam = await dockerExecOk(name, ['docker', 'network', 'inspect', 'bridge', '-f', '{{range .IPAM.Config}}{{.Subnet}} {{end}}']);
  const subnet = ipam.trim().split(/\s+/).find((s) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(s));
  const addr = await dockerExecOk(name, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'docker0']);
  const gateway = /\sinet (\d+\.\d+\.\d+\.\d+)\//.exec(addr)?.[1];
  if (!gateway || !subnet) throw new Error(`inner bridge has no IPv4 gateway/subnet: ${ipam} / ${addr}`);
  return { gateway, subnet };
}

/**
 * The LAN neighbour: namespace `lan` on a veth pair, 10.203.0.2 ↔ the host's 10.203.0.1, with a
 * route for the inner bridge subnet via the host — the routed neighbour that Linux would deliver
 * gateway-addressed packets for, whatever interface they come in on. Idempotent (after a restart
 * of the host container the namespace is gone and is made again).
 */
export async function setUpLanNamespace(name: string, bridgeSubnet: string): Promise<void> {
  const script = [
    'set -e',
    `ip netns del ${LAN_NETNS} 2>/dev/null || true`,
    `ip link del veth-lan-host 2>/dev/null || true`,
    `ip netns add ${LAN_NETNS}`,
    'ip link add veth-lan-host type veth peer name veth-lan',
    `ip link set veth-lan netns ${LAN_NETNS}`,
    `ip addr add ${LAN_HOST_ADDRESS}/24 dev veth-lan-host`,
    'ip link set veth-lan-host up',
    `ip netns exec ${LAN_NETNS} ip addr add ${LAN_NEIGHBOUR_ADDRESS}/24 dev veth-lan`,
    `ip netns exec ${LAN_NETNS} ip link set veth-lan up`,
    `ip netns exec ${LAN_NETNS} ip link set lo up`,
    `ip netns exec ${LAN_NETNS} ip route add "$1" via ${LAN_HOST_ADDRESS}`,
  ].join('\n');
  await dockerExecOk(name, ['sh', '-c', script, 'sh', bridgeSubnet]);
}

/**
 * Start the host (an existing one of that name is removed with its volume), wait for systemd and
 * the inner engine, install the stand-in as ollama.service, load the runner image, create the
 * second network and the LAN namespace.
 */
export async function startRelayHost(name: string): Promise<RelayHost> {
  const volume = `${name}-docker`;
  await removeRelayHost(name);
  await sh({ timeout: '60s' })`docker volume create ${volume}`;
  await startSystemdContainer(name, nestedEngineArgs(volume), { image: RELAY_HOST_IMAGE, bootTimeoutMs: 90_000 });
  await waitForInnerDocker(name);
  // The runner image: nothing can be pulled here, so the outer engine's local image is handed over.
  await sh({ timeout: '180s' })`docker save ${PYTHON_IMAGE} | docker exec -i ${name} docker load`;
  await installOllamaUnit(name);
  const net = await dockerExec(name, ['docker', 'network', 'inspect', SECOND_NETWORK], { timeout: '20s' });
  if (net.exitCode !== 0) await dockerExecOk(name, ['docker', 'network', 'create', SECOND_NETWORK], { timeout: '30s' });
  const bridge = await innerBridge(name);
  await setUpLanNamespace(name, bridge.subnet);
  return { name, volume, gateway: bridge.gateway, bridgeSubnet: bridge.subnet, lanAddress: LAN_HOST_ADDRESS };
}

export async function removeRelayHost(name: string): Promise<void> {
  await removeContainers(name);
  await shTry({ timeout: '60s' })`docker volume rm -f ${`${name}-docker`}`;
}

/** Outcome of one HTTP request made by python's urllib (as Stigmer's runner makes them). */
export type UrllibResult =
  | { status: number; bytes: number; lines: number; sha256: string; textSha256: string; done: boolean; body: string }
  | { error: 'refused' | 'timeout' | 'reset' | 'unreachable' | 'other'; detail: string };

/**
 * urllib client, run either in a runner container or in the LAN namespace. argv: url, Host header
 * ('' = urllib's own), request body ('' = GET). Streams the body, hashing the raw bytes and the
 * concatenated `response` fields of NDJSON lines, so a stream's integrity can be compared between
 * two paths without depending on per-line timestamps. 5 s connect/read timeout.
 */
const URLLIB_CLIENT = String.raw`
import hashlib, json, socket, sys, urllib.request, urllib.error
url, host, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request(url, data=body.encode() if body else None, method='POST' if body else 'GET')
if host:
    req.add_header('Host', host)
def out(o):
    print(json.dumps(o)); sys.exit(0)
def classify(e):
    r = getattr(e, 'reason', e)
    if isinstance(r, ConnectionRefusedError): return 'refused'
    if isinstance(r, ConnectionResetError): return 'reset'
    if isinstance(r, (socket.timeout, TimeoutError)): return 'timeout'
    if isinstance(r, OSError) and r.errno in (101, 113): return 'unreachable'
    return 'other'
try:
    resp = urllib.request.urlopen(req, timeout=5)
    status = resp.status
except urllib.error.HTTPError as e:
    resp = e; status = e.code
except Exception as e:
    out({'error': classify(e), 'detail': repr(e)})
raw, text, lines, done, buf, head = hashlib.sha256(), hashlib.sha256(), 0, False, b'', b''
n = 0
try:
    while True:
        chunk = resp.read(65536)
        if not chunk: break
        n += len(chunk); raw.update(chunk)
        if len(head) < 2000: head += chunk[:2000]
        buf += chunk
        *complete, buf = buf.split(b'\n')
        for line in complete:
            if not line.strip(): continue
            lines += 1
            try:
                o = json.loads(line)
            except ValueError:
                continue  # not NDJSON (an HTML page, say): counted, not parsed
            if isinstance(o, dict):
                text.update(str(o.get('response', '')).encode())
                done = done or o.get('done') is True
except Exception as e:
    out({'error': classify(e), 'detail': 'mid-body after %d bytes: %r' % (n, e)})
if buf.strip():
    try:
        o = json.loads(buf); lines += 1
        if isinstance(o, dict):
            text.update(str(o.get('response', '')).encode()); done = done or o.get('done') is True
    except ValueError:
        pass
out({'status': status, 'bytes': n, 'lines': lines, 'sha256': raw.hexdigest(), 'textSha256': text.hexdigest(), 'done': done, 'body': head[:2000].decode('utf-8', 'replace')})
`;

export interface UrllibRequest {
  url: string;
  /** Host header to send; default urllib's (the URL's authority). */
  host?: string;
  /** JSON body; makes it a POST. */
  body?: unknown;
}

function parseUrllib(stdout: string, stderr: string, exitCode: number | null): UrllibResult {
  try {
    return JSON.parse(stdout.trim().split('\n').pop() ?? '') as UrllibResult;
  } catch {
    return { error: 'other', detail: `client gave no result (exit ${exitCode}): ${stdout}${stderr}` };
  }
}

function clientArgs(req: UrllibRequest): string[] {
  return [req.url, req.host ?? '', req.body === undefined ? '' : JSON.stringify(req.body)];
}

/** urllib from a fresh runner container on `network` of the inner engine (bridge by default), with host.docker.internal:host-gateway like Stigmer's runner. */
export async function urllibFromContainer(host: string, req: UrllibRequest, network = 'bridge'): Promise<UrllibResult> {
  const r = await dockerExec(
    host,
    ['docker', 'run', '--rm', '--network', network, '--add-host', 'host.docker.internal:host-gateway', PYTHON_IMAGE, 'python3', '-c', URLLIB_CLIENT, ...clientArgs(req)],
    { timeout: '90s' },
  );
  return parseUrllib(r.stdout, r.stderr, r.exitCode);
}

/** urllib from the LAN neighbour namespace. */
export async function urllibFromLan(host: string, req: UrllibRequest): Promise<UrllibResult> {
  const r = await dockerExec(host, ['ip', 'netns', 'exec', LAN_NETNS, 'python3', '-c', URLLIB_CLIENT, ...clientArgs(req)], { timeout: '60s' });
  return parseUrllib(r.stdout, r.stderr, r.exitCode);
}

/** urllib on the host itself (its own loopback: the reference path without the relay). */
export async function urllibOnHost(host: string, req: UrllibRequest): Promise<UrllibResult> {
  const r = await dockerExec(host, ['python3', '-c', URLLIB_CLIENT, ...clientArgs(req)], { timeout: '60s' });
  return parseUrllib(r.stdout, r.stderr, r.exitCode);
}

/** Local addresses listening on TCP `port` in the host (ss -Hltn), e.g. ["127.0.0.1:11434"]. */
export async function listenersOn(host: string, port: number): Promise<string[]> {
  const out = await dockerExecOk(host, ['ss', '-Hltn', `sport = :${port}`]);
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[3])
    .filter((x): x is string => !!x)
    .sort();
}

/**
 * `docker restart` the host (its volume keeps the inner engine's state), then wait, bounded, for
 * systemd, the inner engine and ollama.service; the LAN namespace lives in /run (tmpfs) and is made
 * again.
 */
export async function restartRelayHost(host: RelayHost): Promise<void> {
  await sh({ timeout: '90s' })`docker restart -t 20 ${host.name}`;
  let last = '';
  await waitFor(
    async () => {
      const r = await dockerExec(host.name, ['systemctl', 'is-system-running'], { timeout: '10s' });
      last = r.stdout.trim();
      return last === 'running' || last === 'degraded' ? true : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 500, what: `systemd in ${host.name} after restart` },
  ).catch((err: Error) => {
    throw new Error(`${err.message} (last state: ${last})`);
  });
  await waitForInnerDocker(host.name);
  await setUpLanNamespace(host.name, host.bridgeSubnet);
}
