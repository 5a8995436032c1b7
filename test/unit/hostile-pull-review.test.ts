/**
 * R2's hostile review of the pull (issue 13): what a user would hit, each as a test that failed
 * on the code as merged (ed57211).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Change } from '../../platforms/types.ts';
import { Progress } from '../../scripts/progress.ts';
import { pullModel } from '../../scripts/pull.ts';
import type { JsonReport } from '../../scripts/report.ts';
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

describe('Ctrl-C during the pull after checks that failed', () => {
  function progressAfterChecks(status: 'ok' | 'fail', applied: boolean): Progress {
    const report = { ok: false, command: 'setup', platform: 'linux', strategy: 'systemd', dryRun: false, changes: [], checks: [], warnings: [] } as unknown as JsonReport;
    const progress = new Progress(testContext(), report);
    const changes = applied ? ([{ type: 'restart', description: 'restart Ollama' }] as unknown as Change[]) : [];
    progress.planned(report, changes);
    if (applied) progress.appliedFlags([true]);
    progress.checks([{ id: 'container.reach', status, message: 'the agent-runner container cannot reach Ollama' }]);
    progress.at('pull');
    progress.pulling = { model: 'qwen2.5-coder:7b', resume: 'npx stigmer-setup --yes --pull', started: true };
    return progress;
  }
  const commands = { undo: 'npx stigmer-setup undo', doctor: 'npx stigmer-setup doctor' };

  it('a check failed: the message never says the network setup is verified, and names the failed check', () => {
    for (const applied of [true, false]) {
      const message = progressAfterChecks('fail', applied).interruptedMessage('SIGINT', commands);
      expect(message).toContain('Ollama keeps what it downloaded');
      expect(message).not.toMatch(/verified/);
      expect(message).toMatch(/container\.reach/);
    }
  });

  it('every check passed: the message still says the network part is in place and verified', () => {
    expect(progressAfterChecks('ok', true).interruptedMessage('SIGINT', commands)).toMatch(/The network change is in place and verified/);
    expect(progressAfterChecks('ok', false).interruptedMessage('SIGINT', commands)).toMatch(/already in place and is verified/);
  });
});

describe('a signal after Ollama said success', () => {
  it('the success line arrived, the answer had not ended yet: the model is pulled, not "stopped"', async () => {
    const ctx = testContext();
    const { startPullServer } = await import('./support/pull-server.ts');
    const server = await startPullServer({ script: () => ({ chunks: ['{"status":"writing manifest"}\n{"status":"success"}\n'], hang: true }) });
    close = () => server.close();
    // The signal as the success line is read, before the answer ends.
    const onEvent = (event: { status: string }) => void (event.status === 'success' && ctx.raise('SIGINT'));
    expect(await pullModel(ctx, { baseUrl: server.url, model: 'qwen2.5-coder:7b', onEvent })).toMatchObject({ ok: true });
  });

  it('a signal before success is still a stopped pull', async () => {
    const ctx = testContext();
    const { startPullServer } = await import('./support/pull-server.ts');
    const server = await startPullServer({ script: () => ({ chunks: ['{"status":"pulling manifest"}\n'], hang: true }) });
    close = () => server.close();
    const onEvent = () => ctx.raise('SIGINT');
    expect(await pullModel(ctx, { baseUrl: server.url, model: 'qwen2.5-coder:7b', onEvent })).toMatchObject({ ok: false, failure: 'interrupted' });
  });
});

describe('the pull goes where the host probe reached Ollama', () => {
  // Ollama bound to ::1 only (OLLAMA_HOST=[::1]:port) answers nowhere else: the pull and the
  // check after it must both go there, not to 127.0.0.1.
  it('::1: the pull and the final ollama.model probe reach Ollama on [::1], and the model is ok', async () => {
    const { modelStep } = await import('../../scripts/model-step.ts');
    const { parseCli } = await import('../../scripts/args.ts');
    const { facts } = await import('./support/facts.ts');
    const asked: string[] = [];
    const models: string[] = [];
    const sockets = new Set<Socket>();
    const server = http.createServer(async (request, response) => {
      asked.push(`${request.method} ${request.url}`);
      for await (const _ of request) void _;
      if (request.url === '/api/version') return void response.end('{"version":"0.13.5"}');
      if (request.url === '/api/tags') return void response.end(JSON.stringify({ models: models.map((name) => ({ name })) }));
      if (request.url === '/api/pull') {
        models.push('qwen2.5-coder:7b');
        return void response.end('{"status":"pulling manifest"}\n{"status":"success"}\n');
      }
      response.writeHead(404).end();
    });
    server.on('connection', (socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => server.listen(0, '::1', resolve));
    close = async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    };
    const port = (server.address() as AddressInfo).port;
    const ctx = testContext();
    const options = parseCli(['--yes', '--pull']);
    const progress = new Progress(ctx, { ok: true, command: 'setup', platform: 'linux', strategy: 'systemd', dryRun: false, changes: [], checks: [], warnings: [] } as unknown as JsonReport);
    const printed: string[] = [];
    const machine = facts({ port, expectedModel: 'qwen2.5-coder:7b', hostProbe: { ok: true, url: `http://[::1]:${port}`, version: '0.13.5', models: [] } });
    const outcome = await modelStep(
      { ctx, options, support: machine.support, progress, print: (text) => void printed.push(text), printStyled: (text) => void printed.push(text), resume: 'npx stigmer-setup --yes --pull' },
      machine,
      [],
      { exitCode: 0, report: progress.report },
    );
    expect(asked).toContain('POST /api/pull');
    expect(asked.filter((line) => line === 'GET /api/tags')).toHaveLength(1);
    expect(outcome.report.model).toMatchObject({ pulled: true, present: true });
    expect(outcome.report.checks.find((finding) => finding.id === 'ollama.model')).toMatchObject({ status: 'ok' });
  });
});

describe('--pull when Ollama does not answer after setup', () => {
  it('says the model was not pulled and why, instead of saying nothing about the pull asked for', async () => {
    const { modelStep } = await import('../../scripts/model-step.ts');
    const { parseCli } = await import('../../scripts/args.ts');
    const { facts } = await import('./support/facts.ts');
    const ctx = testContext();
    const progress = new Progress(ctx, { ok: false, command: 'setup', platform: 'linux', strategy: 'systemd', dryRun: false, changes: [], checks: [], warnings: [] } as unknown as JsonReport);
    const machine = facts({ expectedModel: 'qwen2.5-coder:7b', hostProbe: { ok: false, url: 'http://127.0.0.1:11434', kind: 'refused', error: 'connect ECONNREFUSED 127.0.0.1:11434' } });
    const step = { ctx, options: parseCli(['--yes', '--pull']), support: machine.support, progress, print: () => {}, printStyled: () => {}, resume: 'npx stigmer-setup --yes --pull' };
    await modelStep(step, machine, [], { exitCode: 1, report: progress.report });
    expect(ctx.stderr.join('\n')).toMatch(/qwen2\.5-coder:7b was not pulled: Ollama does not answer at http:\/\/127\.0\.0\.1:11434.*npx stigmer-setup --yes --pull/s);
    // Without --pull nothing was asked for: the checks' own lines say it all.
    const quiet = testContext();
    await modelStep({ ...step, ctx: quiet, options: parseCli(['--yes']) }, machine, [], { exitCode: 1, report: progress.report });
    expect(quiet.stderr).toEqual([]);
  });
});

describe('a stream of endless distinct layers', () => {
  it('is not taken as a model past MAX_LAYERS layers: the pull ends as a failure instead of growing its layer table without bound', async () => {
    const { MAX_LAYERS } = await import('../../scripts/pull.ts');
    const { startPullServer } = await import('./support/pull-server.ts');
    const lines: string[] = [];
    for (let i = 0; i <= MAX_LAYERS; i++) lines.push(JSON.stringify({ status: 'pulling x', digest: `sha256:${i.toString(16).padStart(64, '0')}`, total: 10, completed: 10 }));
    lines.push('{"status":"success"}');
    const server = await startPullServer({ script: () => ({ chunks: [lines.join('\n') + '\n'] }) });
    close = () => server.close();
    let events = 0;
    const result = await pullModel(testContext(), { baseUrl: server.url, model: 'qwen2.5-coder:7b', onEvent: () => void events++ });
    expect(result).toMatchObject({ ok: false, failure: 'incomplete', detail: expect.stringMatching(/more than \d+ layers/) });
    expect(events).toBeLessThanOrEqual(MAX_LAYERS);
  });
});
