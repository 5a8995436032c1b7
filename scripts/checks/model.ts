/**
 * ollama.model: the model Stigmer will ask for is pulled (a missing model is a risk, not a
 * failure: Ollama answers, and only the first request fails). The model is the runner's own
 * STIGMER_LLM_MODEL when the runner exists; otherwise what Stigmer's CLI resolves from the
 * environment, ~/.stigmer/config.yaml or its default.
 */
import type { Facts } from '../facts.ts';
import { modelNameProblem } from '../model-name.ts';
import { STIGMER_DEFAULTS } from '../stigmer-config.ts';
import { cleanField } from '../text.ts';
import { shellWord } from './fixes.ts';
import type { Check } from './types.ts';

/** Where Stigmer's model name comes from, as a person reads it (the pull's messages name it too). */
export function modelSource(facts: Facts): string {
  if (facts.container) return facts.container.env.has('STIGMER_LLM_MODEL') ? `${facts.containerName}'s STIGMER_LLM_MODEL` : "the runner's default";
  const from = facts.stigmer.model.from;
  return from === 'config.yaml' ? facts.stigmer.path : from === 'default' ? "Stigmer's default" : from;
}

export const modelCheck: Check = {
  id: 'ollama.model',
  diagnose(facts) {
    if (!facts.hostProbe.ok) return { status: 'skip', message: 'Ollama does not answer, so its models are unknown.' };
    if (!facts.expectedModel) return { status: 'skip', message: `Stigmer is not set to use Ollama (STIGMER_LLM_PROVIDER is ${facts.container?.env.get('STIGMER_LLM_PROVIDER') ?? facts.stigmer.provider.value}).` };
    const wanted = facts.expectedModel;
    const names = facts.hostProbe.models;
    // Ollama lists "name:latest" for a model pulled as "name".
    const present = names.includes(wanted) || (!wanted.includes(':') && names.includes(`${wanted}:latest`));
    const source = modelSource(facts);
    // A name Ollama would reject can't go into `ollama pull`: it is the finding, and no command is built from it.
    const invalid = modelNameProblem(wanted);
    if (invalid) {
      const line = !facts.container && facts.stigmer.model.from === 'config.yaml' && facts.stigmer.model.line ? ` line ${facts.stigmer.model.line}` : '';
      return {
        status: 'warn',
        message: `Stigmer's model ${JSON.stringify(cleanField(wanted))} (from ${source}${line}) is not a valid Ollama model name: ${invalid}.`,
        why: 'Ollama refuses that name, so the agent-runner\'s first request fails.',
        fix: `Set a valid model name (such as ${STIGMER_DEFAULTS.model}) in ${source}${line}`,
      };
    }
    if (present) return { status: 'ok', message: `Stigmer's model ${wanted} (from ${source}) is pulled.` };
    return {
      status: 'warn',
      message: `Stigmer's model ${wanted} (from ${source}) is not pulled (Ollama has ${names.length === 0 ? 'no models' : names.slice(0, 20).join(', ')}).`,
      why: 'The agent-runner reaches Ollama, but its first request fails with "model not found".',
      fix: `ollama pull ${shellWord(facts, wanted)}`,
    };
  },
};
