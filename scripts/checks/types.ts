import type { Facts } from '../facts.ts';

/**
 * 'note': something that would be a problem for another consumer, but not for the one found here
 * (a bridge container can't reach a loopback Ollama that a native Stigmer reaches as it is). It
 * counts as passed: a healthy machine has no alarming lines.
 */
export type CheckStatus = 'ok' | 'note' | 'warn' | 'fail' | 'skip';

/** One finding, brew-doctor style: what is wrong, why it matters, the exact command. */
export interface Finding {
  id: string;
  status: CheckStatus;
  message: string;
  why?: string;
  fix?: string;
  /** Where TROUBLESHOOTING.md explains this check: symptoms, cause, and the fix per OS and runtime. */
  docs?: string;
}

/**
 * A check is pure: it reads the facts gathered once per run and never touches the machine, so the
 * same catalogue serves `doctor`, setup's final verification, and tests on hand-made facts.
 */
export interface Check {
  id: string;
  diagnose(facts: Facts): Omit<Finding, 'id'>;
}
