/**
 * Setup's model step (issue 13) through run(argv, ctx), on the systemd host of cli.test.ts: real
 * files under a temporary --root, the real stand-in Ollama restarted by the small systemctl fake.
 * Ollama's model store is a second loopback server (support/pull-server.ts) that answers
 * /api/tags and /api/pull as Ollama does, a successful pull adding the model to /api/tags; the
 * stand-in's port forwards those two paths to it. The streams are real captures
 * (test/fixtures/ollama-pull/).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../scripts/cli.ts';
import { HELP } from '../../scripts/args.ts';
import { freePort } from '../support/standin-process.ts';
import { NOT_FOUND, ok, tempRoot, testContext, type TestContext } from './support/context.ts';
import { FakeSystemd } from './support/fake-systemd.ts';
import { fixture } from './support/fixtures.ts';
import { because, needs } from './support/portability.ts';
import { ndjson, startPullServer, type PullScript, type PullServer } from './support/pull-server.ts';

let root: string;
let cleanup: () => Promise<void>;
let port: number;
let systemd: FakeSystemd;
let store: PullServer;

const MODEL = 'qwen2.5-coder:7b';
const SUCCESS = fixture('ollama-pull/success-two-layers-ollama-4417-joined.ndjson');

beforeEach(async () => {
  ({ root, cleanup } = await tempRoot());
  port = await freePort();
  systemd = new FakeSystemd(root, `127.0.0.1:${port}`);
  await systemd.start();
  store = await startPullServer({ models: ['llama3.2:3b'], script: () => ({ chunks: [SUCCESS] }) });
});
afterEach(async () => {
  await store.close();
  await systemd.stop();
  await cleanup();
});

function machine(options: Parameters<typeof testContext>[0] = {}): TestContext {
  const ctx = testContext({
    exec: async (command, args) => {
      if (command === 'sudo') return args[0] === 'systemctl' ? systemd.exec(args.slice(1)) : ok();
      if (command === 'systemctl') return systemd.exec(args);
      return NOT_FOUND; // no docker, no snap: Stigmer's model is its CLI's default
    },
    ...options,
  });
  // Ollama's model list and pulls are the store's; everything else is the stand-in's.
  const { http } = ctx;
  const forward = (url: string) => url.replace(new RegExp(`^http://127\\.0\\.0\\.1:${port}(/api/(?:tags|pull))$`), `${store.url}$1`);
  ctx.http = { get: (url, o) => http.get(forward(url), o), postStream: (url, o) => http.postStream(forward(url), o) };
  return ctx;
}

function json(ctx: TestContext): Record<string, any> {
  expect(ctx.json).toHaveLength(1);
  return ctx.json[0] as Record<string, any>;
}
const stderr = (ctx: TestContext) => ctx.stderr.join('\n');
const stdout = (ctx: TestContext) => ctx.stdout.join('\n');
const modelCheck = (report: Record<string, any>) => report.checks.find((check: { id: string }) => check.id === 'ollama.model');

describe.skipIf(needs.proc)('setup pulls Stigmer\'s model when it is missing' + because(needs.proc), () => {
  it('--yes --pull --json: applies, verifies, pulls through /api/pull, and the final ollama.model is ok', async () => {
    const ctx = machine();
    expect(await run(['--yes', '--pull', '--json', '--root', root], ctx)).toBe(0);
    expect(store.pulls).toEqual([{ model: MODEL, stream: true }]);
    const report = json(ctx);
    expect(report).toMatchObject({ ok: true, model: { name: MODEL, source: "Stigmer's default", present: true, pulled: true, bytes: 408734816 + 260 } });
    expect(modelCheck(report)).toMatchObject({ status: 'ok' });
    // Progress went to stderr as plain lines (no terminal); stdout carries the one object only.
    expect(stderr(ctx)).toMatch(/pulling 26bd607a51eb: +\d+%/);
    expect(stderr(ctx)).toMatch(/✓ Pulled qwen2.5-coder:7b: 408 MB/);
    expect(ctx.stdout).toEqual([]);
  });

  it('--yes --pull without --json: the report ends with ✓ ollama.model and "Stigmer is ready"', async () => {
    const ctx = machine();
    expect(await run(['--yes', '--pull', '--root', root], ctx)).toBe(0);
    expect(stdout(ctx)).toMatch(/✓ ollama\.model +Stigmer's model qwen2\.5-coder:7b \(from Stigmer's default\) is pulled\./);
    // The warnings (an old Ollama, exposure on the LAN) are counted, not hidden.
    expect(ctx.stdout.at(-1)).toMatch(/^Stigmer is ready: no check failed \(\d+ warnings? above\), and its model qwen2\.5-coder:7b is pulled\.$/);
  });

  it('a run that changes nothing (already set up) still pulls with --pull', async () => {
    expect(await run(['--yes', '--root', root], machine())).toBe(0);
    const ctx = machine();
    expect(await run(['--yes', '--pull', '--json', '--root', root], ctx)).toBe(0);
    expect(json(ctx)).toMatchObject({ changes: [], model: { pulled: true } });
    expect(store.pulls).toHaveLength(1);
  });

  it('--yes alone never calls /api/pull: it prints the exact command and says --pull does it', async () => {
    const ctx = machine();
    expect(await run(['--yes', '--root', root], ctx)).toBe(0);
    expect(store.pulls).toEqual([]);
    expect(stdout(ctx)).toContain(`Pull it with: ollama pull ${MODEL}`);
    expect(stdout(ctx)).toMatch(/or run with --pull, which pulls it here with progress: npx stigmer-setup --yes --pull --root /);
    const json2 = machine();
    expect(await run(['--yes', '--json', '--root', root], json2)).toBe(0);
    expect(json(json2).model).toMatchObject({ name: MODEL, present: false, pulled: false, error: 'not pulled: run with --pull to pull it' });
  });

  it('doctor never pulls, --pull or not', async () => {
    const ctx = machine();
    await run(['doctor', '--pull', '--json', '--root', root], ctx);
    expect(store.pulls).toEqual([]);
    expect(json(ctx).model).toBeUndefined();
  });

  it('a dry run says it would pull, and does not', async () => {
    const ctx = machine();
    expect(await run(['--dry-run', '--pull', '--root', root], ctx)).toBe(0);
    expect(store.pulls).toEqual([]);
    expect(stdout(ctx)).toMatch(/Dry run: Stigmer's model qwen2\.5-coder:7b \(from Stigmer's default\) is not pulled; setup would pull it through Ollama's API at http:\/\/127\.0\.0\.1:\d+\./);
  });

  it('interactive: asks after applying, and pulls on yes', async () => {
    const ctx = machine({ isTTY: true, answers: [true, true] });
    expect(await run(['--root', root], ctx)).toBe(0);
    expect(ctx.confirmations).toEqual(['Apply these changes?', `Pull ${MODEL} now?`]);
    expect(store.pulls).toHaveLength(1);
  });

  it('interactive: no (or Esc) pulls nothing, prints the command, and the run still succeeds', async () => {
    // The second run has nothing left to apply, so the model question is its only one.
    for (const answers of [[true, false], ['cancel']] as const) {
      const ctx = machine({ isTTY: true, answers: [...answers] });
      expect(await run(['--root', root], ctx)).toBe(0);
      expect(stdout(ctx)).toContain(`Not pulled. To pull it later: ollama pull ${MODEL}`);
      expect(stderr(ctx)).not.toContain('nothing was changed');
    }
    expect(store.pulls).toEqual([]);
  });

  it('a signal at the pull question: exit 143, nothing pulled, and the change is in place and verified', async () => {
    const ctx = machine({ isTTY: true, answers: [true, 'SIGTERM'] });
    expect(await run(['--root', root], ctx)).toBe(143);
    expect(store.pulls).toEqual([]);
    expect(stderr(ctx)).toMatch(/Stopped by SIGTERM while getting Stigmer's model, before pulling qwen2\.5-coder:7b\. The network change is in place and verified/);
  });

  it('on a terminal the progress is one live line redrawn in place, not a line per update', async () => {
    const ctx = machine({ canRedraw: true });
    expect(await run(['--yes', '--pull', '--root', root], ctx)).toBe(0);
    expect(ctx.redraws.length).toBeGreaterThan(0);
    expect(ctx.redraws.at(-1)).toBe('pulling 5bbbf644084d: 100% 260 B');
    expect(ctx.stderr.filter((line) => line.startsWith('pulling '))).toEqual([]);
  });

  it('Ctrl-C mid-pull: the request ends, exit 130, the resume message, the change in place and verified, one JSON object', async () => {
    const lines = SUCCESS.split('\n');
    let ctx!: TestContext;
    store.script = (): PullScript => ({ chunks: [ndjson(lines.slice(0, 4)), ndjson(lines.slice(4, 8))], afterChunk: (index) => void (index === 1 && ctx.raise('SIGINT')), hang: true });
    ctx = machine();
    expect(await run(['--yes', '--pull', '--json', '--root', root], ctx)).toBe(130);
    const report = json(ctx);
    expect(report).toMatchObject({ ok: false, signal: 'SIGINT', model: { name: MODEL, pulled: false } });
    expect(report.error).toMatch(/the pull of qwen2\.5-coder:7b was stopped\. Ollama keeps what it downloaded, and the same command resumes it \(until Ollama restarts\): npx stigmer-setup --yes --pull/);
    expect(report.error).toMatch(/The network change is in place and verified; nothing else is undone/);
    expect(report.changes.every((change: { applied: boolean }) => change.applied)).toBe(true);
    expect(stderr(ctx)).toContain('Ollama keeps what it downloaded');
    // Ollama saw the client leave: that is what stops its download and keeps the parts.
    for (let i = 0; i < 50 && !store.clientLeft; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(store.clientLeft).toBe(true);
  });
});

describe.skipIf(needs.proc)('a signal right after a successful pull' + because(needs.proc), () => {
  it('Ctrl-C as the final check starts: the model is pulled, and the message says so instead of "the pull was stopped"', async () => {
    const ctx = machine();
    const { get } = ctx.http;
    // The signal arrives once Ollama said success, while setup asks Ollama again for its models.
    ctx.http = { ...ctx.http, get: (url, o) => {
      if (store.pulls.length > 0 && url.endsWith('/api/tags')) ctx.raise('SIGINT');
      return get(url, o);
    } };
    expect(await run(['--yes', '--pull', '--json', '--root', root], ctx)).toBe(130);
    const report = json(ctx);
    expect(store.models).toContain(MODEL);
    expect(report).toMatchObject({ ok: false, signal: 'SIGINT', model: { name: MODEL, pulled: true, present: true } });
    expect(report.error).not.toMatch(/was stopped|resumes it/);
    expect(report.error).toMatch(/Ollama said it pulled qwen2\.5-coder:7b/);
    expect(report.error).toMatch(/The network change is in place and verified/);
  });
});

describe.skipIf(needs.proc)('a pull that fails names its class and its fix' + because(needs.proc), () => {
  const failWith = (error: string): PullScript => ({ chunks: [ndjson(['{"status":"pulling manifest"}', JSON.stringify({ error })])] });
  const cliError = (file: string) => (fixture(`ollama-pull/${file}`).split('\n').find((line) => line.startsWith('Error: ')) as string).slice(7).trim();

  async function failing(script: PullScript, env: Record<string, string> = {}) {
    store.script = () => script;
    const ctx = machine({ env });
    const code = await run(['--yes', '--pull', '--json', '--root', root], ctx);
    return { code, ctx, report: json(ctx) };
  }

  it('unknown model: the model and where its name came from (STIGMER_LLM_MODEL)', async () => {
    store.script = () => ({ chunks: [fixture('ollama-pull/unknown-model-podman-desktop-1626.ndjson')] });
    const ctx = machine({ env: { STIGMER_LLM_MODEL: 'qwen9-coder:7b' } });
    expect(await run(['--yes', '--pull', '--json', '--root', root], ctx)).toBe(1);
    const report = json(ctx);
    expect(report.model).toMatchObject({ name: 'qwen9-coder:7b', source: 'STIGMER_LLM_MODEL', pulled: false });
    expect(report.model.error).toMatch(/Ollama's registry has no model qwen9-coder:7b \(the name comes from STIGMER_LLM_MODEL\)\. Ollama said: pull model manifest: file does not exist/);
    expect(stderr(ctx)).toMatch(/Fix: Check the name and tag on https:\/\/ollama\.com\/library, correct it in STIGMER_LLM_MODEL/);
  });

  it('no network: the proxy goes on the service, with the systemd drop-in command', async () => {
    const { code, ctx } = await failing(failWith(cliError('cli-error-dns-server-misbehaving-ollama-8065.txt')));
    expect(code).toBe(1);
    expect(stderr(ctx)).toMatch(/Ollama could not reach its registry/);
    expect(stderr(ctx)).toContain('Environment="HTTPS_PROXY=http://PROXY:PORT"');
    expect(stderr(ctx)).toMatch(/sudo systemctl daemon-reload && sudo systemctl restart ollama/);
  });

  it('disk full: where the models live, read from Ollama\'s own error', async () => {
    const { code, ctx } = await failing(failWith(cliError('cli-error-disk-full-mid-layer-ollama-15547.txt')));
    expect(code).toBe(1);
    expect(stderr(ctx)).toMatch(/The disk where Ollama keeps models is full: \/usr\/share\/ollama\/\.ollama\/models/);
  });

  it('disk full, with an error that names no models folder: the service\'s own OLLAMA_MODELS (read from systemd) is where models live', async () => {
    // Constructed text (real ones name the blob's path, as above): the fallback must not be a guess.
    const dir = path.join(root, 'etc/systemd/system/ollama.service.d');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'models.conf'), '[Service]\nEnvironment="OLLAMA_MODELS=/srv/ollama-models"\n');
    await systemd.exec(['daemon-reload']);
    const { code, ctx } = await failing(failWith('write /tmp/x: no space left on device'));
    expect(code).toBe(1);
    expect(stderr(ctx)).toContain('The disk where Ollama keeps models is full: /srv/ollama-models (OLLAMA_MODELS)');
  });

  it('HTTP 400: what Ollama answered', async () => {
    const { code, report } = await failing({ reject: '{"error":"invalid model name"}', chunks: [] });
    expect(code).toBe(1);
    expect(report.error).toMatch(/Ollama refused to pull qwen2\.5-coder:7b \(HTTP 400\)\. Ollama said: invalid model name/);
  });

  it('a stream that stops halfway: not pulled, exit 1, and the same command resumes it', async () => {
    const { code, report } = await failing({ chunks: [ndjson(SUCCESS.split('\n').slice(0, 6))], breakOff: true });
    expect(code).toBe(1);
    expect(report).toMatchObject({ ok: false, model: { pulled: false } });
    expect(report.error).toMatch(/stopped before Ollama said it succeeded.*Run it again, which resumes it: npx stigmer-setup --yes --pull/);
  });
});

it('HELP has --pull', () => {
  expect(HELP).toMatch(/--pull +when Stigmer's model is missing, pull it/);
});
