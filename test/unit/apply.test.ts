/**
 * Backups, rollback and undo against a real temporary folder: nothing may be lost, and a failed
 * step must leave every file as it was.
 */
import { chmod, chown, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { linuxPlatform } from '../../platforms/linux/index.ts';
import { snapStore } from '../../platforms/linux/snap.ts';
import type { Change, Plan, RestartChange } from '../../platforms/types.ts';
import { applySetup, applyUndo, planUndo, type Applier, type RecordState } from '../../scripts/apply.ts';
import { SystemFiles } from '../../scripts/system-files.ts';
import { allowedFor, readRecord, RECORD_NAME } from '../../scripts/undo-record.ts';
import { failed, ok, tempRoot, testContext, type ExecScript, type TestContext } from './support/context.ts';
import { FakeSnapd } from './support/fake-snap.ts';
import { because, needs, unmet } from './support/portability.ts';

let root: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ root, cleanup } = await tempRoot()));
afterEach(() => cleanup());

const conf = () => path.join(root, 'etc/systemd/system/ollama.service.d/stigmer-setup.conf');
const locations = () => ({ root, home: root, env: {} });
const stateDir = () => linuxPlatform.stateDir(locations());
const RESTART: RestartChange = { type: 'restart', strategy: 'linux-systemd', steps: [['systemctl', 'daemon-reload'], ['systemctl', 'restart', 'ollama']], privileged: false };

function applier(ctx: TestContext, elevate: string[] = []): Applier {
  return { ctx, support: linuxPlatform, files: new SystemFiles(ctx, elevate, path.posix), stateDir: stateDir() };
}

const readState = async (ctx: TestContext): Promise<RecordState> => (await readRecord(ctx, allowedFor(linuxPlatform, locations()), stateDir())) ?? {};

function planWriting(before: string | undefined, after: string, mode = 0o644): Plan {
  const changes: Change[] = [
    { type: 'file', path: conf(), action: before === undefined ? 'create' : 'modify', before: before === undefined ? undefined : Buffer.from(before), after: Buffer.from(after), mode, privileged: false },
    RESTART,
  ];
  return { strategy: 'linux-systemd', target: { host: '0.0.0.0', port: 11434 }, changes, summary: '', blockers: [], warnings: [] };
}

async function setup(ctx: TestContext, plan: Plan) {
  return applySetup(applier(ctx), plan, await readState(ctx));
}

const succeedAll: ExecScript = () => ok();
const failRestart: ExecScript = (_command, args) => (args[0] === 'restart' ? failed('Job for ollama.service failed because the control process exited with error code.') : ok());
/** The new configuration makes the restart fail; the restored one restarts fine. */
function failFirstRestart(): ExecScript {
  let failedOnce = false;
  return (_command, args) => {
    if (args[0] === 'restart' && !failedOnce) {
      failedOnce = true;
      return failed('Job for ollama.service failed because the control process exited with error code.');
    }
    return ok();
  };
}

async function undoAll(script: ExecScript = succeedAll) {
  const ctx = testContext({ exec: script });
  const state = await readState(ctx);
  if (!state.record) throw new Error('no undo record');
  const { changes, warnings } = await planUndo(applier(ctx), state.record, new Date());
  const outcome = await applyUndo(applier(ctx), changes, state);
  return { ctx, outcome, warnings, changes };
}

