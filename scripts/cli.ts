/**
 * stigmer-setup: make a local Ollama reachable from Stigmer's agent-runner (with the least exposure
 * that works: nothing for a native or host-network runner, the bridge-only relay on Linux), then
 * pull Stigmer's model.
 *
 * One readable flow per command:
 *   setup   1. validate input  2. detect  3. plan  4. confirm  5. apply  6. verify  7. pull the model
 *           (5 to 7 locked; 7 also runs when nothing needed changing)
 *   doctor  detect, then the checks, read-only
 *   undo    read and validate the undo record, then (locked) restore, restart, verify
 * Every side effect goes through the Context handed to run(); everything that differs between
 * operating systems comes from the platform registry. A Progress notes what is in place as the run
 * goes, and each step begins with `progress.at(step)`: that is where a signal (SIGINT, SIGTERM)
 * stops the run, which then says what is in place and prints its one JSON object.
 */
import packageJson from '../package.json' with { type: 'json' };
import { loadPlatform } from '../platforms/index.ts';
import type { Change, Locations, Plan, PlanRequest, PlatformSupport } from '../platforms/types.ts';
import { applySetup, applyUndo, keepEdits, planUndo, recordBlockers, type Applier, type RecordState } from './apply.ts';
import { HELP, parseCli, UsageError, type CliOptions } from './args.ts';
import { anyFailed, runChecks } from './checks/index.ts';
import type { Finding } from './checks/types.ts';
import { CancelledError, describeKind, UnsafePathError, type Context, type PathInfo, type Platform } from './context.ts';
import { ContainerNotFoundError, gatherFacts, hostProbeAddress, probeHost, type Facts } from './facts.ts';
import { InterruptedError, SIGNAL_EXIT, type SignalName } from './interrupt.ts';
import { acquireLock, LockedError } from './lock.ts';
import { modelStep } from './model-step.ts';
import { DEFAULT_PORT, formatBindAddress } from './ollama-host.ts';
import { decidePlan } from './plan.ts';
import { Progress } from './progress.ts';
import { jsonChanges, renderChanges, renderFindings, renderPlan, type JsonReport } from './report.ts';
import { SystemFiles } from './system-files.ts';
import { oneLine } from './text.ts';
import { allowedFor, readRecord, UndoRecordError } from './undo-record.ts';

/** Exit codes; a signal ends the run with 128 + its number (SIGNAL_EXIT: 130 for SIGINT, 143 for SIGTERM). */
export const EXIT = { ok: 0, failed: 1, usage: 2, cancelled: 130 } as const;
const NEEDS_YES = 'Run with --yes to apply unattended, or --dry-run to preview.';
/** How long to wait for Ollama to come back after a restart before verifying anyway. */
const RESTART_WAIT_MS = 30_000;

class Output {
  constructor(
    private ctx: Context,
    private json: boolean,
  ) {}
  print(text: string): void {
    if (!this.json) this.ctx.terminal.print(text);
  }
  /** Text rendered with our own colour, its system-supplied parts already stripped. */
  printStyled(text: string): void {
    if (!this.json) this.ctx.terminal.printStyled(text);
  }
  spinner(text: string) {
    return this.ctx.terminal.spinner(text, { silent: this.json });
  }
}

/**
 * Bad usage: one line on stderr, nothing looked at or changed. Asked for --json, stdout still gets
 * its one object (a script piping it to a JSON parser gets an answer, not an empty stream), built
 * from what the arguments say so far: before they parse, only whether --json and a command appear.
 */
function usageError(ctx: Context, message: string, argv: readonly string[], options?: CliOptions): number {
  ctx.terminal.printError(`stigmer-setup: ${message}`);
  if (options ? options.json : argv.includes('--json')) {
    const command = options?.command ?? (['doctor', 'undo'] as const).find((name) => argv.includes(name)) ?? 'setup';
    const report: JsonReport = { ok: false, command, platform: options?.platform ?? ctx.platform, strategy: 'none', dryRun: options?.dryRun ?? argv.includes('--dry-run'), changes: [], checks: [], warnings: [], error: message };
    ctx.terminal.printJson(report);
  }
  return EXIT.usage;
}

