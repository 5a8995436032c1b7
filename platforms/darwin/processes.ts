/**
 * Which Ollama processes run on the Mac, from one `ps aux` (real captures in test/fixtures/darwin):
 * the desktop app (…/Ollama.app/Contents/MacOS/Ollama), the server it starts
 * (…/Ollama.app/Contents/Resources/ollama serve), and any other `ollama serve` (Homebrew's, or one
 * started by hand).
 */
import type { Context } from '../../scripts/context.ts';
import { describeOllamaCommand, parsePsAux, type OllamaProcessKind } from './parsers/ps.ts';

export interface OllamaProcess {
  pid: number;
  command: string;
  kind: OllamaProcessKind;
  /** The app and its server: the bundle they run from, as ps shows it (not yet checked). */
  bundle?: string;
}

export async function ollamaProcesses(ctx: Context): Promise<OllamaProcess[]> {
  return (await readOllamaProcesses(ctx)) ?? [];
}

/** The Ollama processes, or undefined when ps itself failed (then nobody can say what runs). */
export async function readOllamaProcesses(ctx: Context): Promise<OllamaProcess[] | undefined> {
  const ps = await ctx.exec('ps', ['aux'], { timeoutMs: 10_000 });
  if (ps.exitCode !== 0) return undefined;
  return parsePsAux(ps.stdout).flatMap((process) => {
    const found = describeOllamaCommand(process.command);
    if (!found) return [];
    // A path that had control characters in it is not the path we would read or open: leave it unknown.
    if (process.altered) return [{ pid: process.pid, command: process.command, kind: found.kind }];
    return [found.bundle === undefined ? { pid: process.pid, command: process.command, kind: found.kind } : { pid: process.pid, command: process.command, kind: found.kind, bundle: found.bundle }];
  });
}
