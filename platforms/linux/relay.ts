/**
 * The bridge-only relay on native Linux (issue 14 §2; facts and lab results: relay-and-pull.md
 * Part A): Ollama stays on loopback, and systemd-socket-proxyd, socket-activated on the address
 * Docker's host-gateway resolves to, forwards bridge containers' connections to it.
 *
 *   inspect        what is on the machine (read-only): our units read back, the gateway, the
 *                  bridges, which protection systemd or iptables can enforce, and the preflight;
 *   planRelay      pure: the two units and the relay's restart, or nothing when all is in place;
 *   relayStrategy  apply and undo: its restart converges systemd with the units on disk, so setup,
 *                  rollback and undo (which deletes the files, then restarts) all end right.
 */
import path from 'node:path';
import { isIPv4, isIPv6 } from 'node:net';
import type { Context } from '../../scripts/context.ts';
import type { Listener } from '../../scripts/listeners.ts';
import { formatBindAddress } from '../../scripts/ollama-host.ts';
import { readDockerNetworks } from '../../scripts/audit-facts.ts';
import type { DockerNetwork } from '../../scripts/parsers/docker-json.ts';
import { StepError } from '../../scripts/system-files.ts';
import { lastLine, oneLine } from '../../scripts/text.ts';
import type { BindAddress } from '../../scripts/ollama-host.ts';
import type { Blocker, Change, DetectOptions, FileChange, FirewallFacts, Plan, RelayFacts, RelayPlanRequest, RelayRequest, RestartChange, RestartContext, Strategy } from '../types.ts';
import { CHAIN, isIpv4Cidr, isListenableIpv4, MAX_UNIT_BYTES, parseServiceUnit, parseSocketUnit, RelayUnitError, renderServiceUnit, renderSocketUnit, SERVICE_PATH, SERVICE_UNIT, SOCKET_PATH, SOCKET_UNIT, type RelayProtection } from './relay-units.ts';
import { parseSystemctlShowAll } from './systemctl-show.ts';
import { systemdStrategy, UNIT_FILE_LOCATIONS, type SystemdDetection } from './systemd.ts';

export { CHAIN, SERVICE_PATH, SERVICE_UNIT, SOCKET_PATH, SOCKET_UNIT } from './relay-units.ts';

export const RELAY_STRATEGY = 'linux-relay';
/** The Host header no loopback-bound Ollama accepts: its answer tells a loopback bind (403) from a wider one. */
export const FOREIGN_HOST = 'stigmer-setup-probe.example.com';
const PROBE_TIMEOUT_MS = 2000;
const COMMAND_TIMEOUT_MS = 5000;
/** Where systemd keeps socket-proxyd: merged-/usr hosts have both; unmerged Debian/Ubuntu only /lib. */
export const PROXYD_LOCATIONS = ['/usr/lib/systemd/systemd-socket-proxyd', '/lib/systemd/systemd-socket-proxyd'];
export const IPTABLES_LOCATIONS = ['/usr/sbin/iptables', '/sbin/iptables', '/usr/bin/iptables', '/bin/iptables'];
const LOGS = `journalctl -u ${SOCKET_UNIT} -u ${SERVICE_UNIT} -n 50`;

/** Docker's own view of where host-gateway points, from one source. */
export interface GatewayConfig {
  ipv4?: string;
  ipv6?: string;
}

/**
 * daemon.json's `host-gateway-ips` (a list, Docker 28+) or the legacy `host-gateway-ip` (one
 * string), which moby migrates into the list (daemon/config/config.go). Undefined when neither is set.
 */
export function gatewayFromDaemonConfig(text: string): GatewayConfig | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.slice(0, 1 << 20));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const config = parsed as Record<string, unknown>;
  const list = Array.isArray(config['host-gateway-ips']) ? config['host-gateway-ips'] : typeof config['host-gateway-ip'] === 'string' ? [config['host-gateway-ip']] : undefined;
  return list ? gatewayFromList(list.slice(0, 16).filter((value): value is string => typeof value === 'string')) : undefined;
}

/** dockerd's `--host-gateway-ip` flags (repeatable; `--flag=value` or `--flag value`). */
export function gatewayFromDockerdArgs(argv: string[]): GatewayConfig | undefined {
  const values: string[] = [];
  for (const [index, arg] of argv.slice(0, 512).entries()) {
    if (arg.startsWith('--host-gateway-ip=')) values.push(arg.slice('--host-gateway-ip='.length));
    else if (arg === '--host-gateway-ip' && argv[index + 1] !== undefined) values.push(argv[index + 1] as string);
  }
  return values.length ? gatewayFromList(values) : undefined;
}

function gatewayFromList(values: string[]): GatewayConfig {
  return { ipv4: values.find((value) => isIPv4(value)), ipv6: values.find((value) => isIPv6(value)) };
}

/**
 * What host-gateway resolves to (moby daemon/daemon_unix.go setHostGatewayIP): the configured
 * host-gateway-ips if any; otherwise the default bridge's IPAM gateway (plus its IPv6 gateway).
 * Docker 20.10 lists the default bridge's subnet without a gateway: then docker0's own address.
 */
