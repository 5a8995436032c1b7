/**
 * The undo record (undo.json in the state folder) says what setup changed, so undo can put it back.
 *
 * It is read back as untrusted input: anyone who can write that file must not be able to make undo
 * run a command, touch a file outside what stigmer-setup writes, or copy one file's content into
 * another. So the record holds no commands at all (a restart is named by strategy id, a setting by
 * store and key, and this code builds the command); every field is checked against a strict
 * schema; a path must be one a known strategy writes under --root; a backup must be the file
 * stigmer-setup names after that path and still hash to what was recorded. Anything else stops
 * undo with exit 1, names the entry, and changes nothing.
 */
import { createHash } from 'node:crypto';
import type { PlatformPath } from 'node:path';
import type { Locations, PlatformSupport, SettingStoreId } from '../platforms/types.ts';
import type { Context, Platform } from './context.ts';

export const RECORD_NAME = 'undo.json';
export const BACKUPS = 'backups';
export const KEPT = 'kept';

export interface RecordedFile {
  /** The file setup wrote (with the --root prefix). */
  path: string;
  /** False when setup created the file: undo deletes it. */
  existed: boolean;
  /** The backup's file name inside backups/, when the file existed. */
  backup?: string;
  /** sha256 of the backup, checked before it is restored. */
  backupSha256?: string;
  /** Mode and owner the file had before setup, restored with it. */
  mode?: number;
  uid?: number;
  gid?: number;
  /** sha256 of what setup last wrote, to notice edits made after setup. */
  writtenSha256?: string;
  /** Folders setup created for the file, outermost first; undo removes them when empty. */
  createdDirs: string[];
}

export interface RecordedSetting {
  store: SettingStoreId;
  key: string;
  /** The value before the first setup; null when the key was not set. */
  before: string | null;
}

export interface UndoRecord {
  version: 2;
  platform: Platform;
  createdAt: string;
  /** The port setup configured, so undo knows where to wait for Ollama to come back. */
  port?: number;
  files: RecordedFile[];
  settings: RecordedSetting[];
  /** The restarts undo runs after restoring: a strategy id, and for a restart by file, its job file. */
  restart: RecordedRestart[];
}

export interface RecordedRestart {
  strategy: string;
  job?: string;
}

/** The record, refused: the message names the file and the entry. */
export class UndoRecordError extends Error {}

export function sha256(content: Buffer | string): string {
  return createHash('sha256').update(content).digest('hex');
}

/** /etc/a/b.conf → etc__a__b.conf; C:\Users\a\x → C___Users__a__x. One readable name per path. */
export function backupNameFor(file: string): string {
  return file.replace(/^[\\/]+/, '').replace(/[\\/]+/g, '__').replace(/:/g, '_');
}

export function emptyRecord(platform: Platform, now: Date): UndoRecord {
  return { version: 2, platform, createdAt: now.toISOString(), files: [], settings: [], restart: [] };
}

/** What a record may name on this platform: the files and settings its strategies write. */
export interface Allowed {
  platform: Platform;
  path: PlatformPath;
  /** --root and the user's home: per-machine files live below the one, per-user files below the other. */
  root: string;
  home: string;
  files: Set<string>;
  settings: Set<string>;
  strategies: Set<string>;
}

export function allowedFor(support: PlatformSupport, locations: Locations): Allowed {
  const files = new Set<string>();
  const settings = new Set<string>();
  const strategies = new Set<string>();
  for (const strategy of support.strategies) {
    strategies.add(strategy.id);
    for (const file of strategy.writablePaths?.(locations, support.path) ?? []) files.add(support.path.normalize(file));
    for (const setting of strategy.settings ?? []) {
      if (support.settingStores[setting.store]) settings.add(`${setting.store}\0${setting.key}`);
    }
  }
  return { platform: support.id, path: support.path, root: support.path.resolve(locations.root), home: locations.home, files, settings, strategies };
}

const PRINTABLE = /^[^\x00-\x1f\x7f-\x9f]*$/;
const HEX64 = /^[0-9a-f]{64}$/;

