/** The command line, parsed and validated before anything else runs: bad input changes nothing (exit 2). */
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Platform } from './context.ts';
import { parseHostOption, type BindAddress } from './ollama-host.ts';

export type Command = 'setup' | 'doctor' | 'undo';

export interface CliOptions {
  command: Command;
  yes: boolean;
  dryRun: boolean;
  json: boolean;
  host?: BindAddress;
  container?: string;
  platform?: Platform;
  root: string;
  help: boolean;
  version: boolean;
  /** Print the stack trace of an unexpected error (otherwise one line). */
  debug: boolean;
  /**
   * --relay: give Docker's bridge containers a relay to a loopback-only Ollama (Linux, rootful
   * Docker), even when Stigmer itself doesn't need one (Open WebUI, a compose stack).
   */
  relay: boolean;
  /** --pull: pull Stigmer's model when it is missing, without asking (issue 13). */
  pull: boolean;
}

export class UsageError extends Error {}

export const HELP = `Usage: stigmer-setup [setup|doctor|undo] [options]

Make a local Ollama reachable from Stigmer's agent-runner container.

Commands:
  setup     detect → plan → (confirm) → apply → verify → pull the model   (default)
  doctor    read-only: run every check and print findings; exit 1 if any check fails
  undo      restore what setup changed (from its backups), restart, verify

Options:
  -y, --yes                 unattended: take the recommended plan, never prompt
      --dry-run             print the plan (each file with its diff, each command) and change nothing
      --json                print exactly one JSON object on stdout; no other output there
      --host <host:port>    bind address to configure (default: 0.0.0.0 on Ollama's port, 11434)
      --container <name>    container to verify from (default: stigmer-agent-runner when it exists)
      --platform <darwin|win32|linux>   override OS detection
      --root <dir>          treat <dir> as "/" for system paths (/etc/...); per-user paths still
                            come from HOME / USERPROFILE / LOCALAPPDATA
      --pull                when Stigmer's model is missing, pull it through Ollama's API after
                            verifying, without asking (with progress on stderr); --yes alone
                            never starts the download, it prints the command
      --debug               on an unexpected error, print its stack trace too
  -h, --help                show this help
  -V, --version             show the version

Exit codes: 0 done or nothing to do · 1 a step or check failed · 2 bad usage or invalid input
(nothing changed) · 130 cancelled, or stopped by SIGINT (Ctrl-C) · 143 stopped by SIGTERM
· 129 stopped by SIGHUP (the terminal closed) · 149 stopped by SIGBREAK (Ctrl-Break, Windows)
A signal stops the run at its next step (a change being applied finishes or rolls back first);
it then says what is in place, and --json still prints its one object.

Examples:
  npx stigmer-setup --dry-run          # see exactly what would change
  npx stigmer-setup --yes              # apply unattended
  npx stigmer-setup --yes --pull       # apply and pull Stigmer's model: ready in one command
  npx stigmer-setup doctor --json      # machine-readable checks
`;

const PLATFORMS: readonly Platform[] = ['darwin', 'win32', 'linux'];
const COMMANDS: readonly Command[] = ['setup', 'doctor', 'undo'];

export function parseCli(argv: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        yes: { type: 'boolean', short: 'y' },
        'dry-run': { type: 'boolean' },
        json: { type: 'boolean' },
        host: { type: 'string' },
        container: { type: 'string' },
        platform: { type: 'string' },
        root: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
        debug: { type: 'boolean' },
        relay: { type: 'boolean' },
        pull: { type: 'boolean' },
      },
    });
  } catch (error) {
    // parseArgs messages are long and name internals; keep the first sentence.
    throw new UsageError((error as Error).message.split('. ')[0]?.replace(/\.$/, '') ?? 'invalid arguments');
  }
  const { values, positionals } = parsed;
  if (positionals.length > 1) throw new UsageError(`expected one command, got ${JSON.stringify(positionals.join(' '))}`);
  const command = (positionals[0] ?? 'setup') as Command;
  if (!COMMANDS.includes(command)) throw new UsageError(`unknown command ${JSON.stringify(positionals[0])} (use setup, doctor or undo)`);

  let host: BindAddress | undefined;
  if (values.host !== undefined) {
    const result = parseHostOption(values.host);
    if ('error' in result) throw new UsageError(result.error);
    host = result;
  }
  if (values.container !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(values.container)) {
    throw new UsageError(`--container ${JSON.stringify(values.container)} is not a valid container name`);
  }
  if (values.platform !== undefined && !PLATFORMS.includes(values.platform as Platform)) {
    throw new UsageError(`--platform must be one of darwin, win32, linux (got ${JSON.stringify(values.platform)})`);
  }
  if (values.root !== undefined && !path.isAbsolute(values.root)) {
    throw new UsageError(`--root must be an absolute path (got ${JSON.stringify(values.root)})`);
  }
  // The root goes into the undo command we print for pasting: a control character can't.
  if (values.root !== undefined && /[\x00-\x1f\x7f-\x9f]/.test(values.root)) {
    throw new UsageError(`--root must not contain control characters (got ${JSON.stringify(values.root)})`);
  }
  return {
    command,
    yes: values.yes ?? false,
    dryRun: values['dry-run'] ?? false,
    json: values.json ?? false,
    host,
    container: values.container,
    platform: values.platform as Platform | undefined,
    root: values.root ?? '/',
    help: values.help ?? false,
    version: values.version ?? false,
    debug: values.debug ?? false,
    relay: values.relay ?? false,
    pull: values.pull ?? false,
  };
}

/**
 * The text --help or --version print, when that is all argv asks for; undefined for anything
 * else (including invalid input, which the full CLI reports).
 */
export function quickAnswer(argv: string[], version: string): string | undefined {
  try {
    const options = parseCli(argv);
    if (options.help) return HELP;
    if (options.version) return version;
  } catch {
    // The full run reports a usage error with its exit code.
  }
  return undefined;
}
