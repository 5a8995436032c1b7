/** Fix commands shared by several checks, so every finding names the same command for the same problem. */
import type { ManualDetection } from '../../platforms/linux/manual.ts';
import type { Facts } from '../facts.ts';

export const SETUP_COMMAND = 'npx stigmer-setup --yes';

/**
 * How to make Ollama listen where containers reach it. setup does it for a service; a hand-started
 * process has no configuration to change, so the fix is to start it again with the variable.
 */
export function widenBindFix(facts: Facts): string {
  const detection = facts.detection;
  if (detection?.strategy === 'linux-manual') {
    const pid = (detection as ManualDetection).process.pid;
    return `Stop it (kill ${pid}), then start it with: OLLAMA_HOST=0.0.0.0:${facts.port} ollama serve`;
  }
  if (detection?.strategy === 'linux-none') return startOllamaCommand(facts);
  return SETUP_COMMAND;
}

export function startOllamaCommand(facts: Facts): string {
  switch (facts.detection?.strategy) {
    case 'linux-systemd':
      return 'sudo systemctl start ollama (then `journalctl -u ollama -n 50` if it does not stay up)';
    case 'linux-snap':
      return 'sudo snap start ollama';
    case 'linux-none':
      return 'curl -fsSL https://ollama.com/install.sh | sh';
    default:
      return `OLLAMA_HOST=0.0.0.0:${facts.port} ollama serve`;
  }
}

export function restartOllamaCommand(facts: Facts): string {
  if (facts.detection?.strategy === 'linux-snap') return 'sudo snap restart ollama';
  return 'sudo systemctl daemon-reload && sudo systemctl restart ollama';
}
