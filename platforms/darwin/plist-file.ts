/**
 * launchd property lists (XML), read the way Core Foundation reads them, and edited in place.
 *
 * Why not a plist library: one that parses to JavaScript values and serialises them again changes
 * what it doesn't understand. `<real>30.0</real>` came back as `<integer>30</integer>`, an int64
 * maximum was rounded, a `<key>` with no value became `<string/>`, comments and indentation went.
 * So the editor here never re-serialises: a small, strict, bounded tokenizer finds the top-level
 * dictionary's EnvironmentVariables dict and the OLLAMA_HOST key and string in the file, and only
 * those bytes are replaced. Every other byte of the file stays as it was.
 *
 * The grammar is Core Foundation's XML property-list parser (CFPropertyList.c, the parser behind
 * plutil and launchctl), with a few places where this reader refuses what CF lets through, because a
 * file like that is damaged, not something Homebrew, launchd, Xcode or plutil write:
 * - Refused like CF: an unknown tag, a close tag that doesn't match, a <key> with no value, a
 *   non-key where a key belongs, an entity other than the five XML ones (&lt; &gt; &amp; &apos;
 *   &quot;) and numeric references, a DOCTYPE with an internal subset, an <integer> outside
 *   -2^63…2^64-1, a <real> or <date> that doesn't parse, empty <integer/>, <real/>, <date/>,
 *   <data/> and <plist/>, and more than 512 nested arrays and dicts.
 * - Refused here though CF accepts it: control characters (raw, or as &#x1b;-style references)
 *   other than tab, LF and CR, which XML 1.0 forbids and which would reach the terminal or the
 *   environment of Ollama; a <key> used as a value; non-base64 characters in <data>; anything but
 *   comments after the end of the property list; files over MAX_PLIST_BYTES (1 MiB); encodings
 *   other than UTF-8.
 * - Binary plists (bplist00) are refused with the plutil command that converts them; rewriting one
 *   as XML would change the file's format behind the user's back. Homebrew writes XML.
 * Every refusal is a PlistError: one line that names the file and gives the plutil command to run.
 */
import { quotePosix } from '../../scripts/shell-quote.ts';

export type PlistValue = string | number | bigint | boolean | Date | Buffer | PlistValue[] | PlistDict;
/** A <dict>: an object with an own property per key (the last one wins, as in CF). */
export type PlistDict = Record<string, unknown>;

/** Larger than any launchd job or app Info.plist (a few KB): bounds the work on a hostile file. */
export const MAX_PLIST_BYTES = 1 << 20;
/** Core Foundation's own limit on nested arrays and dictionaries (_CFPropertyListMaxRecursionDepth). */
export const MAX_PLIST_DEPTH = 512;

type Reason = 'binary' | 'encoding' | 'malformed' | 'too-large';

function fixFor(reason: Reason, file: string): string {
  let quoted: string;
  try {
    quoted = quotePosix(file);
  } catch {
    quoted = '<the file>';
  }
  return reason === 'binary' || reason === 'encoding' ? `plutil -convert xml1 ${quoted}` : `plutil -lint ${quoted}`;
}

/** A plist stigmer-setup won't read or edit: the message names the file and says what to do. */
export class PlistError extends Error {
  /** The one command that checks or converts the file. */
  readonly fix: string;

  constructor(
    readonly file: string,
    readonly reason: Reason,
    detail: string,
  ) {
    const fix = fixFor(reason, file);
    // The name comes from HOME and the like: shown with its control characters escaped, never raw.
    const shown = file.replace(/[\x00-\x1f\x7f-\x9f]/g, (character) => `\\x${character.charCodeAt(0).toString(16).padStart(2, '0')}`);
    super(
      reason === 'binary'
        ? `${shown} is a binary property list, which stigmer-setup does not rewrite. Convert it to XML first: ${fix}`
        : reason === 'encoding'
          ? `${shown} is not a UTF-8 property list (${detail}); stigmer-setup changed nothing. Convert it to UTF-8 XML first: ${fix}`
          : reason === 'too-large'
            ? `${shown} is ${detail}, larger than the ${MAX_PLIST_BYTES} bytes stigmer-setup reads from a property list; stigmer-setup changed nothing. Check it with: ${fix}`
            : `${shown} is not a valid property list (${detail}); stigmer-setup changed nothing. Check it with: ${fix}`,
    );
    this.name = 'PlistError';
    this.fix = fix;
  }
}

