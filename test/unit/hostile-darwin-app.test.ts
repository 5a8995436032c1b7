/**
 * Hostile input for Ollama.app on macOS: the process table, the bundle it names, the values put
 * into commands, and who runs us. `ps` output is untrusted (any process can name itself like the
 * app, put escape codes or a newline in its argv, or print megabytes); the bundle path it gives
 * may be a symlink, another app, or gone. Each case asserts what a user relies on: nothing is
 * stopped that can't be started again, and nothing hostile reaches a command to paste.
 */
import { chown, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AGENT_SCRIPT, appStrategy, bundleProblem, renderAgent, type AppDetection } from '../../platforms/darwin/app.ts';
import { darwinPlatform } from '../../platforms/darwin/index.ts';
import { readPlistDict } from '../../platforms/darwin/plist-file.ts';
import { describeOllamaCommand, parsePsAux } from '../../platforms/darwin/parsers/ps.ts';
import type { RestartChange } from '../../platforms/types.ts';
import type { ExecResult } from '../../scripts/context.ts';
import { fixture } from './support/fixtures.ts';
import { NOT_FOUND, ok, tempRoot, testContext } from './support/context.ts';
import { because, needs, unmet } from './support/portability.ts';

let home: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ root: home, cleanup } = await tempRoot()));
afterEach(() => cleanup());

/** `ps aux` rows in the layout of the real capture ps-aux-grep-ollama-app.txt, with our pid and command. */
function psAux(rows: [number, string][]): string {
  const real = fixture('darwin/ps-aux-grep-ollama-app.txt').split('\n')[2] as string;
  const prefix = real.slice(0, real.indexOf('/Applications'));
  return `USER               PID  %CPU %MEM      VSZ    RSS   TT  STAT STARTED      TIME COMMAND\n${rows.map(([pid, command]) => prefix.replace(' 821 ', ` ${pid} `) + command).join('\n')}\n`;
}

async function bundleAt(relative: string, bundleId = 'com.electron.ollama'): Promise<string> {
  const bundle = path.join(home, relative);
  await mkdir(path.join(bundle, 'Contents/MacOS'), { recursive: true });
  await writeFile(path.join(bundle, 'Contents/Info.plist'), fixture('darwin/Ollama.app-Info.plist').replace('com.electron.ollama', bundleId));
  await writeFile(path.join(bundle, 'Contents/MacOS/Ollama'), '');
  return bundle;
}

function machine(ps: string) {
  return testContext({
    env: { HOME: home },
    exec: (command, args): ExecResult => {
      if (command === 'ps') return ok(ps);
      if (command === 'pkill' || command === 'open') return ok();
      if (command === 'launchctl' && args[0] === 'getenv') return ok('');
      return NOT_FOUND;
    },
  });
}
const RESTART: RestartChange = { type: 'restart', strategy: 'darwin-app', steps: [['pkill', '-x', 'Ollama'], ['open', '-a', 'Ollama', '--args', 'hidden']], privileged: false, port: 11434 };
const restartError = async (ps: string) => {
  const ctx = machine(ps);
  const error = await appStrategy.restart?.(ctx, structuredClone(RESTART), async () => {}).catch((caught: unknown) => caught as Error);
  return { error, commands: ctx.calls.map((call) => call.command) };
};

