/**
 * Ollama from the Snap Store. A snap does not take its environment from systemd drop-ins; its
 * configure hook reads `snap set ollama host=...` (MemMachine/MemMachine#918). The change is a
 * typed setting, so undo puts back the value it had before the first setup (or unsets it). The
 * option is read and written as snapd's JSON document (`snap get -d`, `snap set -t`), so whatever
 * it held, a string with a newline or a nested table, comes back exactly.
 */
import type { Context } from '../../scripts/context.ts';
import { describeFailure, StepError } from '../../scripts/system-files.ts';
import { MAX_INPUT_CHARS, oneLine } from '../../scripts/text.ts';
import { formatBindAddress, parseOllamaHost, sameBindAddress } from '../../scripts/ollama-host.ts';
import { SETUP_COMMAND } from '../commands.ts';
import { listensAsRequested, type Detection, type Plan, type PlanRequest, type RestartChange, type RestartContext, type SettingStore, type Strategy } from '../types.ts';

export interface SnapDetection extends Detection {
  strategy: 'linux-snap';
  /** The address the host option holds, when it holds a string (undefined: unset, or not a string). */
  host?: string;
  /**
   * The host option exactly as snapd holds it: its JSON document (`"0.0.0.0:11434"`, `{"a":1}`),
   * undefined when unset. This is what the undo record keeps and `snap set -t` puts back.
   */
  hostDocument?: string;
  /** Why the option could not be read: setup then changes nothing. */
  readError?: string;
}

/** Commands to snapd in the C locale: the "not installed" text of `snap list` is translated otherwise. */
const SNAP_ENV = { LC_ALL: 'C' };
const SNAP_TIMEOUT_MS = 15_000;

/**
 * snapd's own answer for an option that is not set: `error: snap "ollama" has no "host"
 * configuration option` (overlord/configstate/config/transaction.go, NoOptionError; the CLI adds
 * "error: " and wraps the line at the terminal's width, so whitespace runs are folded first). Only
 * this answer means unset; any other failure is a failure.
 */
export function isNoSuchOption(stderr: string, snap: string, key: string): boolean {
  return stderr.replace(/\s+/g, ' ').includes(`snap "${snap}" has no "${key}" configuration option`);
}

/** JSON text without the whitespace between tokens; strings (and so every value) are kept byte for byte. */
function compactJson(text: string): string {
  let out = '';
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const char = text[index] as string;
    if (inString) {
      out += char;
      if (char === '\\') out += text[++index] ?? '';
      else if (char === '"') inString = false;
    } else if (char === '"') {
      inString = true;
      out += char;
    } else if (!/\s/.test(char)) {
      out += char;
    }
  }
  return out;
}

/**
 * The document of option `key` in the output of `snap get -d ollama <key>`, which is
 * `{"<key>": <value>}` indented with tabs (Go's json.MarshalIndent). The value's own text is kept
 * (not re-serialised), so a number snapd holds beyond 2^53 is not rounded. Throws on anything else.
 */
export function parseSnapGetDocument(stdout: string, key: string): string {
  const text = stdout.slice(0, MAX_INPUT_CHARS).trim();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`\`snap get -d ollama ${key}\` printed something that is not JSON: ${oneLine(text, 120)}`);
  }
  const prefix = `{${JSON.stringify(key)}:`;
  const compact = compactJson(text);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || Object.keys(parsed).length !== 1 || !(key in parsed) || !compact.startsWith(prefix) || !compact.endsWith('}')) {
    throw new Error(`\`snap get -d ollama ${key}\` printed a document without exactly the ${key} option: ${oneLine(text, 120)}`);
  }
  return compact.slice(prefix.length, -1);
}

/**
 * `snap get/set/unset ollama <key>`: the snap's configuration options. A value here is the
 * option's JSON document, read with `snap get -d` and written back with `snap set -t`, so a string
 * with a newline, a number, or a nested table of keys is restored exactly as it was.
 */
export const snapStore: SettingStore = {
  id: 'snap',
  privileged: true,
  async read(ctx: Context, key: string) {
    let argv = ['snap', 'get', '-d', 'ollama', key];
    let get = await ctx.exec('snap', argv.slice(1), { timeoutMs: SNAP_TIMEOUT_MS, env: SNAP_ENV });
    // snapd lets only root read a snap's options ("access denied (try with sudo)", daemon/access.go).
    // Never prompt here: this runs while detecting; `sudo -n` works when sudo needs no password now.
    if (!ctx.isRoot && !get.failure && get.exitCode !== 0 && /access denied/.test(get.stderr)) {
      argv = ['sudo', '-n', ...argv];
      get = await ctx.exec('sudo', argv.slice(1), { timeoutMs: SNAP_TIMEOUT_MS, env: SNAP_ENV });
    }
    if (!get.failure && get.exitCode !== 0 && isNoSuchOption(get.stderr, 'ollama', key)) return undefined;
    if (get.failure || get.exitCode !== 0) {
      const why = describeFailure(argv, get, SNAP_TIMEOUT_MS).replace(/[.\s]*$/, '');
      throw new StepError(`Could not read the ollama snap's ${key} option: ${why}. Only snapd's own "has no such option" answer means it is unset, so stigmer-setup stops here. Nothing was changed.`);
    }
    try {
      return parseSnapGetDocument(get.stdout, key);
    } catch (error) {
      throw new StepError(`Could not read the ollama snap's ${key} option: ${(error as Error).message}. Nothing was changed.`);
    }
  },
  command(key, value) {
    // -t: the value is a JSON document, taken strictly as one (snapd 2.52+, cmd_set.go).
    return { argv: value === undefined ? ['snap', 'unset', 'ollama', key] : ['snap', 'set', '-t', 'ollama', `${key}=${value}`] };
  },
};