export function readGatewayFrom(input: {
  configured?: { config: GatewayConfig; from: string };
  networks: DockerNetwork[];
  interfaceAddress?: (name: string) => string | undefined;
}): { gateway: RelayFacts['gateway'] } | { problem: string } {
  if (input.configured) {
    const { config, from } = input.configured;
    if (!config.ipv4) return { problem: `host-gateway-ips in ${from} has no IPv4 address${config.ipv6 ? ` (only ${config.ipv6})` : ''}, and the relay listens on IPv4` };
    if (!isListenableIpv4(config.ipv4)) return { problem: `host-gateway-ips in ${from} is ${config.ipv4}, which is not one address the relay could listen on alone (0.0.0.0 is every address, 127.x is Ollama's own loopback)` };
    return { gateway: { address: config.ipv4, from, ...(config.ipv6 ? { ipv6: config.ipv6 } : {}) } };
  }
  const bridge = input.networks.find((network) => network.name === 'bridge' && network.driver === 'bridge');
  if (!bridge) return { problem: 'Docker\'s default bridge is disabled ("bridge": "none") and no host-gateway-ips is set, so host.docker.internal has no address to resolve to' };
  const ipv6 = bridge.gateways.find((address) => isIPv6(address));
  const ipv4 = bridge.gateways.find((address) => isListenableIpv4(address));
  if (ipv4) return { gateway: { address: ipv4, from: '`docker network inspect bridge` (IPAM gateway)', ...(ipv6 ? { ipv6 } : {}) } };
  const ownAddress = bridge.bridgeInterface ? input.interfaceAddress?.(bridge.bridgeInterface) : undefined;
  if (ownAddress) return { gateway: { address: ownAddress, from: `the address of ${bridge.bridgeInterface} (the default bridge lists no gateway)`, ...(ipv6 ? { ipv6 } : {}) } };
  return { problem: "the default bridge's gateway can't be read (`docker network inspect bridge` lists none, and docker0 has no IPv4 address)" };
}

/** Whether systemd can enforce IPAddressAllow=: a cgroup2 (unified) hierarchy, from /proc/self/mounts. */
export function bpfFirewallFromMounts(mounts: string): boolean {
  return mounts
    .split('\n')
    .slice(0, 4096)
    .some((line) => {
      const fields = line.split(' ');
      return fields[2] === 'cgroup2' && (fields[1] === '/sys/fs/cgroup' || fields[1] === '/sys/fs/cgroup/unified');
    });
}

/**
 * Ollama's IPv4 loopback address, which the relay forwards to: 127.0.0.1, or the other 127.x it
 * listens on. undefined when it listens on IPv6 loopback only (the relay's target is IPv4) or
 * beyond loopback (then there is nothing to relay to: it is reachable already).
 */
export function relayTarget(listeners: Listener[] | undefined): string | undefined {
  if (!listeners || listeners.length === 0) return '127.0.0.1';
  if (listeners.some((listener) => listener.address === '127.0.0.1')) return '127.0.0.1';
  return listeners.find((listener) => listener.family === 4 && listener.scope === 'loopback' && isIPv4(listener.address))?.address;
}

async function firstFile(ctx: Context, candidates: string[]): Promise<string | undefined> {
  for (const candidate of candidates) {
    const seen = await ctx.fs.inspect(candidate, { follow: true }).catch(() => undefined);
    if (seen?.kind === 'file' && (seen.mode & 0o111) !== 0) return candidate;
  }
  return undefined;
}

type ReadUnit = { file?: { content: Buffer; mode: number; uid: number; gid: number }; problem?: string };

/** One of our units, read as untrusted: never through a symlink, never a FIFO, never megabytes. */
async function readUnit(ctx: Context, file: string): Promise<ReadUnit | undefined> {
  try {
    const seen = await ctx.fs.inspect(file);
    if (!seen) return undefined;
    if (seen.kind !== 'file') return { problem: `${file} is ${seen.kind === 'symlink' ? 'a symlink' : `not a regular file (${seen.kind})`}, so stigmer-setup won't read or replace it` };
    if (seen.size > MAX_UNIT_BYTES) return { problem: `${file} is ${seen.size} bytes, far larger than any unit stigmer-setup writes` };
    const read = await ctx.fs.read(file);
    return read ? { file: read } : undefined;
  } catch (error) {
    return { problem: `${file} can't be read: ${oneLine((error as Error).message ?? String(error), 200)}` };
  }
}

/** The dockerd command line, from the pid file dockerd writes (/var/run/docker.pid by default). */
async function dockerdArgs(ctx: Context): Promise<string[] | undefined> {
  const pidText = await ctx.fs.readText('/run/docker.pid', { follow: true }).catch(() => undefined);
  const pid = pidText?.trim();
  if (!pid || !/^[1-9]\d{0,9}$/.test(pid)) return undefined;
  const cmdline = await ctx.fs.readText(`/proc/${pid}/cmdline`, { follow: true }).catch(() => undefined);
  return cmdline?.split('\0').filter(Boolean);
}

async function readGateway(ctx: Context, root: string, networks: DockerNetwork[]): Promise<{ gateway: RelayFacts['gateway'] } | { problem: string }> {
  const daemonJson = path.posix.join(root, 'etc/docker/daemon.json');
  const fromConfig = await ctx.fs.readText(daemonJson, { follow: true }).then(
    (text) => (text === undefined ? undefined : gatewayFromDaemonConfig(text)),
    () => undefined,
  );
  const argv = fromConfig ? undefined : await dockerdArgs(ctx);
  const fromArgs = argv ? gatewayFromDockerdArgs(argv) : undefined;
  const configured = fromConfig ? { config: fromConfig, from: daemonJson } : fromArgs ? { config: fromArgs, from: "dockerd's --host-gateway-ip" } : undefined;
  const addresses = ctx.networkAddresses();
  return readGatewayFrom({ configured, networks, interfaceAddress: (name) => addresses.find((entry) => entry.name === name && entry.family === 4)?.address });
}

