/**
 * Pull a model through Ollama's own API: `POST /api/pull {"model", "stream": true}` on the
 * address where the host probe reached it. The download runs inside Ollama's server, so this
 * works the same for every installation (the systemd unit's `ollama` user, the app, brew, snap)
 * with no extra binary. Facts: /work/shared/reference/relay-and-pull.md Part B.
 *
 * The answer is NDJSON (`application/x-ndjson`): one `api.ProgressResponse` per line,
 * `{status, digest?, total?, completed?}` with the numbers omitted when 0. Success is the
 * `success` status only: the wording of the lines before it has changed between versions
 * ("removing any unused layers" became "removing unused layers" in v0.3.7). An error after the
 * stream began is a last line `{"error": …}` with HTTP 200 still set; before it, HTTP 400 with
 * the same object. A stream that ends without `success` (Ollama restarted, the socket dropped)
 * is a failure.
 */
import type { Context } from './context.ts';
import { modelNameProblem } from './model-name.ts';
import { cleanField, oneLine } from './text.ts';

/**
 * Ollama's own client reads the stream with an 8 MB line buffer (api/client.go `stream()`); a
 * longer line is not an answer Ollama sends, and keeping it would let a wrong server fill memory.
 */
export const MAX_LINE_BYTES = 8 * 1024 * 1024;

/**
 * No model has this many layers (a model is a handful: weights, template, params, licence). A
 * stream naming more distinct digests is not a pull, and counting them would grow without bound.
 */
export const MAX_LAYERS = 1000;

/**
 * The request gives up after this long with no byte from Ollama, never after a total time (a
 * 4.7 GB pull takes minutes). While a layer downloads Ollama sends a line every 60 ms, but
 * `verifying sha256 digest` is silent while it hashes the whole blob: 4.7 GB on a slow disk
 * (a laptop HDD at ~50 MB/s, a USB or network disk at ~10 MB/s) is 1.5 to 8 minutes, and a larger
 * model Stigmer is pointed at takes longer still. Ten minutes covers hashing 4.7 GB at 8 MB/s;
 * a silence longer than that is a hung server, and Ctrl-C ends the wait sooner for anyone watching.
 */
export const PULL_SILENCE_MS = 10 * 60 * 1000;

/** One progress line as Ollama sends it, with its numbers checked. */
export interface PullEvent {
  /** Sanitised for a terminal: no control characters, at most 200 characters. */
  status: string;
  /** The layer's full digest, when the line is about a layer. */
  digest?: string;
  /** Bytes of the layer; 0 when absent or not a sane number. */
  total: number;
  /** Bytes of the layer on disk so far, clamped to `total` when total is known. */
  completed: number;
}

export type ParsedLine = { kind: 'event'; event: PullEvent } | { kind: 'error'; message: string } | { kind: 'ignored'; why: string };

/** A byte count: a non-negative safe integer, else 0 (a number past 2^53 has lost its precision and is no size we can trust). */
function byteCount(value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : 0;
}

