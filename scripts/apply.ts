/**
 * Carrying a plan out, all or nothing, and keeping what undo needs.
 *
 * Order for setup: check that nothing changed since the plan was made; back up every file the plan
 * touches and record what each setting was (first write wins per file and per setting, so undo
 * always returns to the state before stigmer-setup ever ran); write the record; then each change,
 * re-checking its target just before it is written. If any step fails, everything applied so far
 * is put back, the strategy's restart runs again so the service is not left on a half-applied
 * configuration, and the record is restored.
 */
import type { Blocker, Change, FileChange, Plan, PlatformSupport, RestartChange, SettingChange, SettingStore, Strategy } from '../platforms/types.ts';
import type { Context, WriteOptions } from './context.ts';
import { StepError, runStep, type SystemFiles } from './system-files.ts';
import { oneLine } from './text.ts';
import { BACKUPS, backupNameFor, displayValue, emptyRecord, KEPT, RECORD_NAME, recordingProblem, renderRecord, sha256, UndoRecordError, type RecordedFile, type UndoRecord } from './undo-record.ts';

export interface Applier {
  ctx: Context;
  support: PlatformSupport;
  files: SystemFiles;
  stateDir: string;
}

export interface ApplyOutcome {
  ok: boolean;
  /** Each change, and whether it is in effect now (a change a rollback undid is false again). */
  applied: boolean[];
  error?: string;
  /** A step failed and everything applied before it was put back. */
  rolledBack: boolean;
  /**
   * After a successful apply: put everything back as it was before it. Setup calls this when
   * Ollama, which answered before, does not come back after the change. Returns the problems.
   */
  rollback?: () => Promise<string[]>;
  /** Succeeded, with something the user should know (undo: the record could not be removed). */
  warnings?: string[];
}

/** A target changed between the plan and the write: writing would lose what changed. */
export class StaleError extends Error {}

function sameContent(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined ? b === undefined : b !== undefined && a.equals(b);
}

function storeFor(applier: Applier, id: SettingChange['store']): SettingStore {
  const store = applier.support.settingStores[id];
  if (!store) throw new StepError(`The setting store ${id} does not exist on ${applier.support.id}.`);
  return store;
}

function strategyFor(applier: Applier, id: string): Strategy<any> {
  const strategy = applier.support.strategies.find((candidate) => candidate.id === id);
  if (!strategy) throw new StepError(`The strategy ${id} does not exist on ${applier.support.id}.`);
  return strategy;
}

/** Throws StaleError when the change's target no longer holds what the plan saw there. */
async function checkNotStale(applier: Applier, change: Change): Promise<void> {
  if (change.type === 'file') {
    if (change.role === 'kept') return;
    const current = await applier.files.read(change.path);
    if (!sameContent(current?.content, change.before)) {
      throw new StaleError(`${change.path} changed since the plan was made (${current ? 'its content differs' : 'it is gone'})`);
    }
  } else if (change.type === 'setting') {
    const current = await storeFor(applier, change.store).read(applier.ctx, change.key);
    if (current !== change.before) {
      throw new StaleError(`${change.store} ${change.key} changed since the plan was made (it is now ${current === undefined ? 'unset' : displayValue(current)})`);
    }
  }
}

async function writeSetting(applier: Applier, change: SettingChange, value: string | undefined): Promise<void> {
  const { argv, env } = storeFor(applier, change.store).command(change.key, value);
  await runStep(applier.ctx, [...(change.privileged ? applier.files.elevate : []), ...argv], { env });
}

async function restart(applier: Applier, change: RestartChange): Promise<void> {
  const strategy = strategyFor(applier, change.strategy);
  const run = async (argv: string[], options = {}) => void (await runStep(applier.ctx, argv, options));
  if (strategy.restart) return strategy.restart(applier.ctx, change, run);
  for (const step of change.steps) await run(step);
}

/** What undoing one applied change needs to know. */
interface Applied {
  index: number;
  change: Change;
  /** For files: mode and owner the file had, and the folders the write created. */
  before?: WriteOptions;
  createdDirs?: string[];
}

