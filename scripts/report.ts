/** Human and JSON output. Human text goes to stdout; with --json, stdout carries one object only. */
import type { Change, FileChange, Plan } from '../platforms/types.ts';
import type { Command } from './args.ts';
import { summarize } from './checks/index.ts';
import type { Finding } from './checks/types.ts';
import type { Platform } from './context.ts';
import { unifiedDiff } from './diff.ts';
import type { SignalName } from './interrupt.ts';
import { describeCommand } from './system-files.ts';
import { stripControl } from './text.ts';
import { displayValue } from './undo-record.ts';

const SYMBOLS = { ok: '✓', warn: '!', fail: '✖', skip: '-' } as const;
const COLORS = { ok: 32, warn: 33, fail: 31, skip: 2 } as const;

/**
 * Findings, brew-doctor style. Their text quotes the system (process names, file contents), so it
 * is stripped of control sequences here, before our own colour is added: the result is printed as is.
 */
export function renderFindings(findings: Finding[], color = false): string {
  const width = Math.max(...findings.map((finding) => finding.id.length));
  const lines: string[] = [];
  const symbol = (status: Finding['status']) => (color ? `\x1b[${COLORS[status]}m${SYMBOLS[status]}\x1b[0m` : SYMBOLS[status]);
  for (const raw of findings) {
    const finding = { ...raw, message: stripControl(raw.message), why: raw.why && stripControl(raw.why), fix: raw.fix && stripControl(raw.fix) };
    lines.push(`${symbol(finding.status)} ${finding.id.padEnd(width)}  ${finding.message}`);
    if (finding.status === 'ok' || finding.status === 'skip') {
      if (finding.status === 'skip' && finding.fix) lines.push(`  ${' '.repeat(width)}  To check it: ${finding.fix}`);
      continue;
    }
    if (finding.why) lines.push(`  ${' '.repeat(width)}  Why it matters: ${finding.why}`);
    if (finding.fix) lines.push(`  ${' '.repeat(width)}  Fix: ${finding.fix}`);
    if (finding.docs) lines.push(`  ${' '.repeat(width)}  More: ${finding.docs}`);
  }
  lines.push(summarize(findings));
  return lines.join('\n');
}


/** A file's bytes as text for a diff; binary content is described rather than dumped. */
function displayText(content: Buffer | undefined): string | undefined {
  if (content === undefined) return undefined;
  const text = content.toString('utf8');
  if (content.includes(0) || !Buffer.from(text, 'utf8').equals(content)) return `(binary content, ${content.length} bytes)\n`;
  return text;
}

export function fileDiff(change: FileChange): string {
  if (change.restoreFrom) return `(restored from ${change.restoreFrom}, which only root can read)`;
  return unifiedDiff(displayText(change.before), displayText(change.after), change.path);
}

function describeValue(value: string | undefined): string {
  return value === undefined ? '(unset)' : displayValue(value);
}

export function renderChanges(changes: Change[], dryRun: boolean): string {
  const lines: string[] = [];
  for (const change of changes) {
    if (change.type === 'file') {
      const verb = change.role === 'kept' ? 'keep a copy of your edits as' : change.action;
      lines.push(`${dryRun ? 'Would ' : ''}${verb} ${change.path}${change.privileged ? ' (with sudo)' : ''}`);
      if (change.role !== 'kept') lines.push(...fileDiff(change).split('\n').map((line) => `    ${line}`));
    } else if (change.type === 'setting') {
      lines.push(`${dryRun ? 'Would set' : 'set'} ${change.store} ${change.key}: ${describeValue(change.before)} → ${describeValue(change.after)}`);
      lines.push(dryRun ? `[dry run] Command not executed: ${describeCommand(change.argv)}` : `run ${describeCommand(change.argv)}`);
    } else {
      for (const step of change.steps) lines.push(dryRun ? `[dry run] Command not executed: ${describeCommand(step)}` : `run ${describeCommand(step)}`);
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

export type JsonChange =
  | { type: 'file'; path: string; action: 'create' | 'modify' | 'delete'; mode: string; kept?: true; applied: boolean; diff: string }
  | { type: 'setting'; store: string; key: string; before: string | null; after: string | null; argv: string[]; applied: boolean }
  | { type: 'command'; argv: string[]; applied: boolean };

export interface JsonReport {
  ok: boolean;
  command: Command;
  platform: Platform;
  strategy: string;
  summary?: string;
  dryRun: boolean;
  changes: JsonChange[];
  checks: Finding[];
  warnings: string[];
  error?: string;
  /** Set only when a signal stopped the run (ok is then false and error says what is in place). */
  signal?: SignalName;
  /** Stigmer's model, when setup looked at it (Ollama answered and Stigmer uses Ollama). */
  model?: JsonModel;
}

export interface JsonModel {
  name: string;
  /** Where the name came from: "STIGMER_LLM_MODEL", "/home/u/.stigmer/config.yaml line 3", "Stigmer's default"… */
  source: string;
  /** Ollama has it (before this run, or pulled by it). */
  present: boolean;
  /** This run pulled it (its `success` line arrived). */
  pulled: boolean;
  /** The size of its layers as the pull reported them; 0 when nothing was pulled. */
  bytes: number;
  /** Why it is not there: the pull's failure, or that it was not asked for. */
  error?: string;
}

/** One entry per file and setting; a restart is listed as the commands it runs, each with its own entry. */
export function jsonChanges(changes: Change[], applied: boolean[]): JsonChange[] {
  return changes.flatMap((change, index): JsonChange[] => {
    const done = applied[index] ?? false;
    if (change.type === 'file') {
      return [{ type: 'file', path: change.path, action: change.action, mode: change.mode.toString(8).padStart(4, '0'), ...(change.role === 'kept' ? { kept: true as const } : {}), applied: done, diff: fileDiff(change) }];
    }
    if (change.type === 'setting') {
      return [{ type: 'setting', store: change.store, key: change.key, before: change.before ?? null, after: change.after ?? null, argv: change.argv, applied: done }];
    }
    return change.steps.map((argv) => ({ type: 'command' as const, argv, applied: done }));
  });
}