export function isBinaryPlist(content: Buffer): boolean {
  return content.subarray(0, 8).toString('latin1') === 'bplist00';
}

// --- the tokenizer ---------------------------------------------------------------------------

interface Located {
  /** Where the element starts (its `<`) and ends (after its last `>`), in UTF-16 units of the text. */
  start: number;
  end: number;
}
type Node =
  | (Located & { kind: 'dict'; entries: Entry[]; selfClosing: boolean; contentStart: number; closeStart: number; value: PlistDict })
  | (Located & { kind: 'array'; value: PlistValue[] })
  | (Located & { kind: 'string'; selfClosing: boolean; contentStart: number; contentEnd: number; value: string })
  | (Located & { kind: 'key'; value: string })
  | (Located & { kind: 'other'; value: PlistValue });
interface Entry {
  key: string;
  keyStart: number;
  value: Node;
}

/** An error at a position: turned into a PlistError with the line number by the caller. */
class ParseFailure {
  constructor(
    readonly at: number,
    readonly detail: string,
    readonly reason: Reason = 'malformed',
  ) {}
}

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);
// XML 1.0's Char production: no C0 control but tab, LF and CR; no U+FFFE or U+FFFF.
const FORBIDDEN_CHARACTER = /[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/;
const NAME = /^[A-Za-z_:][-A-Za-z0-9_:.]*/;
const ATTRIBUTES = /^(?:[ \t\r\n]+[A-Za-z_:][-A-Za-z0-9_:.]*[ \t\r\n]*=[ \t\r\n]*(?:"[^"<]*"|'[^'<]*'))*[ \t\r\n]*$/;
const KNOWN_TAGS = new Set(['plist', 'dict', 'array', 'key', 'string', 'data', 'date', 'real', 'integer', 'true', 'false']);
const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' };
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/** A character for a message: printable as is, anything else as U+XXXX. */
function show(character: string): string {
  const code = character.codePointAt(0) ?? 0;
  return code >= 0x21 && code < 0x7f ? `"${character}"` : `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** A short, printable quote of file text for a message. */
function quote(text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, (character) => `\\u{${(character.codePointAt(0) ?? 0).toString(16)}}`);
  return printable.length > 40 ? `${printable.slice(0, 39)}…` : printable;
}

class Parser {
  private pos = 0;

  constructor(private readonly text: string) {}

  fail(detail: string, at = this.pos): never {
    throw new ParseFailure(at, detail);
  }

  /** The whole document: prolog (XML declaration, comments, DOCTYPE), one value, then only comments. */
  document(): Node {
    if (this.text.charCodeAt(0) === 0xfeff) this.pos = 1;
    this.misc(true);
    if (this.pos >= this.text.length) this.fail('there is no XML element in it');
    if (this.text[this.pos] !== '<') this.fail(`it is not XML: it starts with ${show(this.text[this.pos]!)}`);
    const tag = this.openTag();
    let root: Node;
    if (tag.name === 'plist') {
      if (tag.selfClosing) this.fail('the <plist> element is empty', tag.start);
      this.misc(false);
      if (this.atCloseTag()) this.fail('the <plist> element is empty', tag.start);
      root = this.value(this.openTag(), 0);
      this.misc(false);
      if (!this.atCloseTag()) this.fail('a <plist> holds one value, and this one has more');
      this.closeTag('plist');
    } else {
      root = this.value(tag, 0);
    }
    this.misc(false);
    if (this.pos < this.text.length) this.fail('there is more after the end of the property list');
    return root;
  }

  /** Whitespace, comments and processing instructions (and, in the prolog, one DOCTYPE). */
  private misc(prolog: boolean): void {
    const text = this.text;
    for (;;) {
      while (this.pos < text.length && WHITESPACE.has(text[this.pos]!)) this.pos++;
      if (text.startsWith('<?', this.pos)) {
        const end = text.indexOf('?>', this.pos + 2);
        if (end < 0) this.fail('a processing instruction (<?…) is never closed');
        const instruction = text.slice(this.pos + 2, end);
        if (/^xml[ \t\r\n]/.test(instruction)) this.declaration(instruction);
        this.pos = end + 2;
      } else if (text.startsWith('<!--', this.pos)) {
        const end = text.indexOf('-->', this.pos + 4);
        if (end < 0) this.fail('a comment (<!--) is never closed');
        this.pos = end + 3;
      } else if (prolog && text.startsWith('<!DOCTYPE', this.pos)) {
        let at = this.pos + 9;
        while (at < text.length && text[at] !== '>' && text[at] !== '[') at++;
        if (at >= text.length) this.fail('the DOCTYPE is never closed');
        if (text[at] === '[') this.fail('its DOCTYPE has an internal subset ([…]), which Apple’s parser refuses', at);
        this.pos = at + 1;
      } else if (text.startsWith('<!', this.pos)) {
        this.fail(`unexpected ${quote(text.slice(this.pos, this.pos + 12))} (not a comment)`);
      } else {
        return;
      }
    }
  }

  /** `<?xml … encoding="…"?>`: only UTF-8 is read here (the text was decoded as UTF-8). */
  private declaration(instruction: string): void {
    const encoding = /encoding[ \t\r\n]*=[ \t\r\n]*(?:"([^"]*)"|'([^']*)')/.exec(instruction);
    const name = encoding?.[1] ?? encoding?.[2];
    if (name !== undefined && name.toLowerCase() !== 'utf-8') throw new ParseFailure(this.pos, `its XML declaration says encoding="${quote(name)}"`, 'encoding');
  }

  private atCloseTag(): boolean {
    return this.text.startsWith('</', this.pos);
  }

  /** `<name attributes>` or `<name/>` at pos; pos moves past it. */
  private openTag(): { name: string; selfClosing: boolean; start: number; end: number } {
    const start = this.pos;
    const close = this.text.indexOf('>', start + 1);
    const nextOpen = this.text.indexOf('<', start + 1);
    if (close < 0 || (nextOpen >= 0 && nextOpen < close)) this.fail(`the tag ${quote(this.text.slice(start, start + 20))} is never closed with ">"`);
    let inner = this.text.slice(start + 1, close);
    const selfClosing = inner.endsWith('/');
    if (selfClosing) inner = inner.slice(0, -1);
    const name = NAME.exec(inner)?.[0];
    if (!name) this.fail(`malformed tag ${quote(this.text.slice(start, close + 1))}`);
    if (!ATTRIBUTES.test(inner.slice(name.length))) this.fail(`malformed attributes in <${quote(name)}>`);
    if (!KNOWN_TAGS.has(name)) this.fail(`unknown tag <${quote(name)}>`);
    this.pos = close + 1;
    return { name, selfClosing, start, end: close + 1 };
  }

  /** `</name>` (whitespace allowed before the `>`) at pos. */
  private closeTag(name: string): void {
    const match = /^<\/([A-Za-z_:][-A-Za-z0-9_:.]*)[ \t\r\n]*>/.exec(this.text.slice(this.pos, this.pos + name.length + 64));
    if (!match) this.fail(`expected </${name}> here`);
    if (match[1] !== name) this.fail(`</${quote(match[1]!)}> closes <${name}>`);
    this.pos += match[0].length;
  }

  /** Character data up to the next tag: entities and CDATA decoded when `decode`, else raw. */
  private content(name: string, decode: boolean): { value: string; start: number; end: number } {
    const text = this.text;
    const start = this.pos;
    let value = '';
    let mark = this.pos;
    while (this.pos < text.length) {
      const character = text[this.pos]!;
      if (character === '<') {
        if (!text.startsWith('<!', this.pos)) break;
        if (!decode || !text.startsWith('<![CDATA[', this.pos)) this.fail(`<${name}> may hold text only`);
        const end = text.indexOf(']]>', this.pos + 9);
        if (end < 0) this.fail('a CDATA section is never closed');
        value += text.slice(mark, this.pos) + text.slice(this.pos + 9, end);
        this.pos = end + 3;
        mark = this.pos;
      } else if (character === '&' && decode) {
        value += text.slice(mark, this.pos) + this.entity();
        mark = this.pos;
      } else {
        this.pos++;
      }
    }
    if (this.pos >= text.length) this.fail(`<${name}> is never closed`, start);
    value += text.slice(mark, this.pos);
    return { value, start, end: this.pos };
  }

  /** `&name;` or `&#…;` at pos; pos moves past it. */
  private entity(): string {
    const at = this.pos;
    const reference = /^&(?:([a-z]+)|#([0-9]{1,8})|#x([0-9a-fA-F]{1,8}));/.exec(this.text.slice(at, at + 12));
    if (!reference) this.fail(`an "&" that does not start an entity: ${quote(this.text.slice(at, at + 12))}`);
    this.pos += reference[0].length;
    if (reference[1] !== undefined) {
      const character = ENTITIES[reference[1]];
      if (character === undefined) this.fail(`unknown entity &${reference[1]}; (a property list knows only &lt; &gt; &amp; &apos; &quot; and &#…;)`, at);
      return character;
    }
    const code = reference[2] !== undefined ? Number(reference[2]) : Number.parseInt(reference[3]!, 16);
    if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) this.fail(`${reference[0]} is not a Unicode character`, at);
    const character = String.fromCodePoint(code);
    if (code === 0 || FORBIDDEN_CHARACTER.test(character)) this.fail(`${reference[0]} is the control character ${show(character)}, which XML does not allow: remove it (plutil itself lets it through)`, at);
    return character;
  }

  /** The value whose open tag was just read. */
  private value(tag: { name: string; selfClosing: boolean; start: number; end: number }, depth: number): Node {
    const { name, selfClosing, start } = tag;
    switch (name) {
      case 'dict':
        return this.dict(tag, depth + 1);
      case 'array': {
        if (depth + 1 > MAX_PLIST_DEPTH) this.fail(`arrays and dictionaries are nested more than ${MAX_PLIST_DEPTH} deep`, start);
        const items: PlistValue[] = [];
        if (!selfClosing) {
          for (;;) {
            this.misc(false);
            if (this.atCloseTag()) break;
            if (this.pos >= this.text.length) this.fail('<array> is never closed', start);
            const item = this.value(this.elementTag(), depth + 1);
            if (item.kind === 'key') this.fail(`a <key> inside an <array>`, item.start);
            items.push(item.value);
          }
          this.closeTag('array');
        }
        return { kind: 'array', start, end: this.pos, value: items };
      }
      case 'key':
      case 'string': {
        if (selfClosing) return name === 'key' ? { kind: 'key', start, end: this.pos, value: '' } : { kind: 'string', start, end: this.pos, selfClosing, contentStart: this.pos, contentEnd: this.pos, value: '' };
        const content = this.content(name, true);
        this.closeTag(name);
        if (name === 'key') return { kind: 'key', start, end: this.pos, value: content.value };
        return { kind: 'string', start, end: this.pos, selfClosing, contentStart: content.start, contentEnd: content.end, value: content.value };
      }
      case 'true':
      case 'false':
        if (!selfClosing) this.closeTag(name);
        return { kind: 'other', start, end: this.pos, value: name === 'true' };
      case 'plist':
        return this.fail('<plist> inside the property list', start);
      default: {
        // <integer>, <real>, <date>, <data>: CF refuses each of them empty.
        if (selfClosing) this.fail(`an empty <${name}/>`, start);
        const content = this.content(name, name === 'real');
        const parsed = this.scalar(name, content.value, content.start);
        this.closeTag(name);
        return { kind: 'other', start, end: this.pos, value: parsed };
      }
    }
  }

  /** An open tag where a value or key belongs (after misc). */
  private elementTag(): { name: string; selfClosing: boolean; start: number; end: number } {
    if (this.text[this.pos] !== '<') this.fail(`text "${quote(this.text.slice(this.pos, this.pos + 20))}" where an element belongs`);
    return this.openTag();
  }

  private dict(tag: { selfClosing: boolean; start: number; end: number }, depth: number): Node {
    const { start, selfClosing } = tag;
    if (depth > MAX_PLIST_DEPTH) this.fail(`arrays and dictionaries are nested more than ${MAX_PLIST_DEPTH} deep`, start);
    const value: PlistDict = {};
    const entries: Entry[] = [];
    const contentStart = this.pos;
    let closeStart = this.pos;
    if (!selfClosing) {
      for (;;) {
        this.misc(false);
        if (this.atCloseTag()) break;
        if (this.pos >= this.text.length) this.fail('<dict> is never closed', start);
        const keyTag = this.elementTag();
        if (keyTag.name !== 'key') this.fail(`<${keyTag.name}> where a <key> belongs in a <dict>`, keyTag.start);
        const key = this.value(keyTag, depth) as Extract<Node, { kind: 'key' }>;
        this.misc(false);
        if (this.atCloseTag() || this.pos >= this.text.length) this.fail(`the key "${quote(key.value)}" has no value`, key.start);
        const valueTag = this.elementTag();
        if (valueTag.name === 'key') this.fail(`the key "${quote(key.value)}" is followed by another <key>, not by a value`, key.start);
        const entry = this.value(valueTag, depth);
        entries.push({ key: key.value, keyStart: key.start, value: entry });
        // An own property even for "__proto__", never the object's prototype (defineProperty for
        // that key only: on every key it makes a large dict slow).
        if (key.value === '__proto__') Object.defineProperty(value, key.value, { value: entry.value, enumerable: true, writable: true, configurable: true });
        else value[key.value] = entry.value;
      }
      closeStart = this.pos;
      this.closeTag('dict');
    }
    return { kind: 'dict', start, end: this.pos, entries, selfClosing, contentStart, closeStart, value };
  }

  /** <integer>, <real>, <date>, <data>: CF's syntax for each. */
  private scalar(name: string, raw: string, at: number): PlistValue {
    if (name === 'integer') {
      // CF: S*(-|+)?S*digits. The second S* only after a sign, so no two runs of whitespace can
      // trade characters: a regex that lets them backtracks quadratically on a long run.
      const match = /^[ \t\r\n]*(?:([+-])[ \t\r\n]*)?(?:0[xX]([0-9a-fA-F]+)|([0-9]+))$/.exec(raw);
      if (!match) this.fail(`<integer>${quote(raw)}</integer> is not an integer`, at);
      const magnitude = match[2] !== undefined ? BigInt(`0x${match[2]}`) : BigInt(match[3]!);
      const number = match[1] === '-' ? -magnitude : magnitude;
      if (number < INT64_MIN || number > UINT64_MAX) this.fail(`<integer>${quote(raw)}</integer> is outside the 64-bit range`, at);
      return Number.isSafeInteger(Number(number)) ? Number(number) : number;
    }
    if (name === 'real') {
      if (/^(?:nan|[+-]?inf(?:inity)?)$/i.test(raw)) return /nan/i.test(raw) ? Number.NaN : raw.startsWith('-') ? -Infinity : Infinity;
      if (!/^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/.test(raw)) this.fail(`<real>${quote(raw)}</real> is not a number`, at);
      return Number(raw);
    }
    if (name === 'date') {
      const match = /^(-?)([0-9]{1,9})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z$/.exec(raw);
      if (!match) this.fail(`<date>${quote(raw)}</date> is not YYYY-MM-DDThh:mm:ssZ`, at);
      const [year, month, day, hour, minute, second] = match.slice(2).map(Number) as [number, number, number, number, number, number];
      return new Date(Date.UTC(match[1] === '-' ? -year : year, month - 1, day, hour, minute, second));
    }
    // data
    if (!/^[A-Za-z0-9+/=\t\n\r ]*$/.test(raw)) this.fail('<data> holds characters that are not base64', at);
    return Buffer.from(raw.replace(/[\t\n\r ]/g, ''), 'base64');
  }
}

interface ParsedPlist {
  text: string;
  root: Node;
}

function lineOf(text: string, at: number): number {
  let line = 1;
  for (let index = 0; index < at && index < text.length; index++) {
    const character = text.charCodeAt(index);
    if (character === 10 || (character === 13 && text.charCodeAt(index + 1) !== 10)) line++;
  }
  return line;
}

function parsePlist(content: Buffer, file: string): ParsedPlist {
  if (content.length > MAX_PLIST_BYTES) throw new PlistError(file, 'too-large', `${content.length} bytes`);
  if (isBinaryPlist(content)) throw new PlistError(file, 'binary', '');
  if (content.length >= 2 && ((content[0] === 0xfe && content[1] === 0xff) || (content[0] === 0xff && content[1] === 0xfe) || content[0] === 0 || content[1] === 0)) {
    throw new PlistError(file, 'encoding', 'it looks like UTF-16 or UTF-32');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(content);
  } catch {
    throw new PlistError(file, 'encoding', 'it holds bytes that are not UTF-8');
  }
  const forbidden = FORBIDDEN_CHARACTER.exec(text);
  if (forbidden) throw new PlistError(file, 'malformed', `line ${lineOf(text, forbidden.index)}: the control character ${show(forbidden[0])}, which XML does not allow: remove it (plutil itself lets it through)`);
  try {
    return { text, root: new Parser(text).document() };
  } catch (error) {
    if (!(error instanceof ParseFailure)) throw error;
    if (error.reason !== 'malformed') throw new PlistError(file, error.reason, error.detail);
    throw new PlistError(file, 'malformed', `line ${lineOf(text, error.at)}: ${error.detail}`);
  }
}

function isDict(value: unknown): value is PlistDict {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date) && !(value instanceof Uint8Array);
}

/**
 * The top-level dictionary of an XML plist, as JavaScript values: <string> and <key> as strings,
 * <integer> as a number (a bigint beyond ±2^53), <real> as a number, <date> as a Date, <data> as a
 * Buffer, <true/>/<false/> as booleans. PlistError for anything this module refuses (see the top).
 */
export function readPlistDict(content: Buffer, file: string): PlistDict {
  const { root } = parsePlist(content, file);
  if (root.kind !== 'dict') throw new PlistError(file, 'malformed', 'its top level is not a <dict>');
  return root.value;
}

/** The job's EnvironmentVariables that are strings (launchd ignores anything else). */
export function environmentVariables(dict: PlistDict): Record<string, string> {
  const environment = dict.EnvironmentVariables;
  if (!isDict(environment)) return {};
  return Object.fromEntries(Object.entries(environment).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
}

// --- writing ---------------------------------------------------------------------------------

/**
 * Text for inside <key> or <string>: &, < and > escaped; a control character can't be written.
 * A new plist's string values (`lines`) may hold tab and line feed, which XML and the reader
 * allow (the login agent's script has lines); CR never, since an XML reader turns it into LF.
 * What is spliced into a user's file (OLLAMA_HOST and its key) gets no control character at all.
 */
function escapeText(value: string, lines = false): string {
  const forbidden = lines ? /[\x00-\x08\x0b-\x1f\x7f\ufffe\uffff]/ : /[\x00-\x1f\x7f\ufffe\uffff]/;
  if (forbidden.test(value)) throw new Error(`${JSON.stringify(value)} holds a control character, which stigmer-setup does not write into a property list`);
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function buildValue(value: unknown, indent: string, lines: string[]): void {
  const inner = `${indent}  `;
  if (typeof value === 'string') lines.push(`${indent}<string>${escapeText(value, true)}</string>`);
  else if (typeof value === 'boolean') lines.push(`${indent}<${value}/>`);
  else if (typeof value === 'bigint' || (typeof value === 'number' && Number.isInteger(value))) lines.push(`${indent}<integer>${value}</integer>`);
  else if (typeof value === 'number') lines.push(`${indent}<real>${value}</real>`);
  else if (value instanceof Date) lines.push(`${indent}<date>${value.toISOString().replace(/\.\d{3}Z$/, 'Z')}</date>`);
  else if (value instanceof Uint8Array) lines.push(`${indent}<data>${Buffer.from(value).toString('base64')}</data>`);
  else if (Array.isArray(value)) {
    if (value.length === 0) lines.push(`${indent}<array/>`);
    else {
      lines.push(`${indent}<array>`);
      for (const item of value) buildValue(item, inner, lines);
      lines.push(`${indent}</array>`);
    }
  } else if (isDict(value)) {
    const entries = Object.entries(value).filter((entry) => entry[1] !== undefined);
    if (entries.length === 0) lines.push(`${indent}<dict/>`);
    else {
      lines.push(`${indent}<dict>`);
      for (const [key, item] of entries) {
        lines.push(`${inner}<key>${escapeText(key)}</key>`);
        buildValue(item, inner, lines);
      }
      lines.push(`${indent}</dict>`);
    }
  } else {
    throw new Error(`a property list can't hold ${value === null ? 'null' : typeof value}`);
  }
}

/**
 * A new XML plist for `dict`, laid out byte for byte as the `plist` package (which wrote the
 * LaunchAgents of earlier versions) laid it out, so an agent written then still compares equal.
 */
export function buildPlist(dict: PlistDict): Buffer {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">', '<plist version="1.0">'];
  buildValue(dict, '  ', lines);
  lines.push('</plist>');
  return Buffer.from(lines.join('\n'), 'utf8');
}

// --- editing in place ------------------------------------------------------------------------

/** The spaces and tabs before `at` when only they stand between it and the start of its line. */
function indentBefore(text: string, at: number): string | undefined {
  let start = at;
  while (start > 0 && (text[start - 1] === ' ' || text[start - 1] === '\t')) start--;
  return start === 0 || text[start - 1] === '\n' || text[start - 1] === '\r' ? text.slice(start, at) : undefined;
}

/**
 * The file's unit of indentation: how much deeper the top-level keys sit than the top-level
 * <dict> (a tab in what Apple and Homebrew write, two spaces in what the `plist` package wrote).
 */
function indentUnit(text: string, root: Extract<Node, { kind: 'dict' }>): string {
  const outer = indentBefore(text, root.start);
  const first = root.entries[0];
  const inner = first ? indentBefore(text, first.keyStart) : undefined;
  return outer !== undefined && inner !== undefined && inner.startsWith(outer) && inner.length > outer.length ? inner.slice(outer.length) : '\t';
}

/** The last entry for `key`: of duplicate keys, the one Core Foundation keeps. */
function lastEntry(entries: Entry[], key: string): Entry | undefined {
  for (let index = entries.length - 1; index >= 0; index--) if (entries[index]!.key === key) return entries[index];
  return undefined;
}

interface Splice {
  start: number;
  end: number;
  text: string;
}

/**
 * After `at`, past spaces, tabs and comments that end on the same line: a comment that follows the
 * last value on its line stays with that value rather than moving after the new entry.
 */
function endOfLineComments(text: string, at: number): number {
  let position = at;
  let end = at;
  for (;;) {
    while (text[position] === ' ' || text[position] === '\t') position++;
    if (!text.startsWith('<!--', position)) return end;
    const close = text.indexOf('-->', position + 4);
    const newline = text.indexOf('\n', position);
    if (close < 0 || (newline >= 0 && newline < close)) return end;
    position = end = close + 3;
  }
}

/** The text of `pairs` (<key>…</key><value>) added at the end of `dict`, laid out like its neighbours. */
function appendToDict(text: string, dict: Extract<Node, { kind: 'dict' }>, pairs: (indent: string, eol: string) => string, eol: string, unit: string): Splice {
  const last = dict.entries.at(-1);
  if (last) {
    const indent = indentBefore(text, last.keyStart);
    if (indent === undefined) return { start: last.value.end, end: last.value.end, text: pairs('', '') };
    const at = endOfLineComments(text, last.value.end);
    return { start: at, end: at, text: `${eol}${pairs(indent, eol)}` };
  }
  const outer = indentBefore(text, dict.start);
  if (outer === undefined) {
    return dict.selfClosing ? { start: dict.start, end: dict.end, text: `<dict>${pairs('', '')}</dict>` } : { start: dict.closeStart, end: dict.closeStart, text: pairs('', '') };
  }
  const indent = outer + unit;
  const body = `${eol}${pairs(indent, eol)}${eol}${outer}`;
  if (dict.selfClosing) return { start: dict.start, end: dict.end, text: `<dict>${body}</dict>` };
  // An empty <dict> with only whitespace inside: the whitespace is replaced by the new entries.
  const inside = text.slice(dict.contentStart, dict.closeStart);
  if (/^[ \t\r\n]*$/.test(inside)) return { start: dict.contentStart, end: dict.closeStart, text: body };
  return { start: dict.closeStart, end: dict.closeStart, text: `${pairs(indent, eol)}${eol}${outer}` };
}

/**
 * The same plist with EnvironmentVariables[key] = value: only the bytes of that one string change
 * (or, when the key or the dict is missing, the few lines that add it, indented like their
 * neighbours); every other byte of the file stays. PlistError when the file can't be read safely.
 */
export function withEnvironmentVariable(content: Buffer, file: string, key: string, value: string): Buffer {
  const { text, root } = parsePlist(content, file);
  if (root.kind !== 'dict') throw new PlistError(file, 'malformed', 'its top level is not a <dict>');
  const firstNewline = text.indexOf('\n');
  const eol = firstNewline > 0 && text[firstNewline - 1] === '\r' ? '\r\n' : '\n';
  const keyText = escapeText(key);
  const valueText = escapeText(value);
  const pair = (indent: string, lineEnd: string) => `${indent}<key>${keyText}</key>${lineEnd}${indent}<string>${valueText}</string>`;

  const unit = indentUnit(text, root);
  // The last of duplicate keys is the one Core Foundation (and so launchd) keeps.
  const environment = lastEntry(root.entries, 'EnvironmentVariables');
  let splice: Splice;
  if (environment) {
    const dict = environment.value;
    if (dict.kind !== 'dict') throw new PlistError(file, 'malformed', `line ${lineOf(text, dict.start)}: its EnvironmentVariables is not a <dict>`);
    const existing = lastEntry(dict.entries, key);
    if (existing?.value.kind === 'string' && !existing.value.selfClosing) splice = { start: existing.value.contentStart, end: existing.value.contentEnd, text: valueText };
    else if (existing) splice = { start: existing.value.start, end: existing.value.end, text: `<string>${valueText}</string>` };
    else splice = appendToDict(text, dict, pair, eol, unit);
  } else {
    const environmentPair = (indent: string, lineEnd: string) => {
      const inner = lineEnd ? indent + unit : '';
      return `${indent}<key>EnvironmentVariables</key>${lineEnd}${indent}<dict>${lineEnd}${pair(inner, lineEnd)}${lineEnd}${indent}</dict>`;
    };
    splice = appendToDict(text, root, environmentPair, eol, unit);
  }
  const byteStart = Buffer.byteLength(text.slice(0, splice.start), 'utf8');
  const byteEnd = Buffer.byteLength(text.slice(0, splice.end), 'utf8');
  const edited = Buffer.concat([content.subarray(0, byteStart), Buffer.from(splice.text, 'utf8'), content.subarray(byteEnd)]);
  // The edit must read back as exactly the change it was meant to be.
  if (environmentVariables(readPlistDict(edited, file))[key] !== value) throw new Error(`editing ${file} did not give ${key}=${value}; stigmer-setup changed nothing`);
  return edited;
}
