/**
 * The macOS strategies' detection and plans, pure where they can be: a temporary home with real
 * files (a Homebrew-generated plist, the app's Info.plist, all captured from real Macs), and the
 * commands answered in their real formats (brew's JSON and version, launchctl print, ps aux), taken
 * from the fixtures in test/fixtures/darwin. The sandbox e2e suite runs the same code against
 * shims that behave like launchd and brew.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AGENT_SCRIPT, appStrategy, renderAgent, type AppDetection } from '../../platforms/darwin/app.ts';
import { brewEnvFilePath, brewStrategy, type BrewDetection } from '../../platforms/darwin/brew.ts';
import { parseBrewEnvFile, withBrewEnvValue } from '../../platforms/darwin/parsers/brew-env.ts';
import { environmentVariables, readPlistDict } from '../../platforms/darwin/plist-file.ts';
import type { Change, FileChange, PlanRequest, RestartChange, SettingChange } from '../../platforms/types.ts';
import type { ExecResult } from '../../scripts/context.ts';
import { StepError } from '../../scripts/system-files.ts';
import { fixture } from './support/fixtures.ts';
import { failed, NOT_FOUND, ok, tempRoot, testContext } from './support/context.ts';
import { because, needs } from './support/portability.ts';

let home: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ root: home, cleanup } = await tempRoot()));
afterEach(() => cleanup());

const REQUEST: PlanRequest = { target: { host: '0.0.0.0', port: 11434 }, explicitHost: false, elevate: [], listening: 'loopback' };
const plistPath = () => path.join(home, 'Library/LaunchAgents/homebrew.mxcl.ollama.plist');
const files = (changes: Change[]) => changes.filter((change): change is FileChange => change.type === 'file');
const restarts = (changes: Change[]) => changes.filter((change): change is RestartChange => change.type === 'restart');
const settings = (changes: Change[]) => changes.filter((change): change is SettingChange => change.type === 'setting');

/** brew's real `services info --json` entry (phpmon's capture), for the ollama formula in this home. */
function brewInfo(overrides: Record<string, unknown> = {}): string {
  const [entry] = JSON.parse(fixture('darwin/brew-services-info-all-phpmon.json')) as Record<string, unknown>[];
  return JSON.stringify([{ ...entry, name: 'ollama', service_name: 'homebrew.mxcl.ollama', file: plistPath(), loaded: true, running: true, pid: 4242, user: 'ada', status: 'started', ...overrides }]);
}

/** A machine whose brew, launchctl and ps answer as a real Mac's do. */
function mac(options: { brewVersion?: string; info?: string; ps?: string; launchdHost?: string; installed?: boolean } = {}) {
  return testContext({
    env: { HOME: home },
    exec: (command, args): ExecResult => {
      if (command === 'brew' && args[0] === '--version') return ok(fixture('darwin/brew-version-4.0.1-core-na.txt').replace('4.0.1', options.brewVersion ?? '4.0.1'));
      // cmd/list.rb: one `name versions…` line for an installed formula; exit 1 and no output without a keg.
      if (command === 'brew' && args[0] === 'list') return options.installed === false ? failed('', 1) : ok('ollama 0.32.3\n');
      if (command === 'brew' && args[0] === 'services') return options.info === undefined ? failed('Error: No available formula with the name "ollama".') : ok(options.info);
      if (command === 'launchctl' && args[0] === 'print') return ok(fixture('darwin/launchctl-print-gui-running-env-home-rewritten.txt'));
      if (command === 'launchctl' && args[0] === 'getenv') return ok(options.launchdHost === undefined ? '' : `${options.launchdHost}\n`);
      if (command === 'ps') return options.ps === undefined ? ok('USER PID %CPU %MEM VSZ RSS TT STAT STARTED TIME COMMAND\n') : ok(options.ps);
      return NOT_FOUND;
    },
  });
}

