/**
 * ollama.version: an Ollama that other machines (or every container) can reach should have the
 * fix for CVE-2026-7482 "Bleeding Llama", a heap out-of-bounds read through /api/create and
 * /api/push, fixed in 0.17.1 (failure catalogue §2). Ollama has no authentication, so the only
 * thing between that bug and the network is the bind.
 */
import { widestScope } from '../listeners.ts';
import { olderThan, SECURITY_FLOOR, SECURITY_FLOOR_CVE } from '../version.ts';
import { installationCommands } from './fixes.ts';
import type { Check } from './types.ts';

export const versionCheck: Check = {
  id: 'ollama.version',
  diagnose(facts) {
    const probe = facts.hostProbe;
    if (!probe.ok) return { status: 'skip', message: 'Ollama does not answer, so its version is unknown.' };
    const old = olderThan(probe.version, SECURITY_FLOOR);
    if (old === undefined) return { status: 'ok', message: `Ollama reports version "${probe.version}", which can't be compared with ${SECURITY_FLOOR} (a build from source?).` };
    if (!old) return { status: 'ok', message: `Ollama ${probe.version} has the fix for ${SECURITY_FLOOR_CVE} (${SECURITY_FLOOR} or later).` };
    const scope = facts.listeners ? widestScope(facts.listeners) : undefined;
    const upgrade = installationCommands(facts).upgrade ?? facts.support.commands.upgrade;
    if (scope === 'wildcard' || scope === 'specific') {
      const answering = facts.exposure.filter((entry) => entry.answered).map((entry) => entry.address);
      return {
        status: 'warn',
        message: `Ollama ${probe.version} is older than ${SECURITY_FLOOR} and listens beyond loopback${answering.length ? ` (it answers on ${answering.join(', ')})` : ''}.`,
        why: `${SECURITY_FLOOR_CVE} lets anyone who reaches the port read Ollama's memory through /api/create and /api/push; Ollama has no authentication to stop them.`,
        fix: upgrade,
      };
    }
    return {
      status: 'ok',
      message: `Ollama ${probe.version} is older than ${SECURITY_FLOOR} (${SECURITY_FLOOR_CVE}), which matters less while it listens on loopback only; upgrade before it listens wider: ${upgrade}`,
    };
  },
};
