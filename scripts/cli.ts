/**
 * stigmer-setup: make a local Ollama reachable from Stigmer's agent-runner container.
 *
 * One readable flow per command:
 *   setup   1. validate input  2. detect  3. plan  4. confirm  5. apply  6. verify
 *   doctor  detect, then the checks, read-only
 *   undo    read the undo record, restore, restart, verify
 * Every side effect goes through the Context handed to run().
 */
import packageJson from '../package.json' with { type: 'json' };
import type { Plan, PlanRequest } from '../platforms/types.ts';
import { clearUndoRecord, executeChanges, planUndo, readManifest, stateDirFor } from './apply.ts';
import { HELP, parseCli, UsageError, type CliOptions } from './args.ts';
import { anyFailed, runChecks } from './checks/index.ts';
import type { Finding } from './checks/types.ts';
import { CancelledError, type Context, type Platform } from './context.ts';
import { ContainerNotFoundError, gatherFacts, probeHost, type Facts } from './facts.ts';
import { DEFAULT_PORT } from './ollama-host.ts';
import { decidePlan } from './plan.ts';
import { jsonChanges, renderChanges, renderFindings, renderPlan, type JsonReport } from './report.ts';

export const EXIT = { ok: 0, failed: 1, usage: 2, cancelled: 130 } as const;
const NEEDS_YES = 'Run with --yes to apply unattended, or --dry-run to preview.';
/** How long to wait for Ollama to come back after a restart before verifying anyway. */
const RESTART_WAIT_MS = 30_000;

