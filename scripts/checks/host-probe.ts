/** ollama.host-probe — GET /api/version and /api/tags on 127.0.0.1 (never localhost: F9). */
import { widestScope } from '../listeners.ts';
import { startOllamaCommand } from './fixes.ts';
import type { Check } from './types.ts';

export const hostProbeCheck: Check = {
  id: 'ollama.host-probe',
  diagnose(facts) {
    const url = `http://127.0.0.1:${facts.port}`;
    const probe = facts.hostProbe;
    if (probe.ok) {
      return { status: 'ok', message: `Ollama ${probe.version} answers on ${url} with ${probe.models.length} model${probe.models.length === 1 ? '' : 's'}.` };
    }
    if (probe.kind === 'not-ollama') {
      return {
        status: 'fail',
        message: `Something other than Ollama answers on ${url}: ${probe.error}.`,
        why: 'Another program holds the port, so Ollama cannot bind it (F15).',
        fix: `sudo ss -ltnp 'sport = :${facts.port}'   # find that program, stop it, then: ${startOllamaCommand(facts)}`,
      };
    }
    const boundElsewhere = facts.listeners && widestScope(facts.listeners) === 'specific';
    if (probe.kind === 'refused' && boundElsewhere) {
      return {
        status: 'fail',
        message: `${url} refuses connections: Ollama is bound to one address that is not loopback.`,
        why: 'Tools on this machine (the ollama CLI, Stigmer) connect to 127.0.0.1 and are refused.',
        fix: `npx stigmer-setup --yes --host 0.0.0.0:${facts.port}`,
      };
    }
    return {
      status: 'fail',
      message: `Ollama does not answer on ${url} (${probe.kind === 'timeout' ? 'timed out' : probe.kind === 'refused' ? 'connection refused' : probe.error}).`,
      why: 'Nothing can use Ollama while it does not answer on the host.',
      fix: startOllamaCommand(facts),
    };
  },
};
