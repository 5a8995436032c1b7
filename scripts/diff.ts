/**
 * Unified diffs of the files a plan changes, for --dry-run, the plan and `--json`'s `diff` field.
 *
 * The files are usually a few lines, but nothing stops a user's ollama.env or drop-in from being
 * 30,000 lines (the read limit is 16 MiB), and a diff must never be what takes the tool down. So
 * the work is bounded on any input:
 * - Small files (at most SMALL_FILE_LINES lines on each side): the longest-common-subsequence
 *   table, and the whole file as one hunk, as this tool has always printed them.
 * - Larger ones: the common first and last lines are set aside, then Myers' O((n+m)·D) algorithm
 *   runs on the rest with D at most MAX_EDITS; the diff is printed in hunks with CONTEXT_LINES
 *   lines of context, as git does.
 * - More than MAX_EDITS changed lines, or a file of more than MAX_DIFF_LINES lines: a one-line
 *   summary instead of the diff.
 * Within a change, removed lines come before added ones ("-old" then "+new"), as in git diff.
 */

/** The small-file path's n·m table is then at most ~1 M cells: 4 MiB of Int32Array, a few ms. */
export const SMALL_FILE_LINES = 1000;
/** Beyond this many removed plus added lines, a summary replaces the diff (memory is O(MAX_EDITS²)). */
export const MAX_EDITS = 1000;
/** Lines of context around each change in the hunked (large-file) form. */
export const CONTEXT_LINES = 3;
/** Files of more lines than this are summarised without splitting them into lines at all. */
export const MAX_DIFF_LINES = 200_000;

type Op = ' ' | '-' | '+';

/**
 * Appended to a last line that has no newline after it, so it differs from the same text with one
 * (as in git). A lone surrogate: UTF-8 decoding never produces one, so no file line ends with it.
 */
const NO_NEWLINE = '\udfff';

/** The lines of a file: none for an empty one; a last line without its newline carries NO_NEWLINE. */
function splitLines(text: string | undefined): string[] {
  if (text === undefined || text === '') return [];
  if (text.endsWith('\n')) return text.slice(0, -1).split('\n');
  const lines = text.split('\n');
  lines[lines.length - 1] += NO_NEWLINE;
  return lines;
}

/** A diff line as printed: a last line without its newline is followed by git's marker. */
function shown(line: string): string {
  return line.endsWith(NO_NEWLINE) ? `${line.slice(0, -1)}\n\\ No newline at end of file` : line;
}

/** The whole file as one hunk, from the LCS table: only for files of at most SMALL_FILE_LINES. */
function wholeFileLines(a: string[], b: string[]): string[] {
  const width = b.length + 1;
  const lcs = new Int32Array((a.length + 1) * width);
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i * width + j] = a[i] === b[j] ? lcs[(i + 1) * width + j + 1]! + 1 : Math.max(lcs[(i + 1) * width + j]!, lcs[i * width + j + 1]!);
    }
  }
  const lines: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      lines.push(` ${a[i]}`);
      i++;
      j++;
    } else if (i < a.length && (j >= b.length || lcs[(i + 1) * width + j]! >= lcs[i * width + j + 1]!)) {
      // On a tie, the removed line first: a changed line reads "-old" then "+new", as in git diff.
      lines.push(`-${a[i]}`);
      i++;
    } else {
      lines.push(`+${b[j]}`);
      j++;
    }
  }
  return lines;
}

/** Each distinct line as a small integer, so the edit search compares numbers, not strings. */
function lineIds(a: string[], b: string[]): { x: Int32Array; y: Int32Array } {
  const ids = new Map<string, number>();
  const id = (line: string) => {
    let value = ids.get(line);
    if (value === undefined) ids.set(line, (value = ids.size));
    return value;
  };
  return { x: Int32Array.from(a, id), y: Int32Array.from(b, id) };
}

/**
 * How many lines the two sides could at most keep in common (each line id counted as often as it
 * occurs on both sides): n + m - 2·that is a lower bound on the edits, found in linear time, so
 * two unrelated files are known to be too different without searching.
 */
function sharedLines(x: Int32Array, y: Int32Array): number {
  const counts = new Map<number, number>();
  for (const id of x) counts.set(id, (counts.get(id) ?? 0) + 1);
  let shared = 0;
  for (const id of y) {
    const left = counts.get(id) ?? 0;
    if (left > 0) {
      shared++;
      counts.set(id, left - 1);
    }
  }
  return shared;
}