describe('applySetup', () => {
  it('writes the file, runs the restart in order, and records what undo needs (no commands)', async () => {
    const ctx = testContext({ exec: succeedAll });
    const outcome = await setup(ctx, planWriting(undefined, 'new\n'));
    expect(outcome).toMatchObject({ ok: true, applied: [true, true], rolledBack: false });
    expect(await readFile(conf(), 'utf8')).toBe('new\n');
    expect(ctx.calls.map((call) => [call.command, ...call.args])).toEqual(RESTART.steps);
    const { record } = await readState(ctx);
    expect(record?.files).toEqual([expect.objectContaining({ path: conf(), existed: false })]);
    // The folders the write had to create, so undo can remove them again.
    expect(record?.files[0]?.createdDirs).toEqual(['etc', 'etc/systemd', 'etc/systemd/system', 'etc/systemd/system/ollama.service.d'].map((dir) => path.join(root, dir)));
    expect(record?.restart).toEqual([{ strategy: 'linux-systemd' }]);
    expect(await readFile(path.join(stateDir(), RECORD_NAME), 'utf8')).not.toMatch(/systemctl|argv/);
  });

  it('rolls every file back and restarts again when a command fails', async () => {
    await mkdir(path.dirname(conf()), { recursive: true });
    await writeFile(conf(), 'original\r\nwith CRLF  \n');
    const ctx = testContext({ exec: failFirstRestart() });
    const outcome = await setup(ctx, planWriting('original\r\nwith CRLF  \n', 'new\n'));
    expect(outcome.ok).toBe(false);
    expect(outcome.rolledBack).toBe(true);
    expect(outcome.applied).toEqual([false, false]);
    expect(outcome.error).toMatch(/systemctl restart ollama` failed.*control process exited.*Every change was rolled back, and Ollama was restarted on the configuration it had before\./);
    expect(await readFile(conf(), 'utf8')).toBe('original\r\nwith CRLF  \n');
    // daemon-reload and restart ran once for the change and once more for the restored file.
    expect(ctx.calls.map((call) => call.args.join(' '))).toEqual(['daemon-reload', 'restart ollama', 'daemon-reload', 'restart ollama']);
    // No undo record and no backup is left for a change that did not happen.
    expect((await readState(ctx)).record).toBeUndefined();
    expect(await readdir(path.join(stateDir(), 'backups'))).toEqual([]);
  });

  it('says so when restarting with the restored files fails too, and reports what is still in effect', async () => {
    const outcome = await setup(testContext({ exec: failRestart }), planWriting(undefined, 'new\n'));
    expect(outcome).toMatchObject({ ok: false, rolledBack: false });
    expect(outcome.error).toMatch(/Rolling back also failed: restarting Ollama \(linux-systemd\) on the restored configuration failed: `systemctl restart ollama` failed/);
    // The file was put back (removed); the restart could not be redone, so it is not "rolled back".
    expect(outcome.applied).toEqual([false, false]);
    await expect(readFile(conf(), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('reports a change a failed rollback could not undo as still applied, never all false', async () => {
    // The restart fails, and meanwhile something replaced the drop-in with a folder: the rollback
    // refuses to write there, so the file change is still in effect and must be reported as such.
    const ctx = testContext({
      exec: async (_command, args) => {
        if (args[0] !== 'restart') return ok();
        await rm(conf());
        await mkdir(conf());
        return failed('Job for ollama.service failed.');
      },
    });
    const outcome = await setup(ctx, planWriting(undefined, 'new\n'));
    expect(outcome).toMatchObject({ ok: false, rolledBack: false, applied: [true, false] });
    expect(outcome.error).toMatch(/Rolling back also failed: could not put back .*stigmer-setup\.conf: .* is a folder, not a regular file/);
  });

  it('restarts Ollama again at the end of a rollback even when putting a file back failed, and says what is in place', async () => {
    // The restart fails, and meanwhile the drop-in became a folder, so the file can't be put back.
    // The restart must still run again: it may have stopped Ollama, and Ollama must be running.
    let restarts = 0;
    const ctx = testContext({
      exec: async (_command, args) => {
        if (args[0] !== 'restart') return ok();
        if (restarts++ > 0) return ok();
        await rm(conf());
        await mkdir(conf());
        return failed('Job for ollama.service failed.');
      },
    });
    const outcome = await setup(ctx, planWriting(undefined, 'new\n'));
    expect(ctx.calls.map((call) => call.args.join(' '))).toEqual(['daemon-reload', 'restart ollama', 'daemon-reload', 'restart ollama']);
    expect(outcome).toMatchObject({ ok: false, rolledBack: false, applied: [true, false] });
    expect(outcome.error).toMatch(/Rolling back also failed: could not put back .*stigmer-setup\.conf/);
    expect(outcome.error).not.toMatch(/restarting Ollama .* failed/);
  });

  it('says Ollama was not restarted when the failure came before any restart', async () => {
    const snapd = new FakeSnapd();
    snapd.failNext = { verb: 'set', result: failed('error: cannot perform the following tasks:\n- Run configure hook of "ollama" snap (run hook "configure": exit status 1)') };
    const plan = planWriting(undefined, 'new\n');
    // The file is written, then the setting fails: the restart never ran.
    plan.changes.splice(1, 0, { type: 'setting', store: 'snap', key: 'host', before: undefined, after: '"0.0.0.0:11434"', privileged: false, argv: snapStore.command('host', '"0.0.0.0:11434"').argv });
    const ctx = testContext({ exec: (command, args) => (command === 'snap' ? snapd.exec(command, args) : ok()) });
    const outcome = await applySetup(applier(ctx), plan, {});
    expect(outcome.error).toMatch(/configure hook.*Every change was rolled back; Ollama was not restarted, so it runs as before\./);
    expect(ctx.calls.some((call) => call.command === 'systemctl')).toBe(false);
    await expect(readFile(conf(), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('keeps no undo record for a plan that only restarts', async () => {
    const ctx = testContext({ exec: succeedAll });
    const plan: Plan = { ...planWriting(undefined, ''), changes: [RESTART] };
    expect((await setup(ctx, plan)).ok).toBe(true);
    expect((await readState(ctx)).record).toBeUndefined();
  });

  it('removes a file it created, and the folders it made for it, when a later step fails', async () => {
    const ctx = testContext({ exec: failRestart });
    await setup(ctx, planWriting(undefined, 'new\n'));
    await expect(readFile(conf(), 'utf8')).rejects.toThrow(/ENOENT/);
    await expect(stat(path.join(root, 'etc'))).rejects.toThrow(/ENOENT/);
  });

  it('does not touch anything when the backup folder cannot be written', async () => {
    await mkdir(path.dirname(conf()), { recursive: true });
    await writeFile(conf(), 'original\n');
    await writeFile(path.join(root, 'var'), 'a file where the state folder should be');
    const ctx = testContext({ exec: succeedAll });
    const outcome = await setup(ctx, planWriting('original\n', 'new\n'));
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toMatch(/Could not save backups .* Nothing was changed\./);
    expect(ctx.calls).toEqual([]);
    expect(await readFile(conf(), 'utf8')).toBe('original\n');
  });

  it.skipIf(unmet(needs.posixModes, needs.root))('keeps the mode and owner of a file it modifies, and its backup is 0600 whatever the original was' + because(needs.posixModes, needs.root), async () => {
    await mkdir(path.dirname(conf()), { recursive: true });
    await writeFile(conf(), 'original\n');
    await chmod(conf(), 0o640);
    await chown(conf(), 0, 4242);
    const ctx = testContext({ exec: succeedAll });
    expect((await setup(ctx, planWriting('original\n', 'new\n', 0o640))).ok).toBe(true);
    const written = await stat(conf());
    expect([written.mode & 0o777, written.uid, written.gid]).toEqual([0o640, 0, 4242]);
    const backups = await readdir(path.join(stateDir(), 'backups'));
    expect((await stat(path.join(stateDir(), 'backups', backups[0] as string))).mode & 0o777).toBe(0o600);
    const { record } = await readState(ctx);
    expect(record?.files[0]).toMatchObject({ existed: true, mode: 0o640, uid: 0, gid: 4242 });
  });

  it('is binary-safe: bytes that are not UTF-8 survive a setup and an undo', async () => {
    const binary = Buffer.from([0xff, 0xfe, 0x00, 0x41, 0x0d, 0x0a, 0xc3, 0x28]);
    await mkdir(path.dirname(conf()), { recursive: true });
    await writeFile(conf(), binary);
    const plan = planWriting(undefined, 'new\n');
    plan.changes[0] = { ...(plan.changes[0] as Extract<Change, { type: 'file' }>), action: 'modify', before: binary };
    expect((await setup(testContext({ exec: succeedAll }), plan)).ok).toBe(true);
    expect((await undoAll()).outcome.ok).toBe(true);
    expect(await readFile(conf())).toEqual(binary);
  });
});

describe('undo', () => {
  it.skipIf(needs.posixModes)('restores a modified file byte for byte, with its mode, even after two setups' + because(needs.posixModes), async () => {
    const original = '# user notes\r\n[Service]\nEnvironment="OLLAMA_HOST=127.0.0.1:11434"   \n\u00e9\n';
    await mkdir(path.dirname(conf()), { recursive: true });
    await writeFile(conf(), original);
    await chmod(conf(), 0o600);
    const ctx = testContext({ exec: succeedAll });
    await setup(ctx, planWriting(original, 'first\n', 0o600));
    await chmod(conf(), 0o644);
    await setup(ctx, planWriting('first\n', 'second\n'));
    const { outcome } = await undoAll();
    expect(outcome.ok).toBe(true);
    expect(await readFile(conf())).toEqual(Buffer.from(original));
    expect((await stat(conf())).mode & 0o777).toBe(0o600);
    expect((await readState(ctx)).record).toBeUndefined();
  });

  it('deletes a file that setup created, removes the folders setup made, and restarts Ollama', async () => {
    await mkdir(path.join(root, 'etc/systemd/system'), { recursive: true });
    await setup(testContext({ exec: succeedAll }), planWriting(undefined, 'new\n'));
    const { outcome, ctx, changes } = await undoAll();
    expect(outcome.ok).toBe(true);
    expect(changes[0]).toMatchObject({ type: 'file', action: 'delete', path: conf() });
    await expect(readFile(conf(), 'utf8')).rejects.toThrow(/ENOENT/);
    // Setup made ollama.service.d, not etc/systemd/system: only the one it made goes.
    await expect(stat(path.dirname(conf()))).rejects.toThrow(/ENOENT/);
    expect((await stat(path.join(root, 'etc/systemd/system'))).isDirectory()).toBe(true);
    // First the question whether ollama.service still exists (it does: LoadState is not not-found).
    expect(ctx.calls.map((call) => call.args.join(' '))).toEqual(['show ollama.service --property=LoadState', 'daemon-reload', 'restart ollama']);
  });

  it('a record that can\'t be removed afterwards (EBUSY) leaves the restore reported as done, with a warning', async () => {
    await setup(testContext({ exec: succeedAll }), planWriting(undefined, 'new\n'));
    const ctx = testContext({ exec: succeedAll });
    const state = await readState(ctx);
    const busy = applier(ctx);
    const realRemove = busy.files.remove.bind(busy.files);
    busy.files.remove = async (file: string) => {
      if (file.endsWith('undo.json')) throw Object.assign(new Error(`EBUSY: resource busy or locked, unlink '${file}'`), { code: 'EBUSY' });
      return realRemove(file);
    };
    if (!state.record) throw new Error("no undo record");
    const { changes } = await planUndo(busy, state.record, new Date());
    const outcome = await applyUndo(busy, changes, state);
    expect(outcome.ok).toBe(true);
    expect(outcome.applied.every(Boolean)).toBe(true);
    expect(outcome.warnings?.[0]).toMatch(/^The restore is done, but .*undo\.json or .*backups could not be removed \(EBUSY/);
    await expect(readFile(conf(), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it.skipIf(needs.posixModes)('keeps a copy (0600) of a file the user edited after setup' + because(needs.posixModes), async () => {
    await setup(testContext({ exec: succeedAll }), planWriting(undefined, 'ours\n'));
    await writeFile(conf(), 'ours\nEnvironment="OLLAMA_DEBUG=1"\n');
    const { outcome, warnings } = await undoAll();
    expect(outcome.ok).toBe(true);
    expect(warnings[0]).toMatch(/was edited after stigmer-setup wrote it; your version will be kept as /);
    const kept = await readdir(path.join(stateDir(), 'kept'));
    expect(kept).toHaveLength(1);
    const copy = path.join(stateDir(), 'kept', kept[0] as string);
    expect(await readFile(copy, 'utf8')).toBe('ours\nEnvironment="OLLAMA_DEBUG=1"\n');
    expect((await stat(copy)).mode & 0o777).toBe(0o600);
  });

  it('refuses, changing nothing, when a backup is missing', async () => {
    await mkdir(path.dirname(conf()), { recursive: true });
    await writeFile(conf(), 'original\n');
    await setup(testContext({ exec: succeedAll }), planWriting('original\n', 'new\n'));
    const backups = path.join(stateDir(), 'backups');
    for (const name of await readdir(backups)) await rm(path.join(backups, name));
    await expect(undoAll()).rejects.toThrow(/backup of .* is missing, so undo can't restore it\. Nothing was changed\./);
    expect(await readFile(conf(), 'utf8')).toBe('new\n');
  });

  it('puts the file back when restarting after a restore fails', async () => {
    await setup(testContext({ exec: succeedAll }), planWriting(undefined, 'new\n'));
    const { outcome } = await undoAll(failRestart);
    expect(outcome.ok).toBe(false);
    expect(await readFile(conf(), 'utf8')).toBe('new\n');
    expect((await readState(testContext())).record).toBeDefined();
  });
});

describe('settings (snap)', () => {
  /** A snap whose `host` option lives in snapd's fake, which follows snapd's get/set rules. */
  function fakeSnap(initial: string | undefined) {
    const snapd = new FakeSnapd();
    if (initial !== undefined) snapd.config.host = initial;
    const script: ExecScript = (command, args) => snapd.exec(command, args);
    return { script, get: () => snapd.config.host };
  }
  /** The plan snapStrategy makes: values are the option's JSON documents, as `snap get -d` shows them. */
  const setHost = (before: string | undefined, after: string): Plan => ({
    strategy: 'linux-snap',
    target: { host: '0.0.0.0', port: 11434 },
    changes: [
      { type: 'setting', store: 'snap', key: 'host', before: before === undefined ? undefined : JSON.stringify(before), after: JSON.stringify(after), privileged: false, argv: snapStore.command('host', JSON.stringify(after)).argv },
      { type: 'restart', strategy: 'linux-snap', steps: [['snap', 'restart', 'ollama']], privileged: false },
    ],
    summary: '',
    blockers: [],
    warnings: [],
  });

  it('first write wins: two setups and one undo return to the value before the first setup', async () => {
    const snap = fakeSnap('127.0.0.1:11434');
    const ctx = testContext({ exec: snap.script });
    expect((await setup(ctx, setHost('127.0.0.1:11434', '0.0.0.0:11434'))).ok).toBe(true);
    expect((await setup(ctx, setHost('0.0.0.0:11434', '[::]:11434'))).ok).toBe(true);
    expect(snap.get()).toBe('[::]:11434');
    expect((await readState(ctx)).record?.settings).toEqual([{ store: 'snap', key: 'host', before: '"127.0.0.1:11434"' }]);
    const { outcome, changes } = await undoAll(snap.script);
    expect(outcome.ok).toBe(true);
    expect(changes[0]).toMatchObject({ type: 'setting', before: '"[::]:11434"', after: '"127.0.0.1:11434"' });
    expect(snap.get()).toBe('127.0.0.1:11434');
  });

  it('unsets a key that was not set before setup', async () => {
    const snap = fakeSnap(undefined);
    const ctx = testContext({ exec: snap.script });
    await setup(ctx, setHost(undefined, '0.0.0.0:11434'));
    expect((await undoAll(snap.script)).outcome.ok).toBe(true);
    expect(snap.get()).toBeUndefined();
  });

  it('puts the previous value back when the restart after setting it fails', async () => {
    const snap = fakeSnap('127.0.0.1:11434');
    let restarts = 0;
    const script: ExecScript = (command, args, options) => (args[0] === 'restart' && restarts++ === 0 ? failed('error: cannot restart') : snap.script(command, args, options));
    const outcome = await setup(testContext({ exec: script }), setHost('127.0.0.1:11434', '0.0.0.0:11434'));
    expect(outcome).toMatchObject({ ok: false, rolledBack: true, applied: [false, false] });
    expect(snap.get()).toBe('127.0.0.1:11434');
  });
});

describe('without root', () => {
  it.skipIf(needs.posixModes)('writes system files through `sudo -n install` and explains a sudo that wants a password' + because(needs.posixModes), async () => {
    const folderModes: number[] = [];
    const ctx = testContext({
      isRoot: false,
      exec: async (command, args) => {
        if (command !== 'sudo') return ok();
        const source = args.at(-2) as string;
        if (args.includes('install') && !args.includes('-d')) folderModes.push((await stat(path.dirname(source))).mode & 0o777);
        return failed('sudo: a password is required\n');
      },
    });
    // Tests run as root; pretend the folder is not ours, which is what a normal user sees in /etc.
    ctx.fs = { ...ctx.fs, canWrite: async () => false };
    const outcome = await applySetup(applier(ctx, ['sudo', '-n']), planWriting(undefined, 'new\n'), {});
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toMatch(/sudo needs a password, and --yes never prompts\. Run `sudo -v` first, or run stigmer-setup as root\./);
    const first = ctx.calls[0];
    expect(first?.command).toBe('sudo');
    expect(first?.args.slice(0, 2)).toEqual(['-n', 'install']);
    await expect(readFile(conf(), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it.skipIf(needs.posixModes)('stages the file in a folder only we can enter, installs it with the mode it must have, and removes the folder' + because(needs.posixModes), async () => {
    const seen: { mode: number; args: string[] }[] = [];
    const ctx = testContext({
      isRoot: false,
      exec: async (command, args) => {
        if (command === 'sudo' && args.includes('--') && !args.includes('-d')) {
          const source = args.at(-2) as string;
          seen.push({ mode: (await stat(path.dirname(source))).mode & 0o777, args });
        }
        return ok();
      },
    });
    ctx.fs = { ...ctx.fs, canWrite: async (file) => file.startsWith(stateDir()) };
    const files = new SystemFiles(ctx, ['sudo', '-n'], path.posix);
    await files.write(conf(), 'new\n', { mode: 0o644 });
    expect(seen).toHaveLength(1);
    expect(seen[0]?.mode).toBe(0o700);
    expect(seen[0]?.args.slice(0, 5)).toEqual(['-n', 'install', '-m', '0644', '--']);
    expect(seen[0]?.args.at(-1)).toBe(conf());
    await expect(stat(path.dirname(seen[0]?.args.at(-2) as string))).rejects.toThrow(/ENOENT/);
  });
});