class Checker {
  constructor(private readonly where: string) {}
  fail(entry: string, problem: string): never {
    throw new UndoRecordError(`The undo record ${this.where} can't be trusted: ${entry} ${problem}. Nothing was changed; restore by hand from the backups folder next to it.`);
  }
  object(value: unknown, entry: string, required: string[], optional: string[] = []): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(entry, 'is not an object');
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) if (!required.includes(key) && !optional.includes(key)) this.fail(`${entry}.${key}`, 'is not a field stigmer-setup writes');
    for (const key of required) if (!(key in record)) this.fail(`${entry}.${key}`, 'is missing');
    return record;
  }
  array(value: unknown, entry: string, max = 64): unknown[] {
    if (!Array.isArray(value)) this.fail(entry, 'is not a list');
    if (value.length > max) this.fail(entry, `has more than ${max} entries`);
    return value;
  }
  string(value: unknown, entry: string, max = 4096): string {
    if (typeof value !== 'string') this.fail(entry, 'is not a string');
    if (value.length > max || !PRINTABLE.test(value)) this.fail(entry, `${JSON.stringify(value.slice(0, 80))} is not plain text of at most ${max} characters`);
    return value;
  }
  integer(value: unknown, entry: string, min: number, max: number): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) this.fail(entry, `${JSON.stringify(value)} is not a whole number from ${min} to ${max}`);
    return value;
  }
  boolean(value: unknown, entry: string): boolean {
    if (typeof value !== 'boolean') this.fail(entry, 'is not true or false');
    return value;
  }
}

/** Check a parsed record against the schema and against what stigmer-setup may touch here. */
export function validateRecord(value: unknown, allowed: Allowed, where: string): UndoRecord {
  const check = new Checker(where);
  // The version first: an older or newer record is named as such, not as a pile of odd fields.
  const version = (value as { version?: unknown } | null)?.version;
  if (version !== 2) check.fail('version', `${JSON.stringify(version)} is not a version this stigmer-setup reads (2)`);
  const top = check.object(value, 'the record', ['version', 'platform', 'createdAt', 'files', 'settings', 'restart'], ['port']);
  if (top.platform !== allowed.platform) check.fail('platform', `${JSON.stringify(top.platform)} is not the platform being restored (${allowed.platform})`);
  const record: UndoRecord = {
    version: 2,
    platform: allowed.platform,
    createdAt: check.string(top.createdAt, 'createdAt', 64),
    files: [],
    settings: [],
    restart: [],
  };
  if (top.port !== undefined) record.port = check.integer(top.port, 'port', 1, 65535);
  const { path } = allowed;
  for (const [index, item] of check.array(top.files, 'files').entries()) {
    const entry = `files[${index}]`;
    const raw = check.object(item, entry, ['path', 'existed', 'createdDirs'], ['backup', 'backupSha256', 'mode', 'uid', 'gid', 'writtenSha256']);
    const file = check.string(raw.path, `${entry}.path`);
    if (!path.isAbsolute(file) || path.normalize(file) !== file || !allowed.files.has(file)) {
      check.fail(`${entry}.path`, `${JSON.stringify(file)} is not a file stigmer-setup writes here`);
    }
    if (record.files.some((other) => other.path === file)) check.fail(`${entry}.path`, `${JSON.stringify(file)} is listed twice`);
    const recorded: RecordedFile = { path: file, existed: check.boolean(raw.existed, `${entry}.existed`), createdDirs: [] };
    if (recorded.existed) {
      const backup = check.string(raw.backup, `${entry}.backup`, 1024);
      if (backup !== backupNameFor(file)) check.fail(`${entry}.backup`, `${JSON.stringify(backup)} is not the backup name of ${file}`);
      recorded.backup = backup;
      recorded.backupSha256 = check.string(raw.backupSha256, `${entry}.backupSha256`, 64);
      if (!HEX64.test(recorded.backupSha256)) check.fail(`${entry}.backupSha256`, 'is not a sha256');
      recorded.mode = check.integer(raw.mode, `${entry}.mode`, 0, 0o777);
    } else if (raw.backup !== undefined || raw.backupSha256 !== undefined) {
      check.fail(`${entry}.backup`, 'is set for a file that did not exist');
    }
    if (raw.mode !== undefined) recorded.mode = check.integer(raw.mode, `${entry}.mode`, 0, 0o777);
    if (raw.uid !== undefined) recorded.uid = check.integer(raw.uid, `${entry}.uid`, 0, 0xffffffff);
    if (raw.gid !== undefined) recorded.gid = check.integer(raw.gid, `${entry}.gid`, 0, 0xffffffff);
    if (raw.writtenSha256 !== undefined) {
      recorded.writtenSha256 = check.string(raw.writtenSha256, `${entry}.writtenSha256`, 64);
      if (!HEX64.test(recorded.writtenSha256)) check.fail(`${entry}.writtenSha256`, 'is not a sha256');
    }
    for (const [dirIndex, dirValue] of check.array(raw.createdDirs, `${entry}.createdDirs`, 16).entries()) {
      const dir = check.string(dirValue, `${entry}.createdDirs[${dirIndex}]`);
      // Only folders above this file and below --root or the home: undo removes them when empty, nothing else.
      const above = file.startsWith(`${dir}${path.sep}`);
      const below = (base: string) => base !== '' && dir !== base && (dir.startsWith(`${base}${path.sep}`) || (base === path.parse(base).root && dir.startsWith(base)));
      if (!path.isAbsolute(dir) || path.normalize(dir) !== dir || !above || !(below(allowed.root) || below(allowed.home))) {
        check.fail(`${entry}.createdDirs[${dirIndex}]`, `${JSON.stringify(dir)} is not a folder above ${file} and below ${allowed.root} or ${allowed.home}`);
      }
      recorded.createdDirs.push(dir);
    }
    record.files.push(recorded);
  }
  for (const [index, item] of check.array(top.settings, 'settings').entries()) {
    const entry = `settings[${index}]`;
    const raw = check.object(item, entry, ['store', 'key', 'before']);
    const store = check.string(raw.store, `${entry}.store`, 64) as SettingStoreId;
    const key = check.string(raw.key, `${entry}.key`, 64);
    if (!allowed.settings.has(`${store}\0${key}`)) check.fail(entry, `(${store} ${key}) is not a setting stigmer-setup changes here`);
    if (record.settings.some((other) => other.store === store && other.key === key)) check.fail(entry, `(${store} ${key}) is listed twice`);
    const before = raw.before === null ? null : check.string(raw.before, `${entry}.before`, 1024);
    record.settings.push({ store, key, before });
  }
  for (const [index, item] of check.array(top.restart, 'restart', 8).entries()) {
    const entry = `restart[${index}]`;
    const raw = check.object(item, entry, ['strategy'], ['job']);
    const id = check.string(raw.strategy, `${entry}.strategy`, 64);
    if (!allowed.strategies.has(id)) check.fail(`${entry}.strategy`, `${JSON.stringify(id)} is not a strategy of this platform`);
    const restart: RecordedRestart = { strategy: id };
    if (raw.job !== undefined) {
      // The file a restart reloads: only one this platform's strategies write.
      const job = check.string(raw.job, `${entry}.job`);
      if (!allowed.files.has(job)) check.fail(`${entry}.job`, `${JSON.stringify(job)} is not a file stigmer-setup writes here`);
      restart.job = job;
    }
    if (!record.restart.some((other) => other.strategy === restart.strategy && other.job === restart.job)) record.restart.push(restart);
  }
  return record;
}

