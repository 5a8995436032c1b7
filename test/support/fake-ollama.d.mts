// Types for fake-ollama.mjs, so strict TypeScript tests can import its pure functions.

export declare const DEFAULT_VERSION: string;
export declare const DEFAULT_MODELS: string;

/** Result of envconfig.Host() as reimplemented by the stand-in. */
export interface ParsedOllamaHost {
  scheme: string;
  /** Host part; '' means every interface. */
  host: string;
  /** Port text as Ollama keeps it (after the invalid-port fallback). */
  port: string;
  portNumber: number;
  /** net.JoinHostPort(host, port): what Ollama passes to net.Listen. */
  hostPort: string;
  path: string;
  url: string;
  /** The rejected port text when Ollama would log "invalid port, using default"; otherwise null. */
  invalidPort: string | null;
}

export interface BindPlan {
  kind: 'wildcard' | 'ip' | 'hostname';
  /** '::' for the dual-stack wildcard, the IP literal, or the hostname still to resolve. */
  address: string;
  ipv6Only: false;
  port: number;
}

export interface ModelEntry {
  name: string;
  model: string;
  modified_at: string;
  size: number;
  digest: string;
  details: Record<string, unknown>;
}

export declare function envVar(raw: string | undefined): string;
export declare function splitHostPort(hostport: string): { host: string; port: string } | null;
export declare function joinHostPort(host: string, port: string): string;
export declare function parseIP(s: string): Uint8Array | null;
export declare function canonicalIP(s: string): string | null;
export declare function isLoopbackIP(s: string): boolean;
export declare function parseOllamaHost(raw: string | undefined): ParsedOllamaHost;
export declare function bindPlan(parsed: ParsedOllamaHost): BindPlan;
export declare function hostAllowed(
  listenerAddress: string,
  hostHeader: string | undefined,
  opts?: { hostname?: string; localAddresses?: Set<string> },
): boolean;
export declare function modelList(spec: string | undefined): ModelEntry[];

/** Cap on options.num_predict in the stand-in's POST /api/generate. */
export declare const GENERATE_MAX_TOKENS: number;
/** Tokens generated when num_predict is absent or not positive. */
export declare const GENERATE_DEFAULT_TOKENS: number;
/** The stand-in's deterministic token number `i` for `prompt` (leading space included). */
export declare function generatedToken(prompt: string, i: number): string;
/** One thing the stand-in's POST /api/pull sends: a progress object, the last-line error, or a dropped connection. */
export type PullStep = { status: string; digest?: string; total?: number; completed?: number } | { error: string } | { cut: true };
/** The pull scenarios STANDIN_PULL can name, each built from the fixtures in test/fixtures/ollama-pull/. */
export declare const PULL_SCENARIOS: Record<string, () => PullStep[]>;
/** Which scenario STANDIN_PULL ("slow", or "name=scenario,*=scenario") picks for a model name. */
export declare function pullScenarioFor(spec: string | undefined, name: string): string;
/** model.ParseName(name).IsValid() as Ollama's PullHandler applies it. */
export declare function pullNameValid(name: unknown): boolean;
