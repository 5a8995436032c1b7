/** Fix commands shared by several checks, so every finding names the same command for the same problem. */
import type { Facts } from '../facts.ts';

export const SETUP_COMMAND = 'npx stigmer-setup --yes';

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
