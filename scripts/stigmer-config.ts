/**
 * Stigmer's own configuration, `~/.stigmer/config.yaml`, as its Go CLI resolves it: an
 * environment variable wins over the file, the file over the built-in default
 * (client-apps/cli/internal/cli/config/config.go, GetDefault). The file is the user's, so it is
 * read like anything else from outside: a malformed file is a finding that names the file and the
 * line, never a crash, and nothing in it is trusted beyond being a short string.
 */
import type { parseDocument as ParseDocument } from 'yaml';
import type { Context } from './context.ts';
import { oneLine } from './text.ts';
import type { PlatformSupport } from '../platforms/types.ts';

/** Stigmer's defaults for a local Ollama backend (GetDefault). */
export const STIGMER_DEFAULTS = { provider: 'ollama', model: 'qwen2.5-coder:7b', baseUrl: 'http://localhost:11434' } as const;

export interface StigmerSetting {
  value: string;
  /** "STIGMER_LLM_MODEL", "config.yaml" or "default": where Stigmer's CLI takes it from. */
  from: string;
  /** The line of config.yaml it is on, when it comes from there. */
  line?: number;
}

export interface StigmerConfig {
  path: string;
  state: 'missing' | 'ok' | 'malformed' | 'unreadable';
  /** What is wrong with the file, and where, when it can't be used. */
  problem?: { line?: number; message: string };
  provider: StigmerSetting;
  model: StigmerSetting;
  baseUrl: StigmerSetting;
}

