/**
 * What a wrong or hostile server can put into a pull's stream never reaches the terminal raw,
 * whole, or unbounded: escape codes in status strings, a 1 MB status, a line past Ollama's own
 * 8 MB bound, a digest that is not one, and control characters in an error text.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_LINE_BYTES, parsePullLine, pullModel, type PullEvent } from '../../scripts/pull.ts';
import { PullProgressView, type ProgressSink } from '../../scripts/pull-progress.ts';
import { testContext } from './support/context.ts';
import { ndjson, startPullServer, type PullServer } from './support/pull-server.ts';

let server: PullServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const ESCAPES = '\x1b]0;pwned\x07\x1b[2J\x1b[31m\r\u202e\x00\x9b';
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]/;

function capture(live: boolean) {
  const written: string[] = [];
  const sink: ProgressSink = {
    redraw: (text) => void written.push(text),
    endRedraw: () => {},
    line: (text) => void written.push(text),
    spinner: (text) => void (text !== undefined && written.push(text)),
  };
  let now = 0;
  return { written, view: new PullProgressView(sink, { live, now: () => (now += 200), model: 'm' }) };
}

describe('hostile status strings', () => {
  it('escape codes and bidi overrides are stripped before any status is shown (spinner, bar label, plain line)', () => {
    for (const live of [true, false]) {
      const { written, view } = capture(live);
      const events = [
        JSON.stringify({ status: `pulling manifest${ESCAPES}` }),
        JSON.stringify({ status: `pulling ${ESCAPES}`, digest: 'sha256:zz', total: 100, completed: 50 }),
        JSON.stringify({ status: `verifying${ESCAPES}` }),
      ].map(parsePullLine);
      for (const parsed of events) if (parsed.kind === 'event') view.update(parsed.event);
      view.finish({ ok: false, bytes: 0 });
      expect(written.length).toBeGreaterThan(2);
      for (const text of written) expect(text).not.toMatch(CONTROL);
      expect(written.join('\n')).toContain('pulling manifest');
      // The whole OSC title sequence goes, its text included.
      expect(written.join('\n')).not.toContain('pwned');
    }
  });

  it('a 1 MB status is shown cut short, never whole', () => {
    const { written, view } = capture(true);
    const parsed = parsePullLine(JSON.stringify({ status: 'x'.repeat(1 << 20) }));
    expect(parsed.kind).toBe('event');
    view.update((parsed as { event: PullEvent }).event);
    expect(written).toHaveLength(1);
    expect(written[0]?.length).toBeLessThanOrEqual(80);
  });

  it('a digest that is not one is dropped, so it never labels a bar', () => {
    expect(parsePullLine(JSON.stringify({ status: 'pulling', digest: `sha256:${ESCAPES}`, total: 5 }))).toMatchObject({ event: { digest: undefined } });
  });
});

describe('hostile streams, over real HTTP', () => {
  it('a line past the 8 MB bound ends the request as a failure instead of filling memory', async () => {
    const big = 'y'.repeat(MAX_LINE_BYTES + 1024);
    server = await startPullServer({ script: () => ({ chunks: ['{"status":"pulling manifest"}\n', `{"status":"${big.slice(0, big.length / 2)}`, `${big.slice(big.length / 2)}"}\n`, '{"status":"success"}\n'] }) });
    const result = await pullModel(testContext(), { baseUrl: server.url, model: 'qwen2.5-coder:7b' });
    expect(result).toMatchObject({ ok: false, failure: 'incomplete', detail: expect.stringMatching(/longer than 8 MB/) });
  });

  it('a 1 MB status line inside the bound is read, and its text stays bounded', async () => {
    const events: PullEvent[] = [];
    server = await startPullServer({ script: () => ({ chunks: [ndjson([JSON.stringify({ status: 'z'.repeat(1 << 20) }), '{"status":"success"}'])] }) });
    const result = await pullModel(testContext(), { baseUrl: server.url, model: 'qwen2.5-coder:7b', onEvent: (event) => events.push(event) });
    expect(result.ok).toBe(true);
    expect(events[0]?.status.length).toBeLessThanOrEqual(200);
  });

  it('an error text with escape codes is one clean line in the outcome', async () => {
    server = await startPullServer({ script: () => ({ chunks: [ndjson([JSON.stringify({ error: `pull model manifest: file does not exist${ESCAPES}\nTry one of these models:\n  a\n  b` })])] }) });
    const result = await pullModel(testContext(), { baseUrl: server.url, model: 'qwen2.5-coder:7b' });
    expect(result.failure).toBe('unknown-model');
    expect(result.detail).not.toMatch(CONTROL);
    expect(result.detail).not.toContain('\n');
  });

  it('an HTTP 400 with a huge HTML body (a proxy\'s page) is quoted as one short line', async () => {
    server = await startPullServer({ script: () => ({ reject: `<html>${'\x1b[2J'.repeat(10)}${'blocked '.repeat(100_000)}</html>`, chunks: [] }) });
    const result = await pullModel(testContext(), { baseUrl: server.url, model: 'qwen2.5-coder:7b' });
    expect(result.failure).toBe('rejected');
    expect(result.detail?.length).toBeLessThanOrEqual(200);
    expect(result.detail).not.toMatch(CONTROL);
  });
});
