/**
 * Hostile input for the undo record and the state folder: what setup records, undo accepts.
 *
 * - Every setting store (launchd env, Windows User env, Windows service env, snap) keeps a
 *   previous value with a newline, a tab or an escape code losslessly, and undo puts it back
 *   exactly; a value the record can't carry (a 100 KB one) is refused before anything changes.
 * - The record's writer and reader apply one rule (settingValueProblem), checked over thousands
 *   of generated values.
 * - snap: only snapd's "no such option" answer means unset; a nested table comes back exactly.
 * - The state folder and backups/ are refused when they are a symlink, writable by others, or
 *   someone else's.
 * - Undo after Ollama was uninstalled completes: files and settings restored, no restart.
 */
import { chmod, chown, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { darwinPlatform } from '../../platforms/darwin/index.ts';
import { launchdEnvStore } from '../../platforms/darwin/launchd.ts';
import { linuxPlatform } from '../../platforms/linux/index.ts';
import { isNoSuchOption, parseSnapGetDocument, snapDetectionOf, snapStore, snapStrategy } from '../../platforms/linux/snap.ts';
import type { Change, Plan, PlatformSupport, SettingStoreId } from '../../platforms/types.ts';
import { win32Platform } from '../../platforms/win32/index.ts';
import { applySetup, applyUndo, planUndo, recordBlockers, type Applier, type RecordState } from '../../scripts/apply.ts';
import { renderChanges } from '../../scripts/report.ts';
import { defaultRegistry, registryPowerShell, SERVICE_KEY } from './support/fake-win-service.ts';
import { environmentReadOutput } from './support/windows-powershell.ts';
import { describeCommand, SystemFiles } from '../../scripts/system-files.ts';
import {
  allowedFor,
  emptyRecord,
  MAX_SETTING_VALUE,
  readRecord,
  RECORD_NAME,
  renderRecord,
  settingValueProblem,
  UndoRecordError,
  validateRecord,
  type Allowed,
  type UndoRecord,
} from '../../scripts/undo-record.ts';
import { failed, NOT_FOUND, ok, tempRoot, testContext, type ExecScript, type TestContext } from './support/context.ts';
import { FakeSnapd } from './support/fake-snap.ts';
import { FakeSystemd } from './support/fake-systemd.ts';
import { fixture } from './support/fixtures.ts';

let root: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ root, cleanup } = await tempRoot()));
afterEach(() => cleanup());

/** A value a user could really have: a newline, a tab, terminal escape codes, a trailing space. */
const AWKWARD = 'old\nline two\t\x1b[31mred\x1b[0m \x7f\u0085';
/** Far beyond what the record carries (and beyond the old 1024-character limit). */
const HUGE = 'x'.repeat(100_000);
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

// ---------------------------------------------------------------------------------------------
// Fakes of each store's tool, answering as the tool does (not as our writer expects).

/** `launchctl getenv/setenv/unsetenv`: getenv prints the value and a newline, nothing when unset. */
function fakeLaunchctl(initial: string | undefined) {
  const env = new Map<string, string>();
  if (initial !== undefined) env.set('OLLAMA_HOST', initial);
  const script: ExecScript = (command, args) => {
    if (command !== 'launchctl') return NOT_FOUND;
    const [verb, key = '', value = ''] = args;
    if (verb === 'getenv') return ok(env.has(key) ? `${env.get(key)}\n` : '');
    if (verb === 'setenv') env.set(key, value);
    else if (verb === 'unsetenv') env.delete(key);
    else return NOT_FOUND;
    return ok();
  };
  return { script, get: () => env.get('OLLAMA_HOST') };
}

/** PowerShell's [Environment]::Get/SetEnvironmentVariable for User scope, answering the product's lossless read script as PowerShell does. */
function fakeUserEnv(initial: string | undefined) {
  let value = initial;
  const script: ExecScript = (command, args, options) => {
    if (command !== 'powershell.exe') return NOT_FOUND;
    const text = args.at(-1) ?? '';
    if (text.includes('GetEnvironmentVariable')) return ok(environmentReadOutput(value));
    if (text.includes('SetEnvironmentVariable')) {
      value = text.includes('$null') ? undefined : options.env?.STIGMER_SETUP_VALUE;
      return ok();
    }
    return NOT_FOUND;
  };
  return { script, get: () => value };
}

/**
 * The ollama service key's Environment (REG_MULTI_SZ) in a fake registry, read and edited by
 * Windows PowerShell running registry.ts's scripts (the JSON read, the in-place edit of one entry):
 * support/fake-win-service.ts's registryPowerShell, shared with the service strategy's tests.
 */
function fakeServiceEnv(initial: string | undefined) {
  const registry = defaultRegistry(['PATH=C:\\Windows', ...(initial === undefined ? [] : [`OLLAMA_HOST=${initial}`])]);
  const script: ExecScript = (command, args, options) => (command === 'powershell.exe' ? (registryPowerShell(registry, args.at(-1) ?? '', options.env) ?? NOT_FOUND) : NOT_FOUND);
  /** The entries as Windows reads them (NUL ends an entry). */
  const entries = (): string[] => ((registry[SERVICE_KEY]?.Environment?.value as string[] | undefined) ?? []).flatMap((entry) => entry.split('\0'));
  return { script, entries, get: () => entries().find((entry) => entry.startsWith('OLLAMA_HOST='))?.slice('OLLAMA_HOST='.length) };
}

function fakeSnap(initial: string | undefined) {
  const snapd = new FakeSnapd();
  if (initial !== undefined) snapd.config.host = initial;
  const script: ExecScript = (command, args) => snapd.exec(command, args);
  return { script, get: () => snapd.config.host as string | undefined, snapd };
}

