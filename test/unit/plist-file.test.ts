import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build as buildWithPlistPackage } from 'plist';
import { describe, expect, it } from 'vitest';
import { buildPlist, environmentVariables, readPlistDict, withEnvironmentVariable } from '../../platforms/darwin/plist-file.ts';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/darwin');
/** Fixtures as bytes: the editor's promise is about bytes. */
const darwin = (name: string) => readFileSync(path.join(FIXTURES, name));
const FILE = '/Users/ada/Library/LaunchAgents/homebrew.mxcl.ollama.plist';

/**
 * `edited` must be `original` with `inserted` put in right after the first (or last) `after`, every other
 * byte as it was: the edit is one span of new bytes at one place.
 */
function expectInserted(original: Buffer, edited: Buffer, after: string, inserted: string, last = false): void {
  const at = last ? original.lastIndexOf(after) : original.indexOf(after);
  expect(at).toBeGreaterThanOrEqual(0);
  const end = at + Buffer.byteLength(after);
  expect(edited.toString('latin1')).toBe(Buffer.concat([original.subarray(0, end), Buffer.from(inserted), original.subarray(end)]).toString('latin1'));
}

/**
 * A launchd job with every value type a plist has, laid out by hand the way people do (comments,
 * CRLF line ends, a value Core Foundation writes as <real>30.0</real>, the int64 extremes).
 * Built here, not a fixture: no public plist holds all of these at once.
 */
const EVERY_TYPE = [
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
  '<!-- hand-edited: keep the throttle at 30 seconds -->',
  '<plist version="1.0">',
  '<dict>',
  '\t<key>EnvironmentVariables</key>',
  '\t<dict>',
  '\t\t<key>OLLAMA_HOST</key>',
  '\t\t<string>127.0.0.1:11434</string>',
  '\t\t<key>OLLAMA_ORIGINS</key>',
  '\t\t<string>app://*,&lt;local&gt; &amp; more</string>',
  '\t</dict>',
  '\t<key>ThrottleInterval</key>',
  '\t<real>30.0</real>',
  '\t<key>Ratio</key>',
  '\t<real>-1.5e3</real>',
  '\t<key>Int64Max</key>',
  '\t<integer>9223372036854775807</integer>',
  '\t<key>Int64Min</key>',
  '\t<integer>-9223372036854775808</integer>',
  '\t<key>Negative</key>',
  '\t<integer>-5</integer>',
  '\t<key>Hex</key>',
  '\t<integer>0x1F</integer>',
  '\t<key>Since</key>',
  '\t<date>2024-02-29T23:59:59Z</date>',
  '\t<key>Blob</key>',
  '\t<data>',
  '\tPGJpbmFyeSBndW5rPg==',
  '\t</data>',
  '\t<key>KeepAlive</key>',
  '\t<dict>',
  '\t\t<key>SuccessfulExit</key>',
  '\t\t<false/>',
  '\t\t<key>Crashed</key>',
  '\t\t<true></true>',
  '\t</dict>',
  '\t<key>ProgramArguments</key>',
  '\t<array>',
  '\t\t<string>/opt/homebrew/opt/ollama/bin/ollama</string>',
  '\t\t<string>serve</string>',
  '\t\t<!-- a comment inside an array -->',
  '\t\t<array><dict/><array/><string/></array>',
  '\t</array>',
  '\t<key>Note</key>',
  '\t<string><![CDATA[a <raw> & unescaped section]]> and Måns &#x263A; &#9731;</string>',
  '</dict>',
  '</plist>',
  '',
].join('\r\n');

