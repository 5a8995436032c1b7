/**
 * Fix commands shared by several checks, so every finding names the same command for the same
 * problem. They come from the installation that was detected (its start, restart and log commands)
 * and from the platform, never from a guess about which OS this is.
 */
import { SETUP_COMMAND } from '../../platforms/commands.ts';
import type { InstallationCommands } from '../../platforms/types.ts';
import type { Facts } from '../facts.ts';
import { reachDecision } from '../plan.ts';
import { UnquotableError } from '../shell-quote.ts';

export { SETUP_COMMAND };

/** Commands for the installation in use; generic ones where no installation could be detected. */
export function installationCommands(facts: Facts): InstallationCommands {
  if (facts.strategy && facts.detection) return facts.strategy.commands(facts.detection, facts.port);
  const serve = `OLLAMA_HOST=0.0.0.0:${facts.port} ollama serve`;
  return { start: serve, restart: `restart Ollama, then: ${serve}`, logs: "Ollama's server log", widen: serve, stop: 'quit Ollama' };
}

/**
 * How to make Ollama listen where containers reach it. For a service that is setup itself; for a
 * hand-started process there is no configuration to change, so it is the command to restart it.
 */
export function widenBindFix(facts: Facts): string {
  return installationCommands(facts).widen;
}

/** Whether the widening fix applies: setup agrees a change is needed (see reachDecision). */
export function wideningNeeded(facts: Facts): boolean {
  return reachDecision(facts).changeNeeded;
}

/**
 * A machine-supplied value as one word of the shell the fix is pasted into, quoted by the
 * platform's own rules (POSIX sh on Linux and macOS, PowerShell on Windows). A value that can't be
 * pasted safely (a control character) is shown escaped, and the fix says to type it by hand.
 */
export function shellWord(facts: Pick<Facts, 'support'>, value: string): string {
  const byHand = `${JSON.stringify(value)} (type it by hand: it can't be pasted safely)`;
  try {
    return facts.support.quote(value);
  } catch (error) {
    if (error instanceof UnquotableError) return byHand;
    throw error;
  }
}