function describeDetection(facts: Facts): string {
  const lines = [`Ollama: ${facts.detection?.description ?? 'unknown'}`];
  for (const other of facts.installations) if (other.detection !== facts.detection) lines.push(`Also installed: ${other.detection.description}`);
  if (facts.host) lines.push(`Host: ${facts.host}`);
  if (facts.wsl) lines.push('Environment: WSL');
  const docker = facts.docker;
  lines.push(
    docker.state === 'ok'
      ? `Containers: ${docker.operatingSystem} (Docker ${docker.serverVersion}); ${facts.container ? `${facts.containerName} on network "${facts.container.networkMode}"` : `no ${facts.containerName} container`}`
      : docker.state === 'missing'
        ? 'Containers: no container runtime found'
        : `Containers: Docker does not answer (${docker.detail})`,
  );
  return lines.join('\n');
}

/** One of our own commands to paste, for the platform's shell, with `--root` when one was given. */
function ownCommand(support: PlatformSupport, options: CliOptions, command: 'undo' | 'doctor'): string {
  return `npx stigmer-setup ${command}${options.root === '/' ? '' : ` --root ${support.quote(options.root)}`}`;
}

/**
 * Ollama binds a moment after a restart returns: wait (bounded) until it answers where it was
 * configured to listen before verifying. The restart stops the old process first, so any answer
 * now comes from the new one. A signal ends the wait: the caller's next step reports it.
 */
async function waitForOllama(ctx: Context, address: string, port: number): Promise<boolean> {
  const deadline = ctx.clock.now().getTime() + RESTART_WAIT_MS;
  for (let attempt = 0; attempt < 120 && ctx.clock.now().getTime() < deadline && !ctx.terminal.interrupt.aborted; attempt++) {
    if ((await probeHost(ctx, address, port)).ok) return true;
    await ctx.clock.sleep(500);
  }
  return false;
}

interface Outcome {
  exitCode: number;
  report: JsonReport;
}

function baseReport(options: CliOptions, platform: Platform, strategy: string): JsonReport {
  return { ok: false, command: options.command, platform, strategy, dryRun: options.dryRun, changes: [], checks: [], warnings: [] };
}

function finish(ctx: Context, options: CliOptions, outcome: Outcome): number {
  if (options.json) ctx.terminal.printJson(outcome.report);
  return outcome.exitCode;
}

/** A signal stopped the run: say what is in place, on stderr and in the one JSON object. */
function interrupted(ctx: Context, options: CliOptions, support: PlatformSupport, progress: Progress, signal: SignalName): number {
  const message = progress.interruptedMessage(signal, { undo: ownCommand(support, options, 'undo'), doctor: ownCommand(support, options, 'doctor') });
  ctx.terminal.printError(message);
  if (options.json) ctx.terminal.printJson({ ...progress.json(), ok: false, error: message, signal });
  return SIGNAL_EXIT[signal];
}

async function confirmOrCancel(ctx: Context, options: CliOptions, question: string): Promise<boolean> {
  if (options.yes) return true;
  return ctx.terminal.confirm(question, true);
}

async function doctor(ctx: Context, options: CliOptions, support: PlatformSupport, out: Output, progress: Progress): Promise<Outcome> {
  const spinner = out.spinner('Checking Ollama and containers…');
  const facts = await gatherFacts(ctx, { support, root: options.root, container: options.container, port: options.host?.port });
  spinner.stop();
  progress.stopIfInterrupted();
  // Only the findings: every one of them names what it looked at, so a healthy machine shows
  // nothing but ✓ lines (setup, which is about to change things, prints what it detected first).
  const findings = checkAndPrint(ctx, facts, out, { leadingBlank: false });
  const report = baseReport(options, support.id, facts.detection?.strategy ?? 'none');
  return { exitCode: anyFailed(findings) ? EXIT.failed : EXIT.ok, report: { ...report, ok: !anyFailed(findings), checks: findings } };
}

