/**
 * Hostile input for Homebrew on macOS and for Ollama.app's settings database: ollama.env lines brew
 * does not apply the way they look (`export`, a BOM, quotes, NUL), bytes that are not UTF-8, CRLF,
 * a 30,000-line file, `brew services info` for a formula that is not installed, a restart that
 * fails after brew has stopped the service, and a db.sqlite that is a FIFO, a symlink to one, or a
 * device. Each case asserts what a user relies on: what brew will really apply, bytes kept, nothing
 * hanging, Ollama started again, and "could not read" rather than "off".
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, readFile, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { brewStrategy, type BrewDetection } from '../../platforms/darwin/brew.ts';
import { misappliedEntries, parseBrewEnvFile, withBrewEnvValue } from '../../platforms/darwin/parsers/brew-env.ts';
import { describeExpose, readExpose } from '../../platforms/expose.ts';
import type { FileChange, PlanRequest, RestartChange } from '../../platforms/types.ts';
import type { ExecResult } from '../../scripts/context.ts';
import { runStep } from '../../scripts/system-files.ts';
import { failed, NOT_FOUND, ok, tempRoot, testContext } from './support/context.ts';
import { fixture } from './support/fixtures.ts';
import { because, needs, unmet } from './support/portability.ts';

let home: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ root: home, cleanup } = await tempRoot()));
afterEach(() => cleanup());

const REQUEST: PlanRequest = { target: { host: '0.0.0.0', port: 11434 }, explicitHost: false, elevate: [], listening: 'loopback' };
const plistPath = () => path.join(home, 'Library/LaunchAgents/homebrew.mxcl.ollama.plist');
const envPath = () => path.join(home, '.homebrew/services/ollama.env');
const detectOptions = () => ({ root: '/nonexistent-root', home, env: { HOME: home }, port: 11434, path: path.posix });
const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : Buffer.from(part))));

function brewInfo(overrides: Record<string, unknown> = {}): string {
  const [entry] = JSON.parse(fixture('darwin/brew-services-info-all-phpmon.json')) as Record<string, unknown>[];
  return JSON.stringify([{ ...entry, name: 'ollama', service_name: 'homebrew.mxcl.ollama', file: plistPath(), loaded: true, running: true, pid: 4242, user: 'ada', status: 'started', ...overrides }]);
}

function mac(options: { info?: string; infoFails?: string; installed?: boolean } = {}) {
  return testContext({
    env: { HOME: home },
    exec: (command, args): ExecResult => {
      if (command === 'brew' && args[0] === '--version') return ok('Homebrew 6.1.0\n');
      if (command === 'brew' && args[0] === 'list') return options.installed === false ? failed('', 1) : ok('ollama 0.32.3\n');
      if (command === 'brew' && args[0] === 'services') return options.infoFails !== undefined ? failed(options.infoFails) : ok(options.info ?? brewInfo());
      if (command === 'launchctl' && args[0] === 'print') return ok(fixture('darwin/launchctl-print-gui-running-env-home-rewritten.txt'));
      return NOT_FOUND;
    },
  });
}

async function writeEnv(content: Buffer, mode = 0o600): Promise<void> {
  await mkdir(path.dirname(envPath()), { recursive: true });
  await writeFile(envPath(), content, { mode });
}

async function detectBrew(options: Parameters<typeof mac>[0] = {}): Promise<BrewDetection | undefined> {
  return (await brewStrategy.detect(mac(options), detectOptions())) as BrewDetection | undefined;
}

describe('ollama.env, read as brew reads it', () => {
  it('`export OLLAMA_HOST=…` sets a variable named "export OLLAMA_HOST": reported with file and line, and only that line is replaced', async () => {
    const before = bytes('# mine\n', 'export OLLAMA_HOST=0.0.0.0:11434\n', 'OLLAMA_DEBUG=1\n');
    expect(parseBrewEnvFile(before).variables).toEqual(new Map([['export OLLAMA_HOST', '0.0.0.0:11434'], ['OLLAMA_DEBUG', '1']]));
    await writeEnv(before);
    const detection = (await detectBrew()) as BrewDetection;
    // Not configured: brew gives the server no OLLAMA_HOST, so it stays on loopback.
    expect(detection.configuredHost).toBeUndefined();
    expect(detection.problems?.map((problem) => problem.message)).toContain(`${envPath()} line 2 ("export OLLAMA_HOST=0.0.0.0:11434") sets a variable named "export OLLAMA_HOST", not OLLAMA_HOST: Homebrew takes each line as KEY=value, with no \`export\` and nothing else around the name.`);
    const plan = brewStrategy.plan(detection, REQUEST);
    expect(plan.blockers).toEqual([]);
    const change = plan.changes[0] as FileChange;
    expect(change.after?.equals(bytes('# mine\n', 'OLLAMA_HOST=0.0.0.0:11434\n', 'OLLAMA_DEBUG=1\n'))).toBe(true);
    expect(plan.changes[1]).toMatchObject({ type: 'restart', steps: [['brew', 'services', 'restart', 'ollama']] });
    expect(plan.warnings).toEqual([`${envPath()} line 2 set a variable named "export OLLAMA_HOST", which Ollama never sees; it is replaced by OLLAMA_HOST=0.0.0.0:11434.`]);
  });

  it('a BOM or a no-break space stuck to the name is not stripped by brew (Ruby strips ASCII whitespace and NUL only); a BOM before another line is kept', () => {
    const bom = [0xef, 0xbb, 0xbf];
    expect([...parseBrewEnvFile(bytes(bom, 'OLLAMA_HOST=0.0.0.0\n')).variables.keys()]).toEqual(['\uFEFFOLLAMA_HOST']);
    expect([...parseBrewEnvFile(bytes('\u00a0OLLAMA_HOST=0.0.0.0\n')).variables.keys()]).toEqual(['\u00a0OLLAMA_HOST']);
    expect(misappliedEntries(parseBrewEnvFile(bytes(bom, 'OLLAMA_HOST=0.0.0.0\n')), 'OLLAMA_HOST').map((line) => line.number)).toEqual([1]);
    // The BOM is what made line 1 fail, so it goes with that line; before a comment it stays.
    expect(withBrewEnvValue(bytes(bom, 'OLLAMA_HOST=1.2.3.4\n'), 'OLLAMA_HOST', '0.0.0.0:11434').equals(bytes('OLLAMA_HOST=0.0.0.0:11434\n'))).toBe(true);
    expect(withBrewEnvValue(bytes(bom, '# c\n'), 'OLLAMA_HOST', '0.0.0.0:11434').equals(bytes(bom, '# c\nOLLAMA_HOST=0.0.0.0:11434\n'))).toBe(true);
    // NUL and ASCII whitespace are stripped, at both ends of the line, the key and the value.
    expect(parseBrewEnvFile(bytes([0], ' \tOLLAMA_HOST \v=\f 0.0.0.0:1 ', [0], '\r\n')).variables.get('OLLAMA_HOST')).toBe('0.0.0.0:1');
  });

  it('quotes reach Ollama as they are (no unquoting), a later line wins, and lines brew skips are skipped', () => {
    const file = parseBrewEnvFile(bytes('OLLAMA_HOST="0.0.0.0:11434"\n', 'OLLAMA_HOST=\'[::]:1\'\n', '=no-key\n', 'NO_EQUALS\n', '  # indented comment\n', '\u3000=ideographic-space-key\n', 'A=b=c\n'));
    expect(file.variables.get('OLLAMA_HOST')).toBe("'[::]:1'");
    expect(file.variables.get('A')).toBe('b=c');
    expect(file.lines.map((line) => line.kind)).toEqual(['entry', 'entry', 'invalid', 'invalid', 'comment', 'invalid', 'entry']);
  });

  it('a Latin-1 byte anywhere (a comment too) makes brew stop with "invalid byte sequence in UTF-8": a failing finding and a blocker, and nothing changes', async () => {
    const before = bytes('# caf', [0xe9], '\n', 'OLLAMA_HOST=127.0.0.1:11434\n');
    await writeEnv(before);
    const detection = (await detectBrew()) as BrewDetection;
    expect(detection.envFileParsed?.notUtf8Line).toBe(1);
    expect(detection.problems?.find((problem) => problem.status === 'fail')?.message).toContain(`Homebrew can't read ${envPath()}: line 1 is not UTF-8`);
    const plan = brewStrategy.plan(detection, REQUEST);
    expect(plan.changes).toEqual([]);
    expect(plan.blockers[0]?.message).toContain('a restart leaves Ollama stopped');
  });

  it('when brew services info itself fails on that file, the Homebrew installation is still found (its pid from launchctl) and refused', async () => {
    await writeEnv(bytes('# ', [0xff, 0xfe], '\n'));
    const detection = (await detectBrew({ infoFails: 'Error: invalid byte sequence in UTF-8' })) as BrewDetection;
    expect(detection).toBeDefined();
    expect(detection.serverPid).toBeDefined();
    expect(brewStrategy.plan(detection, REQUEST).blockers).toHaveLength(1);
  });

  it('bytes are edited, not text: Latin-1 elsewhere is impossible, but CRLF, a missing final newline and every other byte are kept', () => {
    const before = bytes('# r\u00e9sum\u00e9 \u2014 UTF-8\r\n', 'OLLAMA_MODELS=/x\r\n', 'OLLAMA_HOST=127.0.0.1:11434\r\n', 'OLLAMA_DEBUG=1');
    const after = withBrewEnvValue(before, 'OLLAMA_HOST', '0.0.0.0:11434');
    expect(after.equals(bytes('# r\u00e9sum\u00e9 \u2014 UTF-8\r\n', 'OLLAMA_MODELS=/x\r\n', 'OLLAMA_HOST=0.0.0.0:11434\r\n', 'OLLAMA_DEBUG=1'))).toBe(true);
    expect(withBrewEnvValue(bytes('OLLAMA_DEBUG=1'), 'OLLAMA_HOST', 'x').equals(bytes('OLLAMA_DEBUG=1\nOLLAMA_HOST=x\n'))).toBe(true);
    expect(parseBrewEnvFile(bytes('A=1')).missingFinalNewline).toBe(true);
  });

  it('a 30,000-line, 370 KB file: the parser and the plan complete, and only the OLLAMA_HOST bytes differ', async () => {
    const lines = Array.from({ length: 30_000 }, (_, i) => `OLLAMA_EXTRA_${String(i).padStart(5, '0')}=${'x'.repeat(i % 3)}`);
    lines.splice(15_000, 0, 'OLLAMA_HOST=127.0.0.1:11434');
    const before = Buffer.from(`${lines.join('\n')}\n`);
    expect(before.length).toBeGreaterThan(370_000);
    await writeEnv(before);
    const detection = (await detectBrew()) as BrewDetection;
    expect(detection.envFileParsed?.lines).toHaveLength(30_001);
    const after = (brewStrategy.plan(detection, REQUEST).changes[0] as FileChange).after as Buffer;
    const expected = Buffer.from(`${lines.map((line) => (line.startsWith('OLLAMA_HOST=') ? 'OLLAMA_HOST=0.0.0.0:11434' : line)).join('\n')}\n`);
    expect(after.equals(expected)).toBe(true);
  });

  it.skipIf(needs.posixModes)('a path in a fix is quoted for sh, and one with a control character is never pasted raw' + because(needs.posixModes), async () => {
    await writeEnv(bytes('A=1\n'));
    await chmod(envPath(), 0o666);
    const detection = (await detectBrew()) as BrewDetection;
    expect(detection.problems?.find((problem) => problem.message.includes('can be written by other users'))?.fix).toBe(`chmod 600 ${envPath()}`);
    await mkdir(path.dirname(plistPath()), { recursive: true });
    await writeFile(plistPath(), Buffer.from('bplist00\u00d1\u0001\u0002', 'latin1'));
    const broken = (await detectBrew()) as BrewDetection;
    expect(broken.plistError).toBeDefined();
    const spaced = brewStrategy.plan({ ...broken, envFileSupported: false, plistPath: "/Users/o'brien/Library/LaunchAgents/homebrew.mxcl.ollama.plist" }, REQUEST);
    expect(spaced.blockers[0]?.fix).toBe(`plutil -convert xml1 '/Users/o'\\''brien/Library/LaunchAgents/homebrew.mxcl.ollama.plist'`);
    const hostile = brewStrategy.plan({ ...broken, envFileSupported: false, plistPath: '/Users/x\n; rm -rf ~/y.plist' }, REQUEST);
    expect(hostile.blockers[0]?.fix).not.toContain('\n');
    expect(hostile.blockers[0]?.fix).toContain('rename it first');
  });
});

describe('brew services info for a formula that is not installed', () => {
  it('is not an installation: Homebrew answers for a formula it only knows (its own spec\'s shape), and `brew list --versions ollama` exits 1', async () => {
    const [entry] = JSON.parse(fixture('darwin/brew-services-info-unregistered-homebrew-spec.json')) as Record<string, unknown>[];
    const info = JSON.stringify([{ ...entry, name: 'ollama', service_name: 'homebrew.mxcl.ollama', file: '/opt/homebrew/opt/ollama/homebrew.mxcl.ollama.plist' }]);
    expect(await detectBrew({ info, installed: false })).toBeUndefined();
    // The same JSON for an installed formula that was never started is an installation.
    expect(await detectBrew({ info, installed: true })).toBeDefined();
  });

  it('the real capture of an installed, never-started service (phpmon\'s httpd: no `registered` field, older Homebrew) is checked the same way', async () => {
    const entries = JSON.parse(fixture('darwin/brew-services-info-all-phpmon.json')) as Record<string, unknown>[];
    const httpd = entries.find((entry) => entry['name'] === 'httpd');
    const info = JSON.stringify([{ ...httpd, name: 'ollama', service_name: 'homebrew.mxcl.ollama' }]);
    expect(await detectBrew({ info, installed: false })).toBeUndefined();
    const ctx = mac({ info, installed: false });
    await brewStrategy.detect(ctx, detectOptions());
    expect(ctx.calls.map((call) => [call.command, ...call.args].join(' '))).toContain('brew list --versions ollama');
  });
});

describe('a `brew services restart` that fails after brew stopped the service', () => {
  const original = () => fixture('darwin/homebrew.mxcl.ollama-camjn-dotfiles.plist');

  const BOOTSTRAP_FAILED = failed('Bootstrap failed: 5: Input/output error\nError: Failure while executing; `/bin/launchctl bootstrap gui/501 …` exited with 5.');
  async function restartWith(bootstrap: () => ExecResult, brewAnswer: ExecResult = BOOTSTRAP_FAILED) {
    await mkdir(path.dirname(plistPath()), { recursive: true });
    await writeFile(plistPath(), original(), { mode: 0o644 });
    const ctx = testContext({
      env: { HOME: home },
      exec: async (command, args): Promise<ExecResult> => {
        const line = [command, ...args].join(' ');
        if (line === 'brew services restart ollama') {
          // brew's stop: bootout, then `rm service.dest`; its start then fails at bootstrap.
          await unlink(plistPath());
          return brewAnswer;
        }
        if (command === 'launchctl' && args[0] === 'print') return failed('Could not find service "homebrew.mxcl.ollama" in domain for user gui: 501', 113);
        if (command === 'launchctl' && args[0] === 'bootout') return failed('Boot-out failed: 3: No such process', 3);
        if (command === 'launchctl' && args[0] === 'enable') return ok();
        if (command === 'launchctl' && args[0] === 'bootstrap') return bootstrap();
        return NOT_FOUND;
      },
    });
    const change = brewStrategy.restartChange?.({ elevate: [] }) as RestartChange;
    const outcome = await brewStrategy.restart?.(ctx, change, async (argv) => void (await runStep(ctx, argv))).then(
      () => 'resolved',
      (error: Error) => error.message,
    );
    return { ctx, outcome };
  }

  it('puts the LaunchAgent brew had back and bootstraps it, and says so', async () => {
    const { ctx, outcome } = await restartWith(() => ok());
    expect(outcome).toContain('Ollama was started again from the LaunchAgent it had before');
    expect(await readFile(plistPath(), 'utf8')).toBe(original());
    expect(ctx.calls.map((call) => [call.command, ...call.args].join(' '))).toContain(`launchctl bootstrap gui/${ctx.uid ?? 501} ${plistPath()}`);
  });

  it('a brew stopped by our timeout between its stop and its start is handled the same way', async () => {
    const { outcome } = await restartWith(() => ok(), { exitCode: null, stdout: '', stderr: '', failure: 'timeout' });
    expect(outcome).toContain('did not finish within 120 s');
    expect(outcome).toContain('Ollama was started again from the LaunchAgent it had before');
    expect(await readFile(plistPath(), 'utf8')).toBe(original());
  });

  it('when that bootstrap fails too, the message says Ollama is stopped and names the command that starts it', async () => {
    const { outcome } = await restartWith(() => failed('Bootstrap failed: 5: Input/output error', 5));
    expect(outcome).toContain('Ollama is stopped; run `brew services start ollama`');
  });
});

describe("Ollama.app's db.sqlite", () => {
  const database = () => path.join(home, 'db.sqlite');
  const sqlite = spawnSync('sqlite3', ['-version'], { encoding: 'utf8' }).status === 0;
  /** A machine whose sqlite3 is the real one (when installed), so a FIFO it opened would hang the test. */
  const machine = () =>
    testContext({
      exec: (command, args) => {
        if (command !== 'sqlite3' || !sqlite) return NOT_FOUND;
        const result = spawnSync('sqlite3', args, { encoding: 'utf8', timeout: 5000 });
        return { exitCode: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
      },
    });

  it.skipIf(needs.mkfifo)('a FIFO is refused without being opened (no sqlite3 run, no hang), and reads as "could not read", never "off"' + because(needs.mkfifo), async () => {
    expect(spawnSync('mkfifo', [database()]).status).toBe(0);
    const ctx = machine();
    const reading = await readExpose(ctx, database());
    expect(reading.value).toBeUndefined();
    expect(ctx.calls).toEqual([]);
    expect(describeExpose(reading)).toContain('could not read');
    expect(describeExpose(reading)).toContain('is a FIFO (named pipe), not a regular file, so it was not opened');
  });

  it.skipIf(unmet(needs.mkfifo, needs.symlinks))('a symlink to a FIFO, and a device, are refused the same way' + because(needs.mkfifo, needs.symlinks), async () => {
    const fifo = path.join(home, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    await symlink(fifo, database());
    const ctx = machine();
    expect((await readExpose(ctx, database())).value).toBeUndefined();
    expect((await readExpose(ctx, '/dev/null')).value).toBeUndefined();
    expect(ctx.calls).toEqual([]);
  });

  it.skipIf(needs.sqlite3)('a real database: on is true, off is false, no settings row is unknown; no database at all is off (the app\'s default)' + because(needs.sqlite3), async () => {
    const make = (sql: string) => expect(spawnSync('sqlite3', [database()], { input: sql, encoding: 'utf8' }).status).toBe(0);
    make('CREATE TABLE settings (id INTEGER PRIMARY KEY, expose BOOLEAN NOT NULL DEFAULT 0);');
    expect((await readExpose(machine(), database())).value).toBeUndefined();
    make('INSERT INTO settings (id, expose) VALUES (1, 1);');
    expect((await readExpose(machine(), database())).value).toBe(true);
    make('UPDATE settings SET expose = 0 WHERE id = 1;');
    expect((await readExpose(machine(), database())).value).toBe(false);
    expect((await readExpose(machine(), path.join(home, 'missing.sqlite'))).value).toBe(false);
  });

  it('sqlite3 missing is "could not read", with the reason', async () => {
    await writeFile(database(), 'not really sqlite');
    const reading = await readExpose(testContext({ exec: () => NOT_FOUND }), database());
    expect(reading).toEqual({ value: undefined, unknownBecause: 'sqlite3 is not installed' });
  });
});