class Output {
  constructor(private ctx: Context, private json: boolean) {}
  print(text: string): void {
    if (!this.json) this.ctx.terminal.print(text);
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
 * Ollama binds a moment after `systemctl restart` returns: wait (bounded) until it answers before
 * verifying. restart is synchronous about stopping the old process, so any answer now comes from
 * the new one, with the new bind.
 */
async function waitForOllama(ctx: Context, port: number): Promise<boolean> {
  const deadline = ctx.clock.now().getTime() + RESTART_WAIT_MS;
  for (let attempt = 0; attempt < 120 && ctx.clock.now().getTime() < deadline; attempt++) {
    if ((await probeHost(ctx, port)).ok) return true;
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

async function doctor(ctx: Context, options: CliOptions, platform: Platform, out: Output): Promise<Outcome> {
  const spinner = out.spinner('Checking Ollama and containers…');
  const facts = await gatherFacts(ctx, { platform, root: options.root, container: options.container, port: options.host?.port });
  spinner.stop();
  out.print(describeDetection(facts));
  const findings = checkAndPrint(facts, out);
  const report = baseReport(options, platform, facts.detection?.strategy ?? 'none');
  return { exitCode: anyFailed(findings) ? EXIT.failed : EXIT.ok, report: { ...report, ok: !anyFailed(findings), checks: findings } };
}

async function verify(ctx: Context, options: CliOptions, platform: Platform, out: Output, port: number | undefined): Promise<Finding[]> {
  const spinner = out.spinner('Verifying…');
  const facts = await gatherFacts(ctx, { platform, root: options.root, container: options.container, port });
  spinner.stop();
  return checkAndPrint(facts, out);
}

/** The check catalogue on these facts, printed brew-doctor style. */
function checkAndPrint(facts: Facts, out: Output): Finding[] {
  const findings = runChecks(facts);
  out.print('');
  out.print(renderFindings(findings));
  return findings;
}

const SUDO_DECLINED = 'sudo did not authenticate; nothing was changed.';

/**
 * Interactive sudo asks for a password on the terminal. Ask once, before any spinner runs (a
 * spinner redrawing over a password prompt garbles both), so the steps that follow reuse the
 * cached credentials and a wrong password stops us before anything changed.
 */
async function authenticateSudo(ctx: Context, sudo: string[], out: Output): Promise<boolean> {
  if (sudo.length === 0 || sudo.includes('-n')) return true;
  out.print('Some steps need root: sudo may ask for your password.');
  const result = await ctx.exec('sudo', ['-v'], { inheritTerminal: true });
  if (result.exitCode === 0) return true;
  ctx.terminal.printError(`stigmer-setup: ${SUDO_DECLINED}`);
  return false;
}

function sudoPrefix(ctx: Context, options: CliOptions): string[] {
  if (ctx.isRoot) return [];
  // Under --yes nothing may prompt, sudo included: -n fails fast instead of waiting for a password.
  return options.yes ? ['sudo', '-n'] : ['sudo'];
}

async function setup(ctx: Context, options: CliOptions, platform: Platform, out: Output): Promise<Outcome> {
  // 2. Detect
  const spinner = out.spinner('Looking at Ollama and containers…');
  const facts = await gatherFacts(ctx, { platform, root: options.root, container: options.container, port: options.host?.port });
  spinner.stop();
  const report = baseReport(options, platform, facts.detection?.strategy ?? 'none');
  out.print(describeDetection(facts));
  if (!facts.strategy) {
    const message = `stigmer-setup can't configure ${platform} yet; \`stigmer-setup doctor\` checks it read-only.`;
    out.print(message);
    return { exitCode: EXIT.failed, report: { ...report, error: message, checks: runChecks(facts) } };
  }

  // 3. Plan
  const sudo = sudoPrefix(ctx, options);
  const request: PlanRequest = {
    target: options.host ?? { host: '0.0.0.0', port: facts.port },
    explicitHost: options.host !== undefined,
    sudo,
  };
  const plan: Plan = decidePlan(facts, request);
  out.print('');
  out.print(renderPlan(plan, options.dryRun));
  const planned = { ...report, strategy: plan.strategy, summary: plan.summary, warnings: plan.warnings, changes: jsonChanges(plan.changes, []) };
  if (plan.blockers.length > 0) {
    const findings = checkAndPrint(facts, out);
    return { exitCode: EXIT.failed, report: { ...planned, checks: findings, error: plan.blockers.map((b) => `${b.message} Fix: ${b.fix}`).join(' ') } };
  }
  if (plan.changes.length === 0) {
    const findings = checkAndPrint(facts, out);
    return { exitCode: anyFailed(findings) ? EXIT.failed : EXIT.ok, report: { ...planned, ok: !anyFailed(findings), checks: findings } };
  }
  if (options.dryRun) {
    out.print('\nDry run: nothing was changed.');
    return { exitCode: EXIT.ok, report: { ...planned, ok: true } };
  }

  // 4. Confirm
  if (!(await confirmOrCancel(ctx, options, 'Apply these changes?'))) throw new CancelledError();

  // 5. Apply
  if (!(await authenticateSudo(ctx, sudo, out))) {
    return { exitCode: EXIT.failed, report: { ...planned, error: SUDO_DECLINED } };
  }
  const applying = out.spinner('Applying…');
  const strategy = facts.strategy;
  const outcome = await ctx.terminal.uninterruptible(() => strategy.apply(ctx, plan, { stateDir: stateDirFor(options.root), sudo }));
  if (!outcome.ok) {
    applying.fail(outcome.error);
    return { exitCode: EXIT.failed, report: { ...planned, changes: jsonChanges(plan.changes, outcome.applied), error: outcome.error } };
  }
  applying.succeed(`Applied. Undo with: npx stigmer-setup undo${options.root === '/' ? '' : ` --root ${options.root}`}`);

  // 6. Verify
  const target = plan.target ?? request.target;
  const answers = await waitForOllama(ctx, target.port);
  if (!answers && facts.hostProbe.ok && outcome.rollback) {
    // It answered before and not after: the change broke Ollama. Don't leave it that way.
    const rollback = outcome.rollback;
    const problems = await ctx.terminal.uninterruptible(() => rollback());
    const error = `Ollama did not answer on 127.0.0.1:${target.port} within ${RESTART_WAIT_MS / 1000} s after the change, so it was rolled back${problems.length ? `, but rolling back failed: ${problems.join('; ')}` : ''}. See: journalctl -u ollama -n 50`;
    out.print(error);
    const findings = await verify(ctx, options, platform, out, facts.port);
    return { exitCode: EXIT.failed, report: { ...planned, changes: jsonChanges(plan.changes, plan.changes.map(() => false)), checks: findings, error } };
  }
  const findings = await verify(ctx, options, platform, out, target.port);
  return {
    exitCode: anyFailed(findings) ? EXIT.failed : EXIT.ok,
    report: { ...planned, ok: !anyFailed(findings), changes: jsonChanges(plan.changes, outcome.applied), checks: findings },
  };
}

async function undo(ctx: Context, options: CliOptions, platform: Platform, out: Output): Promise<Outcome> {
  const stateDir = stateDirFor(options.root);
  const manifest = await readManifest(ctx, stateDir);
  const report = baseReport(options, platform, manifest?.strategy ?? 'none');
  if (!manifest) {
    out.print(`Nothing to undo: there is no record of changes by stigmer-setup in ${stateDir}.`);
    return { exitCode: EXIT.ok, report: { ...report, ok: true, summary: 'nothing to undo' } };
  }
  const sudo = sudoPrefix(ctx, options);
  const { changes, warnings } = await planUndo(ctx, manifest, stateDir, sudo);
  const summary = `Restore ${manifest.files.map((file) => file.path).join(', ') || 'the previous settings'} as they were before setup, then restart Ollama.`;
  out.print(`Plan (undo ${manifest.strategy}): ${summary}`);
  out.print(renderChanges(changes, options.dryRun).replace(/^/gm, '  '));
  for (const warning of warnings) out.print(`! ${warning}`);
  const planned: JsonReport = { ...report, summary, warnings, changes: jsonChanges(changes, []) };
  if (options.dryRun) {
    out.print('\nDry run: nothing was changed.');
    return { exitCode: EXIT.ok, report: { ...planned, ok: true } };
  }
  if (!(await confirmOrCancel(ctx, options, 'Restore these files and restart Ollama?'))) throw new CancelledError();

  if (!(await authenticateSudo(ctx, sudo, out))) {
    return { exitCode: EXIT.failed, report: { ...planned, error: SUDO_DECLINED } };
  }
  const restoring = out.spinner('Restoring…');
  const restart = manifest.restart.map((argv) => [...sudo, ...argv]);
  const outcome = await ctx.terminal.uninterruptible(() => executeChanges(ctx, changes, { sudo, restart }));
  if (!outcome.ok) {
    restoring.fail(outcome.error);
    return { exitCode: EXIT.failed, report: { ...planned, changes: jsonChanges(changes, outcome.applied), error: outcome.error } };
  }
  await clearUndoRecord(ctx, stateDir, sudo);
  restoring.succeed('Restored.');
  if (manifest.restart.length > 0) await waitForOllama(ctx, manifest.port ?? DEFAULT_PORT);
  const findings = await verify(ctx, options, platform, out, undefined);
  // Undo succeeded once the files are back; containers failing to reach Ollama is how it was before.
  out.print('Undo restored the configuration from before setup; containers may no longer reach Ollama, as before.');
  return { exitCode: EXIT.ok, report: { ...planned, ok: true, changes: jsonChanges(changes, outcome.applied), checks: findings } };
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
  if (options.root !== '/' && !(await ctx.fs.exists(options.root))) {
    return usageError(ctx, `--root ${options.root} does not exist.`);
  }
  const mutates = options.command !== 'doctor' && !options.dryRun;
  // Prompting needs a terminal on both ends, and --json output must not be mixed with a prompt.
  if (mutates && !options.yes && (!ctx.isTTY || options.json)) return usageError(ctx, NEEDS_YES);

  const platform = options.platform ?? ctx.platform;
  const out = new Output(ctx, options.json);
  try {
    const command = { setup, doctor, undo }[options.command];
    return finish(ctx, options, await command(ctx, options, platform, out));
  } catch (error) {
    if (error instanceof CancelledError) {
      ctx.terminal.printError('Cancelled; nothing was changed.');
      if (options.json) ctx.terminal.printJson({ ...baseReport(options, platform, 'none'), error: 'cancelled' });
      return EXIT.cancelled;
    }
    if (error instanceof ContainerNotFoundError) return usageError(ctx, error.message);
    const message = (error as Error).message;
    ctx.terminal.printError(`stigmer-setup: ${message}`);
    if (options.json) ctx.terminal.printJson({ ...baseReport(options, platform, 'none'), error: message });
    return EXIT.failed;
  }
}

