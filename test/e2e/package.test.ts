/**
 * What npm users get: `npm pack` holds one bundled file and no dependencies, and
 * `npx stigmer-setup` runs it from the packed tarball.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_DIR } from './support/index.ts';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'stigmer-setup-pack-'));
const packageJson = JSON.parse(readFileSync(path.join(REPO_DIR, 'package.json'), 'utf8')) as { version: string; dependencies?: unknown };
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the published package', () => {
  it('packs only the bundle (the bin and its chunks), with no runtime dependencies', () => {
    expect(packageJson.dependencies).toBeUndefined();
    const pack = spawnSync('npm', ['pack', '--json', '--pack-destination', scratch], { cwd: REPO_DIR, encoding: 'utf8', timeout: 120_000 });
    expect(pack.status, pack.stderr).toBe(0);
    const [info] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
    const files = (info?.files ?? []).map((file) => file.path).sort();
    expect(files.filter((file) => !file.startsWith('dist/chunks/'))).toEqual(['README.md', 'dist/stigmer-setup.mjs', 'package.json']);
    // The chunks are the bundle's own output: built code only, no sources, no maps.
    expect(files.filter((file) => file.startsWith('dist/chunks/')).every((file) => /^dist\/chunks\/[\w-]+\.mjs$/.test(file))).toBe(true);
    expect(files.some((file) => file.startsWith('dist/chunks/cli-'))).toBe(true);
  });

  it('runs with `npx stigmer-setup` from the tarball', () => {
    const tarball = path.join(scratch, `stigmer-setup-${packageJson.version}.tgz`);
    const npx = (args: string[]) =>
      spawnSync('npx', ['--yes', `--package=${tarball}`, 'stigmer-setup', ...args], {
        cwd: scratch,
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, npm_config_cache: path.join(scratch, 'npm-cache') },
      });
    const version = npx(['--version']);
    expect(version.status, version.stderr).toBe(0);
    expect(version.stdout.trim()).toBe(packageJson.version);
    const help = npx(['--help']);
    expect(help.stdout).toContain('Usage: stigmer-setup [setup|doctor|undo]');
    const bad = npx(['--host', 'nonsense']);
    expect(bad.status).toBe(2);
  });
});
