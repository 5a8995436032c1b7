/**
 * Setup's last step (issue 13): Stigmer's model. After verification, whether or not setup
 * changed anything, when the model `ollama.model` resolves is missing and Ollama answers:
 *   - interactive: ask, then pull;
 *   - --pull: pull without asking (onboarding scripts);
 *   - --yes alone, --json, no terminal: never start a multi-GB download; print the exact command
 *     and say that --pull does it;
 *   - a dry run says it would pull. doctor never gets here.
 * The pull goes through Ollama's API (pull.ts), its progress to stderr (pull-progress.ts). Then
 * `ollama.model` runs again on a fresh answer from Ollama, so the report ends with ✓ and
 * "Stigmer is ready". Ctrl-C ends the request; cli.ts's interrupted() says what is in place.
 */
import type { PlatformSupport } from '../platforms/types.ts';
import type { CliOptions } from './args.ts';
import { anyFailed, runChecks, summarize } from './checks/index.ts';
import { shellWord } from './checks/fixes.ts';
import { modelSource } from './checks/model.ts';
import type { Finding } from './checks/types.ts';
import { CancelledError, type Context, type Spinner } from './context.ts';
import { probeHost, type Facts } from './facts.ts';
import { modelNameProblem } from './model-name.ts';
import type { Progress } from './progress.ts';
import { describePullFailure, pullModel } from './pull.ts';
import { humanBytes, PullProgressView, type ProgressSink } from './pull-progress.ts';
import { renderFindings, type JsonModel, type JsonReport } from './report.ts';
import { cleanField, hasControl, oneLine } from './text.ts';

export interface ModelStepRun {
  ctx: Context;
  options: CliOptions;
  support: PlatformSupport;
  progress: Progress;
  /** Human output on stdout (silent with --json). */
  print(text: string): void;
  printStyled(text: string): void;
  /** The command that pulls, and resumes a stopped pull. */
  resume: string;
}

interface Outcome {
  exitCode: number;
  report: JsonReport;
}

const EXIT_FAILED = 1;

/** Ollama lists "name:latest" for a model pulled as "name". */
function isPresent(models: readonly string[], wanted: string): boolean {
  return models.includes(wanted) || (!wanted.includes(':') && models.includes(`${wanted}:latest`));
}

/** The last line of a setup that ends with Stigmer ready; warnings (exposure, versions) are named, not hidden. */
function readyLine(findings: Finding[], model: string): string {
  const warnings = findings.filter((finding) => finding.status === 'warn').length;
  return `Stigmer is ready: no check failed${warnings ? ` (${warnings} warning${warnings === 1 ? '' : 's'} above)` : ''}, and its model ${model} is pulled.`;
}

/** Where the name came from, with config.yaml's line: the unknown-model message points there. */
function sourceOf(facts: Facts): string {
  const line = !facts.container && facts.stigmer.model.from === 'config.yaml' && facts.stigmer.model.line ? ` line ${facts.stigmer.model.line}` : '';
  return `${modelSource(facts)}${line}`;
}

/** The host probe's URL as an address and port for probeHost (IPv6 without its brackets). */
function probeTarget(url: string): { address: string; port: number } | undefined {
  try {
    const parsed = new URL(url);
    return { address: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(parsed.port || 80) };
  } catch {
    return undefined;
  }
}

/**
 * Run the model step after `outcome` (what setup concluded so far) and return the outcome with
 * the model's part added. `findings` are the checks just run (undefined in a dry run, which ran none).
 */