const detectOptions = () => ({ root: '/nonexistent-root', home, env: { HOME: home }, port: 11434, path: path.posix });

async function writeBrewPlist(name = 'homebrew.mxcl.ollama-camjn-dotfiles.plist'): Promise<string> {
  await mkdir(path.dirname(plistPath()), { recursive: true });
  const text = fixture(`darwin/${name}`);
  await writeFile(plistPath(), text);
  return text;
}

describe('the Homebrew env file', () => {
  it('is found where bin/brew looks: $XDG_CONFIG_HOME/homebrew, else ~/.homebrew (a HOMEBREW_USER_CONFIG_HOME you export is overwritten by bin/brew)', () => {
    expect(brewEnvFilePath({ home: '/Users/ada', env: {} }, path.posix)).toBe('/Users/ada/.homebrew/services/ollama.env');
    expect(brewEnvFilePath({ home: '/Users/ada', env: { XDG_CONFIG_HOME: '/Users/ada/.config' } }, path.posix)).toBe('/Users/ada/.config/homebrew/services/ollama.env');
    expect(brewEnvFilePath({ home: '/Users/ada', env: { HOMEBREW_USER_CONFIG_HOME: '/cfg' } }, path.posix)).toBe('/Users/ada/.homebrew/services/ollama.env');
  });

  it('keeps every other line, and gives every line brew applies for OLLAMA_HOST the new value (the last one is the one that wins)', () => {
    const before = Buffer.from('# mine\nOLLAMA_MODELS=/Volumes/big/models\nOLLAMA_HOST=127.0.0.1:11434\nOLLAMA_DEBUG=1\nOLLAMA_HOST=10.0.0.1:1\n');
    expect(parseBrewEnvFile(before).variables.get('OLLAMA_HOST')).toBe('10.0.0.1:1');
    expect(withBrewEnvValue(before, 'OLLAMA_HOST', '0.0.0.0:11434').toString()).toBe('# mine\nOLLAMA_MODELS=/Volumes/big/models\nOLLAMA_HOST=0.0.0.0:11434\nOLLAMA_DEBUG=1\nOLLAMA_HOST=0.0.0.0:11434\n');
    expect(withBrewEnvValue(Buffer.from('OLLAMA_DEBUG=1'), 'OLLAMA_HOST', '[::]:11434').toString()).toBe('OLLAMA_DEBUG=1\nOLLAMA_HOST=[::]:11434\n');
    expect(withBrewEnvValue(undefined, 'OLLAMA_HOST', '0.0.0.0:11434').toString()).toBe('OLLAMA_HOST=0.0.0.0:11434\n');
    // brew does no unquoting: the quotes reach Ollama, whose Var() trims them.
    expect(parseBrewEnvFile(Buffer.from('#OLLAMA_HOST=1.1.1.1:1\nOLLAMA_HOST="0.0.0.0:11434"\n')).variables.get('OLLAMA_HOST')).toBe('"0.0.0.0:11434"');
  });
});

