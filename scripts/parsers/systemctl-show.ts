/**
 * `systemctl show UNIT --property=...` prints one `Name=value` per line. Environment= holds a
 * space-separated list in which systemd quotes any assignment that has spaces or quotes in it,
 * C-style: Environment="FOO=a b" BAR=c.
 */
export function parseSystemctlShow(text: string): Map<string, string> {
  const properties = new Map<string, string>();
  for (const line of text.split('\n')) {
    const equals = line.indexOf('=');
    if (equals <= 0) continue;
    properties.set(line.slice(0, equals), line.slice(equals + 1).replace(/\r$/, ''));
  }
  return properties;
}

/** Split an Environment= value into its assignments, undoing systemd's quoting. */
export function parseEnvironmentList(value: string): Map<string, string> {
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
  const assignments = new Map<string, string>();
  for (const word of words) {
    const equals = word.indexOf('=');
    if (equals > 0) assignments.set(word.slice(0, equals), word.slice(equals + 1));
  }
  return assignments;
}

/**
 * The OLLAMA_HOST assignments in a unit or drop-in file, in order. Only lines inside [Service]
 * count: an Environment= line above any section header is ignored by systemd ("Assignment outside
 * of section"), and that mistake is a classic (ollama/ollama#4771).
 */
export function environmentAssignmentsInUnitFile(text: string, name: string): string[] {
  const values: string[] = [];
  let section = '';
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1] ?? '';
      continue;
    }
    if (section !== 'Service') continue;
    const assignment = /^Environment\s*=\s*(.*)$/.exec(line);
    if (!assignment) continue;
    // An empty Environment= resets the list gathered so far.
    if ((assignment[1] ?? '').trim() === '') {
      values.length = 0;
      continue;
    }
    const value = parseEnvironmentList(assignment[1] ?? '').get(name);
    if (value !== undefined) values.push(value);
  }
  return values;
}
