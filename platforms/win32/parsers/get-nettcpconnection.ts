/**
 * Parser for the default table PowerShell prints for `Get-NetTCPConnection` (for example
 * `Get-NetTCPConnection -LocalPort 11434 -State Listen`):
 *
 *     LocalAddress                        LocalPort RemoteAddress                       RemotePort State       AppliedSetting OwningProcess
 *     ------------                        --------- -------------                       ---------- -----       -------------- -------------
 *     127.0.0.1                           11434     0.0.0.0                             0          Listen                     10276
 *
 * Columns are found from the runs of dashes under the header, and each cell is the text between one
 * run's start and the next run's start. Widths differ between captures (one in test/fixtures/win32
 * has `LocalAddress   LocalPort RemoteAddress  RemotePort …`), numbers are left-aligned, AppliedSetting
 * is blank for listeners, and some lines carry trailing spaces, so nothing here assumes a fixed
 * width. Column titles are property names and State values are enum names, so neither is translated.
 *
 * Known gaps (no real capture found, so not handled): `ConvertTo-Json`/`ConvertTo-Csv` output. On
 * Windows Server 2012 R2 the cmdlet has no OwningProcess (MicrosoftDocs/windows-powershell-docs#1788);
 * rows without it parse, but yield no listeners. An address too long for its column would be cut by
 * PowerShell; such a cell is not an address, so the row is skipped.
 *
 * Nothing here throws; work is bounded by text.ts.
 */
import type { WindowsListener } from './netstat.ts';
import { boundedLines, ipFamily, MAX_LINE_CHARS, parseDecimal, parsePort, cleanField } from '../../../scripts/text.ts';

export interface NetTcpConnectionRow {
  localAddress: string;
  localPort: number;
  family: 4 | 6;
  remoteAddress?: string;
  remotePort?: number;
  /** `Listen`, `Established`, `Bound`, `SynSent`, `TimeWait`, … as printed. */
  state: string;
  owningProcess?: number;
}

interface Column {
  name: string;
  start: number;
  end: number; // exclusive; Infinity for the last column
}

const MAX_ROWS = 20_000;

function columnsFrom(header: string, dashes: string): Column[] | undefined {
  if (!/^-+( +-+)*\s*$/.test(dashes)) return undefined;
  const starts: number[] = [];
  for (const match of dashes.matchAll(/-+/g)) starts.push(match.index ?? 0);
  if (starts.length < 2 || starts.length > 32) return undefined;
  const columns: Column[] = [];
  for (let i = 0; i < starts.length; i++) {
    const start = starts[i] ?? 0;
    const end = starts[i + 1] ?? Number.POSITIVE_INFINITY;
    const name = header.slice(start, end === Number.POSITIVE_INFINITY ? undefined : end).trim();
    if (!/^[A-Za-z]{1,40}$/.test(name)) return undefined;
    columns.push({ name, start, end });
  }
  const names = columns.map((c) => c.name);
  return names.includes('LocalAddress') && names.includes('LocalPort') && names.includes('State') ? columns : undefined;
}

function cells(line: string, columns: Column[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const column of columns) {
    const end = column.end === Number.POSITIVE_INFINITY ? undefined : column.end;
    map.set(column.name, line.slice(column.start, end).trim());
  }
  return map;
}

function toRow(values: Map<string, string>): NetTcpConnectionRow | undefined {
  const localAddress = values.get('LocalAddress') ?? '';
  const family = ipFamily(localAddress);
  const localPort = parsePort(values.get('LocalPort'));
  const state = values.get('State') ?? '';
  if (family === undefined || localPort === undefined || !/^[A-Za-z]{1,20}$/.test(state)) return undefined;
  const row: NetTcpConnectionRow = { localAddress, localPort, family, state: cleanField(state) };
  const remoteAddress = values.get('RemoteAddress');
  if (remoteAddress !== undefined && ipFamily(remoteAddress) !== undefined) row.remoteAddress = remoteAddress;
  const remotePort = parsePort(values.get('RemotePort'));
  if (remotePort !== undefined) row.remotePort = remotePort;
  const owningProcess = parseDecimal(values.get('OwningProcess'), 0xffffffff);
  if (owningProcess !== undefined) row.owningProcess = owningProcess;
  return row;
}

/** Every row of every `Get-NetTCPConnection` table in `text`. */
export function parseGetNetTcpConnectionTable(text: string): NetTcpConnectionRow[] {
  const lines = boundedLines(text);
  const rows: NetTcpConnectionRow[] = [];
  let columns: Column[] | undefined;
  for (let i = 0; i < lines.length && rows.length < MAX_ROWS; i++) {
    const line = lines[i] ?? '';
    if (line.length > MAX_LINE_CHARS) continue;
    const next = lines[i + 1];
    if (next !== undefined && next.length <= MAX_LINE_CHARS && line.includes('LocalAddress')) {
      const found = columnsFrom(line, next);
      if (found !== undefined) {
        columns = found;
        i++; // skip the dashes
        continue;
      }
    }
    if (columns === undefined) continue;
    if (line.trim() === '') continue;
    const row = toRow(cells(line, columns));
    if (row !== undefined) rows.push(row);
  }
  return rows;
}

/** The rows in state `Listen` that name their owning process. */
export function parseGetNetTcpConnectionListeners(text: string): WindowsListener[] {
  const listeners: WindowsListener[] = [];
  for (const row of parseGetNetTcpConnectionTable(text)) {
    if (row.state.toLowerCase() !== 'listen' || row.owningProcess === undefined) continue;
    listeners.push({ address: row.localAddress, port: row.localPort, family: row.family, pid: row.owningProcess });
  }
  return listeners;
}