describe('Homebrew ≥ 6.0.15: the env file', () => {
  it('creates ~/.homebrew/services/ollama.env (0600), restarts with brew, and leaves the plist untouched', async () => {
    await writeBrewPlist();
    const detection = (await brewStrategy.detect(mac({ brewVersion: '6.1.0', info: brewInfo() }), detectOptions())) as BrewDetection;
    expect(detection.envFileSupported).toBe(true);
    const plan = brewStrategy.plan(detection, REQUEST);
    expect(files(plan.changes)).toEqual([expect.objectContaining({ path: path.join(home, '.homebrew/services/ollama.env'), action: 'create', mode: 0o600 })]);
    expect(files(plan.changes)[0]?.after?.toString()).toBe('OLLAMA_HOST=0.0.0.0:11434\n');
    expect(restarts(plan.changes)).toEqual([{ type: 'restart', strategy: 'darwin-brew', steps: [['brew', 'services', 'restart', 'ollama']], privileged: false }]);
    expect(plan.warnings).toEqual([]);
  });

  it.skipIf(needs.posixModes)('keeps the lines already in the file and its safe mode; tightens a group-writable one to 0600, with a warning' + because(needs.posixModes), async () => {
    await writeBrewPlist();
    const envFile = path.join(home, '.homebrew/services/ollama.env');
    await mkdir(path.dirname(envFile), { recursive: true });
    await writeFile(envFile, 'OLLAMA_MODELS=/Volumes/big/models\n', { mode: 0o644 });
    const plan = brewStrategy.plan((await brewStrategy.detect(mac({ brewVersion: '6.1.0', info: brewInfo() }), detectOptions())) as BrewDetection, REQUEST);
    expect(files(plan.changes)[0]).toMatchObject({ action: 'modify', mode: 0o644 });
    expect(files(plan.changes)[0]?.after?.toString()).toBe('OLLAMA_MODELS=/Volumes/big/models\nOLLAMA_HOST=0.0.0.0:11434\n');
    await chmod(envFile, 0o664);
    const detection = (await brewStrategy.detect(mac({ brewVersion: '6.1.0', info: brewInfo() }), detectOptions())) as BrewDetection;
    expect(detection.problems?.[0]?.message).toContain('can be written by other users (mode 664), so Homebrew ignores it');
    const tightened = brewStrategy.plan(detection, REQUEST);
    expect(files(tightened.changes)[0]?.mode).toBe(0o600);
    expect(tightened.warnings[0]).toContain('written 0600 now');
  });

  it('only restarts when the env file already says so but the service runs the old way', async () => {
    await writeBrewPlist();
    const envFile = path.join(home, '.homebrew/services/ollama.env');
    await mkdir(path.dirname(envFile), { recursive: true });
    await writeFile(envFile, 'OLLAMA_HOST=0.0.0.0:11434\n', { mode: 0o600 });
    const detection = (await brewStrategy.detect(mac({ brewVersion: '6.1.0', info: brewInfo() }), detectOptions())) as BrewDetection;
    expect(detection.configuredIn).toBe(envFile);
    expect(brewStrategy.plan(detection, REQUEST).changes).toEqual([{ type: 'restart', strategy: 'darwin-brew', steps: [['brew', 'services', 'restart', 'ollama']], privileged: false }]);
    expect(brewStrategy.plan(detection, { ...REQUEST, listening: 'wildcard' }).changes).toEqual([]);
  });
});

