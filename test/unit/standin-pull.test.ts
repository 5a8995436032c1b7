// The stand-in's POST /api/pull (test/support/fake-ollama.mjs), which the pull e2e tests run the
// CLI against. What it must do is Ollama's, not our client's: the captured lines byte for byte,
// HTTP 200 committed on the first line, an error as the last line, HTTP 400 before streaming for
// a body or name PullHandler refuses, a dropped connection without `success`, and the model in
// /api/tags afterwards. Spawned for real on loopback, on kernel-chosen ports.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pullNameValid, pullScenarioFor, PULL_SCENARIOS } from '../support/fake-ollama.mjs';
import { freePort, startStandin, type RunningStandin } from '../support/standin-process.ts';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'ollama-pull');
const fixture = (name: string) => readFileSync(path.join(FIXTURES, name), 'utf8');

interface PullReply {
  status: number;
  contentType: string | undefined;
  body: string;
  /** The response ended cleanly (false: the connection dropped mid-body). */
  complete: boolean;
}

function pull(port: number, body: string): Promise<PullReply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/api/pull', method: 'POST', timeout: 5000, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      const done = (complete: boolean) => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body: text, complete });
      res.on('end', () => done(res.complete));
      res.on('aborted', () => done(false));
      res.on('error', () => done(false));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

function getTags(port: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/api/tags', timeout: 3000, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve((JSON.parse(text) as { models: { name: string }[] }).models.map((m) => m.name)));
      })
      .on('error', reject);
  });
}

const lines = (body: string) => body.split('\n').filter((l) => l !== '');

let running: RunningStandin | undefined;
let scratch: string | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
});

async function start(pullSpec: string, models = '') {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'stigmer-standin-pull-'));
  const log = path.join(scratch, 'requests.ndjson');
  running = await startStandin({
    ollamaHost: `127.0.0.1:${await freePort()}`,
    env: { STANDIN_MODELS: models, STANDIN_PULL: pullSpec, STANDIN_PULL_INTERVAL_MS: '0', STANDIN_REQUEST_LOG: log },
  });
  const requests = () => lines(readFileSync(log, 'utf8')).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { port: running.port, requests };
}

describe('the stand-in streams the captured pulls as Ollama does', () => {
  it.each([
    ['legacy', 'success-two-layers-ollama-4417-joined.ndjson'],
    ['cached', 'cached-six-layers-llama2-deep-dive.ndjson'],
    ['unknown', 'unknown-model-podman-desktop-1626.ndjson'],
  ])('%s: HTTP 200, application/x-ndjson, the capture byte for byte', async (scenario, file) => {
    const { port } = await start(scenario);
    const reply = await pull(port, JSON.stringify({ model: 'qwen2.5-coder:7b', stream: true }));
    expect(reply.status).toBe(200);
    expect(reply.contentType).toBe('application/x-ndjson');
    expect(reply.body).toBe(fixture(file));
    expect(reply.complete).toBe(true);
  });

  it('a first pull: the layers, then verifying / writing manifest / success, and no prune step', async () => {
    const { port } = await start('success');
    const statuses = lines((await pull(port, '{"model":"qwen2.5-coder:7b"}')).body).map((l) => (JSON.parse(l) as { status: string }).status);
    expect(statuses[0]).toBe('pulling manifest');
    expect(new Set(statuses.filter((s) => s.startsWith('pulling ') && s !== 'pulling manifest'))).toEqual(new Set(['pulling 26bd607a51eb', 'pulling 5bbbf644084d']));
    expect(statuses.slice(-3)).toEqual(['verifying sha256 digest', 'writing manifest', 'success']);
  });

  it('replace: the current "removing unused layers" step before success', async () => {
    const { port } = await start('replace');
    const tail = lines((await pull(port, '{"model":"qwen2.5-coder:7b"}')).body).slice(-2);
    expect(tail).toEqual(['{"status":"removing unused layers"}', '{"status":"success"}']);
  });

  it('an error after streaming started is the last line of a 200 stream, with the captured text', async () => {
    const { port, requests } = await start('dns');
    const reply = await pull(port, '{"model":"qwen2.5-coder:7b","stream":true}');
    expect(reply.status).toBe(200);
    const got = lines(reply.body);
    expect(got).toEqual([
      '{"status":"pulling manifest"}',
      JSON.stringify({ error: fixture('cli-error-dns-server-misbehaving-ollama-8065.txt').split('\n')[1]?.slice('Error: '.length) }),
    ]);
    expect(requests().at(-1)).toMatchObject({ event: 'pull-end', outcome: 'error' });
  });

  it('disk full arrives mid-layer, after progress lines, with the current blob-path text', async () => {
    const { port } = await start('disk-full');
    const got = lines((await pull(port, '{"model":"qwen2.5-coder:7b"}')).body).map((l) => JSON.parse(l) as { status?: string; completed?: number; error?: string });
    expect(got.some((o) => (o.completed ?? 0) > 0)).toBe(true);
    expect(got.at(-1)?.error).toMatch(/^write \/usr\/share\/ollama\/\.ollama\/models\/blobs\/sha256-[0-9a-f]{64}-partial: no space left on device$/);
    expect(got.some((o) => o.status === 'success')).toBe(false);
  });

  it('cut: the connection drops part-way, with neither success nor an error line', async () => {
    const { port, requests } = await start('cut');
    const reply = await pull(port, '{"model":"qwen2.5-coder:7b"}');
    expect(reply.status).toBe(200);
    expect(reply.complete).toBe(false);
    expect(reply.body).not.toContain('success');
    expect(reply.body).not.toContain('"error"');
    expect(lines(reply.body).length).toBeGreaterThan(1);
    expect(requests().at(-1)).toMatchObject({ event: 'pull-end', outcome: 'cut' });
  });

  it('after a successful pull the model is in /api/tags; after a failed one it is not', async () => {
    const { port } = await start('qwen2.5-coder:7b=success,*=unknown');
    expect(await getTags(port)).toEqual([]);
    await pull(port, '{"model":"llama3.2"}');
    expect(await getTags(port)).toEqual([]);
    await pull(port, '{"model":"qwen2.5-coder:7b","stream":true}');
    expect(await getTags(port)).toEqual(['qwen2.5-coder:7b']);
  });

  it('"stream": false answers once: the last object, or HTTP 500 with the error', async () => {
    const { port } = await start('qwen2.5-coder:7b=success,*=unknown');
    const ok = await pull(port, '{"model":"qwen2.5-coder:7b","stream":false}');
    expect([ok.status, ok.body]).toEqual([200, '{"status":"success"}']);
    const failed = await pull(port, '{"model":"nope","stream":false}');
    expect([failed.status, failed.body]).toEqual([500, '{"error":"pull model manifest: file does not exist"}']);
  });
});