async function verify(ctx: Context, options: CliOptions, support: PlatformSupport, out: Output, progress: Progress, port: number | undefined): Promise<Finding[]> {
  return (await verifyWithFacts(ctx, options, support, out, progress, port)).findings;
}

/** verify, keeping the facts it gathered: the model step after it needs where Ollama answered. */
async function verifyWithFacts(ctx: Context, options: CliOptions, support: PlatformSupport, out: Output, progress: Progress, port: number | undefined): Promise<{ findings: Finding[]; facts: Facts }> {
  progress.at('verify');
  const spinner = out.spinner('Verifying…');
  const facts = await gatherFacts(ctx, { support, root: options.root, container: options.container, port });
  spinner.stop();
  // Facts gathered while a signal stopped their commands would be wrong: report the signal instead.
  progress.stopIfInterrupted();
  const findings = checkAndPrint(ctx, facts, out);
  progress.checks(findings);
  return { findings, facts };
}

/** The check catalogue on these facts, printed brew-doctor style. */
function checkAndPrint(ctx: Context, facts: Facts, out: Output, options = { leadingBlank: true }): Finding[] {
  const findings = runChecks(facts);
  if (options.leadingBlank) out.print('');
  out.printStyled(renderFindings(findings, ctx.terminal.color));
  return findings;
}

const SUDO_DECLINED = 'sudo did not authenticate; nothing was changed.';

/**
 * Elevation is per change: sudo is asked for only when a change needs it. Interactive sudo asks
 * for a password on the terminal; ask once, before any spinner runs (a spinner redrawing over a
 * password prompt garbles both), so the steps that follow reuse the cached credentials and a wrong
 * password stops us before anything changed.
 */
async function authenticate(ctx: Context, changes: Change[], elevate: string[], out: Output, progress: Progress): Promise<boolean> {
  if (elevate[0] !== 'sudo' || elevate.includes('-n') || !changes.some((change) => change.privileged)) return true;
  out.print('Some steps need root: sudo may ask for your password.');
  const result = await ctx.exec('sudo', ['-v'], { inheritTerminal: true });
  // Ctrl-C at the password prompt reaches sudo and us: that is a signal, not a wrong password.
  progress.stopIfInterrupted();
  if (result.exitCode === 0) return true;
  ctx.terminal.printError(`stigmer-setup: ${SUDO_DECLINED}`);
  return false;
}

function locationsFor(ctx: Context, options: CliOptions, support: PlatformSupport): Locations {
  return { root: options.root, home: support.home(ctx.env), env: ctx.env };
}

function applierFor(ctx: Context, options: CliOptions, support: PlatformSupport, elevate: string[]): Applier {
  return { ctx, support, files: new SystemFiles(ctx, elevate, support.path), stateDir: support.stateDir(locationsFor(ctx, options, support)) };
}

/**
 * Run `work` holding the lock; a second run waits briefly, then stops. The release runs whatever
 * happened, a signal included (held off like a change: after a signal nothing else may start).
 */
async function locked<T>(applier: Applier, work: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(applier.ctx, applier.files, applier.support.path, applier.stateDir);
  try {
    return await work();
  } finally {
    // A lock that can't be removed must not turn the run's own result into a failure: it names a
    // pid that is gone once we exit, so the next run takes it over as stale.
    await applier.ctx.terminal.uninterruptible(() => lock.release()).catch((error: unknown) => {
      applier.ctx.terminal.printError(`stigmer-setup: the lock in ${applier.stateDir} could not be removed (${oneLine((error as Error).message ?? String(error))}); the next run takes it over, since this one has ended.`);
    });
  }
}

