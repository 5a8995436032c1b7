/**
 * The built CLI as a process, the way shells use it: its output piped into `head`, redirected to a
 * full disk, printed on a terminal that a hostile process name would like to drive, with and
 * without colour. No Docker needed; a real stand-in Ollama with a crafted argv supplies the name.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE } from './cli.ts';
import { freePort, STANDIN_PATH } from './support/index.ts';

/** Run the bundle in bash; `tail` is the rest of the pipeline. Returns the bundle's own exit code and stderr. */
function shell(args: string[], tail: string, env: Record<string, string> = {}): { code: number; stderr: string; stdout: string } {
  const script = `"$0" "$@" 2>/tmp/stigmer-process-test.err ${tail}; code=\${PIPESTATUS[0]}; cat /tmp/stigmer-process-test.err >&2; exit $code`;
  const result = spawnSync('bash', ['-c', script, process.execPath, BUNDLE, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  return { code: result.status ?? -1, stderr: result.stderr, stdout: result.stdout };
}

const STACK_TRACE = /\n\s+at |Error: write|EPIPE|ENOSPC|node:internal/;

describe('output that can not be written', () => {
  it('`--help | head -c 10` and `doctor | true`: a reader that went away is not a crash', () => {
    const help = shell(['--help'], '| head -c 10 >/dev/null');
    expect(help.code).toBe(0);
    expect(help.stderr).not.toMatch(STACK_TRACE);
    for (const args of [['doctor'], ['doctor', '--json']]) {
      const gone = shell(args, '| true');
      expect([0, 1]).toContain(gone.code);
      expect(gone.stderr).not.toMatch(STACK_TRACE);
      const cut = shell(args, '| head -c 10 >/dev/null');
      expect([0, 1]).toContain(cut.code);
      expect(cut.stderr).not.toMatch(STACK_TRACE);
    }
  });

  it('`doctor > /dev/full`: a full disk is not a crash', () => {
    const full = shell(['doctor'], '>/dev/full');
    expect([0, 1]).toContain(full.code);
    expect(full.stderr).not.toMatch(STACK_TRACE);
  });
});

describe('what a process calls itself never reaches the terminal as control codes', () => {
  let port: number;
  let standin: ReturnType<typeof spawn>;

  beforeAll(async () => {
    port = await freePort();
    // A stand-in Ollama whose command line carries escape sequences (it ignores extra arguments).
    standin = spawn(process.execPath, [STANDIN_PATH, 'serve', '\x1b[2J\x1b[31mevil\x1b[0m', '\x1b]0;title\x07', '\u202eesrever'], {
      env: { ...process.env, OLLAMA_HOST: `127.0.0.1:${port}` },
      stdio: 'ignore',
    });
    for (let attempt = 0; attempt < 100; attempt++) {
      const probe = spawnSync('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`], { timeout: 2000 });
      if (probe.status === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
  afterAll(() => void standin.kill());

  it('doctor names the owning process with its escape sequences removed', () => {
    const result = shell(['doctor', '--host', `127.0.0.1:${port}`], '');
    expect(result.stdout).toContain(`(pid ${standin.pid}:`);
    expect(result.stdout).toContain('evil');
    expect(result.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f\u202e]/);
  });

  it('colours only when asked: a non-empty FORCE_COLOR wins; off a terminal there is none', () => {
    const doctor = (env: Record<string, string>) => {
      const clean: NodeJS.ProcessEnv = { ...process.env, ...env };
      for (const name of ['FORCE_COLOR', 'NO_COLOR']) if (!(name in env)) delete clean[name];
      return spawnSync(process.execPath, [BUNDLE, 'doctor', '--host', `127.0.0.1:${port}`], { encoding: 'utf8', timeout: 60_000, env: clean }).stdout;
    };
    expect(doctor({ FORCE_COLOR: '1' })).toMatch(/\x1b\[32m✓\x1b\[0m ollama\.host-probe/);
    expect(doctor({ FORCE_COLOR: '0' })).not.toMatch(/\x1b/);
    expect(doctor({ FORCE_COLOR: '', NO_COLOR: '1' })).not.toMatch(/\x1b/);
    expect(doctor({})).not.toMatch(/\x1b/);
  });
});

describe('Ctrl-C while a change is applied', () => {
  it('is held off: the step finishes and rolls back, instead of leaving a half-applied change', async () => {
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'stigmer-sigint-'));
    try {
      const bin = path.join(scratch, 'bin');
      const root = path.join(scratch, 'root');
      // A systemctl whose first restart takes a second and fails: the run is interrupted in the
      // middle of it, and must still roll back and restart on the old configuration.
      mkdirSync(bin);
      mkdirSync(root);
      writeFileSync(
        path.join(bin, 'systemctl'),
        [
          '#!/bin/sh',
          'case "$1" in',
          "  show) printf 'LoadState=loaded\\nFragmentPath=/etc/systemd/system/ollama.service\\nDropInPaths=\\nEnvironment=\\nActiveState=active\\nNeedDaemonReload=no\\nMainPID=0\\n' ;;",
          `  restart) if [ ! -e ${scratch}/restarted ]; then touch ${scratch}/restarted; sleep 1; echo 'Job for ollama.service failed.' >&2; exit 1; fi ;;`,
          'esac',
          'exit 0',
          '',
        ].join('\n'),
        { mode: 0o755 },
      );
      const child = spawn(process.execPath, [BUNDLE, '--yes', '--root', root, '--host', '0.0.0.0:11434'], {
        env: { ...process.env, PATH: `${bin}:/usr/bin:/bin` },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      // Interrupt once the first restart is under way.
      for (let waited = 0; waited < 100 && !existsSync(path.join(scratch, 'restarted')); waited++) await new Promise((resolve) => setTimeout(resolve, 50));
      child.kill('SIGINT');
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(stderr).toContain('finishing the current change first, so nothing is left half-applied');
      expect(stderr).toContain('Every change was rolled back, and Ollama was restarted on the configuration it had before.');
      expect(code).toBe(1);
      expect(existsSync(path.join(root, 'etc/systemd/system/ollama.service.d/stigmer-setup.conf'))).toBe(false);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe('CI=true', () => {
  it('never prompts, even on a terminal: setup without --yes exits 2 and says how to run unattended', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'stigmer-ci-root-'));
    try {
      // `script` gives the bundle a real pseudo-terminal on stdin and stdout.
      const command = `CI=true "${process.execPath}" "${BUNDLE}" --root "${root}"`;
      const result = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', timeout: 60_000, input: '' });
      expect(result.status).toBe(2);
      expect(result.stdout).toContain('Run with --yes to apply unattended, or --dry-run to preview.');
      expect(result.stdout).not.toContain('Apply these changes?');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

