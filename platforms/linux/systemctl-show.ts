/**
 * `systemctl show UNIT --property=...` prints one `Name=value` per line; a property with several
 * values (EnvironmentFiles=) is printed once per value. Environment= holds a space-separated list
 * in which systemd quotes any assignment that has spaces or quotes in it, C-style:
 * Environment="FOO=a b" BAR=c.
 */
export function parseSystemctlShow(text: string): Map<string, string> {
  const properties = new Map<string, string>();
  for (const [name, values] of parseSystemctlShowAll(text)) properties.set(name, values.at(-1) ?? '');
  return properties;
}

/** Every value of every property, in order (EnvironmentFiles= repeats, one line per file). */
export function parseSystemctlShowAll(text: string): Map<string, string[]> {
  const properties = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const equals = line.indexOf('=');
    if (equals <= 0) continue;
    const name = line.slice(0, equals);
    const values = properties.get(name) ?? [];
    values.push(line.slice(equals + 1).replace(/\r$/, ''));
    properties.set(name, values);
  }
  return properties;
}

/** `EnvironmentFiles=/etc/default/ollama (ignore_errors=no)`: the path, and whether a leading '-' made it optional. */
export function parseEnvironmentFiles(values: string[]): { path: string; optional: boolean }[] {
  const files: { path: string; optional: boolean }[] = [];
  for (const value of values) {
    const match = /^(.*?)\s+\(ignore_errors=(yes|no)\)\s*$/.exec(value);
    const file = (match ? match[1] : value)?.trim() ?? '';
    if (file.startsWith('/')) files.push({ path: file, optional: match?.[2] === 'yes' });
  }
  return files;
}

/** Split a space-separated list the way systemd writes and reads it (C-style quotes, backslash escapes). */
export function splitQuotedWords(value: string): string[] {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < value.length; i++) {
    const char = value[i] as string;
    if (quote) {
      if (char === '\\' && quote === '"' && i + 1 < value.length) {
        current += value[++i];
      } else if (char === quote) {
        quote = undefined;
      } else {
        current += char;
      }
    } else if (char === '"' || char === "'") {
      quote = char;
      inWord = true;
    } else if (char === ' ' || char === '\t') {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else if (char === '\\' && i + 1 < value.length) {
      current += value[++i];
      inWord = true;
    } else {
      current += char;
      inWord = true;
    }
  }
  if (inWord) words.push(current);
  return words;
}

/** Split an Environment= value into its assignments, undoing systemd's quoting. */
export function parseEnvironmentList(value: string): Map<string, string> {
  const assignments = new Map<string, string>();
  for (const word of splitQuotedWords(value)) {
    const equals = word.indexOf('=');
    if (equals > 0) assignments.set(word.slice(0, equals), word.slice(equals + 1));
  }
  return assignments;
}

/**
 * Whether an UnsetEnvironment= list removes `name` when it has `value`: a bare name removes any
 * assignment of it, `NAME=VALUE` only that exact one (systemd.exec(5)).
 */
export function unsetRemoves(words: readonly string[], name: string, value: string | undefined): boolean {
  return words.some((word) => word === name || (value !== undefined && word === `${name}=${value}`));
}

/**
 * A unit file's logical lines: systemd joins a line that ends in a backslash with the next one
 * (the backslash becomes a space) and skips comment lines inside such a continuation
 * (systemd.syntax(7)). Reading physical lines would miss `Environment="A=1" \` + `"OLLAMA_HOST=…"`.
 */
export function unitFileLines(text: string): string[] {
  const lines: string[] = [];
  let pending: string | undefined;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/\r$/, '');
    const trimmed = line.trim();
    if (pending !== undefined && (trimmed.startsWith('#') || trimmed.startsWith(';'))) continue;
    const joined = pending === undefined ? line : `${pending} ${line}`;
    if (/\\$/.test(line)) {
      pending = joined.replace(/\\$/, '');
      continue;
    }
    lines.push(joined);
    pending = undefined;
  }
  if (pending !== undefined) lines.push(pending);
  return lines;
}

/**
 * The directives of a unit file or drop-in's [Service] section, in order, as `[key, value]`: only
 * lines inside [Service] count. An Environment= line above any section header is ignored by
 * systemd ("Assignment outside of section"), and that mistake is a classic (ollama/ollama#4771).
 */
