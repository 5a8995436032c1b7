/**
 * Carrying a plan out, all or nothing, and keeping what undo needs.
 *
 * Order: back up every file the plan touches (first backup wins, so undo always returns to the
 * state before stigmer-setup ever ran), record the undo manifest, write the files, run the
 * commands. If any step fails, every file is put back as it was before this run and the restart
 * commands run again so the service is not left running a half-applied configuration.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { ApplyOptions, ApplyOutcome, Change, FileChange, Plan } from '../platforms/types.ts';
import type { Context } from './context.ts';
import { removeSystemFile, removeSystemTree, sudoFailure, writeSystemFile } from './system-files.ts';

export interface ManifestFile {
  path: string;
  /** False when setup created the file: undo deletes it. */
  existed: boolean;
  /** Copy of the original, when it existed. */
  backup?: string;
  /** sha256 of what setup last wrote, to notice edits made after setup. */
  writtenSha256?: string;
}

export interface Manifest {
  version: 1;
  strategy: string;
  createdAt: string;
  files: ManifestFile[];
  reverts: string[][];
  restart: string[][];
  /** The port setup configured, so undo knows where to wait for Ollama to come back. */
  port?: number;
}

export const MANIFEST_NAME = 'undo.json';

export function stateDirFor(root: string): string {
  return path.join(root, 'var', 'lib', 'stigmer-setup');
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export async function readManifest(ctx: Context, stateDir: string): Promise<Manifest | undefined> {
  const text = await ctx.fs.readText(path.join(stateDir, MANIFEST_NAME));
  if (text === undefined) return undefined;
  try {
    const manifest = JSON.parse(text) as Manifest;
    if (manifest.version !== 1 || !Array.isArray(manifest.files)) throw new Error('unknown format');
    return manifest;
  } catch (error) {
    throw new Error(`The undo record ${path.join(stateDir, MANIFEST_NAME)} is unreadable (${(error as Error).message}); restore by hand from ${path.join(stateDir, 'backups')}.`);
  }
}

function backupPathFor(stateDir: string, file: string): string {
  // Flatten the absolute path into one readable file name: /etc/a/b.conf -> etc__a__b.conf
  return path.join(stateDir, 'backups', file.replace(/^\/+/, '').replace(/\//g, '__'));
}

async function runCommand(ctx: Context, argv: string[], sudo: string[]): Promise<string | undefined> {
  const interactiveSudo = argv[0] === 'sudo' && !argv.includes('-n');
  const result = await ctx.exec(argv[0] as string, argv.slice(1), { timeoutMs: 120_000, inheritTerminal: interactiveSudo });
  if (result.failure === 'not-found') return `\`${argv[0]}\` was not found on PATH.`;
  if (result.failure === 'timeout') return `\`${argv.join(' ')}\` did not finish within 120 s.`;
  if (result.exitCode !== 0) return `\`${argv.join(' ')}\` failed (exit ${result.exitCode}): ${sudoFailure(result.stderr, sudo)}`;
  return undefined;
}

async function writeChange(ctx: Context, change: FileChange, sudo: string[]): Promise<void> {
  if (change.action === 'delete') await removeSystemFile(ctx, change.path, sudo);
  else await writeSystemFile(ctx, change.path, change.after ?? '', sudo);
}

async function restoreFile(ctx: Context, file: string, content: string | undefined, sudo: string[]): Promise<void> {
  if (content === undefined) await removeSystemFile(ctx, file, sudo);
  else await writeSystemFile(ctx, file, content, sudo);
}

/**
 * Run `changes` in order. On failure put every file back to `before` and, if a command already
 * ran, run `restart` again so the service re-reads the restored files.
 */
export async function executeChanges(
  ctx: Context,
  changes: Change[],
  options: {
    sudo: string[];
    /** Prefixed commands that make the service re-read its configuration. */
    restart: string[][];
    /** Prefixed commands that undo command-only changes (e.g. `snap set`). */
    reverts?: string[][];
    extraRollback?: () => Promise<void>;
  },
): Promise<ApplyOutcome> {
  const { sudo, restart, reverts = [], extraRollback = async () => {} } = options;
  const applied = changes.map(() => false);
  let commandRan = false;
  let error: string | undefined;
  for (const [index, change] of changes.entries()) {
    try {
      if (change.type === 'file') {
        await writeChange(ctx, change, sudo);
      } else {
        commandRan = true;
        error = await runCommand(ctx, change.argv, sudo);
      }
    } catch (caught) {
      error = (caught as Error).message;
    }
    if (error) break;
    applied[index] = true;
  }
  // Put every file back as it was before this run, and let the service re-read it.
  const rollback = async (): Promise<string[]> => {
    const problems: string[] = [];
    for (const change of changes) {
      if (change.type !== 'file') continue;
      try {
        await restoreFile(ctx, change.path, change.before, sudo);
      } catch (caught) {
        problems.push(`could not restore ${change.path}: ${(caught as Error).message}`);
      }
    }
    try {
      await extraRollback();
    } catch (caught) {
      problems.push((caught as Error).message);
    }
    if (commandRan) {
      for (const argv of [...reverts, ...restart]) {
        const problem = await runCommand(ctx, argv, sudo);
        if (problem) problems.push(problem);
      }
    }
    return problems;
  };
  if (!error) return { ok: true, applied, rolledBack: false, rollback };

  const problems = await rollback();
  const rolledBack = problems.length === 0;
  const suffix = rolledBack ? ' Every change was rolled back.' : ` Rolling back also failed: ${problems.join('; ')}`;
  return { ok: false, applied: changes.map(() => false), error: `${error}${suffix}`, rolledBack };
}

/** Setup's apply: record backups and the undo manifest, then execute the plan. */
export async function applyWithBackups(ctx: Context, plan: Plan, options: ApplyOptions): Promise<ApplyOutcome> {
  const manifestPath = path.join(options.stateDir, MANIFEST_NAME);
  const previousManifestText = await ctx.fs.readText(manifestPath);
  const previous = await readManifest(ctx, options.stateDir);
  const manifest: Manifest = previous ?? {
    version: 1,
    strategy: plan.strategy,
    createdAt: ctx.clock.now().toISOString(),
    files: [],
    reverts: [],
    restart: [],
  };
  const newBackups: string[] = [];
  try {
    for (const change of plan.changes) {
      if (change.type !== 'file') continue;
      let entry = manifest.files.find((file) => file.path === change.path);
      if (!entry) {
        // First time we touch this file: keep the original for undo.
        entry = { path: change.path, existed: change.before !== undefined };
        if (change.before !== undefined) {
          entry.backup = backupPathFor(options.stateDir, change.path);
          await writeSystemFile(ctx, entry.backup, change.before, options.sudo);
          newBackups.push(entry.backup);
        }
        manifest.files.push(entry);
      }
      entry.writtenSha256 = change.after === undefined ? undefined : sha256(change.after);
    }
    if (plan.target) manifest.port = plan.target.port;
    for (const revert of plan.reverts) if (!manifest.reverts.some((r) => r.join('\0') === revert.join('\0'))) manifest.reverts.push(revert);
    for (const restart of plan.restart) if (!manifest.restart.some((r) => r.join('\0') === restart.join('\0'))) manifest.restart.push(restart);
    // A restart alone changes nothing that undo could restore: don't create a record for it.
    if (previous || plan.changes.some((change) => change.type === 'file') || plan.reverts.length > 0) {
      await writeSystemFile(ctx, manifestPath, `${JSON.stringify(manifest, null, 2)}\n`, options.sudo);
    }
  } catch (caught) {
    for (const backup of newBackups) await removeSystemFile(ctx, backup, options.sudo).catch(() => {});
    return { ok: false, applied: plan.changes.map(() => false), error: `Could not save backups in ${options.stateDir}: ${(caught as Error).message}. Nothing was changed.`, rolledBack: true };
  }

  return executeChanges(ctx, plan.changes, {
    sudo: options.sudo,
    restart: plan.restart.map((argv) => [...options.sudo, ...argv]),
    reverts: plan.reverts.map((argv) => [...options.sudo, ...argv]),
    extraRollback: async () => {
      // The manifest must describe what is on disk: after a rollback that is the previous one.
      await restoreFile(ctx, manifestPath, previousManifestText, options.sudo);
      for (const backup of newBackups) await removeSystemFile(ctx, backup, options.sudo);
    },
  });
}

/** The changes that return every recorded file to its state before setup first ran. */
export async function planUndo(ctx: Context, manifest: Manifest, stateDir: string, sudo: string[]): Promise<{ changes: Change[]; warnings: string[] }> {
  const changes: Change[] = [];
  const warnings: string[] = [];
  for (const file of manifest.files) {
    const current = await ctx.fs.readText(file.path);
    const original = file.existed ? await ctx.fs.readText(file.backup ?? '') : undefined;
    if (file.existed && original === undefined) {
      throw new Error(`The backup of ${file.path} (${file.backup}) is missing, so undo can't restore it. Nothing was changed.`);
    }
    if (current === original) continue;
    if (current !== undefined && file.writtenSha256 && sha256(current) !== file.writtenSha256) {
      // Someone edited the file after setup wrote it: keep their version next to the backups.
      const kept = path.join(stateDir, 'kept', `${path.basename(file.path)}.${ctx.clock.now().getTime()}`);
      changes.push({ type: 'file', path: kept, action: 'create', after: current, privileged: sudo.length > 0 });
      warnings.push(`${file.path} was edited after setup; your version is kept as ${kept}.`);
    }
    changes.push({
      type: 'file',
      path: file.path,
      action: original === undefined ? 'delete' : current === undefined ? 'create' : 'modify',
      before: current,
      after: original,
      privileged: sudo.length > 0,
    });
  }
  for (const revert of manifest.reverts) changes.push({ type: 'command', argv: [...sudo, ...revert] });
  for (const restart of manifest.restart) changes.push({ type: 'command', argv: [...sudo, ...restart] });
  return { changes, warnings };
}

/** After a successful undo the record and backups have done their job. */
export async function clearUndoRecord(ctx: Context, stateDir: string, sudo: string[]): Promise<void> {
  await removeSystemFile(ctx, path.join(stateDir, MANIFEST_NAME), sudo);
  await removeSystemTree(ctx, path.join(stateDir, 'backups'), sudo);
}