async function setup(ctx: Context, options: CliOptions, support: PlatformSupport, out: Output, progress: Progress): Promise<Outcome> {
  // 2. Detect
  progress.at('detect');
  const spinner = out.spinner('Looking at Ollama and containers…');
  const facts = await gatherFacts(ctx, { support, root: options.root, container: options.container, port: options.host?.port });
  spinner.stop();
  progress.at('plan');
  const report = baseReport(options, support.id, facts.detection?.strategy ?? 'none');
  progress.report = report;
  out.print(describeDetection(facts));
  // Detection always names an installation, "none found" included.
  if (!facts.strategy) throw new Error(`no installation was detected on ${support.id}`);

  // 3. Plan
  const elevate = support.elevation(ctx, options.yes);
  const request: PlanRequest = { target: options.host ?? { host: '0.0.0.0', port: facts.port }, explicitHost: options.host !== undefined, elevate, relay: options.relay };
  const decided: Plan = decidePlan(facts, request);
  const applier = applierFor(ctx, options, support, elevate);
  const state: RecordState = (await readRecord(ctx, allowedFor(support, locationsFor(ctx, options, support)), applier.stateDir)) ?? {};
  // Edits made by hand to a file setup wrote before are kept, not overwritten.
  const kept = keepEdits(applier, decided.changes, state.record, ctx.clock.now());
  // A previous value the undo record can't carry stops setup here, before anything changes.
  const plan: Plan = { ...decided, changes: kept.changes, warnings: [...decided.warnings, ...kept.warnings], blockers: [...decided.blockers, ...recordBlockers(decided.changes, state.record)] };
  out.print('');
  out.print(renderPlan(plan, options.dryRun));
  const planned = { ...report, strategy: plan.strategy, summary: plan.summary, warnings: plan.warnings, changes: jsonChanges(plan.changes, []) };
  progress.planned(planned, plan.changes);
  if (plan.blockers.length > 0) {
    const findings = checkAndPrint(ctx, facts, out);
    return { exitCode: EXIT.failed, report: { ...planned, checks: findings, error: plan.blockers.map((b) => `${b.message} Fix: ${b.fix}`).join(' ') } };
  }
  if (plan.changes.length === 0) {
    const findings = checkAndPrint(ctx, facts, out);
    progress.checks(findings);
    // 7. Stigmer's model: nothing needed changing, and the checks ran.
    return modelStep(step7(ctx, options, support, out, progress), facts, findings, { exitCode: anyFailed(findings) ? EXIT.failed : EXIT.ok, report: { ...planned, ok: !anyFailed(findings), checks: findings } });
  }
  if (options.dryRun) {
    out.print('\nDry run: nothing was changed.');
    return modelStep(step7(ctx, options, support, out, progress), facts, undefined, { exitCode: EXIT.ok, report: { ...planned, ok: true } });
  }

  // 4. Confirm
  progress.at('confirm');
  if (!(await confirmOrCancel(ctx, options, 'Apply these changes?'))) throw new CancelledError();

  // 5. Apply, one run at a time
  if (!(await authenticate(ctx, plan.changes, elevate, out, progress))) return { exitCode: EXIT.failed, report: { ...planned, error: SUDO_DECLINED } };
  const target = plan.target ?? request.target;
  const address = hostProbeAddress(target.host);
  // The strategy whose restart the plan runs (the relay's, when the plan is the relay) names the logs.
  const strategy = support.strategies.find((candidate) => candidate.id === plan.strategy) ?? facts.strategy;
  // The lock covers the verification too: another run that changes Ollama between our apply and
  // our checks would make this run report on that run's change instead of its own.
  return locked(applier, async (): Promise<Outcome> => {
    progress.at('apply');
    const applying = out.spinner('Applying…');
    const outcome = await ctx.terminal.uninterruptible(() => applySetup(applier, plan, state));
    progress.appliedFlags(outcome.applied, outcome.error);
    if (!outcome.ok) {
      applying.fail(outcome.error);
      progress.stopIfInterrupted();
      return { exitCode: EXIT.failed, report: { ...planned, changes: jsonChanges(plan.changes, outcome.applied), error: outcome.error } };
    }
    applying.succeed(`Applied. Undo with: ${ownCommand(support, options, 'undo')}`);
    // 6. Verify: it answered before and not after? Then the change broke Ollama: don't leave it that way.
    progress.at('wait');
    const answers = !plan.changes.some((change) => change.type === 'restart') || (await waitForOllama(ctx, address, target.port));
    progress.stopIfInterrupted(); // a wait a signal cut short says nothing about Ollama: never roll back for it
    if (!answers && facts.hostProbe.ok && outcome.rollback) {
      const rollback = outcome.rollback;
      progress.at('rollback');
      const problems = await ctx.terminal.uninterruptible(() => rollback());
      const error = `Ollama did not answer on ${formatBindAddress({ host: address, port: target.port })} within ${RESTART_WAIT_MS / 1000} s after the change, so it was rolled back${problems.length ? `, but rolling back failed: ${problems.join('; ')}` : ''}. See: ${strategy.commands(facts.detection as NonNullable<Facts['detection']>, target.port).logs}`;
      progress.failure = error;
      out.print(error);
      const findings = await verify(ctx, options, support, out, progress, facts.port);
      return { exitCode: EXIT.failed, report: { ...planned, changes: jsonChanges(plan.changes, outcome.applied), checks: findings, error } };
    }
    const verified = await verifyWithFacts(ctx, options, support, out, progress, target.port);
    const findings = verified.findings;
    // 7. Stigmer's model, once the change is in place and verified.
    return modelStep(step7(ctx, options, support, out, progress), verified.facts, findings, {
      exitCode: anyFailed(findings) ? EXIT.failed : EXIT.ok,
      report: { ...planned, ok: !anyFailed(findings), changes: jsonChanges(plan.changes, outcome.applied), checks: findings },
    });
  });
}