/**
 * Whether systemd's IPAddressAllow= can protect the relay here: a cgroup2 mount, and not measured
 * ineffective on the relay installed now (its socket listening and letting a disallowed source in).
 * A machine where it was measured so gets the iptables chain when setup runs again.
 */
export function addressFilterUsable(relay: Pick<RelayFacts, 'bpfFirewall' | 'installed'>): boolean {
  const installed = relay.installed;
  const measuredOpen = installed?.protection === 'ip-address-allow' && installed.socketState === 'active' && installed.protectionActive === false;
  return relay.bpfFirewall && !measuredOpen;
}

/** Why the relay can't be offered here, or undefined when it can (the plan says the reason). */
export function relayPreflight(relay: Omit<RelayFacts, 'preflight'>, request: Pick<RelayRequest, 'nativeRootfulDocker' | 'engine' | 'listeners' | 'port'>): string | undefined {
  const port = request.port;
  if (!relay.systemd) return 'systemd is not PID 1 here, so it can\'t run the relay\'s units';
  if (!request.nativeRootfulDocker) return `the relay is for a rootful Docker engine on this machine's own kernel${request.engine ? `, and this one is ${request.engine}` : ''} (rootless Docker, Docker Desktop and Podman reach the host their own way)`;
  if (!relay.gateway) return relay.gatewayProblem ?? "Docker's host-gateway address can't be read";
  if (!relay.proxyd) return `systemd-socket-proxyd is not installed (looked in ${PROXYD_LOCATIONS.join(' and ')})`;
  if (!addressFilterUsable(relay) && !relay.iptables) return 'neither systemd\'s IP filtering (it needs cgroup v2) nor iptables is available, so the relay could not keep your network out';
  // Without systemd's filter the chain is the protection, and it lets in lo, docker0 and br-+ only.
  const defaultBridge = relay.bridges.find((bridge) => bridge.name === 'bridge')?.interface;
  if (!addressFilterUsable(relay) && defaultBridge !== undefined && defaultBridge !== 'docker0' && !defaultBridge.startsWith('br-')) {
    return `Docker's default bridge is the interface ${JSON.stringify(defaultBridge).slice(0, 40)}, and without systemd's IP filtering (cgroup v2) the relay keeps your network out with an iptables chain that lets in docker0 and br-* only, so its containers could not get through`;
  }
  const target = relayTarget(request.listeners);
  if (target === undefined) {
    const wider = request.listeners?.find((listener) => listener.scope !== 'loopback');
    return wider ? `Ollama already listens on ${formatBindAddress({ host: wider.address, port })}, beyond loopback` : `Ollama listens on IPv6 loopback only, and the relay forwards to an IPv4 loopback address`;
  }
  const gateway = relay.gateway.address;
  const ourRelayListens = relay.installed?.ours === true && relay.installed.listen?.host === gateway && relay.installed.listen.port === port;
  for (const listener of request.listeners ?? []) {
    if (listener.scope === 'wildcard') return `something listens on ${formatBindAddress({ host: listener.address, port })}, and Linux refuses a listener on ${gateway}:${port} next to it`;
    if (listener.address === gateway && !ourRelayListens) return `something other than stigmer-setup's relay listens on ${gateway}:${port} already`;
  }
  if (relay.foreignHostStatus !== 403) {
    return relay.foreignHostStatus === undefined
      ? `Ollama does not answer on ${target}:${port}, so it can't be proven loopback-only (start it, then run setup again)`
      : `Ollama on ${target}:${port} answered HTTP ${relay.foreignHostStatus} to a foreign Host header instead of 403, so it is not proven to listen on loopback only`;
  }
  return undefined;
}

export async function inspectRelay(ctx: Context, request: RelayRequest): Promise<RelayFacts> {
  const { root, port } = request;
  const paths = { socket: path.posix.join(root, SOCKET_PATH), service: path.posix.join(root, SERVICE_PATH) };
  const target = relayTarget(request.listeners);
  const [networks, mounts, proxyd, iptables, systemd, socket, service, ollamaUnit, probe] = await Promise.all([
    request.networks ? Promise.resolve(request.networks) : request.nativeRootfulDocker ? readDockerNetworks(ctx) : Promise.resolve([] as DockerNetwork[]),
    ctx.fs.readText('/proc/self/mounts', { follow: true }).catch(() => undefined),
    firstFile(ctx, PROXYD_LOCATIONS),
    firstFile(ctx, IPTABLES_LOCATIONS),
    // sd_booted(3): systemd is PID 1 exactly when /run/systemd/system exists.
    ctx.fs.exists('/run/systemd/system').catch(() => false),
    readUnit(ctx, paths.socket),
    readUnit(ctx, paths.service),
    (async () => {
      for (const unit of UNIT_FILE_LOCATIONS) if (await ctx.fs.exists(path.posix.join(root, unit)).catch(() => false)) return true;
      return false;
    })(),
    target === undefined ? Promise.resolve(undefined) : ctx.http.get(`http://${target}:${port}/api/version`, { timeoutMs: PROBE_TIMEOUT_MS, headers: { Host: FOREIGN_HOST } }),
  ]);
  const bridges = networks
    .filter((network) => network.driver === 'bridge')
    .flatMap((network) => network.subnets.filter(isIpv4Cidr).map((subnet) => ({ name: network.name, subnet, ...(network.bridgeInterface ? { interface: network.bridgeInterface } : {}) })));
  const gatewayRead = request.nativeRootfulDocker ? await readGateway(ctx, root, networks) : { problem: 'Docker is not a rootful engine on this machine' };
  const relay: Omit<RelayFacts, 'preflight'> = {
    paths,
    bridges,
    bpfFirewall: mounts ? bpfFirewallFromMounts(mounts) : false,
    iptables,
    proxyd,
    systemd,
    ollamaUnit,
    foreignHostStatus: probe?.kind === 'response' ? probe.status : undefined,
    ...('gateway' in gatewayRead ? { gateway: gatewayRead.gateway } : { gatewayProblem: gatewayRead.problem }),
  };
  if (socket || service) relay.installed = await installedFacts(ctx, relay, paths, socket, service);
  const reason = relayPreflight(relay, request);
  return { ...relay, preflight: reason === undefined ? { ok: true } : { ok: false, reason } };
}