describe('older Homebrew: a reload whose bootstrap fails after the bootout', () => {
  it('the rollback puts the old plist back and bootstraps that one, so the job is loaded again on the old configuration', async () => {
    const { executeChanges } = await import('../../scripts/apply.ts');
    const { SystemFiles } = await import('../../scripts/system-files.ts');
    const { darwinPlatform } = await import('../../platforms/darwin/index.ts');
    const original = Buffer.from(fixture('darwin/homebrew.mxcl.ollama-camjn-dotfiles.plist'));
    await mkdir(path.dirname(plistPath()), { recursive: true });
    await writeFile(plistPath(), original, { mode: 0o644 });
    let loaded = true;
    const bootstrapped: Buffer[] = [];
    const ctx = testContext({
      env: { HOME: home },
      exec: async (command, args): Promise<ExecResult> => {
        if (command !== 'launchctl') return NOT_FOUND;
        if (args[0] === 'print') return loaded ? ok('state = running\n') : failed('Could not find service', 113);
        if (args[0] === 'bootout') {
          if (!loaded) return failed('Boot-out failed: 3: No such process', 3);
          loaded = false;
          return ok();
        }
        if (args[0] === 'bootstrap') {
          const content = await readFile(args[2] as string);
          bootstrapped.push(content);
          // The edited plist never loads (launchd keeps answering 5); the original does.
          if (!content.equals(original)) return failed('Bootstrap failed: 5: Input/output error', 5);
          loaded = true;
          return ok();
        }
        return NOT_FOUND;
      },
    });
    const after = Buffer.from(original.toString().replace('<dict>', '<dict>\n\t<key>Comment</key>\n\t<string>edited</string>'));
    const changes = [
      { type: 'file' as const, path: plistPath(), action: 'modify' as const, before: original, after, mode: 0o644, privileged: false },
      brewStrategy.restartChange?.({ elevate: [], uid: ctx.uid, job: plistPath() }) as RestartChange,
    ];
    const outcome = await executeChanges({ ctx, support: darwinPlatform, files: new SystemFiles(ctx, [], path.posix), stateDir: path.join(home, 'state') }, changes);
    expect(outcome.ok).toBe(false);
    expect(outcome.rolledBack).toBe(true);
    expect(outcome.error).toContain('Every change was rolled back, and Ollama was restarted on the configuration it had before.');
    expect((await readFile(plistPath())).equals(original)).toBe(true);
    expect(bootstrapped.at(-1)?.equals(original)).toBe(true);
    expect(loaded).toBe(true);
  });
});

describe('no Homebrew ollama, and an env file that is not a regular file', () => {
  it.skipIf(needs.mkfifo)('brew not knowing the formula is "not installed", whatever sits at the env file\'s path (a FIFO is not opened)' + because(needs.mkfifo), async () => {
    await mkdir(path.dirname(envPath()), { recursive: true });
    expect(spawnSync('mkfifo', [envPath()]).status).toBe(0);
    expect(await detectBrew({ infoFails: 'Error: No available formula with the name "ollama".' })).toBeUndefined();
  });
});
