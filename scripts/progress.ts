/**
 * What is in place now, kept as a run goes, so that a run stopped part-way (a signal, an
 * unexpected error) says exactly that, in words and in its one --json object: the changes it
 * planned, which of them are applied (the apply's own flags, which a rollback updates), and the
 * checks that ran.
 */
import type { Change } from '../platforms/types.ts';
import type { Finding } from './checks/types.ts';
import type { Context } from './context.ts';
import { InterruptedError, type SignalName } from './interrupt.ts';
import { jsonChanges, type JsonReport } from './report.ts';

/** The steps of setup and undo, in order (doctor only detects). */
export type Phase = 'detect' | 'plan' | 'confirm' | 'apply' | 'wait' | 'rollback' | 'verify' | 'pull';

const DOING: Record<Phase, string> = {
  detect: 'while looking at Ollama and containers',
  plan: 'while planning',
  confirm: 'before applying',
  apply: 'while applying',
  wait: 'while waiting for Ollama to answer after the restart',
  rollback: 'while rolling back',
  verify: 'while running the checks',
  pull: "while getting Stigmer's model",
};

export class Progress {
  phase: Phase = 'detect';
  /** The report so far: planned changes, summary, warnings, and the checks once they ran. */
  report: JsonReport;
  private changes: Change[] = [];
  /** The apply's own flags (ApplyOutcome.applied), which a later rollback updates in place. */
  private applied: boolean[] = [];
  private applyStarted = false;
  /** Why the apply or the run failed before the signal, when it did. */
  failure?: string;
  /** The pull under way (phase 'pull'): the command that resumes it. */
  pulling?: { model: string; resume: string; started: boolean; done?: boolean };

  constructor(
    private readonly ctx: Context,
    report: JsonReport,
  ) {
    this.report = report;
  }

  /**
   * Go on to the next step, unless a signal arrived: then the run stops here, with
   * InterruptedError, and run() reports what is in place. Called between steps, never inside the
   * apply (which holds signals off until it is done).
   */
  at(phase: Phase): void {
    this.stopIfInterrupted();
    this.phase = phase;
  }

  /** The same check within a step: before acting on what a signal may have cut short. */
  stopIfInterrupted(): void {
    const interrupt = this.ctx.terminal.interrupt;
    if (interrupt.aborted) throw new InterruptedError(interrupt.reason as SignalName);
  }

  /** The plan is known: these changes, none of them applied yet. */
  planned(report: JsonReport, changes: Change[]): void {
    this.report = report;
    this.changes = changes;
    this.applied = changes.map(() => false);
  }

  /** The apply ran; `applied` is its outcome's array, kept by reference so a rollback shows. */
  appliedFlags(applied: boolean[], failure?: string): void {
    this.applyStarted = true;
    this.applied = applied;
    this.failure = failure;
  }

  checks(findings: Finding[]): void {
    this.report = { ...this.report, checks: findings };
  }

  /** The report as things stand: every planned change with its applied flag as it is now. */
  json(): JsonReport {
    return { ...this.report, changes: jsonChanges(this.changes, this.applied) };
  }

  /**
   * One line saying what is in place after `signal` stopped the run: nothing changed, the change
   * applied (and the commands that check and revert it), rolled back, or partly applied.
   */
  interruptedMessage(signal: SignalName, commands: { undo: string; doctor: string }): string {
    const undoCommand = commands.undo;
    const stopped = `Stopped by ${signal} ${DOING[this.phase]}`;
    const command = this.report.command;
    if (command === 'doctor' || this.report.dryRun) return `${stopped}; nothing was changed.`;
    if (this.phase === 'pull' && this.pulling) {
      // The pull starts only after the checks ran: the network part is done, and stays.
      // The pull runs whether or not the checks passed: "verified" only when none failed.
      const failed = this.report.checks.filter((finding) => finding.status === 'fail').map((finding) => finding.id);
      const changed = this.applyStarted && this.applied.some(Boolean);
      const network = failed.length > 0
        ? changed
          ? `The network change is in place, but its checks failed (${failed.join(', ')}); nothing else is undone (see the checks with: ${commands.doctor}; undo it with: ${undoCommand}).`
          : `The network setup was not changed, and its checks failed (${failed.join(', ')}); see them with: ${commands.doctor}.`
        : changed
          ? `The network change is in place and verified; nothing else is undone (check it with: ${commands.doctor}; undo it with: ${undoCommand}).`
          : 'The network setup was already in place and is verified; nothing else was changed.';
      if (this.pulling.done) return `${stopped}, after Ollama said it pulled ${this.pulling.model}; the final check of it did not run (run it with: ${commands.doctor}). ${network}`;
      if (!this.pulling.started) return `${stopped}, before pulling ${this.pulling.model}. ${network} To pull it: ${this.pulling.resume}`;
      return `${stopped}: the pull of ${this.pulling.model} was stopped. Ollama keeps what it downloaded, and the same command resumes it (until Ollama restarts): ${this.pulling.resume}. ${network}`;
    }
    const inPlace = this.applied.filter(Boolean).length;
    const failure = this.failure ? ` ${this.failure.replace(/\.?$/, '.')}` : '';
    const unverified = this.phase === 'wait' || this.phase === 'verify' || this.phase === 'apply' ? ', but it was not verified' : '';
    if (command === 'undo') {
      // Before the record is read there is no plan yet: what is in place is whatever setup left.
      if (this.changes.length === 0) return `${stopped}; nothing was restored: whatever setup changed is still in place. Undo it with: ${undoCommand}`;
      if (!this.applyStarted) return `${stopped}; nothing was restored: setup's change is still in place. Undo it with: ${undoCommand}`;
      if (inPlace === 0) return `${stopped}; nothing was restored:${failure} Setup's change is still in place; undo it with: ${undoCommand}`;
      if (inPlace === this.changes.length) {
        return `${stopped}: the restore is applied, so the configuration from before setup is back${unverified}. Check it with: ${commands.doctor}`;
      }
      return `${stopped}: the restore is only partly applied (${this.describeApplied()}).${failure} Run ${undoCommand} again.`;
    }
    if (!this.applyStarted || this.changes.length === 0) return `${stopped}; nothing was changed.`;
    if (inPlace === 0) return `${stopped}; nothing is changed:${failure || ' the change was rolled back.'}`;
    if (inPlace === this.changes.length) {
      // A plan that only restarts Ollama leaves nothing for undo to restore.
      const undo = this.changes.some((change) => change.type !== 'restart') ? ` Undo it with: ${undoCommand}` : '';
      return `${stopped}: the change is applied and stays in place${unverified}. Check it with: ${commands.doctor}.${undo}`;
    }
    return `${stopped}: the change is only partly applied (${this.describeApplied()}).${failure} Undo it with: ${undoCommand}`;
  }

  private describeApplied(): string {
    const names = this.changes.map((change) => (change.type === 'file' ? change.path : change.type === 'setting' ? `${change.store} ${change.key}` : `the restart of ${change.strategy}`));
    const done = names.filter((_, index) => this.applied[index]);
    const notDone = names.filter((_, index) => !this.applied[index]);
    return `in place: ${done.join(', ')}; not in place: ${notDone.join(', ')}`;
  }
}
