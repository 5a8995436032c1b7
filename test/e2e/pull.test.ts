/**
 * Issue 13: setup pulls Stigmer's model when it is missing. The built CLI runs on the host against
 * the stand-in Ollama, whose POST /api/pull replays real captured streams
 * (test/fixtures/ollama-pull/) and logs every request (STANDIN_REQUEST_LOG), so each test knows
 * what reached Ollama. No Docker: a `--root` sandbox with a systemctl that answers for a loaded,
 * active ollama.service whose MainPID is the stand-in, and a docker that is not there. Setup then
 * applies its drop-in, verifies, and comes to the pull.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BUNDLE, type CliRun, type JsonCheck } from './cli.ts';
import { freePort, startStandin, type RunningStandin } from './support/index.ts';

const MODEL = 'qwen2.5-coder:7b';

interface PullRequestLog {
  method?: string;
  path?: string;
  body?: unknown;
  event?: string;
  outcome?: string;
}

interface PullReport {
  ok: boolean;
  signal?: string;
  error?: string;
  checks: JsonCheck[];
  model?: { name: string; source: string; pulled: boolean; bytes?: number; error?: string };
}

interface Sandbox {
  scratch: string;
  root: string;
  home: string;
  port: number;
  configFile: string;
  env: NodeJS.ProcessEnv;
  standin: RunningStandin;
  requests(): PullRequestLog[];
  pulls(): PullRequestLog[];
  dropIn: string;
}

const sandboxes: Sandbox[] = [];
afterEach(async () => {
  for (const sandbox of sandboxes.splice(0)) {
    await sandbox.standin.stop();
    rmSync(sandbox.scratch, { recursive: true, force: true });
  }
});

/**
 * A stand-in Ollama on 0.0.0.0:<free port> with no models, pulls going as `pull` says
 * (STANDIN_PULL), Stigmer's config.yaml naming qwen2.5-coder:7b at that port, and the shims.
 */
async function sandbox(pull: string, intervalMs = 20): Promise<Sandbox> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'stigmer-pull-e2e-'));
  const bin = path.join(scratch, 'bin');
  const root = path.join(scratch, 'root');
  const home = path.join(scratch, 'home');
  for (const dir of [bin, root, path.join(home, '.stigmer')]) mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const log = path.join(scratch, 'requests.ndjson');
  writeFileSync(log, '');
  const standin = await startStandin({
    ollamaHost: `0.0.0.0:${port}`,
    env: { STANDIN_MODELS: '', STANDIN_PULL: pull, STANDIN_PULL_INTERVAL_MS: String(intervalMs), STANDIN_REQUEST_LOG: log },
  });
  const pidFile = path.join(scratch, 'ollama.pid');
  writeFileSync(pidFile, String(standin.child.pid));
  // Like systemd, `show` reports the drop-in only after a daemon-reload; "restart" keeps the
  // stand-in running (it already listens where the drop-in says).
  const dropIn = '/etc/systemd/system/ollama.service.d/stigmer-setup.conf';
  const reloaded = path.join(scratch, 'reloaded');
  writeFileSync(
    path.join(bin, 'systemctl'),
    [
      '#!/bin/sh',
      'case "$1" in',
      `  daemon-reload) touch ${reloaded} ;;`,
      '  show)',
      `    if [ -e ${reloaded} ] && [ -e ${root}${dropIn} ]; then paths=${dropIn}; env=$(sed -n 's/^Environment="\\(.*\\)"$/\\1/p' ${root}${dropIn}); else paths=; env=; fi`,
      `    printf 'LoadState=loaded\\nFragmentPath=/etc/systemd/system/ollama.service\\nDropInPaths=%s\\nEnvironment=%s\\nActiveState=active\\nNeedDaemonReload=no\\nMainPID=%s\\n' "$paths" "$env" "$(cat ${pidFile})" ;;`,
      'esac',
      'exit 0',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  writeFileSync(path.join(bin, 'docker'), '#!/bin/sh\necho "docker: not in this sandbox" >&2\nexit 127\n', { mode: 0o755 });
  const configFile = path.join(home, '.stigmer', 'config.yaml');
  writeFileSync(configFile, `backend:\n  type: local\n  local:\n    llm:\n      provider: ollama\n      model: ${MODEL}\n      base_url: http://localhost:${port}\n`, { mode: 0o600 });
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, PATH: `${bin}:/usr/bin:/bin` };
  for (const name of ['CI', 'FORCE_COLOR', 'NO_COLOR', 'STIGMER_LLM_MODEL', 'STIGMER_LLM_PROVIDER', 'OLLAMA_HOST', 'OLLAMA_MODELS']) delete env[name];
  const requests = () =>
    readFileSync(log, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as PullRequestLog);
  const created: Sandbox = {
    scratch,
    root,
    home,
    port,
    configFile,
    env,
    standin,
    requests,
    pulls: () => requests().filter((entry) => entry.path === '/api/pull'),
    dropIn: path.join(root, 'etc/systemd/system/ollama.service.d/stigmer-setup.conf'),
  };
  sandboxes.push(created);
  return created;
}

