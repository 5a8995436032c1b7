/** ollama.model — the model Stigmer will ask for is pulled (a missing model is a risk, not a failure). */
import type { Check } from './types.ts';

export const modelCheck: Check = {
  id: 'ollama.model',
  diagnose(facts) {
    if (!facts.hostProbe.ok) return { status: 'skip', message: 'Ollama does not answer, so its models are unknown.' };
    if (!facts.expectedModel) return { status: 'skip', message: `${facts.containerName} does not use Ollama (STIGMER_LLM_PROVIDER).` };
    const wanted = facts.expectedModel;
    const names = facts.hostProbe.models;
    // Ollama lists "name:latest" for a model pulled as "name".
    const present = names.includes(wanted) || (!wanted.includes(':') && names.includes(`${wanted}:latest`));
    if (present) return { status: 'ok', message: `Stigmer's model ${wanted} is pulled.` };
    return {
      status: 'warn',
      message: `Stigmer's model ${wanted} is not pulled (Ollama has ${names.length === 0 ? 'no models' : names.join(', ')}).`,
      why: 'The agent-runner reaches Ollama, but its first request fails with "model not found".',
      fix: `ollama pull ${wanted}`,
    };
  },
};