describe('what PullHandler refuses before streaming is HTTP 400 {"error"}', () => {
  it.each([
    ['', 'missing request body'],
    ['xyz', "invalid character 'x' looking for beginning of value"],
    ['{"model":1}', 'json: cannot unmarshal number into Go struct field PullRequest.model of type string'],
    ['{"model":"bad name!"}', 'invalid model name'],
    ['{}', 'invalid model name'],
  ])('%j -> %s', async (body, error) => {
    const { port, requests } = await start('success');
    const reply = await pull(port, body);
    expect(reply.status).toBe(400);
    expect(reply.contentType).toBe('application/json; charset=utf-8');
    expect(JSON.parse(reply.body)).toEqual({ error });
    expect(requests().at(-1)).toMatchObject({ event: 'pull-end', outcome: 'bad-request' });
  });
});

describe('pure parts', () => {
  it('STANDIN_PULL picks by model name, with ":latest" implied and a "*" default', () => {
    expect(pullScenarioFor(undefined, 'x')).toBe('success');
    expect(pullScenarioFor('slow', 'anything')).toBe('slow');
    expect(pullScenarioFor('llama3.2=cut,*=unknown', 'llama3.2:latest')).toBe('cut');
    expect(pullScenarioFor('llama3.2=cut,*=unknown', 'qwen2.5-coder:7b')).toBe('unknown');
  });

  it("Ollama's name grammar: host/namespace/model:tag parts", () => {
    for (const ok of ['qwen2.5-coder:7b', 'llama3.2', 'hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M', 'localhost:5000/ns/m:t']) expect(pullNameValid(ok), ok).toBe(true);
    for (const bad of ['', 'bad name!', '-x', 'a/b.c/m', 'm:' + 't'.repeat(81), 'a/b/c/d/m']) expect(pullNameValid(bad), bad).toBe(false);
  });

  it('every scenario ends in success, an error line or a cut, and every error text comes from a fixture', () => {
    const texts = ['cli-error-dns-server-misbehaving-ollama-8065.txt', 'cli-error-dns-no-such-host-ollama-437.txt', 'cli-error-dns-i-o-timeout-ollama-3434.txt', 'cli-error-connect-i-o-timeout-ollama-4933.txt', 'cli-error-connection-reset-ollama-12435.txt', 'cli-error-blob-cdn-no-such-host-ollama-4992.txt', 'cli-error-disk-full-ollama-1731.txt', 'cli-error-disk-full-mid-layer-ollama-15547.txt', 'cli-error-max-retries-eof-ollama-1770.txt', 'unknown-model-podman-desktop-1626.ndjson'].map(fixture).join('\n');
    for (const [name, build] of Object.entries(PULL_SCENARIOS)) {
      const steps = build();
      const last = steps.at(-1) as { status?: string; error?: string; cut?: boolean };
      expect(last.status === 'success' || last.cut === true || typeof last.error === 'string', name).toBe(true);
      if (typeof last.error === 'string') expect(texts, name).toContain(last.error);
      // Every status of the captured scenarios is one Ollama sends; only "hostile" makes its own.
      if (name !== 'hostile') for (const step of steps as { status?: string }[]) if (step.status !== undefined) expect(step.status, name).not.toMatch(/[\x00-\x1f\x7f]/);
      expect((steps[0] as { status?: string }).status, name).toBe('pulling manifest');
    }
  });
});