/** One NDJSON line: a progress event, Ollama's error, or something else (ignored, never thrown). */
export function parsePullLine(line: string): ParsedLine {
  const text = line.trim();
  if (text === '') return { kind: 'ignored', why: 'empty line' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'ignored', why: 'not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { kind: 'ignored', why: 'not a JSON object' };
  const record = value as Record<string, unknown>;
  // The Go client treats any line with a non-empty `error` as the end (api/client.go stream()).
  if (typeof record.error === 'string' && record.error !== '') return { kind: 'error', message: record.error };
  if (typeof record.status !== 'string') return { kind: 'ignored', why: 'no status' };
  const total = byteCount(record.total);
  const completed = byteCount(record.completed);
  const digest = typeof record.digest === 'string' && /^[A-Za-z0-9:_-]{1,200}$/.test(record.digest) ? record.digest : undefined;
  return {
    kind: 'event',
    event: { status: oneLine(cleanField(record.status), 200), digest, total, completed: total > 0 ? Math.min(completed, total) : completed },
  };
}

/**
 * Complete lines out of a stream that arrives in arbitrary pieces: a line may be split across
 * chunks, several may come in one. A line longer than MAX_LINE_BYTES makes `overflow` true and
 * the reader stops collecting (the caller ends the request).
 */
export class NdjsonLines {
  private partial = '';
  overflow = false;

  /** The lines this chunk completes, without their newline. */
  push(chunk: string): string[] {
    if (this.overflow) return [];
    const pieces = (this.partial + chunk).split('\n');
    this.partial = pieces.pop() ?? '';
    // Characters, not bytes: a UTF-8 character is 1–4 bytes, so the bound is at most 4× generous.
    const tooLong = pieces.findIndex((piece) => piece.length > MAX_LINE_BYTES);
    if (tooLong >= 0 || this.partial.length > MAX_LINE_BYTES) {
      this.overflow = true;
      this.partial = '';
      return tooLong >= 0 ? pieces.slice(0, tooLong) : pieces;
    }
    return pieces;
  }

  /** What is left when the stream ends: a last line without its newline. */
  end(): string[] {
    const rest = this.partial;
    this.partial = '';
    return rest.trim() === '' ? [] : [rest];
  }
}

export type PullFailureKind =
  /** pull model manifest: file does not exist — no such model or tag in the registry. */
  | 'unknown-model'
  /** Ollama could not reach its registry or the blob store (DNS, proxy, firewall). */
  | 'network'
  /** no space left on device, where Ollama writes its models. */
  | 'disk-full'
  /** HTTP 4xx/5xx before the stream began: Ollama refused the request. */
  | 'rejected'
  /** Ollama did not answer the request at all (refused, gone). */
  | 'unreachable'
  /** The stream ended, broke off or went silent without `success`. */
  | 'incomplete'
  /** Ctrl-C or another signal. */
  | 'interrupted'
  /** Any other error line from Ollama. */
  | 'other';

export interface PullResult {
  ok: boolean;
  /** Set when !ok. */
  failure?: PullFailureKind;
  /** What Ollama said (its error line or HTTP body), or what went wrong with the request, one line. */
  detail?: string;
  /** The HTTP status, when an answer began. */
  status?: number;
  /** Bytes of every layer the stream reported (its size on disk), summed over digests. */
  bytes: number;
  /** The layer being written when the pull failed: its size, for "how much was needed". */
  lastLayer?: { digest: string; total: number; completed: number };
}

// Ollama's desktop app calls a pull error a network error when it has the `pull model manifest`
// prefix and one of these (app/ui/ui.go L586-636). Blob downloads fail without the prefix (the
// blob store is another host than the registry: ollama/ollama#4992), so here the list alone decides.
const NETWORK_PATTERNS = [
  'connection refused',
  'no such host',
  'timeout',
  'network is unreachable',
  'connection reset',
  'connection timed out',
  'temporary failure',
  'dial tcp',
  'i/o timeout',
  'context deadline exceeded',
  'broken pipe',
  'server misbehaving',
  'proxyconnect',
];

/** Which kind of failure an error text from Ollama is. */
export function classifyPullError(message: string): PullFailureKind {
  const text = message.toLowerCase();
  if (text.includes('file does not exist') && text.includes('pull model manifest')) return 'unknown-model';
  if (text.includes('no space left on device')) return 'disk-full';
  if (NETWORK_PATTERNS.some((pattern) => text.includes(pattern))) return 'network';
  return 'other';
}

/**
 * The folder models live in, read from the error itself: Ollama names the file it failed to
 * write (`write /usr/share/ollama/.ollama/models/blobs/sha256-…-partial: no space left on device`),
 * which is the truth whatever OLLAMA_MODELS says.
 */
export function modelsDirFromError(message: string): string | undefined {
  const match = /(?:write|open|mkdir|rename) (.{1,1000}?)[\\/]blobs[\\/]sha256[-:][0-9a-f]{64}[^:]*: no space left on device/i.exec(message);
  return match?.[1] && !/[\x00-\x1f\x7f]/.test(match[1]) ? match[1] : undefined;
}

/** The error text of a non-2xx answer: Ollama's `{"error": …}`, else the body's first line. */
function rejectionText(body: string, status: number): string {
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed?.error === 'string' && parsed.error !== '') return oneLine(parsed.error, 500);
  } catch {
    // Not JSON: a proxy's HTML page, a wrong server.
  }
  return oneLine(body, 200) || `HTTP ${status} with no body`;
}

