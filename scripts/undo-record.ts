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
import { describeKind, type Context, type Platform } from './context.ts';
import { quotePosix } from './shell-quote.ts';

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
  /**
   * The value before the first setup, exactly as the store held it; null when the key was not set.
   * Any text the store can hold is kept: control characters and newlines travel escaped in the
   * JSON string (see settingValueProblem for the only limits). For the snap store it is the
   * option's JSON document (`"0.0.0.0:11434"`, `{"a":1}`), which `snap set -t` takes back as is.
   */
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

/** The reader's rule for every text field but a setting's value: no control character, and bounded. */
function isPlainText(value: string, max: number): boolean {
  return value.length <= max && PRINTABLE.test(value);
}

/**
 * The longest setting value the record carries: 32767 characters, the most a Windows environment
 * variable can hold, and far beyond any real OLLAMA_HOST or snap option. The bound is there
 * against a hostile record; setup refuses a longer value before it changes anything.
 */
export const MAX_SETTING_VALUE = 32_767;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why `value` can't go into the undo record for `store`, or undefined when it can. This one rule
 * is applied when setup records a value (before anything changes) and when undo reads the record
 * back, so a record setup wrote is always one undo accepts. Everything else is kept losslessly:
 * newlines, tabs, escape codes and other control characters are escaped by JSON and restored as
 * they were. Refused are only values no store could be given back exactly: one with a NUL (no
 * command-line argument or environment variable can carry it), text that is not well-formed
 * Unicode, one over MAX_SETTING_VALUE, and for the snap store a value that is not a JSON document.
 */
export function settingValueProblem(store: SettingStoreId, value: string): string | undefined {
  if (value.length > MAX_SETTING_VALUE) return `is ${value.length} characters long; stigmer-setup keeps values of up to ${MAX_SETTING_VALUE} characters (the most a Windows environment variable holds)`;
  if (value.includes('\0')) return 'holds a NUL character, which no command line or environment variable can carry, so it could not be put back';
  if (LONE_SURROGATE.test(value)) return 'is not well-formed Unicode (a lone surrogate), so it could not be put back exactly';
  if (store === 'snap' && !isJsonDocument(value)) return 'is not the JSON document of a snap option';
  return undefined;
}

/**
 * Why setup won't record `value` as a setting's previous value: settingValueProblem, and one more
 * that only setup applies. A command's output is decoded as UTF-8, so a byte that is not UTF-8
 * (`launchctl setenv OLLAMA_HOST $'caf\xe9'`) or a Windows value with a lone surrogate reads as
 * U+FFFD: the bytes it stood for are not known, and restoring U+FFFD would not put them back.
 * Not part of the reader's rule, so a record an earlier version wrote with one is still read:
 * a stricter writer never locks undo out.
 */
export function recordingProblem(store: SettingStoreId, value: string): string | undefined {
  const problem = settingValueProblem(store, value);
  if (problem || store === 'snap') return problem;
  if (value.includes('\ufffd')) return 'holds U+FFFD, which is how a byte that is not UTF-8 reads, so stigmer-setup does not know the bytes it stands for';
  return undefined;
}