const setupArgs = (box: Sandbox, extra: string[]) => [...extra, '--root', box.root, '--host', `0.0.0.0:${box.port}`];

/** The bundle with no terminal (stdin closed), bounded at 60 s. */
function run(box: Sandbox, extra: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BUNDLE, ...setupArgs(box, extra)], { env: box.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({ exitCode, stdout, stderr });
    });
  });
}

function report(result: CliRun): PullReport {
  try {
    return JSON.parse(result.stdout) as PullReport;
  } catch {
    throw new Error(`stdout is not one JSON object (exit ${result.exitCode}):\n${result.stdout}\n--- stderr ---\n${result.stderr}`);
  }
}

const modelCheck = (r: PullReport) => r.checks.find((c) => c.id === 'ollama.model');
/** The last line of the human output for a check, e.g. "✓ ollama.model  …" (after the pull it is shown again). */
const checkLine = (stdout: string, id: string) => [...stdout.split('\n')].reverse().find((line) => new RegExp(`^. ${id.replace('.', '\\.')} `).test(line));

describe('setup --pull with no terminal', () => {
  it('pulls through /api/pull, shows plain progress lines on stderr, and ends with ollama.model ✓', async () => {
    const box = await sandbox('success');
    const result = await run(box, ['--yes', '--pull']);
    // What reached Ollama: exactly one streaming pull of Stigmer's model, which succeeded.
    expect(box.pulls().filter((entry) => entry.method === 'POST')).toEqual([expect.objectContaining({ body: { model: MODEL, stream: true } })]);
    expect(box.requests().filter((entry) => entry.event === 'pull-end').map((entry) => entry.outcome)).toEqual(['success']);
    // Progress went to stderr as plain lines: a percent, no carriage returns or escape codes.
    expect(result.stderr).toMatch(/\d+(\.\d+)?\s?%/);
    expect(result.stderr).not.toMatch(/[\r\x1b]/);
    expect(result.stdout).not.toMatch(/\d+(\.\d+)?\s?%.*(MB|GB)/);
    // The re-run ollama.model check sees the model, and the run succeeds.
    expect(checkLine(result.stdout, 'ollama.model'), result.stdout).toMatch(/^✓ ollama\.model /);
    expect(result.exitCode, result.stderr).toBe(0);
  });

  it('--json: one object on stdout with model.pulled true and ollama.model ok; progress stays on stderr', async () => {
    const box = await sandbox('success');
    const result = await run(box, ['--yes', '--pull', '--json']);
    const parsed = report(result);
    expect(parsed.model).toMatchObject({ name: MODEL, pulled: true });
    expect(typeof parsed.model?.source).toBe('string');
    expect(parsed.model?.error).toBeUndefined();
    expect(modelCheck(parsed)?.status).toBe('ok');
    expect(box.pulls().filter((entry) => entry.method === 'POST')).toHaveLength(1);
    expect(result.exitCode, result.stderr).toBe(0);
  });

  it('a cached pull (every layer already there, total == completed) is a success too', async () => {
    const box = await sandbox('cached');
    const parsed = report(await run(box, ['--yes', '--pull', '--json']));
    expect(parsed.model).toMatchObject({ name: MODEL, pulled: true });
    expect(modelCheck(parsed)?.status).toBe('ok');
  });

  it('a stream that stops halfway is a failure, not a pulled model', async () => {
    const box = await sandbox('cut');
    const result = await run(box, ['--yes', '--pull', '--json']);
    const parsed = report(result);
    expect(parsed.model).toMatchObject({ name: MODEL, pulled: false });
    expect(parsed.model?.error ?? '').not.toBe('');
    expect(modelCheck(parsed)?.status).toBe('warn');
    expect(box.requests().filter((entry) => entry.event === 'pull-end').map((entry) => entry.outcome)).toEqual(['cut']);
  });
});