async function installedFacts(ctx: Context, relay: Omit<RelayFacts, 'preflight'>, paths: RelayFacts['paths'], socket: ReadUnit | undefined, service: ReadUnit | undefined): Promise<NonNullable<RelayFacts['installed']>> {
  const socketText = socket?.file?.content.toString('utf8');
  const serviceText = service?.file?.content.toString('utf8');
  const dropIns = await loadedDropIns(ctx, paths);
  const parsedSocket = socketText === undefined ? undefined : parseSocketUnit(socketText, dropIns.socket.texts);
  const parsedService = serviceText === undefined ? undefined : parseServiceUnit(serviceText, dropIns.service.texts);
  const protection = parsedSocket?.protection ?? 'none';
  const [state, filter] = await Promise.all([
    ctx.exec('systemctl', ['is-active', SOCKET_UNIT], { timeoutMs: COMMAND_TIMEOUT_MS, env: { LC_ALL: 'C' } }),
    protection === 'ip-address-allow' && parsedSocket?.listen ? measureAddressFilter(ctx, parsedSocket.listen, parsedSocket.allowed) : Promise.resolve(undefined),
  ]);
  const socketState = state.failure ? undefined : /^[a-z-]{1,32}$/.test(state.stdout.trim()) ? state.stdout.trim() : undefined;
  let protectionActive: boolean | undefined;
  // A socket that is not listening protects nothing; a listening one is measured, not inferred.
  if (protection === 'ip-address-allow') protectionActive = socketState === 'active' ? filter : false;
  else if (protection === 'iptables' && relay.iptables && parsedSocket?.listen) {
    // -C: exit 0 when the rule exists, 1 when it does not; anything else (not root: exit 4) can't tell.
    const check = await ctx.exec(relay.iptables, ['-w', '-C', 'INPUT', '-d', `${parsedSocket.listen.host}/32`, '-p', 'tcp', '--dport', String(parsedSocket.listen.port), '-j', CHAIN], { timeoutMs: COMMAND_TIMEOUT_MS, env: { LC_ALL: 'C' } });
    protectionActive = check.exitCode === 0 ? true : check.exitCode === 1 && !/permission|denied|root/i.test(check.stderr) ? false : undefined;
    // The hook alone keeps nobody out: an emptied chain returns every packet to INPUT. In force
    // means the chain still ends in DROP, with nothing before it but per-interface ACCEPTs.
    if (protectionActive) {
      const rules = await ctx.exec(relay.iptables, ['-w', '-S', CHAIN], { timeoutMs: COMMAND_TIMEOUT_MS, env: { LC_ALL: 'C' } });
      if (rules.exitCode === 0) protectionActive = chainKeepsOthersOut(rules.stdout);
      else protectionActive = rules.exitCode === 1 && !/permission|denied|root/i.test(rules.stderr) ? false : undefined;
    }
  }
  // A drop-in that can't be read (a symlink, a FIFO) is not ours to judge or touch: our units stay
  // ours, the plan names it, and whether the protection is in force can't be told.
  if (dropIns.socket.problem || dropIns.service.problem) protectionActive = undefined;
  const problem = socket?.problem ?? service?.problem;
  const dropInPaths = [...dropIns.socket.paths, ...dropIns.service.paths];
  return {
    ...(dropInPaths.length ? { dropIns: dropInPaths } : {}),
    socketPath: paths.socket,
    servicePath: paths.service,
    listen: parsedSocket?.listen,
    target: parsedService?.target,
    protection,
    allowed: parsedSocket?.allowed ?? [],
    socketState,
    protectionActive,
    ours: (parsedSocket?.ours ?? socket === undefined) && (parsedService?.ours ?? service === undefined) && problem === undefined,
    ...(problem ? { problem } : {}),
    ...(socket?.file ? { socketFile: socket.file } : {}),
    ...(service?.file ? { serviceFile: service.file } : {}),
  };
}

/** The source the filter probe connects from: on this host, never a Docker bridge address. */
export const FILTER_PROBE_SOURCE = '127.0.0.1';
/** A dropped SYN is a timeout; an accepted one answers within a millisecond over lo. */
export const FILTER_PROBE_TIMEOUT_MS = 1000;

/**
 * Whether systemd enforces the socket's IPAddressAllow=, measured: systemd starts the socket
 * unfiltered (one warning in its log) where the kernel lacks cgroup BPF or systemd its support, and
 * a cgroup2 mount doesn't tell those apart. A connection to the relay's own address from
 * 127.0.0.1 (bound first; the kernel routes a local destination over lo) is not in the allow list,
 * so the filter drops its SYN (true); if it connects, the LAN gets in too (false). It is closed at
 * once without a byte sent. undefined: can't tell (refused, another error, or an allow list that
 * covers 127.0.0.1, which a drop-in may add).
 */
