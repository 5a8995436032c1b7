/**
 * Fix commands shared by several checks, so every finding names the same command for the same
 * problem. They come from the installation that was detected (its start, restart and log commands)
 * and from the platform, never from a guess about which OS this is.
 */
import { SETUP_COMMAND } from '../../platforms/commands.ts';
import type { InstallationCommands } from '../../platforms/types.ts';
import type { Facts } from '../facts.ts';
import { bridgeRouteNeeded, otherContainersAdvice, reachDecision, stigmerFlavour, stigmerNeedsNothing } from '../plan.ts';
import { describeFlavour } from '../stigmer-flavour.ts';
import type { Finding } from './types.ts';
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

/**
 * A finding about the route from a Docker bridge to Ollama (container.probe, container.alias,
 * host.firewall) fails only when a consumer that needs that route exists or will
 * (bridgeRouteNeeded). For a native Stigmer, a runner on the host's network, or no Stigmer at all,
 * the same finding is a note: what it would mean for another container, and the command for one
 * that must get in. Plain setup would say "nothing to change" for a Stigmer that needs nothing, so
 * a note for one never points at it: the explicit --host does change something.
 */
export function routeFinding(facts: Facts, finding: Omit<Finding, 'id'>): Omit<Finding, 'id'> {
  if (finding.status !== 'fail' || bridgeRouteNeeded(facts)) return finding;
  const satisfied = stigmerNeedsNothing(facts);
  if (satisfied) {
    const setupFix = finding.fix !== undefined && finding.fix === widenBindFix(facts) && finding.fix.includes('stigmer-setup');
    return {
      status: 'note',
      message: `${finding.message} Stigmer doesn't need this route: it runs ${describeFlavour({ ...satisfied, evidence: [] })}.`,
      why: otherContainersAdvice(facts),
      fix: setupFix ? `npx stigmer-setup --host 0.0.0.0:${facts.port}   # exposes Ollama to your network too` : finding.fix,
    };
  }
  const none = stigmerFlavour(facts)?.kind === 'none';
  return {
    status: 'note',
    message: `${finding.message}${none ? ' No Stigmer was found here, so no consumer needs this route yet.' : ''}`,
    why: `${finding.why ?? ''} This matters for a container on a Docker bridge (Open WebUI, a compose stack, Stigmer's Docker-era runner).`.trim(),
    fix: finding.fix,
  };
}
