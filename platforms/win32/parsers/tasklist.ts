/**
 * Parser for `tasklist /FO CSV` and `tasklist /FO CSV /NH`:
 *
 *     "Image Name","PID","Session Name","Session#","Mem Usage"
 *     "System Idle Process","0","Services","0","8 K"
 *     "Registry","172","Services","0","84 496 K"
 *
 * Every field is quoted; a quote inside a field is doubled. The header is translated on non-English
 * Windows, so it is recognised by its PID column not being a number, not by its words. Mem Usage is
 * formatted with the user's thousands separator: the capture in test/fixtures/win32 uses U+00A0
 * (`84 496 K`); English Windows uses `,`. `/V` adds columns after Mem Usage; they are ignored. Lines
 * that are not CSV rows (`INFO: No tasks are running which match the specified criteria.`) are
 * skipped. Leading and trailing blanks on a line are ignored.
 *
 * Nothing here throws; work is bounded by text.ts.
 */
import { boundedLines, MAX_LINE_CHARS, parseDecimal, cleanField } from '../../../scripts/text.ts';

export interface TasklistEntry {
  imageName: string;
  pid: number;
  sessionName?: string;
  sessionNumber?: number;
  /** As printed, e.g. `84 496 K` (control characters removed). */
  memUsage?: string;
  /** Mem Usage in KiB, when it reads as a number of K. */
  memKb?: number;
}

const MAX_FIELDS = 32;
const MAX_ROWS = 20_000;

/** The fields of one CSV line (RFC 4180 quoting), or undefined if the line is not well formed. */
export function parseCsvLine(line: string): string[] | undefined {
  if (line.length > MAX_LINE_CHARS) return undefined;
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (fields.length >= MAX_FIELDS) return undefined;
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const quote = line.indexOf('"', i);
        if (quote === -1) return undefined; // unterminated
        value += line.slice(i, quote);
        if (line[quote + 1] === '"') {
          value += '"';
          i = quote + 2;
          continue;
        }
        i = quote + 1;
        break;
      }
      fields.push(value);
    } else {
      const comma = line.indexOf(',', i);
      const raw = comma === -1 ? line.slice(i) : line.slice(i, comma);
      if (raw.includes('"')) return undefined;
      fields.push(raw);
      i = comma === -1 ? line.length : comma;
    }
    if (i >= line.length) return fields;
    if (line[i] !== ',') return undefined;
    i++;
  }
}

function memKb(value: string): number | undefined {
  const m = /^([0-9][0-9 \u00a0\u202f.,']{0,20})\s*K[Bb]?$/.exec(value);
  if (m === null) return undefined;
  return parseDecimal((m[1] ?? '').replace(/[^0-9]/g, ''), Number.MAX_SAFE_INTEGER);
}

function text(value: string | undefined, max: number): string | undefined {
  if (value === undefined) return undefined;
  const clean = cleanField(value).trim();
  return clean === '' ? undefined : clean.slice(0, max);
}

/** The processes in `tasklist /FO CSV` output, with or without the header row. */
export function parseTasklistCsv(csv: string): TasklistEntry[] {
  const entries: TasklistEntry[] = [];
  for (const raw of boundedLines(csv)) {
    const fields = parseCsvLine(raw.trim());
    if (fields === undefined || fields.length < 2) continue;
    const imageName = text(fields[0], 260);
    const pid = parseDecimal(fields[1]?.trim(), 0xffffffff);
    if (imageName === undefined || pid === undefined) continue; // header, INFO line, or junk
    const entry: TasklistEntry = { imageName, pid };
    const sessionName = text(fields[2], 64);
    if (sessionName !== undefined) entry.sessionName = sessionName;
    const sessionNumber = parseDecimal(fields[3]?.trim());
    if (sessionNumber !== undefined) entry.sessionNumber = sessionNumber;
    const memUsage = text(fields[4], 64);
    if (memUsage !== undefined) {
      entry.memUsage = memUsage;
      const kb = memKb(memUsage);
      if (kb !== undefined) entry.memKb = kb;
    }
    entries.push(entry);
    if (entries.length >= MAX_ROWS) break;
  }
  return entries;
}