/**
 * Myers' greedy shortest edit script between x and y, as ops in order; undefined when more than
 * maxEdits lines would have to be removed or added. Memory: one frontier row per edit, O(maxEdits²).
 */
function shortestEdit(x: Int32Array, y: Int32Array, maxEdits: number): Op[] | undefined {
  const n = x.length;
  const m = y.length;
  const limit = Math.min(maxEdits, n + m);
  const offset = limit + 1;
  const frontier = new Int32Array(2 * limit + 3);
  const trace: Int32Array[] = [];
  let found = -1;
  for (let d = 0; d <= limit && found < 0; d++) {
    for (let k = -d; k <= d; k += 2) {
      let px = k === -d || (k !== d && frontier[offset + k - 1]! < frontier[offset + k + 1]!) ? frontier[offset + k + 1]! : frontier[offset + k - 1]! + 1;
      let py = px - k;
      while (px < n && py < m && x[px] === y[py]) {
        px++;
        py++;
      }
      frontier[offset + k] = px;
      if (px >= n && py >= m) {
        found = d;
        break;
      }
    }
    // Row d holds the furthest x on each diagonal -d..d after d edits: what the walk back needs.
    trace.push(frontier.slice(offset - d, offset + d + 1));
  }
  if (found < 0) return undefined;
  const ops: Op[] = [];
  let px = n;
  let py = m;
  for (let d = found; d > 0; d--) {
    const row = trace[d - 1]!;
    const at = (k: number) => row[k + d - 1]!;
    const k = px - py;
    const previousK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const previousX = at(previousK);
    const previousY = previousX - previousK;
    while (px > previousX && py > previousY) {
      ops.push(' ');
      px--;
      py--;
    }
    ops.push(px === previousX ? '+' : '-');
    px = previousX;
    py = previousY;
  }
  while (px > 0 && py > 0) {
    ops.push(' ');
    px--;
    py--;
  }
  return ops.reverse();
}

interface DiffLine {
  op: Op;
  text: string;
  /** 0-based line in the old file (for an added line: the old line it comes before). */
  i: number;
  /** 0-based line in the new file (for a removed line: the new line it comes before). */
  j: number;
}

/**
 * The ops as diff lines, each run of changes written as its removals, then its additions.
 * `from` is where the ops start in each file.
 */
function opLines(ops: Op[], a: string[], b: string[], from: { i: number; j: number }): DiffLine[] {
  const out: DiffLine[] = [];
  let i = from.i;
  let j = from.j;
  for (let index = 0; index < ops.length; ) {
    if (ops[index] === ' ') {
      out.push({ op: ' ', text: a[i]!, i, j });
      i++;
      j++;
      index++;
      continue;
    }
    const removedFrom = i;
    const addedFrom = j;
    while (index < ops.length && ops[index] !== ' ') {
      if (ops[index] === '-') i++;
      else j++;
      index++;
    }
    for (let line = removedFrom; line < i; line++) out.push({ op: '-', text: a[line]!, i: line, j: addedFrom });
    for (let line = addedFrom; line < j; line++) out.push({ op: '+', text: b[line]!, i, j: line });
  }
  return out;
}

const range = (start: number, count: number) => `${count === 0 ? start : start + 1},${count}`;

interface TooLarge {
  changedBefore: number;
  changedAfter: number;
  fromLine: number;
}