interface StoreCase {
  store: SettingStoreId;
  key: string;
  /** The platform, with POSIX paths so its state folder can live in this test's temporary folder. */
  support: PlatformSupport;
  fake: (initial: string | undefined) => { script: ExecScript; get: () => string | undefined };
  /** A previous value this store can hold and its reader gives back exactly. */
  value: string;
}

const STORES: StoreCase[] = [
  { store: 'launchd-env', key: 'OLLAMA_HOST', support: darwinPlatform, fake: fakeLaunchctl, value: `${AWKWARD}\n${'y'.repeat(5000)}` },
  { store: 'windows-user-env', key: 'OLLAMA_HOST', support: { ...win32Platform, path: path.posix }, fake: fakeUserEnv, value: `${AWKWARD}${'y'.repeat(5000)}` },
  // A multi-string entry holds any character but NUL, and the reader takes the list from PowerShell's JSON, line breaks included.
  { store: 'windows-service-env', key: 'OLLAMA_HOST', support: { ...win32Platform, path: path.posix }, fake: fakeServiceEnv, value: `${AWKWARD}\n${'y'.repeat(20_000)}` },
  { store: 'snap', key: 'host', support: linuxPlatform, fake: fakeSnap, value: `${AWKWARD}\n` },
];

const locations = () => ({ root, home: root, env: { LOCALAPPDATA: root } });
const stateDirOf = (_support: PlatformSupport) => path.posix.join(root, 'state');

function applierFor(ctx: TestContext, support: PlatformSupport): Applier {
  return { ctx, support, files: new SystemFiles(ctx, [], path.posix), stateDir: stateDirOf(support) };
}

async function stateOf(ctx: TestContext, support: PlatformSupport): Promise<RecordState> {
  return (await readRecord(ctx, allowedFor(support, locations()), stateDirOf(support))) ?? {};
}

/** The plan each strategy makes for a setting: the store's current value (read by the real reader) is `before`. */
async function settingPlan(ctx: TestContext, item: StoreCase): Promise<Plan> {
  const store = item.support.settingStores[item.store];
  if (!store) throw new Error(`no ${item.store} store`);
  const before = await store.read(ctx, item.key);
  const after = item.store === 'snap' ? JSON.stringify('0.0.0.0:11434') : '0.0.0.0:11434';
  const change: Change = { type: 'setting', store: item.store, key: item.key, before, after, privileged: false, argv: store.command(item.key, after).argv };
  return { strategy: 'test', target: { host: '0.0.0.0', port: 11434 }, changes: [change], summary: '', blockers: [], warnings: [] };
}

