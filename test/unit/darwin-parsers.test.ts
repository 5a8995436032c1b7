import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { parseBrewServicesInfo, parseBrewVersion, supportsServiceEnvFile } from '../../platforms/darwin/parsers/brew.ts';
import { parseBrewEnvFile } from '../../platforms/darwin/parsers/brew-env.ts';
import { brewEnvOverrides } from '../support/macos/brew-env.mjs';
import { launchctlServiceMissing, parseLaunchctlPrint } from '../../platforms/darwin/parsers/launchctl-print.ts';
import { decodeLsofCommand, parseLsofListen, type LsofListener } from '../../platforms/darwin/parsers/lsof.ts';
import { environmentVariables, PlistError, readPlistDict, withEnvironmentVariable } from '../../platforms/darwin/plist-file.ts';
import { classifyOllamaCommand, parsePsAux } from '../../platforms/darwin/parsers/ps.ts';
import { parseSwVers } from '../../platforms/darwin/parsers/sw-vers.ts';
import { fixture } from './support/fixtures.ts';
import { because, needs } from './support/portability.ts';

const darwin = (name: string) => fixture(`darwin/${name}`);
const brief = (rows: LsofListener[]) => rows.map((r) => `${r.command}|${r.pid}|${r.family}|${r.address}|${r.port}`);
// Any C0/C1 control character, or a bidi override: none may survive a parser.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('lsof -iTCP -sTCP:LISTEN', () => {
  it('reads the loopback-only Ollama listener from the stigmer capture (DEVICE and SIZE/OFF elided as "...")', () => {
    expect(parseLsofListen(darwin('lsof-ollama-loopback-ipv4-stigmer.txt'))).toEqual([
      { address: '127.0.0.1', port: 11434, family: 4, pid: 782, command: 'ollama', user: 'suresh' },
    ]);
  });

  it('maps `*` on an IPv6 socket to :: (what Ollama with OLLAMA_HOST=0.0.0.0 shows)', () => {
    expect(parseLsofListen(darwin('lsof-ollama-wildcard-ipv6-stigmer.txt'))).toEqual([
      { address: '::', port: 11434, family: 6, pid: 6574, command: 'ollama', user: 'suresh' },
    ]);
  });

  it('reads [::1], 127.0.0.1 and Docker Desktop’s wildcard on the same port', () => {
    expect(brief(parseLsofListen(darwin('lsof-postgres-loopback-v4v6-docker-wildcard.txt')))).toEqual([
      'postgres|522|6|::1|5432',
      'postgres|522|4|127.0.0.1|5432',
      'com.docke|1254|6|::|5432',
    ]);
  });

  it('reads indented `| grep LISTEN` output with no header: Ollama.app’s server on loopback, IPv4 `*` as 0.0.0.0', () => {
    const rows = parseLsofListen(darwin('lsof-grep-listen-ollama-app-loopback.txt'));
    expect(rows).toHaveLength(10);
    expect(rows.filter((r) => r.port === 11434)).toEqual([{ address: '127.0.0.1', port: 11434, family: 4, pid: 1463, command: 'ollama', user: 'ToucanRajat' }]);
    expect(brief(rows.filter((r) => r.port === 50081))).toEqual(['rapportd|986|4|0.0.0.0|50081', 'rapportd|986|6|::|50081']);
    expect(brief(rows.filter((r) => r.pid === 1453 || r.pid === 56677))).toEqual([
      'Ollama|1453|4|127.0.0.1|49207',
      'Electron|56677|4|127.0.0.1|52231',
      'Electron|56677|4|127.0.0.1|52232',
    ]);
  });

  it('splits on tabs as well as spaces, skips the header, and keeps host names when lsof ran without -n', () => {
    const rows = parseLsofListen(darwin('lsof-listen-no-n-localhost-names-tabs.txt'));
    expect(rows).toHaveLength(22);
    expect(rows[0]).toEqual({ address: '0.0.0.0', port: 7000, family: 4, pid: 441, command: 'ControlCe', user: 'family' });
    expect(brief(rows.filter((r) => r.command === 'Dropbox'))).toEqual([
      'Dropbox|500|4|0.0.0.0|17500',
      'Dropbox|500|6|::|17500',
      'Dropbox|500|4|localhost|17600',
      'Dropbox|500|4|localhost|17603',
    ]);
    expect(brief(rows.slice(-1))).toEqual(['Spotify|23548|4|0.0.0.0|50896']);
  });

  it('decodes \\x20 in COMMAND and skips a row whose state column is not exactly (LISTEN)', () => {
    // The second row of the capture ends in `(LISTEN)DSZ` as published: not a row we can trust.
    expect(parseLsofListen(darwin('lsof-grep-escaped-command-code-helper.txt'))).toEqual([
      { address: '127.0.0.1', port: 6333, family: 4, pid: 2866, command: 'Code H', user: 'tekumara' },
    ]);
  });

  it('reads a scoped link-local IPv6 listener without its brackets', () => {
    expect(parseLsofListen(darwin('lsof-listen-scoped-ipv6-escaped-command.txt'))).toEqual([
      { address: 'fe80:4::aede:48ff:fe00:1122', port: 49158, family: 6, pid: 90, command: 'UserEvent', user: 'root' },
      { address: '0.0.0.0', port: 5500, family: 4, pid: 853, command: 'Code H', user: 'parksungbum' },
      { address: '0.0.0.0', port: 8080, family: 4, pid: 13122, command: 'node', user: 'parksungbum' },
    ]);
  });

  it('reads an IPv4-only capture', () => {
    expect(brief(parseLsofListen(darwin('lsof-i4tcp-listen-loopback.txt')))).toEqual([
      'figma_age|1080|4|127.0.0.1|44950',
      'figma_age|1080|4|127.0.0.1|44960',
      'adb|33939|4|127.0.0.1|5037',
      'mongod|50386|4|127.0.0.1|27017',
    ]);
  });

  describe('hostile input', () => {
    // One unedited row (the stigmer captures are hand-edited, so they say nothing about columns):
    // Ollama.app's server on loopback, with the indent of the page it was published on.
    const real = `${darwin('lsof-grep-listen-ollama-app-loopback.txt').split('\n').find((line) => line.includes(':11434 '))}\n`;
    const withCommand = (command: string) => real.replace('ollama     1463', `${command}     1463`);

    it('strips terminal escapes that a process name smuggles in through lsof’s \\x escapes', () => {
      const [row] = parseLsofListen(withCommand('evil\\x1b]0;owned\\x07\\x1b[2J\\x9b31m'));
      expect(row?.command).toBe('evil\ufffd31m');
      expect(row?.command).not.toMatch(UNSAFE);
      expect(decodeLsofCommand('a\\xc2\\x9b\\xe2\\x80\\xaeb\\n\\tc')).toBe('abc');
      expect(decodeLsofCommand('caf\\xc3\\xa9\\x20bar')).toBe('café bar');
    });

    it('strips raw control characters, should a command column contain them unescaped', () => {
      const [row] = parseLsofListen(withCommand('x\u001b[31m\u0007\u009by'));
      expect(row?.command).toBe('xy');
      expect(row?.address).toBe('127.0.0.1');
    });

    it('skips rows with an impossible port, a service name, a connection, or a junk address', () => {
      for (const name of ['*:70000', '*:tproxy', '127.0.0.1:11434->10.0.0.1:5000', 'a<b>:11434', '**:11434', ':11434', '[::1:11434']) {
        expect(parseLsofListen(real.replace('127.0.0.1:11434', name)), name).toEqual([]);
      }
      expect(parseLsofListen(real.replace('1463', '14x63'))).toEqual([]);
      expect(parseLsofListen(real.replace('(LISTEN)', '(ESTABLISHED)'))).toEqual([]);
    });

    it('never throws and does bounded work on huge, binary or non-string input', () => {
      const started = Date.now();
      expect(parseLsofListen('A'.repeat(5_000_000))).toEqual([]);
      expect(parseLsofListen(`${'x '.repeat(200_000)}TCP *:1 (LISTEN)`)).toEqual([]);
      // A 100k-character line of NULs is skipped; the real row after it still parses.
      expect(brief(parseLsofListen('\u0000'.repeat(100_000) + real))).toEqual(['ollama|1463|4|127.0.0.1|11434']);
      expect(parseLsofListen(withCommand('oll\u0000ama'))[0]?.command).toBe('ollama');
      expect(parseLsofListen(real.repeat(100_000)).length).toBeLessThanOrEqual(20_000);
      expect(parseLsofListen(undefined as unknown as string)).toEqual([]);
      expect(parseLsofListen('')).toEqual([]);
      expect(Date.now() - started).toBeLessThan(10_000);
    });
  });
});