/** Hunks with CONTEXT_LINES of context, as git prints them; a TooLarge summary past MAX_EDITS. */
function hunkedLines(a: string[], b: string[]): string[] | TooLarge {
  let prefix = 0;
  while (prefix < a.length && prefix < b.length && a[prefix] === b[prefix]) prefix++;
  let suffix = 0;
  while (suffix < a.length - prefix && suffix < b.length - prefix && a[a.length - 1 - suffix] === b[b.length - 1 - suffix]) suffix++;
  const endA = a.length - suffix;
  const endB = b.length - suffix;
  const tooLarge = { changedBefore: endA - prefix, changedAfter: endB - prefix, fromLine: prefix + 1 };
  // At least |n - m| lines must be added or removed: no need to search to know it is too many.
  if (Math.abs(endA - endB) > MAX_EDITS) return tooLarge;
  const { x, y } = lineIds(a.slice(prefix, endA), b.slice(prefix, endB));
  if (x.length + y.length - 2 * sharedLines(x, y) > MAX_EDITS) return tooLarge;
  const middle = shortestEdit(x, y, MAX_EDITS);
  if (!middle) return tooLarge;
  // Only the lines a hunk can show: the changes, and CONTEXT_LINES of the common lines around them.
  const lead = Math.min(prefix, CONTEXT_LINES);
  const tail = Math.min(suffix, CONTEXT_LINES);
  const ops: Op[] = [...new Array<Op>(lead).fill(' '), ...middle, ...new Array<Op>(tail).fill(' ')];
  const lines = opLines(ops, a, b, { i: prefix - lead, j: prefix - lead });
  const output: string[] = [];
  let index = 0;
  while (index < lines.length) {
    // The next change, and the hunk around it: changes closer than 2·CONTEXT_LINES share a hunk.
    while (index < lines.length && lines[index]!.op === ' ') index++;
    if (index >= lines.length) break;
    const start = Math.max(0, index - CONTEXT_LINES);
    let lastChange = index;
    for (let end = index; end < lines.length; end++) {
      if (lines[end]!.op !== ' ') lastChange = end;
      else if (end - lastChange > 2 * CONTEXT_LINES) break;
    }
    const end = Math.min(lines.length, lastChange + CONTEXT_LINES + 1);
    const hunk = lines.slice(start, end);
    const first = hunk[0]!;
    const countA = hunk.filter((line) => line.op !== '+').length;
    const countB = hunk.filter((line) => line.op !== '-').length;
    output.push(`@@ -${range(first.i, countA)} +${range(first.j, countB)} @@`, ...hunk.map((line) => `${line.op}${line.text}`));
    index = end;
  }
  return output;
}

const count = (value: number) => String(value).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
const lines = (value: number) => `${count(value)} line${value === 1 ? '' : 's'}`;

/** The number of lines splitLines would give, counted without building them; stops past `cap`. */
function lineCount(text: string | undefined, cap: number): number {
  if (text === undefined) return 0;
  const body = text.endsWith('\n') ? text.length - 1 : text.length;
  let total = 1;
  for (let at = text.indexOf('\n'); at !== -1 && at < body && total <= cap; at = text.indexOf('\n', at + 1)) total++;
  return total;
}

/** A unified diff of two texts; bounded in time and memory whatever their size (see the top). */
export function unifiedDiff(before: string | undefined, after: string | undefined, file: string): string {
  const header = [`--- ${before === undefined ? '/dev/null' : file}`, `+++ ${after === undefined ? '/dev/null' : file}`];
  const linesBefore = lineCount(before, MAX_DIFF_LINES);
  const linesAfter = lineCount(after, MAX_DIFF_LINES);
  if (linesBefore > MAX_DIFF_LINES || linesAfter > MAX_DIFF_LINES) {
    const size = (n: number) => (n > MAX_DIFF_LINES ? `more than ${lines(MAX_DIFF_LINES)}` : lines(n));
    return [...header, `${size(linesBefore)} before, ${size(linesAfter)} after; diff not shown (too large)`].join('\n');
  }
  const a = splitLines(before);
  const b = splitLines(after);
  if (a.length <= SMALL_FILE_LINES && b.length <= SMALL_FILE_LINES) {
    return [...header, `@@ -${a.length ? 1 : 0},${a.length} +${b.length ? 1 : 0},${b.length} @@`, ...wholeFileLines(a, b).map(shown)].join('\n');
  }
  const hunks = hunkedLines(a, b);
  if (Array.isArray(hunks)) return [...header, ...hunks.map(shown)].join('\n');
  const { changedBefore, changedAfter, fromLine } = hunks;
  const sizes = `(of ${count(a.length)} before, ${count(b.length)} after)`;
  const what =
    changedBefore === 0
      ? `${lines(changedAfter)} added ${fromLine === 1 ? 'at the start' : `after line ${count(fromLine - 1)}`}`
      : changedAfter === 0
        ? `${lines(changedBefore)} removed from line ${count(fromLine)}`
        : `more than ${count(MAX_EDITS)} lines removed or added in lines ${count(fromLine)}–${count(fromLine + changedBefore - 1)}`;
  return [...header, `${what} ${sizes}; diff not shown (too large)`].join('\n');
}
