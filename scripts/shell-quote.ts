/**
 * "The exact command" must be one command: a value that came from the machine (a model name, a
 * path, an environment variable) is quoted for the shell the user will paste it into, never pasted
 * raw. One helper per shell; a value no quoting can make safe to paste (a control character, which
 * a terminal may act on or which splits the line) is refused by the caller's own grammar or here.
 */

/** Characters that never need quoting in POSIX sh (and that no shell treats specially in a word). */
const POSIX_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;
/** C0 controls, DEL and C1 controls: a pasted command must not carry them, quoted or not. */
const CONTROL = /[\x00-\x1f\x7f-\x9f]/;

export class UnquotableError extends Error {
  constructor(readonly value: string) {
    super(`${JSON.stringify(value)} holds a control character and can't be put into a command to paste`);
    this.name = 'UnquotableError';
  }
}

/**
 * One word for POSIX sh (Linux and macOS): as is when it holds only safe characters, otherwise in
 * single quotes, where nothing is special but the quote itself, written as '\''.
 */
export function quotePosix(value: string): string {
  if (CONTROL.test(value)) throw new UnquotableError(value);
  if (POSIX_SAFE.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * One verbatim string for PowerShell (Windows): single quotes, inside which nothing expands. A
 * quote is doubled, and PowerShell takes the typographic single quotes (U+2018–U+201B) as quotes
 * too, so each of those is doubled as well.
 */
export function quotePowerShell(value: string): string {
  if (CONTROL.test(value)) throw new UnquotableError(value);
  return `'${value.replace(/['\u2018\u2019\u201a\u201b]/g, (quote) => quote + quote)}'`;
}
