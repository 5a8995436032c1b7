/**
 * Signals arriving where they are least convenient, and `--root` values that are not a folder.
 * The rules (interrupt.ts) and the whole CLI through run(argv, ctx) with the fake context, which
 * raises a signal the way the bin's handler passes one on.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../scripts/cli.ts';
import { Interrupter } from '../../scripts/interrupt.ts';
import { freePort } from '../support/standin-process.ts';
import { failed, NOT_FOUND, ok, tempRoot, testContext, type TestContext } from './support/context.ts';
import { FakeSystemd } from './support/fake-systemd.ts';

let root: string;
let cleanup: () => Promise<void>;
let port: number;
let systemd: FakeSystemd;

beforeEach(async () => {
  ({ root, cleanup } = await tempRoot());
  port = await freePort();
  systemd = new FakeSystemd(root, `127.0.0.1:${port}`);
  await systemd.start();
});
afterEach(async () => {
  await systemd.stop();
  await cleanup();
});

const dropIn = () => path.join(root, 'etc/systemd/system/ollama.service.d/stigmer-setup.conf');
const lockFile = () => path.join(root, 'var/lib/stigmer-setup/lock');
const exists = (file: string) => stat(file).then(() => true, () => false);

function machine(options: Parameters<typeof testContext>[0] & { onExec?: (command: string, args: string[]) => void } = {}): TestContext {
  return testContext({
    exec: async (command, args) => {
      options.onExec?.(command, args);
      if (command === 'sudo') return args[0] === '-v' ? ok() : args[1] === 'systemctl' ? systemd.exec(args.slice(2)) : ok();
      if (command === 'systemctl') return systemd.exec(args);
      return NOT_FOUND;
    },
    ...options,
  });
}

describe('the rules: held while a change is applied, then delivered once', () => {
  it('a signal outside hold is delivered; inside, it waits for the work and the first one wins', async () => {
    const outside = new Interrupter();
    expect(outside.raise('SIGTERM')).toBe('delivered');
    expect(outside.received).toBe('SIGTERM');
    expect(outside.mayStart).toBe(false);

    const inside = new Interrupter();
    const seen: string[] = [];
    await inside.hold(async () => {
      seen.push(inside.raise('SIGINT'), inside.raise('SIGTERM'));
      // Still not delivered: the change goes on, and may start commands.
      expect(inside.signal.aborted).toBe(false);
      expect(inside.mayStart).toBe(true);
    });
    expect(seen).toEqual(['held', 'repeated']);
    expect(inside.received).toBe('SIGINT');
    // After delivery, only held work (the lock's release) may start anything.
    expect(inside.mayStart).toBe(false);
    await inside.hold(async () => expect(inside.mayStart).toBe(true));
  });
});

describe('signals where they are least convenient', () => {
  it('SIGINT then SIGTERM during the apply: the change finishes, the first signal is reported (130)', async () => {
    const ctx: TestContext = machine({
      onExec: (command, args) => {
        if (command === 'systemctl' && args[0] === 'restart') {
          ctx.raise('SIGINT');
          ctx.raise('SIGTERM');
        }
      },
    });
    expect(await run(['--yes', '--json', '--root', root], ctx)).toBe(130);
    expect(ctx.json).toHaveLength(1);
    expect(ctx.json[0]).toMatchObject({ signal: 'SIGINT', ok: false });
    expect(ctx.stderr.filter((line) => line.startsWith('Stopped by'))).toEqual([expect.stringMatching(/^Stopped by SIGINT while applying: the change is applied/)]);
    expect(await readFile(dropIn(), 'utf8')).toContain(`OLLAMA_HOST=0.0.0.0:${port}`);
    expect(await exists(lockFile())).toBe(false);
  });

  it('Ctrl-C at sudo\'s password prompt is a signal, not a wrong password: nothing changed, 130', async () => {
    const ctx: TestContext = testContext({
      isTTY: true,
      isRoot: false,
      answers: [true],
      exec: (command, args) => {
        if (command === 'sudo' && args[0] === '-v') {
          // The terminal's Ctrl-C reaches sudo (it dies) and us.
          ctx.raise('SIGINT');
          return failed('', 1);
        }
        return command === 'systemctl' ? systemd.exec(args) : NOT_FOUND;
      },
    });
    expect(await run(['--root', root], ctx)).toBe(130);
    expect(ctx.stderr).toEqual(['Stopped by SIGINT before applying; nothing was changed.']);
    expect(systemd.restarts).toBe(0);
  });

  it('a signal while waiting for another run\'s lock stops at once, changes nothing and leaves that run\'s lock alone', async () => {
    const other = 4_000_000; // a pid the fake process table says is alive
    await mkdir(path.dirname(lockFile()), { recursive: true });
    await writeFile(lockFile(), `${other}\n`);
    const ctx = machine({ alive: (pid) => pid === other });
    let sleeps = 0;
    ctx.clock = {
      now: () => new Date(),
      sleep: async () => {
        // The lock's wait is the only wait before the apply.
        if (++sleeps === 1) ctx.raise('SIGTERM');
      },
    };
    expect(await run(['--yes', '--json', '--root', root], ctx)).toBe(143);
    expect(ctx.json).toEqual([expect.objectContaining({ signal: 'SIGTERM', error: 'Stopped by SIGTERM before applying; nothing was changed.' })]);
    expect(await readFile(lockFile(), 'utf8')).toBe(`${other}\n`);
    expect(await exists(dropIn())).toBe(false);
    expect(systemd.restarts).toBe(0);
  });
});

describe('the commands the message gives are one command each', () => {
  // Needs sh to paste the command into.
  it.skipIf(process.platform === 'win32')('a --root with a space and a quote is quoted for the shell in "Undo it with" and "Check it with"', async () => {
    const odd = path.join(root, "it's a root");
    await mkdir(odd);
    const oddSystemd = new FakeSystemd(odd, `127.0.0.1:${await freePort()}`);
    await oddSystemd.start();
    try {
      const ctx: TestContext = testContext({
        exec: (command, args) => (command === 'systemctl' ? oddSystemd.exec(args) : NOT_FOUND),
        onSpinner: (text) => void (text === 'Verifying…' && ctx.raise('SIGINT')),
      });
      expect(await run(['--yes', '--root', odd], ctx)).toBe(130);
      const quoted = `'${root}/it'\\''s a root'`;
      expect(ctx.stderr.at(-1)).toContain(`Check it with: npx stigmer-setup doctor --root ${quoted}. Undo it with: npx stigmer-setup undo --root ${quoted}`);
      // Pasted into sh, the quoted word is the folder again.
      expect(execFileSync('sh', ['-c', `printf %s ${quoted}`], { encoding: 'utf8' })).toBe(odd);
    } finally {
      await oddSystemd.stop();
    }
  });
});

// Symlinks and FIFOs as an unprivileged Windows user can't make them.
describe.skipIf(process.platform === 'win32')('--root that is not a folder', () => {
  it.each([
    ['a symlink loop', async (link: string) => symlink(link, link), (link: string) => `--root ${link} is a symlink to ${link}, which leads back to itself (a symlink loop).`],
    ['a symlink to a FIFO', async (link: string) => {
      execFileSync('mkfifo', [path.join(root, 'fifo')]);
      await symlink(path.join(root, 'fifo'), link);
    }, (link: string) => `--root ${link} is a symlink to ${path.join(root, 'fifo')}, which is a FIFO (named pipe), not a folder.`],
    ['a FIFO', async (link: string) => void execFileSync('mkfifo', [link]), (link: string) => `--root ${link} is a FIFO (named pipe), not a folder.`],
  ])('%s is refused with what it is, without opening it (exit 2)', async (_, make, expected) => {
    const link = path.join(root, 'not-a-root');
    await make(link);
    const ctx = machine();
    expect(await run(['doctor', '--json', '--root', link], ctx)).toBe(2);
    expect(ctx.stderr).toEqual([`stigmer-setup: ${expected(link)}`]);
    expect(ctx.calls).toEqual([]);
  });

  it('a control character in --root is refused: it would go into the undo command we print', async () => {
    const ctx = machine();
    expect(await run(['doctor', '--root', `${root}\n/x`], ctx)).toBe(2);
    expect(ctx.stderr[0]).toMatch(/--root must not contain control characters/);
  });
});
