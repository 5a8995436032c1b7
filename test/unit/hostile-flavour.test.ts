/**
 * Flavour detection reads the user's home and PATH: everything there is untrusted. A FIFO must
 * never block, a huge file is never read, a symlink loop or a folder is passed over, a relative
 * HOME or PATH entry never names the current folder, and no name reaches a message with a control
 * character in it.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { classifyFlavour, describeFlavour, readStigmerInstall } from '../../scripts/stigmer-flavour.ts';
import { tempRoot, testContext } from './support/context.ts';
import { because, needs } from './support/portability.ts';

let root: string;
let cleanup: () => Promise<void>;
let home: string;
let bin: string;

beforeEach(async () => {
  ({ root, cleanup } = await tempRoot());
  home = path.join(root, 'home');
  bin = path.join(root, 'bin');
  await mkdir(path.join(home, '.stigmer', 'data'), { recursive: true });
  await mkdir(bin);
});
afterEach(() => cleanup());

async function detect(env: Record<string, string> = {}, alive: (pid: number) => boolean = () => true) {
  const ctx = testContext({ env: { HOME: home, PATH: bin, ...env }, alive });
  const install = await readStigmerInstall(ctx, { home: ctx.env.HOME ?? '', env: ctx.env, path });
  return classifyFlavour(install, undefined, 'bridge');
}

const CONTROL = /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

describe('flavour detection on hostile input', () => {
  it.skipIf(needs.mkfifo)('never blocks on a FIFO as runner.pid, as the stigmer on PATH, or as the runtimes folder' + because(needs.mkfifo), async () => {
    execFileSync('mkfifo', [path.join(home, '.stigmer', 'data', 'runner.pid')]);
    execFileSync('mkfifo', [path.join(bin, 'stigmer')]);
    execFileSync('mkfifo', [path.join(home, '.stigmer', 'runtimes')]);
    const flavour = await detect();
    // Nothing on that machine is a Stigmer the test can name; only the ~/.stigmer folder itself is there.
    expect(flavour).toEqual({ kind: 'none', evidence: [] });
  });

  it('does not read a huge runner.pid, and a pid out of range is no pid', async () => {
    const pidFile = path.join(home, '.stigmer', 'data', 'runner.pid');
    await writeFile(pidFile, '1');
    await truncate(pidFile, 512 * 1024 * 1024);
    expect((await detect()).kind).toBe('none');
    await writeFile(pidFile, '99999999999999999999\n');
    expect((await detect()).kind).toBe('none');
    await writeFile(pidFile, '-1\n');
    expect((await detect()).kind).toBe('none');
  });

  it('passes over a folder named stigmer on PATH, and relative PATH entries', async () => {
    await mkdir(path.join(bin, 'stigmer'));
    // "." and "" name the current folder; whatever is there was not installed on PATH.
    const flavour = await detect({ PATH: ['.', '', 'relative/bin', bin].join(path.delimiter) });
    expect(flavour.kind).toBe('none');
  });

  it.skipIf(needs.symlinks)('passes over a symlink loop and a dangling link as the stigmer on PATH' + because(needs.symlinks), async () => {
    await symlink('loop-b', path.join(bin, 'loop-a'));
    await symlink('loop-a', path.join(bin, 'loop-b'));
    await symlink('loop-a', path.join(bin, 'stigmer'));
    await symlink('/nonexistent/stigmer.js', path.join(bin, 'stigmer.cmd'));
    expect((await detect()).kind).toBe('none');
  });

  it('reads nothing under a relative or empty HOME', async () => {
    const ctx = testContext({ env: { HOME: '.', PATH: '' } });
    expect(await readStigmerInstall(ctx, { home: '.stigmer-relative', env: ctx.env, path })).toEqual({ native: [], tsCli: [], goCli: [], configured: [] });
    expect(await readStigmerInstall(ctx, { home: '', env: ctx.env, path })).toEqual({ native: [], tsCli: [], goCli: [], configured: [] });
  });

  it('bounds a runtimes folder with thousands of entries and ignores names that are no version', async () => {
    const runtimes = path.join(home, '.stigmer', 'runtimes');
    await mkdir(runtimes);
    await Promise.all(Array.from({ length: 2000 }, (_, index) => mkdir(path.join(runtimes, index % 2 ? `x${index}` : `1.0.${index}`))));
    expect((await detect()).kind).toBe('none');
  });

  it.skipIf(needs.symlinks)('keeps control characters out of every name in the evidence: a forged line, an escape, a bidi override' + because(needs.symlinks), async () => {
    // A version folder can't hold a control character (only version-shaped names are looked at),
    // but a PATH folder, a Cellar path and package.json's version can.
    const evil = path.join(root, 'evil\n✓ all good\x1b[2J\u202e');
    const pkg = path.join(evil, 'lib', 'node_modules', '@stigmer', 'cli');
    await mkdir(path.join(pkg, 'dist', 'cli'), { recursive: true });
    await writeFile(path.join(pkg, 'dist', 'cli', 'stigmer.js'), '#!/usr/bin/env node\n');
    await writeFile(path.join(pkg, 'package.json'), JSON.stringify({ name: '@stigmer/cli', version: '1.0.0\n✓ forged' }));
    await mkdir(path.join(evil, 'bin'));
    await symlink('../lib/node_modules/@stigmer/cli/dist/cli/stigmer.js', path.join(evil, 'bin', 'stigmer'));
    const flavour = await detect({ PATH: path.join(evil, 'bin') });
    expect(flavour.kind).toBe('native');
    for (const line of flavour.evidence) expect(line).not.toMatch(CONTROL);
    expect(describeFlavour(flavour)).not.toMatch(CONTROL);
    // A version that is not one is left out, not quoted.
    expect(flavour.evidence[0]).not.toContain('forged');
  });

  it('does not take a huge package.json or a malformed one as a version', async () => {
    const pkg = path.join(root, 'npm', 'lib', 'node_modules', '@stigmer', 'cli');
    await mkdir(path.join(pkg, 'dist', 'cli'), { recursive: true });
    await writeFile(path.join(pkg, 'dist', 'cli', 'stigmer.js'), '#!/usr/bin/env node\n');
    await writeFile(path.join(pkg, 'package.json'), '{"name": "@stigmer/cli", "version": ');
    await mkdir(path.join(root, 'npm', 'bin'));
    await writeFile(path.join(root, 'npm', 'bin', 'stigmer'), '#!/bin/sh\nexec node "$(dirname "$0")/../lib/node_modules/@stigmer/cli/dist/cli/stigmer.js" "$@"\n');
    const flavour = await detect({ PATH: path.join(root, 'npm', 'bin') });
    expect(flavour.kind).toBe('native');
    expect(flavour.evidence[0]).toMatch(/^the TypeScript CLI on PATH/);
  });
});