describe.each(STORES)('the $store store: what setup records, undo accepts', (item) => {
  it('keeps a previous value with a newline, a tab and escape codes losslessly, and undo restores it exactly', async () => {
    const fake = item.fake(item.value);
    const ctx = testContext({ exec: fake.script, env: { HOME: root } });
    const plan = await settingPlan(ctx, item);
    expect(recordBlockers(plan.changes, undefined)).toEqual([]);
    const outcome = await applySetup(applierFor(ctx, item.support), plan, await stateOf(ctx, item.support));
    expect(outcome).toMatchObject({ ok: true });
    expect(fake.get()).toBe('0.0.0.0:11434');

    // The record on disk carries the value JSON-escaped: no raw control character in the file.
    const text = await readFile(path.join(stateDirOf(item.support), RECORD_NAME), 'utf8');
    expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f]/);
    // ... and the reader accepts it (the old reader refused control characters and >1024 characters).
    const state = await stateOf(ctx, item.support);
    expect(state.record?.settings).toHaveLength(1);

    const undoCtx = testContext({ exec: fake.script, env: { HOME: root } });
    const { changes } = await planUndo(applierFor(undoCtx, item.support), state.record as UndoRecord, new Date());
    // What undo prints shows the value escaped, never raw control characters.
    expect(renderChanges(changes, true)).not.toMatch(RAW_CONTROL);
    const undone = await applyUndo(applierFor(undoCtx, item.support), changes, state);
    expect(undone).toMatchObject({ ok: true });
    expect(fake.get()).toBe(item.value);
    expect((await stateOf(undoCtx, item.support)).record).toBeUndefined();
  });

  it('refuses a 100 KB previous value up front: nothing changes, and it says why', async () => {
    const fake = item.fake(HUGE);
    const ctx = testContext({ exec: fake.script, env: { HOME: root } });
    const plan = await settingPlan(ctx, item);
    // The plan is blocked (what cli shows before asking) ...
    expect(recordBlockers(plan.changes, undefined)).toEqual([expect.objectContaining({ message: expect.stringMatching(new RegExp(`${item.store} ${item.key} .* is \\d+ characters long; .* up to ${MAX_SETTING_VALUE}.*Nothing was changed`)) })]);
    // ... and apply refuses it by itself too, before it writes anything.
    const calls = ctx.calls.length;
    const outcome = await applySetup(applierFor(ctx, item.support), plan, await stateOf(ctx, item.support));
    expect(outcome).toMatchObject({ ok: false, applied: [false] });
    expect(outcome.error).toMatch(/characters long.*Nothing was changed/);
    expect(ctx.calls.length).toBe(calls);
    expect(fake.get()).toBe(HUGE);
    await expect(readFile(path.join(stateDirOf(item.support), RECORD_NAME), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  const nulCase = {
    snap: 'keeps a NUL inside the snap option (snapd prints it escaped in its JSON) and restores it',
    'windows-service-env': 'a NUL ends a REG_MULTI_SZ entry, so no entry holds one: setup records the entry Windows reads, and undo puts back the list it found',
  }[item.store as string];
  it(nulCase ?? 'refuses a previous value holding a NUL up front (no command line can carry it back)', async () => {
    const fake = item.fake('a\0b');
    const ctx = testContext({ exec: fake.script, env: { HOME: root } });
    const plan = await settingPlan(ctx, item);
    if (item.store === 'windows-service-env') {
      // The registry stores the list NUL-separated: "OLLAMA_HOST=a\0b" is two entries to Windows
      // (and to the service), OLLAMA_HOST=a and b. That is what setup sees and must give back.
      const found = (fake as ReturnType<typeof fakeServiceEnv>).entries();
      expect(found).toEqual(['PATH=C:\\Windows', 'OLLAMA_HOST=a', 'b']);
      expect(plan.changes[0]).toMatchObject({ before: 'a' });
      expect(await applySetup(applierFor(ctx, item.support), plan, await stateOf(ctx, item.support))).toMatchObject({ ok: true });
      expect((fake as ReturnType<typeof fakeServiceEnv>).entries()).toEqual(['PATH=C:\\Windows', 'OLLAMA_HOST=0.0.0.0:11434', 'b']);
      const state = await stateOf(ctx, item.support);
      const { changes } = await planUndo(applierFor(ctx, item.support), state.record as UndoRecord, new Date());
      expect(await applyUndo(applierFor(ctx, item.support), changes, state)).toMatchObject({ ok: true });
      expect((fake as ReturnType<typeof fakeServiceEnv>).entries()).toEqual(found);
      return;
    }
    const outcome = await applySetup(applierFor(ctx, item.support), plan, await stateOf(ctx, item.support));
    if (item.store !== 'snap') {
      expect(outcome).toMatchObject({ ok: false, applied: [false] });
      expect(outcome.error).toMatch(/"a\\u0000b"\) holds a NUL character.*Nothing was changed/);
      expect(outcome.error).not.toMatch(RAW_CONTROL);
      expect(fake.get()).toBe('a\0b');
      return;
    }
    expect(outcome).toMatchObject({ ok: true });
    const state = await stateOf(ctx, item.support);
    const { changes } = await planUndo(applierFor(ctx, item.support), state.record as UndoRecord, new Date());
    expect(await applyUndo(applierFor(ctx, item.support), changes, state)).toMatchObject({ ok: true });
    expect(fake.get()).toBe('a\0b');
  });
});

// ---------------------------------------------------------------------------------------------

describe('one rule for writing and reading the record', () => {
  const STORE_IDS: SettingStoreId[] = ['launchd-env', 'windows-user-env', 'windows-service-env', 'snap'];
  const allowed: Allowed = {
    platform: 'linux',
    path: path.posix,
    root: '/',
    home: '/home/ada',
    files: new Set(),
    settings: new Set(STORE_IDS.map((store) => `${store}\0${store === 'snap' ? 'host' : 'OLLAMA_HOST'}`)),
    strategies: new Set(),
  };
  const recordWith = (store: SettingStoreId, before: string): UndoRecord => ({
    ...emptyRecord('linux', new Date(0)),
    settings: [{ store, key: store === 'snap' ? 'host' : 'OLLAMA_HOST', before }],
  });

  /** A small deterministic generator (xorshift32): the same values on every run. */
  function generator(seed: number) {
    let state = seed;
    return () => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) / 0x1_0000_0000;
    };
  }
  const POOL = ['a', '0', ':', '.', '[', ']', '"', "'", '\\', '\n', '\r', '\t', '\0', '\x1b', '\x07', '\x7f', '\u0085', '\u2028', '\u202e', 'é', '😀', '\ud800', '\udc00', '{', '}', ' '];

  function generatedValues(count: number): string[] {
    const random = generator(0x5eed);
    const values: string[] = [];
    for (let index = 0; index < count; index++) {
      // Mostly short values; some right around the bound.
      const length = index % 50 === 0 ? MAX_SETTING_VALUE - 2 + Math.floor(random() * 4) : Math.floor(random() * 40);
      let value = '';
      const filler = POOL[Math.floor(random() * POOL.length)] as string;
      for (let char = 0; char < length; char++) value += random() < 0.9 || length > 100 ? (char % 7 === 0 ? filler : 'a') : (POOL[Math.floor(random() * POOL.length)] as string);
      values.push(value);
    }
    return values;
  }

  it('renderRecord never writes a value validateRecord refuses, and what it writes reads back identically (4 stores × 1500 values)', () => {
    let accepted = 0;
    let refused = 0;
    for (const raw of generatedValues(1500)) {
      for (const store of STORE_IDS) {
        // For snap, what a store read gives is a JSON document; try the raw text as well.
        for (const value of store === 'snap' ? [JSON.stringify(raw), raw] : [raw]) {
          const record = recordWith(store, value);
          const problem = settingValueProblem(store, value);
          if (problem) {
            expect(() => renderRecord(record)).toThrow(UndoRecordError);
            refused++;
            continue;
          }
          const read = validateRecord(JSON.parse(renderRecord(record)), allowed, 'test');
          expect(read.settings[0]?.before).toBe(value);
          accepted++;
        }
      }
    }
    // Both sides of the rule were exercised.
    expect(accepted).toBeGreaterThan(3000);
    expect(refused).toBeGreaterThan(100);
  });

  it('accepts every value a store can hand over: any control character but NUL, up to 32767 characters', () => {
    for (const store of STORE_IDS.filter((id) => id !== 'snap')) {
      for (let code = 1; code < 0xa0; code++) expect(settingValueProblem(store, `a${String.fromCharCode(code)}b`)).toBeUndefined();
      expect(settingValueProblem(store, 'z'.repeat(MAX_SETTING_VALUE))).toBeUndefined();
      expect(settingValueProblem(store, 'z'.repeat(MAX_SETTING_VALUE + 1))).toMatch(/characters long/);
      expect(settingValueProblem(store, 'a\0b')).toMatch(/NUL/);
      expect(settingValueProblem(store, 'a\ud800b')).toMatch(/surrogate/);
    }
    expect(settingValueProblem('snap', '{"a":{"b":1}}')).toBeUndefined();
    expect(settingValueProblem('snap', '"a\\nb"')).toBeUndefined();
  });

  it('refuses a crafted record whose value no store could take, and names it escaped (no raw NUL or ESC in the message)', () => {
    for (const before of ['a\0b\x1b[2J', 'q'.repeat(MAX_SETTING_VALUE + 10)]) {
      const text = JSON.stringify(recordWith('launchd-env', 'x')).replace('"before":"x"', `"before":${JSON.stringify(before)}`);
      let message = '';
      try {
        validateRecord(JSON.parse(text), allowed, '/state/undo.json');
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/settings\[0\]\.before .*(NUL|characters long).*Nothing was changed/);
      expect(message).not.toMatch(RAW_CONTROL);
    }
  });

  it('reads a snap value from a record written before values were JSON documents the way snapd took it', () => {
    const old = (before: string) => validateRecord({ ...recordWith('snap', 'null'), settings: [{ store: 'snap', key: 'host', before }] }, allowed, 'test').settings[0]?.before;
    // `snap set ollama host=127.0.0.1:11434` stored a string (not JSON); `host=8080` stored a number.
    expect(old('127.0.0.1:11434')).toBe('"127.0.0.1:11434"');
    expect(old('8080')).toBe('8080');
  });
});