export async function modelStep(run: ModelStepRun, facts: Facts, findings: Finding[] | undefined, outcome: Outcome): Promise<Outcome> {
  const { ctx, options, progress } = run;
  const wanted = facts.expectedModel;
  // Not Stigmer's Ollama, Ollama not answering, or a name the ollama.model finding already rejects.
  if (options.command !== 'setup' || !wanted || modelNameProblem(wanted)) return outcome;
  if (!facts.hostProbe.ok) {
    // --pull asked for a download that can't start: say so, rather than leave it unmentioned.
    if (options.pull && !options.dryRun) ctx.terminal.printError(`Stigmer's model ${wanted} was not pulled: Ollama does not answer at ${oneLine(cleanField(facts.hostProbe.url), 200)}. Once it does (see the checks above), run: ${run.resume}`);
    return outcome;
  }
  const hostProbe = facts.hostProbe;
  const source = sourceOf(facts);
  const model: JsonModel = { name: wanted, source, present: isPresent(hostProbe.models, wanted), pulled: false, bytes: 0 };
  const withModel = (extra: Partial<JsonModel>, rest: Partial<Outcome['report']> = {}, exitCode = outcome.exitCode): Outcome => ({
    exitCode,
    report: { ...outcome.report, ...rest, model: { ...model, ...extra } },
  });
  if (model.present) {
    if (findings && !anyFailed(findings)) run.print(`\n${readyLine(findings, wanted)}`);
    return withModel({});
  }
  const command = `ollama pull ${shellWord(facts, wanted)}`;
  if (options.dryRun) {
    const how = options.pull ? 'would pull it' : options.yes || options.json || !ctx.isTTY ? `would print the command to pull it (${command}); with --pull it would pull it` : 'would ask, then pull it';
    run.print(`Dry run: Stigmer's model ${wanted} (from ${source}) is not pulled; setup ${how} through Ollama's API at ${hostProbe.url}.`);
    return withModel({ error: 'not pulled: dry run' });
  }

  progress.at('pull');
  progress.pulling = { model: wanted, resume: run.resume, started: false };
  progress.report = { ...progress.report, model };
  if (!options.pull) {
    // --yes never starts a multi-GB download on its own, and --json never prompts.
    if (options.yes || options.json || !ctx.isTTY) {
      run.print(`\nStigmer's model ${wanted} is not pulled yet. Pull it with: ${command}\nor run with --pull, which pulls it here with progress: ${run.resume}`);
      return withModel({ error: 'not pulled: run with --pull to pull it' });
    }
    let yes: boolean;
    try {
      yes = await ctx.terminal.confirm(`Pull ${wanted} now?`, true);
    } catch (error) {
      // Esc or Ctrl-C typed at the question declines it; a signal (InterruptedError) stops the run.
      if (!(error instanceof CancelledError)) throw error;
      yes = false;
    }
    progress.stopIfInterrupted();
    if (!yes) {
      run.print(`Not pulled. To pull it later: ${command}\nor: ${run.resume}`);
      return withModel({ error: 'not pulled: declined' });
    }
  }

  progress.pulling.started = true;
  ctx.terminal.printError(`Pulling ${wanted} (from ${source}) through Ollama at ${hostProbe.url}…`);
  let spinner: Spinner | undefined;
  const live = ctx.terminal.canRedraw;
  const sink: ProgressSink = {
    redraw: (text) => ctx.terminal.redraw(text),
    endRedraw: () => ctx.terminal.endRedraw(),
    line: (text) => ctx.terminal.printError(text),
    spinner: (text) => {
      spinner?.stop();
      spinner = text === undefined ? undefined : ctx.terminal.spinner(text, { silent: false });
    },
  };
  const view = new PullProgressView(sink, { live, now: () => ctx.clock.now().getTime(), model: wanted });
  const result = await pullModel(ctx, { baseUrl: hostProbe.url, model: wanted, onEvent: (event) => view.update(event) });
  spinner?.stop();
  view.finish({ ok: result.ok, bytes: result.bytes });
  // Ctrl-C: cli.ts reports it (the resume message, the network change in place, exit 130, one JSON
  // object). Once Ollama said success the model is pulled: a signal from here on says that, not "stopped".
  progress.pulling.done = result.ok;
  progress.report = { ...progress.report, model: { ...model, bytes: result.bytes, pulled: result.ok, present: model.present || result.ok } };
  progress.stopIfInterrupted();

  if (!result.ok) {
    const commands = facts.strategy && facts.detection ? facts.strategy.commands(facts.detection, facts.port) : undefined;
    // OLLAMA_MODELS from the installation's configuration beats the installation's default.
    const configured = facts.detection?.modelsDir;
    const modelsDir = configured !== undefined && configured !== '' && !hasControl(configured) ? configured.slice(0, 1000) : commands?.modelsDir;
    const text = describePullFailure(result, { model: wanted, source, proxyCommand: commands?.proxy, modelsDir, modelsDirConfigured: modelsDir === configured, retry: run.resume, humanBytes });
    ctx.terminal.printError(`✖ ${text.message}\n  Fix: ${text.fix}`);
    const error = `${text.message} Fix: ${text.fix}`;
    return withModel({ bytes: result.bytes, error }, { ok: false, error }, EXIT_FAILED);
  }

  // ollama.model again, on what Ollama lists now: the report ends on its own ✓, not on our word.
  const target = probeTarget(hostProbe.url);
  const probe = target ? await probeHost(ctx, target.address, target.port) : hostProbe;
  progress.stopIfInterrupted();
  const after = runChecks({ ...facts, hostProbe: probe });
  const modelFinding = after.find((finding) => finding.id === 'ollama.model');
  const checks = findings ? after : outcome.report.checks;
  if (modelFinding) {
    const lines = renderFindings([modelFinding], ctx.terminal.color).split('\n').slice(0, -1);
    run.printStyled(['', ...lines, findings ? summarize(after) : ''].filter((line, index) => index === 0 || line !== '').join('\n'));
  }
  const present = probe.ok && isPresent(probe.models, wanted);
  const failed = anyFailed(checks);
  if (present && !failed) run.print(readyLine(checks, wanted));
  const pulled = { present, pulled: true, bytes: result.bytes, ...(present ? {} : { error: `Ollama said success, but does not list ${wanted}` }) };
  return withModel(pulled, { checks, ok: !failed && present }, failed || !present ? EXIT_FAILED : outcome.exitCode);
}