export interface PullOptions {
  /** Where the host probe reached Ollama: `http://127.0.0.1:11434`. */
  baseUrl: string;
  model: string;
  /** Each progress event, as it arrives. */
  onEvent?(event: PullEvent): void;
  /** Defaults to PULL_SILENCE_MS. */
  silenceMs?: number;
}

export class InvalidModelNameError extends Error {}

/**
 * Pull `model` and say how it ended. Never throws for what Ollama or the network does; throws
 * InvalidModelNameError before sending anything when the name is not one Ollama's grammar allows.
 */
export async function pullModel(ctx: Context, options: PullOptions): Promise<PullResult> {
  const problem = modelNameProblem(options.model);
  if (problem) throw new InvalidModelNameError(`${JSON.stringify(cleanField(options.model).slice(0, 200))} is not a valid Ollama model name: ${problem}`);
  const lines = new NdjsonLines();
  const layers = new Map<string, number>();
  let status: number | undefined;
  let errorBody = '';
  let ollamaError: string | undefined;
  let succeeded = false;
  let lastLayer: PullResult['lastLayer'];
  let tooManyLayers = false;

  const handle = (line: string) => {
    const parsed = parsePullLine(line);
    if (parsed.kind === 'error') {
      ollamaError = parsed.message;
      return;
    }
    if (parsed.kind !== 'event') return;
    const event = parsed.event;
    if (event.digest && !layers.has(event.digest) && layers.size >= MAX_LAYERS) {
      tooManyLayers = true;
      return;
    }
    if (event.digest && event.total > 0) {
      layers.set(event.digest, event.total);
      lastLayer = { digest: event.digest, total: event.total, completed: event.completed };
    }
    // Only the last line decides: a `success` followed by anything else is not how Ollama ends.
    succeeded = event.status === 'success';
    options.onEvent?.(event);
  };

  const result = await ctx.http.postStream(`${options.baseUrl.replace(/\/$/, '')}/api/pull`, {
    body: JSON.stringify({ model: options.model, stream: true }),
    idleTimeoutMs: options.silenceMs ?? PULL_SILENCE_MS,
    onStatus: (code) => {
      status = code;
    },
    onChunk: (chunk) => {
      if (status !== undefined && (status < 200 || status > 299)) {
        // An error answer is one small object; keep only its start, and stop reading once that
        // is in hand: a proxy or wrong server may never end the body, and the refusal is known.
        if (errorBody.length < 64 * 1024) errorBody += chunk.slice(0, 64 * 1024 - errorBody.length);
        return errorBody.length < 64 * 1024;
      }
      for (const line of lines.push(chunk)) {
        handle(line);
        if (ollamaError !== undefined || tooManyLayers) return false;
      }
      return !lines.overflow;
    },
  });
  const bytes = [...layers.values()].reduce((sum, size) => sum + size, 0);
  const base = { bytes, status, lastLayer };
  if (result.kind === 'error') {
    // Ollama sends `success` after writing the manifest: a signal after it stops nothing.
    if (result.code === 'interrupted' && succeeded) return { ...base, ok: true };
    if (result.code === 'interrupted') return { ...base, ok: false, failure: 'interrupted', detail: result.message };
    if (result.status === undefined) return { ...base, ok: false, failure: 'unreachable', detail: oneLine(result.message) };
    return { ...base, ok: false, failure: 'incomplete', detail: result.code === 'timeout' ? `Ollama sent nothing for ${Math.round((options.silenceMs ?? PULL_SILENCE_MS) / 60_000)} minutes` : oneLine(result.message) };
  }
  if (result.status < 200 || result.status > 299) return { ...base, ok: false, failure: 'rejected', detail: rejectionText(errorBody, result.status) };
  if (ollamaError === undefined && !lines.overflow && !tooManyLayers) for (const line of lines.end()) handle(line);
  if (ollamaError !== undefined) return { ...base, ok: false, failure: classifyPullError(ollamaError), detail: oneLine(ollamaError, 500) };
  if (tooManyLayers) return { ...base, ok: false, failure: 'incomplete', detail: `the answer named more than ${MAX_LAYERS} layers, which no model has` };
  if (lines.overflow) return { ...base, ok: false, failure: 'incomplete', detail: `Ollama sent a line longer than ${MAX_LINE_BYTES / (1024 * 1024)} MB, which is not a progress line` };
  if (!succeeded) return { ...base, ok: false, failure: 'incomplete', detail: 'the answer ended without "success"' };
  return { ...base, ok: true };
}