describe('--yes without --pull, and doctor', () => {
  it('never call /api/pull: --yes prints the exact command and says --pull does it', async () => {
    const box = await sandbox('success');
    const result = await run(box, ['--yes']);
    expect(result.stdout + result.stderr).toContain(`ollama pull ${MODEL}`);
    expect(result.stdout + result.stderr).toContain('--pull');
    const doctor = await run(box, ['doctor']);
    expect(doctor.stdout).toContain(`ollama pull ${MODEL}`);
    const json = report(await run(box, ['--yes', '--json']));
    expect(json.model?.pulled ?? false).toBe(false);
    // The stand-in saw the probes (so the log works) and never a pull.
    expect(box.requests().some((entry) => entry.path === '/api/tags')).toBe(true);
    expect(box.pulls()).toEqual([]);
  });
});

describe('on a real terminal (script(1))', () => {
  it('the progress bar redraws one line in place', async () => {
    // Ollama's own pace: a line every 60 ms per layer (download.go's ticker), so the bar has
    // time to redraw several times at ~10 a second.
    const box = await sandbox('success', 60);
    const command = [process.execPath, BUNDLE, ...setupArgs(box, ['--yes', '--pull'])].map((word) => `'${word.replace(/'/g, `'\\''`)}'`).join(' ');
    const result = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', timeout: 60_000, env: box.env, input: '' });
    const output = result.stdout;
    // On a pty stdout and stderr are one stream; the bar is the part with percents.
    const physical = output.split('\n');
    const redrawn = physical.filter((line) => (line.match(/\d+(\.\d+)?\s?%/g) ?? []).length >= 2 && /\r|\x1b\[[0-9;]*[GK]/.test(line));
    expect(redrawn.length, JSON.stringify(output.slice(0, 3000))).toBeGreaterThan(0);
    // Redrawn in place: far fewer physical lines carry a percent than the stream sent updates.
    const percentLines = physical.filter((line) => /\d+(\.\d+)?\s?%/.test(line)).length;
    expect(percentLines).toBeLessThanOrEqual(5);
    expect(box.requests().filter((entry) => entry.event === 'pull-end').map((entry) => entry.outcome)).toEqual(['success']);
    expect(result.status).toBe(0);
  });
});

describe('hostile status strings', () => {
  it('escape codes and a 1 MB status from Ollama never reach the terminal raw', async () => {
    const box = await sandbox('hostile');
    const command = [process.execPath, BUNDLE, ...setupArgs(box, ['--yes', '--pull'])].map((word) => `'${word.replace(/'/g, `'\\''`)}'`).join(' ');
    const pty = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', timeout: 60_000, env: box.env, input: '', maxBuffer: 64 << 20 });
    // A second Ollama for the run without a terminal: the first now has the model.
    const second = await sandbox('hostile');
    const plain = await run(second, ['--yes', '--pull']);
    for (const output of [pty.stdout, plain.stderr, plain.stdout]) {
      expect(output).not.toContain('\x1b]0;owned');
      expect(output).not.toContain('\x1b[2J');
      expect(output).not.toContain('\x1b[1;1H');
      expect(output).not.toContain('\u202e');
      expect(output).not.toMatch(/x{2000}/);
    }
    // The stream still ended in success, so the model counts as pulled.
    for (const each of [box, second]) expect(each.requests().filter((entry) => entry.event === 'pull-end').map((entry) => entry.outcome)).toEqual(['success']);
  });
});

