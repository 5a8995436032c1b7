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
  command: string;
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
    processes.push({ user: cleanField(m[1] ?? ''), pid, command: cleanField(m[3] ?? '') });
  }
  return processes;
}

export type OllamaProcessKind = 'app' | 'app-server' | 'server' | 'runner' | 'updater';

/** What an Ollama-related command line is, or undefined if it is not one. */
export function classifyOllamaCommand(command: string): OllamaProcessKind | undefined {
  const argv = command.trim().split(/\s+/);
  const exe = argv[0] ?? '';
  const base = exe.slice(exe.lastIndexOf('/') + 1);
  const inApp = /\/Ollama\.app\/Contents\//.test(exe);
  if (inApp && exe.endsWith('/Contents/MacOS/Ollama')) return 'app';
  if (inApp && base === 'ShipIt') return 'updater';
  if (base !== 'ollama') return undefined;
  if (argv[1] === 'serve') return inApp ? 'app-server' : 'server';
  if (argv[1] === 'runner') return 'runner';
  return undefined;
}