/** What a person reads about a failed pull: what happened, and the command or step that fixes it. */
export interface PullFailureText {
  message: string;
  fix: string;
}

export interface FailureContext {
  model: string;
  /** Where the model name came from: "STIGMER_LLM_MODEL", "/home/u/.stigmer/config.yaml line 3"… */
  source: string;
  /** The installation's proxy command, when it has one (InstallationCommands.proxy). */
  proxyCommand?: string;
  /** Where this installation keeps models: its OLLAMA_MODELS, else its default (InstallationCommands.modelsDir). */
  modelsDir?: string;
  /** modelsDir is the installation's own OLLAMA_MODELS, not a default. */
  modelsDirConfigured?: boolean;
  /** The same pull again, for pasting: `npx stigmer-setup --pull` or `ollama pull NAME`. */
  retry: string;
  humanBytes(bytes: number): string;
}

export function describePullFailure(result: PullResult, context: FailureContext): PullFailureText {
  const said = result.detail ? ` Ollama said: ${result.detail}` : '';
  const name = context.model;
  switch (result.failure) {
    case 'unknown-model':
      return {
        message: `Ollama's registry has no model ${name} (the name comes from ${context.source}).${said}`,
        fix: `Check the name and tag on https://ollama.com/library, correct it in ${context.source}, and run again.`,
      };
    case 'network':
      return {
        message: `Ollama could not reach its registry to download ${name}: the download runs inside Ollama's server, so a proxy or DNS problem there stops it even when this shell gets online.${said}`,
        fix: context.proxyCommand
          ? `If you need a proxy, set it for the Ollama service, not in this shell: ${context.proxyCommand} — then run: ${context.retry}`
          : `If you need a proxy, set HTTPS_PROXY in the environment Ollama's server starts with (not in this shell), restart Ollama, then run: ${context.retry}`,
      };
    case 'disk-full': {
      const where =
        modelsDirFromError(result.detail ?? '') ??
        (context.modelsDir === undefined ? "the folder OLLAMA_MODELS names for Ollama's server, else ~/.ollama/models of the user it runs as" : context.modelsDirConfigured ? `${context.modelsDir} (OLLAMA_MODELS)` : `${context.modelsDir} (or OLLAMA_MODELS, when Ollama's service sets it)`);
      const needed = result.lastLayer ? `; the layer it was writing is ${context.humanBytes(result.lastLayer.total)}` : '';
      return {
        message: `The disk where Ollama keeps models is full: ${where}${needed}.${said}`,
        fix: `Free space there (ollama rm a model you no longer use), or point OLLAMA_MODELS at a bigger disk for the Ollama service; then run: ${context.retry}`,
      };
    }
    case 'rejected':
      return {
        message: `Ollama refused to pull ${name} (HTTP ${result.status ?? '?'}).${said}`,
        fix: `Check the model name in ${context.source}; to see Ollama's side: ollama pull ${name}`,
      };
    case 'unreachable':
      return { message: `Ollama did not take the pull request for ${name}: ${result.detail ?? 'no answer'}.`, fix: `Check that Ollama runs (npx stigmer-setup doctor), then run: ${context.retry}` };
    case 'incomplete':
      return {
        message: `The pull of ${name} stopped before Ollama said it succeeded: ${result.detail ?? 'no "success"'}. Ollama keeps what it downloaded.`,
        fix: `Run it again, which resumes it: ${context.retry}`,
      };
    case 'interrupted':
      return { message: `The pull of ${name} was stopped.`, fix: `Run it again, which resumes it: ${context.retry}` };
    default:
      return { message: `Ollama could not pull ${name}.${said}`, fix: `Run it again: ${context.retry}; if it keeps failing, see Ollama's log.` };
  }
}