/**
 * The record and the exact text it was read from (to notice a change before writing), or
 * undefined when there is none. The file must be a regular file that only its owner (us or root)
 * can write; a FIFO, a symlink or a group-writable record is refused before it is read.
 */
export async function readRecord(ctx: Context, allowed: Allowed, stateDir: string): Promise<{ record: UndoRecord; text: string } | undefined> {
  const where = allowed.path.join(stateDir, RECORD_NAME);
  const file = await ctx.fs.read(where);
  if (!file) return undefined;
  // POSIX hosts only (ctx.uid is undefined on Windows, whose files carry no such mode bits).
  if (ctx.uid !== undefined && ((file.mode & 0o022) !== 0 || (file.uid !== ctx.uid && file.uid !== 0))) {
    throw new UndoRecordError(`The undo record ${where} can be written by other users (mode ${file.mode.toString(8)}, owner ${file.uid}), so it can't be trusted. Nothing was changed.`);
  }
  const text = file.content.toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UndoRecordError(`The undo record ${where} is not valid JSON (${(error as Error).message}). Nothing was changed; restore by hand from the backups folder next to it.`);
  }
  return { record: validateRecord(parsed, allowed, where), text };
}

export function renderRecord(record: UndoRecord): string {
  return `${JSON.stringify(record, null, 2)}\n`;
}
