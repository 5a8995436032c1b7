/**
 * launchd property lists, read and written with the `plist` package (the design card's choice).
 *
 * Two things the package does not do for us:
 * - It is lenient: its XML parser (xmldom) reports a malformed document by printing to the console
 *   and returning what it could salvage. We parse synchronously with those reports captured, and
 *   treat any report as "malformed", so nothing leaks into our output and nothing half-parsed is
 *   written back.
 * - It reads binary plists (bplist00) too, but writing one back as XML would change the file's
 *   format behind the user's back; a binary plist is refused with the plutil command that converts it.
 */
import { build, parse } from 'plist';
import { oneLine } from '../../scripts/text.ts';

export type PlistDict = Record<string, unknown>;

/** A plist stigmer-setup won't edit: the message names the file and says what to do. */
export class PlistError extends Error {
  constructor(
    readonly file: string,
    readonly reason: 'binary' | 'malformed',
    detail: string,
  ) {
    super(
      reason === 'binary'
        ? `${file} is a binary property list, which stigmer-setup does not rewrite. Convert it to XML first: plutil -convert xml1 ${file}`
        : `${file} is not a valid property list (${detail}); stigmer-setup changed nothing. Check it with: plutil -lint ${file}`,
    );
    this.name = 'PlistError';
  }
}

export function isBinaryPlist(content: Buffer): boolean {
  return content.subarray(0, 8).toString('latin1') === 'bplist00';
}

/** Run `work` with console.error/warn/log captured: xmldom reports parse errors there. */
function captureConsole<T>(work: () => T): { value: T; reports: string[] } {
  const reports: string[] = [];
  const saved = { error: console.error, warn: console.warn, log: console.log };
  const collect = (...args: unknown[]) => void reports.push(args.map(String).join(' '));
  console.error = collect;
  console.warn = collect;
  console.log = collect;
  try {
    return { value: work(), reports };
  } finally {
    Object.assign(console, saved);
  }
}

function isDict(value: unknown): value is PlistDict {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date) && !(value instanceof Uint8Array);
}

/** The top-level dictionary of an XML plist; PlistError for a binary or malformed one. */
export function readPlistDict(content: Buffer, file: string): PlistDict {
  if (isBinaryPlist(content)) throw new PlistError(file, 'binary', '');
  const text = content.toString('utf8');
  if (!text.trimStart().startsWith('<')) throw new PlistError(file, 'malformed', 'it is not XML');
  let parsed: { value: unknown; reports: string[] };
  try {
    parsed = captureConsole(() => parse(text) as unknown);
  } catch (error) {
    throw new PlistError(file, 'malformed', oneLine((error as Error).message, 120));
  }
  if (parsed.reports.length > 0) throw new PlistError(file, 'malformed', oneLine(parsed.reports[0] ?? '', 120));
  if (!isDict(parsed.value)) throw new PlistError(file, 'malformed', 'its top level is not a <dict>');
  return parsed.value;
}

/** The job's EnvironmentVariables that are strings (launchd ignores anything else). */
export function environmentVariables(dict: PlistDict): Record<string, string> {
  const environment = dict.EnvironmentVariables;
  if (!isDict(environment)) return {};
  return Object.fromEntries(Object.entries(environment).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
}

export function buildPlist(dict: PlistDict): Buffer {
  return Buffer.from(build(dict as Parameters<typeof build>[0]), 'utf8');
}

/**
 * The same plist with EnvironmentVariables[key] = value, every other key and value kept, the dict
 * created when absent. PlistError when the file can't be edited safely.
 */
export function withEnvironmentVariable(content: Buffer, file: string, key: string, value: string): Buffer {
  const dict = readPlistDict(content, file);
  const existing = dict.EnvironmentVariables;
  if (existing !== undefined && !isDict(existing)) throw new PlistError(file, 'malformed', 'its EnvironmentVariables is not a <dict>');
  dict.EnvironmentVariables = { ...(existing ?? {}), [key]: value };
  return buildPlist(dict);
}
