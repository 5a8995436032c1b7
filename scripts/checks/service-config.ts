/**
 * ollama.service-config — does the configuration Ollama starts with match what it listens on now,
 * and will it still after a restart or reboot? (F4–F7: settings that don't last or don't apply.)
 */
import type { SystemdDetection } from '../../platforms/linux/systemd.ts';
import { DROP_IN_NAME, DROP_IN_PATH, winningDropIn } from '../../platforms/linux/systemd.ts';
import type { ManualDetection } from '../../platforms/linux/manual.ts';
import { widestScope } from '../listeners.ts';
import { bindScope, DEFAULT_PORT, formatBindAddress, parseOllamaHost } from '../ollama-host.ts';
import { restartOllamaCommand, SETUP_COMMAND } from './fixes.ts';
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
    if (detection.strategy === 'linux-none') return { status: 'skip', message: 'No Ollama service, snap or process was found.' };
    if (detection.strategy === 'linux-manual') {
      const manual = detection as ManualDetection;
      return {
        status: 'warn',
        message: `Ollama runs as ${manual.description}; where it listens lasts only until that process stops.`,
        why: 'Nothing restarts it with the same settings after a reboot, so containers may lose Ollama later.',
        fix: 'Install Ollama as a service (curl -fsSL https://ollama.com/install.sh | sh), then run: npx stigmer-setup',
      };
    }
    if (detection.strategy === 'linux-systemd' && (detection as SystemdDetection).systemctlError) {
      return {
        status: 'warn',
        message: `\`systemctl show ollama.service\` failed: ${(detection as SystemdDetection).systemctlError}`,
        why: "Without it, the service's OLLAMA_HOST and drop-ins can't be checked.",
        fix: 'sudo npx stigmer-setup doctor',
      };
    }
    if (detection.strategy === 'linux-systemd' && !(detection as SystemdDetection).systemdRunning) {
      return {
        status: 'warn',
        message: `${(detection as SystemdDetection).unitPath} is installed, but systemd is not running, so that unit does not start Ollama.`,
        why: 'Whatever runs Ollama here is not the service, and settings in the unit do not apply.',
        fix: 'Enable systemd (WSL: [boot] systemd=true in /etc/wsl.conf, then `wsl --shutdown`).',
      };
    }
    if (detection.strategy === 'linux-systemd') {
      const systemd = detection as SystemdDetection;
      const ours = systemd.dropIns.find((dropIn) => dropIn.path === DROP_IN_PATH);
      const winner = winningDropIn(systemd.dropIns, DROP_IN_PATH);
      if (ours && ours.ollamaHost.length > 0 && winner && winner.path !== DROP_IN_PATH) {
        return {
          status: 'fail',
          message: `${winner.path} sets OLLAMA_HOST=${winner.ollamaHost.at(-1)}, which overrides ${DROP_IN_NAME} (systemd reads drop-ins in name order; the last one wins).`,
          why: `The address stigmer-setup configured is not the one Ollama uses (effective: ${systemd.effectiveHost ?? 'unset'}).`,
          fix: `Remove the OLLAMA_HOST line from ${winner.path}, then: ${restartOllamaCommand(facts)}`,
        };
      }
    }
    const configured = detection.configuredHost;
    const bind = parseOllamaHost(configured);
    const configuredScope = bindScope(bind.host);
    const listening = facts.listeners ? widestScope(facts.listeners) : undefined;
    const described = describeConfigured(configured, detection.configuredIn);
    if (listening && listening !== configuredScope) {
      if (configuredScope === 'loopback') {
        return {
          status: 'warn',
          message: `Ollama listens beyond loopback now, but ${detection.description} is configured with ${described}.`,
          why: 'The next restart or reboot brings back a loopback-only Ollama that containers cannot reach.',
          fix: SETUP_COMMAND,
        };
      }
      return {
        status: 'warn',
        message: `${detection.description} is configured with ${described}, but the running Ollama has not picked it up.`,
        why: 'Ollama reads OLLAMA_HOST only when it starts.',
        fix: restartOllamaCommand(facts),
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
