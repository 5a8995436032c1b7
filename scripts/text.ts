/**
 * Text that came from the system (process names, file contents, command output) is printed to a
 * person's terminal. A process can name itself "\x1b]0;pwned\x07" or carry "\x1b[2J": printed as
 * is, that rewrites the terminal. Everything human-readable goes through stripControl first.
 */

// CSI (ESC [ … final byte), OSC (ESC ] … BEL or ST), and any other two-byte ESC sequence.
const ESCAPE_SEQUENCES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?/g;
// C0 controls except tab and newline, DEL, C1 controls, and the bidi overrides that reorder text.
const CONTROL_CHARACTERS = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

export function stripControl(text: string): string {
  return text.replace(ESCAPE_SEQUENCES, '').replace(CONTROL_CHARACTERS, '');
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
