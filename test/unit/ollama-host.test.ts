import { describe, expect, it } from 'vitest';
import { bindScope, formatBindAddress, parseHostOption, parseOllamaHost, sameBindAddress, urlEndpoint } from '../../scripts/ollama-host.ts';

describe('OLLAMA_HOST as Ollama reads it (envconfig/config_test.go table)', () => {
  const table: [string, string][] = [
    ['', '127.0.0.1:11434'],
    ['1.2.3.4', '1.2.3.4:11434'],
    [':1234', ':1234'],
    ['[::]', '[::]:11434'],
    ['::1', '[::1]:11434'],
    ['http://1.2.3.4', '1.2.3.4:80'],
    ['https://example.com/ollama', 'example.com:443'],
    [':66000', ':11434'],
    ['  "0.0.0.0:11434"  ', '0.0.0.0:11434'],
    ["'0.0.0.0'", '0.0.0.0:11434'],
    ['http://0.0.0.0', '0.0.0.0:80'],
    ['[::]:8080', '[::]:8080'],
  ];
  it.each(table)('%j binds %s', (input, expected) => {
    expect(formatBindAddress(parseOllamaHost(input))).toBe(expected);
  });

  it('treats an unset variable as the default', () => {
    expect(parseOllamaHost(undefined)).toEqual({ host: '127.0.0.1', port: 11434 });
  });
});

describe('bind scope', () => {
  it.each([
    ['0.0.0.0', 'wildcard'],
    ['::', 'wildcard'],
    ['', 'wildcard'],
    ['127.0.0.1', 'loopback'],
    ['127.0.1.1', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['172.17.0.1', 'specific'],
  ])('%j is %s', (host, scope) => {
    expect(bindScope(host)).toBe(scope);
  });

  it('counts every wildcard spelling as the same bind', () => {
    expect(sameBindAddress(parseOllamaHost(':11434'), { host: '0.0.0.0', port: 11434 })).toBe(true);
    expect(sameBindAddress(parseOllamaHost('[::]:11434'), { host: '0.0.0.0', port: 11434 })).toBe(true);
    expect(sameBindAddress(parseOllamaHost('0.0.0.0'), { host: '0.0.0.0', port: 8080 })).toBe(false);
    expect(sameBindAddress(parseOllamaHost('127.0.0.1:11434'), { host: '0.0.0.0', port: 11434 })).toBe(false);
  });
});

describe('--host validation', () => {
  it.each([
    ['0.0.0.0:11434', { host: '0.0.0.0', port: 11434 }],
    ['[::]:11434', { host: '::', port: 11434 }],
    [':11434', { host: '0.0.0.0', port: 11434 }],
    ['172.17.0.1:12000', { host: '172.17.0.1', port: 12000 }],
  ])('accepts %s', (input, expected) => {
    expect(parseHostOption(input)).toEqual(expected);
  });

  it.each([
    ['http://0.0.0.0', /URL scheme \(Ollama would read it as port 80\)/],
    ['0.0.0.0', /has no port/],
    ['0.0.0.0:0', /invalid port/],
    ['0.0.0.0:65536', /invalid port/],
    ['0.0.0.0:11434x', /invalid port/],
    ['localhost:11434', /not an IP address/],
    ['0.0.0.0:11434"\nExecStart=/bin/sh', /invalid port/],
    ['1.2.3.4" X=":11434', /not an IP address/],
    ['::1:11434', /has no port/],
  ])('rejects %j with one clear line', (input, message) => {
    const result = parseHostOption(input);
    expect(result).toHaveProperty('error');
    expect((result as { error: string }).error).toMatch(message);
    expect((result as { error: string }).error).not.toContain('\n');
  });
});

describe("the product's parser agrees with the stand-in's independent one", () => {
  // The stand-in is written separately from Ollama's Go source; two readings that agree on every
  // tricky spelling are the best evidence short of running Ollama itself.
  const spellings = [
    '', '   ', '0.0.0.0', '0.0.0.0:11434', ':11434', ':1234', '[::]', '[::]:11434', '::', '::1', '[::1]:5000',
    '127.0.0.1', '127.0.0.1:8080', 'http://0.0.0.0', 'http://0.0.0.0:11434', 'https://1.2.3.4', 'http://1.2.3.4:56789/',
    ':66000', '1.2.3.4:-1', '1.2.3.4:abc', '"0.0.0.0:11434"', "'0.0.0.0'", ' "[::]:11434" ', 'example.com:1234',
  ];
  it.each(spellings)('%j', async (value) => {
    const standin = await import('../support/fake-ollama.mjs');
    const theirs = standin.parseOllamaHost(value);
    const ours = parseOllamaHost(value);
    expect(ours.port).toBe(theirs.portNumber);
    expect(bindScope(ours.host)).toBe(bindScope(theirs.host));
    if (bindScope(ours.host) !== 'wildcard') expect(ours.host).toBe(theirs.host);
  });
});

describe('urlEndpoint: where a client of OLLAMA_BASE_URL or llm.base_url connects', () => {
  it('gives the host without IPv6 brackets, the written port, or the scheme default', () => {
    expect(urlEndpoint('http://host.docker.internal:11434')).toEqual({ host: 'host.docker.internal', port: 11434, explicitPort: true, protocol: 'http:' });
    expect(urlEndpoint('http://[::1]:8080/ollama')).toMatchObject({ host: '::1', port: 8080 });
    expect(urlEndpoint('http://localhost')).toMatchObject({ port: 80, explicitPort: false });
    expect(urlEndpoint('https://ollama.example.com')).toMatchObject({ port: 443, explicitPort: false });
    expect(urlEndpoint('localhost:11434')?.host).toBe('');
    expect(urlEndpoint('not a url')).toBeUndefined();
  });
});