export async function measureAddressFilter(ctx: Context, listen: { host: string; port: number }, allowed: readonly string[]): Promise<boolean | undefined> {
  if (allowed.some((entry) => coversAddress(entry, FILTER_PROBE_SOURCE))) return undefined;
  const result = await ctx.tcpConnect({ host: listen.host, port: listen.port, localAddress: FILTER_PROBE_SOURCE, timeoutMs: FILTER_PROBE_TIMEOUT_MS });
  if (result.kind === 'connected') return false;
  return result.code === 'timeout' ? true : undefined;
}

/** Whether an IPAddressAllow= entry (systemd.resource-control(5)) covers an IPv4 address; unknown words count as covering it. */
function coversAddress(entry: string, address: string): boolean {
  if (entry === 'localhost' || entry === 'any') return true;
  if (entry === 'link-local' || entry === 'multicast') return false;
  const match = /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?$/.exec(entry);
  if (!match) return !entry.includes(':');
  const bits = match[2] === undefined ? 32 : Number(match[2]);
  const number = (text: string) => text.split('.').reduce((sum, part) => sum * 256 + Number(part), 0);
  const network = (value: number) => Math.floor(value / 2 ** (32 - bits));
  return bits <= 32 && network(number(match[1] as string)) === network(number(address));
}

/** `iptables -S STIGMER-OLLAMA-RELAY`: interface-scoped ACCEPTs, then DROP as its last rule. */
export function chainKeepsOthersOut(listing: string): boolean {
  const rules = listing.split('\n').slice(0, 1000).map((line) => line.trim()).filter((line) => line.startsWith('-A '));
  if (rules.at(-1) !== `-A ${CHAIN} -j DROP`) return false;
  const accept = new RegExp(`^-A ${CHAIN} -i [A-Za-z0-9_.+-]{1,15} -j ACCEPT$`);
  return rules.slice(0, -1).every((rule) => accept.test(rule));
}

/**
 * The drop-ins systemd applies to our units (`systemctl show -p DropInPaths`: <unit>.d/, the
 * prefix and type drop-ins, in every unit directory), read as untrusted like the units: a
 * drop-in can change where the relay listens and whom it lets in, so they are read with the unit.
 */
async function loadedDropIns(ctx: Context, paths: RelayFacts['paths']): Promise<Record<'socket' | 'service', { paths: string[]; texts: string[]; problem?: string }>> {
  const found = { socket: { paths: [] as string[], texts: [] as string[], problem: undefined as string | undefined }, service: { paths: [] as string[], texts: [] as string[], problem: undefined as string | undefined } };
  const show = await ctx.exec('systemctl', ['show', SOCKET_UNIT, SERVICE_UNIT, '--property=DropInPaths'], { timeoutMs: COMMAND_TIMEOUT_MS, env: { LC_ALL: 'C' } });
  if (show.exitCode !== 0) return found;
  // One block per unit, in the order asked; systemd names them without --root.
  const root = paths.socket.slice(0, paths.socket.length - SOCKET_PATH.length) || '/';
  const blocks = parseSystemctlShowAll(show.stdout).get('DropInPaths') ?? [];
  for (const [index, unit] of (['socket', 'service'] as const).entries()) {
    const listed = (blocks[index] ?? '').split(/\s+/).filter(Boolean);
    // A name with a control character or beyond ASCII is shown nowhere: it is only counted.
    const odd = listed.filter((entry) => !/^\/[\x21-\x7e]{1,4096}$/.test(entry)).length;
    if (odd) found[unit].problem = `systemd applies ${odd} drop-in${odd === 1 ? '' : 's'} with an unusual file name to ${unit === 'socket' ? SOCKET_UNIT : SERVICE_UNIT}; look in its .d folders`;
    for (const dropIn of listed.filter((entry) => /^\/[\x21-\x7e]{1,4096}$/.test(entry)).slice(0, 32)) {
      const file = path.posix.join(root, dropIn);
      const read = await readUnit(ctx, file);
      // Gone since the last daemon-reload (or not under --root): nothing on disk to read or keep.
      if (!read) continue;
      found[unit].paths.push(file);
      if (read.file) found[unit].texts.push(read.file.content.toString('utf8'));
      else found[unit].problem ??= read.problem;
    }
  }
  return found;
}

/**
 * Which protection keeps the network out. systemd's IPAddressAllow= needs no firewall change, but
 * only where systemd enforces it (cgroup v2) and only where the firewall lets bridge traffic in at
 * all; otherwise our own iptables chain, which also lets the bridges through an active ufw. A
 * relay installed with the chain keeps it: once our chain accepts the bridges, the firewall reads
 * as "allowed", and switching then would drop it under a firewall that blocks them.
 */
export function chooseProtection(relay: RelayFacts, firewall: FirewallFacts | undefined): RelayProtection | undefined {
  if (relay.installed?.protection === 'iptables' && relay.iptables) return 'iptables';
  const filter = addressFilterUsable(relay);
  if (filter && firewall?.verdict === 'allowed') return 'ip-address-allow';
  if (relay.iptables) return 'iptables';
  return filter ? 'ip-address-allow' : undefined;
}

