/**
 * Hostile and malformed plists. Every one is refused before anything changes, with one line that
 * names the file and gives the plutil command to run; none of them takes unbounded time or
 * memory (the file is at most 1 MiB, nesting at most 512 deep, and every scan is linear).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { environmentVariables, MAX_PLIST_BYTES, PlistError, readPlistDict, withEnvironmentVariable } from '../../platforms/darwin/plist-file.ts';

const FILE = '/Users/ada/Library/LaunchAgents/homebrew.mxcl.ollama.plist';
const REAL = readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/darwin/homebrew.mxcl.ollama-camjn-dotfiles.plist'), 'utf8');

/** What the reader and the editor say about `content`: both must refuse, with the same error. */
function refusal(content: string | Buffer, file = FILE): PlistError {
  const bytes = Buffer.isBuffer(content) ? content : Buffer.from(content);
  const copy = Buffer.from(bytes);
  let readError: unknown;
  let editError: unknown;
  try {
    readPlistDict(bytes, file);
  } catch (error) {
    readError = error;
  }
  try {
    withEnvironmentVariable(bytes, file, 'OLLAMA_HOST', '0.0.0.0:11434');
  } catch (error) {
    editError = error;
  }
  expect(readError).toBeInstanceOf(PlistError);
  expect(editError).toBeInstanceOf(PlistError);
  expect((editError as Error).message).toBe((readError as Error).message);
  expect(bytes.equals(copy)).toBe(true);
  const message = (readError as PlistError).message;
  // One line, naming the file and the fix, with nothing from the file that a terminal would act on.
  expect(message).not.toMatch(/[\n\r\x00-\x1f\x7f]/);
  expect(message).toContain(file);
  expect(message).toMatch(/plutil -(lint|convert xml1) /);
  return readError as PlistError;
}

const malformed = (content: string | Buffer) => {
  const error = refusal(content);
  expect(error.reason).toBe('malformed');
  expect(error.message).toMatch(/ is not a valid property list \((line \d+: )?.*\); stigmer-setup changed nothing\. Check it with: plutil -lint \/Users\/ada\/Library\/LaunchAgents\/homebrew\.mxcl\.ollama\.plist$/);
  return error.message;
};