describe('launchctl print', () => {
  it('reads a loaded job that is not running, and only its own environment block', () => {
    const job = parseLaunchctlPrint(darwin('launchctl-print-gui-not-running-calendar-job.txt'));
    expect(job.path).toBe('/Users/marcela-dev/Library/LaunchAgents/com.motherboard.snapshot.retention.plist');
    expect(job.state).toBe('not running');
    expect(job.pid).toBeUndefined();
    expect(job.program).toBe('/bin/bash');
    expect(job.arguments).toEqual(['/bin/bash', '/Users/marcela-dev/motherboard-backup-system/snapshot-manager-prod.sh']);
    expect(job.lastExitCode).toBe('0');
    // Not SSH_AUTH_SOCK (inherited environment), not PATH (default environment).
    expect([...job.environment]).toEqual([['XPC_SERVICE_NAME', 'com.motherboard.snapshot.retention']]);
  });

  it('reads a running job: pid, the job’s own PATH, and the top-level state rather than a coalition’s', () => {
    const job = parseLaunchctlPrint(darwin('launchctl-print-gui-running-env-home-rewritten.txt'));
    expect(job.state).toBe('running');
    expect(job.pid).toBe(17594);
    expect(job.program).toBe('/Applications/mattstack.app/Contents/Helpers/chat');
    expect(job.arguments).toEqual(['/Applications/mattstack.app/Contents/Helpers/chat']);
    expect(job.lastExitCode).toBeUndefined();
    expect(job.environment.get('PORT')).toBe('11002');
    expect(job.environment.get('OSLogRateLimit')).toBe('64');
    expect(job.environment.get('PATH')).toMatch(/^\/Applications\/mattstack\.app\/Contents\/Helpers:.*:\/usr\/sbin:\/sbin$/);
    expect(job.environment.has('SSH_AUTH_SOCK')).toBe(false);
    expect([...job.environment.keys()]).toEqual(['OSLogRateLimit', 'PORT', 'PATH', 'MATTSTACK_CANONICAL_HOST', 'XPC_SERVICE_NAME']);
  });

  it('reads an older system-domain capture with spaces for tabs, cut off before its closing brace', () => {
    const job = parseLaunchctlPrint(darwin('launchctl-print-system-running-yosemite-truncated.txt'));
    expect(job).toEqual({
      path: '/Library/LaunchDaemons/dev.mysql.plist',
      state: 'running',
      pid: 24784,
      program: '/opt/boxen/homebrew/bin/mysqld_safe',
      arguments: ['/opt/boxen/homebrew/bin/mysqld_safe', '--defaults-file=/opt/boxen/config/mysql/my.cnf'],
      environment: new Map([['XPC_SERVICE_NAME', 'dev.mysql']]),
      lastExitCode: '1',
    });
  });

  it('reads nothing from the error for a label that is not loaded, and recognises that error', () => {
    const missing = darwin('launchctl-print-missing-service.txt');
    expect(parseLaunchctlPrint(missing)).toEqual({ environment: new Map() });
    expect(launchctlServiceMissing(missing)).toBe(true);
    expect(launchctlServiceMissing(darwin('launchctl-list-missing-service.txt'))).toBe(true);
    expect(launchctlServiceMissing(darwin('launchctl-print-gui-running-env-home-rewritten.txt'))).toBe(false);
  });

  describe('hostile input', () => {
    const real = darwin('launchctl-print-gui-running-env-home-rewritten.txt');
    const addToEnvironment = (line: string) => real.replace('\t\tPORT => 11002\n', `\t\tPORT => 11002\n${line}\n`);

    it('strips terminal escapes from environment values', () => {
      const job = parseLaunchctlPrint(addToEnvironment('\t\tEVIL => \u001b]0;owned\u0007\u009b2J'));
      expect(job.environment.get('EVIL')).toBe('2J');
      for (const [key, value] of job.environment) expect(`${key}${value}`).not.toMatch(UNSAFE);
    });

    it('keeps reading after an environment value that ends in `{`', () => {
      const job = parseLaunchctlPrint(addToEnvironment('\t\tODD => {'));
      expect(job.environment.get('ODD')).toBe('{');
      expect(job.environment.get('XPC_SERVICE_NAME')).toBe('com.mattstack.deck.chat');
      expect(job.pid).toBe(17594);
      expect(job.state).toBe('running');
    });

    it('does not take a later environment block, or an inherited one, as the job’s', () => {
      const job = parseLaunchctlPrint(real.replace('\tdomain = gui/501', '\tenvironment = {\n\t\tOLLAMA_HOST => 0.0.0.0\n\t}\n\tdomain = gui/501'));
      expect(job.environment.has('OLLAMA_HOST')).toBe(false);
      const inheritedOnly = parseLaunchctlPrint(real.replace('SSH_AUTH_SOCK =>', 'OLLAMA_HOST => 0.0.0.0\n\t\tSSH_AUTH_SOCK =>'));
      expect(inheritedOnly.environment.has('OLLAMA_HOST')).toBe(false);
    });

    it('never throws and does bounded work on huge, deeply nested or non-string input', () => {
      const started = Date.now();
      expect(parseLaunchctlPrint('{\n'.repeat(500_000)).environment.size).toBe(0);
      expect(parseLaunchctlPrint('x = {\n'.repeat(100_000) + real).pid).toBeUndefined();
      expect(parseLaunchctlPrint(real.replace('\tpid = 17594', `\tpid = ${'9'.repeat(50)}`)).pid).toBeUndefined();
      expect(parseLaunchctlPrint('\u0000'.repeat(2_000_000)).environment.size).toBe(0);
      expect(parseLaunchctlPrint(null as unknown as string)).toEqual({ environment: new Map() });
      expect(launchctlServiceMissing(undefined as unknown as string)).toBe(false);
      expect(Date.now() - started).toBeLessThan(10_000);
    });
  });
});