describe('the process table is untrusted', () => {
  it('escape codes in the app\'s path never reach a message raw, and the mangled path is refused before pkill', async () => {
    const bundle = await bundleAt('Apps/Ollama.app');
    const { error, commands } = await restartError(psAux([[4684, `${bundle.replace('Apps', 'Ap\u001b[2Jps')}/Contents/MacOS/Ollama hidden`]]));
    // Stripped of its escape code the path would name another (real) bundle: a path ps printed with
    // control characters in it is not trusted at all.
    expect(error?.message).toContain('Nothing was stopped.');
    expect(error?.message).not.toMatch(/\u001b/);
    expect(commands).not.toContain('pkill');
  });

  it('a newline in an argv gives a fragment line that is no process', () => {
    const text = psAux([[4684, '/Applications/Ollama.app/Contents/MacOS/Ollama hidden\n/Applications/Evil.app/Contents/MacOS/Ollama']]);
    expect(parsePsAux(text).map((process) => process.pid)).toEqual([4684]);
  });

  it('huge ps output is bounded and, with no app in it, nothing is stopped or waited for', async () => {
    const { error, commands } = await restartError(`${'x'.repeat(3_000_000)}\n`);
    expect(error).toBeUndefined();
    expect(commands.filter((command) => command === 'ps')).toHaveLength(1);
  });

  it('a process that only mentions the bundle in its arguments is not the app', () => {
    expect(describeOllamaCommand('/usr/bin/tail -f /Applications/Ollama.app/Contents/MacOS/Ollama.log')).toBeUndefined();
    expect(describeOllamaCommand('/Applications/Ollama.app/Contents/MacOS/OllamaHelper')).toBeUndefined();
    expect(describeOllamaCommand('/Users/ada/My Apps/Ollama.app/Contents/MacOS/Ollama hidden')).toEqual({ kind: 'app', bundle: '/Users/ada/My Apps/Ollama.app' });
  });

  it('a ps that fails is not "nothing runs": refused, nothing stopped', async () => {
    const ctx = testContext({ env: { HOME: home }, exec: (command) => (command === 'ps' ? { exitCode: 1, stdout: '', stderr: 'ps: sysctl: Operation not permitted' } : ok()) });
    const error = await appStrategy.restart?.(ctx, structuredClone(RESTART), async () => {}).catch((caught: unknown) => caught as Error);
    expect(error?.message).toBe("`ps aux` failed, so stigmer-setup can't tell whether Ollama.app runs or where from. Nothing was stopped.");
    expect(ctx.calls.map((call) => call.command)).toEqual(['ps']);
    expect(await appStrategy.checkRestart?.(ctx, structuredClone(RESTART))).toBe(error?.message);
  });

  it('two copies of the app running from different bundles: refused, nothing stopped', async () => {
    const a = await bundleAt('A/Ollama.app');
    const b = await bundleAt('B/Ollama.app');
    const { error, commands } = await restartError(psAux([[1, `${a}/Contents/MacOS/Ollama`], [2, `${b}/Contents/MacOS/Ollama hidden`]]));
    expect(error?.message).toMatch(/^Ollama\.app runs from 2 places .* Nothing was stopped\./);
    expect(commands).not.toContain('pkill');
  });
});

describe('the bundle ps names is checked before anything is stopped', () => {
  it.skipIf(needs.symlinks)('a symlink to Ollama\'s bundle is fine; a symlink to another app, a relative path, ".." or a file are refused' + because(needs.symlinks), async () => {
    const real = await bundleAt('Real/Ollama.app');
    const other = await bundleAt('Other/Other.app', 'com.example.other');
    await mkdir(path.join(home, 'Links'), { recursive: true });
    await symlink(real, path.join(home, 'Links/Ollama.app'));
    await symlink(other, path.join(home, 'Links/Fake.app'));
    const ctx = machine('');
    expect(await bundleProblem(ctx, path.join(home, 'Links/Ollama.app'))).toBeUndefined();
    expect(await bundleProblem(ctx, path.join(home, 'Links/Fake.app'))).toContain("not Ollama.app's");
    expect(await bundleProblem(ctx, 'Applications/Ollama.app')).toBe('that is not a path to an app bundle');
    expect(await bundleProblem(ctx, `${home}/Real/../Real/Ollama.app`)).toBe('that is not a path to an app bundle');
    await writeFile(path.join(home, 'File.app'), 'not a folder');
    expect(await bundleProblem(ctx, path.join(home, 'File.app'))).toBe('it is not a folder');
    expect(await bundleProblem(ctx, `/${'a'.repeat(2000)}.app`)).toContain('longer than');
  });

  it('a bundle without its program is refused', async () => {
    const bundle = await bundleAt('Apps/Ollama.app');
    await rm(path.join(bundle, 'Contents/MacOS/Ollama'));
    expect(await bundleProblem(machine(''), bundle)).toBe('its program Contents/MacOS/Ollama is missing');
  });
});