describe('Homebrew before 6.0.15: the plist (the seed\'s fix)', () => {
  it('adds OLLAMA_HOST to EnvironmentVariables, keeps every other key, reloads with bootout and bootstrap, and warns that brew drops it', async () => {
    const original = await writeBrewPlist();
    const detection = (await brewStrategy.detect(mac({ info: brewInfo() }), detectOptions())) as BrewDetection;
    const plan = brewStrategy.plan(detection, REQUEST);
    const [file] = files(plan.changes);
    expect(file).toMatchObject({ path: plistPath(), action: 'modify' });
    expect(file?.before?.toString()).toBe(original);
    const after = readPlistDict(file?.after as Buffer, plistPath());
    const before = readPlistDict(Buffer.from(original), plistPath());
    expect(environmentVariables(after)).toEqual({ ...environmentVariables(before), OLLAMA_HOST: '0.0.0.0:11434' });
    expect({ ...after, EnvironmentVariables: null }).toEqual({ ...before, EnvironmentVariables: null });
    const uid = process.getuid?.();
    expect(restarts(plan.changes)).toEqual([
      { type: 'restart', strategy: 'darwin-brew', steps: [['launchctl', 'bootout', `gui/${uid}/homebrew.mxcl.ollama`], ['launchctl', 'bootstrap', `gui/${uid}`, plistPath()]], privileged: false, job: plistPath() },
    ]);
    expect(plan.warnings.join(' ')).toContain('`brew services start ollama` and `brew services restart ollama` rewrite');
    expect(plan.warnings.join(' ')).toContain('(`brew upgrade` leaves it alone)');
    expect(plan.warnings.join(' ')).toContain('(`brew update`, then run stigmer-setup again)');
    expect(plan.warnings.join(' ')).toContain('Homebrew 6.0.15 and later keep it in');
  });

  it('refuses a binary plist, naming the file, with plutil as the fix, and changes nothing', async () => {
    await mkdir(path.dirname(plistPath()), { recursive: true });
    await writeFile(plistPath(), Buffer.concat([Buffer.from('bplist00'), Buffer.from([0xd1, 0x01, 0x02, 0x55])]));
    const plan = brewStrategy.plan((await brewStrategy.detect(mac({ info: brewInfo() }), detectOptions())) as BrewDetection, REQUEST);
    expect(plan.changes).toEqual([]);
    expect(plan.blockers).toEqual([{ message: expect.stringContaining(`${plistPath()} is a binary property list`), fix: `plutil -convert xml1 ${plistPath()}` }]);
  });

  it('refuses a malformed plist, naming the file, and changes nothing', async () => {
    const original = await writeBrewPlist();
    await writeFile(plistPath(), original.slice(0, 400));
    const plan = brewStrategy.plan((await brewStrategy.detect(mac({ info: brewInfo() }), detectOptions())) as BrewDetection, REQUEST);
    expect(plan.changes).toEqual([]);
    expect(plan.blockers[0]?.message).toMatch(new RegExp(`${plistPath().replace(/[.]/g, '\\.')} is not a valid property list`));
    expect(plan.blockers[0]?.fix).toBe(`plutil -lint ${plistPath()}`);
  });

  it('asks for `brew services start ollama` when the service was never started (no LaunchAgent yet)', async () => {
    const plan = brewStrategy.plan((await brewStrategy.detect(mac({ info: brewInfo({ loaded: false, running: false, pid: null }) }), detectOptions())) as BrewDetection, REQUEST);
    expect(plan.changes).toEqual([]);
    expect(plan.blockers[0]?.fix).toBe('brew services start ollama, then run: npx stigmer-setup');
  });

  it('believes brew\'s label only when it is one Homebrew uses: sh.brew.ollama, yes; anything else, no', async () => {
    const known = (await brewStrategy.detect(mac({ info: brewInfo({ service_name: 'sh.brew.ollama' }) }), detectOptions())) as BrewDetection;
    expect(known.plistPath).toBe(path.join(home, 'Library/LaunchAgents/sh.brew.ollama.plist'));
    const odd = (await brewStrategy.detect(mac({ info: brewInfo({ service_name: '../../.ssh/authorized_keys' }) }), detectOptions())) as BrewDetection;
    expect(odd.plistPath).toBe(plistPath());
  });

  it('is not a brew installation when brew does not know the formula', async () => {
    expect(await brewStrategy.detect(mac({}), detectOptions())).toBeUndefined();
  });
});

