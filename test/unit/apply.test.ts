/**
 * Backups, rollback and undo against a real temporary folder: nothing may be lost, and a failed
 * step must leave every file as it was.
 */
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Plan } from '../../platforms/types.ts';
import { applyWithBackups, clearUndoRecord, executeChanges, planUndo, readManifest, stateDirFor } from '../../scripts/apply.ts';
import { failed, ok, tempRoot, testContext, type ExecScript } from './support/context.ts';

let root: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ root, cleanup } = await tempRoot()));
afterEach(() => cleanup());

const conf = () => path.join(root, 'etc/systemd/system/ollama.service.d/stigmer-setup.conf');
const restart = [['systemctl', 'daemon-reload'], ['systemctl', 'restart', 'ollama']];

function planWriting(before: string | undefined, after: string): Plan {
  return {
    strategy: 'linux-systemd',
    target: { host: '0.0.0.0', port: 11434 },
    changes: [
      { type: 'file', path: conf(), action: before === undefined ? 'create' : 'modify', before, after, privileged: false },
      ...restart.map((argv) => ({ type: 'command' as const, argv })),
    ],
    summary: '',
    blockers: [],
    warnings: [],
    restart,
    reverts: [],
  };
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
  const stateDir = stateDirFor(root);
  const manifest = await readManifest(ctx, stateDir);
  if (!manifest) throw new Error('no manifest');
  const { changes, warnings } = await planUndo(ctx, manifest, stateDir, []);
  const outcome = await executeChanges(ctx, changes, { sudo: [], restart: manifest.restart });
  if (outcome.ok) await clearUndoRecord(ctx, stateDir, []);
  return { ctx, outcome, warnings, changes };
}

