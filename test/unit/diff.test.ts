import { describe, expect, it } from 'vitest';
import type { FileChange } from '../../platforms/types.ts';
import { buildPlist, withEnvironmentVariable } from '../../platforms/darwin/plist-file.ts';
import { unifiedDiff } from '../../scripts/diff.ts';
import { jsonChanges, renderChanges } from '../../scripts/report.ts';

describe('the plan diff', () => {
  it('shows a changed line as the old one removed, then the new one added, as git diff does', () => {
    const before = '[Service]\nEnvironment="OLLAMA_HOST=127.0.0.1:11434"\n';
    const after = '[Service]\nEnvironment="OLLAMA_HOST=0.0.0.0:11434"\n';
    expect(unifiedDiff(before, after, '/etc/x.conf').split('\n')).toEqual([
      '--- /etc/x.conf',
      '+++ /etc/x.conf',
      '@@ -1,2 +1,2 @@',
      ' [Service]',
      '-Environment="OLLAMA_HOST=127.0.0.1:11434"',
      '+Environment="OLLAMA_HOST=0.0.0.0:11434"',
    ]);
  });

  it('a new file is all additions from /dev/null, a removed one all removals to it', () => {
    expect(unifiedDiff(undefined, 'a\nb\n', '/f').split('\n')).toEqual(['--- /dev/null', '+++ /f', '@@ -0,0 +1,2 @@', '+a', '+b']);
    expect(unifiedDiff('a\nb\n', undefined, '/f').split('\n')).toEqual(['--- /f', '+++ /dev/null', '@@ -1,2 +0,0 @@', '-a', '-b']);
  });

  it('keeps the lines both sides share in place, around removals and additions', () => {
    expect(unifiedDiff('# note\n[Service]\nA=1\n', '[Service]\nA=1\nB=2\n', '/f').split('\n').slice(3)).toEqual(['-# note', ' [Service]', ' A=1', '+B=2']);
  });
});

/**
 * Applies a unified diff (ours) to `before`, hunk by hunk, checking every context and removed line
 * against the old file: if the result is `after`, the hunks and their @@ ranges are right.
 */
function applyDiff(before: string, diff: string): string {
  const a = before.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  let next = 0;
  const lines = diff.split('\n').slice(2);
  for (let index = 0; index < lines.length; ) {
    const header = /^@@ -(\d+),(\d+) \+(\d+),(\d+) @@$/.exec(lines[index]!);
    if (!header) throw new Error(`not a hunk header: ${lines[index]}`);
    const oldStart = Number(header[2]) === 0 ? Number(header[1]) : Number(header[1]) - 1;
    out.push(...a.slice(next, oldStart));
    next = oldStart;
    const [oldCount, newCount] = [Number(header[2]), Number(header[4])];
    let seenOld = 0;
    let seenNew = 0;
    for (index++; index < lines.length && !lines[index]!.startsWith('@@'); index++) {
      const line = lines[index]!;
      const text = line.slice(1);
      if (line[0] === ' ' || line[0] === '-') {
        if (a[next] !== text) throw new Error(`line ${next + 1} is ${JSON.stringify(a[next])}, the diff says ${JSON.stringify(text)}`);
        next++;
        seenOld++;
      }
      if (line[0] === ' ' || line[0] === '+') {
        out.push(text);
        seenNew++;
      }
    }
    if (seenOld !== oldCount || seenNew !== newCount) throw new Error(`hunk ${header[0]} holds ${seenOld} old and ${seenNew} new lines`);
  }
  out.push(...a.slice(next));
  return `${out.join('\n')}\n`;
}

