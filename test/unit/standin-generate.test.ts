// The stand-in's POST /api/generate (test/support/fake-ollama.mjs), which the relay e2e streams
// through the relay: the NDJSON shape of ollama/ollama docs/api.md "Generate a completion", its
// errors, and the Host guard in front of it. Spawned for real on a kernel-chosen loopback port.
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { generatedToken } from '../support/fake-ollama.mjs';
import { freePort, startStandin, type RunningStandin } from '../support/standin-process.ts';

interface Reply {
  status: number;
  type: string | undefined;
  body: string;
}

function post(port: number, body: string, hostHeader?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/api/generate', method: 'POST', timeout: 5000, agent: false, headers: { 'Content-Type': 'application/json', ...(hostHeader ? { Host: hostHeader } : {}) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

describe('stand-in POST /api/generate', () => {
  let standin: RunningStandin | undefined;
  afterEach(async () => {
    await standin?.stop();
    standin = undefined;
  });
  const start = async () => {
    standin = await startStandin({ ollamaHost: `127.0.0.1:${await freePort()}`, timeoutMs: 5000 });
    return standin.port;
  };

  it('streams one NDJSON object per token, then a final done object with the counts', async () => {
    const port = await start();
    const r = await post(port, JSON.stringify({ model: 'qwen2.5-coder:7b', prompt: 'why', options: { num_predict: 300 } }));
    expect(r.status).toBe(200);
    expect(r.type).toBe('application/x-ndjson');
    const lines = r.body.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(301);
    expect(lines[0]).toMatchObject({ model: 'qwen2.5-coder:7b', done: false });
    expect(typeof lines[0]?.created_at).toBe('string');
    const last = lines[300];
    expect(last).toMatchObject({ response: '', done: true, done_reason: 'length', eval_count: 300 });
    for (const key of ['context', 'total_duration', 'load_duration', 'prompt_eval_count', 'prompt_eval_duration', 'eval_duration']) expect(last).toHaveProperty(key);
    // Deterministic: the same prompt gives the same text on every path.
    expect(lines.slice(0, 300).map((l) => l.response).join('')).toBe(Array.from({ length: 300 }, (_, i) => generatedToken('why', i)).join(''));
  });

  it('stream:false gives one JSON object with the whole response; a bare model name means :latest', async () => {
    const port = await start();
    const r = await post(port, JSON.stringify({ model: 'qwen2.5-coder:7b', prompt: 'x', stream: false }));
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^application\/json/);
    const obj = JSON.parse(r.body) as { response: string; done: boolean; done_reason: string };
    expect(obj).toMatchObject({ done: true, done_reason: 'stop' });
    expect(obj.response.length).toBeGreaterThan(0);
    const missing = await post(port, JSON.stringify({ model: 'qwen2.5-coder', prompt: 'x' }));
    expect(missing.status).toBe(404);
  });

  it('errors as Ollama words them: unknown model 404, no model 400, empty body 400; a foreign Host gets 403 first', async () => {
    const port = await start();
    expect(await post(port, JSON.stringify({ model: 'nope', prompt: 'x' }))).toMatchObject({ status: 404, body: '{"error":"model \\"nope\\" not found, try pulling it first"}' });
    expect(await post(port, JSON.stringify({ prompt: 'x' }))).toMatchObject({ status: 400, body: '{"error":"model is required"}' });
    expect(await post(port, '')).toMatchObject({ status: 400, body: '{"error":"missing request body"}' });
    expect(await post(port, '{}', 'evil.example.com')).toMatchObject({ status: 403, body: '' });
  });
});