/** What the model step (model-step.ts) needs from the run. */
function step7(ctx: Context, options: CliOptions, support: PlatformSupport, out: Output, progress: Progress) {
  return { ctx, options, support, progress, print: (text: string) => out.print(text), printStyled: (text: string) => out.printStyled(text), resume: pullCommand(support, options) };
}

/** This run again with --pull: the command that pulls (and resumes a stopped pull), with the options that pick Ollama and the runner. */
function pullCommand(support: PlatformSupport, options: CliOptions): string {
  const words = ['npx stigmer-setup --yes --pull'];
  if (options.host) words.push(`--host ${support.quote(formatBindAddress(options.host))}`);
  if (options.container) words.push(`--container ${support.quote(options.container)}`);
  if (options.root !== '/') words.push(`--root ${support.quote(options.root)}`);
  return words.join(' ');
}

async function undo(ctx: Context, options: CliOptions, support: PlatformSupport, out: Output, progress: Progress): Promise<Outcome> {
  progress.at('plan');
  const elevate = support.elevation(ctx, options.yes);
  const applier = applierFor(ctx, options, support, elevate);
  const state = await readRecord(ctx, allowedFor(support, locationsFor(ctx, options, support)), applier.stateDir);
  const report = baseReport(options, support.id, state?.record.restart[0]?.strategy ?? 'none');
  progress.report = report;
  if (!state) {
    out.print(`Nothing to undo: there is no record of changes by stigmer-setup in ${applier.stateDir}.`);
    return { exitCode: EXIT.ok, report: { ...report, ok: true, summary: 'nothing to undo' } };
  }
  const { record } = state;
  const { changes, warnings } = await planUndo(applier, record, ctx.clock.now());
  progress.stopIfInterrupted();
  const restored = [...record.files.map((file) => file.path), ...record.settings.map((setting) => `${setting.store} ${setting.key}`)];
  // No restart when Ollama was uninstalled since setup (planUndo says so in its warnings). A
  // restart that never touches Ollama (the relay's) says what it does instead.
  const restartStrategies = [...new Set(changes.flatMap((change) => (change.type === 'restart' ? [support.strategies.find((strategy) => strategy.id === change.strategy)] : [])))];
  const restartsOllama = restartStrategies.some((strategy) => strategy?.restartWithoutOllama === undefined);
  const restartPhrases = [...new Set(restartStrategies.map((strategy) => strategy?.restartWithoutOllama ?? 'restart Ollama'))];
  const summary = `Restore ${restored.join(', ') || 'the previous settings'} as they were before setup${restartPhrases.length ? `, then ${restartPhrases.join(' and ')}` : ''}.`;
  out.print(`Plan (undo): ${summary}`);
  out.print(renderChanges(changes, options.dryRun).replace(/^/gm, '  '));
  for (const warning of warnings) out.print(`! ${warning}`);
  const planned: JsonReport = { ...report, summary, warnings, changes: jsonChanges(changes, []) };
  progress.planned(planned, changes);
  if (options.dryRun) {
    out.print('\nDry run: nothing was changed.');
    return { exitCode: EXIT.ok, report: { ...planned, ok: true } };
  }
  // Undo's restart reloads the service manager too: refuse, changing nothing, when that would
  // also load someone else's pending edit (issue 12 §11).
  for (const id of new Set(changes.flatMap((change) => (change.type === 'restart' ? [change.strategy] : [])))) {
    const blocker = await support.strategies.find((strategy) => strategy.id === id)?.restartBlocker?.(ctx, { ...locationsFor(ctx, options, support), port: record.port ?? DEFAULT_PORT, path: support.path });
    if (!blocker) continue;
    const error = `${blocker.message} Nothing was changed. Fix: ${blocker.fix.replace('run setup again', 'run undo again')}`;
    out.print(`✖ ${error}`);
    return { exitCode: EXIT.failed, report: { ...planned, error } };
  }
  progress.at('confirm');
  if (!(await confirmOrCancel(ctx, options, `Restore these files${restartPhrases.length ? ` and ${restartPhrases.join(' and ')}` : ''}?`))) throw new CancelledError();
  if (!(await authenticate(ctx, changes, elevate, out, progress))) return { exitCode: EXIT.failed, report: { ...planned, error: SUDO_DECLINED } };

  // As in setup, the lock covers the verification, so the report is about this run's restore.
  return locked(applier, async (): Promise<Outcome> => {
    progress.at('apply');
    const restoring = out.spinner('Restoring…');
    const outcome = await ctx.terminal.uninterruptible(() => applyUndo(applier, changes, state));
    progress.appliedFlags(outcome.applied, outcome.error);
    if (!outcome.ok) {
      restoring.fail(outcome.error);
      progress.stopIfInterrupted();
      return { exitCode: EXIT.failed, report: { ...planned, changes: jsonChanges(changes, outcome.applied), error: outcome.error } };
    }
    restoring.succeed('Restored.');
    for (const warning of outcome.warnings ?? []) out.print(`! ${warning}`);
    progress.at('wait');
    if (restartsOllama) await waitForOllama(ctx, '127.0.0.1', record.port ?? DEFAULT_PORT);
    const findings = await verify(ctx, options, support, out, progress, undefined);
    // Undo succeeded once the files are back; containers failing to reach Ollama is how it was before.
    out.print('Undo restored the configuration from before setup; containers may no longer reach Ollama, as before.');
    return { exitCode: EXIT.ok, report: { ...planned, ok: true, warnings: [...planned.warnings, ...(outcome.warnings ?? [])], changes: jsonChanges(changes, outcome.applied), checks: findings } };
  });
}

