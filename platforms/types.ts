/**
 * The interface every platform strategy implements. A strategy is one way Ollama can be installed
 * (a systemd unit, a snap, a hand-started `ollama serve`, …):
 *   detect — look at the machine (read-only) and say whether this is how Ollama runs here;
 *   plan   — pure: from what detect found and what the user asked, the exact file changes and
 *            commands. `--dry-run` prints this list and `apply` runs it, so they can't disagree;
 *   apply  — carry the plan out, all or nothing.
 */
import type { Context } from '../scripts/context.ts';
import { bindScope, type BindAddress, type BindScope } from '../scripts/ollama-host.ts';

export interface FileChange {
  type: 'file';
  /** The path actually written, including any --root prefix. */
  path: string;
  action: 'create' | 'modify' | 'delete';
  /** Content before the change; undefined when the file does not exist yet. */
  before?: string;
  /** Content after the change; undefined for a delete. */
  after?: string;
  /** Written through sudo because we can't write there ourselves. */
  privileged: boolean;
}

export interface CommandChange {
  type: 'command';
  /** Exactly what runs, `sudo` included when it is needed. */
  argv: string[];
}

export type Change = FileChange | CommandChange;

export interface Plan {
  strategy: string;
  /** The bind address being configured, when the plan configures one. */
  target?: BindAddress;
  changes: Change[];
  /** One sentence on what the plan does, or why it does nothing. */
  summary: string;
  /** Things the plan can't fix by itself; setup prints them with their fix and exits 1. */
  blockers: { message: string; fix: string }[];
  warnings: string[];
  /** Commands that make Ollama pick up its configuration again; undo runs them after restoring. */
  restart: string[][];
  /** Commands that undo a command change which has no file to restore (e.g. `snap set`). */
  reverts: string[][];
}

/** What the caller asks for, already validated. */
export interface PlanRequest {
  target: BindAddress;
  /** The user named --host; otherwise the target is the default. */
  explicitHost: boolean;
  /** Prefix for privileged commands: [] as root, ['sudo'] interactive, ['sudo', '-n'] with --yes. */
  sudo: string[];
  /**
   * How far the running Ollama listens now ('none': nothing listens), when known. A configuration
   * that is right but not running yet needs a restart, not "nothing to do".
   */
  listening?: BindScope | 'none';
}

/** Whether the running Ollama already listens as the request wants (true when that is unknown). */
export function listensAsRequested(request: PlanRequest): boolean {
  return request.listening === undefined || request.listening === bindScope(request.target.host);
}

export interface ApplyOptions {
  /** Where backups and the undo record live (under --root when given). */
  stateDir: string;
  sudo: string[];
}

export interface ApplyOutcome {
  ok: boolean;
  /** Each change with whether it took effect (after a rollback, none have). */
  applied: boolean[];
  error?: string;
  /** A step failed and everything before it was put back. */
  rolledBack: boolean;
  /**
   * After a successful apply: put everything back as it was before it. Setup calls this when
   * Ollama, which answered before, does not come back after the change. Returns the problems.
   */
  rollback?: () => Promise<string[]>;
}

export interface Detection {
  strategy: string;
  /** How Ollama runs here, for the report: "systemd unit ollama.service". */
  description: string;
  /** The OLLAMA_HOST value this installation starts Ollama with, if any. */
  configuredHost?: string;
  /** Where that value comes from, for the report. */
  configuredIn?: string;
}

export interface DetectOptions {
  /** Prefix for system paths (--root), '/' normally. */
  root: string;
  /** The port Ollama is expected on, to find who listens there. */
  port: number;
}

export interface Strategy<D extends Detection = Detection> {
  id: string;
  detect(ctx: Context, options: DetectOptions): Promise<D | undefined>;
  plan(detection: D, request: PlanRequest): Plan;
  apply(ctx: Context, plan: Plan, options: ApplyOptions): Promise<ApplyOutcome>;
}