describe('brew --version', () => {
  it('reads released, between-release and very old version strings', () => {
    expect(parseBrewVersion(darwin('brew-version-4.0.1-core-na.txt'))).toEqual({ major: 4, minor: 0, patch: 1 });
    expect(parseBrewVersion(darwin('brew-version-3.6.5-git-describe.txt'))).toEqual({ major: 3, minor: 6, patch: 5 });
    expect(parseBrewVersion(darwin('brew-version-0.9.5-legacy-single-line.txt'))).toEqual({ major: 0, minor: 9, patch: 5 });
  });

  it('reports no version for a Homebrew that is not a git checkout (">=4.3.0" is only a lower bound)', () => {
    expect(parseBrewVersion(darwin('brew-version-shallow-no-git.txt'))).toBeUndefined();
  });

  it('knows the services .env file only from 6.0.15', () => {
    expect(supportsServiceEnvFile(parseBrewVersion(darwin('brew-version-4.0.1-core-na.txt')))).toBe(false);
    expect(supportsServiceEnvFile(parseBrewVersion(darwin('brew-version-shallow-no-git.txt')))).toBe(false);
    expect(supportsServiceEnvFile({ major: 6, minor: 0, patch: 14 })).toBe(false);
    expect(supportsServiceEnvFile({ major: 6, minor: 0, patch: 15 })).toBe(true);
    expect(supportsServiceEnvFile({ major: 6, minor: 1, patch: 0 })).toBe(true);
    expect(supportsServiceEnvFile({ major: 7, minor: 0, patch: 0 })).toBe(true);
    expect(supportsServiceEnvFile(undefined)).toBe(false);
  });

  it('rejects garbage', () => {
    for (const text of ['', 'Homebrew/homebrew-core N/A', 'Homebrew 4.0', 'Homebrew 1.2.3.4', 'Homebrew 9999999.0.0', 'zsh: command not found: brew']) {
      expect(parseBrewVersion(text), text).toBeUndefined();
    }
    expect(parseBrewVersion(42 as unknown as string)).toBeUndefined();
  });
});

