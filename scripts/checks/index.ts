/**
 * The one catalogue of checks. `doctor` runs it read-only; setup and undo run it as their final
 * verification. Order is the order a person would debug in: the server and its port, its
 * configuration, the container engine and the route from the container, then what Stigmer asks for
 * and who else can reach Ollama. The failure catalogue's ranked list (failure-modes.md §4) maps
 * onto these ids; the README's check table lists them all.
 */
import type { Facts } from '../facts.ts';
import { aliasCheck } from './alias.ts';
import { conflictCheck } from './conflict.ts';
import { containerProbeCheck } from './container-probe.ts';
import { containerRuntimeCheck } from './container-runtime.ts';
import { exposureCheck } from './exposure.ts';
import { firewallCheck } from './firewall.ts';
import { hostProbeCheck } from './host-probe.ts';
import { ipv6Check } from './ipv6.ts';
import { listenerCheck } from './listener.ts';
import { modelCheck } from './model.ts';
import { persistenceCheck } from './persistence.ts';
import { proxyCheck } from './proxy.ts';
import { rootlessCheck } from './rootless.ts';
import { serviceConfigCheck } from './service-config.ts';
import { stigmerConfigCheck } from './stigmer-config.ts';
import type { Check, Finding } from './types.ts';
import { versionCheck } from './version.ts';

export const CHECKS: readonly Check[] = [
  listenerCheck,
  conflictCheck,
  ipv6Check,
  hostProbeCheck,
  versionCheck,
  serviceConfigCheck,
  persistenceCheck,
  containerRuntimeCheck,
  rootlessCheck,
  aliasCheck,
  proxyCheck,
  firewallCheck,
  containerProbeCheck,
  modelCheck,
  stigmerConfigCheck,
  exposureCheck,
];

/** The published troubleshooting guide; each check has a section whose heading is its id. */
export const TROUBLESHOOTING_URL = 'https://github.com/stigmer/stigmer-setup/blob/main/TROUBLESHOOTING.md';

/** The link to a check's section: GitHub's anchor for the heading "## ollama.listener" is #ollamalistener. */
export function troubleshootingLink(id: string): string {
  return `${TROUBLESHOOTING_URL}#${id.toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-')}`;
}

export function runChecks(facts: Facts): Finding[] {
  return CHECKS.map((check) => {
    const docs = troubleshootingLink(check.id);
    try {
      return { id: check.id, ...check.diagnose(facts), docs };
    } catch (error) {
      // A crashed check is a finding too (flutter doctor's "did not complete"), not a crashed CLI.
      return { id: check.id, status: 'fail', message: `The check did not complete: ${(error as Error).message}`, docs };
    }
  });
}

export function summarize(findings: Finding[]): string {
  const count = (status: Finding['status']) => findings.filter((finding) => finding.status === status).length;
  const ran = findings.length - count('skip');
  const details = [count('warn') && `${count('warn')} warning${count('warn') === 1 ? '' : 's'}`, count('fail') && `${count('fail')} failed`].filter(Boolean);
  const skipped = count('skip') ? `; ${count('skip')} skipped` : '';
  // A note is a pass: it is about another consumer than the one found here.
  const notes = count('note') ? ` (${count('note')} note${count('note') === 1 ? '' : 's'})` : '';
  // A healthy run prints nothing but ✓ (and i) lines, this one included.
  if (count('ok') + count('note') === findings.length) return `✓ All ${findings.length} checks passed${notes}`;
  const passed = count('ok') + count('note');
  return `${passed}/${ran} checks passed${details.length ? ` (${details.join(', ')})` : ''}${skipped}`;
}

export function anyFailed(findings: Finding[]): boolean {
  return findings.some((finding) => finding.status === 'fail');
}