describe('reading a plist the way Core Foundation does', () => {
  it('reads Apple’s own serialisation of every value type (CPython’s NSPropertyListSerialization sample)', () => {
    const dict = readPlistDict(darwin('cpython-plistlib-apple-testdata.plist'), 'testdata.plist');
    expect(dict.aBigInt).toBe(9223372036854775764n);
    expect(dict.aBigInt2).toBe(9223372036854775852n);
    expect(dict.aNegativeBigInt).toBe(-80000000000);
    expect(dict.aNegativeInt).toBe(-5);
    expect(dict.anInt).toBe(728);
    expect(dict.aFloat).toBe(0.5);
    expect(dict.aDate).toEqual(new Date(Date.UTC(2004, 9, 26, 10, 33, 33)));
    expect(dict.aList).toEqual(['A', 'B', 12, 32.5, [1, 2, 3]]);
    expect(dict.aDict).toEqual({
      aFalseValue: false,
      aTrueValue: true,
      aUnicodeValue: 'Mässig, Maß',
      anotherString: "<hello & 'hi' there!>",
      deeperDict: { a: 17, b: 32.5, c: [1, 2, 'text'] },
    });
    expect(dict.someData).toEqual(Buffer.from('<binary gunk>'));
    expect(dict.someMoreData).toEqual(Buffer.from('<lots of binary gunk>\0\x01\x02\x03'.repeat(10), 'latin1'));
    expect(dict.nestedData).toEqual([dict.someMoreData]);
    expect(dict.anEmptyDict).toEqual({});
    expect(dict.anEmptyList).toEqual([]);
    expect(dict['Åbenraa']).toBe('That was a unicode key.');
  });

  it('reads every value type with its own type: a real stays a number, int64 extremes exact (bigint), CDATA and references decoded', () => {
    const dict = readPlistDict(Buffer.from(EVERY_TYPE), FILE);
    expect(dict.ThrottleInterval).toBe(30);
    expect(dict.Ratio).toBe(-1500);
    expect(dict.Int64Max).toBe(9223372036854775807n);
    expect(dict.Int64Min).toBe(-9223372036854775808n);
    expect(dict.Hex).toBe(31);
    expect(dict.Since).toEqual(new Date(Date.UTC(2024, 1, 29, 23, 59, 59)));
    expect(dict.KeepAlive).toEqual({ SuccessfulExit: false, Crashed: true });
    expect(dict.ProgramArguments).toEqual(['/opt/homebrew/opt/ollama/bin/ollama', 'serve', [{}, [], '']]);
    expect(dict.Note).toBe('a <raw> & unescaped section and Måns ☺ ☃');
    expect(environmentVariables(dict)).toEqual({ OLLAMA_HOST: '127.0.0.1:11434', OLLAMA_ORIGINS: 'app://*,<local> & more' });
  });

  it('a key that appears twice: the last one wins, as in Core Foundation; "__proto__" is a key like any other', () => {
    const text = '<plist><dict><key>A</key><string>1</string><key>A</key><string>2</string><key>__proto__</key><dict><key>polluted</key><true/></dict></dict></plist>';
    const dict = readPlistDict(Buffer.from(text), FILE);
    expect(dict.A).toBe('2');
    expect(Object.getPrototypeOf(dict)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(dict, '__proto__')?.value).toEqual({ polluted: true });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('editing EnvironmentVariables in place: only the OLLAMA_HOST bytes change', () => {
  it('replaces the existing OLLAMA_HOST string and nothing else: the real, the int64s, comments, CRLF all stay byte for byte', () => {
    const original = Buffer.from(EVERY_TYPE);
    const edited = withEnvironmentVariable(original, FILE, 'OLLAMA_HOST', '0.0.0.0:11434');
    expect(edited.toString('utf8')).toBe(EVERY_TYPE.replace('<string>127.0.0.1:11434</string>', '<string>0.0.0.0:11434</string>'));
    expect(edited.toString('utf8')).toContain('<real>30.0</real>');
    expect(edited.toString('utf8')).toContain('<integer>9223372036854775807</integer>');
  });

  it('adds OLLAMA_HOST to Homebrew’s generated plist as one inserted span, tab-indented like its neighbours', () => {
    const original = darwin('homebrew.mxcl.ollama-camjn-dotfiles.plist');
    const edited = withEnvironmentVariable(original, FILE, 'OLLAMA_HOST', '0.0.0.0:11434');
    expectInserted(original, edited, '<string>/opt/homebrew/lib</string>', '\n\t\t<key>OLLAMA_HOST</key>\n\t\t<string>0.0.0.0:11434</string>');
    expect(environmentVariables(readPlistDict(edited, FILE))).toEqual({ ...environmentVariables(readPlistDict(original, FILE)), OLLAMA_HOST: '0.0.0.0:11434' });
  });

  it('follows the user’s own indentation when the last variable was added by hand with spaces', () => {
    const original = darwin('homebrew.mxcl.ollama-user-edited-mxthz.plist');
    const edited = withEnvironmentVariable(original, FILE, 'OLLAMA_HOST', '[::]:11434');
    expectInserted(original, edited, '<string>-1</string>', '\n    <key>OLLAMA_HOST</key>\n    <string>[::]:11434</string>');
  });

  it('creates EnvironmentVariables after the last top-level key when the job has none, in the file’s own indentation', () => {
    const cases = [
      // Apple's sample: tabs. Ollama.app's Info.plist: two spaces, the last value an array.
      { name: 'cpython-plistlib-apple-testdata.plist', after: '<string>That was a unicode key.</string>', inserted: '\n\t<key>EnvironmentVariables</key>\n\t<dict>\n\t\t<key>OLLAMA_HOST</key>\n\t\t<string>0.0.0.0:11434</string>\n\t</dict>' },
      { name: 'Ollama.app-Info.plist', after: '    </array>', inserted: '\n    <key>EnvironmentVariables</key>\n    <dict>\n      <key>OLLAMA_HOST</key>\n      <string>0.0.0.0:11434</string>\n    </dict>' },
    ];
    for (const { name, after, inserted } of cases) {
      const original = darwin(name);
      const edited = withEnvironmentVariable(original, name, 'OLLAMA_HOST', '0.0.0.0:11434');
      expectInserted(original, edited, after, inserted, true);
      const before = readPlistDict(original, name);
      expect(readPlistDict(edited, name)).toEqual({ ...before, EnvironmentVariables: { OLLAMA_HOST: '0.0.0.0:11434' } });
    }
  });

  it('keeps the layout of a file the plist package wrote (two-space indents, no final newline)', () => {
    const original = buildPlist({ Label: 'x', ProgramArguments: ['/bin/true'] });
    const edited = withEnvironmentVariable(original, FILE, 'OLLAMA_HOST', '0.0.0.0:11434');
    expectInserted(original, edited, '    </array>', '\n    <key>EnvironmentVariables</key>\n    <dict>\n      <key>OLLAMA_HOST</key>\n      <string>0.0.0.0:11434</string>\n    </dict>');
  });

  it('replaces an empty <string/> or a non-string value of OLLAMA_HOST with the string, and fills an empty EnvironmentVariables dict', () => {
    const job = (environment: string) => `<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n\t<key>EnvironmentVariables</key>\n\t${environment}\n\t<key>Label</key>\n\t<string>x</string>\n</dict>\n</plist>\n`;
    const edit = (text: string) => withEnvironmentVariable(Buffer.from(text), FILE, 'OLLAMA_HOST', '0.0.0.0:11434').toString('utf8');
    expect(edit(job('<dict><key>OLLAMA_HOST</key><string/></dict>'))).toBe(job('<dict><key>OLLAMA_HOST</key><string>0.0.0.0:11434</string></dict>'));
    expect(edit(job('<dict><key>OLLAMA_HOST</key><integer>1</integer></dict>'))).toBe(job('<dict><key>OLLAMA_HOST</key><string>0.0.0.0:11434</string></dict>'));
    expect(edit(job('<dict/>'))).toBe(job('<dict>\n\t\t<key>OLLAMA_HOST</key>\n\t\t<string>0.0.0.0:11434</string>\n\t</dict>'));
    expect(edit(job('<dict>\n\t</dict>'))).toBe(job('<dict>\n\t\t<key>OLLAMA_HOST</key>\n\t\t<string>0.0.0.0:11434</string>\n\t</dict>'));
  });

  it('edits the EnvironmentVariables and the OLLAMA_HOST that launchd keeps when a key is duplicated: the last', () => {
    const text = '<plist><dict><key>EnvironmentVariables</key><dict><key>OLLAMA_HOST</key><string>a</string></dict><key>EnvironmentVariables</key><dict><key>OLLAMA_HOST</key><string>b</string><key>OLLAMA_HOST</key><string>c</string></dict></dict></plist>';
    const edited = withEnvironmentVariable(Buffer.from(text), FILE, 'OLLAMA_HOST', 'new').toString('utf8');
    expect(edited).toBe(text.replace('<string>c</string>', '<string>new</string>'));
  });

  it('a comment after the last variable, on its line, stays with it', () => {
    const original = Buffer.from(darwin('homebrew.mxcl.ollama-camjn-dotfiles.plist').toString('utf8').replace('<string>/opt/homebrew/lib</string>', '<string>/opt/homebrew/lib</string> <!-- for Metal -->'));
    const edited = withEnvironmentVariable(original, FILE, 'OLLAMA_HOST', '0.0.0.0:11434');
    expectInserted(original, edited, '<!-- for Metal -->', '\n\t\t<key>OLLAMA_HOST</key>\n\t\t<string>0.0.0.0:11434</string>');
  });

  it('a one-line plist stays one line; a value with & and < is escaped', () => {
    const text = '<plist version="1.0"><dict><key>Label</key><string>x</string></dict></plist>';
    const edited = withEnvironmentVariable(Buffer.from(text), FILE, 'OLLAMA_HOST', 'a&b<c>');
    expect(edited.toString('utf8')).toBe('<plist version="1.0"><dict><key>Label</key><string>x</string><key>EnvironmentVariables</key><dict><key>OLLAMA_HOST</key><string>a&amp;b&lt;c&gt;</string></dict></dict></plist>');
    expect(environmentVariables(readPlistDict(edited, FILE)).OLLAMA_HOST).toBe('a&b<c>');
  });

  it('keeps a UTF-8 byte-order mark and non-ASCII bytes elsewhere in the file', () => {
    const original = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), darwin('homebrew.mxcl.ollama-camjn-dotfiles.plist')]);
    const withUnicode = Buffer.from(original.toString('utf8').replace('<string>q8_0</string>', '<string>q8_0 — Måns 🦙</string>'));
    const edited = withEnvironmentVariable(withUnicode, FILE, 'OLLAMA_HOST', '0.0.0.0:11434');
    expectInserted(withUnicode, edited, '<string>/opt/homebrew/lib</string>', '\n\t\t<key>OLLAMA_HOST</key>\n\t\t<string>0.0.0.0:11434</string>');
  });

  it('refuses to write a control character into the file', () => {
    expect(() => withEnvironmentVariable(darwin('homebrew.mxcl.ollama-camjn-dotfiles.plist'), FILE, 'OLLAMA_HOST', '0.0.0.0\n:1')).toThrow(/control character/);
  });
});

describe('building a new plist (the login LaunchAgent)', () => {
  it('writes the same bytes the plist package wrote, so an agent from an earlier version still compares equal', () => {
    const agent = { Label: 'com.stigmer.ollama-host', ProgramArguments: ['/bin/launchctl', 'setenv', 'OLLAMA_HOST', '0.0.0.0:11434'], RunAtLoad: true };
    expect(buildPlist(agent).toString('utf8')).toBe(buildWithPlistPackage(agent));
    const varied = { S: 'a&<>"\'', T: true, F: false, E: [], D: {}, N: 3, R: 1.5, Nested: { A: ['x', { B: 'y' }] } };
    expect(buildPlist(varied).toString('utf8')).toBe(buildWithPlistPackage(varied));
    expect(readPlistDict(buildPlist(varied), 'x')).toEqual(varied);
  });
});