async function perform(applier: Applier, change: Change, index: number): Promise<Applied> {
  if (change.type === 'restart') {
    await restart(applier, change);
    return { index, change };
  }
  await checkNotStale(applier, change);
  if (change.type === 'setting') {
    await writeSetting(applier, change, change.after);
    return { index, change };
  }
  const current = change.role === 'kept' ? undefined : await applier.files.read(change.path);
  const before = current ? { mode: current.mode, uid: current.uid, gid: current.gid } : undefined;
  // A file keeps its owner unless the plan says otherwise.
  const options = { mode: change.mode, uid: change.uid ?? current?.uid, gid: change.gid ?? current?.gid };
  if (change.restoreFrom !== undefined) {
    await applier.files.installFrom(change.restoreFrom, change.path, options);
    return { index, change, before, createdDirs: [] };
  }
  if (change.after === undefined) {
    await applier.files.remove(change.path);
    if (change.removeDirs) await applier.files.removeEmptyFolders(change.removeDirs);
    return { index, change, before };
  }
  const { createdDirs } = await applier.files.write(change.path, change.after, options);
  return { index, change, before, createdDirs };
}

async function revert(applier: Applier, done: Applied): Promise<void> {
  const { change } = done;
  if (change.type === 'setting') return writeSetting(applier, change, change.before);
  if (change.type !== 'file' || change.role === 'kept') return;
  if (change.before === undefined) {
    await applier.files.remove(change.path);
    await applier.files.removeEmptyFolders(done.createdDirs ?? []);
    return;
  }
  await applier.files.write(change.path, change.before, done.before ?? { mode: change.mode, uid: change.uid, gid: change.gid });
}

/**
 * Run `changes` in order. On failure put every applied change back, in reverse order, and, if a
 * restart had started, restart again so the service reads the restored configuration.
 */
export async function executeChanges(applier: Applier, changes: Change[], onRollback: () => Promise<void> = async () => {}): Promise<ApplyOutcome> {
  const applied = changes.map(() => false);
  const done: Applied[] = [];
  let restartStarted = false;
  let error: string | undefined;
  for (const [index, change] of changes.entries()) {
    if (change.type === 'restart') restartStarted = true;
    try {
      done.push(await perform(applier, change, index));
      applied[index] = true;
    } catch (caught) {
      error = oneLine((caught as Error).message, 600);
      break;
    }
  }
  const rollback = async (): Promise<string[]> => {
    const problems: string[] = [];
    for (const step of [...done].reverse()) {
      try {
        await revert(applier, step);
        if (step.change.type !== 'restart') applied[step.index] = false;
      } catch (caught) {
        problems.push(`could not put back ${step.change.type === 'file' ? step.change.path : step.change.type === 'setting' ? `${step.change.store} ${step.change.key}` : step.change.strategy}: ${oneLine((caught as Error).message)}`);
      }
    }
    try {
      await onRollback();
    } catch (caught) {
      problems.push(oneLine((caught as Error).message));
    }
    // Whatever failed above (a file that could not be put back, a restart that threw halfway,
    // a record that could not be restored), every restart runs again: a restart may have stopped
    // Ollama, and it must end with Ollama started, on whatever configuration is now in place.
    if (restartStarted) {
      for (const [index, change] of changes.entries()) {
        if (change.type !== 'restart') continue;
        try {
          await restart(applier, change);
          applied[index] = false;
        } catch (caught) {
          problems.push(`restarting Ollama (${change.strategy}) on the restored configuration failed: ${oneLine((caught as Error).message)}`);
        }
      }
    } else {
      for (const [index, change] of changes.entries()) if (change.type === 'restart') applied[index] = false;
    }
    return problems;
  };
  if (!error) return { ok: true, applied, rolledBack: false, rollback };

  const problems = await rollback();
  const rolledBack = problems.length === 0;
  let suffix: string;
  if (!rolledBack) suffix = ` Rolling back also failed: ${problems.join('; ')}`;
  else if (restartStarted && changes.some((change) => change.type === 'restart' && applier.support.strategies.find((strategy) => strategy.id === change.strategy)?.restartWithoutOllama === undefined)) {
    suffix = ' Every change was rolled back, and Ollama was restarted on the configuration it had before.';
  } else if (restartStarted) suffix = ' Every change was rolled back; Ollama was not restarted, so it runs as before.';
  else suffix = ' Every change was rolled back; Ollama was not restarted, so it runs as before.';
  return { ok: false, applied, error: `${error}${suffix}`, rolledBack };
}