function* serviceAssignments(text: string): Generator<[string, string]> {
  let section = '';
  for (const logical of unitFileLines(text)) {
    const line = logical.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1] ?? '';
      continue;
    }
    if (section !== 'Service') continue;
    const assignment = /^([A-Za-z]+)\s*=\s*(.*)$/.exec(line);
    if (assignment) yield [assignment[1] ?? '', (assignment[2] ?? '').trim()];
  }
}

/** The values a unit file or drop-in assigns to `name` with Environment=, in order. */
export function environmentAssignmentsInUnitFile(text: string, name: string): string[] {
  const values: string[] = [];
  for (const [key, body] of serviceAssignments(text)) {
    if (key !== 'Environment') continue;
    // An empty Environment= resets the list gathered so far.
    if (body === '') {
      values.length = 0;
      continue;
    }
    const value = parseEnvironmentList(body).get(name);
    if (value !== undefined) values.push(value);
  }
  return values;
}

/** One directive that decides a variable, in the order systemd reads it. */
export type EnvironmentDirective =
  | { directive: 'Environment'; reset: true }
  | { directive: 'Environment'; reset: false; value: string | undefined }
  | { directive: 'UnsetEnvironment'; reset: true }
  | { directive: 'UnsetEnvironment'; reset: false; words: string[] };

/**
 * The Environment= and UnsetEnvironment= lines of one unit file or drop-in, in [Service], as they
 * bear on `name`: an empty one resets the list gathered so far, in this file and every file read
 * before it (systemd.exec(5)).
 */
export function environmentDirectives(text: string, name: string): EnvironmentDirective[] {
  const directives: EnvironmentDirective[] = [];
  for (const [key, body] of serviceAssignments(text)) {
    if (key !== 'Environment' && key !== 'UnsetEnvironment') continue;
    if (key === 'Environment') {
      directives.push(body === '' ? { directive: 'Environment', reset: true } : { directive: 'Environment', reset: false, value: parseEnvironmentList(body).get(name) });
    } else {
      directives.push(body === '' ? { directive: 'UnsetEnvironment', reset: true } : { directive: 'UnsetEnvironment', reset: false, words: splitQuotedWords(body) });
    }
  }
  return directives;
}

/** Who decides `name` across the unit file and its drop-ins, read in systemd's order. */
export interface EnvironmentSources {
  /** The file whose Environment= assignment survives, and the value. */
  setBy?: { path: string; value: string };
  /** The last file with an empty Environment=, which threw away every assignment before it. */
  resetBy?: string;
  /** The last file whose UnsetEnvironment= (still in force) names the variable. */
  unsetBy?: string;
}

/** `files` in the order systemd reads them: the unit file, then drop-ins by file name. */
export function environmentSources(files: readonly { path: string; text: string }[], name: string): EnvironmentSources {
  let setBy: EnvironmentSources['setBy'];
  let resetBy: string | undefined;
  const unsets: { path: string; words: string[] }[] = [];
  for (const file of files) {
    for (const directive of environmentDirectives(file.text, name)) {
      if (directive.directive === 'Environment') {
        if (directive.reset) {
          if (setBy) resetBy = file.path;
          setBy = undefined;
        } else if (directive.value !== undefined) {
          setBy = { path: file.path, value: directive.value };
          resetBy = undefined;
        }
      } else if (directive.reset) {
        unsets.length = 0;
      } else {
        unsets.push({ path: file.path, words: directive.words });
      }
    }
  }
  const unsetBy = [...unsets].reverse().find((entry) => unsetRemoves(entry.words, name, undefined) || entry.words.some((word) => word.startsWith(`${name}=`)))?.path;
  return { setBy, resetBy, unsetBy };
}

/**
 * The value an EnvironmentFile= file gives `name` (the last assignment wins), or undefined.
 * Its syntax is systemd's: KEY=VALUE lines, `#`/`;` comments, optional single or double quotes,
 * backslash continuation.
 */
export function environmentFileAssignment(text: string, name: string): string | undefined {
  let value: string | undefined;
  for (const logical of unitFileLines(text)) {
    const line = logical.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const raw = (match[2] ?? '').trim();
    const quoted = /^"((?:[^"\\]|\\.)*)"$/.exec(raw) ?? /^'([^']*)'$/.exec(raw);
    value = quoted ? (quoted[1] ?? '').replace(/\\(.)/g, '$1') : raw;
  }
  return value;
}