/** llm.* under backend.local, each a string or absent. */
function llmSection(document: unknown): Record<string, string | undefined> | string {
  if (document === null || document === undefined) return {};
  if (typeof document !== 'object' || Array.isArray(document)) return 'the top level is not a mapping of keys';
  const backend = (document as Record<string, unknown>).backend;
  if (backend === undefined || backend === null) return {};
  if (typeof backend !== 'object' || Array.isArray(backend)) return '`backend` is not a mapping';
  const local = (backend as Record<string, unknown>).local;
  if (local === undefined || local === null) return {};
  if (typeof local !== 'object' || Array.isArray(local)) return '`backend.local` is not a mapping';
  const llm = (local as Record<string, unknown>).llm;
  if (llm === undefined || llm === null) return {};
  if (typeof llm !== 'object' || Array.isArray(llm)) return '`backend.local.llm` is not a mapping';
  const section: Record<string, string | undefined> = {};
  for (const key of ['provider', 'model', 'base_url']) {
    const value = (llm as Record<string, unknown>)[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string' && typeof value !== 'number') return `\`backend.local.llm.${key}\` is not a string`;
    section[key] = oneLine(String(value), 200);
  }
  return section;
}

/** Where a key sits in the file, for a finding that points at the line. */
function lineOf(text: string, key: string): number | undefined {
  const index = text.split('\n').slice(0, 10_000).findIndex((line) => new RegExp(`^\\s*${key}\\s*:`).test(line));
  return index >= 0 ? index + 1 : undefined;
}

/** The last line, up to `before`, with an odd number of one kind of quote: where an unclosed quoted value starts. */
function unclosedQuoteLine(text: string, before: number | undefined): { line: number; quote: string } | undefined {
  const lines = text.split('\n').slice(0, Math.min(before ?? 10_000, 10_000));
  for (let index = lines.length - 1; index >= 0; index--) {
    const line = (lines[index] as string).replace(/\s#.*$/, '');
    for (const quote of ['"', "'"]) {
      if ((line.split(quote).length - 1) % 2 === 1) return { line: index + 1, quote };
    }
  }
  return undefined;
}

/**
 * `parseYaml` is yaml's parseDocument, passed in because the library is loaded only when there is
 * a file to read (most machines have none, and loading it costs more than the rest of doctor's start).
 */
export function parseStigmerConfig(path: string, text: string | undefined, env: Readonly<Record<string, string | undefined>>, parseYaml?: typeof ParseDocument): StigmerConfig {
  let file: Record<string, string | undefined> = {};
  let state: StigmerConfig['state'] = text === undefined ? 'missing' : 'ok';
  let problem: StigmerConfig['problem'];
  if (text !== undefined) {
    if (!parseYaml) throw new Error('parseStigmerConfig needs the yaml parser to read a file');
    // Aliases are capped so a "billion laughs" file can't blow up memory.
    const document = parseYaml(text, { prettyErrors: true, uniqueKeys: false });
    const error = document.errors[0];
    if (error) {
      state = 'malformed';
      problem = { line: error.linePos?.[0]?.line, message: oneLine(error.message.split('\n')[0] ?? error.code, 200) };
      // The parser notices a missing closing quote only where the file ends; point at the line that opened it.
      const opened = error.code === 'MISSING_CHAR' ? unclosedQuoteLine(text, problem.line) : undefined;
      if (opened) problem = { line: opened.line, message: `the ${opened.quote === '"' ? 'double' : 'single'} quote opened on this line is never closed` };
    } else {
      let section: ReturnType<typeof llmSection>;
      try {
        section = llmSection(document.toJS({ maxAliasCount: 50 }));
      } catch (thrown) {
        section = oneLine((thrown as Error).message, 200);
      }
      if (typeof section === 'string') {
        state = 'malformed';
        const key = /`([^`]+)`/.exec(section)?.[1]?.split('.').at(-1);
        problem = { line: key ? lineOf(text, key) : undefined, message: section };
      } else {
        file = section;
      }
    }
  }
  const resolve = (variable: string, key: string, fallback: string): StigmerSetting => {
    const fromEnv = env[variable];
    if (fromEnv !== undefined && fromEnv.trim() !== '') return { value: oneLine(fromEnv, 200), from: variable };
    const fromFile = file[key];
    if (fromFile !== undefined && fromFile !== '') return { value: fromFile, from: 'config.yaml', line: text === undefined ? undefined : lineOf(text, key) };
    return { value: fallback, from: 'default' };
  };
  return {
    path,
    state,
    problem,
    provider: resolve('STIGMER_LLM_PROVIDER', 'provider', STIGMER_DEFAULTS.provider),
    model: resolve('STIGMER_LLM_MODEL', 'model', STIGMER_DEFAULTS.model),
    baseUrl: resolve('STIGMER_LLM_BASE_URL', 'base_url', STIGMER_DEFAULTS.baseUrl),
  };
}

/**
 * yaml's parseDocument. yaml is CommonJS for Node: bundled, its dynamic import yields the module
 * as `default`; Node and vitest also expose its named exports. Either way, the same function.
 */
async function loadYamlParser(): Promise<typeof ParseDocument> {
  const yaml = (await import('yaml')) as { parseDocument?: typeof ParseDocument; default?: { parseDocument?: typeof ParseDocument } };
  const parse = yaml.parseDocument ?? yaml.default?.parseDocument;
  if (!parse) throw new Error('the yaml library has no parseDocument');
  return parse;
}

export async function readStigmerConfig(ctx: Context, support: PlatformSupport): Promise<StigmerConfig> {
  const home = support.home(ctx.env);
  const path = support.path.join(home, '.stigmer', 'config.yaml');
  let text: string | undefined;
  try {
    // A dotfiles checkout may link it: following a symlink to read is harmless; a FIFO or a
    // folder is refused without blocking.
    // Never a relative path (HOME unset or relative): that would read a file from the current folder.
    text = home && support.path.isAbsolute(path) ? await ctx.fs.readText(path, { follow: true }) : undefined;
  } catch (error) {
    const config = parseStigmerConfig(path, undefined, ctx.env);
    return { ...config, state: 'unreadable', problem: { message: oneLine((error as Error).message, 200) } };
  }
  const parseYaml = text === undefined ? undefined : await loadYamlParser();
  return parseStigmerConfig(path, text, ctx.env, parseYaml);
}