/** Before anything is written: every target still holds what the plan saw. */
async function preflight(applier: Applier, changes: Change[]): Promise<string | undefined> {
  for (const change of changes) {
    // A restart that could not start Ollama again is refused before the first change, not after.
    if (change.type === 'restart') {
      const refusal = await strategyFor(applier, change.strategy).checkRestart?.(applier.ctx, change);
      if (refusal) return `${refusal} Nothing was changed.`;
    }
    try {
      await checkNotStale(applier, change);
    } catch (caught) {
      if (caught instanceof StaleError) return `${caught.message}. Nothing was changed; run stigmer-setup again to plan from what is there now.`;
      throw caught;
    }
  }
  return undefined;
}

function notApplied(changes: Change[], error: string): ApplyOutcome {
  return { ok: false, applied: changes.map(() => false), error, rolledBack: true };
}

export interface RecordState {
  record?: UndoRecord;
  /** The record's text as read when planning, to notice another run's write. */
  text?: string;
}

async function recordUnchanged(applier: Applier, state: RecordState): Promise<boolean> {
  const now = await applier.files.read(applier.support.path.join(applier.stateDir, RECORD_NAME));
  return (now?.content.toString('utf8') ?? undefined) === state.text;
}

/**
 * The previous values setup would record that the undo record can't carry (recordingProblem:
 * over 32767 characters, a NUL, broken Unicode). Setup refuses those up front and changes
 * nothing, rather than record what undo would then refuse. For the plan (cli) and for apply.
 */
export function recordBlockers(changes: Change[], record: UndoRecord | undefined): Blocker[] {
  const blockers: Blocker[] = [];
  for (const change of changes) {
    if (change.type !== 'setting' || change.before === undefined) continue;
    // First write wins: a setting already recorded keeps its recorded value; this one is not kept.
    if (record?.settings.some((setting) => setting.store === change.store && setting.key === change.key)) continue;
    const problem = recordingProblem(change.store, change.before);
    if (!problem) continue;
    const shown = `${displayValue(change.before.slice(0, 80))}${change.before.length > 80 ? '…' : ''}`;
    blockers.push({
      message: `The current value of ${change.store} ${change.key} (${shown}) ${problem}, so undo could not put it back. Nothing was changed.`,
      fix: `Look at the value, shorten or remove it yourself (it is yours: stigmer-setup won't discard it), then run stigmer-setup again.`,
    });
  }
  return blockers;
}

