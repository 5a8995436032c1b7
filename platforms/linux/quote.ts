/**
 * A path or name that came from the machine (a drop-in path systemd reported, a unit name from a
 * process's cgroup), as one word of a POSIX sh command in a fix. One with a control character
 * can't be pasted safely at all: it is shown escaped instead, and this never throws, because
 * detection must not end on a hostile file name.
 */
import { quotePosix, UnquotableError } from '../../scripts/shell-quote.ts';

export function shellWord(value: string): string {
  try {
    return quotePosix(value);
  } catch (error) {
    if (error instanceof UnquotableError) return `${JSON.stringify(value)} (holds a control character: type it by hand)`;
    throw error;
  }
}
