/**
 * The listener reader against the live kernel: real sockets on random loopback ports, read back
 * through the real /proc/net/tcp{,6}.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createNodeContext } from '../../scripts/node-context.ts';
import { findOwners, readListeners } from '../../platforms/linux/listeners.ts';
import { widestScope } from '../../scripts/listeners.ts';
import { because, needs } from './support/portability.ts';

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

function listen(host: string, port = 0, ipv6Only = false): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    servers.push(server);
    server.once('error', reject);
    server.listen({ host, port, ipv6Only }, () => resolve((server.address() as net.AddressInfo).port));
  });
}

describe.skipIf(needs.proc)('readListeners' + because(needs.proc), () => {
  const ctx = createNodeContext();

  it('sees a 127.0.0.1 listener as loopback, and finds this process as its owner', async () => {
    const port = await listen('127.0.0.1');
    const listeners = await readListeners(ctx, port);
    expect(listeners.map((l) => [l.address, l.family, l.scope])).toEqual([['127.0.0.1', 4, 'loopback']]);
    await findOwners(ctx, listeners);
    expect(listeners[0]?.owner?.pid).toBe(process.pid);
    expect(widestScope(listeners)).toBe('loopback');
  });

  it('sees a dual-stack :: listener (what Go opens for 0.0.0.0) as a wildcard', async () => {
    const port = await listen('::');
    const listeners = await readListeners(ctx, port);
    expect(listeners.map((l) => [l.address, l.family])).toEqual([['::', 6]]);
    expect(widestScope(listeners)).toBe('wildcard');
  });

  it('sees 0.0.0.0 in /proc/net/tcp as a wildcard', async () => {
    const port = await listen('0.0.0.0');
    expect(widestScope(await readListeners(ctx, port))).toBe('wildcard');
  });

  it('reports nothing for a port nobody listens on', async () => {
    const port = await listen('127.0.0.1');
    await new Promise((resolve) => servers.pop()?.close(resolve));
    expect(await readListeners(ctx, port)).toEqual([]);
  });
});