function unitChange(file: string, current: { content: Buffer; mode: number; uid: number; gid: number } | undefined, desired: Buffer, elevate: string[]): FileChange | undefined {
  if (current?.content.equals(desired)) return undefined;
  return {
    type: 'file',
    path: file,
    action: current ? 'modify' : 'create',
    before: current?.content,
    after: desired,
    mode: current?.mode ?? 0o644,
    uid: current?.uid,
    gid: current?.gid,
    privileged: elevate.length > 0,
  };
}

function relayRestart(relay: RelayFacts, request: { elevate: string[]; port: number }): RestartChange {
  return restartChange({ elevate: request.elevate, job: relay.paths.socket, port: request.port });
}

/** The plan that installs (or repairs) the relay; the preflight has passed. */
export function planRelay(relay: RelayFacts, request: RelayPlanRequest): Plan {
  const { port } = request;
  const target = relayTarget(request.listeners) ?? '127.0.0.1';
  const base: Plan = { strategy: RELAY_STRATEGY, target: { host: target, port }, changes: [], summary: '', blockers: [], warnings: [] };
  // The relay's daemon-reload loads every pending unit edit, ollama.service's included: refuse as
  // the systemd strategy does, unless the pending edit is our own drop-in.
  const systemd = request.detection?.strategy === 'linux-systemd' ? (request.detection as SystemdDetection) : undefined;
  if (systemd?.needsReload && !systemd.pendingReloadIsOurs) {
    const files = systemd.unloadedDropIns?.length ? `${systemd.unloadedDropIns.join(', ')} not loaded` : 'NeedDaemonReload=yes';
    base.summary = 'ollama.service has unit-file changes systemd has not loaded yet, so setup changes nothing.';
    base.blockers.push({ message: `ollama.service has unit-file changes systemd has not loaded yet (${files}); the relay's daemon-reload would load them too.`, fix: 'run `systemctl daemon-reload` yourself, check `systemctl status ollama`, then run setup again' });
    return base;
  }
  const gateway = relay.gateway?.address;
  const protection = chooseProtection(relay, request.firewall);
  if (!gateway || !relay.proxyd || !protection) throw new Error('planRelay called without a passing preflight');
  const installed = relay.installed;
  if (installed?.problem || (installed && !installed.ours)) {
    base.summary = 'A file where the relay\'s units go is not one stigmer-setup wrote, so setup leaves it alone.';
    base.blockers.push({
      message: installed.problem ?? `${installed.socketPath} or ${installed.servicePath} exists and was not written by stigmer-setup (its first line is not "# Written by stigmer-setup").`,
      fix: `Look at ${installed.socketPath} and ${installed.servicePath}; move away what is not yours to keep, then run setup again`,
    });
    return base;
  }
  const subnets = [...new Set(relay.bridges.map((bridge) => bridge.subnet))];
  const options = { gateway, port, target, protection, subnets, iptables: relay.iptables, proxyd: relay.proxyd, ollamaUnit: relay.ollamaUnit };
  let socket: Buffer;
  let service: Buffer;
  try {
    socket = Buffer.from(renderSocketUnit(options));
    service = Buffer.from(renderServiceUnit(options));
  } catch (error) {
    if (!(error instanceof RelayUnitError)) throw error;
    base.summary = 'The relay\'s units can\'t be written with what this machine reports.';
    base.blockers.push({ message: error.message, fix: 'Check `docker network inspect bridge` and the paths named, or use --host 0.0.0.0:PORT instead of the relay' });
    return base;
  }
  const changes: Change[] = [];
  for (const change of [unitChange(relay.paths.socket, installed?.socketFile, socket, request.elevate), unitChange(relay.paths.service, installed?.serviceFile, service, request.elevate)]) if (change) changes.push(change);
  const running = installed?.socketState === 'active' && installed.protectionActive !== false;
  if (changes.length > 0 || !running) changes.push(relayRestart(relay, { elevate: request.elevate, port }));
  base.changes = changes;
  if (installed?.dropIns?.length) base.warnings.push(`systemd also applies ${installed.dropIns.join(', ')} to the relay's units; setup leaves ${installed.dropIns.length === 1 ? 'it' : 'them'} as ${installed.dropIns.length === 1 ? 'it is' : 'they are'}, and what ${installed.dropIns.length === 1 ? 'it changes' : 'they change'} (where the relay listens, whom it lets in) stays in force.`);
  const where = `${gateway}:${port}`;
  if (changes.length === 0) {
    base.summary = `The relay is in place: systemd listens on ${where} for Docker bridge containers and forwards to Ollama on ${target}:${port}.`;
    return base;
  }
  const verb = changes.length === 1 ? 'Start the relay again' : installed ? 'Update the relay' : 'Give Docker bridge containers a relay';
  base.summary = `${verb}: systemd listens on ${where}, the address host.docker.internal resolves to, and forwards to Ollama on ${target}:${port}. Ollama stays on loopback, so machines on your network can't reach it (the alternative, --host 0.0.0.0:${port}, would expose it to them).`;
  base.warnings.push(`Containers must name the host as host.docker.internal (with --add-host host.docker.internal:host-gateway on Linux) or ${gateway}: Ollama answers any other name, such as a compose alias "ollama", with 403.`);
  if (relay.gateway?.ipv6) base.warnings.push(`host.docker.internal also resolves to ${relay.gateway.ipv6} (IPv6), which the relay does not serve: a client that tries IPv6 first must use http://${where} instead.`);
  if (protection === 'iptables') {
    const ufw = request.firewall?.by === 'ufw' && request.firewall.verdict === 'blocked';
    base.warnings.push(
      `The relay keeps other machines out with its own iptables chain ${CHAIN}, hooked into INPUT for ${where} only: it accepts lo, docker0 and br-+ and drops everything else. The unit adds it when the relay starts and removes it when it stops; undo removes both.${ufw ? ' It comes before ufw\'s chains, so it also lets Docker bridge containers through ufw, on this address and port only.' : ''}`,
    );
    const odd = relay.bridges.filter((bridge) => bridge.interface && bridge.interface !== 'docker0' && !bridge.interface.startsWith('br-'));
    if (odd.length) base.warnings.push(`Docker network ${odd.map((bridge) => `"${bridge.name}" (${bridge.interface})`).join(', ')} has a bridge name other than docker0 or br-*, so the relay's chain drops its containers.`);
  } else {
    base.warnings.push(`Only ${subnets.join(', ')} may connect (IPAddressAllow=); a Docker network created later is not covered until you run setup again.`);
  }
  base.warnings.push(`While the relay holds ${where}, nothing else can listen on 0.0.0.0:${port} (OLLAMA_HOST=0.0.0.0, docker run -p ${port}:${port}); remove it first with: npx stigmer-setup undo, or npx stigmer-setup --host 0.0.0.0:${port}.`);
  return base;
}