function isJsonDocument(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * A recorded value as the old record format held it for the snap store: the raw text that
 * `snap set ollama host=<raw>` was given, which snapd parses as JSON when it can and keeps as a
 * string otherwise. Read the same way, it is the document snapd stored.
 */
function snapDocumentOf(raw: string): string {
  return isJsonDocument(raw) ? raw : JSON.stringify(raw);
}

/**
 * A value for a person's terminal: JSON-escaped like JSON.stringify, and DEL, the C1 controls and
 * the bidi controls, which JSON.stringify leaves raw, escaped too. Never a raw control character.
 */
export function displayValue(value: string): string {
  return escapeUnsafe(JSON.stringify(value));
}

/** DEL, the C1 controls and the bidi controls, which JSON.stringify leaves raw, as \u escapes. */
function escapeUnsafe(json: string): string {
  return json.replace(/[\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Any field of a crafted record, for a message: its JSON, escaped like displayValue and cut at 80
 * characters. The message reaches the terminal and --json as is, and a field may hold megabytes.
 */
function shown(value: unknown): string {
  if (typeof value === 'string') return `${displayValue(value.slice(0, 80))}${value.length > 80 ? '…' : ''}`;
  const json = JSON.stringify(value) ?? String(value);
  return escapeUnsafe(json.length > 80 ? `${json.slice(0, 80)}…` : json);
}
const HEX64 = /^[0-9a-f]{64}$/;
/**
 * A file's mode as setup records it (stat's mode & 0o7777): the permission bits and the setuid,
 * setgid and sticky bits. Setup records a file's mode exactly, so the reader takes all twelve bits:
 * a record that allowed only 0o777 locked undo out of any file with the sticky or setgid bit.
 */
const MAX_MODE = 0o7777;

class Checker {
  constructor(private readonly where: string) {}
  fail(entry: string, problem: string): never {
    throw new UndoRecordError(`The undo record ${this.where} can't be trusted: ${entry} ${problem}. Nothing was changed; restore by hand from the backups folder next to it.`);
  }
  object(value: unknown, entry: string, required: string[], optional: string[] = []): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(entry, 'is not an object');
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) if (!required.includes(key) && !optional.includes(key)) this.fail(/^[A-Za-z]{1,32}$/.test(key) ? `${entry}.${key}` : `${entry}[${shown(key)}]`, 'is not a field stigmer-setup writes');
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
    if (!isPlainText(value, max)) this.fail(entry, `${shown(value)} is not plain text of at most ${max} characters`);
    return value;
  }
  integer(value: unknown, entry: string, min: number, max: number): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) this.fail(entry, `${shown(value)} is not a whole number from ${min} to ${max}`);
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
  if (version !== 2) check.fail('version', `${shown(version)} is not a version this stigmer-setup reads (2)`);
  const top = check.object(value, 'the record', ['version', 'platform', 'createdAt', 'files', 'settings', 'restart'], ['port']);
  if (top.platform !== allowed.platform) check.fail('platform', `${shown(top.platform)} is not the platform being restored (${allowed.platform})`);
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
      check.fail(`${entry}.path`, `${shown(file)} is not a file stigmer-setup writes here`);
    }
    if (record.files.some((other) => other.path === file)) check.fail(`${entry}.path`, `${shown(file)} is listed twice`);
    const recorded: RecordedFile = { path: file, existed: check.boolean(raw.existed, `${entry}.existed`), createdDirs: [] };
    if (recorded.existed) {
      const backup = check.string(raw.backup, `${entry}.backup`, 1024);
      if (backup !== backupNameFor(file)) check.fail(`${entry}.backup`, `${shown(backup)} is not the backup name of ${file}`);
      recorded.backup = backup;
      recorded.backupSha256 = check.string(raw.backupSha256, `${entry}.backupSha256`, 64);
      if (!HEX64.test(recorded.backupSha256)) check.fail(`${entry}.backupSha256`, 'is not a sha256');
      recorded.mode = check.integer(raw.mode, `${entry}.mode`, 0, MAX_MODE);
    } else if (raw.backup !== undefined || raw.backupSha256 !== undefined) {
      check.fail(`${entry}.backup`, 'is set for a file that did not exist');
    }
    if (raw.mode !== undefined) recorded.mode = check.integer(raw.mode, `${entry}.mode`, 0, MAX_MODE);
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
        check.fail(`${entry}.createdDirs[${dirIndex}]`, `${shown(dir)} is not a folder above ${file} and below ${allowed.root} or ${allowed.home}`);
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
    if (!allowed.settings.has(`${store}\0${key}`)) check.fail(entry, `(${escapeUnsafe(`${store} ${key}`)}) is not a setting stigmer-setup changes here`);
    if (record.settings.some((other) => other.store === store && other.key === key)) check.fail(entry, `(${store} ${key}) is listed twice`);
    let before: string | null = null;
    if (raw.before !== null) {
      const value = typeof raw.before === 'string' ? raw.before : check.fail(`${entry}.before`, 'is not a string or null');
      // A record written before values were kept as snap documents holds the raw `snap set` text.
      const restored = store === 'snap' ? snapDocumentOf(value) : value;
      const problem = settingValueProblem(store, restored);
      if (problem) check.fail(`${entry}.before`, `${displayValue(restored.slice(0, 80))}${restored.length > 80 ? '…' : ''} ${problem}`);
      before = restored;
    }
    record.settings.push({ store, key, before });
  }
  for (const [index, item] of check.array(top.restart, 'restart', 8).entries()) {
    const entry = `restart[${index}]`;
    const raw = check.object(item, entry, ['strategy'], ['job']);
    const id = check.string(raw.strategy, `${entry}.strategy`, 64);
    if (!allowed.strategies.has(id)) check.fail(`${entry}.strategy`, `${shown(id)} is not a strategy of this platform`);
    const restart: RecordedRestart = { strategy: id };
    if (raw.job !== undefined) {
      // The file a restart reloads: only one this platform's strategies write.
      const job = check.string(raw.job, `${entry}.job`);
      if (!allowed.files.has(job)) check.fail(`${entry}.job`, `${shown(job)} is not a file stigmer-setup writes here`);
      restart.job = job;
    }
    if (!record.restart.some((other) => other.strategy === restart.strategy && other.job === restart.job)) record.restart.push(restart);
  }
  return record;
}

