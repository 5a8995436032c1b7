// Tests for the fake `ollama serve` (test/support/fake-ollama.mjs), which the
// product is tested against. Its parser and bind rules must match
// ollama-facts.md §1; the live tests spawn it for real, on loopback only, on
// kernel-chosen free ports. Nothing here binds a fixed or privileged port.
import http from 'node:http';
import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { bindPlan, hostAllowed, modelList, parseOllamaHost, splitHostPort } from '../support/fake-ollama.mjs';
import { expectStandinFailure, freePort, printBind, startStandin, type RunningStandin } from '../support/standin-process.ts';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One bounded HTTP request (3 s) with an optional Host header override. */
function request(host: string, port: number, path: string, opts: { method?: string; hostHeader?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host,
        port,
        path,
        method: opts.method ?? 'GET',
        headers: opts.hostHeader !== undefined ? { Host: opts.hostHeader } : {},
        timeout: 3000,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

const hasIPv6Loopback = Object.values(os.networkInterfaces()).some((list) =>
  (list ?? []).some((i) => i.address === '::1'),
);

const running: RunningStandin[] = [];
async function start(ollamaHost: string | undefined, env: Record<string, string | undefined> = {}): Promise<RunningStandin> {
  const s = await startStandin({ ollamaHost, env, timeoutMs: 5000 });
  running.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

describe('OLLAMA_HOST parser (envconfig.Host table, ollama-facts.md §1)', () => {
  it.each([
    [undefined, 'http://127.0.0.1:11434', '127.0.0.1', '11434'],
    ['', 'http://127.0.0.1:11434', '127.0.0.1', '11434'],
    ['   ', 'http://127.0.0.1:11434', '127.0.0.1', '11434'],
    ['1.2.3.4', 'http://1.2.3.4:11434', '1.2.3.4', '11434'],
    [':1234', 'http://:1234', '', '1234'],
    ['[::]', 'http://[::]:11434', '::', '11434'],
    ['::1', 'http://[::1]:11434', '::1', '11434'],
    ['[::1]:5000', 'http://[::1]:5000', '::1', '5000'],
    ['http://1.2.3.4', 'http://1.2.3.4:80', '1.2.3.4', '80'],
    ['http://0.0.0.0', 'http://0.0.0.0:80', '0.0.0.0', '80'],
    ['http://127.0.0.1', 'http://127.0.0.1:80', '127.0.0.1', '80'],
    ['https://1.2.3.4', 'https://1.2.3.4:443', '1.2.3.4', '443'],
    ['https://example.com/ollama', 'https://example.com:443/ollama', 'example.com', '443'],
    ['http://1.2.3.4:56789/', 'http://1.2.3.4:56789', '1.2.3.4', '56789'],
    [':66000', 'http://:11434', '', '11434'],
    ['1.2.3.4:-1', 'http://1.2.3.4:11434', '1.2.3.4', '11434'],
    ['1.2.3.4:abc', 'http://1.2.3.4:11434', '1.2.3.4', '11434'],
    ['"0.0.0.0:11434"', 'http://0.0.0.0:11434', '0.0.0.0', '11434'],
    ["'0.0.0.0:11434'", 'http://0.0.0.0:11434', '0.0.0.0', '11434'],
    ['  "0.0.0.0:11434"\n', 'http://0.0.0.0:11434', '0.0.0.0', '11434'],
    ['0.0.0.0', 'http://0.0.0.0:11434', '0.0.0.0', '11434'],
    ['example.com', 'http://example.com:11434', 'example.com', '11434'],
    ['example.com:1234', 'http://example.com:1234', 'example.com', '1234'],
    ['ollama.com', 'https://ollama.com:443', 'ollama.com', '443'],
  ])('%j -> %s', (raw, url, host, port) => {
    const p = parseOllamaHost(raw);
    expect(p.url).toBe(url);
    expect(p.host).toBe(host);
    expect(p.port).toBe(port);
  });

  it('flags an invalid port the way Ollama logs "invalid port, using default"', () => {
    expect(parseOllamaHost(':66000').invalidPort).toBe('66000');
    expect(parseOllamaHost(':11434').invalidPort).toBeNull();
  });

  it('splitHostPort follows Go net.SplitHostPort failures', () => {
    expect(splitHostPort('::1')).toBeNull(); // too many colons
    expect(splitHostPort('[::1]')).toBeNull(); // missing port
    expect(splitHostPort('1.2.3.4')).toBeNull();
    expect(splitHostPort('[::1]:80')).toEqual({ host: '::1', port: '80' });
    expect(splitHostPort(':80')).toEqual({ host: '', port: '80' });
  });

  it.each([
    ['', 'wildcard', '::'],
    [':11434', 'wildcard', '::'],
    ['0.0.0.0:11434', 'wildcard', '::'],
    ['[::]:11434', 'wildcard', '::'],
    ['::', 'wildcard', '::'],
    ['127.0.0.1:11434', 'ip', '127.0.0.1'],
    ['[::1]:11434', 'ip', '::1'],
    ['::ffff:127.0.0.1', 'ip', '127.0.0.1'],
    ['172.17.0.1:11434', 'ip', '172.17.0.1'],
    ['localhost:11434', 'hostname', 'localhost'],
  ])('bind plan for %j: %s %s (Go net.Listen "tcp")', (raw, kind, address) => {
    // '' here means OLLAMA_HOST unset/empty -> 127.0.0.1, so test it separately below.
    const plan = bindPlan(parseOllamaHost(raw === '' ? ':11434' : raw));
    expect(plan.kind).toBe(kind);
    expect(plan.address).toBe(address);
    expect(plan.ipv6Only).toBe(false);
  });

  it('default (unset) binds loopback only', () => {
    expect(bindPlan(parseOllamaHost(undefined))).toMatchObject({ kind: 'ip', address: '127.0.0.1', port: 11434 });
  });

  it('--print-bind reports port 80 for http://127.0.0.1 without opening a socket', async () => {
    const out = (await printBind('http://127.0.0.1')) as { url: string; bind: { port: number; address: string } };
    expect(out.url).toBe('http://127.0.0.1:80');
    expect(out.bind).toMatchObject({ address: '127.0.0.1', port: 80 });
    const wild = (await printBind('http://0.0.0.0')) as { bind: { kind: string; port: number } };
    expect(wild.bind).toMatchObject({ kind: 'wildcard', port: 80 });
  });
});

describe('Host-header guard (allowedHostsMiddleware)', () => {
  const opts = { hostname: 'devbox', localAddresses: new Set(['192.0.2.2']) };
  it.each([
    ['evil.example', false],
    ['evil.example:11434', false],
    ['8.8.8.8:11434', false],
    ['[2001:db8::1]:11434', false],
    ['host.docker.internal', true],
    ['host.docker.internal:11434', true],
    ['localhost:11434', true],
    ['LOCALHOST', true],
    ['api.localhost', true],
    ['printer.local', true],
    ['devbox:11434', true],
    ['DevBox', true],
    ['127.0.0.1:11434', true],
    ['127.9.9.9', true],
    ['[::1]:11434', true],
    ['10.1.2.3', true],
    ['172.17.0.1:11434', true],
    ['192.168.1.1', true],
    ['[fd00::2]:1', true],
    ['0.0.0.0:11434', true],
    ['192.0.2.2:11434', true], // an interface address of this machine
    ['', true],
  ])('loopback listener, Host %j -> allowed=%s', (host, allowed) => {
    expect(hostAllowed('127.0.0.1', host, opts)).toBe(allowed);
    expect(hostAllowed('::1', host, opts)).toBe(allowed);
  });

  it('non-loopback listeners accept every Host', () => {
    expect(hostAllowed('::', 'evil.example', opts)).toBe(true);
    expect(hostAllowed('172.17.0.1', 'evil.example', opts)).toBe(true);
  });
});

describe('models', () => {
  it('defaults to qwen2.5-coder:7b, empty string means none, bare names get :latest', () => {
    expect(modelList(undefined).map((m) => m.name)).toEqual(['qwen2.5-coder:7b']);
    expect(modelList('')).toEqual([]);
    expect(modelList('llama3, qwen2.5-coder:7b').map((m) => m.model)).toEqual(['llama3:latest', 'qwen2.5-coder:7b']);
  });
});

describe('live stand-in on loopback', () => {
  it('127.0.0.1:PORT serves /, /api/version, /api/tags and 404s the rest', async () => {
    const port = await freePort();
    const s = await start(`127.0.0.1:${port}`, { STANDIN_VERSION: '0.9.9' });
    expect(s.listenAddr).toBe(`127.0.0.1:${port}`);
    expect(s.log()).toContain(`Listening on 127.0.0.1:${port} (version 0.9.9)`);

    const root = await request('127.0.0.1', port, '/');
    expect(root.status).toBe(200);
    expect(root.body).toBe('Ollama is running');
    expect(root.headers['content-type']).toMatch(/^text\/plain/);

    const head = await request('127.0.0.1', port, '/', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');

    const version = await request('127.0.0.1', port, '/api/version');
    expect(JSON.parse(version.body)).toEqual({ version: '0.9.9' });
    expect((await request('127.0.0.1', port, '/api/version', { method: 'HEAD' })).status).toBe(200);

    const tags = JSON.parse((await request('127.0.0.1', port, '/api/tags')).body) as { models: { name: string; model: string; size: number }[] };
    expect(tags.models.map((m) => m.name)).toEqual(['qwen2.5-coder:7b']);
    expect(tags.models[0]?.size).toBeGreaterThan(0);

    expect((await request('127.0.0.1', port, '/nope')).status).toBe(404);
    expect((await request('127.0.0.1', port, '/', { method: 'POST' })).status).toBe(404);
  });

  it('loopback bind: Host evil.example -> 403, host.docker.internal allowed', async () => {
    const port = await freePort();
    await start(`127.0.0.1:${port}`);
    expect((await request('127.0.0.1', port, '/', { hostHeader: 'evil.example' })).status).toBe(403);
    expect((await request('127.0.0.1', port, '/api/tags', { hostHeader: `evil.example:${port}` })).status).toBe(403);
    const ok = await request('127.0.0.1', port, '/api/version', { hostHeader: `host.docker.internal:${port}` });
    expect(ok.status).toBe(200);
    expect((await request('127.0.0.1', port, '/', { hostHeader: 'localhost' })).status).toBe(200);
  });

  it(':PORT binds the dual-stack wildcard ([::]) and then accepts any Host', async () => {
    const port = await freePort();
    const s = await start(`:${port}`);
    expect(s.listenAddr).toBe(`[::]:${port}`);
    expect((await request('127.0.0.1', port, '/')).status).toBe(200);
    if (hasIPv6Loopback) expect((await request('::1', port, '/')).status).toBe(200);
    // Listener is not loopback, so no Host guard.
    expect((await request('127.0.0.1', port, '/', { hostHeader: 'evil.example' })).status).toBe(200);
  });

  it('quoted "0.0.0.0:PORT" (with whitespace) binds [::] too', async () => {
    const port = await freePort();
    const s = await start(`  "0.0.0.0:${port}" `);
    expect(s.listenAddr).toBe(`[::]:${port}`);
    expect((await request('127.0.0.1', port, '/api/version')).status).toBe(200);
  });

  it("single-quoted '127.0.0.1:PORT' binds loopback only", async () => {
    const port = await freePort();
    const s = await start(`'127.0.0.1:${port}'`);
    expect(s.listenAddr).toBe(`127.0.0.1:${port}`);
    if (hasIPv6Loopback) await expect(request('::1', port, '/')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it.runIf(hasIPv6Loopback)('[::1]:PORT binds IPv6 loopback only, with the Host guard', async () => {
    const port = await freePort();
    const s = await start(`[::1]:${port}`);
    expect(s.listenAddr).toBe(`[::1]:${port}`);
    expect((await request('::1', port, '/')).status).toBe(200);
    expect((await request('::1', port, '/', { hostHeader: 'evil.example' })).status).toBe(403);
    await expect(request('127.0.0.1', port, '/')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('STANDIN_MODELS controls /api/tags ("" = no models)', async () => {
    const port = await freePort();
    await start(`127.0.0.1:${port}`, { STANDIN_MODELS: '' });
    expect(JSON.parse((await request('127.0.0.1', port, '/api/tags')).body)).toEqual({ models: [] });

    const port2 = await freePort();
    await start(`127.0.0.1:${port2}`, { STANDIN_MODELS: 'llama3.2:3b,nomic-embed-text' });
    const tags = JSON.parse((await request('127.0.0.1', port2, '/api/tags')).body) as { models: { name: string }[] };
    expect(tags.models.map((m) => m.name)).toEqual(['llama3.2:3b', 'nomic-embed-text:latest']);
  });

  it('exits 1 with Go-like error when the port is taken', async () => {
    const port = await freePort();
    await start(`127.0.0.1:${port}`);
    const fail = await expectStandinFailure({ ollamaHost: `127.0.0.1:${port}`, timeoutMs: 5000 });
    expect(fail.code).toBe(1);
    expect(fail.log).toContain(`Error: listen tcp 127.0.0.1:${port}: bind: address already in use`);
  });

  it('exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const s = await startStandin({ ollamaHost: `127.0.0.1:${port}`, timeoutMs: 5000 });
    expect(await s.stop()).toBe(0);
    await expect(request('127.0.0.1', port, '/')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