/**
 * `--root` names the folder that stands for "/": a folder, or a symlink to one (resolved here, so
 * every path the run writes and records is the folder's real path). Anything else is refused with
 * what it is. Returns the error message, or the resolved root.
 */
async function resolveRoot(ctx: Context, root: string): Promise<{ root: string } | { error: string }> {
  let seen: PathInfo | undefined;
  try {
    seen = await ctx.fs.inspect(root);
  } catch (error) {
    // EACCES on a folder above it (another user's home, as a normal user): bad input, one line.
    return { error: `--root ${root} can't be looked at: ${oneLine((error as Error).message)}.` };
  }
  if (!seen) return { error: `--root ${root} does not exist.` };
  if (seen.kind === 'directory') return { root };
  if (seen.kind !== 'symlink') return { error: `--root ${root} is ${describeKind(seen.kind)}, not a folder.` };
  const target = await ctx.fs.readLink(root);
  const link = `--root ${root} is a symlink${target === undefined ? '' : ` to ${target}`}`;
  let pointsAt: PathInfo | undefined;
  try {
    pointsAt = await ctx.fs.inspect(root, { follow: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { error: code === 'ELOOP' ? `${link}, which leads back to itself (a symlink loop).` : `${link}, which can't be followed: ${oneLine((error as Error).message)}.` };
  }
  if (!pointsAt) return { error: `${link}, which does not exist (a dangling symlink).` };
  if (pointsAt.kind !== 'directory') return { error: `${link}, which is ${describeKind(pointsAt.kind)}, not a folder.` };
  const real = await ctx.fs.realPath(root);
  return real ? { root: real } : { error: `${link}, which can't be resolved.` };
}

export async function run(argv: string[], ctx: Context): Promise<number> {
  // 1. Validate input: nothing has been looked at or changed yet.
  let options: CliOptions;
  try {
    options = parseCli(argv);
  } catch (error) {
    if (error instanceof UsageError) return usageError(ctx, `${error.message}. See --help.`, argv);
    throw error;
  }
  if (options.help) {
    ctx.terminal.print(HELP);
    return EXIT.ok;
  }
  if (options.version) {
    ctx.terminal.print(packageJson.version);
    return EXIT.ok;
  }
  if (options.root !== '/') {
    const root = await resolveRoot(ctx, options.root);
    if ('error' in root) return usageError(ctx, root.error, argv, options);
    options = { ...options, root: root.root };
  }
  // --relay asks for the relay instead of a wider bind, --host for a bind: they can't both be had.
  if (options.relay && options.host) return usageError(ctx, '--relay and --host ask for two different things (a relay to a loopback-only Ollama, or Ollama bound to an address); use one. See --help.', argv, options);
  if (options.relay && options.command !== 'setup') return usageError(ctx, `--relay is an option of setup, not of ${options.command}. See --help.`, argv, options);
  const mutates = options.command !== 'doctor' && !options.dryRun;
  // Prompting needs a terminal on both ends, and --json output must not be mixed with a prompt.
  if (mutates && !options.yes && (!ctx.isTTY || options.json)) return usageError(ctx, NEEDS_YES, argv, options);

  const support = await loadPlatform(options.platform ?? ctx.platform);
  const progress = new Progress(ctx, baseReport(options, support.id, 'none'));
  const refusal = await support.preflight?.(ctx);
  if (refusal && !ctx.terminal.interrupt.aborted) return usageError(ctx, refusal, argv, options);
  const out = new Output(ctx, options.json);
  try {
    const command = { setup, doctor, undo }[options.command];
    return finish(ctx, options, await command(ctx, options, support, out, progress));
  } catch (error) {
    // Whatever failed after a signal failed because of it (a command it stopped, one it refused
    // to start): report the signal and what is in place.
    const signal = error instanceof InterruptedError ? error.signal : (ctx.terminal.interrupt.reason as SignalName | undefined);
    if (signal) {
      if (options.debug && !(error instanceof InterruptedError) && error instanceof Error && error.stack) ctx.terminal.printError(error.stack);
      return interrupted(ctx, options, support, progress, signal);
    }
    if (error instanceof CancelledError) {
      ctx.terminal.printError('Cancelled; nothing was changed.');
      if (options.json) ctx.terminal.printJson({ ...progress.json(), error: 'cancelled' });
      return EXIT.cancelled;
    }
    if (error instanceof ContainerNotFoundError) return usageError(ctx, error.message, argv, options);
    // Expected refusals (an untrusted record, an unsafe path, another run) are one line; anything
    // else too, because a stack trace helps nobody who runs an installer.
    const known = error instanceof UndoRecordError || error instanceof UnsafePathError || error instanceof LockedError;
    const message = known ? (error as Error).message : oneLine((error as Error).message ?? String(error), 600);
    ctx.terminal.printError(`stigmer-setup: ${message}`);
    if (options.debug && !known && error instanceof Error && error.stack) ctx.terminal.printError(error.stack);
    // The planned changes with their applied flags as they are: an error after the apply leaves it in place.
    if (options.json) ctx.terminal.printJson({ ...progress.json(), ok: false, error: message });
    return EXIT.failed;
  }
}