// ---------------------------------------------------------------------------------------------

describe('snap: read the option the way snapd prints it', () => {
  it('knows snapd\'s own "no such option" answer (fixture), wrapped or not, and nothing else', () => {
    const text = fixture('snap/get-no-such-option-snapd-spread.txt');
    expect(isNoSuchOption(text, 'snapctl-hooks', 'foo')).toBe(true);
    expect(isNoSuchOption(text.replace('has no', 'has\nno'), 'snapctl-hooks', 'foo')).toBe(true);
    expect(isNoSuchOption(text, 'snapctl-hooks', 'host')).toBe(false);
    expect(isNoSuchOption('error: cannot communicate with server: Get "http://localhost/v2/snaps/ollama/conf?keys=host": dial unix /run/snapd.socket: connect: connection refused\n', 'ollama', 'host')).toBe(false);
  });

  it('reads a nested table (fixture) as its JSON document, whitespace folded and nothing else changed', () => {
    expect(parseSnapGetDocument(fixture('snap/get-d-lxd-nested-table-ansible-666.json'), 'lxcfs')).toBe('{"cfs":false,"loadavg":true,"pidfd":true}');
    // A string keeps its escapes and inner spaces; a number beyond 2^53 keeps its digits.
    expect(parseSnapGetDocument('{\n\t"host": "a b\\n\\u003c"\n}\n', 'host')).toBe('"a b\\n\\u003c"');
    expect(parseSnapGetDocument('{\n\t"host": 9007199254740993\n}\n', 'host')).toBe('9007199254740993');
    expect(() => parseSnapGetDocument('0.0.0.0:11434\n', 'host')).toThrow(/not JSON/);
    expect(() => parseSnapGetDocument('{"other": 1}', 'host')).toThrow(/without exactly the host option/);
  });

  it('reads an unset option as unset only on snapd\'s answer; a transient failure stops setup before anything changes', async () => {
    const snap = fakeSnap(undefined);
    expect(await snapStore.read(testContext({ exec: snap.script }), 'host')).toBeUndefined();
    snap.snapd.config.host = '127.0.0.1:11434';
    snap.snapd.failNext = { verb: 'get', result: failed('error: cannot communicate with server: timeout exceeded while waiting for response\n') };
    await expect(snapStore.read(testContext({ exec: snap.script }), 'host')).rejects.toThrow(/Could not read the ollama snap's host option: `snap get -d ollama host` failed \(exit 1\): error: cannot communicate with server.*Nothing was changed/);
    // snap itself not answering (timed out) is not "unset" either.
    const timedOut: ExecScript = () => ({ exitCode: null, stdout: '', stderr: '', failure: 'timeout' });
    await expect(snapStore.read(testContext({ exec: timedOut }), 'host')).rejects.toThrow(/did not finish/);
  });

  it('detect turns an unreadable option into a blocker: the plan changes nothing (the old code planned "unset" and undo deleted the value)', async () => {
    const snap = fakeSnap('127.0.0.1:11434');
    snap.snapd.failNext = { verb: 'get', result: failed('error: cannot communicate with server: timeout exceeded while waiting for response\n') };
    const ctx = testContext({ exec: snap.script });
    const detection = await snapStrategy.detect(ctx, { root, home: root, env: {}, port: 11434, path: path.posix });
    expect(detection?.readError).toMatch(/cannot communicate with server/);
    const plan = snapStrategy.plan(detection as NonNullable<typeof detection>, { target: { host: '0.0.0.0', port: 11434 }, explicitHost: false, elevate: [] });
    expect(plan.changes).toEqual([]);
    expect(plan.blockers).toEqual([expect.objectContaining({ message: expect.stringMatching(/Could not read the ollama snap's host option/) })]);
  });

  it('as a user snapd refuses ("access denied"), reads through sudo -n instead of guessing unset', async () => {
    const snapd = new FakeSnapd(false);
    snapd.config.host = '127.0.0.1:11434';
    const ctx = testContext({ isRoot: false, exec: (command, args) => snapd.exec(command, args) });
    expect(await snapStore.read(ctx, 'host')).toBe('"127.0.0.1:11434"');
    expect(ctx.calls.map((call) => [call.command, ...call.args].join(' '))).toEqual(['snap get -d ollama host', 'sudo -n snap get -d ollama host']);
  });

  it('a nested table and a newline in the host option survive setup and undo exactly', async () => {
    for (const initial of [{ primary: '127.0.0.1:11434', extra: { note: 'a\nb', port: 11434 } }, 'line one\nline two']) {
      const snap = fakeSnap(undefined);
      snap.snapd.config.host = structuredClone(initial);
      const ctx = testContext({ exec: snap.script });
      const detection = snapDetectionOf(await snapStore.read(ctx, 'host'));
      const plan = snapStrategy.plan(detection, { target: { host: '0.0.0.0', port: 11434 }, explicitHost: false, elevate: [], listening: 'loopback' });
      if (typeof initial !== 'string') expect(plan.warnings.join(' ')).toMatch(/holds \{"primary".*not an address; setup replaces it, and undo puts it back exactly/);
      const applier = { ctx, support: linuxPlatform, files: new SystemFiles(ctx, [], path.posix), stateDir: path.join(root, 'state') };
      const allowed = allowedFor(linuxPlatform, { root, home: root, env: {} });
      expect(await applySetup(applier, plan, {})).toMatchObject({ ok: true });
      expect(snap.snapd.config.host).toBe('0.0.0.0:11434');
      const state = await readRecord(ctx, allowed, applier.stateDir);
      const { changes } = await planUndo(applier, state?.record as UndoRecord, new Date());
      expect(await applyUndo(applier, changes, state as RecordState)).toMatchObject({ ok: true });
      expect(snap.snapd.config.host).toEqual(initial);
      await rm(applier.stateDir, { recursive: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------

// Windows has no POSIX owner and mode bits, and a symlink there needs a privilege the CI runner lacks.
describe.skipIf(process.platform === 'win32')('the state folder is checked like undo.json', () => {
  const stateDir = () => linuxPlatform.stateDir({ root, home: root, env: {} });
  const read = (ctx = testContext()) => readRecord(ctx, allowedFor(linuxPlatform, { root, home: root, env: {} }), stateDir());
  /** A record that passes every check of its own. */
  const validRecord = () => renderRecord({ ...emptyRecord('linux', new Date(0)), settings: [{ store: 'snap', key: 'host', before: '"127.0.0.1:11434"' }], restart: [{ strategy: 'linux-snap' }] });

  it('refuses a state folder that is a symlink, even to a folder holding a valid record', async () => {
    const elsewhere = path.join(root, 'elsewhere');
    await mkdir(elsewhere);
    await writeFile(path.join(elsewhere, RECORD_NAME), validRecord(), { mode: 0o644 });
    await mkdir(path.dirname(stateDir()), { recursive: true });
    await symlink(elsewhere, stateDir());
    await expect(read()).rejects.toThrow(/state folder .*stigmer-setup is a symlink, not a folder.*Nothing was changed\. Fix: .*mv /);
  });

  it('refuses a world-writable state folder, and a group-writable backups folder, naming the chmod that fixes it', async () => {
    await mkdir(path.join(stateDir(), 'backups'), { recursive: true });
    await chmod(stateDir(), 0o777);
    await expect(read()).rejects.toThrow(/other users can write to it \(mode 0777\).*Fix, if you trust its content: `chmod go-w .*stigmer-setup`/);
    await chmod(stateDir(), 0o755);
    await chmod(path.join(stateDir(), 'backups'), 0o775);
    await expect(read()).rejects.toThrow(/stigmer-setup\/backups can't be trusted: other users can write to it/);
    await chmod(path.join(stateDir(), 'backups'), 0o700);
    await expect(read()).resolves.toBeUndefined();
  });

  it('refuses a backups folder that is a symlink (a backup written there would land where it points)', async () => {
    await mkdir(stateDir(), { recursive: true });
    await mkdir(path.join(root, 'elsewhere'));
    await symlink(path.join(root, 'elsewhere'), path.join(stateDir(), 'backups'));
    await expect(read()).rejects.toThrow(/backups is a symlink, not a folder/);
  });

  it.skipIf(process.getuid?.() !== 0)("refuses a state folder that belongs to someone else (not us, not root), naming the chown", async () => {
    await mkdir(stateDir(), { recursive: true });
    await writeFile(path.join(stateDir(), RECORD_NAME), validRecord(), { mode: 0o644 });
    await chown(stateDir(), 12345, 12345);
    await expect(read()).rejects.toThrow(/belongs to user 12345, not to you \(0\) or root.*sudo chown -R 0 /);
  });
});

// ---------------------------------------------------------------------------------------------

describe('undo after Ollama was uninstalled', () => {
  const conf = () => path.join(root, 'etc/systemd/system/ollama.service.d/stigmer-setup.conf');
  const stateDir = () => linuxPlatform.stateDir({ root, home: root, env: {} });
  const applier = (ctx: TestContext): Applier => ({ ctx, support: linuxPlatform, files: new SystemFiles(ctx, [], path.posix), stateDir: stateDir() });
  const readState = async (ctx: TestContext): Promise<RecordState> => (await readRecord(ctx, allowedFor(linuxPlatform, { root, home: root, env: {} }), stateDir())) ?? {};

  async function undo(script: ExecScript) {
    const ctx = testContext({ exec: script });
    const state = await readState(ctx);
    const { changes, warnings } = await planUndo(applier(ctx), state.record as UndoRecord, new Date());
    const outcome = await applyUndo(applier(ctx), changes, state);
    return { ctx, changes, warnings, outcome };
  }

  it('systemd: the drop-in is removed, the restart is skipped with a note, and undo completes (record cleared)', async () => {
    const plan: Plan = {
      strategy: 'linux-systemd',
      target: { host: '0.0.0.0', port: 11434 },
      changes: [
        { type: 'file', path: conf(), action: 'create', after: Buffer.from('[Service]\nEnvironment="OLLAMA_HOST=0.0.0.0:11434"\n'), mode: 0o644, privileged: false },
        { type: 'restart', strategy: 'linux-systemd', steps: [['systemctl', 'daemon-reload'], ['systemctl', 'restart', 'ollama']], privileged: false },
      ],
      summary: '',
      blockers: [],
      warnings: [],
    };
    expect(await applySetup(applier(testContext({ exec: () => ok() })), plan, {})).toMatchObject({ ok: true });
    // Then the user removes Ollama: its unit file goes, systemd no longer knows ollama.service.
    const systemd = new FakeSystemd(root, undefined);
    systemd.uninstalled = true;
    const { ctx, changes, warnings, outcome } = await undo((command, args) => (command === 'systemctl' ? systemd.exec(args) : NOT_FOUND));
    expect(warnings).toContain('Ollama (linux-systemd) is no longer installed; nothing to restart.');
    expect(changes.map((change) => change.type)).toEqual(['file']);
    expect(outcome).toMatchObject({ ok: true });
    await expect(readFile(conf(), 'utf8')).rejects.toThrow(/ENOENT/);
    expect((await readState(ctx)).record).toBeUndefined();
    expect(ctx.calls.some((call) => call.args[0] === 'restart')).toBe(false);
  });

  it('snap: the snap and its options are gone, so there is nothing to set back or restart; undo completes', async () => {
    const snap = fakeSnap('127.0.0.1:11434');
    const ctx = testContext({ exec: snap.script });
    const plan = snapStrategy.plan(snapDetectionOf(await snapStore.read(ctx, 'host')), { target: { host: '0.0.0.0', port: 11434 }, explicitHost: false, elevate: [], listening: 'loopback' });
    expect(await applySetup(applier(ctx), plan, {})).toMatchObject({ ok: true });
    snap.snapd.installed = false;
    snap.snapd.config = {};
    const { ctx: undoCtx, changes, warnings, outcome } = await undo(snap.script);
    expect(changes).toEqual([]);
    expect(warnings).toEqual(['Ollama (linux-snap) is no longer installed; nothing to restart.', 'snap host was removed with Ollama (linux-snap); nothing to restore there.']);
    expect(outcome).toMatchObject({ ok: true });
    expect((await readState(undoCtx)).record).toBeUndefined();
    expect(undoCtx.calls.map((call) => call.args[0])).toEqual(['list']);
  });

  it('a unit systemctl can\'t describe (systemd not running) is not taken for uninstalled: the restart still runs', async () => {
    await applySetup(
      applier(testContext({ exec: () => ok() })),
      { strategy: 'linux-systemd', changes: [{ type: 'file', path: conf(), action: 'create', after: Buffer.from('x\n'), mode: 0o644, privileged: false }, { type: 'restart', strategy: 'linux-systemd', steps: [['systemctl', 'restart', 'ollama']], privileged: false }], summary: '', blockers: [], warnings: [] },
      {},
    );
    const { changes } = await undo((_command, args) => (args[0] === 'show' ? failed('System has not been booted with systemd as init system (PID 1). Can\'t operate.') : ok()));
    expect(changes.map((change) => change.type)).toEqual(['file', 'restart']);
  });
});

describe('launchd: read the value the way launchctl prints it', () => {
  it('only the final newline belongs to launchctl: a value with (or ending in) a newline, or a CR, comes back exactly', async () => {
    for (const value of ['a\nb', 'a\n', '\n', 'a\r', ' spaced ', AWKWARD]) {
      const launchctl = fakeLaunchctl(value);
      expect(await launchdEnvStore.read(testContext({ exec: launchctl.script }), 'OLLAMA_HOST')).toBe(value);
    }
    expect(await launchdEnvStore.read(testContext({ exec: fakeLaunchctl(undefined).script }), 'OLLAMA_HOST')).toBeUndefined();
  });

  it('launchctl that did not run to the end is not "unset" (undo would remove the value): it stops with the reason', async () => {
    const timedOut: ExecScript = () => ({ exitCode: null, stdout: '', stderr: '', failure: 'timeout' });
    await expect(launchdEnvStore.read(testContext({ exec: timedOut }), 'OLLAMA_HOST')).rejects.toThrow(/Could not read launchd's OLLAMA_HOST: `launchctl getenv OLLAMA_HOST` did not finish.*Nothing was changed/);
  });
});

describe('commands and values are shown escaped', () => {
  it('a command with a control character in an argument is shown as one $\'…\' word, never raw', () => {
    const shown = describeCommand(['launchctl', 'setenv', 'OLLAMA_HOST', "it's\n\x1b[2J\u0085"]);
    expect(shown).toBe("launchctl setenv OLLAMA_HOST $'it\\'s\\n\\x1b[2J\\u0085'");
    expect(shown).not.toMatch(RAW_CONTROL);
    expect(describeCommand(['launchctl', 'setenv', 'OLLAMA_HOST', 'a b'])).toBe("launchctl setenv OLLAMA_HOST 'a b'");
  });
});

// ---------------------------------------------------------------------------------------------
// Review (r1): what renderRecord writes about files, validateRecord must accept too.

describe.skipIf(process.platform === 'win32')('what setup records about a file, undo accepts', () => {
  const stateDir = () => linuxPlatform.stateDir({ root, home: root, env: {} });
  const allowed = () => allowedFor(linuxPlatform, { root, home: root, env: {} });
  const dropIn = () => path.join(root, 'etc/systemd/system/ollama.service.d/stigmer-setup.conf');
  const applier = (ctx: TestContext): Applier => ({ ctx, support: linuxPlatform, files: new SystemFiles(ctx, [], path.posix), stateDir: stateDir() });
  const modify = (file: string, before: Buffer): Plan => ({
    strategy: 'linux-systemd',
    target: { host: '0.0.0.0', port: 11434 },
    changes: [{ type: 'file', path: file, action: 'modify', before, after: Buffer.from('[Service]\nEnvironment="OLLAMA_HOST=0.0.0.0:11434"\n'), mode: 0o644, privileged: false }],
    summary: '',
    blockers: [],
    warnings: [],
  });

  it('a file whose mode has the sticky (or setgid) bit: setup records it, undo accepts the record and puts the mode back', async () => {
    // fs.stat's mode & 0o7777 keeps the sticky, setgid and setuid bits; the old reader allowed 0..0o777
    // only, so this record, written by setup, locked every later setup and undo out.
    const before = Buffer.from('[Service]\nEnvironment="OLLAMA_DEBUG=1"\n');
    await mkdir(path.dirname(dropIn()), { recursive: true });
    await writeFile(dropIn(), before);
    await chmod(dropIn(), 0o1644);
    const ctx = testContext();
    expect(await applySetup(applier(ctx), modify(dropIn(), before), {})).toMatchObject({ ok: true });
    const state = await readRecord(ctx, allowed(), stateDir());
    expect(state?.record.files[0]?.mode).toBe(0o1644);
    const { changes } = await planUndo(applier(ctx), state?.record as UndoRecord, new Date());
    expect(await applyUndo(applier(ctx), changes, state as RecordState)).toMatchObject({ ok: true });
    expect(await readFile(dropIn())).toEqual(before);
    expect((await stat(dropIn())).mode & 0o7777).toBe(0o1644);
  });

  it('a path the record could not carry back (a newline in --root) is refused before anything changes', async () => {
    // The reader refuses control characters in a path; setup used to write such a record anyway,
    // change the file, and leave undo locked out.
    const odd = path.join(root, 'odd\nroot');
    const file = path.join(odd, 'etc/systemd/system/ollama.service.d/stigmer-setup.conf');
    const before = Buffer.from('[Service]\n');
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, before);
    const ctx = testContext();
    const oddApplier: Applier = { ctx, support: linuxPlatform, files: new SystemFiles(ctx, [], path.posix), stateDir: linuxPlatform.stateDir({ root: odd, home: odd, env: {} }) };
    const outcome = await applySetup(oddApplier, modify(file, before), {});
    expect(outcome).toMatchObject({ ok: false, applied: [false] });
    expect(outcome.error).toMatch(/files\[0\]\.path .*can't be recorded for undo.*Nothing was changed/);
    expect(outcome.error).not.toMatch(RAW_CONTROL);
    expect(await readFile(file)).toEqual(before);
    await expect(readFile(path.join(oddApplier.stateDir, RECORD_NAME))).rejects.toThrow(/ENOENT/);
    await expect(readFile(path.join(oddApplier.stateDir, 'backups', 'x'))).rejects.toThrow(/ENOENT/);
  });
});

describe('a previous value that was not valid text when it was read', () => {
  // A command's output is decoded as UTF-8, and an invalid byte (a Latin-1 "é" set with
  // `launchctl setenv OLLAMA_HOST $'\xe9…'`, or a Windows value holding a lone surrogate) reads
  // as U+FFFD. Recording that and restoring it would give back different bytes than were there:
  // setup refuses it up front instead, as it refuses any value it can't put back exactly.
  it.each(STORES.filter((item) => item.store !== 'snap'))('the $store store: a value read as U+FFFD is refused before anything changes', async (item) => {
    const fake = item.fake('caf\ufffd:11434');
    const ctx = testContext({ exec: fake.script, env: { HOME: root } });
    const plan = await settingPlan(ctx, item);
    expect(recordBlockers(plan.changes, undefined)).toEqual([expect.objectContaining({ message: expect.stringMatching(/U\+FFFD.*could not put it back.*Nothing was changed/) })]);
    const outcome = await applySetup(applierFor(ctx, item.support), plan, await stateOf(ctx, item.support));
    expect(outcome).toMatchObject({ ok: false, applied: [false] });
    expect(fake.get()).toBe('caf\ufffd:11434');
    await expect(readFile(path.join(stateDirOf(item.support), RECORD_NAME), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('a record that already holds such a value (written by an earlier version) is still read, so undo is not locked out', () => {
    const allowed = allowedFor(darwinPlatform, { root, home: root, env: {} });
    const record = { ...emptyRecord('darwin', new Date(0)), settings: [{ store: 'launchd-env' as const, key: 'OLLAMA_HOST', before: 'caf\ufffd' }] };
    expect(validateRecord(JSON.parse(renderRecord(record)), allowed, 'test').settings[0]?.before).toBe('caf\ufffd');
  });
});

describe('Windows: a PowerShell that fails says nothing about the value (it is not "unset")', () => {
  const WINDOWS = STORES.filter((item) => item.store === 'windows-user-env' || item.store === 'windows-service-env');
  // The old readers took any failed PowerShell (a timeout, exit 1) for "unset": setup then recorded
  // `before: null`, and undo deleted the user's value, as snap did before it (§11).
  // What each reader says: h2-win-app's lossless User read (EnvironmentReadError) names the
  // variable and its scope; the registry read (StepError) names the PowerShell command it ran.
  const READ_FAILED: Record<string, { timeout: RegExp; denied: RegExp }> = {
    'windows-user-env': { timeout: /could not read OLLAMA_HOST at User scope through PowerShell: it timed out/, denied: /could not read OLLAMA_HOST at User scope through PowerShell: exit 1: .*registry access is not allowed/ },
    'windows-service-env': { timeout: /`powershell\.exe .*Test-Path.*` did not finish within 30 s/, denied: /`powershell\.exe .*Test-Path.*` failed \(exit 1\): .*registry access is not allowed/ },
  };
  it.each(WINDOWS)('the $store store: a read that times out or fails throws, naming the command', async (item) => {
    const store = item.support.settingStores[item.store];
    const expected = READ_FAILED[item.store] as { timeout: RegExp; denied: RegExp };
    const timedOut: ExecScript = () => ({ exitCode: null, stdout: '', stderr: '', failure: 'timeout' });
    await expect(store?.read(testContext({ exec: timedOut }), item.key) as Promise<unknown>).rejects.toThrow(expected.timeout);
    const denied: ExecScript = () => failed('Get-Item : Requested registry access is not allowed.\r\n');
    await expect(store?.read(testContext({ exec: denied }), item.key) as Promise<unknown>).rejects.toThrow(expected.denied);
  });

  it.each(WINDOWS)('the $store store: setup planned from a failed read stops before anything changes, and the value is kept', async (item) => {
    const fake = item.fake('127.0.0.1:11434');
    // Every read fails; a write would succeed.
    // The reads: environmentReadScript (User) and readValueScript (the service key's Environment).
    const script: ExecScript = (command, args, options) => (/GetEnvironmentVariable\(|^if \(-not \(Test-Path -LiteralPath /.test(args.at(-1) ?? '') ? failed('boom\r\n') : fake.script(command, args, options));
    const ctx = testContext({ exec: script, env: { HOME: root } });
    const store = item.support.settingStores[item.store];
    const after = '0.0.0.0:11434';
    // What the plan saw: "unset", as the old detection reported a failed read.
    const change: Change = { type: 'setting', store: item.store, key: item.key, before: undefined, after, privileged: false, argv: store?.command(item.key, after).argv ?? [] };
    const plan: Plan = { strategy: 'test', target: { host: '0.0.0.0', port: 11434 }, changes: [change], summary: '', blockers: [], warnings: [] };
    await expect(applySetup(applierFor(ctx, item.support), plan, await stateOf(ctx, item.support))).rejects.toThrow(item.store === 'windows-user-env' ? /could not read OLLAMA_HOST at User scope through PowerShell: exit 1: boom/ : /`powershell\.exe .*Test-Path.*` failed \(exit 1\): boom/);
    expect(fake.get()).toBe('127.0.0.1:11434');
    await expect(readFile(path.join(stateDirOf(item.support), RECORD_NAME), 'utf8')).rejects.toThrow(/ENOENT/);
  });
});

describe('a crafted record is named in a short line with every control character escaped', () => {
  const allowed = () => allowedFor(linuxPlatform, { root, home: root, env: {} });
  const valid = () => JSON.parse(renderRecord({ ...emptyRecord('linux', new Date(0)), settings: [{ store: 'snap', key: 'host', before: '"127.0.0.1:11434"' }], restart: [{ strategy: 'linux-snap' }] }));
  const messageOf = (record: unknown) => {
    try {
      validateRecord(record, allowed(), '/state/undo.json');
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error('the record was accepted');
  };
  // JSON.stringify leaves C1 controls (U+009B is CSI) and bidi overrides raw; and a field may
  // be megabytes of JSON. The message is printed as is by --json, so it must not carry either.
  const C1_OR_BIDI = /[\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

  it('a path, a strategy or a platform holding C1 or bidi controls', () => {
    for (const edit of [
      (record: Record<string, any>) => void (record.files = [{ path: `${root}/\u009b2J\u202e`, existed: false, createdDirs: [] }]),
      (record: Record<string, any>) => void (record.restart = [{ strategy: 'linux-\u202esnap' }]),
      (record: Record<string, any>) => void (record.platform = 'lin\u009bux'),
      (record: Record<string, any>) => void (record.version = ['\u009b2J']),
    ]) {
      const record = valid();
      edit(record);
      const message = messageOf(record);
      expect(message).toMatch(/can't be trusted/);
      expect(message).not.toMatch(C1_OR_BIDI);
    }
  });

  it('a field that is megabytes long is quoted in at most 80 characters', () => {
    for (const edit of [
      (record: Record<string, any>) => void (record.version = 'v'.repeat(1_000_000)),
      (record: Record<string, any>) => void (record.platform = ['p'.repeat(1_000_000)]),
      (record: Record<string, any>) => void (record.port = { huge: 'x'.repeat(1_000_000) }),
    ]) {
      const record = valid();
      edit(record);
      expect(messageOf(record).length).toBeLessThan(600);
    }
  });
});

it('an unknown field or setting with a control character in its name is named escaped too', () => {
  const allowed = allowedFor(linuxPlatform, { root, home: root, env: {} });
  const base = () => JSON.parse(renderRecord({ ...emptyRecord('linux', new Date(0)), settings: [], restart: [] }));
  const field = { ...base(), ['\u009b2J'.repeat(1000)]: 1 };
  const setting = { ...base(), settings: [{ store: 'snap\u202e', key: 'host', before: null }] };
  for (const record of [field, setting]) {
    let message = '';
    try {
      validateRecord(record, allowed, '/state/undo.json');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/can't be trusted/);
    expect(message).not.toMatch(/[\x7f-\x9f\u202a-\u202e]/);
    expect(message.length).toBeLessThan(600);
  }
});
