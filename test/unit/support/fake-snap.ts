/**
 * Just enough of the `snap` command for unit tests, which can't run snapd. It keeps snapd's own
 * rules as read in canonical/snapd (cmd/snapd/cli/cmd_get.go, cmd_set.go, client/clientutil/config.go,
 * overlord/configstate/config/transaction.go), not our renderer's:
 *   - options are JSON values (strings, numbers, nested tables); `set k=v` parses v as JSON when it
 *     can and keeps it as a string otherwise, `-t` takes only JSON, `-s` only a string, `k!` and a
 *     null value unset, and a set replaces the whole value at that key;
 *   - `get k` prints a string as is, a table as JSON with a WARNING on stderr (no terminal), anything
 *     else as JSON; `get -d k` prints `{"k": value}` indented with tabs (json.MarshalIndent, which
 *     also writes <, > and & as \u003c, \u003e, \u0026);
 *   - a missing option is `error: snap "ollama" has no "k" configuration option`, exit 1;
 *   - reading or writing options needs root: anyone else gets `error: access denied (try with sudo)`;
 *   - `list ollama` for a snap that is not there is `error: no matching snaps installed`, exit 1.
 */
import type { ExecResult } from '../../../scripts/context.ts';
import { failed, NOT_FOUND, ok } from './context.ts';

function goJson(value: unknown): string {
  return JSON.stringify(value, null, '\t').replace(/[<>&\u2028\u2029]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export class FakeSnapd {
  installed = true;
  /** The ollama snap's options, as snapd holds them. */
  config: Record<string, unknown> = {};
  /** Answer the next `snap <verb>` with this instead (a transient failure, say). */
  failNext: { verb: string; result: ExecResult } | undefined;
  restarts = 0;
  /** Whether the commands run as root (directly, or through sudo). */
  constructor(private readonly asRoot = true) {}

  /** `sudo [-n] snap …` and `snap …`, as an ExecScript would see them. */
  exec(command: string, args: string[]): ExecResult {
    if (command === 'sudo') {
      const rest = args[0] === '-n' ? args.slice(1) : args;
      return rest[0] === 'snap' ? this.snap(rest.slice(1), true) : NOT_FOUND;
    }
    return command === 'snap' ? this.snap(args, this.asRoot) : NOT_FOUND;
  }

  private snap(args: string[], root: boolean): ExecResult {
    const verb = args[0] ?? '';
    if (this.failNext?.verb === verb) {
      const { result } = this.failNext;
      this.failNext = undefined;
      return result;
    }
    const flags = args.slice(1).filter((arg) => arg.startsWith('-'));
    const positional = args.slice(1).filter((arg) => !arg.startsWith('-'));
    if (verb === 'list') {
      return this.installed ? ok('Name    Version  Rev  Tracking       Publisher  Notes\nollama  0.5.7    22   latest/stable  mz2        -\n') : failed('error: no matching snaps installed\n');
    }
    if (!this.installed) return failed(`error: snap "${positional[0]}" is not installed\n`);
    if (verb === 'restart') {
      this.restarts++;
      return ok('Restarted.\n');
    }
    if (!root && (verb === 'get' || verb === 'set' || verb === 'unset')) return failed('error: access denied (try with sudo)\n');
    if (verb === 'get') {
      const key = positional[1] as string;
      if (!(key in this.config)) return failed(`error: snap "ollama" has no "${key}" configuration option\n`);
      const value = this.config[key];
      if (flags.includes('-d')) return ok(`${goJson({ [key]: value })}\n`);
      if (typeof value === 'string') return ok(`${value}\n`);
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        return { exitCode: 0, stdout: `${goJson(value)}\n`, stderr: "WARNING: The output of 'snap get' will become a list with columns - use -d or -l to force the output format.\n" };
      }
      return ok(`${goJson(value)}\n`);
    }
    if (verb === 'set') {
      for (const assignment of positional.slice(1)) {
        const equals = assignment.indexOf('=');
        if (equals < 0 && assignment.endsWith('!')) {
          delete this.config[assignment.slice(0, -1)];
          continue;
        }
        if (equals <= 0) return failed(`error: invalid configuration: ${JSON.stringify(assignment)} (want key=value)\n`);
        const key = assignment.slice(0, equals);
        const text = assignment.slice(equals + 1);
        let value: unknown = text;
        if (!flags.includes('-s')) {
          try {
            value = JSON.parse(text);
          } catch (error) {
            if (flags.includes('-t')) return failed(`error: failed to parse JSON: ${(error as Error).message}\n`);
          }
        }
        if (value === null) delete this.config[key];
        else this.config[key] = value;
      }
      return ok();
    }
    if (verb === 'unset') {
      for (const key of positional.slice(1)) delete this.config[key];
      return ok();
    }
    return NOT_FOUND;
  }
}
