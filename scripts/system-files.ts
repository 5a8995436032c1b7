/**
 * Writing and removing files that may belong to root. As root, or where we can write anyway (a
 * --root folder of our own), the context's fs does it directly. Otherwise the content goes to a
 * private temporary file and `sudo install` puts it in place: only that step is privileged.
 */
import path from 'node:path';
import type { Context } from './context.ts';

export class PrivilegeError extends Error {}

export function sudoFailure(stderr: string, sudo: string[]): string {
  if (/password is required/i.test(stderr) && sudo.includes('-n')) {
    return 'sudo needs a password, and --yes never prompts. Run `sudo -v` first, or run stigmer-setup as root.';
  }
  return stderr.trim() || 'sudo failed';
}

async function runPrivileged(ctx: Context, sudo: string[], argv: string[]): Promise<void> {
  const full = [...sudo, ...argv];
  const result = await ctx.exec(full[0] as string, full.slice(1), { inheritTerminal: sudo.length > 0 && !sudo.includes('-n') });
  if (result.failure === 'not-found') throw new PrivilegeError(`${full[0]} was not found on PATH.`);
  if (result.exitCode !== 0) throw new PrivilegeError(`${full.join(' ')} failed: ${sudoFailure(result.stderr, sudo)}`);
}

export async function writeSystemFile(ctx: Context, file: string, content: string, sudo: string[]): Promise<void> {
  if (ctx.isRoot || sudo.length === 0 || (await ctx.fs.canWrite(file))) {
    await ctx.fs.writeText(file, content);
    return;
  }
  // A private (0700) folder, not a name in the shared /tmp: root is about to copy this file into
  // /etc, so nobody else may get a chance to swap it in between.
  const folder = await ctx.fs.makePrivateTempDir('stigmer-setup-');
  const temporary = path.join(folder, path.basename(file));
  try {
    await ctx.fs.writeText(temporary, content, 0o600);
    // install -D creates the parent folders; -m 0644 because unit files must be world-readable.
    await runPrivileged(ctx, sudo, ['install', '-D', '-m', '0644', temporary, file]);
  } finally {
    await ctx.fs.removeTree(folder);
  }
}

export async function removeSystemFile(ctx: Context, file: string, sudo: string[]): Promise<void> {
  if (ctx.isRoot || sudo.length === 0 || (await ctx.fs.canWrite(file))) {
    await ctx.fs.remove(file);
    return;
  }
  await runPrivileged(ctx, sudo, ['rm', '-f', file]);
}

export async function removeSystemTree(ctx: Context, dir: string, sudo: string[]): Promise<void> {
  if (ctx.isRoot || sudo.length === 0 || (await ctx.fs.canWrite(dir))) {
    await ctx.fs.removeTree(dir);
    return;
  }
  await runPrivileged(ctx, sudo, ['rm', '-rf', dir]);
}

