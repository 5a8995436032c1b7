/**
 * Where setup and doctor ask Ollama on the host. Found by the Windows review: with Ollama on
 * 127.0.0.2 (a Machine-scope OLLAMA_HOST), setup asked 127.0.0.1 after its restart and waited its
 * whole 30 s for an answer that could only come from 127.0.0.2.
 */
import { describe, expect, it } from 'vitest';
import { hostProbeAddress, probeAddressFor } from '../../scripts/facts.ts';
import { listenerAt } from '../../scripts/listeners.ts';

describe('hostProbeAddress: where to ask after configuring a bind address', () => {
  it('asks a numbered loopback address where it is, and 127.0.0.1 for a wildcard or a name', () => {
    expect(hostProbeAddress('127.0.0.2')).toBe('127.0.0.2');
    expect(hostProbeAddress('127.0.0.1')).toBe('127.0.0.1');
    expect(hostProbeAddress('[::1]')).toBe('::1');
    expect(hostProbeAddress('::1')).toBe('::1');
    expect(hostProbeAddress('0.0.0.0')).toBe('127.0.0.1');
    expect(hostProbeAddress('[::]')).toBe('127.0.0.1');
    // Never "localhost": Node tries ::1 first (ollama/ollama-js#102).
    expect(hostProbeAddress('localhost')).toBe('127.0.0.1');
    expect(hostProbeAddress('172.17.0.1')).toBe('172.17.0.1');
  });
});

describe('probeAddressFor: where to ask the Ollama that listens now', () => {
  it('asks 127.0.0.2 when that is the only listener, and 127.0.0.1 when Ollama listens there too or on every interface', () => {
    expect(probeAddressFor([listenerAt('127.0.0.2', 11434, 4)], undefined)).toBe('127.0.0.2');
    expect(probeAddressFor([listenerAt('127.0.0.2', 11434, 4), listenerAt('127.0.0.1', 11434, 4)], undefined)).toBe('127.0.0.1');
    expect(probeAddressFor([listenerAt('::', 11434, 6)], undefined)).toBe('127.0.0.1');
    expect(probeAddressFor([listenerAt('::1', 11434, 6)], undefined)).toBe('::1');
  });
  it('with no listener, asks where the configuration says', () => {
    expect(probeAddressFor([], '127.0.0.2:11434')).toBe('127.0.0.2');
    expect(probeAddressFor(undefined, undefined)).toBe('127.0.0.1');
  });
});
