/** Human and JSON output. Human text goes to stdout; with --json, stdout carries one object only. */
import type { Change, Plan } from '../platforms/types.ts';
import type { Finding } from './checks/types.ts';
import type { Command } from './args.ts';
import type { Platform } from './context.ts';
import { unifiedDiff } from './diff.ts';
import { summarize } from './checks/index.ts';

const SYMBOLS = { ok: '✔', warn: '!', fail: '✖', skip: '-' } as const;

export function renderFindings(findings: Finding[]): string {
  const width = Math.max(...findings.map((finding) => finding.id.length));
  const lines: string[] = [];
  for (const finding of findings) {
    lines.push(`${SYMBOLS[finding.status]} ${finding.id.padEnd(width)}  ${finding.message}`);
    if (finding.status === 'ok' || finding.status === 'skip') {
      if (finding.status === 'skip' && finding.fix) lines.push(`  ${' '.repeat(width)}  To check it: ${finding.fix}`);
      continue;
    }
    if (finding.why) lines.push(`  ${' '.repeat(width)}  Why it matters: ${finding.why}`);
    if (finding.fix) lines.push(`  ${' '.repeat(width)}  Fix: ${finding.fix}`);
  }
  lines.push(summarize(findings));
  return lines.join('\n');
}

export function describeCommand(argv: string[]): string {
  // For display only; execution always passes the argv array as is.
  return argv.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export function renderChanges(changes: Change[], dryRun: boolean): string {
  const lines: string[] = [];
  for (const change of changes) {
    if (change.type === 'file') {
      lines.push(`${dryRun ? 'Would ' : ''}${change.action} ${change.path}${change.privileged ? ' (with sudo)' : ''}`);
      lines.push(...unifiedDiff(change.before, change.after, change.path).split('\n').map((line) => `    ${line}`));
    } else {
      lines.push(dryRun ? `[dry run] Command not executed: ${describeCommand(change.argv)}` : `run ${describeCommand(change.argv)}`);
    }
  }
  return lines.join('\n');
}

export function renderPlan(plan: Plan, dryRun: boolean): string {
  const lines = [`Plan (${plan.strategy}): ${plan.summary}`];
  if (plan.changes.length > 0) lines.push(renderChanges(plan.changes, dryRun).replace(/^/gm, '  '));
  for (const warning of plan.warnings) lines.push(`! ${warning}`);
  for (const blocker of plan.blockers) lines.push(`✖ ${blocker.message}`, `  Fix: ${blocker.fix}`);
  return lines.join('\n');
}

export interface JsonReport {
  ok: boolean;
  command: Command;
  platform: Platform;
  strategy: string;
  summary?: string;
  dryRun: boolean;
  changes: (
    | { type: 'file'; path: string; action: 'create' | 'modify' | 'delete'; applied: boolean; diff: string }
    | { type: 'command'; argv: string[]; applied: boolean }
  )[];
  checks: Finding[];
  warnings: string[];
  error?: string;
}

export function jsonChanges(changes: Change[], applied: boolean[]): JsonReport['changes'] {
  return changes.map((change, index) =>
    change.type === 'file'
      ? { type: 'file', path: change.path, action: change.action, applied: applied[index] ?? false, diff: unifiedDiff(change.before, change.after, change.path) }
      : { type: 'command', argv: change.argv, applied: applied[index] ?? false },
  );
}