/** A reproducible stream of numbers in [0, 1): the same "random" edits on every run. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

const ENV_LINES = Array.from({ length: 30_000 }, (_, index) => `OLLAMA_VAR_${index}=value-${index}`);

describe('the plan diff on large files (bounded: Myers with at most MAX_EDITS edits, else a summary)', () => {
  it('a 30,000-line file where one line changes shows that line, -old then +new, with 3 lines of context and its line numbers', () => {
    const before = `${ENV_LINES.join('\n')}\n`;
    const after = before.replace('OLLAMA_VAR_15000=value-15000\n', 'OLLAMA_HOST=0.0.0.0:11434\n');
    expect(unifiedDiff(before, after, '/f').split('\n')).toEqual([
      '--- /f',
      '+++ /f',
      '@@ -14998,7 +14998,7 @@',
      ' OLLAMA_VAR_14997=value-14997',
      ' OLLAMA_VAR_14998=value-14998',
      ' OLLAMA_VAR_14999=value-14999',
      '-OLLAMA_VAR_15000=value-15000',
      '+OLLAMA_HOST=0.0.0.0:11434',
      ' OLLAMA_VAR_15001=value-15001',
      ' OLLAMA_VAR_15002=value-15002',
      ' OLLAMA_VAR_15003=value-15003',
    ]);
  });

  it('two completely different 30,000-line files give a one-line summary, not 60,000 lines or an out-of-memory abort', () => {
    const before = `${ENV_LINES.join('\n')}\n`;
    const after = `${ENV_LINES.map((line) => `# ${line}`).join('\n')}\n`;
    expect(unifiedDiff(before, after, '/f').split('\n')).toEqual([
      '--- /f',
      '+++ /f',
      'more than 1,000 lines removed or added in lines 1–30,000 (of 30,000 before, 30,000 after); diff not shown (too large)',
    ]);
  });

  it('a change at the first or the last line, an append, a removal, and changes close together sharing a hunk', () => {
    const before = `${ENV_LINES.join('\n')}\n`;
    const cases = [
      before.replace('OLLAMA_VAR_0=', 'OLLAMA_HOST=1\nOLLAMA_VAR_0='),
      `${before}OLLAMA_HOST=0.0.0.0\n`,
      before.replace('OLLAMA_VAR_29999=value-29999\n', ''),
      before.replace('OLLAMA_VAR_100=value-100\n', 'x\n').replace('OLLAMA_VAR_105=value-105\n', 'y\n'),
    ];
    for (const after of cases) expect(applyDiff(before, unifiedDiff(before, after, '/f'))).toBe(after);
    expect(unifiedDiff(before, `${before}OLLAMA_HOST=0.0.0.0\n`, '/f').split('\n').slice(2)).toEqual([
      '@@ -29998,3 +29998,4 @@',
      ' OLLAMA_VAR_29997=value-29997',
      ' OLLAMA_VAR_29998=value-29998',
      ' OLLAMA_VAR_29999=value-29999',
      '+OLLAMA_HOST=0.0.0.0',
    ]);
    // Lines 101 and 106 change: one hunk from line 98 to 109, not two overlapping ones.
    expect(unifiedDiff(before, cases[3]!, '/f').split('\n').filter((line) => line.startsWith('@@'))).toEqual(['@@ -98,12 +98,12 @@']);
  });

  it('hunks that a patch tool would apply: random scattered edits to a 3,000-line file', () => {
    const random = seeded(12);
    const base = ENV_LINES.slice(0, 3000);
    for (let round = 0; round < 20; round++) {
      const edited = [...base];
      for (let edit = 0; edit < 40; edit++) {
        const at = Math.floor(random() * edited.length);
        const kind = random();
        if (kind < 0.33) edited.splice(at, 1);
        else if (kind < 0.66) edited.splice(at, 0, `NEW_${round}_${edit}=1`);
        else edited[at] = `CHANGED_${round}_${edit}=2`;
      }
      const before = `${base.join('\n')}\n`;
      const after = `${edited.join('\n')}\n`;
      const diff = unifiedDiff(before, after, '/f');
      expect(applyDiff(before, diff)).toBe(after);
      // Every removal comes before the additions of the same change, as in git diff.
      expect(diff).not.toMatch(/^\+.*\n-/m);
    }
  });

  it('more than 1,000 lines added or removed in one place: the summary says how many, and where', () => {
    const before = `${ENV_LINES.join('\n')}\n`;
    const extra = Array.from({ length: 5000 }, (_, index) => `NEW_${index}=1`).join('\n');
    expect(unifiedDiff(before, `${before}${extra}\n`, '/f').split('\n')[2]).toBe('5,000 lines added after line 30,000 (of 30,000 before, 35,000 after); diff not shown (too large)');
    expect(unifiedDiff(before, `${extra}\n${before}`, '/f').split('\n')[2]).toBe('5,000 lines added at the start (of 30,000 before, 35,000 after); diff not shown (too large)');
    expect(unifiedDiff(before, `${ENV_LINES.slice(0, 100).join('\n')}\n${ENV_LINES.slice(2100).join('\n')}\n`, '/f').split('\n')[2]).toBe('2,000 lines removed from line 101 (of 30,000 before, 28,000 after); diff not shown (too large)');
  });

  it('a file of more than 200,000 lines is summarised without being split into lines', () => {
    const huge = 'x\n'.repeat(250_000);
    expect(unifiedDiff(huge, `${huge}y\n`, '/f').split('\n')).toEqual(['--- /f', '+++ /f', 'more than 200,000 lines before, more than 200,000 lines after; diff not shown (too large)']);
    expect(unifiedDiff(undefined, huge, '/f').split('\n')[2]).toBe('0 lines before, more than 200,000 lines after; diff not shown (too large)');
  });
});

describe('plan diffs of a 30,000-line version of each file the tool edits, through the renderer that prints them', () => {
  const modify = (path: string, before: string | Buffer, after: string | Buffer): FileChange => ({
    type: 'file',
    path,
    action: 'modify',
    before: Buffer.from(before),
    after: Buffer.from(after),
    mode: 0o644,
    privileged: false,
  });
  const envFile = `${ENV_LINES.join('\n')}\n`;
  // A LaunchAgent with 15,000 variables (30,000 lines of them), edited by the real plist editor.
  const bigPlist = buildPlist({ Label: 'homebrew.mxcl.ollama', EnvironmentVariables: Object.fromEntries(ENV_LINES.slice(0, 15_000).map((line) => line.split('='))), RunAtLoad: true });
  const dropIn = `[Service]\n${ENV_LINES.map((line) => `Environment="${line}"`).join('\n')}\n`;
  const cases = [
    {
      file: modify('/Users/ada/.homebrew/services/ollama.env', envFile, envFile.replace('OLLAMA_VAR_20000=value-20000\n', 'OLLAMA_HOST=0.0.0.0:11434\n')),
      changed: ['-OLLAMA_VAR_20000=value-20000', '+OLLAMA_HOST=0.0.0.0:11434'],
      different: modify('/Users/ada/.homebrew/services/ollama.env', envFile, envFile.replace(/^/gm, 'export ')),
    },
    {
      file: modify('/Users/ada/Library/LaunchAgents/homebrew.mxcl.ollama.plist', bigPlist, withEnvironmentVariable(bigPlist, 'x.plist', 'OLLAMA_HOST', '0.0.0.0:11434')),
      changed: ['+      <key>OLLAMA_HOST</key>', '+      <string>0.0.0.0:11434</string>'],
      different: modify('/Users/ada/Library/LaunchAgents/homebrew.mxcl.ollama.plist', bigPlist, bigPlist.toString('utf8').replace(/<string>/g, '<string>x')),
    },
    {
      file: modify('/etc/systemd/system/ollama.service.d/stigmer.conf', dropIn, dropIn.replace('Environment="OLLAMA_VAR_5=value-5"', 'Environment="OLLAMA_HOST=0.0.0.0:11434"')),
      changed: ['-Environment="OLLAMA_VAR_5=value-5"', '+Environment="OLLAMA_HOST=0.0.0.0:11434"'],
      different: modify('/etc/systemd/system/ollama.service.d/stigmer.conf', dropIn, '[Service]\nEnvironment="OLLAMA_HOST=0.0.0.0:11434"\n'.repeat(15_000)),
    },
  ];

  for (const { file, changed, different } of cases) {
    it(`${file.path}: one changed line is shown in the plan and in --json; a completely different file is summarised`, () => {
      const human = renderChanges([file], true).split('\n');
      expect(human[0]).toBe(`Would modify ${file.path}`);
      const diffLines = human.slice(1).map((line) => line.replace(/^ {4}/, ''));
      expect(diffLines.filter((line) => /^[-+](?![-+]{2} )/.test(line))).toEqual(changed);
      expect(diffLines.length).toBeLessThan(20);
      // --json: one object, whose diff field is the same text.
      const json = JSON.parse(JSON.stringify({ changes: jsonChanges([file], [false]) })) as { changes: { diff: string }[] };
      expect(json.changes[0]!.diff.split('\n')).toEqual(diffLines);

      const summary = jsonChanges([different], [false])[0] as { diff: string };
      expect(summary.diff.split('\n')).toHaveLength(3);
      expect(summary.diff).toMatch(/^more than 1,000 lines removed or added in lines \d+–[\d,]+ \(of 30,0\d\d before, [\d,]+ after\); diff not shown \(too large\)$/m);
    });
  }
});
