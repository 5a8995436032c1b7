/**
 * Parser for macOS `ps aux` output, and a classifier for the Ollama processes in it.
 *
 * The columns are USER PID %CPU %MEM VSZ RSS TT STAT STARTED TIME COMMAND; COMMAND is the rest of
 * the line and keeps its spaces. The Ollama processes seen in a real capture (test/fixtures/darwin):
 *
 *   /Applications/Ollama.app/Contents/Resources/ollama serve           the app's server
 *   /Applications/Ollama.app/Contents/Resources/ollama runner --model … a model runner, child of serve
 *   /Applications/Ollama.app/Contents/Frameworks/Squirrel.framework/Resources/ShipIt …  the updater
 *
 * and the app itself is /Applications/Ollama.app/Contents/MacOS/Ollama (CFBundleExecutable in the
 * bundle's Info.plist). Never throws.
 */
import { boundedLines, MAX_LINE_CHARS, parseDecimal, cleanField } from '../../../scripts/text.ts';

export interface PsProcess {
  user: string;
  pid: number;
  /** The command with control characters and escape sequences removed, for showing. */
  command: string;
  /** The command as printed held control characters: what it names on disk is not what `command` says. */
  altered: boolean;
}

const ROW = /^(\S+)\s+(\d+)\s+(?:\S+\s+){8}(\S.*)$/;

/** The processes in `ps aux` (or `ps aux | grep …`) output. The header and malformed lines are skipped. */
export function parsePsAux(text: string): PsProcess[] {
  const processes: PsProcess[] = [];
  for (const line of boundedLines(text)) {
    if (line.length > MAX_LINE_CHARS) continue;
    const m = ROW.exec(line.trim());
    if (m === null) continue;
    const pid = parseDecimal(m[2]);
    if (pid === undefined) continue;
    const command = cleanField(m[3] ?? '');
    processes.push({ user: cleanField(m[1] ?? ''), pid, command, altered: command !== (m[3] ?? '') });
  }
  return processes;
}

export type OllamaProcessKind = 'app' | 'app-server' | 'server' | 'runner' | 'updater';

export interface OllamaCommand {
  kind: OllamaProcessKind;
  /** For the app and its server: the bundle the executable lives in (…/Ollama.app). */
  bundle?: string;
}

/**
 * `ps aux` joins argv with spaces, so a bundle path with a space in it ("/Users/ada/My Apps/
 * Ollama.app") can't be split off by whitespace. The app and its server are recognised by what
 * follows the bundle instead: Contents/MacOS/Ollama (CFBundleExecutable) and Contents/Resources/
 * ollama serve. The shortest absolute path ending in ".app" before it is the bundle; the caller
 * still checks that it exists and is Ollama's before relying on it.
 */
const APP_EXECUTABLE = /^(\/[^\n]*?\.app)\/Contents\/MacOS\/Ollama(?:\s|$)/;
const APP_SERVER = /^(\/[^\n]*?\.app)\/Contents\/Resources\/ollama\s+serve(?:\s|$)/;

/** What an Ollama-related command line is (and, for the app's processes, its bundle), or undefined. */
export function describeOllamaCommand(command: string): OllamaCommand | undefined {
  const text = command.trim();
  const app = APP_EXECUTABLE.exec(text);
  if (app) return { kind: 'app', bundle: app[1] as string };
  const appServer = APP_SERVER.exec(text);
  if (appServer) return { kind: 'app-server', bundle: appServer[1] as string };
  const argv = text.split(/\s+/);
  const exe = argv[0] ?? '';
  const base = exe.slice(exe.lastIndexOf('/') + 1);
  const inApp = /\.app\/Contents\//.test(exe);
  if (inApp && base === 'ShipIt') return { kind: 'updater' };
  if (base !== 'ollama') return undefined;
  if (argv[1] === 'serve') return { kind: 'server' };
  if (argv[1] === 'runner') return { kind: 'runner' };
  return undefined;
}

/** What an Ollama-related command line is, or undefined if it is not one. */
export function classifyOllamaCommand(command: string): OllamaProcessKind | undefined {
  return describeOllamaCommand(command)?.kind;
}