describe('Ollama.app', () => {
  /** The app installed in ~/Applications (its real Info.plist), running, per a real `ps aux` capture. */
  async function installApp(): Promise<void> {
    const contents = path.join(home, 'Applications/Ollama.app/Contents');
    await mkdir(contents, { recursive: true });
    await writeFile(path.join(contents, 'Info.plist'), fixture('darwin/Ollama.app-Info.plist'));
  }

  it('is found by its bundle id in ~/Applications', async () => {
    await installApp();
    const detection = (await appStrategy.detect(mac(), detectOptions())) as AppDetection;
    expect(detection).toMatchObject({ strategy: 'darwin-app', bundle: path.join(home, 'Applications/Ollama.app'), running: false, expose: false });
  });

  it.skipIf(needs.mkfifo)('an Expose setting that could not be read is "unknown", never "off": doctor and the plan both say so' + because(needs.mkfifo), async () => {
    await installApp();
    const settings = path.join(home, 'Library/Application Support/Ollama');
    await mkdir(settings, { recursive: true });
    execFileSync('mkfifo', [path.join(settings, 'db.sqlite')]);
    const detection = (await appStrategy.detect(mac(), detectOptions())) as AppDetection;
    expect(detection.expose).toBeUndefined();
    expect(detection.problems?.map((problem) => problem.message)).toContainEqual(expect.stringContaining('could not read the app\'s "Expose Ollama to the network" setting'));
    expect(detection.problems?.map((problem) => problem.message).join(' ')).toContain('is a FIFO (named pipe), not a regular file, so it was not opened');
    expect(appStrategy.plan(detection, REQUEST).warnings.join(' ')).toContain('if it is on, the app listens on 0.0.0.0 whatever OLLAMA_HOST says');
  });

  it('sets the variable for apps, adds a login agent that sets it at every login, and restarts the app', async () => {
    await installApp();
    const plan = appStrategy.plan((await appStrategy.detect(mac(), detectOptions())) as AppDetection, REQUEST);
    expect(settings(plan.changes)).toEqual([{ type: 'setting', store: 'launchd-env', key: 'OLLAMA_HOST', before: undefined, after: '0.0.0.0:11434', privileged: false, argv: ['launchctl', 'setenv', 'OLLAMA_HOST', '0.0.0.0:11434'] }]);
    const [agent] = files(plan.changes);
    expect(agent).toMatchObject({ path: path.join(home, 'Library/LaunchAgents/com.stigmer.ollama-host.plist'), action: 'create', mode: 0o644 });
    // The value is the script's $1, an argument: it is never part of the shell text.
    expect(readPlistDict(agent?.after as Buffer, 'agent')).toEqual({ Label: 'com.stigmer.ollama-host', ProgramArguments: ['/bin/sh', '-c', AGENT_SCRIPT, 'com.stigmer.ollama-host', '0.0.0.0:11434'], RunAtLoad: true });
    // Not running: the restart opens the bundle that is installed, by its path.
    expect(restarts(plan.changes)).toEqual([{ type: 'restart', strategy: 'darwin-app', steps: [['pkill', '-x', 'Ollama'], ['open', path.join(home, 'Applications/Ollama.app'), '--args', 'hidden']], privileged: false, port: 11434 }]);
  });

  it('changes nothing when launchd and the login agent already give the address and the app listens there', async () => {
    await installApp();
    const agent = path.join(home, 'Library/LaunchAgents/com.stigmer.ollama-host.plist');
    await mkdir(path.dirname(agent), { recursive: true });
    await writeFile(agent, renderAgent('0.0.0.0:11434'));
    const detection = (await appStrategy.detect(mac({ launchdHost: '0.0.0.0:11434' }), detectOptions())) as AppDetection;
    expect(detection.problems).toEqual([]);
    expect(appStrategy.plan(detection, { ...REQUEST, listening: 'wildcard' }).changes).toEqual([]);
  });

  it('warns that a setenv with no login agent is lost at reboot', async () => {
    await installApp();
    const detection = (await appStrategy.detect(mac({ launchdHost: '0.0.0.0:11434' }), detectOptions())) as AppDetection;
    expect(detection.problems?.[0]).toMatchObject({ status: 'warn', fix: 'npx stigmer-setup --yes --host 0.0.0.0:11434' });
    expect(detection.problems?.[0]?.message).toContain('lost at the next reboot');
  });

  it('finds the app\'s server among the processes of a real `ps aux`, and knows it owns the port', async () => {
    await installApp();
    const listeners = [{ address: '127.0.0.1', port: 11434, family: 4 as const, scope: 'loopback' as const, owner: { pid: 821, argv: ['ollama'] } }];
    const detection = (await appStrategy.detect(mac({ ps: fixture('darwin/ps-aux-grep-ollama-app.txt') }), { ...detectOptions(), listeners })) as AppDetection;
    expect(detection.serverPid).toBe(821);
    // That capture, grepped case-sensitively, has the app's server but not the app itself.
    expect(detection.running).toBe(false);
  });
});