describe('applyWithBackups', () => {
  it('writes the file, runs the commands in order, and records what undo needs', async () => {
    const ctx = testContext({ exec: succeedAll });
    const outcome = await applyWithBackups(ctx, planWriting(undefined, 'new\n'), { stateDir: stateDirFor(root), sudo: [] });
    expect(outcome).toMatchObject({ ok: true, applied: [true, true, true], rolledBack: false });
    expect(await readFile(conf(), 'utf8')).toBe('new\n');
    expect(ctx.calls.map((call) => [call.command, ...call.args])).toEqual(restart);
    const manifest = await readManifest(ctx, stateDirFor(root));
    expect(manifest?.files).toEqual([expect.objectContaining({ path: conf(), existed: false })]);
    expect(manifest?.restart).toEqual(restart);
  });

  it('rolls every file back and restarts again when a command fails', async () => {
    await mkdir(path.dirname(conf()), { recursive: true });
    await writeFile(conf(), 'original\r\nwith CRLF  \n');
    const ctx = testContext({ exec: failFirstRestart() });
    const outcome = await applyWithBackups(ctx, planWriting('original\r\nwith CRLF  \n', 'new\n'), { stateDir: stateDirFor(root), sudo: [] });
    expect(outcome.ok).toBe(false);
    expect(outcome.rolledBack).toBe(true);
    expect(outcome.applied).toEqual([false, false, false]);
    expect(outcome.error).toMatch(/systemctl restart ollama` failed.*control process exited.*Every change was rolled back/);
    expect(await readFile(conf(), 'utf8')).toBe('original\r\nwith CRLF  \n');
    // daemon-reload and restart ran once for the change and once more for the restored file.
    expect(ctx.calls.map((call) => call.args.join(' '))).toEqual(['daemon-reload', 'restart ollama', 'daemon-reload', 'restart ollama']);
    // No undo record is left for a change that did not happen.
    expect(await readManifest(ctx, stateDirFor(root))).toBeUndefined();
  });

  it('says so when restarting with the restored files fails too', async () => {
    const outcome = await applyWithBackups(testContext({ exec: failRestart }), planWriting(undefined, 'new\n'), { stateDir: stateDirFor(root), sudo: [] });
    expect(outcome).toMatchObject({ ok: false, rolledBack: false });
    expect(outcome.error).toMatch(/Rolling back also failed: `systemctl restart ollama` failed/);
    await expect(readFile(conf(), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('keeps no undo record for a plan that only restarts', async () => {
    const ctx = testContext({ exec: succeedAll });
    const plan = { ...planWriting(undefined, ''), changes: [{ type: 'command' as const, argv: ['systemctl', 'restart', 'ollama'] }] };
    expect((await applyWithBackups(ctx, plan, { stateDir: stateDirFor(root), sudo: [] })).ok).toBe(true);
    expect(await readManifest(ctx, stateDirFor(root))).toBeUndefined();
  });

  it('removes a file it created when a later step fails', async () => {
    const ctx = testContext({ exec: failRestart });
    await applyWithBackups(ctx, planWriting(undefined, 'new\n'), { stateDir: stateDirFor(root), sudo: [] });
    await expect(readFile(conf(), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('does not touch anything when the backup folder cannot be written', async () => {
    await writeFile(path.join(root, 'var'), 'a file where the state folder should be');
    const ctx = testContext({ exec: succeedAll });
    const outcome = await applyWithBackups(ctx, planWriting(undefined, 'new\n'), { stateDir: stateDirFor(root), sudo: [] });
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toMatch(/Could not save backups .* Nothing was changed\./);
    expect(ctx.calls).toEqual([]);
    await expect(readFile(conf(), 'utf8')).rejects.toThrow(/ENOENT/);
  });
});

describe('undo', () => {
  it('restores a modified file byte for byte, even after two setups', async () => {
    const original = '# user notes\r\n[Service]\nEnvironment="OLLAMA_HOST=127.0.0.1:11434"   \n\u00e9\n';
    await mkdir(path.dirname(conf()), { recursive: true });
    await writeFile(conf(), original);
    const ctx = testContext({ exec: succeedAll });
    await applyWithBackups(ctx, planWriting(original, 'first\n'), { stateDir: stateDirFor(root), sudo: [] });
    await applyWithBackups(ctx, planWriting('first\n', 'second\n'), { stateDir: stateDirFor(root), sudo: [] });
    const { outcome } = await undoAll();
    expect(outcome.ok).toBe(true);
    expect(await readFile(conf())).toEqual(Buffer.from(original));
    expect(await readManifest(ctx, stateDirFor(root))).toBeUndefined();
  });

  it('deletes a file that setup created, and restarts Ollama', async () => {
    await applyWithBackups(testContext({ exec: succeedAll }), planWriting(undefined, 'new\n'), { stateDir: stateDirFor(root), sudo: [] });
    const { outcome, ctx, changes } = await undoAll();
    expect(outcome.ok).toBe(true);
    expect(changes[0]).toMatchObject({ type: 'file', action: 'delete', path: conf() });
    await expect(readFile(conf(), 'utf8')).rejects.toThrow(/ENOENT/);
    expect(ctx.calls.map((call) => call.args.join(' '))).toEqual(['daemon-reload', 'restart ollama']);
  });

  it('keeps a copy of a file the user edited after setup', async () => {
    await applyWithBackups(testContext({ exec: succeedAll }), planWriting(undefined, 'ours\n'), { stateDir: stateDirFor(root), sudo: [] });
    await writeFile(conf(), 'ours\nEnvironment="OLLAMA_DEBUG=1"\n');
    const { outcome, warnings } = await undoAll();
    expect(outcome.ok).toBe(true);
    expect(warnings[0]).toMatch(/was edited after setup; your version is kept as /);
    const kept = await readdir(path.join(stateDirFor(root), 'kept'));
    expect(kept).toHaveLength(1);
    expect(await readFile(path.join(stateDirFor(root), 'kept', kept[0] as string), 'utf8')).toBe('ours\nEnvironment="OLLAMA_DEBUG=1"\n');
  });

  it('refuses, changing nothing, when a backup is missing', async () => {
    await mkdir(path.dirname(conf()), { recursive: true });
    await writeFile(conf(), 'original\n');
    await applyWithBackups(testContext({ exec: succeedAll }), planWriting('original\n', 'new\n'), { stateDir: stateDirFor(root), sudo: [] });
    const backups = path.join(stateDirFor(root), 'backups');
    for (const name of await readdir(backups)) await rm(path.join(backups, name));
    await expect(undoAll()).rejects.toThrow(/backup of .* is missing, so undo can't restore it\. Nothing was changed\./);
    expect(await readFile(conf(), 'utf8')).toBe('new\n');
  });

  it('puts the file back when restarting after a restore fails', async () => {
    await applyWithBackups(testContext({ exec: succeedAll }), planWriting(undefined, 'new\n'), { stateDir: stateDirFor(root), sudo: [] });
    const { outcome } = await undoAll(failRestart);
    expect(outcome.ok).toBe(false);
    expect(await readFile(conf(), 'utf8')).toBe('new\n');
    expect(await readManifest(testContext(), stateDirFor(root))).toBeDefined();
  });
});

describe('without root', () => {
  it('writes system files through `sudo -n install` and explains a sudo that wants a password', async () => {
    const folderModes: number[] = [];
    const ctx = testContext({
      isRoot: false,
      exec: async (command, args) => {
        if (command !== 'sudo') return ok();
        folderModes.push((await stat(path.dirname(args[5] as string))).mode & 0o777);
        return failed('sudo: a password is required\n');
      },
    });
    // Tests run as root; pretend the folder is not ours, which is what a normal user sees in /etc.
    ctx.fs = { ...ctx.fs, canWrite: async () => false };
    const outcome = await applyWithBackups(ctx, planWriting(undefined, 'new\n'), { stateDir: stateDirFor(root), sudo: ['sudo', '-n'] });
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toMatch(/sudo needs a password, and --yes never prompts\. Run `sudo -v` first, or run stigmer-setup as root\./);
    const first = ctx.calls[0];
    expect(first?.command).toBe('sudo');
    expect(first?.args.slice(0, 5)).toEqual(['-n', 'install', '-D', '-m', '0644']);
    // The file root copies comes from a folder only we can enter, and that folder is gone afterwards.
    expect(folderModes).toEqual([0o700]);
    await expect(stat(path.dirname(first?.args[5] as string))).rejects.toThrow(/ENOENT/);
    await expect(readFile(conf(), 'utf8')).rejects.toThrow(/ENOENT/);
  });
});
