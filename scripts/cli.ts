/**
 * stigmer-setup: make a local Ollama reachable from Stigmer's agent-runner container.
 *
 * One readable flow per command:
 *   setup   1. validate input  2. detect  3. plan  4. confirm  5. apply  6. verify (5 and 6 locked)
 *   doctor  detect, then the checks, read-only
 *   undo    read and validate the undo record, then (locked) restore, restart, verify
 * Every side effect goes through the Context handed to run(); everything that differs between
 * operating systems comes from the platform registry.
 */
import packageJson from '../package.json' with { type: 'json' };
import { loadPlatform } from '../platforms/index.ts';
import type { Change, Locations, Plan, PlanRequest, PlatformSupport } from '../platforms/types.ts';
import { applySetup, applyUndo, keepEdits, planUndo, type Applier, type RecordState } from './apply.ts';
import { HELP, parseCli, UsageError, type CliOptions } from './args.ts';
import { anyFailed, runChecks } from './checks/index.ts';
import type { Finding } from './checks/types.ts';
import { CancelledError, UnsafePathError, type Context, type Platform } from './context.ts';
import { ContainerNotFoundError, gatherFacts, hostProbeAddress, probeHost, type Facts } from './facts.ts';
import { acquireLock, LockedError } from './lock.ts';
import { DEFAULT_PORT, formatBindAddress } from './ollama-host.ts';
import { decidePlan } from './plan.ts';
import { jsonChanges, renderChanges, renderFindings, renderPlan, type JsonReport } from './report.ts';
import { SystemFiles } from './system-files.ts';
import { oneLine } from './text.ts';
import { allowedFor, readRecord, UndoRecordError } from './undo-record.ts';

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

