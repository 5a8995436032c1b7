/**
 * Text that came from the system (process names, file contents, command output) is printed to a
 * person's terminal. A process can name itself "\x1b]0;pwned\x07" or carry "\x1b[2J": printed as
 * is, that rewrites the terminal. Everything human-readable goes through stripControl first.
 */
import { isIPv4, isIPv6 } from 'node:net';

// CSI (ESC [ … final byte), OSC (ESC ] … BEL or ST), and any other two-byte ESC sequence.
const ESCAPE_SEQUENCES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?/g;
// C0 controls except tab and newline, DEL, C1 controls, and the bidi marks, overrides and isolates
// that make a name render as something else.
const CONTROL_CHARACTERS = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const ANY_CONTROL = /[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

export function stripControl(text: string): string {
  return text.replace(ESCAPE_SEQUENCES, '').replace(CONTROL_CHARACTERS, '');
}

/** A single-line field another program printed (a process or image name, a value): no control characters at all. */
export function cleanField(text: string): string {
  return stripControl(text).replace(/[\t\n]/g, '');
}

/** One line of at most `max` characters, for quoting a system message inside ours. */
export function oneLine(text: string, max = 300): string {
  const line = stripControl(text).replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** The last non-empty line of a command's output: where tools put the error that matters. */
export function lastLine(text: string): string {
  const lines = text.split('\n').map((line) => line.trim()).filter(Boolean);
  return oneLine(lines.at(-1) ?? '');
}

// Bounds for parsers of other programs' output: a misbehaving or hostile tool must not make a
// parser do unbounded work.
/** Parsers look at no more than this many characters of any one command's output. */
export const MAX_INPUT_CHARS = 1 << 20;
/** Lines longer than this are not output we understand; parsers skip them. */
export const MAX_LINE_CHARS = 8192;
/** Parsers stop after this many lines. */
export const MAX_LINES = 20_000;

/**
 * The lines of another program's output, bounded: at most MAX_INPUT_CHARS characters and MAX_LINES
 * lines. A leading byte-order mark and every NUL are dropped first (a UTF-16LE stream read as
 * UTF-8 comes out as `T\0C\0P\0…`), and `\n`, `\r\n` and the `\r\r\n` of some Windows tools all
 * end a line. Never throws, whatever `text` is at runtime.
 */
export function boundedLines(text: unknown): string[] {
  if (typeof text !== 'string' || text.length === 0) return [];
  let body = text.slice(0, MAX_INPUT_CHARS);
  if (body.charCodeAt(0) === 0xfeff) body = body.slice(1);
  body = body.replace(/\u0000/g, '');
  return body.split('\n', MAX_LINES).map((line) => line.replace(/\r+$/, ''));
}

/** True if `value` holds any control character, newline and tab included, or a bidi control. */
export function hasControl(value: string): boolean {
  return ANY_CONTROL.test(value);
}

/** A non-negative decimal integer no larger than `max`, or undefined. Accepts only ASCII digits. */
export function parseDecimal(value: string | undefined, max = 0x7fffffff): number | undefined {
  if (value === undefined || !/^[0-9]{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n <= max ? n : undefined;
}

/** A TCP/UDP port number (0–65535) written in decimal, or undefined. */
export function parsePort(value: string | undefined): number | undefined {
  return parseDecimal(value, 65535);
}

/**
 * 4 or 6 if `address` is a literal IPv4 or IPv6 address (an IPv6 address may carry a `%zone`
 * suffix, as Windows prints link-local addresses), else undefined.
 */
export function ipFamily(address: string): 4 | 6 | undefined {
  if (address.length === 0 || address.length > 64) return undefined;
  if (isIPv4(address)) return 4;
  const zone = address.indexOf('%');
  const bare = zone === -1 ? address : address.slice(0, zone);
  if (zone !== -1 && !/^%[0-9A-Za-z._-]{1,32}$/.test(address.slice(zone))) return undefined;
  return isIPv6(bare) ? 6 : undefined;
}
