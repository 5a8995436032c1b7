/**
 * Homebrew's per-service env file (`$HOMEBREW_USER_CONFIG_HOME/services/<formula>.env`, Homebrew
 * 6.0.15+), read exactly as brew reads it, and edited as bytes.
 *
 * brew (Library/Homebrew/service.rb, `Service#effective_environment_variables`, at aad366f):
 *
 *     env_file.each_line.map(&:strip)
 *             .reject { |line| line.empty? || line.start_with?("#") }
 *             .each_with_object({}) do |line, hash|
 *               key, value = line.split("=", 2)
 *               next opoo("Skipping invalid line …") if key.blank? || value.nil?
 *               hash[key.strip] = value.strip
 *             end
 *
 * What follows from it (each checked against Ruby 3.1; Homebrew's portable Ruby is 4.0):
 *  - lines end at "\n" only; Ruby's `strip` removes ASCII whitespace (\t \n \v \f \r space) and NUL
 *    at both ends, nothing else: a BOM or a no-break space stays part of the key;
 *  - no `export` handling and no unquoting: `export OLLAMA_HOST=0.0.0.0` sets a variable named
 *    `export OLLAMA_HOST`, and `OLLAMA_HOST="0.0.0.0"` passes the quotes on (Ollama's own Var()
 *    trims them; that is ollama-host.ts's business);
 *  - a later line for the same key wins (a Ruby Hash keeps the last assignment);
 *  - a line with no `=`, or whose key is blank (`[[:space:]]*`, Unicode spaces included), is skipped;
 *  - on a Mac brew runs Ruby with LC_ALL=en_US.UTF-8 (utils/os.sh `setup-locale`), so each line is a
 *    UTF-8 string, and `strip` raises "invalid byte sequence in UTF-8" for a line that is not valid
 *    UTF-8, comment or not. brew then fails outright: `brew services info` (which builds the
 *    service's command line from these variables), `start` and `restart` all stop with that error,
 *    and a restart that has already stopped the service leaves it stopped.
 *
 * Nothing here throws.
 */

export interface BrewEnvLine {
  /** 1-based, as an editor shows it. */
  number: number;
  /** Byte offsets of the line in the file, without its "\n". */
  start: number;
  end: number;
  kind: 'blank' | 'comment' | 'invalid' | 'entry';
  /** For an entry: the variable name and value exactly as brew passes them to launchd. */
  key?: string;
  value?: string;
}

export interface BrewEnvFile {
  lines: BrewEnvLine[];
  /** What brew applies, the last line for a key winning. Empty when brew can't read the file. */
  variables: Map<string, string>;
  /** The first line that is not valid UTF-8: brew stops at the file with an error. */
  notUtf8Line?: number;
  /** The file ends without "\n" (brew reads the last line all the same). */
  missingFinalNewline: boolean;
}

/** The bytes Ruby's String#strip removes: NUL, \t, \n, \v, \f, \r and space. */
function isRubyStripByte(byte: number): boolean {
  return byte === 0x00 || byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);
}

/** Onigmo's [[:space:]] on a UTF-8 string (Unicode White_Space), for Homebrew's String#blank?. */
const BLANK = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/u;

// ignoreBOM: keep a byte-order mark as a character, as Ruby does (TextDecoder drops it by default).
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeUtf8(bytes: Buffer): string | undefined {
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

function rubyStrip(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isRubyStripByte(text.charCodeAt(start))) start++;
  while (end > start && isRubyStripByte(text.charCodeAt(end - 1))) end--;
  return text.slice(start, end);
}

/** The file as brew reads it. Linear in its size. */
export function parseBrewEnvFile(content: Buffer): BrewEnvFile {
  const lines: BrewEnvLine[] = [];
  const variables = new Map<string, string>();
  let notUtf8Line: number | undefined;
  let start = 0;
  let number = 0;
  while (start < content.length) {
    const newline = content.indexOf(0x0a, start);
    const end = newline < 0 ? content.length : newline;
    number++;
    const text = decodeUtf8(content.subarray(start, end));
    const line: BrewEnvLine = { number, start, end, kind: 'invalid' };
    lines.push(line);
    start = end + 1;
    if (text === undefined) {
      notUtf8Line ??= number;
      continue;
    }
    const stripped = rubyStrip(text);
    if (stripped === '') line.kind = 'blank';
    else if (stripped.startsWith('#')) line.kind = 'comment';
    else {
      const eq = stripped.indexOf('=');
      const key = eq < 0 ? stripped : stripped.slice(0, eq);
      if (eq >= 0 && !BLANK.test(key)) {
        line.kind = 'entry';
        line.key = rubyStrip(key);
        line.value = rubyStrip(stripped.slice(eq + 1));
        variables.set(line.key, line.value);
      }
    }
  }
  return {
    lines,
    variables: notUtf8Line === undefined ? variables : new Map(),
    notUtf8Line,
    missingFinalNewline: content.length > 0 && content[content.length - 1] !== 0x0a,
  };
}

/**
 * An entry that names `key` in a way brew does not apply as `key`: `export OLLAMA_HOST=…` (a shell
 * habit), a byte-order mark or a Unicode space stuck to the name. brew sets a variable by that
 * other name, so the server never sees it.
 */
export function misappliedEntries(file: BrewEnvFile, key: string): BrewEnvLine[] {
  return file.lines.filter((line) => line.kind === 'entry' && line.key !== key && intendedKey(line.key ?? '') === key);
}

function intendedKey(name: string): string {
  return name
    .replace(/^\uFEFF/u, '')
    .replace(/^[\s\uFEFF]+|[\s\uFEFF]+$/gu, '')
    .replace(/^export\s+/u, '');
}

/** The line's bytes as text for a message (not valid UTF-8 never gets here: no entry is). */
export function lineText(content: Buffer, line: BrewEnvLine): string {
  return content.subarray(line.start, line.end).toString('utf8').replace(/\r$/, '');
}

/**
 * The file with `key=value` applied as brew will read it, changing only the bytes that must change:
 *  - the last line brew applies for `key` (the one that wins) gets the new value, and any earlier
 *    one too, so the file says one thing;
 *  - a line that meant `key` but that brew applies under another name (`export key=…`, a BOM before
 *    the key) is replaced by `key=value`;
 *  - with no such line, `key=value` is appended, after a "\n" if the file did not end with one;
 *  - every other byte is kept: other lines, comments in any encoding, "\r\n" endings (a replaced
 *    line keeps its own "\r"), a BOM in front of another line, a missing final newline.
 * The caller refuses a file brew can't read (notUtf8Line) before asking for this.
 */
export function withBrewEnvValue(content: Buffer | undefined, key: string, value: string): Buffer {
  const bytes = content ?? Buffer.alloc(0);
  const file = parseBrewEnvFile(bytes);
  const targets = file.lines.filter((line) => line.kind === 'entry' && (line.key === key || intendedKey(line.key ?? '') === key));
  if (targets.length === 0) {
    const separator = bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a ? '\n' : '';
    return Buffer.concat([bytes, Buffer.from(`${separator}${key}=${value}\n`)]);
  }
  const parts: Buffer[] = [];
  let at = 0;
  for (const line of targets) {
    parts.push(bytes.subarray(at, line.start));
    const cr = line.end > line.start && bytes[line.end - 1] === 0x0d ? '\r' : '';
    parts.push(Buffer.from(`${key}=${value}${cr}`));
    at = line.end;
  }
  parts.push(bytes.subarray(at));
  return Buffer.concat(parts);
}
