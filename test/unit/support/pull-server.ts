/**
 * A loopback HTTP server that answers POST /api/pull the way Ollama does (routes.go
 * streamResponse: HTTP 200 and application/x-ndjson committed with the first line, an error as a
 * last `{"error"}` line; errors before streaming as HTTP 400), with the lines a test gives it,
 * in the chunks the test chooses. /api/tags lists the models it holds, and a pull that ends with
 * `success` adds the model, as Ollama's store does. Everything else is 404.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface PullScript {
  /** HTTP 400 with this body instead of a stream. */
  reject?: string;
  /** The body, as the chunks to write (each flushed on its own). */
  chunks: string[];
  /** Stop here without ending the response properly (the socket is destroyed): Ollama restarted. */
  breakOff?: boolean;
  /** Called after each chunk is written (e.g. to raise a signal mid-download). */
  afterChunk?: (index: number) => void | Promise<void>;
  /** Keep the connection open after the chunks without writing (a silent server). */
  hang?: boolean;
}

export interface PullServer {
  url: string;
  port: number;
  models: string[];
  /** Every request body POSTed to /api/pull. */
  pulls: unknown[];
  /** Set when the client went away before the stream ended. */
  clientLeft: boolean;
  script: (model: string) => PullScript;
  close(): Promise<void>;
}

export async function startPullServer(options: { models?: string[]; version?: string; script?: (model: string) => PullScript } = {}): Promise<PullServer> {
  const sockets = new Set<import('node:net').Socket>();
  const state: Omit<PullServer, 'url' | 'port' | 'close'> = {
    models: [...(options.models ?? [])],
    pulls: [],
    clientLeft: false,
    script: options.script ?? (() => ({ chunks: ['{"status":"success"}\n'] })),
  };
  const server = http.createServer(async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    if (request.method === 'GET' && url.pathname === '/api/version') return void response.end(JSON.stringify({ version: options.version ?? '0.13.5' }));
    if (request.method === 'GET' && url.pathname === '/api/tags') {
      return void response.end(JSON.stringify({ models: state.models.map((name) => ({ name, model: name, size: 1 })) }));
    }
    if (request.method === 'POST' && url.pathname === '/api/pull') {
      let body = '';
      for await (const chunk of request) body += chunk;
      let parsed: { model?: string; name?: string } = {};
      try {
        parsed = JSON.parse(body);
      } catch {
        response.writeHead(400, { 'Content-Type': 'application/json' });
        return void response.end(JSON.stringify({ error: 'invalid character' }));
      }
      state.pulls.push(parsed);
      const model = parsed.model ?? parsed.name ?? '';
      const script = state.script(model);
      if (script.reject !== undefined) {
        response.writeHead(400, { 'Content-Type': 'application/json; charset=utf-8' });
        return void response.end(script.reject);
      }
      response.on('close', () => {
        if (!response.writableEnded) state.clientLeft = true;
      });
      response.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
      for (const [index, chunk] of script.chunks.entries()) {
        if (response.destroyed) return;
        await new Promise<void>((resolve) => response.write(chunk, () => resolve()));
        await script.afterChunk?.(index);
      }
      if (script.hang) return;
      if (script.breakOff) return void response.socket?.destroy();
      if (script.chunks.join('').split('\n').some((line) => line.includes('"status":"success"'))) state.models.push(model);
      return void response.end();
    }
    response.writeHead(404);
    response.end('404 page not found');
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const result = state as PullServer;
  result.url = `http://127.0.0.1:${port}`;
  result.port = port;
  result.close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return result;
}

/** Lines as an NDJSON body: each followed by a newline. */
export function ndjson(lines: string[]): string {
  return lines.map((line) => `${line}\n`).join('');
}
