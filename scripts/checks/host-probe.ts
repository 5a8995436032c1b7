/** ollama.host-probe: GET /api/version and /api/tags where Ollama is bound (127.0.0.1 for loopback and wildcard binds, never localhost: F9). */
import { formatBindAddress } from '../ollama-host.ts';
import { installationCommands } from './fixes.ts';
import type { Check } from './types.ts';

export const hostProbeCheck: Check = {
  id: 'ollama.host-probe',
  diagnose(facts) {
    const probe = facts.hostProbe;
    const url = probe.url;
    if (probe.ok) {
      const answers = `Ollama ${probe.version} answers on ${url} with ${probe.models.length} model${probe.models.length === 1 ? '' : 's'}`;
      const loopback = facts.loopbackProbe;
      if (loopback && !loopback.ok) {
        return {
          status: 'warn',
          message: `${answers}, but not on ${loopback.url} (${loopback.kind === 'refused' ? 'connection refused' : loopback.error}).`,
          why: "Tools on this machine connect to 127.0.0.1 or localhost (the ollama CLI, Stigmer's own check) and are refused; Stigmer may then start a second Ollama of its own.",
          fix: `npx stigmer-setup --yes --host ${formatBindAddress({ host: '0.0.0.0', port: facts.port })}`,
        };
      }
      return { status: 'ok', message: `${answers}.` };
    }
    if (probe.kind === 'not-ollama') {
      return {
        status: 'fail',
        message: `Something other than Ollama answers on ${url}: ${probe.error}.`,
        why: 'Another program holds the port, so Ollama cannot bind it (F15).',
        fix: `${facts.support.commands.portOwner(facts.port)}   # find that program, stop it, then: ${installationCommands(facts).start}`,
      };
    }
    return {
      status: 'fail',
      message: `Ollama does not answer on ${url} (${probe.kind === 'timeout' ? 'timed out' : probe.kind === 'refused' ? 'connection refused' : probe.error}).`,
      why: 'Nothing can use Ollama while it does not answer on the host.',
      fix: installationCommands(facts).start,
    };
  },
};
