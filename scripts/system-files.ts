/**
 * Files that may belong to root, and the commands that change the system. As root, or where we
 * can write anyway (a --root folder of our own, the user's own Library on a Mac), the context's fs
 * does it directly. Otherwise only that step is elevated: the content goes to a private temporary
 * file and `sudo install` puts it in place with the mode and owner it must have.
 *
 * Whichever way a file is written, the target and its folder are inspected first: a FIFO, a device,
 * a folder, or a symlink where a file belongs is refused with one line, never followed or opened.
 */
import type { PlatformPath } from 'node:path';
import { UnsafePathError, type Context, type ExecOptions, type ExecResult, type FileContent, type WriteOptions } from './context.ts';
import { lastLine } from './text.ts';

/** A step that failed; the message names the command and says why, on one line. */
export class StepError extends Error {}

const STEP_TIMEOUT_MS = 120_000;

// C0 controls, DEL, C1 controls, and the bidi controls and line separators that reorder or split a line.
const DISPLAY_CONTROL = /[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** An argument holding a control character, as a $'…' word (bash, zsh, POSIX.1-2024 sh): every control escaped. */
function escapedWord(arg: string): string {
  const escapes: Record<string, string> = { '\n': '\\n', '\t': '\\t', '\r': '\\r', '\\': '\\\\', "'": "\\'" };
  const body = [...arg]
    .map((char) => {
      if (escapes[char]) return escapes[char];
      if (!DISPLAY_CONTROL.test(char)) return char;
      const code = char.codePointAt(0) as number;
      return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
    })
    .join('');
  return `$'${body}'`;
}

export function describeCommand(argv: readonly string[]): string {
  // For display only; execution always passes the argv array as is. A value restored by undo may
  // hold a newline or an escape code: it is shown escaped, never raw on the terminal.
  return argv.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : DISPLAY_CONTROL.test(arg) ? escapedWord(arg) : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Why `argv` failed, naming it: never "sudo failed" for a command that ran without sudo. */
export function describeFailure(argv: readonly string[], result: ExecResult, timeoutMs = STEP_TIMEOUT_MS): string {
  // A long command (a PowerShell script) is cut, so that the reason after it is never lost.
  const command = describeCommand(argv);
  const shown = `\`${command.length > 200 ? `${command.slice(0, 197)}...` : command}\``;
  if (result.failure === 'not-found') return `\`${argv[0]}\` was not found on PATH (needed for ${shown}).`;
  if (result.failure === 'timeout') return `${shown} did not finish within ${Math.round(timeoutMs / 1000)} s, so it was stopped.`;
  if (result.failure === 'spawn-error') return `${shown} could not start: ${lastLine(result.stderr)}`;
  if (argv[0] === 'sudo' && argv.includes('-n') && /password is required/i.test(result.stderr)) {
    return 'sudo needs a password, and --yes never prompts. Run `sudo -v` first, or run stigmer-setup as root.';
  }
  return `${shown} failed (exit ${result.exitCode}): ${lastLine(result.stderr) || lastLine(result.stdout) || 'no output'}`;
}

/** Run one step of a change. Interactive sudo may ask for a password, so it gets the terminal. */
export async function runStep(ctx: Context, argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
  const interactiveSudo = argv[0] === 'sudo' && !argv.includes('-n');
  const timeoutMs = options.timeoutMs ?? STEP_TIMEOUT_MS;
  const result = await ctx.exec(argv[0] as string, argv.slice(1), { ...options, timeoutMs, inheritTerminal: interactiveSudo });
  if (result.failure || result.exitCode !== 0) throw new StepError(describeFailure(argv, result, timeoutMs));
  return result;
}

/** The file layer every change and the undo record go through, with elevation decided per path. */
export class SystemFiles {
  constructor(
    private readonly ctx: Context,
    /** Prefix for elevated steps ([] when we are root or the platform has none). */
    readonly elevate: string[],
    private readonly path: PlatformPath,
  ) {}

  /** Whether writing `file` needs elevation: not root, elevation available, and not writable by us. */
  async needsElevation(file: string): Promise<boolean> {
    return !this.ctx.isRoot && this.elevate.length > 0 && !(await this.ctx.fs.canWrite(file));
  }

  read(file: string): Promise<FileContent | undefined> {
    return this.ctx.fs.read(file);
  }

  /** Folders above `file` that don't exist yet, outermost first (what a write would create). */
  async missingFolders(file: string): Promise<string[]> {
    const missing: string[] = [];
    let probe = this.path.dirname(file);
    for (let depth = 0; depth < 64; depth++) {
      if (await this.ctx.fs.exists(probe)) break;
      missing.unshift(probe);
      const parent = this.path.dirname(probe);
      if (parent === probe) break;
      probe = parent;
    }
    return missing;
  }

  /** Refuse a target that is not a regular file (or missing), and a folder that is a symlink. */
  private async checkTarget(file: string): Promise<void> {
    const target = await this.ctx.fs.inspect(file);
    if (target && target.kind !== 'file') throw new UnsafePathError(file, target.kind);
    const folder = await this.ctx.fs.inspect(this.path.dirname(file));
    if (folder && folder.kind !== 'directory') throw new UnsafePathError(this.path.dirname(file), folder.kind, 'a folder');
  }

  /** Write `file` in one step with this mode and owner; returns the folders it had to create. */
  async write(file: string, content: Buffer | string, options: WriteOptions): Promise<{ createdDirs: string[] }> {
    await this.checkTarget(file);
    if (!(await this.needsElevation(file))) return this.ctx.fs.write(file, content, options);
    const createdDirs = await this.missingFolders(file);
    for (const folder of createdDirs) await runStep(this.ctx, [...this.elevate, 'install', '-d', '-m', '0755', folder]);
    // A private (0700) folder, not a name in the shared /tmp: root is about to copy this file into
    // /etc, so nobody else may get a chance to swap it in between.
    const staging = await this.ctx.fs.makePrivateTempDir('stigmer-setup-');
    const temporary = this.path.join(staging, 'content');
    try {
      await this.ctx.fs.write(temporary, content, { mode: 0o600 });
      await this.installFrom(temporary, file, options);
    } finally {
      await this.ctx.fs.removeTree(staging);
    }
    return { createdDirs };
  }

  /**
   * `install` copies `source` to `file` with the mode and owner given; GNU install replaces a
   * symlink at the target rather than writing through it. Used for files only root may write,
   * and to restore a backup that only root may read.
   */
  async installFrom(source: string, file: string, options: WriteOptions): Promise<void> {
    await this.checkTarget(file);
    const owner = options.uid !== undefined ? ['-o', String(options.uid), '-g', String(options.gid ?? options.uid)] : [];
    await runStep(this.ctx, [...this.elevate, 'install', '-m', options.mode.toString(8).padStart(4, '0'), ...owner, '--', source, file]);
  }

  async remove(file: string): Promise<void> {
    const target = await this.ctx.fs.inspect(file);
    if (!target) return;
    if (target.kind !== 'file' && target.kind !== 'symlink') throw new UnsafePathError(file, target.kind);
    if (!(await this.needsElevation(file))) return this.ctx.fs.remove(file);
    await runStep(this.ctx, [...this.elevate, 'rm', '-f', '--', file]);
  }

  /** Make sure a folder exists (0755), creating it and its parents with elevation if needed. */
  async ensureFolder(folder: string): Promise<void> {
    const seen = await this.ctx.fs.inspect(folder);
    if (seen?.kind === 'directory') return;
    if (seen) throw new UnsafePathError(folder, seen.kind, 'a folder');
    if (!(await this.needsElevation(folder))) {
      await this.ctx.fs.ensureDir(folder);
      return;
    }
    for (const missing of [...(await this.missingFolders(folder)), folder]) await runStep(this.ctx, [...this.elevate, 'install', '-d', '-m', '0755', missing]);
  }

  /** Remove folders (innermost first) that a run created, as long as they are empty. */
  async removeEmptyFolders(folders: string[]): Promise<void> {
    for (const folder of [...folders].reverse()) {
      const seen = await this.ctx.fs.inspect(folder);
      if (!seen || seen.kind !== 'directory') continue;
      if (await this.needsElevation(folder)) {
        const result = await this.ctx.exec(this.elevate[0] as string, [...this.elevate.slice(1), 'rmdir', '--', folder], { timeoutMs: STEP_TIMEOUT_MS });
        if (result.exitCode !== 0) return; // not empty: someone put something there; leave it and the folders above
      } else if (!(await this.ctx.fs.removeEmptyDir(folder))) {
        return;
      }
    }
  }

  async removeTree(folder: string): Promise<void> {
    if (!(await this.ctx.fs.exists(folder))) return;
    if (!(await this.needsElevation(folder))) return this.ctx.fs.removeTree(folder);
    await runStep(this.ctx, [...this.elevate, 'rm', '-rf', '--', folder]);
  }

  /**
   * Create the lock: exclusively, failing when something is there. Elevated, `ln -s` is the
   * exclusive create (symlink(2) fails on an existing name), and the link's target carries the pid.
   */
  async createLock(file: string, pid: number): Promise<boolean> {
    await this.ensureFolder(this.path.dirname(file));
    if (!(await this.needsElevation(file))) return this.ctx.fs.createExclusive(file, `${pid}\n`, 0o644);
    const result = await this.ctx.exec(this.elevate[0] as string, [...this.elevate.slice(1), 'ln', '-s', '--', String(pid), file], { timeoutMs: STEP_TIMEOUT_MS });
    if (result.exitCode === 0) return true;
    if (/exists/i.test(result.stderr)) return false;
    throw new StepError(describeFailure([...this.elevate, 'ln', '-s', '--', String(pid), file], result));
  }
}
