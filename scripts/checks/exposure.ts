/** ollama.exposure — who else can reach Ollama. It has no authentication (§2 of the failure catalogue). */
import { widestScope } from '../listeners.ts';
import type { Check } from './types.ts';

export const exposureCheck: Check = {
  id: 'ollama.exposure',
  diagnose(facts) {
    if (!facts.listeners || facts.listeners.length === 0) return { status: 'skip', message: 'Nothing listens, so nothing is exposed.' };
    const scope = widestScope(facts.listeners);
    if (scope === 'loopback') return { status: 'ok', message: 'Only programs on this machine can connect to Ollama.' };
    if (scope === 'specific') return { status: 'ok', message: 'Ollama listens on specific addresses only, not on every interface.' };
    return {
      status: 'warn',
      message: `Ollama accepts connections on every interface, port ${facts.port}.`,
      why: 'Ollama has no authentication: anyone on your network who reaches this port can use your models and pull new ones.',
      fix: `Allow only Docker's bridge, e.g. with ufw: sudo ufw allow in on docker0 to any port ${facts.port} proto tcp && sudo ufw deny ${facts.port}/tcp`,
    };
  },
};
