/**
 * ollama.persistence: will where Ollama listens survive a restart of the service, an Ollama
 * upgrade and a reboot? (F4, F5, F7.) A hand-started `ollama serve`, a plist edit the next
 * `brew services restart` regenerates, a `launchctl setenv` no login agent repeats, a value in a
 * unit file install.sh rewrites: each works today and silently stops working later.
 */
import { widestScope } from '../listeners.ts';
import { bindScope, parseOllamaHost } from '../ollama-host.ts';
import { SETUP_COMMAND, wideningNeeded } from './fixes.ts';
import type { Check } from './types.ts';

export const persistenceCheck: Check = {
  id: 'ollama.persistence',
  diagnose(facts) {
    const detection = facts.detection;
    if (!detection || detection.strategy === facts.support.notInstalled.id) return { status: 'skip', message: 'No Ollama installation was found, so there is no setting to keep.' };
    const lasting = (detection.problems ?? []).filter((problem) => problem.kind === 'persistence');
    const worst = lasting.find((problem) => problem.status === 'fail') ?? lasting[0];
    if (worst) return { status: worst.status, message: worst.message, why: worst.why, fix: worst.fix };

    const configuredScope = bindScope(parseOllamaHost(detection.configuredHost).host);
    const listening = facts.listeners ? widestScope(facts.listeners) : undefined;
    if (listening && listening !== 'loopback' && configuredScope === 'loopback' && wideningNeeded(facts)) {
      return {
        status: 'warn',
        message: `Ollama listens beyond loopback now, but ${detection.description} starts it with ${detection.configuredHost === undefined ? "Ollama's default, 127.0.0.1" : `OLLAMA_HOST=${detection.configuredHost}`}.`,
        why: 'The next restart, upgrade or reboot brings back a loopback-only Ollama that containers cannot reach.',
        fix: SETUP_COMMAND,
      };
    }
    if (facts.strategy?.persistent === false) {
      return { status: 'warn', message: `${detection.description} is not managed by anything that starts it again.`, why: 'Where it listens lasts only until it stops.', fix: SETUP_COMMAND };
    }
    const where = detection.configuredHost === undefined ? "Ollama's default, 127.0.0.1" : `${detection.configuredHost}${detection.configuredIn ? ` (set by ${detection.configuredIn})` : ''}`;
    return { status: 'ok', message: `Where Ollama listens lasts: ${detection.description} brings it back on ${where} after every restart, upgrade and reboot.` };
  },
};
