/**
 * Huge files in the plan diff, through the whole CLI: `--dry-run --json` on a host whose own
 * drop-in has grown to 30,000 lines. Before, all 30,000 removed lines went into the JSON and the
 * plan. The case that aborted with a V8 out-of-memory trace (both sides large: a 30,000-line
 * ollama.env with one line changed) and the same for the plist and the drop-in go through the
 * renderer in diff.test.ts, since on Linux the drop-in is always rewritten whole.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../scripts/cli.ts';
import { unifiedDiff } from '../../scripts/diff.ts';
import { freePort } from '../support/standin-process.ts';
import { NOT_FOUND, ok, tempRoot, testContext } from './support/context.ts';
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

describe('the plan diff of a huge file, through --dry-run --json', () => {
  it('a 30,000-line drop-in gives exactly one JSON object, with the diff summarised, and nothing changes', async () => {
    const dropIn = path.join(root, 'etc/systemd/system/ollama.service.d/stigmer-setup.conf');
    await mkdir(path.dirname(dropIn), { recursive: true });
    const comments = Array.from({ length: 30_000 }, (_, index) => `# note ${index}: a line somebody's tool appended`).join('\n');
    const huge = `[Service]\nEnvironment="OLLAMA_HOST=127.0.0.1:${port}"\n${comments}\n`;
    await writeFile(dropIn, huge);
    await systemd.exec(['daemon-reload']); // loaded, as a drop-in on a real host is: a pending edit is refused
    const ctx = testContext({
      exec: async (command, args) => {
        // A sudo prefix is stripped: the fake machine runs privileged commands like any other.
        const unprefixed = command === 'sudo' ? (args[0] === '-n' ? args.slice(1) : args) : [command, ...args];
        if (unprefixed[0] === 'systemctl') return systemd.exec(unprefixed.slice(1));
        if (command === 'sudo') return ok();
        return NOT_FOUND; // no docker, no snap
      },
    });
    await run(['--dry-run', '--json', '--root', root], ctx);
    expect(ctx.json).toHaveLength(1);
    const report = ctx.json[0] as { dryRun: boolean; changes: { type: string; path?: string; diff?: string }[] };
    expect(report.dryRun).toBe(true);
    const change = report.changes.find((entry) => entry.type === 'file' && entry.path === dropIn);
    expect(change?.diff?.split('\n')).toHaveLength(3);
    // How many lines the new drop-in has is the renderer's business; the summary says it.
    expect(change?.diff?.split('\n')[2]).toMatch(/^more than 1,000 lines removed or added in lines \d+–30,002 \(of 30,002 before, \d+ after\); diff not shown \(too large\)$/);
    expect(await readFile(dropIn, 'utf8')).toBe(huge);
  });
});

// Review (r1): the diff says what really changes at the ends of a file.
describe('the plan diff at the ends of a file', () => {
  it('an existing empty file gains a line: the diff shows only that line added, not an empty line removed', () => {
    expect(unifiedDiff('', 'OLLAMA_HOST=0.0.0.0:11434\n', '/f').split('\n')).toEqual(['--- /f', '+++ /f', '@@ -0,0 +1,1 @@', '+OLLAMA_HOST=0.0.0.0:11434']);
  });

  it('a file without a final newline: the change to its last line is shown, with git\'s marker, not hidden as unchanged', () => {
    // Before, "A=1" and "A=1\n" split into the same lines: the plan listed the file as modified
    // and its diff showed no change at all.
    expect(unifiedDiff('A=1', 'A=1\n', '/f').split('\n')).toEqual(['--- /f', '+++ /f', '@@ -1,1 +1,1 @@', '-A=1', '\\ No newline at end of file', '+A=1']);
    expect(unifiedDiff('A=1', 'A=1\nB=2\n', '/f').split('\n')).toEqual(['--- /f', '+++ /f', '@@ -1,1 +1,2 @@', '-A=1', '\\ No newline at end of file', '+A=1', '+B=2']);
    // Where both sides lack it, the last line is common context, marked once.
    expect(unifiedDiff('B=1\nA=1', 'B=2\nA=1', '/f').split('\n')).toEqual(['--- /f', '+++ /f', '@@ -1,2 +1,2 @@', '-B=1', '+B=2', ' A=1', '\\ No newline at end of file']);
  });

  it('the same at the end of a large file (the hunked form)', () => {
    const body = Array.from({ length: 2000 }, (_, index) => `# line ${index}`).join('\n');
    const diff = unifiedDiff(body, `${body}\nOLLAMA_HOST=0.0.0.0:11434\n`, '/f').split('\n');
    expect(diff.slice(2)).toEqual(['@@ -1997,4 +1997,5 @@', ' # line 1996', ' # line 1997', ' # line 1998', '-# line 1999', '\\ No newline at end of file', '+# line 1999', '+OLLAMA_HOST=0.0.0.0:11434']);
  });
});