/** Whether binding `host` would clash with the relay on the gateway address. */
export function clashesWithRelay(host: string, relay: RelayFacts): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  const listen = relay.installed?.listen?.host ?? relay.gateway?.address;
  return bare === '' || bare === '0.0.0.0' || bare === '::' || bare === '*' || (listen !== undefined && bare === listen);
}

/**
 * The changes that remove our installed relay before Ollama binds `target`, when that bind would
 * clash with it: both units, then the relay's restart (which disables it). undefined: no clash.
 */
export function relayRemoval(relay: RelayFacts, request: { elevate: string[]; target: BindAddress }): { changes: Change[]; blocker?: Blocker } | undefined {
  const installed = relay.installed;
  if (!installed || !clashesWithRelay(request.target.host, relay)) return undefined;
  if (installed.problem || !installed.ours) {
    return { changes: [], blocker: { message: installed.problem ?? `${installed.socketPath} or ${installed.servicePath} was not written by stigmer-setup, so setup won't remove it to free the port.`, fix: `Stop and remove it yourself (sudo systemctl disable --now ${SOCKET_UNIT} ${SERVICE_UNIT}), then run setup again` } };
  }
  const changes: Change[] = [];
  for (const [file, current] of [
    [installed.socketPath, installed.socketFile],
    [installed.servicePath, installed.serviceFile],
  ] as const) {
    if (!current) continue;
    changes.push({ type: 'file', path: file, action: 'delete', before: current.content, mode: current.mode, uid: current.uid, gid: current.gid, privileged: request.elevate.length > 0 });
  }
  // The units are deleted first, so this restart is the removal: show its steps (undo's), not the install's.
  changes.push(restartChange({ elevate: request.elevate, job: relay.paths.socket, port: installed.listen?.port ?? request.target.port, undo: true }));
  return { changes };
}

/** The elevation prefix a restart change was built with (what comes before `systemctl`). */
function elevationOf(change: RestartChange): string[] {
  const first = change.steps[0] ?? [];
  const at = first.indexOf('systemctl');
  return at > 0 ? first.slice(0, at) : [];
}

/**
 * The relay's restart. What runs is decided at that moment by what is on disk (restart below),
 * the same way for setup, rollback and undo; the steps show what that will be: the install for
 * setup, the removal for undo.
 */
function restartChange({ elevate, job, port, undo }: RestartContext): RestartChange {
  const stop = [...elevate, 'systemctl', 'stop', SOCKET_UNIT, SERVICE_UNIT];
  return {
    type: 'restart',
    strategy: RELAY_STRATEGY,
    // Undo deletes the units first (setup created them), so its restart is the removal.
    steps: undo
      ? [stop, [...elevate, 'systemctl', 'disable', SOCKET_UNIT, SERVICE_UNIT], [...elevate, 'systemctl', 'daemon-reload']]
      : [stop, [...elevate, 'systemctl', 'daemon-reload'], [...elevate, 'systemctl', 'enable', SOCKET_UNIT], [...elevate, 'systemctl', 'restart', SOCKET_UNIT]],
    privileged: elevate.length > 0,
    job: job ?? SOCKET_PATH,
    ...(port !== undefined ? { port } : {}),
  };
}

/** The --root a restart's job file is under (the job is <root>/etc/systemd/system/<socket>). */
function rootOf(change: RestartChange): string {
  const job = change.job ?? SOCKET_PATH;
  return job.endsWith(SOCKET_PATH) ? job.slice(0, job.length - SOCKET_PATH.length) || '/' : '/';
}

/**
 * Remove our chain and its INPUT hooks if they outlived the socket unit. The unit's ExecStopPost=
 * removes them, but only when systemd still has the unit's old text loaded: a daemon-reload after
 * the file changed or was deleted (`systemctl disable` does one itself) loses those lines.
 * Measured on systemd 252: rm the units, then `disable --now` leaves the chain behind.
 */
