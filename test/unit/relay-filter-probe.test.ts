/**
 * Whether the relay's IPAddressAllow= is in force is measured, not inferred from a cgroup2 mount:
 * systemd starts the socket unfiltered where the kernel lacks cgroup BPF. inspect connects to the
 * relay's address from 127.0.0.1, which the allow list never holds. Here a real loopback listener
 * on 127.0.0.2 stands for the gateway; no filter runs in a unit test, so a listener that accepts is
 * "not in force". A dropped SYN (the filter's answer) needs a kernel filter: that side is the e2e's
 * (test/e2e/relay.test.ts), and here only the result's reading is checked with a stand-in connect.
 */
import net from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FILTER_PROBE_TIMEOUT_MS, inspectRelay, SERVICE_PATH, SOCKET_PATH } from '../../platforms/linux/relay.ts';
import { renderServiceUnit, renderSocketUnit, type RelayUnitOptions } from '../../platforms/linux/relay-units.ts';
import type { TcpConnectResult } from '../../scripts/context.ts';
import { NOT_FOUND, ok, tempRoot, testContext } from './support/context.ts';
import { listener, PORT } from './support/facts.ts';
import { because, needs } from './support/portability.ts';

const GATEWAY = '127.0.0.2';
const UNIT: RelayUnitOptions = { gateway: '172.17.0.1', port: PORT, target: '127.0.0.1', protection: 'ip-address-allow', subnets: ['172.17.0.0/16'], proxyd: '/usr/lib/systemd/systemd-socket-proxyd', ollamaUnit: true };
const NETWORKS = [{ name: 'bridge', driver: 'bridge', subnets: ['172.17.0.0/16'], gateways: ['172.17.0.1'], bridgeInterface: 'docker0' }];

let root: string;
let cleanup: () => Promise<void>;
let server: net.Server | undefined;
beforeEach(async () => ({ root, cleanup } = await tempRoot()));
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
  await cleanup();
});

/** Our units, as setup writes them, but listening on `listen` (the renderer refuses a loopback gateway). */
async function installUnits(listen: string, allow = '172.17.0.0/16'): Promise<void> {
  const socket = renderSocketUnit(UNIT).replace(`ListenStream=172.17.0.1:${PORT}`, `ListenStream=${listen}`).replace('IPAddressAllow=172.17.0.0/16', `IPAddressAllow=${allow}`);
  await mkdir(path.join(root, path.dirname(SOCKET_PATH)), { recursive: true });
  await writeFile(path.join(root, SOCKET_PATH), socket);
  await writeFile(path.join(root, SERVICE_PATH), renderServiceUnit(UNIT));
}

/** systemctl says the socket is active; nothing else is on this machine. */
function machine(state = 'active') {
  return testContext({ exec: (command, args) => (command === 'systemctl' && args[0] === 'is-active' ? ok(`${state}\n`) : NOT_FOUND) });
}

function inspect(ctx: ReturnType<typeof testContext>) {
  return inspectRelay(ctx, { root, home: '/nonexistent-home', env: {}, port: PORT, listeners: [listener('127.0.0.1')], nativeRootfulDocker: true, networks: NETWORKS, path: path.posix });
}

/** A listener on the stand-in gateway that records who connected and what they sent. */
async function gatewayListener(): Promise<{ port: number; seen: { from: string; bytes: number }[] }> {
  const seen: { from: string; bytes: number }[] = [];
  server = net.createServer((socket) => {
    const entry = { from: socket.remoteAddress ?? '', bytes: 0 };
    seen.push(entry);
    socket.on('data', (chunk) => (entry.bytes += chunk.length));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => server!.once('error', reject).listen(0, GATEWAY, () => resolve()));
  return { port: (server!.address() as net.AddressInfo).port, seen };
}

describe.skipIf(needs.proc)("the relay's IPAddressAllow=, measured" + because(needs.proc), () => {
  it('a connection from 127.0.0.1 that gets in means the filter is not in force; it sends nothing', async () => {
    const { port, seen } = await gatewayListener();
    await installUnits(`${GATEWAY}:${port}`);
    const found = await inspect(machine());
    expect(found.installed?.protection).toBe('ip-address-allow');
    expect(found.installed?.protectionActive).toBe(false);
    // The probe really came from 127.0.0.1 (bound before connect) and closed without a byte.
    // The server's side of the connection may be seen a turn after the client's: wait, bounded.
    for (let turn = 0; turn < 100 && seen.length === 0; turn++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(seen).toEqual([{ from: '127.0.0.1', bytes: 0 }]);
  });

  it('a dropped SYN (a timeout) means in force; refused or another error means it could not tell', async () => {
    await installUnits(`${GATEWAY}:${PORT}`);
    const ctx = machine();
    const tried: Parameters<typeof ctx.tcpConnect>[0][] = [];
    let answer: TcpConnectResult = { kind: 'error', code: 'timeout', message: 'no answer' };
    // No kernel filter runs here: the connect stands in for one that drops the SYN.
    ctx.tcpConnect = async (options) => (tried.push(options), answer);
    expect((await inspect(ctx)).installed?.protectionActive).toBe(true);
    expect(tried).toEqual([{ host: GATEWAY, port: PORT, localAddress: '127.0.0.1', timeoutMs: FILTER_PROBE_TIMEOUT_MS }]);
    answer = { kind: 'error', code: 'refused', message: 'ECONNREFUSED' };
    expect((await inspect(ctx)).installed?.protectionActive).toBeUndefined();
    answer = { kind: 'error', code: 'other', message: 'EADDRNOTAVAIL' };
    expect((await inspect(ctx)).installed?.protectionActive).toBeUndefined();
  });

  it('nothing listening on the relay address (the real connect is refused): could not tell', async () => {
    const { port } = await gatewayListener();
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    await installUnits(`${GATEWAY}:${port}`);
    expect((await inspect(machine())).installed?.protectionActive).toBeUndefined();
  });

  it('a socket that is not active protects nothing, and is not probed', async () => {
    const { port, seen } = await gatewayListener();
    await installUnits(`${GATEWAY}:${port}`);
    expect((await inspect(machine('inactive'))).installed?.protectionActive).toBe(false);
    // Probed concurrently with is-active, so it may have connected: what counts is the verdict.
    expect(seen.every((entry) => entry.bytes === 0)).toBe(true);
  });

  it('an allow list that covers 127.0.0.1 (a drop-in may add it) makes the probe meaningless: could not tell, no connection', async () => {
    const { port, seen } = await gatewayListener();
    await installUnits(`${GATEWAY}:${port}`, '172.17.0.0/16 127.0.0.0/8');
    expect((await inspect(machine())).installed?.protectionActive).toBeUndefined();
    await installUnits(`${GATEWAY}:${port}`, '172.17.0.0/16 localhost');
    expect((await inspect(machine())).installed?.protectionActive).toBeUndefined();
    expect(seen).toEqual([]);
  });
});