/**
 * `ps aux` rows in the layout of the real capture test/fixtures/darwin/ps-aux-grep-ollama-app.txt:
 * its USER…TIME columns, with our pid and command. The command of the app itself,
 * `/Applications/Ollama.app/Contents/MacOS/Ollama hidden`, is what public reports of a running app
 * show (see docs-notes/h1-darwin-app.md); no complete `ps aux` line of it was found.
 */
function psAux(rows: [number, string][]): string {
  const real = fixture('darwin/ps-aux-grep-ollama-app.txt').split('\n')[2] as string;
  const prefix = real.slice(0, real.indexOf('/Applications'));
  return `USER               PID  %CPU %MEM      VSZ    RSS   TT  STAT STARTED      TIME COMMAND\n${rows.map(([pid, command]) => prefix.replace(' 821 ', ` ${pid} `) + command).join('\n')}\n`;
}

describe('Ollama.app restart: never stop what can\'t be started again', () => {
  /** An app bundle with the real Info.plist and its program, somewhere other than /Applications. */
  async function bundleAt(relative: string): Promise<string> {
    const bundle = path.join(home, relative);
    await mkdir(path.join(bundle, 'Contents/MacOS'), { recursive: true });
    await writeFile(path.join(bundle, 'Contents/Info.plist'), fixture('darwin/Ollama.app-Info.plist'));
    await writeFile(path.join(bundle, 'Contents/MacOS/Ollama'), '');
    return bundle;
  }

  /** A Mac where the app runs from `bundle`; pkill makes it quit unless `ignoresTerm`; open starts it. */
  function appMac(bundle: string, options: { ignoresTerm?: boolean; openFails?: boolean } = {}) {
    let running = true;
    const ctx = testContext({
      env: { HOME: home },
      exec: (command, args): ExecResult => {
        if (command === 'ps') return ok(psAux(running ? [[4684, `${bundle}/Contents/MacOS/Ollama hidden`], [4690, `${bundle}/Contents/Resources/ollama serve`]] : []));
        if (command === 'pkill') {
          if (!options.ignoresTerm) running = false;
          return ok();
        }
        if (command === 'open') {
          if (options.openFails) return failed(`Unable to find application named '${args[1]}'`);
          running = true;
          return ok();
        }
        // A user's `ssh -L [::1]:11434:…` tunnel: another listener on the port, in lsof's layout.
        if (command === 'lsof') return ok('COMMAND PID   USER   FD   TYPE DEVICE SIZE/OFF NODE NAME\nssh     977 ada    5u  IPv6 ... 0t0  TCP [::1]:11434 (LISTEN)\n');
        if (command === 'launchctl' && args[0] === 'getenv') return ok('');
        return NOT_FOUND;
      },
    });
    return ctx;
  }
  const change = (steps: string[][] = [['pkill', '-x', 'Ollama'], ['open', '-a', 'Ollama', '--args', 'hidden']]): RestartChange => ({ type: 'restart', strategy: 'darwin-app', steps, privileged: false, port: 11434 });
  const run = async () => {};

  it('a ps that fails while waiting is no "it has quit": the wait goes on until ps shows the app gone, then opens it', async () => {
    const bundle = await bundleAt('Applications/Ollama.app');
    const ctx = appMac(bundle);
    const answer = ctx.exec.bind(ctx);
    let psCalls = 0;
    let quitting = 0;
    const commands: string[] = [];
    ctx.exec = async (command, args, options) => {
      commands.push(command);
      if (command === 'ps') {
        psCalls++;
        // First the listing before pkill; then ps fails once while the app is still quitting.
        if (psCalls === 2) return failed('ps: fork: Resource temporarily unavailable');
        if (psCalls === 3 && quitting++ === 0) return ok(psAux([[4684, `${bundle}/Contents/MacOS/Ollama hidden`]]));
      }
      return answer(command, args, options);
    };
    await appStrategy.restart?.(ctx, change(), run);
    // ps (before), pkill, ps (failed), ps (still there), ps (gone), open.
    expect(commands.slice(commands.indexOf('pkill'))).toEqual(['pkill', 'ps', 'ps', 'ps', 'open']);
  });

  it('opens again the bundle the app ran from (a folder with a space, not /Applications), waiting for its pids, not for the port', async () => {
    const bundle = await bundleAt('Tools/My Apps/Ollama.app');
    const ctx = appMac(bundle);
    const restart = change();
    await appStrategy.restart?.(ctx, restart, run);
    const commands = ctx.calls.map((call) => [call.command, ...call.args]);
    expect(commands.filter(([command]) => command !== 'ps')).toEqual([['pkill', '-x', 'Ollama'], ['open', bundle, '--args', 'hidden']]);
    // The foreign listener on [::1]:11434 is none of its business: it never looks at the port.
    expect(commands.some(([command]) => command === 'lsof')).toBe(false);
    // The report shows the commands that ran.
    expect(restart.steps).toEqual([['pkill', '-x', 'Ollama'], ['open', bundle, '--args', 'hidden']]);
  });

  it('refuses before pkill when the bundle the app runs from is gone, and says so', async () => {
    const bundle = await bundleAt('Downloads/Ollama.app');
    const ctx = appMac(bundle);
    await rm(bundle, { recursive: true });
    const error = await appStrategy.restart?.(ctx, change(), run).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StepError);
    expect((error as Error).message).toContain(`runs from ${JSON.stringify(bundle)}, but it is not there any more`);
    expect((error as Error).message).toContain('Nothing was stopped.');
    expect(ctx.calls.map((call) => call.command)).not.toContain('pkill');
    expect(ctx.calls.map((call) => call.command)).not.toContain('open');
  });

  it('plans a blocker, not a restart it could not finish, when the running app\'s bundle is gone', async () => {
    const bundle = await bundleAt('Downloads/Ollama.app');
    const ctx = appMac(bundle);
    await rm(bundle, { recursive: true });
    const detection = (await appStrategy.detect(ctx, detectOptions())) as AppDetection;
    expect(detection).toMatchObject({ running: true, bundle: undefined });
    const plan = appStrategy.plan(detection, REQUEST);
    expect(plan.blockers).toHaveLength(1);
    expect(plan.blockers[0]?.message).toContain('it is not there any more');
  });

  it('refuses a bundle whose Info.plist is not Ollama\'s', async () => {
    const bundle = await bundleAt('Applications/Ollama.app');
    await writeFile(path.join(bundle, 'Contents/Info.plist'), fixture('darwin/Ollama.app-Info.plist').replace('com.electron.ollama', 'com.example.other'));
    const ctx = appMac(bundle);
    const error = await appStrategy.restart?.(ctx, change(), run).catch((caught: unknown) => caught);
    expect((error as Error).message).toContain("its Info.plist is not Ollama.app's");
    expect(ctx.calls.map((call) => call.command)).not.toContain('pkill');
  });

  it('still opens the app after a wait that timed out, and says it never quit', async () => {
    const bundle = await bundleAt('Applications/Ollama.app');
    const ctx = appMac(bundle, { ignoresTerm: true });
    const error = await appStrategy.restart?.(ctx, change(), run).catch((caught: unknown) => caught);
    expect((error as Error).message).toMatch(/^Ollama \(pid 4684, 4690\) was still running 15 s after `pkill -x Ollama`, so it did not restart and keeps the settings it started with; `open .*Ollama\.app --args hidden` ran, so it keeps running\./);
    expect(ctx.calls.at(-1)).toMatchObject({ command: 'open', args: [bundle, '--args', 'hidden'] });
  });

  it('says the app quit but could not be started again when open fails', async () => {
    const bundle = await bundleAt('Applications/Ollama.app');
    const ctx = appMac(bundle, { openFails: true });
    const error = await appStrategy.restart?.(ctx, change(), run).catch((caught: unknown) => caught);
    expect((error as Error).message).toMatch(/^Ollama\.app quit, but could not be started again: `open .*` failed \(exit 1\)/);
  });

  it('when the app is not running, opens the bundle the plan named if it is Ollama\'s, else by name; nothing to wait for', async () => {
    const bundle = await bundleAt('Applications/Ollama.app');
    const ctx = testContext({ env: { HOME: home }, exec: (command) => (command === 'ps' ? ok(psAux([])) : command === 'pkill' ? failed('', 1) : command === 'open' ? ok() : NOT_FOUND) });
    await appStrategy.restart?.(ctx, change([['pkill', '-x', 'Ollama'], ['open', bundle, '--args', 'hidden']]), run);
    expect(ctx.calls.filter((call) => call.command !== 'ps').map((call) => [call.command, ...call.args])).toEqual([['pkill', '-x', 'Ollama'], ['open', bundle, '--args', 'hidden']]);
    ctx.calls.length = 0;
    await appStrategy.restart?.(ctx, change([['pkill', '-x', 'Ollama'], ['open', path.join(home, 'gone/Ollama.app'), '--args', 'hidden']]), run);
    expect(ctx.calls.at(-1)).toMatchObject({ command: 'open', args: ['-a', 'Ollama', '--args', 'hidden'] });
  });

  it('doctor: an app that runs without the value it was configured with is a problem with the one command that fixes it', async () => {
    const bundle = await bundleAt('Applications/Ollama.app');
    const agent = path.join(home, 'Library/LaunchAgents/com.stigmer.ollama-host.plist');
    await mkdir(path.dirname(agent), { recursive: true });
    await writeFile(agent, renderAgent('0.0.0.0:11434'));
    const ctx = appMac(bundle);
    const listeners = [{ address: '127.0.0.1', port: 11434, family: 4 as const, scope: 'loopback' as const, owner: { pid: 4690, argv: ['ollama'] } }];
    const detection = (await appStrategy.detect(ctx, { ...detectOptions(), listeners })) as AppDetection;
    expect(detection.agentHost).toBe('0.0.0.0:11434');
    expect(detection.problems).toEqual([
      expect.objectContaining({
        status: 'warn',
        message: `Ollama.app runs without the OLLAMA_HOST it was configured with: its server (pid 4690) listens on 127.0.0.1:11434, but the login agent com.stigmer.ollama-host sets OLLAMA_HOST=0.0.0.0:11434. It started before the value was set.`,
        fix: 'npx stigmer-setup --yes --host 0.0.0.0:11434',
      }),
    ]);
    // Listening where it was configured: no such problem.
    const right = (await appStrategy.detect(ctx, { ...detectOptions(), listeners: [{ ...listeners[0]!, address: '::', family: 6 as const, scope: 'wildcard' as const }] })) as AppDetection;
    expect(right.problems).toEqual([]);
  });

  it('commands() quote the bundle path for sh', async () => {
    const bundle = await bundleAt("Tools/Bob's Apps/Ollama.app");
    const detection = (await appStrategy.detect(appMac(bundle), detectOptions())) as AppDetection;
    const commands = appStrategy.commands(detection, 11434);
    expect(commands.start).toBe(`open '${home}/Tools/Bob'\\''s Apps/Ollama.app'`);
    expect(commands.restart).toBe(`pkill -x Ollama; sleep 5; open '${home}/Tools/Bob'\\''s Apps/Ollama.app' --args hidden`);
  });
});