/** Setup's apply: record backups and the undo record, then execute the plan. */
export async function applySetup(applier: Applier, plan: Plan, state: RecordState): Promise<ApplyOutcome> {
  const { ctx, files, stateDir } = applier;
  const path = applier.support.path;
  const unrecordable = recordBlockers(plan.changes, state.record);
  if (unrecordable.length > 0) return notApplied(plan.changes, unrecordable.map((blocker) => `${blocker.message} Fix: ${blocker.fix}`).join(' '));
  const stale = await preflight(applier, plan.changes);
  if (stale) return notApplied(plan.changes, stale);

  const recordPath = path.join(stateDir, RECORD_NAME);
  const record: UndoRecord = state.record ? structuredClone(state.record) : emptyRecord(applier.support.id, ctx.clock.now());
  const newBackups: string[] = [];
  let recordWritten = false;
  try {
    for (const change of plan.changes) {
      if (change.type === 'file' && change.role !== 'kept') {
        let entry = record.files.find((file) => file.path === change.path);
        if (!entry) {
          // First time we touch this file: keep the original, its mode and owner, for undo.
          const current = await files.read(change.path);
          entry = { path: change.path, existed: current !== undefined, createdDirs: current ? [] : await files.missingFolders(change.path) } satisfies RecordedFile;
          if (current) {
            entry.backup = backupNameFor(change.path);
            entry.backupSha256 = sha256(current.content);
            entry.mode = current.mode;
            entry.uid = current.uid;
            entry.gid = current.gid;
            const backupPath = path.join(stateDir, BACKUPS, entry.backup);
            // Backups are 0600: a copy must never be readable by more people than the original.
            await files.write(backupPath, current.content, { mode: 0o600 });
            newBackups.push(backupPath);
          }
          record.files.push(entry);
        }
        entry.writtenSha256 = change.after === undefined ? undefined : sha256(change.after);
      } else if (change.type === 'setting') {
        if (!record.settings.some((setting) => setting.store === change.store && setting.key === change.key)) {
          record.settings.push({ store: change.store, key: change.key, before: change.before ?? null });
        }
      } else if (change.type === 'restart' && !record.restart.some((restart) => restart.strategy === change.strategy && restart.job === change.job)) {
        record.restart.push(change.job === undefined ? { strategy: change.strategy } : { strategy: change.strategy, job: change.job });
      }
    }
    if (plan.target) record.port = plan.target.port;
    // A restart alone changes nothing that undo could restore: don't create a record for it.
    if (state.record || record.files.length > 0 || record.settings.length > 0) {
      if (!(await recordUnchanged(applier, state))) {
        for (const backup of newBackups) await files.remove(backup).catch(() => {});
        return notApplied(plan.changes, `${recordPath} changed since the plan was made (another stigmer-setup?). Nothing was changed; run stigmer-setup again.`);
      }
      await files.write(recordPath, renderRecord(record), { mode: 0o644 });
      recordWritten = true;
    }
  } catch (caught) {
    for (const backup of newBackups) await files.remove(backup).catch(() => {});
    // recordBlockers above keeps renderRecord from refusing a value; if it ever does, say that.
    if (caught instanceof UndoRecordError) return notApplied(plan.changes, `${caught.message} Nothing was changed.`);
    return notApplied(plan.changes, `Could not save backups in ${stateDir}: ${oneLine((caught as Error).message)}. Nothing was changed.`);
  }

  return executeChanges(applier, plan.changes, async () => {
    // The record must describe what is on disk: after a rollback that is the previous one.
    if (recordWritten) {
      if (state.text === undefined) await files.remove(recordPath);
      else await files.write(recordPath, state.text, { mode: 0o644 });
    }
    for (const backup of newBackups) await files.remove(backup);
  });
}

/**
 * Before setup or undo replaces a file it wrote earlier, notice whether someone edited it since
 * (its hash is not what we recorded writing). Their version is kept in kept/, with a warning.
 */
export function keepEdits(applier: Pick<Applier, 'support' | 'stateDir'>, changes: Change[], record: UndoRecord | undefined, now: Date): { changes: Change[]; warnings: string[] } {
  const path = applier.support.path;
  const kept: Change[] = [];
  const warnings: string[] = [];
  for (const change of changes) {
    if (change.type !== 'file' || change.role === 'kept' || change.before === undefined) continue;
    const entry = record?.files.find((file) => file.path === change.path);
    if (!entry?.writtenSha256 || sha256(change.before) === entry.writtenSha256) continue;
    const copy = path.join(applier.stateDir, KEPT, `${path.basename(change.path)}.${now.getTime()}`);
    kept.push({ type: 'file', path: copy, action: 'create', after: change.before, mode: 0o600, privileged: change.privileged, role: 'kept' });
    warnings.push(`${change.path} was edited after stigmer-setup wrote it; your version will be kept as ${copy}.`);
  }
  return { changes: [...kept, ...changes], warnings };
}

