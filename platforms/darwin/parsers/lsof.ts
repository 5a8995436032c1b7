/**
 * Parser for `lsof -nP -iTCP:<port> -sTCP:LISTEN` (or `lsof -iTCP -sTCP:LISTEN -n -P`) on macOS.
 *
 * The columns are COMMAND PID USER FD TYPE DEVICE SIZE/OFF NODE NAME, and for a TCP socket lsof
 * appends the state in parentheses, so a listening row is:
 *
 *   ollama  6574 suresh  3u  IPv6  0x…  0t0  TCP *:11434 (LISTEN)
 *
 * Rules, each taken from a real capture in test/fixtures/darwin (see SOURCES.md there):
 * - Whitespace between columns is not fixed and pastes turn it into tabs, so rows are split on any
 *   whitespace and read from both ends: COMMAND and PID from the left, `TCP NAME (LISTEN)` from the
 *   right. Pasted output sometimes elides DEVICE and SIZE/OFF as `...`; that still parses.
 * - NAME is `*:PORT`, `a.b.c.d:PORT` or `[v6]:PORT`. Without -n it can be a host name (`localhost`);
 *   without -P the port can be a service name, which we cannot map, so such rows are skipped.
 * - `*` is the unspecified address. TYPE says which: IPv6 `*` is `::` (a Go server bound to 0.0.0.0
 *   or [::] shows up like this), IPv4 `*` is `0.0.0.0`.
 * - lsof escapes unprintable bytes in COMMAND, `\x20` for a space (`Code\x20H` is "Code Helper",
 *   cut to lsof's default nine characters). We decode `\xNN` and the C escapes, then strip control
 *   characters, so a hostile process name cannot carry terminal escape sequences.
 * - Rows whose last column is not exactly `(LISTEN)`, header lines, and anything malformed are
 *   skipped. The parser never throws and does bounded work on any input.
 */
import { Buffer } from 'node:buffer';
import { boundedLines, MAX_LINE_CHARS, parseDecimal, cleanField } from '../../../scripts/text.ts';

export interface LsofListener {
  /** The bound address: `0.0.0.0`, `::`, `127.0.0.1`, `::1`, … or a host name if lsof ran without -n. */
  address: string;
  port: number;
  family: 4 | 6;
  pid: number;
  /** COMMAND with lsof's escapes decoded and control characters removed. lsof truncates it (9 chars by default). */
  command: string;
  user?: string;
}

const MAX_COMMAND_CHARS = 1024;
const C_ESCAPES: Readonly<Record<string, number>> = { b: 0x08, f: 0x0c, n: 0x0a, r: 0x0d, t: 0x09 };
const HOST_CHARS = /^[0-9A-Za-z.:%_*-]{1,255}$/;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** lsof's escaped COMMAND column, decoded: `\xNN` bytes and `\b \f \n \r \t`, then control characters stripped. */
export function decodeLsofCommand(raw: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i] as string;
    if (ch === '\\' && i + 1 < raw.length) {
      const next = raw[i + 1] as string;
      const hex = raw.slice(i + 2, i + 4);
      if (next === 'x' && /^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(Number.parseInt(hex, 16));
        i += 3;
        continue;
      }
      const c = C_ESCAPES[next];
      if (c !== undefined) {
        bytes.push(c);
        i += 1;
        continue;
      }
    }
    for (const b of Buffer.from(ch, 'utf8')) bytes.push(b);
  }
  return cleanField(Buffer.from(bytes).toString('utf8'));
}

function parseName(name: string): { host: string; port: number } | undefined {
  if (name.includes('->')) return undefined;
  let host: string;
  let portText: string;
  if (name.startsWith('[')) {
    const end = name.indexOf(']:');
    if (end < 0) return undefined;
    host = name.slice(1, end);
    portText = name.slice(end + 2);
  } else {
    const colon = name.lastIndexOf(':');
    if (colon <= 0) return undefined;
    host = name.slice(0, colon);
    portText = name.slice(colon + 1);
  }
  const port = parseDecimal(portText, 65535);
  if (port === undefined || !HOST_CHARS.test(host)) return undefined;
  if (host.includes('*') && host !== '*') return undefined;
  return { host, port };
}

function familyOf(tokens: string[], host: string): 4 | 6 | undefined {
  const typed = tokens[4] === 'IPv4' || tokens[4] === 'IPv6' ? tokens[4] : tokens.slice(3, -3).find((t) => t === 'IPv4' || t === 'IPv6');
  if (typed !== undefined) return typed === 'IPv6' ? 6 : 4;
  if (host.includes(':')) return 6;
  if (IPV4.test(host)) return 4;
  return undefined;
}

/** The TCP listeners in `lsof` output. */
export function parseLsofListen(text: string): LsofListener[] {
  const listeners: LsofListener[] = [];
  for (const line of boundedLines(text)) {
    if (line.length > MAX_LINE_CHARS) continue;
    const tokens = line.trim().split(/\s+/);
    if (tokens.length < 6 || tokens.at(-1) !== '(LISTEN)' || tokens.at(-3) !== 'TCP') continue;
    const [rawCommand, pidText, userText] = tokens;
    if (rawCommand === undefined || rawCommand.length > MAX_COMMAND_CHARS) continue;
    const pid = parseDecimal(pidText);
    if (pid === undefined) continue;
    const name = parseName(tokens.at(-2) ?? '');
    if (name === undefined) continue;
    const family = familyOf(tokens, name.host);
    if (family === undefined) continue;
    const address = name.host === '*' ? (family === 6 ? '::' : '0.0.0.0') : name.host;
    const listener: LsofListener = { address, port: name.port, family, pid, command: decodeLsofCommand(rawCommand) };
    const user = userText === undefined ? '' : cleanField(userText);
    if (user !== '' && tokens.length >= 9) listener.user = user;
    listeners.push(listener);
  }
  return listeners;
}
