/**
 * Parsers for Homebrew output: `brew --version` and `brew services info <formula> --json`.
 *
 * `brew --version` prints `Homebrew <HOMEBREW_VERSION>` first, then a line per tapped core/cask
 * repository (`Library/Homebrew/cmd/--version.sh`). HOMEBREW_VERSION comes from
 * `git describe --tags --dirty`, so between releases it looks like `3.6.5-2-ge89ae3c`. When
 * Homebrew is not a git checkout it is the literal `>=4.3.0 (shallow or no git repository)`
 * (`Library/Homebrew/brew.sh`); that is only a lower bound, so we report no version for it.
 *
 * `brew services info --json` prints an array of objects with name, service_name, running, loaded,
 * schedulable, pid, exit_code, user, status, file, registered, loaded_file and (when the formula has
 * a command) command, working_dir, log_path, … (`FormulaWrapper#to_hash`). Older Homebrew prints a
 * subset, so every field is optional here except `name`. brew answers the same way for a formula
 * it knows but has not installed (status "none", `file` in the opt prefix that does not exist), so
 * an entry here is not yet an installation (brew.ts checks).
 *
 * Nothing here throws.
 */
import { boundedLines, hasControl, MAX_INPUT_CHARS } from '../../../scripts/text.ts';

export interface BrewVersion {
  major: number;
  minor: number;
  patch: number;
}

export interface BrewServiceInfo {
  name: string;
  /** The launchd label: `homebrew.mxcl.<formula>`, or `sh.brew.<formula>` on newer Homebrew. */
  serviceName?: string;
  running?: boolean;
  loaded?: boolean;
  /** A service file is in ~/Library/LaunchAgents (or /Library/LaunchDaemons); Homebrew 4.4.27 and later. */
  registered?: boolean;
  /** `started`, `stopped`, `none`, `error`, `scheduled`, `unknown`, `other`. */
  status?: string;
  user?: string;
  /** The service file: the loaded plist under ~/Library/LaunchAgents, or the template in the keg when not registered. */
  file?: string;
  pid?: number;
  exitCode?: number;
}

const VERSION_LINE = /^Homebrew (\d{1,6})\.(\d{1,6})\.(\d{1,6})(?![\d.])/;

/** The version from `brew --version`, or undefined if there is none we can trust. */
export function parseBrewVersion(text: string): BrewVersion | undefined {
  for (const line of boundedLines(text).slice(0, 10)) {
    const m = VERSION_LINE.exec(line.trim());
    if (m === null) continue;
    return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
  }
  return undefined;
}

/** Is this version at least `min`? */
export function brewVersionAtLeast(version: BrewVersion, min: BrewVersion): boolean {
  if (version.major !== min.major) return version.major > min.major;
  if (version.minor !== min.minor) return version.minor > min.minor;
  return version.patch >= min.patch;
}

/**
 * The per-service environment file (`~/.homebrew/services/<formula>.env`) was added in Homebrew
 * commit 9a239b2 and first shipped in 6.0.15. Older versions ignore the file.
 */
export const SERVICE_ENV_FILE_SINCE: BrewVersion = { major: 6, minor: 0, patch: 15 };

export function supportsServiceEnvFile(version: BrewVersion | undefined): boolean {
  return version !== undefined && brewVersionAtLeast(version, SERVICE_ENV_FILE_SINCE);
}

function text(value: unknown, max = 4096): string | undefined {
  return typeof value === 'string' && value.length <= max && !hasControl(value) ? value : undefined;
}

function flag(value: unknown): boolean | undefined {
  return typeof value === 'boolean' ? value : undefined;
}

function integer(value: unknown, min: number, max: number): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max ? value : undefined;
}

function toInfo(entry: unknown): BrewServiceInfo | undefined {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return undefined;
  const record = entry as Record<string, unknown>;
  const name = text(record['name'], 256);
  if (name === undefined || name === '') return undefined;
  const info: BrewServiceInfo = { name };
  const fields = {
    serviceName: text(record['service_name'], 512),
    running: flag(record['running']),
    loaded: flag(record['loaded']),
    registered: flag(record['registered']),
    status: text(record['status'], 64),
    user: text(record['user'], 256),
    file: text(record['file']),
    pid: integer(record['pid'], 1, 0x7fffffff),
    exitCode: integer(record['exit_code'], -0x80000000, 0x7fffffff),
  };
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined) Object.assign(info, { [key]: value });
  }
  return info;
}

/**
 * One service from `brew services info --json` output: the entry named `formula` if given, else the
 * first entry. Undefined for anything that is not that JSON.
 */
export function parseBrewServicesInfo(json: string, formula?: string): BrewServiceInfo | undefined {
  if (typeof json !== 'string' || json.length > MAX_INPUT_CHARS) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return undefined;
  }
  const entries = Array.isArray(parsed) ? parsed : [parsed];
  for (const entry of entries.slice(0, 1000)) {
    const info = toInfo(entry);
    if (info !== undefined && (formula === undefined || info.name === formula)) return info;
  }
  return undefined;
}
