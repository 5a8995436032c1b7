/**
 * Helpers for running inside WSL: what `/proc/version` says, the default gateway from
 * `ip route show default`, and the `networkingMode` set in `%USERPROFILE%\.wslconfig`.
 *
 * /proc/version (captures in test/fixtures/win32):
 *   WSL 1: `Linux version 4.4.0-18985-Microsoft (Microsoft@Microsoft.com) …` (also `3.4.0-Microsoft`).
 *   WSL 2: `Linux version 5.4.72-microsoft-standard-WSL2 (oe-user@oe-host) …`; kernels before 5.4
 *          say `4.19.67-microsoft-standard` with no `-WSL2`, and a user-built kernel keeps the suffix
 *          but not the `oe-user@oe-host` builder. Matching is case-insensitive: the check
 *          `grep Microsoft /proc/version` suggested in microsoft/WSL#4071 misses WSL 2, which
 *          leoheck/kiri#28 and dockcross/dockcross#451 had to fix. A custom kernel may drop
 *          "microsoft" entirely (peseoane/linux-kernels-wsl2#7); then this says "not WSL".
 *
 * .wslconfig is read the way WSL's own parser reads it (microsoft/WSL src/shared/configfile):
 * `[section]` headers, `key = value`, `#` comments on their own line or after a value or header,
 * double quotes around a value, section and key names compared without regard to case. A key
 * before any section header is not `wsl2.…` and WSL ignores it (microsoft/WSL#11540). WSL accepts
 * both `wsl2.networkingMode` and the older `experimental.networkingMode` as the same setting; the
 * first one in the file wins and a second one is reported as a duplicate and ignored.
 *
 * Nothing here throws; work is bounded by text.ts.
 */
import { boundedLines, ipFamily, MAX_LINE_CHARS, cleanField } from '../../../scripts/text.ts';

/** Does this /proc/version come from a WSL kernel? */
export function isWsl(procVersion: string): boolean {
  const first = boundedLines(procVersion)[0] ?? '';
  return /microsoft/i.test(first.slice(0, MAX_LINE_CHARS));
}

/** 1 or 2 for a WSL kernel's /proc/version, undefined if it cannot tell. */
export function wslVersion(procVersion: string): 1 | 2 | undefined {
  const first = (boundedLines(procVersion)[0] ?? '').slice(0, MAX_LINE_CHARS);
  const release = /^Linux version (\S+)/.exec(first)?.[1] ?? '';
  if (/-microsoft-standard/i.test(release)) return 2;
  if (/-Microsoft$/.test(release)) return 1;
  return undefined;
}

export interface DefaultRoute {
  gateway: string;
  family: 4 | 6;
  device?: string;
}

/** The first `default via <address> [dev <name>]` line of `ip route` output. */
export function parseDefaultGateway(ipRoute: string): DefaultRoute | undefined {
  for (const line of boundedLines(ipRoute)) {
    if (line.length > MAX_LINE_CHARS) continue;
    const m = /^default\s+via\s+(\S{1,64})(?:\s|$)/.exec(line.trim());
    if (m === null) continue;
    const gateway = m[1] ?? '';
    const family = ipFamily(gateway);
    if (family === undefined) continue;
    const route: DefaultRoute = { gateway, family };
    const dev = /\sdev\s+([A-Za-z0-9_.@-]{1,32})(?:\s|$)/.exec(line);
    if (dev?.[1] !== undefined) route.device = dev[1];
    return route;
  }
  return undefined;
}

export interface WslConfigEntry {
  /** Lower-cased section name, '' before the first header. */
  section: string;
  key: string;
  value: string;
  /** 1-based line number. */
  line: number;
}

const MAX_ENTRIES = 1000;

function configValue(raw: string): string {
  let out = '';
  let quoted = false;
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i];
    if (ch === '"') {
      quoted = !quoted;
      continue;
    }
    if (ch === '\\' && raw[i + 1] === '"') {
      out += '"';
      i++;
      continue;
    }
    if (ch === '#' && !quoted) break;
    out += ch;
  }
  return cleanField(out.trim()).slice(0, 1024);
}

/** The `key = value` entries of a .wslconfig, with the section each one is in. */
export function parseWslConfig(text: string): WslConfigEntry[] {
  const entries: WslConfigEntry[] = [];
  let section = '';
  const lines = boundedLines(text);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '' || line.startsWith('#') || line.length > MAX_LINE_CHARS) continue;
    const header = /^\[([A-Za-z][A-Za-z0-9]{0,63})\]\s*(?:#.*)?$/.exec(line);
    if (header !== null) {
      section = (header[1] ?? '').toLowerCase();
      continue;
    }
    if (line.startsWith('[')) {
      section = ''; // a malformed header: WSL warns; we treat what follows as in no known section
      continue;
    }
    const pair = /^([A-Za-z][A-Za-z0-9]{0,63})\s*=(.*)$/.exec(line);
    if (pair === null) continue;
    entries.push({ section, key: pair[1] ?? '', value: configValue(pair[2] ?? ''), line: i + 1 });
    if (entries.length >= MAX_ENTRIES) break;
  }
  return entries;
}

/** The networkingMode setting WSL would use from this .wslconfig, or undefined if none applies. */
export function wslConfigNetworkingMode(text: string): WslConfigEntry | undefined {
  return parseWslConfig(text).find(
    (entry) => (entry.section === 'wsl2' || entry.section === 'experimental') && entry.key.toLowerCase() === 'networkingmode',
  );
}