/** The changes that return every recorded file and setting to its state before setup first ran. */
export async function planUndo(applier: Applier, record: UndoRecord, now: Date): Promise<{ changes: Change[]; warnings: string[] }> {
  const { ctx, files, stateDir } = applier;
  const path = applier.support.path;
  const elevated = files.elevate.length > 0;
  const changes: Change[] = [];
  for (const file of record.files) {
    const current = await files.read(file.path);
    let original: Buffer | undefined;
    let restoreFrom: string | undefined;
    if (file.existed) {
      const backupPath = path.join(stateDir, BACKUPS, file.backup as string);
      const backup = await files.read(backupPath).catch((error: NodeJS.ErrnoException) => {
        // A backup only root may read: root's `install` copies it back, and the hash was checked when written.
        if (error.code === 'EACCES' && elevated) return null;
        throw error;
      });
      if (backup === undefined) throw new StepError(`The backup of ${file.path} (${backupPath}) is missing, so undo can't restore it. Nothing was changed.`);
      if (backup === null) {
        restoreFrom = backupPath;
      } else {
        if (sha256(backup.content) !== file.backupSha256) {
          throw new StepError(`The backup of ${file.path} (${backupPath}) is not the one setup saved (its sha256 differs), so undo won't restore it. Nothing was changed.`);
        }
        original = backup.content;
      }
      if (original !== undefined && sameContent(current?.content, original) && current?.mode === file.mode) continue;
    } else if (current === undefined) {
      // Setup created it and it is already gone: only the folders it made may be left.
      if (file.createdDirs.length > 0) changes.push({ type: 'file', path: file.path, action: 'delete', mode: 0o644, privileged: elevated, removeDirs: file.createdDirs });
      continue;
    }
    changes.push({
      type: 'file',
      path: file.path,
      action: !file.existed ? 'delete' : current === undefined ? 'create' : 'modify',
      before: current?.content,
      after: original,
      restoreFrom,
      mode: file.mode ?? current?.mode ?? 0o644,
      uid: file.uid,
      gid: file.gid,
      privileged: elevated,
      removeDirs: file.existed ? undefined : file.createdDirs,
    });
  }
  // Ollama uninstalled since setup: the files and settings are still put back, but there is
  // nothing to restart (a restart would fail, and its rollback would undo the restore every time).
  const gone = new Set<string>();
  for (const restart of record.restart) {
    if (gone.has(restart.strategy)) continue;
    if ((await strategyFor(applier, restart.strategy).installed?.(ctx)) === false) gone.add(restart.strategy);
  }
  const warnings: string[] = [];
  for (const id of gone) warnings.push(`Ollama (${id}) is no longer installed; nothing to restart.`);
  for (const setting of record.settings) {
    // A setting that lived in the uninstalled installation went with it (a snap's options are
    // removed with the snap): there is nothing left to put it back into.
    const owner = applier.support.strategies.find((strategy) => gone.has(strategy.id) && strategy.settings?.some((own) => own.store === setting.store && own.key === setting.key));
    if (owner) {
      warnings.push(`${setting.store} ${setting.key} was removed with Ollama (${owner.id}); nothing to restore there.`);
      continue;
    }
    const store = storeFor(applier, setting.store);
    const current = await store.read(ctx, setting.key);
    const before = setting.before ?? undefined;
    if (current === before) continue;
    const privileged = store.privileged && elevated;
    changes.push({ type: 'setting', store: setting.store, key: setting.key, before: current, after: before, privileged, argv: [...(privileged ? files.elevate : []), ...store.command(setting.key, before).argv] });
  }
  for (const restart of record.restart) {
    if (gone.has(restart.strategy)) continue;
    const change = strategyFor(applier, restart.strategy).restartChange?.({ elevate: files.elevate, env: ctx.env, uid: ctx.uid, job: restart.job, port: record.port, undo: true });
    if (change) changes.push(change);
  }
  const kept = keepEdits(applier, changes, record, now);
  return { changes: kept.changes, warnings: [...warnings, ...kept.warnings] };
}

/** Undo's apply: nothing may have changed since it was planned; on success the record has done its job. */
export async function applyUndo(applier: Applier, changes: Change[], state: RecordState): Promise<ApplyOutcome> {
  if (!(await recordUnchanged(applier, state))) {
    return notApplied(changes, `${applier.support.path.join(applier.stateDir, RECORD_NAME)} changed since undo was planned (another stigmer-setup?). Nothing was changed; run undo again.`);
  }
  const stale = await preflight(applier, changes);
  if (stale) return notApplied(changes, stale);
  const outcome = await executeChanges(applier, changes);
  if (!outcome.ok) return outcome;
  // The restore is in place: a record or backups that can't be removed (EBUSY, EPERM) don't undo
  // that, so they are a warning, not a failure that would report "nothing was restored".
  const record = applier.support.path.join(applier.stateDir, RECORD_NAME);
  const backups = applier.support.path.join(applier.stateDir, BACKUPS);
  try {
    await applier.files.remove(record);
    await applier.files.removeTree(backups);
  } catch (error) {
    return { ...outcome, warnings: [`The restore is done, but ${record} or ${backups} could not be removed (${oneLine((error as Error).message)}); remove them by hand, or a later undo restores the same backups again.`] };
  }
  return outcome;
}

export type { FileChange };
