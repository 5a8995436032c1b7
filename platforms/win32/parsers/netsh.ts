/**
 * Parser for `netsh interface ipv4 show excludedportrange protocol=tcp`:
 *
 *     Protocol tcp Port Exclusion Ranges
 *
 *     Start Port    End Port
 *     ----------    --------
 *             80          80
 *          55679       55679     *
 *
 *     * - Administered port exclusions.
 *
 * A `*` after a range marks an administered exclusion (one added with `netsh … add
 * excludedportrange`); the others were reserved by a service, typically Hyper-V/WinNAT, and change
 * across reboots or `net stop winnat`. The title and column headers are translated (a Spanish
 * capture reads `Puerto de inicio    Puerto final`), so only the number rows are read. An Ollama bind
 * on a port inside any range fails with `bind: An attempt was made to access a socket in a way
 * forbidden by its access permissions` (ollama/ollama#2627, #2727, #8396).
 *
 * Nothing here throws; work is bounded by text.ts.
 */
import { boundedLines, MAX_LINE_CHARS, parsePort } from '../../../scripts/text.ts';

export interface ExcludedPortRange {
  start: number;
  end: number;
  administered: boolean;
}

const ROW = /^\s*([0-9]{1,5})\s+([0-9]{1,5})(?:\s+(\*))?\s*$/;
const MAX_RANGES = 10_000;

/** The excluded port ranges listed in `netsh … show excludedportrange` output. */
export function parseExcludedPortRanges(text: string): ExcludedPortRange[] {
  const ranges: ExcludedPortRange[] = [];
  for (const line of boundedLines(text)) {
    if (line.length > MAX_LINE_CHARS) continue;
    const m = ROW.exec(line);
    if (m === null) continue;
    const start = parsePort(m[1]);
    const end = parsePort(m[2]);
    if (start === undefined || end === undefined || start > end) continue;
    ranges.push({ start, end, administered: m[3] === '*' });
    if (ranges.length >= MAX_RANGES) break;
  }
  return ranges;
}

/** The first range that contains `port`, if any. */
export function excludedRangeFor(ranges: readonly ExcludedPortRange[], port: number): ExcludedPortRange | undefined {
  return ranges.find((range) => port >= range.start && port <= range.end);
}

/** Is `port` inside one of `ranges`? */
export function isPortExcluded(ranges: readonly ExcludedPortRange[], port: number): boolean {
  return excludedRangeFor(ranges, port) !== undefined;
}
