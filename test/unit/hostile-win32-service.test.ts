/**
 * Hostile input for the Windows service strategy: what the registry, PowerShell and the service's
 * own configuration hand back is untrusted. Registry values with control characters, huge
 * multi-strings, a value of the wrong kind or set twice, PowerShell output that is not its JSON, a
 * key or name with quotes in a script, and hostile values in the fixes a user pastes.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PlanRequest, SettingChange } from '../../platforms/types.ts';
import { editValueScript, MAX_ENTRIES, readValueScript } from '../../platforms/win32/registry.ts';
import { elevatedSetupCommand, programOf, serviceEnvStore, winServiceStrategy, type WinServiceDetection } from '../../platforms/win32/service.ts';
import { UnquotableError } from '../../scripts/shell-quote.ts';
import { defaultRegistry, SERVICE_KEY, winServiceMachine, type FakeMachine } from './support/fake-win-service.ts';

const REQUEST: PlanRequest = { target: { host: '0.0.0.0', port: 11434 }, explicitHost: false, elevate: [], listening: 'loopback' };
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;

async function planFor(machine: FakeMachine) {
  const { ctx } = winServiceMachine(machine);
  const detection = (await winServiceStrategy.detect(ctx, { root: '/', home: 'C:\\Users\\ada', env: ctx.env, port: 11434, listeners: [], path: path.win32 })) as WinServiceDetection;
  return { detection, plan: winServiceStrategy.plan(detection, REQUEST) };
}

describe('registry values with control characters', () => {
  it('other entries may hold escapes, tabs and newlines: they are not ours, the plan goes ahead and never prints them', async () => {
    const { plan } = await planFor({ registry: defaultRegistry(['EVIL=\u001b]0;owned\u0007\n✓ fake line', 'OLLAMA_MODELS=D:\\m\tx']) });
    expect(plan.blockers).toEqual([]);
    expect(plan.changes.map((change) => change.type)).toEqual(['setting', 'restart']);
    expect(JSON.stringify(plan.summary)).not.toMatch(/\\u001b|\\u0007/);
  });

  it('a previous OLLAMA_HOST with an escape sequence is carried as data (the before value), not printed raw in a blocker or fix', async () => {
    const { plan } = await planFor({ registry: defaultRegistry(['OLLAMA_HOST=127.0.0.1:1\u001b[2J']) });
    const setting = plan.changes.find((change): change is SettingChange => change.type === 'setting');
    expect(setting?.before).toBe('127.0.0.1:1\u001b[2J');
    for (const blocker of plan.blockers) expect(`${blocker.message}${blocker.fix}`).not.toMatch(CONTROL);
  });
});

describe('huge or malformed multi-strings', () => {
  it(`more than ${MAX_ENTRIES} entries is refused (a blocker), not processed`, async () => {
    const { plan } = await planFor({ registry: defaultRegistry(Array.from({ length: MAX_ENTRIES + 1 }, (_, n) => `V${n}=x`)) });
    expect(plan.changes).toEqual([]);
    expect(plan.blockers[0]?.message).toContain(`more than stigmer-setup edits (${MAX_ENTRIES})`);
  });

  it('one entry of a megabyte is read whole', async () => {
    const big = `X=${'y'.repeat(1 << 20)}`;
    const { detection } = await planFor({ registry: defaultRegistry([big, 'OLLAMA_HOST=127.0.0.1:11434']) });
    expect(detection.serviceHost).toBe('127.0.0.1:11434');
    expect(detection.unreadable).toBeUndefined();
  });

  it('an Environment of another kind (REG_SZ) is refused, never converted', async () => {
    const registry = defaultRegistry();
    (registry[SERVICE_KEY] as Record<string, { kind: string; value: unknown }>).Environment = { kind: 'String', value: 'OLLAMA_HOST=127.0.0.1:11434' };
    const { plan } = await planFor({ registry });
    expect(plan.changes).toEqual([]);
    expect(plan.blockers[0]?.message).toContain('is a String value, not the REG_MULTI_SZ Windows reads there');
  });

  it('OLLAMA_HOST set twice (in any case) is refused: which one wins is not guessed', async () => {
    const { plan } = await planFor({ registry: defaultRegistry(['OLLAMA_HOST=127.0.0.1:1', 'ollama_host=0.0.0.0:2']) });
    expect(plan.changes).toEqual([]);
    expect(plan.blockers[0]?.message).toContain('sets OLLAMA_HOST 2 times');
  });

  it('PowerShell output that is not its JSON is a refusal, never "not set"', async () => {
    for (const readOutput of ['', 'OLLAMA_HOST=0.0.0.0:11434\r\n', '{"key":true,"kind":7}', `${'['.repeat(100_000)}`, 'null']) {
      const { detection, plan } = await planFor({ readOutput });
      expect(detection.unreadable, JSON.stringify(readOutput.slice(0, 40))).toBeDefined();
      expect(plan.changes).toEqual([]);
      expect(`${plan.blockers[0]?.message}`).not.toMatch(CONTROL);
    }
  });

  it("PowerShell 5.1's escapes (\\u003c, \\u0027, \\u0026) read back as the characters", async () => {
    const { detection } = await planFor({ registry: defaultRegistry(["OLLAMA_ORIGINS=<a href='x'>&", 'OLLAMA_HOST=127.0.0.1:11434']) });
    expect(detection.serviceHost).toBe('127.0.0.1:11434');
    const { ctx } = winServiceMachine({ registry: defaultRegistry(["O'HOST=1", "OLLAMA_HOST=a'b&<c>"]) });
    expect(await serviceEnvStore.read(ctx, 'OLLAMA_HOST')).toBe("a'b&<c>");
  });
});

describe('quotes in scripts and fixes', () => {
  it('a key or value name with a quote, a wildcard or a control character never becomes a script', () => {
    for (const key of ["HKLM:\\SYSTEM\\CurrentControlSet\\Services\\o'llama", 'HKLM:\\SYSTEM\\*', 'HKLM:\\A\nB', 'HKCU:\\Environment\u2019']) {
      expect(() => readValueScript(key, 'Environment')).toThrow('refusing to build a PowerShell script');
      expect(() => editValueScript(key, 'Environment', 'OLLAMA_HOST', true)).toThrow('refusing to build a PowerShell script');
    }
    for (const name of ["Env'ironment", 'Environment; calc', '$(calc)']) {
      expect(() => readValueScript(SERVICE_KEY, name)).toThrow('refusing to build a PowerShell script');
      expect(() => editValueScript(SERVICE_KEY, 'Environment', name, true)).toThrow('refusing to build a PowerShell script');
    }
    expect(() => serviceEnvStore.command("OLLAMA_HOST'; calc; '", '1')).toThrow('refusing to build a PowerShell script');
  });

  it('no value is ever part of a script: hostile values travel in STIGMER_SETUP_VALUE', () => {
    for (const value of ["0.0.0.0:1'; Remove-Item -Recurse C:\\; '", '$(calc)', '`n', '\u2019; calc']) {
      const { argv, env } = serviceEnvStore.command('OLLAMA_HOST', value);
      expect(argv.join(' ')).not.toContain(value);
      expect(env).toEqual({ STIGMER_SETUP_VALUE: value });
    }
  });

  it('the administrator fix quotes --host for PowerShell, typographic quotes included, and refuses a control character', () => {
    const hostile = (host: string) => elevatedSetupCommand({ target: { host, port: 11434 }, explicitHost: true });
    expect(hostile("a'b")).toBe("npx stigmer-setup --yes --host 'a''b:11434'");
    expect(hostile('a\u2019b')).toBe("npx stigmer-setup --yes --host 'a\u2019\u2019b:11434'");
    expect(hostile('$(calc)')).toBe("npx stigmer-setup --yes --host '$(calc):11434'");
    expect(() => hostile('a\nb')).toThrow(UnquotableError);
  });

  it("a missing program named by a hostile ImagePath is reported without its control characters", async () => {
    const registry = defaultRegistry();
    (registry[SERVICE_KEY] as Record<string, { kind: string; value: unknown }>).ImagePath = { kind: 'ExpandString', value: '"C:\\evil\u001b[2J\r\n✓ ok.exe" --arg' };
    const { plan } = await planFor({ registry });
    expect(plan.changes).toEqual([]);
    expect(plan.blockers[0]?.message).toContain('does not exist');
    expect(plan.blockers[0]?.message).not.toMatch(CONTROL);
  });

  it('ImagePath: quoted, unquoted with spaces and arguments, %SystemRoot%, an unknown variable (no check)', () => {
    const env = { SystemRoot: 'C:\\Windows' };
    expect(programOf('"C:\\Program Files\\nssm\\nssm.exe"', env)).toBe('C:\\Program Files\\nssm\\nssm.exe');
    expect(programOf('C:\\tools\\nssm.exe -x "y"', env)).toBe('C:\\tools\\nssm.exe');
    expect(programOf('%SystemRoot%\\System32\\svchost.exe -k netsvcs', env)).toBe('C:\\Windows\\System32\\svchost.exe');
    expect(programOf('%NOPE%\\x.exe', env)).toBeUndefined();
    expect(programOf('"unterminated', env)).toBeUndefined();
  });
});

describe('a configured value with control characters in the summary', () => {
  it('is printed without them', async () => {
    const { plan } = await planFor({ registry: defaultRegistry(['OLLAMA_HOST=0.0.0.0:11434\u001b[2J']) });
    expect(plan.summary).not.toMatch(CONTROL);
  });
});

describe('ImagePath that is not a full path', () => {
  it('is not checked (Windows resolves it), so it never blocks a restart', async () => {
    const registry = defaultRegistry();
    (registry[SERVICE_KEY] as Record<string, { kind: string; value: unknown }>).ImagePath = { kind: 'ExpandString', value: 'nssm.exe' };
    const { plan } = await planFor({ registry, files: [] });
    expect(plan.blockers).toEqual([]);
  });
});

describe('a previous value undo could never hand back', () => {
  it('an OLLAMA_HOST entry of 32,767 characters or more is refused up front (an environment variable can carry 32,766)', async () => {
    const { plan } = await planFor({ registry: defaultRegistry([`OLLAMA_HOST=127.0.0.1:11434${' '.repeat(40_000)}`]) });
    expect(plan.changes).toEqual([]);
    expect(plan.blockers[0]?.message).toContain('undo could not restore it. Nothing was changed.');
    const { plan: fine } = await planFor({ registry: defaultRegistry([`OLLAMA_HOST=127.0.0.1:11434${' '.repeat(20_000)}`]) });
    expect(fine.blockers).toEqual([]);
  });
});
