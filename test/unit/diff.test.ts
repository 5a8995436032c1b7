import { describe, expect, it } from 'vitest';
import { unifiedDiff } from '../../scripts/diff.ts';

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
