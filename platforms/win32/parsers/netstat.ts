/**
 * Parser for Windows `netstat -ano` (also `-an`, `-ano -p TCP`, and lines kept by `| findstr`).
 *
 * Shape, from the captures in test/fixtures/win32 (English, French, German and Chinese Windows):
 *
 *     Active Connections
 *
 *       Proto  Local Address          Foreign Address        State           PID
 *       TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       1712
 *       TCP    127.0.0.1:1031         127.0.0.1:1032         ESTABLISHED     10644
 *       TCP    [::]:135               [::]:0                 LISTENING       1712
 *       TCP    [::1]:1025             [::]:0                 LISTENING       6088
 *       UDP    0.0.0.0:53             *:*                                    4808
 *
 * IPv6 rows also say `TCP`. Columns are separated by runs of spaces, but a long IPv6 address pushes
 * the next column along (only two spaces are left), so rows are split on whitespace, never by
 * position. The title and the header line are translated (`Aktive Verbindungen`, `活动连接`; the
 * French header even drops the `PID` title while the rows still carry a PID), so neither is used.
 *
 * Which rows are listening. The State column is translated on some Windows languages: German prints
 * `ABHÖREN` for LISTENING and `HERGESTELLT`, `WARTEND`, `SCHLIESSEN_WARTEN`, `FIN_WARTEN_2` for the
 * others, in the console's OEM code page (cp850, so a UTF-8 decode of `Ö` gives U+FFFD and a cp1252
 * view gives `ABH™REN`, as published). French and Chinese keep the English words. So the rule is:
 *
 *   1. state `LISTENING` (any case)                       → listening;
 *   2. any other English state word (ESTABLISHED, TIME_WAIT, BOUND, …) → not listening;
 *   3. any other state (a translated or garbled word)      → listening if and only if the foreign
 *      address is the unspecified address with port 0 (`0.0.0.0:0` or `[::]:0`).
 *
 * Rule 3 holds for `netstat -ano`: in every capture here, all rows with that foreign address are
 * listeners. It does not hold for `netstat -q`, which adds BOUND (bound, not listening) sockets that
 * also show `0.0.0.0:0` (see the `-a -q -n` capture); rule 2 catches the English `BOUND`, and callers
 * should not pass `-q`.
 *
 * Nothing here throws; work is bounded by text.ts.
 */
import { boundedLines, ipFamily, MAX_LINE_CHARS, parseDecimal, parsePort, cleanField } from '../../../scripts/text.ts';

export interface WindowsListener {
  /** Without brackets: `0.0.0.0`, `127.0.0.1`, `::`, `::1`. */
  address: string;
  port: number;
  family: 4 | 6;
  pid: number;
}

export interface NetstatEndpoint {
  address: string;
  port: number;
  family: 4 | 6;
}

export interface NetstatTcpRow {
  local: NetstatEndpoint;
  /** Undefined when netstat printed a host name (no `-n`) or something we do not understand. */
  foreign?: NetstatEndpoint;
  /** The State column as printed (possibly translated), control characters removed. */
  state: string;
  /** Present with `-o`. */
  pid?: number;
  listening: boolean;
}

/** English netstat states other than LISTENING (Windows `netstat` help and the English captures). */
const NOT_LISTENING = new Set([
  'CLOSED',
  'SYN_SENT',
  'SYN_RECEIVED',
  'ESTABLISHED',
  'FIN_WAIT_1',
  'FIN_WAIT_2',
  'CLOSE_WAIT',
  'CLOSING',
  'LAST_ACK',
  'TIME_WAIT',
  'DELETE_TCB',
  'BOUND',
]);

const MAX_ROWS = 20_000;

/** `1.2.3.4:80` or `[::1]:80` (brackets removed), else undefined. */
export function parseNetstatEndpoint(token: string): NetstatEndpoint | undefined {
  const bracketed = /^\[([^\]]{2,64})\]:([0-9]{1,5})$/.exec(token);
  if (bracketed !== null) {
    const address = bracketed[1] ?? '';
    const port = parsePort(bracketed[2]);
    return ipFamily(address) === 6 && port !== undefined ? { address, port, family: 6 } : undefined;
  }
  const plain = /^([0-9.]{7,15}):([0-9]{1,5})$/.exec(token);
  if (plain === null) return undefined;
  const address = plain[1] ?? '';
  const port = parsePort(plain[2]);
  return ipFamily(address) === 4 && port !== undefined ? { address, port, family: 4 } : undefined;
}

function isUnspecifiedPortZero(endpoint: NetstatEndpoint | undefined): boolean {
  return endpoint !== undefined && endpoint.port === 0 && (endpoint.address === '0.0.0.0' || endpoint.address === '::');
}

function isListening(state: string, foreign: NetstatEndpoint | undefined): boolean {
  const word = state.toUpperCase();
  if (word === 'LISTENING') return true;
  if (NOT_LISTENING.has(word)) return false;
  return isUnspecifiedPortZero(foreign);
}

/** One `TCP` row, or undefined for anything else (headers, UDP rows, `-b` owner lines, noise). */
export function parseNetstatTcpRow(line: string): NetstatTcpRow | undefined {
  if (line.length > MAX_LINE_CHARS) return undefined;
  const tokens = line.trim().split(/[ \t]+/);
  if (tokens.length < 4 || tokens.length > 8) return undefined;
  const [proto, localToken, foreignToken] = tokens;
  if (proto === undefined || !/^TCP(v6)?$/i.test(proto)) return undefined;
  const local = localToken === undefined ? undefined : parseNetstatEndpoint(localToken);
  if (local === undefined) return undefined;
  const foreign = foreignToken === undefined ? undefined : parseNetstatEndpoint(foreignToken);

  let rest = tokens.slice(3);
  let pid: number | undefined;
  const last = rest[rest.length - 1];
  if (last !== undefined && /^[0-9]{1,10}$/.test(last)) {
    pid = parseDecimal(last, 0xffffffff);
    if (pid === undefined) return undefined;
    rest = rest.slice(0, -1);
  }
  const state = cleanField(rest.join(' ')).slice(0, 64);
  const row: NetstatTcpRow = { local, state, listening: isListening(state, foreign) };
  if (foreign !== undefined) row.foreign = foreign;
  if (pid !== undefined) row.pid = pid;
  return row;
}

/** Every TCP row of `netstat -an`/`-ano` output, in order. */
export function parseNetstatTcpRows(text: string): NetstatTcpRow[] {
  const rows: NetstatTcpRow[] = [];
  for (const line of boundedLines(text)) {
    const row = parseNetstatTcpRow(line);
    if (row !== undefined) rows.push(row);
    if (rows.length >= MAX_ROWS) break;
  }
  return rows;
}

/** The listening TCP sockets of `netstat -ano` output that carry a PID (see the rule above). */
export function parseNetstatListening(text: string): WindowsListener[] {
  const listeners: WindowsListener[] = [];
  for (const row of parseNetstatTcpRows(text)) {
    if (!row.listening || row.pid === undefined) continue;
    listeners.push({ address: row.local.address, port: row.local.port, family: row.local.family, pid: row.pid });
  }
  return listeners;
}