describe('Ctrl-C during the pull', () => {
  it.each([[false], [true]])('SIGINT (json: %s): the request stops, exit 130, the resume message, nothing undone', async (json) => {
    const box = await sandbox('slow', 300);
    const child = spawn(process.execPath, [BUNDLE, ...setupArgs(box, ['--yes', '--pull', ...(json ? ['--json'] : [])])], { env: box.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = { stdout: '', stderr: '' };
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    // Interrupt once the pull is streaming (the request is in and a few lines went out).
    for (let waited = 0; waited < 300 && box.pulls().length === 0; waited++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(box.pulls()).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    child.kill('SIGINT');
    const code = await exited;
    clearTimeout(killer);
    expect(code, output.stderr).toBe(130);
    // The request was stopped: the stand-in saw the client go away before the stream ended.
    for (let waited = 0; waited < 40 && !box.requests().some((entry) => entry.event === 'pull-end'); waited++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(box.requests().filter((entry) => entry.event === 'pull-end').map((entry) => entry.outcome)).toEqual(['client-closed']);
    // Ollama keeps what it downloaded; the same command resumes it; the network change stays.
    expect(output.stderr).toContain('Ollama keeps what it downloaded, and the same command resumes it (until Ollama restarts)');
    // The same command: pasting it pulls again, from the same Ollama.
    expect(output.stderr).toContain(`npx stigmer-setup --yes --pull --host 0.0.0.0:${box.port} --root ${box.root}`);
    expect(output.stderr).toContain('The network change is in place and verified');
    expect(output.stderr).not.toContain('nothing was changed');
    expect(existsSync(box.dropIn)).toBe(true);
    if (json) {
      const parsed = report({ exitCode: code, ...output });
      expect(parsed).toMatchObject({ ok: false, signal: 'SIGINT' });
      expect(parsed.error).toContain('the same command resumes it');
      expect(parsed.model?.pulled ?? false).toBe(false);
    }
  });
});

describe('a failed pull names its cause and its fix', () => {
  it('unknown model: names the model and where the name came from (config.yaml and its line)', async () => {
    const box = await sandbox('unknown');
    const result = await run(box, ['--yes', '--pull', '--json']);
    const parsed = report(result);
    expect(parsed.model).toMatchObject({ name: MODEL, pulled: false });
    const said = `${parsed.model?.error ?? ''}\n${result.stderr}`;
    expect(said).toContain(MODEL);
    expect(said).toContain(box.configFile);
    expect(said).toMatch(/line \d+/);
    expect(modelCheck(parsed)?.status).toBe('warn');
  });

  it('no network: Ollama itself cannot reach its registry; the proxy goes on the service (systemd drop-in)', async () => {
    const box = await sandbox('dns');
    const result = await run(box, ['--yes', '--pull', '--json']);
    const parsed = report(result);
    expect(parsed.model).toMatchObject({ name: MODEL, pulled: false });
    const said = `${parsed.model?.error ?? ''}\n${result.stderr}`;
    expect(said).toContain('registry.ollama.ai');
    expect(said).toMatch(/HTTPS_PROXY=/);
    expect(said).toMatch(/Environment=/);
    expect(said).not.toMatch(/\x1b/);
  });

  it('disk full: says where models live', async () => {
    const box = await sandbox('disk-full');
    const result = await run(box, ['--yes', '--pull', '--json']);
    const parsed = report(result);
    expect(parsed.model).toMatchObject({ name: MODEL, pulled: false });
    const said = `${parsed.model?.error ?? ''}\n${result.stderr}`;
    expect(said).toMatch(/no space left on device|disk/i);
    expect(said).toMatch(/OLLAMA_MODELS|\/usr\/share\/ollama\/\.ollama\/models/);
  });
});
