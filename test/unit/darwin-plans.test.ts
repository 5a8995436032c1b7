/**
 * The macOS strategies' detection and plans, pure where they can be: a temporary home with real
 * files (a Homebrew-generated plist, the app's Info.plist, all captured from real Macs), and the
 * commands answered in their real formats (brew's JSON and version, launchctl print, ps aux), taken
 * from the fixtures in test/fixtures/darwin. The sandbox e2e suite runs the same code against
 * shims that behave like launchd and brew.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appStrategy, renderAgent, type AppDetection } from '../../platforms/darwin/app.ts';
import { brewEnvFilePath, brewStrategy, type BrewDetection } from '../../platforms/darwin/brew.ts';
import { parseBrewEnvFile, withBrewEnvValue } from '../../platforms/darwin/parsers/brew-env.ts';
import { environmentVariables, readPlistDict } from '../../platforms/darwin/plist-file.ts';
import type { Change, FileChange, PlanRequest, RestartChange, SettingChange } from '../../platforms/types.ts';
import type { ExecResult } from '../../scripts/context.ts';
import { fixture } from './support/fixtures.ts';
import { failed, NOT_FOUND, ok, tempRoot, testContext } from './support/context.ts';

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

  it('keeps the lines already in the file and its safe mode; tightens a group-writable one to 0600, with a warning', async () => {
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

  it('sets the variable for apps, adds a login agent that sets it at every login, and restarts the app', async () => {
    await installApp();
    const plan = appStrategy.plan((await appStrategy.detect(mac(), detectOptions())) as AppDetection, REQUEST);
    expect(settings(plan.changes)).toEqual([{ type: 'setting', store: 'launchd-env', key: 'OLLAMA_HOST', before: undefined, after: '0.0.0.0:11434', privileged: false, argv: ['launchctl', 'setenv', 'OLLAMA_HOST', '0.0.0.0:11434'] }]);
    const [agent] = files(plan.changes);
    expect(agent).toMatchObject({ path: path.join(home, 'Library/LaunchAgents/com.stigmer.ollama-host.plist'), action: 'create', mode: 0o644 });
    expect(readPlistDict(agent?.after as Buffer, 'agent')).toEqual({ Label: 'com.stigmer.ollama-host', ProgramArguments: ['/bin/launchctl', 'setenv', 'OLLAMA_HOST', '0.0.0.0:11434'], RunAtLoad: true });
    expect(restarts(plan.changes)).toEqual([{ type: 'restart', strategy: 'darwin-app', steps: [['pkill', '-x', 'Ollama'], ['open', '-a', 'Ollama', '--args', 'hidden']], privileged: false, port: 11434 }]);
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
