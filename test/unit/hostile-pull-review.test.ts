/**
 * R2's hostile review of the pull (issue 13): what a user would hit, each as a test that failed
 * on the code as merged (ed57211).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { pullModel } from '../../scripts/pull.ts';
import { testContext } from './support/context.ts';

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

/** A loopback server whose /api/pull answers `status` and writes `bytes` of body, then neither ends nor closes (a wrong server, a stuck proxy). */
async function endlessErrorServer(status: number, bytes: number): Promise<{ url: string; left: () => boolean }> {
  const sockets = new Set<Socket>();
  let clientLeft = false;
  const server = http.createServer((request, response) => {
    request.resume();
    response.on('close', () => void (clientLeft = true));
    response.writeHead(status, { 'Content-Type': 'text/html' });
    const piece = '<p>' + 'x'.repeat(16 * 1024 - 7) + '</p>';
    for (let sent = 0; sent < bytes; sent += piece.length) response.write(piece);
    // No end(): the body goes on as far as the client can tell.
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, left: () => clientLeft };
}

describe('an error answer that never ends', () => {
  it('HTTP 502 with a body that goes on: the pull says Ollama refused, with what it answered, at once — not a silence timeout minutes later', async () => {
    const server = await endlessErrorServer(502, 512 * 1024);
    // A short silence bound: the old code read the body until the server went quiet, and then
    // reported a broken-off stream ("incomplete") instead of the refusal it had in hand.
    const result = await pullModel(testContext(), { baseUrl: server.url, model: 'qwen2.5-coder:7b', silenceMs: 1500 });
    expect(result).toMatchObject({ ok: false, failure: 'rejected', status: 502, detail: expect.stringMatching(/^<p>x+/) });
    expect(result.detail?.length).toBeLessThanOrEqual(200);
  });
});