describe('hostile plists: refused as plutil -lint refuses them, naming the file', () => {
  it('a <key> with no value, at the end of a dict or followed by another key, is refused, not rewritten as <string/>', () => {
    expect(malformed(REAL.replace('<string>q8_0</string>', ''))).toMatch(/line 9: the key "OLLAMA_KV_CACHE_TYPE" is followed by another <key>, not by a value/);
    expect(malformed(REAL.replace('<string>/opt/homebrew/lib</string>', ''))).toMatch(/line 11: the key "OLLAMA_LIBRARY_PATH" has no value/);
    expect(malformed(REAL.replace('<key>Label</key>', ''))).toMatch(/<string> where a <key> belongs in a <dict>/);
  });

  it('an unknown tag, and tags that do not balance', () => {
    expect(malformed(REAL.replace('<true/>', '<yes/>'))).toMatch(/line 15: unknown tag <yes>/);
    expect(malformed(REAL.replace('</array>\n\t<key>ProgramArguments', '</dict>\n\t<key>ProgramArguments'))).toMatch(/<\/dict> closes <array>/);
    expect(malformed(REAL.replace('</dict>\n</plist>', '</plist>'))).toMatch(/expected <\/dict> here|<\/plist> closes <dict>/);
    expect(malformed(REAL.replace('</dict>\n</plist>', '</dict>\n</dict>\n</plist>'))).toMatch(/<\/dict> closes <plist>|more than one/);
    expect(malformed(REAL.slice(0, 600))).toMatch(/never closed/);
    expect(malformed(`${REAL}<dict/>`)).toMatch(/there is more after the end of the property list/);
    expect(malformed(REAL.replace('<key>KeepAlive</key>', '<key>KeepAlive</key><!-- a comment never closed'))).toMatch(/a comment \(<!--\) is never closed/);
  });

  it('&#x1b; and other control characters, raw or as references, are refused with the character named', () => {
    expect(malformed(REAL.replace('<string>q8_0</string>', '<string>q8_0&#x1b;[2J</string>'))).toMatch(/line 10: &#x1b; is the control character U\+001B, which XML does not allow/);
    expect(malformed(REAL.replace('<string>q8_0</string>', '<string>q8_0\x1b[2J</string>'))).toMatch(/line 10: the control character U\+001B/);
    expect(malformed(REAL.replace('<string>q8_0</string>', '<string>&#0;</string>'))).toMatch(/&#0; is the control character U\+0000/);
    expect(malformed(REAL.replace('<string>q8_0</string>', '<string>&#xD800;</string>'))).toMatch(/&#xD800; is not a Unicode character/);
    expect(malformed(REAL.replace('<string>q8_0</string>', '<string>&#x110000;</string>'))).toMatch(/is not a Unicode character/);
    // Tab, LF and CR are characters XML allows, raw or referenced.
    expect(environmentVariables(readPlistDict(Buffer.from(REAL.replace('<string>q8_0</string>', '<string>a&#9;b&#xA;c</string>')), FILE)).OLLAMA_KV_CACHE_TYPE).toBe('a\tb\nc');
  });

  it('entities other than the five XML ones, and a bare &', () => {
    expect(malformed(REAL.replace('<string>q8_0</string>', '<string>q8_0 &bogus; </string>'))).toMatch(/unknown entity &bogus;/);
    expect(malformed(REAL.replace('<string>q8_0</string>', '<string>a & b</string>'))).toMatch(/an "&" that does not start an entity/);
    expect(malformed(REAL.replace('<string>q8_0</string>', '<string>&#12345678901;</string>'))).toMatch(/an "&" that does not start an entity/);
  });

  it('a DOCTYPE with an internal subset (entity declarations, the billion-laughs attack) is refused, as Core Foundation refuses it', () => {
    const laughs = REAL.replace(
      '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
      '<!DOCTYPE plist [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    ).replace('<string>q8_0</string>', '<string>&b;</string>');
    expect(malformed(laughs)).toMatch(/line 2: its DOCTYPE has an internal subset/);
  });

  it('values that do not parse as their type: integers out of range, reals, dates, data', () => {
    const job = (value: string) => REAL.replace('<true/>\n\t<key>Label</key>', `${value}\n\t<key>Label</key>`);
    expect(malformed(job('<integer>18446744073709551616</integer>'))).toMatch(/outside the 64-bit range/);
    expect(malformed(job('<integer>-9223372036854775809</integer>'))).toMatch(/outside the 64-bit range/);
    expect(malformed(job('<integer>12 </integer>'))).toMatch(/is not an integer/);
    expect(malformed(job('<integer>0x</integer>'))).toMatch(/is not an integer/);
    expect(malformed(job('<integer/>'))).toMatch(/an empty <integer\/>/);
    expect(malformed(job('<real>30,0</real>'))).toMatch(/<real>30,0<\/real> is not a number/);
    expect(malformed(job('<date>2024-02-29</date>'))).toMatch(/is not YYYY-MM-DDThh:mm:ssZ/);
    expect(malformed(job('<data>not base64!</data>'))).toMatch(/not base64/);
    expect(malformed(job('<true>yes</true>'))).toMatch(/expected <\/true> here/);
    // The range's ends are accepted, exactly.
    expect(readPlistDict(Buffer.from(job('<integer>18446744073709551615</integer>')), FILE).KeepAlive).toBe(18446744073709551615n);
  });

  it('the structure of a property list: one value in <plist>, a <dict> at the top for a job', () => {
    expect(malformed('')).toMatch(/there is no XML element in it/);
    expect(malformed(' \n\t')).toMatch(/there is no XML element in it/);
    expect(malformed('{ "json": true }')).toMatch(/it is not XML: it starts with "\{"/);
    expect(malformed('<plist/>')).toMatch(/the <plist> element is empty/);
    expect(malformed('<plist><dict/><dict/></plist>')).toMatch(/a <plist> holds one value, and this one has more/);
    expect(malformed('<plist version="1.0"><string>x</string></plist>')).toMatch(/its top level is not a <dict>/);
    expect(malformed('<plist><array><key>k</key></array></plist>')).toMatch(/a <key> inside an <array>/);
    expect(malformed('<plist><dict>text<key>k</key><true/></dict></plist>')).toMatch(/text "text<key>k<\/key><tru" where an element belongs/);
    expect(malformed('<plist><dict><key>k</key><string>a<!-- c --></string></dict></plist>')).toMatch(/<string> may hold text only/);
  });

  it('an EnvironmentVariables that is not a <dict> can be read, but not edited', () => {
    const text = REAL.replace(/<key>EnvironmentVariables<\/key>\n\t<dict>[\s\S]*?\n\t<\/dict>/, '<key>EnvironmentVariables</key>\n\t<string>OLLAMA_HOST=0.0.0.0</string>');
    expect(environmentVariables(readPlistDict(Buffer.from(text), FILE))).toEqual({});
    expect(() => withEnvironmentVariable(Buffer.from(text), FILE, 'OLLAMA_HOST', '0.0.0.0:11434')).toThrow(/line 6: its EnvironmentVariables is not a <dict>.*plutil -lint/);
  });

  it('huge nesting depth is refused at 512 levels, Core Foundation’s own limit, without recursing further', () => {
    const nested = (depth: number) => `<plist><dict><key>k</key>${'<array>'.repeat(depth)}${'</array>'.repeat(depth)}</dict></plist>`;
    expect(readPlistDict(Buffer.from(nested(511)), FILE).k).toBeDefined();
    expect(malformed(nested(512))).toMatch(/nested more than 512 deep/);
    // 60,000 levels (just under the size limit): refused at level 513, long before the stack would overflow.
    expect(malformed(nested(60_000))).toMatch(/nested more than 512 deep/);
    expect(malformed(`<plist>${'<dict><key>k</key>'.repeat(50_000)}`)).toMatch(/nested more than 512 deep/);
  });

  it('a 10 MB string is refused by size before it is parsed', () => {
    const huge = REAL.replace('<string>q8_0</string>', `<string>${'x'.repeat(10_000_000)}</string>`);
    const error = refusal(huge);
    expect(error.reason).toBe('too-large');
    expect(error.message).toBe(`${FILE} is ${Buffer.byteLength(huge)} bytes, larger than the ${MAX_PLIST_BYTES} bytes stigmer-setup reads from a property list; stigmer-setup changed nothing. Check it with: plutil -lint ${FILE}`);
  });

  it('many small tokens up to the size limit are read in one linear pass', () => {
    const entries = Array.from({ length: 12_000 }, (_, index) => `\t\t<key>V${index}</key>\n\t\t<string>${index}</string>`).join('\n');
    const big = REAL.replace('\t\t<key>OLLAMA_FLASH_ATTENTION</key>', `${entries}\n\t\t<key>OLLAMA_FLASH_ATTENTION</key>`);
    expect(Buffer.byteLength(big)).toBeLessThan(MAX_PLIST_BYTES);
    expect(Object.keys(environmentVariables(readPlistDict(Buffer.from(big), FILE)))).toHaveLength(12_003);
    // Long runs that a careless regex would backtrack over quadratically (minutes at this size).
    expect(malformed(`<plist><dict><key>k</key><integer>${' '.repeat(900_000)}x</integer></dict></plist>`)).toMatch(/is not an integer/);
    expect(malformed(`<plist><dict><key>k</key><integer>-${' '.repeat(900_000)}x</integer></dict></plist>`)).toMatch(/is not an integer/);
    expect(malformed(`<plist><dict><key>k</key><real>${'1'.repeat(900_000)}x</real></dict></plist>`)).toMatch(/is not a number/);
    expect(malformed(`<plist${' a="x"'.repeat(150_000)} !><dict/></plist>`)).toMatch(/malformed attributes in <plist>/);
    // Comments and unclosed tags with no ">" are scanned once, not once per "<".
    expect(malformed(`<plist>${'<'.repeat(500_000)}`)).toMatch(/is never closed with ">"/);
  });

  it('binary plists, UTF-16 and other encodings are refused with the plutil command that converts them to UTF-8 XML', () => {
    const binary = refusal(Buffer.concat([Buffer.from('bplist00'), Buffer.alloc(40)]));
    expect(binary.message).toBe(`${FILE} is a binary property list, which stigmer-setup does not rewrite. Convert it to XML first: plutil -convert xml1 ${FILE}`);
    expect(binary.fix).toBe(`plutil -convert xml1 ${FILE}`);
    const utf16 = refusal(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(REAL, 'utf16le')]));
    expect(utf16.reason).toBe('encoding');
    expect(utf16.message).toMatch(/is not a UTF-8 property list \(it looks like UTF-16 or UTF-32\); stigmer-setup changed nothing\. Convert it to UTF-8 XML first: plutil -convert xml1 /);
    expect(refusal(Buffer.from(REAL.replace('q8_0', 'q8_\xe9'), 'latin1')).message).toMatch(/it holds bytes that are not UTF-8/);
    expect(refusal(REAL.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')).message).toMatch(/its XML declaration says encoding="ISO-8859-1"/);
  });

  it('a file name that needs quoting is quoted in the fix; one with a control character is shown escaped and gets no command to paste', () => {
    expect(refusal('<yes/>', "/Users/o'brien/Library/LaunchAgents/x.plist").fix).toBe(`plutil -lint '/Users/o'\\''brien/Library/LaunchAgents/x.plist'`);
    const hostileName = new PlistError('/tmp/\u001b[2Jx.plist', 'malformed', 'x');
    expect(hostileName.fix).toBe('plutil -lint <the file>');
    expect(hostileName.message).toBe('/tmp/\\x1b[2Jx.plist is not a valid property list (x); stigmer-setup changed nothing. Check it with: plutil -lint <the file>');
  });
});