describe('values put into commands', () => {
  it('commands() quote a hostile bundle path for sh, and fall back to open -a for one no quoting can paste', async () => {
    const bundle = await bundleAt("Apps/$(touch pwned); echo 'x'/Ollama.app");
    const detection = (await appStrategy.detect(machine(psAux([[4684, `${bundle}/Contents/MacOS/Ollama hidden`]])), { root: '/nonexistent', home, env: { HOME: home }, port: 11434, path: path.posix })) as AppDetection;
    expect(detection.bundle).toBe(bundle);
    const commands = appStrategy.commands(detection, 11434);
    expect(commands.start).toBe(`open '${home}/Apps/$(touch pwned); echo '\\''x'\\''/Ollama.app'`);
    const unquotable = appStrategy.commands({ ...detection, bundle: '/Apps/a\u0007b/Ollama.app' }, 11434);
    expect(unquotable.start).toBe('open -a Ollama');
    expect(unquotable.restart).not.toMatch(/\u0007/);
  });

  it('the login agent carries the value as an argument, never inside its shell text', () => {
    const hostile = `0.0.0.0:11434"; rm -rf ~; echo "$(id)`;
    const dict = readPlistDict(renderAgent(hostile), 'agent');
    expect(dict.ProgramArguments).toEqual(['/bin/sh', '-c', AGENT_SCRIPT, 'com.stigmer.ollama-host', hostile]);
    // The script reads the value once (value=$1, no splitting in an assignment), uses it only
    // double-quoted, and never evaluates it.
    expect(AGENT_SCRIPT.match(/\$\{?1\b/g)).toEqual(['$1']);
    expect(AGENT_SCRIPT).toContain('value=$1\n');
    expect(AGENT_SCRIPT.match(/.\$value/g)?.every((use) => use.startsWith('"'))).toBe(true);
    expect(AGENT_SCRIPT).not.toMatch(/\beval\b/);
  });

  it('a hostile launchd value in the doctor fix is reduced to an address and quoted', async () => {
    await bundleAt('Applications/Ollama.app');
    const ctx = testContext({
      env: { HOME: home },
      exec: (command, args) => (command === 'launchctl' && args[0] === 'getenv' ? ok('$(id):1\n') : command === 'ps' ? ok(psAux([])) : NOT_FOUND),
    });
    const detection = (await appStrategy.detect(ctx, { root: '/nonexistent', home, env: { HOME: home }, port: 11434, path: path.posix })) as AppDetection;
    expect(detection.problems?.[0]?.fix).toBe("npx stigmer-setup --yes --host '$(id):1'");
  });
});

describe('a different user: HOME must belong to the user who runs us', () => {
  const preflight = (ctx: ReturnType<typeof testContext>) => darwinPlatform.preflight?.(ctx);

  it.skipIf(needs.root)('root with HOME pointing at another user\'s home (no SUDO_USER) is refused before anything is read' + because(needs.root), async () => {
    await chown(home, 501, 20);
    const ctx = { ...testContext({ env: { HOME: home } }), isRoot: true, uid: 0 };
    expect(await preflight(ctx)).toMatch(new RegExp(`^HOME \\(${JSON.stringify(home).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\) belongs to uid 501, but this runs as uid 0 \\(root\\)`));
    expect(ctx.calls).toEqual([]);
  });

  it.skipIf(unmet(needs.root, needs.symlinks))('a user whose HOME is theirs passes, also through a symlink; a missing or relative HOME is refused' + because(needs.root, needs.symlinks), async () => {
    await chown(home, 501, 20);
    const ctx = { ...testContext({ env: { HOME: home } }), isRoot: false, uid: 501 };
    expect(await preflight(ctx)).toBeUndefined();
    const link = `${home}-link`;
    await symlink(home, link);
    try {
      expect(await preflight({ ...ctx, env: { HOME: link } })).toBeUndefined();
    } finally {
      await rm(link);
    }
    expect(await preflight({ ...ctx, env: { HOME: path.join(home, 'gone') } })).toMatch(/\) does not exist\./);
    expect(await preflight({ ...ctx, env: { HOME: 'relative/home' } })).toMatch(/^HOME is not set to an absolute path/);
    expect(await preflight({ ...ctx, env: {} })).toMatch(/^HOME is not set to an absolute path/);
  });

  it('through sudo it is still the sudo message', async () => {
    const ctx = { ...testContext({ env: { HOME: '/var/root', SUDO_USER: 'ada' } }), isRoot: true, uid: 0 };
    expect(await preflight(ctx)).toMatch(/^run without sudo/);
  });
});