async function removeLeftoverChain(ctx: Context, elevate: string[], run: (argv: string[]) => Promise<void>): Promise<void> {
  const iptables = await firstFile(ctx, IPTABLES_LOCATIONS);
  if (!iptables) return;
  const list = [...elevate, iptables, '-w', '-S', 'INPUT'];
  const listed = await ctx.exec(list[0] as string, list.slice(1), { timeoutMs: COMMAND_TIMEOUT_MS, env: { LC_ALL: 'C' } });
  if (listed.exitCode !== 0) return;
  for (const line of listed.stdout.split('\n').slice(0, 10_000)) {
    const words = line.trim().split(/\s+/);
    if (words[0] !== '-A' || words[1] !== 'INPUT' || words.at(-2) !== '-j' || words.at(-1) !== CHAIN) continue;
    if (!words.every((word) => /^[A-Za-z0-9./:_+-]{1,64}$/.test(word))) continue;
    await run([...elevate, iptables, '-w', '-D', ...words.slice(1)]);
  }
  const chain = [...elevate, iptables, '-w', '-S', CHAIN];
  const exists = await ctx.exec(chain[0] as string, chain.slice(1), { timeoutMs: COMMAND_TIMEOUT_MS, env: { LC_ALL: 'C' } });
  if (exists.exitCode !== 0) return;
  await run([...elevate, iptables, '-w', '-F', CHAIN]);
  await run([...elevate, iptables, '-w', '-X', CHAIN]);
}

/**
 * Converge systemd with the units on disk. First stop both units while systemd still has their
 * old text loaded, so the old ExecStopPost= removes the old chain (a changed gateway, an undo).
 * Socket file there: reload, enable, start it, and require it active. Gone: disable both (this
 * removes the sockets.target.wants link even after the unit file is deleted), reload, and make
 * sure the socket is no longer active. Ollama itself is never stopped.
 */
async function restart(ctx: Context, change: RestartChange, run: (argv: string[]) => Promise<void>): Promise<void> {
  const elevate = elevationOf(change);
  const socketFile = change.job ?? SOCKET_PATH;
  // Units systemd never loaded (a rollback before the first reload) can't be stopped or disabled:
  // systemctl says "not loaded" / "does not exist". What counts is whether the socket is active after.
  let refused: string | undefined;
  const tolerated = async (argv: string[]) => {
    try {
      await run(argv);
    } catch (error) {
      refused ??= (error as Error).message;
    }
  };
  await tolerated([...elevate, 'systemctl', 'stop', SOCKET_UNIT, SERVICE_UNIT]);
  await removeLeftoverChain(ctx, elevate, run);
  const isActive = async () => {
    const state = await ctx.exec('systemctl', ['is-active', SOCKET_UNIT], { timeoutMs: COMMAND_TIMEOUT_MS, env: { LC_ALL: 'C' } });
    return oneLine(state.stdout, 40) || lastLine(state.stderr) || 'nothing';
  };
  if ((await ctx.fs.inspect(socketFile)) !== undefined) {
    await run([...elevate, 'systemctl', 'daemon-reload']);
    await run([...elevate, 'systemctl', 'enable', SOCKET_UNIT]);
    await run([...elevate, 'systemctl', 'restart', SOCKET_UNIT]);
    const state = await isActive();
    if (state !== 'active') throw new StepError(`${SOCKET_UNIT} did not start (systemctl is-active says ${JSON.stringify(state)}). See: ${LOGS}`);
    return;
  }
  await tolerated([...elevate, 'systemctl', 'disable', SOCKET_UNIT, SERVICE_UNIT]);
  // With the files gone and disabled, the removal is done whatever the reload says: it fails
  // where systemd is not PID 1 (measured on 252: "System has not been booted with systemd",
  // while disable still removed the wants link), and failing there would make undo put the units
  // back, every time. Whether the socket still listens is what decides, below.
  await tolerated([...elevate, 'systemctl', 'daemon-reload']);
  const state = await isActive();
  if (state === 'active') throw new StepError(`${SOCKET_UNIT} is still active after its unit file was removed${refused ? ` (${refused})` : ''}. Stop it with: sudo systemctl disable --now ${SOCKET_UNIT} ${SERVICE_UNIT}`);
}

function detectOptionsFor(ctx: Context, change: RestartChange): DetectOptions {
  return { root: rootOf(change), home: ctx.env.HOME ?? '', env: ctx.env, port: change.port ?? 11434, path: path.posix };
}

export const relayStrategy: Strategy = {
  id: RELAY_STRATEGY,
  // The relay is not a way Ollama is installed: it is found by the relay inspection, never here.
  detect: async () => undefined,
  plan: () => {
    throw new Error('the relay is planned by planRelay, from the relay facts');
  },
  persistent: true,
  restartWithoutOllama: 'stop and disable the bridge-only relay (Ollama keeps running)',
  commands: () => ({
    start: `sudo systemctl start ${SOCKET_UNIT}`,
    restart: `sudo systemctl restart ${SOCKET_UNIT}`,
    logs: LOGS,
    widen: 'npx stigmer-setup --relay',
    stop: `sudo systemctl disable --now ${SOCKET_UNIT} ${SERVICE_UNIT}`,
  }),
  restartChange,
  restart,
  // The relay's daemon-reload would load someone else's pending edit of ollama.service too.
  async restartBlocker(ctx, options) {
    return systemdStrategy.restartBlocker?.(ctx, options);
  },
  async checkRestart(ctx, change) {
    const blocker = await systemdStrategy.restartBlocker?.(ctx, detectOptionsFor(ctx, change));
    return blocker ? `${blocker.message} The relay's daemon-reload would load it too. Fix: ${blocker.fix}` : undefined;
  },
  writablePaths: (locations, platformPath) => [platformPath.join(locations.root, SOCKET_PATH), platformPath.join(locations.root, SERVICE_PATH)],
};