/**
 * Whether the ollama snap is installed: false only for snapd's own "no matching snaps installed"
 * answer (cmd/snap/cmd_list.go), undefined when `snap list` fails some other way.
 */
async function installed(ctx: Context): Promise<boolean | undefined> {
  const list = await ctx.exec('snap', ['list', 'ollama'], { timeoutMs: SNAP_TIMEOUT_MS, env: SNAP_ENV });
  if (!list.failure && list.exitCode === 0) return true;
  if (!list.failure && /no matching snaps installed/.test(list.stderr)) return false;
  return undefined;
}

async function detect(ctx: Context): Promise<SnapDetection | undefined> {
  const list = await ctx.exec('snap', ['list', 'ollama'], { timeoutMs: SNAP_TIMEOUT_MS, env: SNAP_ENV });
  if (list.exitCode !== 0) return undefined;
  try {
    return snapDetectionOf(await snapStore.read(ctx, 'host'));
  } catch (error) {
    const readError = (error as Error).message;
    return {
      ...snapDetectionOf(undefined),
      readError,
      problems: [{ status: 'warn', message: "The ollama snap's host option could not be read.", why: readError, fix: 'sudo snap get -d ollama host' }],
    };
  }
}

/** What detect reports for a snap whose host option holds the string `host` (undefined: unset). */
export function snapDetection(host: string | undefined): SnapDetection {
  return snapDetectionOf(host === undefined ? undefined : JSON.stringify(host));
}

/** What detect reports for a snap whose host option holds this JSON document (undefined: unset). */
export function snapDetectionOf(hostDocument: string | undefined): SnapDetection {
  const value: unknown = hostDocument === undefined ? undefined : JSON.parse(hostDocument);
  const host = typeof value === 'string' ? value : undefined;
  return {
    strategy: 'linux-snap',
    description: 'snap package ollama',
    host,
    hostDocument,
    configuredHost: host,
    configuredIn: host === undefined ? undefined : 'snap get ollama host',
  };
}

function restartChange({ elevate }: RestartContext): RestartChange {
  return { type: 'restart', strategy: 'linux-snap', steps: [[...elevate, 'snap', 'restart', 'ollama']], privileged: elevate.length > 0 };
}

function plan(detection: SnapDetection, request: PlanRequest): Plan {
  const value = formatBindAddress(request.target);
  const result: Plan = { strategy: 'linux-snap', target: request.target, changes: [], summary: '', blockers: [], warnings: [] };
  if (detection.readError !== undefined) {
    // Setting it now would record "unset" for a value we could not see, and undo would delete it.
    result.summary = "The ollama snap's host option could not be read, so nothing will be changed.";
    result.blockers.push({ message: detection.readError, fix: 'Check that `sudo snap get -d ollama host` works (snapd running, the snap installed), then run stigmer-setup again.' });
    return result;
  }
  if (detection.hostDocument !== undefined && detection.host === undefined) {
    result.warnings.push(`The ollama snap's host option holds ${oneLine(detection.hostDocument, 200)}, not an address; setup replaces it, and undo puts it back exactly.`);
  }
  if (detection.host !== undefined && sameBindAddress(parseOllamaHost(detection.host), request.target)) {
    if (listensAsRequested(request)) {
      result.summary = `The ollama snap already has host=${detection.host}.`;
      return result;
    }
    result.changes = [restartChange(request)];
    result.summary = `The ollama snap has host=${detection.host}, but the running Ollama has not picked it up: restart it.`;
    return result;
  }
  result.changes = [
    {
      type: 'setting',
      store: 'snap',
      key: 'host',
      before: detection.hostDocument,
      after: JSON.stringify(value),
      privileged: request.elevate.length > 0,
      argv: [...request.elevate, ...snapStore.command('host', JSON.stringify(value)).argv],
    },
    restartChange(request),
  ];
  result.summary = `Set the ollama snap's host option to ${value} and restart it.`;
  return result;
}

export const snapStrategy: Strategy<SnapDetection> = {
  id: 'linux-snap',
  detect,
  plan,
  persistent: true,
  commands: () => ({
    start: 'sudo snap start ollama',
    restart: 'sudo snap restart ollama',
    logs: 'sudo snap logs ollama -n 50',
    widen: SETUP_COMMAND,
    stop: 'sudo snap stop --disable ollama',
    upgrade: 'sudo snap refresh ollama',
  }),
  restartChange,
  installed,
  settings: [{ store: 'snap', key: 'host' }],
};
