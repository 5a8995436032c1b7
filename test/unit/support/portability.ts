/**
 * What a unit test needs from the machine beyond Node, and why it can't run on a CI runner that
 * lacks it (macOS and Windows in .github/workflows/ci.yml). Each entry is false where the test can
 * run, or the reason it is skipped: use it as `it.skipIf(needs.proc)(`… ${because(needs.proc)}`, …)`
 * so the runner's log says why. On Linux every entry is false: the suite there runs everything.
 */
import { spawnSync } from 'node:child_process';

const linux = process.platform === 'linux';
const windows = process.platform === 'win32';
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function has(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

export const needs = {
  /** The test finds real processes and sockets through /proc (the unit context is a Linux one). */
  proc: linux ? false : 'reads the real /proc (Linux only)',
  /** The test sets or reads POSIX permission bits: Windows has none (chmod 0600 changes nothing). */
  posixModes: windows ? 'needs POSIX file modes (Windows has none)' : false,
  /** The test makes a FIFO with mkfifo: Windows has neither. */
  mkfifo: windows ? 'needs mkfifo and FIFOs (not on Windows)' : false,
  /** The test makes symlinks: on Windows that takes a privilege CI runners don't grant. */
  symlinks: windows ? 'needs real symlinks (a privilege on Windows)' : false,
  /** The test chowns files to other users: only root can, and Windows has no uids. */
  root: isRoot ? false : 'needs root (chown to another uid)',
  /** The test runs bash scripts or #!/bin/sh shims as commands: Windows can't exec those. */
  posixShell: windows ? 'runs POSIX shell scripts as commands (not on Windows)' : false,
  /** Real ruby, to check our model of brew's Ruby against Ruby itself. */
  ruby: has('ruby', ['-e', '']) ? false : 'needs ruby',
  /** Real python3, to run the container probe's script against a local server. */
  python3: has('python3', ['-c', '']) ? false : 'needs python3',
  /** Real sqlite3, to read a real database. */
  sqlite3: has('sqlite3', ['-version']) ? false : 'needs sqlite3',
} as const;

/** A test-name suffix that says why it may be skipped: " (skipped where: reads the real /proc …)". */
export function because(...reasons: (string | false)[]): string {
  const given = reasons.filter((reason): reason is string => reason !== false);
  return given.length === 0 ? '' : ` [skipped: ${given.join('; ')}]`;
}

/** The first reason among several, for skipIf: truthy when any need is unmet. */
export function unmet(...reasons: (string | false)[]): string | false {
  return reasons.find((reason): reason is string => reason !== false) ?? false;
}
