/**
 * ollama.service-config: is the configuration Ollama starts with readable, valid, and the one the
 * running server uses? (F4–F7: settings that don't apply, a URL that means port 80.) What is wrong
 * with one installation's configuration comes from its detection (problems). Whether it lasts is
 * ollama.persistence's question; two servers on the port are ollama.conflict's.
 */
import { widestScope } from '../listeners.ts';
import { bindScope, DEFAULT_PORT, formatBindAddress, parseOllamaHost } from '../ollama-host.ts';
import { installationCommands } from './fixes.ts';
import type { Check, Finding } from './types.ts';

function describeConfigured(host: string | undefined, source: string | undefined): string {
  if (host === undefined) return "no OLLAMA_HOST (Ollama's default, 127.0.0.1:11434)";
  return `OLLAMA_HOST=${host}${source ? ` (from ${source})` : ''}`;
}

export const serviceConfigCheck: Check = {
  id: 'ollama.service-config',
  diagnose(facts): Omit<Finding, 'id'> {
    const detection = facts.detection;
    if (!detection) return { status: 'skip', message: `Service configuration checks are not implemented on ${facts.platform} yet.` };
    if (detection.strategy === facts.support.notInstalled.id) return { status: 'skip', message: `No Ollama installation was found: ${detection.description}.` };
    // Settings that won't last are ollama.persistence's; two installations are ollama.conflict's.
    const problems = (detection.problems ?? []).filter((problem) => problem.kind !== 'persistence');
    const worst = problems.find((problem) => problem.status === 'fail') ?? problems[0];
    if (worst) return { status: worst.status, message: worst.message, why: worst.why, fix: worst.fix };

    const configured = detection.configuredHost;
    const bind = parseOllamaHost(configured);
    const configuredScope = bindScope(bind.host);
    const listening = facts.listeners ? widestScope(facts.listeners) : undefined;
    const described = describeConfigured(configured, detection.configuredIn);
    if (listening && listening !== configuredScope) {
      if (configuredScope === 'loopback') {
        // Whether that lasts is ollama.persistence's finding; the configuration itself is readable and valid.
        return { status: 'ok', message: `${detection.description} is configured with ${described}; Ollama listens beyond loopback now (ollama.persistence says whether that lasts).` };
      }
      return {
        status: 'warn',
        message: `${detection.description} is configured with ${described}, but the running Ollama has not picked it up.`,
        why: 'Ollama reads OLLAMA_HOST only when it starts.',
        fix: installationCommands(facts).restart,
      };
    }
    // The classic slip: a URL without a port is port 80 (https: 443) to Ollama, not 11434.
    if (configured !== undefined && /^\s*["']?https?:\/\/(\[[^\]]*\]|[^/:]*)(\/.*)?["']?\s*$/.test(configured)) {
      return {
        status: 'warn',
        message: `${detection.description} sets OLLAMA_HOST=${configured}, which Ollama reads as port ${bind.port}, not ${DEFAULT_PORT}.`,
        why: 'Everything that expects Ollama on its usual port 11434, the agent-runner included, finds nothing there.',
        fix: `npx stigmer-setup --yes --host ${formatBindAddress({ host: bindScope(bind.host) === 'wildcard' ? '0.0.0.0' : bind.host, port: DEFAULT_PORT })}`,
      };
    }
    // Spell out where an unusual spelling binds (":11434", "http://0.0.0.0" is port 80), not "0.0.0.0:11434".
    const unusual = configured !== undefined && (bind.host === '' || configured !== formatBindAddress(bind));
    const meaning = bindScope(bind.host) === 'wildcard' ? `every interface, port ${bind.port}` : formatBindAddress(bind);
    return { status: 'ok', message: `${detection.description} starts Ollama with ${described}${unusual ? `, which binds ${meaning}` : ''}.` };
  },
};
