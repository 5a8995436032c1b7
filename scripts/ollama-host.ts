/**
 * OLLAMA_HOST as Ollama itself reads it (ollama/ollama envconfig/config.go Host(); the table is in
 * ../shared/reference/ollama-facts.md §1), plus the stricter form stigmer-setup accepts for --host.
 */
import net from 'node:net';

export const DEFAULT_PORT = 11434;

export interface BindAddress {
  /** '' means every interface, as for OLLAMA_HOST=":11434". IPv6 without brackets. */
  host: string;
  port: number;
}

/**
 * envconfig.Var: `strings.Trim(strings.TrimSpace(v), "\"'")`, so every run of `"` and `'` at
 * either end goes, matched or not (`"'0.0.0.0'"` and `"0.0.0.0` both mean 0.0.0.0); Host() then
 * trims spaces once more.
 */
export function stripQuotesAndSpace(value: string): string {
  return value.trim().replace(/^["']+/, '').replace(/["']+$/, '').trim();
}

function splitHostPort(hostport: string): { host: string; port: string } | undefined {
  // Go's net.SplitHostPort: "[v6]:port", "host:port", ":port"; a bare v6 address has too many colons.
  const bracketed = /^\[([^\]]*)\]:([^:]*)$/.exec(hostport);
  if (bracketed) return { host: bracketed[1] ?? '', port: bracketed[2] ?? '' };
  const colon = hostport.lastIndexOf(':');
  if (colon < 0) return undefined;
  const host = hostport.slice(0, colon);
  if (host.includes(':') || host.includes('[') || host.includes(']')) return undefined;
  return { host, port: hostport.slice(colon + 1) };
}

/** A DNS name as a listener can be given one: letters, digits, '-' and '.', at most 253 characters. */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/;

/**
 * Why a configured OLLAMA_HOST (read from a unit, an env file, another process) can't be used as
 * an address, or undefined when it can. Ollama itself accepts almost anything here and then fails
 * to listen (`[::1:`, a space) or binds a link-local address with a zone id (`[fe80::1%eth0]`)
 * that no URL we build can carry. Callers report the reason as a finding and go on: a bad value
 * someone else wrote must never end a run with `Invalid URL`.
 */
export function ollamaHostProblem(raw: string): string | undefined {
  if (/[\x00-\x1f\x7f]/.test(raw)) return 'it holds a control character';
  const { host } = parseOllamaHost(raw);
  if (host === '') return undefined;
  if (host.includes('%')) return 'it names an IPv6 zone id (fe80::1%eth0), which stigmer-setup does not support';
  if (/\s/.test(host)) return 'its host part holds a space';
  if (net.isIP(host) !== 0 || HOST_NAME.test(host)) return undefined;
  return `${JSON.stringify(host)} is neither an IP address nor a host name`;
}

/** Where an `ollama serve` started with this OLLAMA_HOST value binds. */
export function parseOllamaHost(raw: string | undefined): BindAddress {
  const value = stripQuotesAndSpace(raw ?? '');
  let defaultPort = DEFAULT_PORT;
  let rest = value;
  const schemeEnd = value.indexOf('://');
  if (schemeEnd >= 0) {
    const scheme = value.slice(0, schemeEnd);
    rest = value.slice(schemeEnd + 3);
    if (scheme === 'http') defaultPort = 80;
    else if (scheme === 'https') defaultPort = 443;
  }
  rest = rest.split('/')[0] ?? '';
  const split = splitHostPort(rest);
  let host: string;
  let portText: string;
  if (split) {
    host = split.host;
    portText = split.port;
  } else {
    // No port: the whole thing is the host ("1.2.3.4", "::1", "[::]"), or 127.0.0.1 when empty.
    host = rest.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
    portText = String(defaultPort);
  }
  const port = /^\d+$/.test(portText) ? Number(portText) : Number.NaN;
  // An unparsable or out-of-range port makes Ollama log "invalid port, using default".
  return { host, port: Number.isInteger(port) && port >= 0 && port <= 65535 ? port : defaultPort };
}

export function formatBindAddress(address: BindAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

export function sameBindAddress(a: BindAddress, b: BindAddress): boolean {
  return a.port === b.port && bindScope(a.host) === bindScope(b.host) && (bindScope(a.host) === 'wildcard' || a.host === b.host);
}

export type BindScope = 'loopback' | 'wildcard' | 'specific';

/** How far a listener on this address reaches. '' and 0.0.0.0 and :: are every interface. */
export function bindScope(host: string): BindScope {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (bare === '' || bare === '*' || bare === '0.0.0.0' || bare === '::' || bare === '::ffff:0.0.0.0') return 'wildcard';
  if (bare === 'localhost' || bare === '::1' || /^127\./.test(bare) || /^::ffff:127\./i.test(bare)) return 'loopback';
  return 'specific';
}

/**
 * Validate the --host option. Stricter than Ollama on purpose: an IP literal and an explicit port,
 * because `http://0.0.0.0` quietly means port 80 and a host name binds wherever it resolves today.
 * The value ends up inside a systemd unit line, so nothing but an address may pass.
 */
export function parseHostOption(value: string): BindAddress | { error: string } {
  const example = 'use host:port with an IP address, e.g. 0.0.0.0:11434 or [::]:11434';
  // JSON quoting keeps the error on one line whatever the input holds (newlines, quotes).
  const shown = JSON.stringify(value);
  // systemd expands % specifiers inside Environment= (%h is a home folder), and an IPv6 zone id
  // (fe80::1%eth0) is silently dropped there: neither can be written into a unit as meant.
  if (value.includes('%')) {
    const zone = /^\[?[0-9a-f:.]+%/i.test(value) ? ': IPv6 zone ids (fe80::1%eth0) are not supported' : ": systemd would expand it as a specifier";
    return { error: `--host ${shown} contains '%'${zone}; ${example}` };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    const hint = /^http:\/\/[^/]*$/i.test(value) && !/:\d+$/.test(value) ? ' (Ollama would read it as port 80)' : '';
    return { error: `--host ${shown} has a URL scheme${hint}; ${example}` };
  }
  const split = splitHostPort(value);
  if (!split) return { error: `--host ${shown} has no port; ${example}` };
  const { host, port } = split;
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    return { error: `--host ${shown} has an invalid port ${JSON.stringify(port)} (1-65535); ${example}` };
  }
  if (host !== '' && net.isIP(host) === 0) {
    return { error: `--host ${shown} is not an IP address; ${example}` };
  }
  // ":11434" is Ollama's own spelling of every interface; store it the way people read it.
  return { host: host === '' ? '0.0.0.0' : host, port: Number(port) };
}

export interface UrlEndpoint {
  /** The host name or address, IPv6 without brackets. */
  host: string;
  /** The port written in the URL, else the scheme's default (443 for https:, 80 otherwise). */
  port: number;
  /** Whether the URL writes its port (a URL without one means 80 or 443, never 11434). */
  explicitPort: boolean;
  protocol: string;
}

/** Where a client of this URL connects (OLLAMA_BASE_URL, Stigmer's llm.base_url); undefined when it is no URL. */
export function urlEndpoint(url: string): UrlEndpoint | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port ? Number(parsed.port) : parsed.protocol === 'https:' ? 443 : 80,
    explicitPort: parsed.port !== '',
    protocol: parsed.protocol,
  };
}