/**
 * The state folder, and backups/ and kept/ inside it, are checked the way undo.json is: whoever
 * can write there can swap a backup (restored over a system file), plant the record, or put a
 * symlink where setup will write a copy of a system file. So each must be a real folder (not a
 * symlink), owned by us or root, and not writable by group or others. Setup and undo both read the
 * record first, so this runs before either writes anything. A missing folder is fine: setup
 * creates it (0755, ours).
 */
export async function checkStateFolders(ctx: Context, path: PlatformPath, stateDir: string): Promise<void> {
  for (const folder of [stateDir, path.join(stateDir, BACKUPS), path.join(stateDir, KEPT)]) {
    const seen = await ctx.fs.inspect(folder);
    if (!seen) continue;
    if (seen.kind !== 'directory') {
      throw new UndoRecordError(`The stigmer-setup state folder ${folder} is ${describeKind(seen.kind)}, not a folder, so it can't be trusted. Nothing was changed. Fix: look at what it is, move it away (\`mv ${quoteForDisplay(folder)} ${quoteForDisplay(`${folder}.moved`)}\`), and run stigmer-setup again.`);
    }
    // POSIX hosts only (ctx.uid is undefined on Windows, whose folders carry no such mode bits).
    if (ctx.uid === undefined) continue;
    const foreign = seen.uid !== ctx.uid && seen.uid !== 0;
    const shared = (seen.mode & 0o022) !== 0;
    if (foreign || shared) {
      const why = foreign ? `it belongs to user ${seen.uid}, not to you (${ctx.uid}) or root` : `other users can write to it (mode ${(seen.mode & 0o7777).toString(8).padStart(4, '0')})`;
      const fix = foreign ? `sudo chown -R ${ctx.uid} ${quoteForDisplay(folder)} && chmod go-w ${quoteForDisplay(folder)}` : `chmod go-w ${quoteForDisplay(folder)}`;
      throw new UndoRecordError(`The stigmer-setup state folder ${folder} can't be trusted: ${why}, so its backups and undo record could have been replaced. Nothing was changed. Fix, if you trust its content: \`${fix}\`, then run stigmer-setup again.`);
    }
  }
}

/** A path in a suggested command: POSIX-quoted, or JSON-quoted when it holds a control character. */
function quoteForDisplay(value: string): string {
  try {
    return quotePosix(value);
  } catch {
    return displayValue(value);
  }
}

/**
 * The record and the exact text it was read from (to notice a change before writing), or
 * undefined when there is none. The file must be a regular file that only its owner (us or root)
 * can write; a FIFO, a symlink or a group-writable record is refused before it is read.
 */
export async function readRecord(ctx: Context, allowed: Allowed, stateDir: string): Promise<{ record: UndoRecord; text: string } | undefined> {
  await checkStateFolders(ctx, allowed.path, stateDir);
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

/**
 * The record's text. A setting value the reader would refuse is never written: setup checks each
 * value with settingValueProblem before it changes anything, and this throws rather than write a
 * record that would lock undo out.
 */
export function renderRecord(record: UndoRecord): string {
  // The other text fields follow the reader's rule too (Checker.string, same bounds): a path with
  // a control character (a newline in --root or HOME) would otherwise be recorded, the file
  // changed, and the record then refused by every later setup and undo.
  const fields: [string, string | undefined, number][] = [['createdAt', record.createdAt, 64]];
  for (const [index, file] of record.files.entries()) {
    fields.push([`files[${index}].path`, file.path, 4096], [`files[${index}].backup`, file.backup, 1024]);
    for (const [dirIndex, dir] of file.createdDirs.entries()) fields.push([`files[${index}].createdDirs[${dirIndex}]`, dir, 4096]);
  }
  for (const [index, setting] of record.settings.entries()) fields.push([`settings[${index}].store`, setting.store, 64], [`settings[${index}].key`, setting.key, 64]);
  for (const [index, restart] of record.restart.entries()) fields.push([`restart[${index}].strategy`, restart.strategy, 64], [`restart[${index}].job`, restart.job, 4096]);
  for (const [entry, value, max] of fields) {
    if (value !== undefined && !isPlainText(value, max)) {
      throw new UndoRecordError(`The undo record's ${entry} (${displayValue(value.slice(0, 80))}${value.length > 80 ? '…' : ''}) is not plain text of at most ${max} characters, which undo would refuse to read back, so it can't be recorded for undo.`);
    }
  }
  for (const setting of record.settings) {
    const problem = setting.before === null ? undefined : settingValueProblem(setting.store, setting.before);
    if (problem) throw new UndoRecordError(`The previous value of ${setting.store} ${setting.key} ${problem}; it can't be recorded for undo.`);
  }
  return `${JSON.stringify(record, null, 2)}\n`;
}
