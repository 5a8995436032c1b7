/**
 * The one catalogue of checks. `doctor` runs it read-only; setup and undo run it as their final
 * verification. Order is the order a person would debug in: the listener, the host, the container.
 */
import type { Facts } from '../facts.ts';
import { containerProbeCheck } from './container-probe.ts';
import { containerRuntimeCheck } from './container-runtime.ts';
import { exposureCheck } from './exposure.ts';
import { hostProbeCheck } from './host-probe.ts';
import { listenerCheck } from './listener.ts';
import { modelCheck } from './model.ts';
import { serviceConfigCheck } from './service-config.ts';
import type { Check, Finding } from './types.ts';

export const CHECKS: readonly Check[] = [
  listenerCheck,
  hostProbeCheck,
  serviceConfigCheck,
  containerRuntimeCheck,
  containerProbeCheck,
  modelCheck,
  exposureCheck,
];

export function runChecks(facts: Facts): Finding[] {
  return CHECKS.map((check) => {
    try {
      return { id: check.id, ...check.diagnose(facts) };
    } catch (error) {
      // A crashed check is a finding too (flutter doctor's "did not complete"), not a crashed CLI.
      return { id: check.id, status: 'fail', message: `The check did not complete: ${(error as Error).message}` };
    }
  });
}

export function summarize(findings: Finding[]): string {
  const count = (status: Finding['status']) => findings.filter((finding) => finding.status === status).length;
  const ran = findings.length - count('skip');
  const details = [count('warn') && `${count('warn')} warning${count('warn') === 1 ? '' : 's'}`, count('fail') && `${count('fail')} failed`].filter(Boolean);
  const skipped = count('skip') ? `; ${count('skip')} skipped` : '';
  return `${count('ok')}/${ran} checks passed${details.length ? ` (${details.join(', ')})` : ''}${skipped}`;
}

export function anyFailed(findings: Finding[]): boolean {
  return findings.some((finding) => finding.status === 'fail');
}