describe('brew services info --json', () => {
  const all = darwin('brew-services-info-all-phpmon.json');

  it('reads a started service', () => {
    expect(parseBrewServicesInfo(all, 'mailhog')).toEqual({
      name: 'mailhog',
      serviceName: 'homebrew.mxcl.mailhog',
      running: true,
      loaded: true,
      status: 'started',
      user: 'nicoverbruggen',
      file: '/Users/nicoverbruggen/Library/LaunchAgents/homebrew.mxcl.mailhog.plist',
      pid: 686,
      exitCode: 0,
    });
  });

  it('reads the first entry when no formula is named, leaving null fields out', () => {
    expect(parseBrewServicesInfo(all)).toEqual({
      name: 'dnsmasq',
      serviceName: 'homebrew.mxcl.dnsmasq',
      running: false,
      loaded: false,
      status: 'none',
      user: 'root',
      file: '/Users/nicoverbruggen/Library/LaunchAgents/homebrew.mxcl.dnsmasq.plist',
    });
    expect(parseBrewServicesInfo(all, 'unbound')?.file).toBe('/opt/homebrew/opt/unbound/homebrew.mxcl.unbound.plist');
    expect(parseBrewServicesInfo(all, 'ollama')).toBeUndefined();
  });

  it('tolerates a bare object, missing fields and wrong types, and rejects what is not that JSON', () => {
    const [first] = JSON.parse(all) as Record<string, unknown>[];
    expect(parseBrewServicesInfo(JSON.stringify({ ...first, pid: '686', running: 'yes', exit_code: 1.5 }))).toEqual({
      name: 'dnsmasq',
      serviceName: 'homebrew.mxcl.dnsmasq',
      loaded: false,
      status: 'none',
      user: 'root',
      file: '/Users/nicoverbruggen/Library/LaunchAgents/homebrew.mxcl.dnsmasq.plist',
    });
    expect(parseBrewServicesInfo(JSON.stringify([{ ...first, file: '/tmp/\u001b[2Jx.plist' }]))?.file).toBeUndefined();
    for (const text of ['', 'Error: No available formula with the name "ollama".', '[]', '[1, "x", null]', '{"name": 7}', all.slice(0, 200)]) {
      expect(parseBrewServicesInfo(text), text).toBeUndefined();
    }
    expect(parseBrewServicesInfo('['.repeat(500_000) + ']'.repeat(500_000))).toBeUndefined();
    expect(parseBrewServicesInfo(' '.repeat(2_000_000) + all)).toBeUndefined();
    expect(parseBrewServicesInfo(undefined as unknown as string)).toBeUndefined();
  });
});

