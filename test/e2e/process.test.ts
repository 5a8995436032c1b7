/**
 * The built CLI as a process, the way shells use it: its output piped into `head`, redirected to a
 * full disk, printed on a terminal that a hostile process name would like to drive, with and
 * without colour. No Docker needed; a real stand-in Ollama with a crafted argv supplies the name.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/**
 * A Linux `--root` sandbox: a systemctl shim that answers `show` for a loaded, active ollama.service
 * and runs `restart` as `restartScript` says (a docker shim that is not there keeps detection off
 * the shared daemon).
 */
function linuxSandbox(prefix: string, restartScript: (scratch: string) => string, showScript: (scratch: string) => string = () => '') {
  const scratch = mkdtempSync(path.join(os.tmpdir(), prefix));
  const bin = path.join(scratch, 'bin');
  const root = path.join(scratch, 'root');
  mkdirSync(bin);
  mkdirSync(root);
  writeFileSync(
    path.join(bin, 'systemctl'),
    [
      '#!/bin/sh',
      'case "$1" in',
      `  show) ${showScript(scratch)} printf 'LoadState=loaded\\nFragmentPath=/etc/systemd/system/ollama.service\\nDropInPaths=\\nEnvironment=\\nActiveState=active\\nNeedDaemonReload=no\\nMainPID=0\\n' ;;`,
      `  restart) ${restartScript(scratch)} ;;`,
      'esac',
      'exit 0',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  writeFileSync(path.join(bin, 'docker'), '#!/bin/sh\necho "docker: not in this sandbox" >&2\nexit 127\n', { mode: 0o755 });
  const env = { ...process.env, PATH: `${bin}:/usr/bin:/bin` };
  const start = (args: string[]) => {
    const child = spawn(process.execPath, [BUNDLE, '--yes', '--root', root, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = { stdout: '', stderr: '' };
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    return { child, output, exited };
  };
  return { scratch, root, env, start, dropIn: path.join(root, 'etc/systemd/system/ollama.service.d/stigmer-setup.conf'), lock: path.join(root, 'var/lib/stigmer-setup/lock'), cleanup: () => rmSync(scratch, { recursive: true, force: true }) };
}

async function waitFor(file: string): Promise<void> {
  for (let waited = 0; waited < 200 && !existsSync(file); waited++) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(existsSync(file)).toBe(true);
}

describe('Ctrl-C while a change is applied', () => {
  it.each([
    ['SIGINT', 130],
    // A terminal closed while Ollama is stopped: held the same way, so Ollama is started again.
    ['SIGHUP', 129],
  ] as const)('%s is held off: the step finishes and rolls back, instead of leaving a half-applied change (exit %i)', async (signal, exitCode) => {
    // A systemctl whose first restart takes a second and fails: the run is interrupted in the
    // middle of it, and must still roll back and restart on the old configuration.
    const sandbox = linuxSandbox('stigmer-sigint-', (scratch) => `if [ ! -e ${scratch}/restarted ]; then touch ${scratch}/restarted; sleep 1; echo 'Job for ollama.service failed.' >&2; exit 1; fi`);
    try {
      const { child, output, exited } = sandbox.start(['--host', '0.0.0.0:11434']);
      // Interrupt once the first restart is under way.
      await waitFor(path.join(sandbox.scratch, 'restarted'));
      child.kill(signal);
      const code = await exited;
      expect(output.stderr).toContain('finishing the current change first, so nothing is left half-applied');
      // Then it reports the signal, and that the rollback left nothing changed.
      expect(output.stderr).toContain(`Stopped by ${signal} while applying; nothing is changed: ` + '`systemctl restart ollama` failed (exit 1): Job for ollama.service failed. Every change was rolled back, and Ollama was restarted on the configuration it had before.');
      expect(code).toBe(exitCode);
      expect(existsSync(sandbox.dropIn)).toBe(false);
      expect(existsSync(sandbox.lock)).toBe(false);
    } finally {
      sandbox.cleanup();
    }
  });
});

describe('a signal after the change is applied, while setup waits for Ollama to answer', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
    // The terminal closing: Node's default would end the run on the spot.
    ['SIGHUP', 129],
  ] as const)('%s: exits %i, says the change is applied and how to undo it, and --json prints one object', async (signal, exitCode) => {
    // The restart succeeds; nothing listens on the port afterwards, so setup waits (up to 30 s).
    const sandbox = linuxSandbox('stigmer-signal-wait-', (scratch) => `touch ${scratch}/restarted`);
    try {
      const port = await freePort();
      const { child, output, exited } = sandbox.start(['--json', '--host', `0.0.0.0:${port}`]);
      await waitFor(path.join(sandbox.scratch, 'restarted'));
      // The restart was the last step of the apply: a moment later setup is probing the port.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const sentAt = Date.now();
      child.kill(signal);
      const code = await exited;
      expect(code).toBe(exitCode);
      // It stops at once, not after the 30 s wait.
      expect(Date.now() - sentAt).toBeLessThan(5000);
      const message = `Stopped by ${signal} while waiting for Ollama to answer after the restart: the change is applied and stays in place, but it was not verified. Check it with: npx stigmer-setup doctor --root ${sandbox.root}. Undo it with: npx stigmer-setup undo --root ${sandbox.root}`;
      expect(output.stderr).toContain(message);
      expect(output.stderr).not.toContain('nothing was changed');
      const report = JSON.parse(output.stdout) as { ok: boolean; signal: string; error: string; changes: { applied: boolean }[]; checks: unknown[] };
      expect(report).toMatchObject({ ok: false, signal, error: message, checks: [] });
      expect(report.changes.map((change) => change.applied)).toEqual([true, true, true]);
      expect(existsSync(sandbox.dropIn)).toBe(true);
      expect(existsSync(sandbox.lock)).toBe(false);
    } finally {
      sandbox.cleanup();
    }
  });
});

describe('a signal before anything changed', () => {
  it('SIGTERM during detection stops its commands at once: exit 143, "nothing was changed", one JSON object', async () => {
    // A `systemctl show` that hangs: the signal must kill it, not wait for it.
    const sandbox = linuxSandbox('stigmer-signal-detect-', () => 'exit 0', (scratch) => `touch ${scratch}/showing; sleep 30;`);
    try {
      const { child, output, exited } = sandbox.start(['doctor', '--json']);
      await waitFor(path.join(sandbox.scratch, 'showing'));
      const sentAt = Date.now();
      child.kill('SIGTERM');
      expect(await exited).toBe(143);
      expect(Date.now() - sentAt).toBeLessThan(5000);
      expect(output.stderr).toContain('Stopped by SIGTERM while looking at Ollama and containers; nothing was changed.');
      expect(JSON.parse(output.stdout)).toMatchObject({ ok: false, command: 'doctor', signal: 'SIGTERM', changes: [], checks: [] });
    } finally {
      sandbox.cleanup();
    }
  });

  it('SIGTERM at the prompt abandons the question: exit 143, "nothing was changed", the process ends', async () => {
    const sandbox = linuxSandbox('stigmer-signal-prompt-', (scratch) => `touch ${scratch}/restarted`);
    try {
      const pidFile = path.join(sandbox.scratch, 'pid');
      // `script` gives the bundle a real terminal, so setup asks; the shell records the bundle's pid.
      const inner = `echo $$ > ${pidFile}; exec "${process.execPath}" "${BUNDLE}" --root "${sandbox.root}" --host 0.0.0.0:11434`;
      const env: NodeJS.ProcessEnv = { ...sandbox.env };
      delete env.CI;
      const child = spawn('script', ['-qec', `sh -c '${inner}'`, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      for (let waited = 0; waited < 200 && !output.includes('Apply these changes?'); waited++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(output).toContain('Apply these changes?');
      process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      expect(code).toBe(143);
      expect(output).toContain('Stopped by SIGTERM before applying; nothing was changed.');
      expect(existsSync(path.join(sandbox.scratch, 'restarted'))).toBe(false);
      expect(existsSync(sandbox.dropIn)).toBe(false);
    } finally {
      sandbox.cleanup();
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