function usageError(ctx: Context, message: string): number {
  ctx.terminal.printError(`stigmer-setup: ${message}`);
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

/**
 * Ollama binds a moment after a restart returns: wait (bounded) until it answers where it was
 * configured to listen before verifying. The restart stops the old process first, so any answer
 * now comes from the new one.
 */
async function waitForOllama(ctx: Context, address: string, port: number): Promise<boolean> {
  const deadline = ctx.clock.now().getTime() + RESTART_WAIT_MS;
  for (let attempt = 0; attempt < 120 && ctx.clock.now().getTime() < deadline; attempt++) {
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

async function confirmOrCancel(ctx: Context, options: CliOptions, question: string): Promise<boolean> {
  if (options.yes) return true;
  return ctx.terminal.confirm(question, true);
}

async function doctor(ctx: Context, options: CliOptions, support: PlatformSupport, out: Output): Promise<Outcome> {
  const spinner = out.spinner('Checking Ollama and containers…');
  const facts = await gatherFacts(ctx, { support, root: options.root, container: options.container, port: options.host?.port });
  spinner.stop();
  // Only the findings: every one of them names what it looked at, so a healthy machine shows
  // nothing but ✓ lines (setup, which is about to change things, prints what it detected first).
  const findings = checkAndPrint(ctx, facts, out, { leadingBlank: false });
  const report = baseReport(options, support.id, facts.detection?.strategy ?? 'none');
  return { exitCode: anyFailed(findings) ? EXIT.failed : EXIT.ok, report: { ...report, ok: !anyFailed(findings), checks: findings } };
}

async function verify(ctx: Context, options: CliOptions, support: PlatformSupport, out: Output, port: number | undefined): Promise<Finding[]> {
  const spinner = out.spinner('Verifying…');
  const facts = await gatherFacts(ctx, { support, root: options.root, container: options.container, port });
  spinner.stop();
  return checkAndPrint(ctx, facts, out);
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
async function authenticate(ctx: Context, changes: Change[], elevate: string[], out: Output): Promise<boolean> {
  if (elevate[0] !== 'sudo' || elevate.includes('-n') || !changes.some((change) => change.privileged)) return true;
  out.print('Some steps need root: sudo may ask for your password.');
  const result = await ctx.exec('sudo', ['-v'], { inheritTerminal: true });
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

/** Run `work` holding the lock; a second run waits briefly, then stops. */
async function locked<T>(applier: Applier, work: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(applier.ctx, applier.files, applier.support.path, applier.stateDir);
  try {
    return await work();
  } finally {
    await lock.release();
  }
}

async function setup(ctx: Context, options: CliOptions, support: PlatformSupport, out: Output): Promise<Outcome> {
  // 2. Detect
  const spinner = out.spinner('Looking at Ollama and containers…');
  const facts = await gatherFacts(ctx, { support, root: options.root, container: options.container, port: options.host?.port });
  spinner.stop();
  const report = baseReport(options, support.id, facts.detection?.strategy ?? 'none');
  out.print(describeDetection(facts));
  // Detection always names an installation, "none found" included.
  if (!facts.strategy) throw new Error(`no installation was detected on ${support.id}`);

  // 3. Plan
  const elevate = support.elevation(ctx, options.yes);
  const request: PlanRequest = { target: options.host ?? { host: '0.0.0.0', port: facts.port }, explicitHost: options.host !== undefined, elevate };
  const decided: Plan = decidePlan(facts, request);
  const applier = applierFor(ctx, options, support, elevate);
  const state: RecordState = (await readRecord(ctx, allowedFor(support, locationsFor(ctx, options, support)), applier.stateDir)) ?? {};
  // Edits made by hand to a file setup wrote before are kept, not overwritten.
  const kept = keepEdits(applier, decided.changes, state.record, ctx.clock.now());
  const plan: Plan = { ...decided, changes: kept.changes, warnings: [...decided.warnings, ...kept.warnings] };
  out.print('');
  out.print(renderPlan(plan, options.dryRun));
  const planned = { ...report, strategy: plan.strategy, summary: plan.summary, warnings: plan.warnings, changes: jsonChanges(plan.changes, []) };
  if (plan.blockers.length > 0) {
    const findings = checkAndPrint(ctx, facts, out);
    return { exitCode: EXIT.failed, report: { ...planned, checks: findings, error: plan.blockers.map((b) => `${b.message} Fix: ${b.fix}`).join(' ') } };
  }
  if (plan.changes.length === 0) {
    const findings = checkAndPrint(ctx, facts, out);
    return { exitCode: anyFailed(findings) ? EXIT.failed : EXIT.ok, report: { ...planned, ok: !anyFailed(findings), checks: findings } };
  }
  if (options.dryRun) {
    out.print('\nDry run: nothing was changed.');
    return { exitCode: EXIT.ok, report: { ...planned, ok: true } };
  }

  // 4. Confirm
  if (!(await confirmOrCancel(ctx, options, 'Apply these changes?'))) throw new CancelledError();

  // 5. Apply, one run at a time
  if (!(await authenticate(ctx, plan.changes, elevate, out))) return { exitCode: EXIT.failed, report: { ...planned, error: SUDO_DECLINED } };
  const target = plan.target ?? request.target;
  const address = hostProbeAddress(target.host);
  const strategy = facts.strategy;
  // The lock covers the verification too: another run that changes Ollama between our apply and
  // our checks would make this run report on that run's change instead of its own.
  return locked(applier, async (): Promise<Outcome> => {
    const applying = out.spinner('Applying…');
    const outcome = await ctx.terminal.uninterruptible(() => applySetup(applier, plan, state));
    if (!outcome.ok) {
      applying.fail(outcome.error);
      return { exitCode: EXIT.failed, report: { ...planned, changes: jsonChanges(plan.changes, outcome.applied), error: outcome.error } };
    }
    applying.succeed(`Applied. Undo with: npx stigmer-setup undo${options.root === '/' ? '' : ` --root ${options.root}`}`);
    // 6. Verify: it answered before and not after? Then the change broke Ollama: don't leave it that way.
    const answers = !plan.changes.some((change) => change.type === 'restart') || (await waitForOllama(ctx, address, target.port));
    if (!answers && facts.hostProbe.ok && outcome.rollback) {
      const rollback = outcome.rollback;
      const problems = await ctx.terminal.uninterruptible(() => rollback());
      const error = `Ollama did not answer on ${formatBindAddress({ host: address, port: target.port })} within ${RESTART_WAIT_MS / 1000} s after the change, so it was rolled back${problems.length ? `, but rolling back failed: ${problems.join('; ')}` : ''}. See: ${strategy.commands(facts.detection as NonNullable<Facts['detection']>, target.port).logs}`;
      out.print(error);
      const findings = await verify(ctx, options, support, out, facts.port);
      return { exitCode: EXIT.failed, report: { ...planned, changes: jsonChanges(plan.changes, outcome.applied), checks: findings, error } };
    }
    const findings = await verify(ctx, options, support, out, target.port);
    return {
      exitCode: anyFailed(findings) ? EXIT.failed : EXIT.ok,
      report: { ...planned, ok: !anyFailed(findings), changes: jsonChanges(plan.changes, outcome.applied), checks: findings },
    };
  });
}

async function undo(ctx: Context, options: CliOptions, support: PlatformSupport, out: Output): Promise<Outcome> {
  const elevate = support.elevation(ctx, options.yes);
  const applier = applierFor(ctx, options, support, elevate);
  const state = await readRecord(ctx, allowedFor(support, locationsFor(ctx, options, support)), applier.stateDir);
  const report = baseReport(options, support.id, state?.record.restart[0]?.strategy ?? 'none');
  if (!state) {
    out.print(`Nothing to undo: there is no record of changes by stigmer-setup in ${applier.stateDir}.`);
    return { exitCode: EXIT.ok, report: { ...report, ok: true, summary: 'nothing to undo' } };
  }
  const { record } = state;
  const { changes, warnings } = await planUndo(applier, record, ctx.clock.now());
  const restored = [...record.files.map((file) => file.path), ...record.settings.map((setting) => `${setting.store} ${setting.key}`)];
  const summary = `Restore ${restored.join(', ') || 'the previous settings'} as they were before setup, then restart Ollama.`;
  out.print(`Plan (undo): ${summary}`);
  out.print(renderChanges(changes, options.dryRun).replace(/^/gm, '  '));
  for (const warning of warnings) out.print(`! ${warning}`);
  const planned: JsonReport = { ...report, summary, warnings, changes: jsonChanges(changes, []) };
  if (options.dryRun) {
    out.print('\nDry run: nothing was changed.');
    return { exitCode: EXIT.ok, report: { ...planned, ok: true } };
  }
  if (!(await confirmOrCancel(ctx, options, 'Restore these files and restart Ollama?'))) throw new CancelledError();
  if (!(await authenticate(ctx, changes, elevate, out))) return { exitCode: EXIT.failed, report: { ...planned, error: SUDO_DECLINED } };

  // As in setup, the lock covers the verification, so the report is about this run's restore.
  return locked(applier, async (): Promise<Outcome> => {
    const restoring = out.spinner('Restoring…');
    const outcome = await ctx.terminal.uninterruptible(() => applyUndo(applier, changes, state));
    if (!outcome.ok) {
      restoring.fail(outcome.error);
      return { exitCode: EXIT.failed, report: { ...planned, changes: jsonChanges(changes, outcome.applied), error: outcome.error } };
    }
    restoring.succeed('Restored.');
    if (changes.some((change) => change.type === 'restart')) await waitForOllama(ctx, '127.0.0.1', record.port ?? DEFAULT_PORT);
    const findings = await verify(ctx, options, support, out, undefined);
    // Undo succeeded once the files are back; containers failing to reach Ollama is how it was before.
    out.print('Undo restored the configuration from before setup; containers may no longer reach Ollama, as before.');
    return { exitCode: EXIT.ok, report: { ...planned, ok: true, changes: jsonChanges(changes, outcome.applied), checks: findings } };
  });
}

export async function run(argv: string[], ctx: Context): Promise<number> {
  // 1. Validate input: nothing has been looked at or changed yet.
  let options: CliOptions;
  try {
    options = parseCli(argv);
  } catch (error) {
    if (error instanceof UsageError) return usageError(ctx, `${error.message}. See --help.`);
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
  if (options.root !== '/' && (await ctx.fs.inspect(options.root))?.kind !== 'directory') {
    return usageError(ctx, `--root ${options.root} does not exist or is not a folder.`);
  }
  const mutates = options.command !== 'doctor' && !options.dryRun;
  // Prompting needs a terminal on both ends, and --json output must not be mixed with a prompt.
  if (mutates && !options.yes && (!ctx.isTTY || options.json)) return usageError(ctx, NEEDS_YES);

  const support = await loadPlatform(options.platform ?? ctx.platform);
  const refusal = await support.preflight?.(ctx);
  if (refusal) return usageError(ctx, refusal);
  const out = new Output(ctx, options.json);
  try {
    const command = { setup, doctor, undo }[options.command];
    return finish(ctx, options, await command(ctx, options, support, out));
  } catch (error) {
    if (error instanceof CancelledError) {
      ctx.terminal.printError('Cancelled; nothing was changed.');
      if (options.json) ctx.terminal.printJson({ ...baseReport(options, support.id, 'none'), error: 'cancelled' });
      return EXIT.cancelled;
    }
    if (error instanceof ContainerNotFoundError) return usageError(ctx, error.message);
    // Expected refusals (an untrusted record, an unsafe path, another run) are one line; anything
    // else too, because a stack trace helps nobody who runs an installer.
    const known = error instanceof UndoRecordError || error instanceof UnsafePathError || error instanceof LockedError;
    const message = known ? (error as Error).message : oneLine((error as Error).message ?? String(error), 600);
    ctx.terminal.printError(`stigmer-setup: ${message}`);
    if (options.debug && !known && error instanceof Error && error.stack) ctx.terminal.printError(error.stack);
    if (options.json) ctx.terminal.printJson({ ...baseReport(options, support.id, 'none'), error: message });
    return EXIT.failed;
  }
}