describe("Homebrew's services/<formula>.env", () => {
  // Homebrew's own lines (service.rb effective_environment_variables, extend/blank/string.rb), run
  // by a real Ruby reading UTF-8, as brew does on a Mac (it sets LC_ALL=en_US.UTF-8; -E UTF-8 here). Only where `ruby` is installed (not in CI):
  // it is the check that the TypeScript model and Ruby agree, byte for byte.
  const BREW = String.raw`
    class String; def blank? = empty? || /\A[[:space:]]*\z/.match?(self); end
    class NilClass; def blank? = true; end
    require "json"
    begin
      out = File.foreach(ARGV[0]).map(&:strip).reject { |l| l.empty? || l.start_with?("#") }.each_with_object({}) do |line, hash|
        key, value = line.split("=", 2)
        next if key.blank? || value.nil?
        hash[key.strip] = value.strip
      end
      print JSON.generate(out.to_a)
    rescue ArgumentError => e
      print JSON.generate({ "error" => e.message })
    end`;
  const CASES: [string, Buffer][] = [
    ['export', Buffer.from('export OLLAMA_HOST=0.0.0.0:11434\n')],
    ['quotes', Buffer.from('OLLAMA_HOST="0.0.0.0:11434"\nB=\'x\'\n')],
    ['duplicates', Buffer.from('A=1\nB=2\nA=3\n')],
    ['crlf, no final newline', Buffer.from('A=1\r\nB = 2 \r\n  C=3')],
    ['bom', Buffer.from('\uFEFFA=1\n# c\n')],
    ['nul and vt', Buffer.from('\u0000 A=1\u0000\n\u000bB=\f2\n')],
    ['unicode spaces', Buffer.from('\u00a0A=1\n\u3000=x\nC\u2003=y\n')],
    ['invalid lines', Buffer.from('=x\nNOEQ\n # not a comment? \n#c\nA==b\n')],
    ['latin-1 comment', Buffer.concat([Buffer.from('# caf'), Buffer.from([0xe9]), Buffer.from('\nA=1\n')])],
    ['lone cr', Buffer.from('A=1\rB=2\n')],
  ];

  it.skipIf(needs.ruby).each(CASES)('agrees with Ruby running brew\'s code: %s' + because(needs.ruby), async (_name, content) => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(`${tmpdir()}/brew-env-`);
    try {
      writeFileSync(`${dir}/ollama.env`, content);
      const result = spawnSync('ruby', ['-E', 'UTF-8', '-e', BREW, `${dir}/ollama.env`], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8' }, timeout: 20_000 });
      const answer = JSON.parse(result.stdout) as [string, string][] | { error: string };
      const ours = parseBrewEnvFile(content);
      // The macOS sandbox's brew model must agree with Ruby too: it is what the e2e tests trust.
      const sandbox = (() => {
        try {
          return [...brewEnvOverrides(content, 'ollama.env').overrides];
        } catch (error) {
          return { error: (error as Error).message };
        }
      })();
      expect(sandbox).toEqual(answer);
      if (!Array.isArray(answer)) {
        expect(answer.error).toBe('invalid byte sequence in UTF-8');
        expect(ours.notUtf8Line).toBeDefined();
      } else {
        expect(ours.notUtf8Line).toBeUndefined();
        expect([...ours.variables]).toEqual(answer);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sw_vers', () => {
  it('reads the old "Mac OS X" and the new "macOS" product names', () => {
    expect(parseSwVers(darwin('sw_vers-mac-os-x-10.14.6.txt'))).toEqual({ productName: 'Mac OS X', productVersion: '10.14.6', buildVersion: '18G87' });
    expect(parseSwVers(darwin('sw_vers-macos-11.1.txt'))).toEqual({ productName: 'macOS', productVersion: '11.1', buildVersion: '20C69' });
  });

  it('reads a paste whose tabs became spaces', () => {
    expect(parseSwVers(darwin('sw_vers-mac-os-x-10.15.5-spaces.txt'))).toEqual({ productName: 'Mac OS X', productVersion: '10.15.5', buildVersion: '19F101' });
  });

  it('ignores control characters, unknown keys and garbage', () => {
    const real = darwin('sw_vers-macos-11.1.txt');
    expect(parseSwVers(real.replace('macOS', 'mac\u001b[2JOS'))).toEqual({ productVersion: '11.1', buildVersion: '20C69' });
    expect(parseSwVers(`constructor: x\n__proto__: y\n${real}`)).toEqual({ productName: 'macOS', productVersion: '11.1', buildVersion: '20C69' });
    expect(parseSwVers('\u0000'.repeat(3_000_000))).toEqual({});
    expect(parseSwVers(undefined as unknown as string)).toEqual({});
  });
});

describe('plists (read as Core Foundation reads them, malformed input refused)', () => {
  const read = (name: string) => readPlistDict(Buffer.from(darwin(name)), name);

  it('reads the Homebrew-generated Ollama LaunchAgent: label, program and the formula’s environment', () => {
    const job = read('homebrew.mxcl.ollama-camjn-dotfiles.plist');
    expect(job.Label).toBe('homebrew.mxcl.ollama');
    expect(job.ProgramArguments).toEqual(['/opt/homebrew/opt/ollama/bin/ollama', 'serve']);
    expect(job.RunAtLoad).toBe(true);
    expect(job.KeepAlive).toBe(true);
    expect(environmentVariables(job)).toMatchObject({ OLLAMA_FLASH_ATTENTION: '1', OLLAMA_KV_CACHE_TYPE: 'q8_0' });
    expect(environmentVariables(job).OLLAMA_HOST).toBeUndefined();
  });

  it('reads a hand-edited LaunchAgent with mixed indentation and trailing blank lines', () => {
    expect(Object.entries(environmentVariables(read('homebrew.mxcl.ollama-user-edited-mxthz.plist')))).toEqual([
      ['OLLAMA_FLASH_ATTENTION', '1'],
      ['OLLAMA_KV_CACHE_TYPE', 'q8_0'],
      ['OLLAMA_CONTEXT_LENGTH', '8192'],
      ['OLLAMA_KEEP_ALIVE', '-1'],
    ]);
  });

  it('reads Ollama.app’s Info.plist, nested arrays and dicts included', () => {
    const info = read('Ollama.app-Info.plist');
    expect(info.CFBundleIdentifier).toBe('com.electron.ollama');
    expect(info.CFBundleExecutable).toBe('Ollama');
    expect(info.LSUIElement).toBe(true);
    expect((info.CFBundleURLTypes as { CFBundleURLSchemes: string[] }[])[0]?.CFBundleURLSchemes).toEqual(['ollama']);
  });

  it('adds OLLAMA_HOST to EnvironmentVariables and keeps every other key and value', () => {
    for (const name of ['homebrew.mxcl.ollama-camjn-dotfiles.plist', 'homebrew.mxcl.ollama-user-edited-mxthz.plist']) {
      const before = read(name);
      const edited = readPlistDict(withEnvironmentVariable(Buffer.from(darwin(name)), name, 'OLLAMA_HOST', '0.0.0.0:11434'), name);
      expect(environmentVariables(edited)).toEqual({ ...environmentVariables(before), OLLAMA_HOST: '0.0.0.0:11434' });
      expect({ ...edited, EnvironmentVariables: undefined }).toEqual({ ...before, EnvironmentVariables: undefined });
    }
    // A job without the dict gets one.
    const withoutDict = Buffer.from(darwin('Ollama.app-Info.plist'));
    expect(environmentVariables(readPlistDict(withEnvironmentVariable(withoutDict, 'x', 'OLLAMA_HOST', '[::]:11434'), 'x'))).toEqual({ OLLAMA_HOST: '[::]:11434' });
  });

  it('refuses truncated, binary and malformed plists with one line that names the file and the fix', () => {
    const real = darwin('homebrew.mxcl.ollama-camjn-dotfiles.plist');
    const refusal = (text: string | Buffer) => {
      try {
        readPlistDict(Buffer.from(text), '/Users/ada/Library/LaunchAgents/homebrew.mxcl.ollama.plist');
        return 'accepted';
      } catch (error) {
        expect(error).toBeInstanceOf(PlistError);
        return (error as Error).message;
      }
    };
    expect(refusal(real.slice(0, 600))).toMatch(/homebrew\.mxcl\.ollama\.plist is not a valid property list .*plutil -lint/);
    expect(refusal(`bplist00${real}`)).toBe('/Users/ada/Library/LaunchAgents/homebrew.mxcl.ollama.plist is a binary property list, which stigmer-setup does not rewrite. Convert it to XML first: plutil -convert xml1 /Users/ada/Library/LaunchAgents/homebrew.mxcl.ollama.plist');
    expect(refusal(real.replace('<string>q8_0</string>', '<string>q8_0 &bogus; </string>'))).toMatch(/not a valid property list/);
    // A "__proto__" key is read as an own key (plutil accepts it too), never as the object's prototype.
    const withProto = environmentVariables(readPlistDict(Buffer.from(real.replace('<key>OLLAMA_LIBRARY_PATH</key>', '<key>__proto__</key>')), 'x'));
    expect(Object.getOwnPropertyDescriptor(withProto, '__proto__')?.value).toBe('/opt/homebrew/lib');
    expect(Object.getPrototypeOf(withProto)).toBe(Object.prototype);
    expect(refusal('{ "json": true }')).toMatch(/not a valid property list/);
    expect(refusal('<plist version="1.0"><string>x</string></plist>')).toMatch(/its top level is not a <dict>/);
    expect(({} as Record<string, unknown>)['OLLAMA_FLASH_ATTENTION']).toBeUndefined();
  });
});

describe('ps aux', () => {
  it('finds Ollama.app’s server, its model runner and its updater', () => {
    const processes = parsePsAux(darwin('ps-aux-grep-ollama-app.txt'));
    expect(processes.map((p) => [p.pid, classifyOllamaCommand(p.command)])).toEqual([
      [42395, 'runner'],
      [35140, 'updater'],
      [821, 'app-server'],
      [46899, undefined],
    ]);
    expect(processes[2]).toEqual({ user: 'anish', pid: 821, command: '/Applications/Ollama.app/Contents/Resources/ollama serve', altered: false });
  });

  it('tells the app, a Homebrew server and an unrelated process apart', () => {
    const executable = readPlistDict(Buffer.from(darwin('Ollama.app-Info.plist')), 'Info.plist').CFBundleExecutable;
    expect(classifyOllamaCommand(`/Applications/Ollama.app/Contents/MacOS/${String(executable)}`)).toBe('app');
    const brew = readPlistDict(Buffer.from(darwin('homebrew.mxcl.ollama-camjn-dotfiles.plist')), 'brew.plist');
    expect(classifyOllamaCommand((brew.ProgramArguments as string[]).join(' '))).toBe('server');
    expect(classifyOllamaCommand('/usr/bin/vim ollama serve')).toBeUndefined();
  });

  it('skips malformed lines and strips control characters', () => {
    const real = darwin('ps-aux-grep-ollama-app.txt');
    const processes = parsePsAux(`USER PID %CPU %MEM VSZ RSS TT STAT STARTED TIME COMMAND\n${real.replace('ollama serve', 'ollama serve\u001b[2J')}garbage\n`);
    expect(processes).toHaveLength(4);
    expect(processes[2]?.command).toBe('/Applications/Ollama.app/Contents/Resources/ollama serve');
    expect(parsePsAux('x'.repeat(3_000_000))).toEqual([]);
  });
});
