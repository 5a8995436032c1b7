/**
 * Proxy variables that capture traffic meant for the host (failure catalogue F12). A runner whose
 * HTTP_PROXY is set sends `http://host.docker.internal:11434` to the proxy unless NO_PROXY names
 * the alias; the proxy then answers with an error page (503, HTML) and Ollama never sees the
 * request. The matching follows the rules the agent-runner's clients use (Python's urllib and
 * httpx): a NO_PROXY entry matches the host itself or any name below it, a leading dot is
 * ignored, `*` matches everything, and an optional `:port` must match the port.
 */
import { oneLine } from './text.ts';

export interface ProxySettings {
  /** Where the variables were found, for the report: "the agent-runner's environment". */
  source: string;
  httpProxy?: string;
  httpsProxy?: string;
  noProxy?: string;
}

/** Read HTTP_PROXY / HTTPS_PROXY / NO_PROXY from an environment; the lowercase form wins, as in curl and Python. */
export function proxyFromEnvironment(source: string, get: (name: string) => string | undefined): ProxySettings {
  const pick = (name: string) => {
    const value = get(name.toLowerCase()) ?? get(name);
    return value === undefined || value.trim() === '' ? undefined : oneLine(value, 300);
  };
  return { source, httpProxy: pick('HTTP_PROXY'), httpsProxy: pick('HTTPS_PROXY'), noProxy: pick('NO_PROXY') };
}

/** Whether NO_PROXY exempts this host (and port) from the proxy. */
export function bypassesProxy(noProxy: string | undefined, host: string, port: number): boolean {
  if (!noProxy) return false;
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  for (const raw of noProxy.split(',').slice(0, 200)) {
    let entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    let entryPort: number | undefined;
    const portMatch = /^(.*[^:]):(\d{1,5})$/.exec(entry);
    if (portMatch && !entry.startsWith('[') && (entry.match(/:/g) ?? []).length === 1) {
      entry = portMatch[1] as string;
      entryPort = Number(portMatch[2]);
    }
    entry = entry.replace(/^\[(.*)\]$/, '$1').replace(/^\*?\./, '');
    if (entryPort !== undefined && entryPort !== port) continue;
    if (name === entry || name.endsWith(`.${entry}`)) return true;
  }
  return false;
}

/** The proxy that a plain-HTTP request to host:port would go through, or undefined. */
export function capturingProxy(settings: ProxySettings, host: string, port: number): string | undefined {
  if (!settings.httpProxy) return undefined;
  return bypassesProxy(settings.noProxy, host, port) ? undefined : settings.httpProxy;
}

/** NO_PROXY with the alias (and the bridge address) added, keeping what was there. */
export function noProxyWith(existing: string | undefined, additions: string[]): string {
  const entries = (existing ?? '').split(',').map((entry) => entry.trim()).filter(Boolean);
  for (const addition of additions) if (!entries.includes(addition)) entries.push(addition);
  return entries.join(',');
}
