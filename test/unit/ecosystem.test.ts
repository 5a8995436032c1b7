/**
 * The files around the CLI that users and CI run without reading the code: the GitHub Actions
 * workflow, the fleet examples (Ansible, Jamf, Intune) and the changelog. They must call the CLI
 * with flags it accepts, and the workflow's smoke steps must really reject a bad exit code or
 * stdout that is not JSON: those step scripts are run here against a stand-in npx.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseCli, UsageError } from '../../scripts/args.ts';
import { TROUBLESHOOTING_URL } from '../../scripts/checks/index.ts';
import { because, needs } from './support/portability.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string) => readFileSync(path.join(REPO, file), 'utf8');
const packageJson = JSON.parse(read('package.json')) as { version: string };

// ---------------------------------------------------------------------------------------------
// The workflow

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  if?: string | boolean;
  shell?: string;
  with?: Record<string, unknown>;
}
interface Job {
  'runs-on'?: string;
  if?: string;
  defaults?: { run?: { shell?: string } };
  strategy?: { 'fail-fast'?: boolean; matrix?: { os?: string[]; node?: (string | number)[]; include?: unknown; exclude?: unknown } };
  steps?: Step[];
}
interface Workflow {
  defaults?: { run?: { shell?: string } };
  jobs: Record<string, Job>;
}

const workflow = parse(read('.github/workflows/ci.yml')) as Workflow;
const jobs = Object.values(workflow.jobs ?? {});
const allSteps = jobs.flatMap((job) => job.steps ?? []);
const matrixJob = jobs.find((job) => job.strategy?.matrix?.os !== undefined);

/** The shell commands of a run script: one per line, comments and blank lines dropped. */
function commandLines(run: string | undefined): string[] {
  return (run ?? '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

function stepRunning(predicate: (line: string) => boolean): Step[] {
  return (matrixJob?.steps ?? []).filter((step) => commandLines(step.run).some(predicate));
}

function onlyStep(predicate: (line: string) => boolean, what: string): Step {
  const steps = stepRunning(predicate);
  expect(steps, `exactly one step runs ${what}`).toHaveLength(1);
  return steps[0] as Step;
}

const PACKED_DOCTOR = /^npx (--yes|-y) \.\/stigmer-setup-\*\.tgz doctor --json\b/;
const PACKED_DRY_RUN = /^npx (--yes|-y) \.\/stigmer-setup-\*\.tgz --dry-run --json\b/;

/**
 * Evaluates a step's `if:` for one runner: only the comparisons of runner.os and matrix.node
 * joined by && and || that this workflow uses; anything else throws, so a new kind of condition
 * gets a look here instead of a guess.
 */
function runsOn(step: Step, runnerOs: string, node: string): boolean {
  if (step.if === undefined) return true;
  let expression = String(step.if).trim();
  const wrapped = /^\$\{\{([\s\S]*)\}\}$/.exec(expression);
  if (wrapped) expression = wrapped[1] as string;
  const js = expression
    .replace(/\brunner\.os\b/g, JSON.stringify(runnerOs))
    .replace(/\bmatrix\.node\b/g, JSON.stringify(node))
    .replace(/==/g, '===')
    .replace(/!=/g, '!==');
  if (!/^(\s|'[A-Za-z0-9]*'|"[A-Za-z0-9]*"|===|!==|&&|\|\||\(|\))*$/.test(js)) {
    throw new Error(`unsupported if: ${String(step.if)}`);
  }
  return Boolean(new Function(`return (${js});`)());
}

const RUNNERS = [
  { os: 'ubuntu-latest', runnerOs: 'Linux' },
  { os: 'macos-latest', runnerOs: 'macOS' },
  { os: 'windows-latest', runnerOs: 'Windows' },
];

/** Where a step runs, as "Linux/20" entries over the whole matrix. */
function combinations(step: Step): string[] {
  const nodes = (matrixJob?.strategy?.matrix?.node ?? []).map(String);
  return RUNNERS.flatMap(({ runnerOs }) => nodes.filter((node) => runsOn(step, runnerOs, node)).map((node) => `${runnerOs}/${node}`));
}

describe('.github/workflows/ci.yml', () => {
  it('runs every OS on Node 20 and 22, without stopping the others on a failure', () => {
    expect(matrixJob).toBeDefined();
    const matrix = matrixJob?.strategy?.matrix;
    expect([...(matrix?.os ?? [])].sort()).toEqual(['macos-latest', 'ubuntu-latest', 'windows-latest']);
    expect((matrix?.node ?? []).map(String).sort()).toEqual(['20', '22']);
    // include/exclude would change the combinations above behind this test's back.
    expect(matrix?.include).toBeUndefined();
    expect(matrix?.exclude).toBeUndefined();
    expect(matrixJob?.strategy?.['fail-fast']).toBe(false);
    expect(matrixJob?.['runs-on']).toMatch(/^\$\{\{\s*matrix\.os\s*\}\}$/);
    expect(matrixJob?.if).toBeUndefined();
  });

  it('uses only actions/checkout and actions/setup-node', () => {
    const uses = allSteps.flatMap((step) => (step.uses === undefined ? [] : [step.uses]));
    expect(uses.length).toBeGreaterThan(0);
    for (const action of uses) expect(action).toMatch(/^actions\/(checkout|setup-node)@v4$/);
    expect(uses.some((action) => action.startsWith('actions/checkout@'))).toBe(true);
    const setupNode = matrixJob?.steps?.find((step) => step.uses?.startsWith('actions/setup-node@'));
    expect(setupNode?.with?.['node-version']).toMatch(/^\$\{\{\s*matrix\.node\s*\}\}$/);
    expect(setupNode?.with?.cache).toBe('npm');
  });

  it('installs, typechecks, builds and unit-tests in that order, on every runner', () => {
    const steps = matrixJob?.steps ?? [];
    const index = (line: string) => steps.indexOf(onlyStep((command) => command === line, line));
    const order = ['npm ci', 'npm run typecheck', 'npm run build', 'npx vitest run --project unit'].map(index);
    expect(order.every((position) => position >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    const checkout = steps.findIndex((step) => step.uses?.startsWith('actions/checkout@'));
    const setupNode = steps.findIndex((step) => step.uses?.startsWith('actions/setup-node@'));
    expect(checkout).toBeGreaterThanOrEqual(0);
    expect(setupNode).toBeGreaterThan(checkout);
    expect(order[0]).toBeGreaterThan(setupNode);
    for (const position of order) expect(combinations(steps[position] as Step)).toHaveLength(6);
  });

  it('runs every script with bash, so one script serves Linux, macOS and Windows', () => {
    const scripted = allSteps.filter((step) => step.run !== undefined);
    expect(scripted.length).toBeGreaterThan(0);
    for (const step of scripted) {
      const job = jobs.find((candidate) => candidate.steps?.includes(step));
      expect(step.shell ?? job?.defaults?.run?.shell ?? workflow.defaults?.run?.shell, step.name ?? step.run).toBe('bash');
    }
  });

  it('smoke-tests doctor --json from the packed tarball on every runner', () => {
    const step = onlyStep((line) => PACKED_DOCTOR.test(line), 'the packed doctor --json');
    expect(combinations(step)).toHaveLength(6);
    const lines = commandLines(step.run);
    const pack = lines.findIndex((line) => /^npm pack\b/.test(line));
    expect(pack).toBeGreaterThanOrEqual(0);
    expect(pack).toBeLessThan(lines.findIndex((line) => PACKED_DOCTOR.test(line)));
  });

  it('dry-runs setup on the real macOS and Windows only', () => {
    const step = onlyStep((line) => PACKED_DRY_RUN.test(line), 'the packed --dry-run --json');
    expect(combinations(step)).toEqual(['macOS/20', 'macOS/22', 'Windows/20', 'Windows/22']);
    // It runs the tarball the earlier smoke step packed.
    const steps = matrixJob?.steps ?? [];
    const packing = onlyStep((line) => PACKED_DOCTOR.test(line), 'the packed doctor --json');
    expect(steps.indexOf(step)).toBeGreaterThan(steps.indexOf(packing));
  });

  it('runs .ci/run as root with CI=true on Linux with Node 22 only', () => {
    const step = onlyStep((line) => /\bbash \.ci\/run$/.test(line), '.ci/run');
    expect(combinations(step)).toEqual(['Linux/22']);
    const line = commandLines(step.run).find((command) => /\bbash \.ci\/run$/.test(command)) ?? '';
    expect(line).toMatch(/^sudo\b/);
    expect(line).toMatch(/\bCI=true\b/);
  });

  it('evaluates the conditions the way GitHub does (a check on the helper above)', () => {
    expect(runsOn({ if: "runner.os != 'Linux'" }, 'Linux', '20')).toBe(false);
    expect(runsOn({ if: "${{ runner.os == 'Linux' && matrix.node == '22' }}" }, 'Linux', '22')).toBe(true);
    expect(runsOn({ if: "runner.os == 'Linux' && matrix.node == '22'" }, 'Linux', '20')).toBe(false);
    expect(() => runsOn({ if: "github.event_name == 'push'" }, 'Linux', '20')).toThrow(/unsupported/);
  });
});

// The smoke steps' scripts, run for real with bash against a stand-in npm and npx that answer
// with a chosen exit code and stdout. GitHub runs `shell: bash` as bash --noprofile --norc -eo
// pipefail. Bash on a Windows development machine may be WSL's, so these run elsewhere only.
const scratch = mkdtempSync(path.join(os.tmpdir(), 'stigmer-ecosystem-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface StepRun {
  status: number | null;
  output: string;
  npxArgs: string[];
}

function runStepScript(step: Step, answer: { status: number; stdout: string }): StepRun {
  const dir = mkdtempSync(path.join(scratch, 'run-'));
  const bin = path.join(dir, 'bin');
  const cwd = path.join(dir, 'work');
  for (const folder of [bin, cwd]) mkdirSync(folder, { recursive: true });
  writeFileSync(path.join(dir, 'stdout'), answer.stdout);
  writeFileSync(path.join(dir, 'status'), String(answer.status));
  writeFileSync(path.join(cwd, `stigmer-setup-${packageJson.version}.tgz`), 'not a real tarball');
  const fake = (name: string, body: string) => {
    writeFileSync(path.join(bin, name), `#!/bin/bash\n${body}\n`);
    chmodSync(path.join(bin, name), 0o755);
  };
  fake('npm', `if [ "$1" = pack ]; then echo stigmer-setup-${packageJson.version}.tgz; exit 0; fi\nexit 97`);
  fake('npx', `printf '%s\\n' "$@" > "${dir}/npx-args"\necho 'npm warn exec a notice on stderr' >&2\ncat "${dir}/stdout"\nexit "$(cat "${dir}/status")"`);
  const script = path.join(dir, 'step.sh');
  writeFileSync(script, step.run ?? '');
  const result = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', script], {
    cwd,
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` },
  });
  let npxArgs: string[] = [];
  try {
    npxArgs = readFileSync(path.join(dir, 'npx-args'), 'utf8').split('\n').filter(Boolean);
  } catch {
    // npx never ran
  }
  return { status: result.status, output: `${result.stdout}${result.stderr}`, npxArgs };
}

const report = (fields: Record<string, unknown>) => JSON.stringify({ command: 'doctor', platform: 'linux', strategy: 'none', changes: [], checks: [{ id: 'ollama.listener', status: 'fail', message: 'nothing listens' }], warnings: [], ...fields }, null, 2);

describe.skipIf(needs.posixShell)('the smoke steps, run against a stand-in npx' + because(needs.posixShell), () => {
  const doctorStep = () => onlyStep((line) => PACKED_DOCTOR.test(line), 'the packed doctor --json');
  const dryRunStep = () => onlyStep((line) => PACKED_DRY_RUN.test(line), 'the packed --dry-run --json');

  it('doctor: passes on exit 1 with a JSON report, and runs the packed tarball', () => {
    const run = runStepScript(doctorStep(), { status: 1, stdout: report({ ok: false }) });
    expect(run.status, run.output).toBe(0);
    expect(run.npxArgs).toEqual(['--yes', `./stigmer-setup-${packageJson.version}.tgz`, 'doctor', '--json']);
  });

  it('doctor: passes on exit 0 with ok true', () => {
    const run = runStepScript(doctorStep(), { status: 0, stdout: report({ ok: true, checks: [] }) });
    expect(run.status, run.output).toBe(0);
  });

  it.each([
    { what: 'bad usage (exit 2, nothing on stdout)', status: 2, stdout: '' },
    { what: 'a cancel (exit 130)', status: 130, stdout: report({ ok: false }) },
    { what: 'a crash (exit 1) with text instead of JSON', status: 1, stdout: 'TypeError: boom\n    at main' },
    { what: 'exit 0 with truncated JSON', status: 0, stdout: '{"ok": true, "checks": [' },
    { what: 'exit 0 with a report that says ok false', status: 0, stdout: report({ ok: false }) },
  ])('doctor: fails the step on $what', ({ status, stdout }) => {
    const run = runStepScript(doctorStep(), { status, stdout });
    expect(run.status, run.output).not.toBe(0);
  });

  it('dry run: passes on exit 0 with a dry-run report, and runs the packed tarball', () => {
    const run = runStepScript(dryRunStep(), { status: 0, stdout: report({ ok: true, command: 'setup', dryRun: true }) });
    expect(run.status, run.output).toBe(0);
    expect(run.npxArgs).toEqual(['--yes', `./stigmer-setup-${packageJson.version}.tgz`, '--dry-run', '--json']);
  });

  it.each([
    { what: 'bad usage (exit 2)', status: 2, stdout: '' },
    { what: 'stdout that is not JSON', status: 1, stdout: 'Looking at Ollama and containers…' },
    { what: 'a report that is not a dry run', status: 0, stdout: report({ ok: true, command: 'setup', dryRun: false }) },
  ])('dry run: fails the step on $what', ({ status, stdout }) => {
    const run = runStepScript(dryRunStep(), { status, stdout });
    expect(run.status, run.output).not.toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// The fleet examples

/** What the CLI makes of the arguments after the package name; throws UsageError on an unknown flag. */
function cliOptionsOf(argv: string[]) {
  const options = parseCli(argv);
  return { command: options.command, yes: options.yes, json: options.json, dryRun: options.dryRun };
}
const UNATTENDED_SETUP = { command: 'setup', yes: true, json: true, dryRun: false };

/**
 * Each line of a shell or PowerShell script that runs stigmer-setup@…: the arguments before the
 * package and after it (up to a redirection or the end of the command), quotes removed.
 */
function invocations(script: string): { before: string[]; pkg: string; after: string[] }[] {
  const code = script.replace(/<#[\s\S]*?#>/g, '');
  return code
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => !line.startsWith('#') && line.includes('stigmer-setup@'))
    .map((line) => {
      const tokens = line.match(/"[^"]*"|'[^']*'|\S+/g) ?? [];
      const unquote = (token: string) => token.replace(/^(["'])([\s\S]*)\1$/, '$2');
      const at = tokens.findIndex((token) => unquote(token).startsWith('stigmer-setup@'));
      const rest = tokens.slice(at + 1);
      const end = rest.findIndex((token) => /^(\d?>|&>|\||\|\||&&|;|\))/.test(token));
      return {
        before: tokens.slice(0, at).map(unquote),
        pkg: unquote(tokens[at] as string),
        after: (end === -1 ? rest : rest.slice(0, end)).map(unquote),
      };
    });
}

interface Task {
  name?: string;
  block?: Task[];
  rescue?: Task[];
  always?: Task[];
  [key: string]: unknown;
}
interface Play {
  hosts?: string;
  vars?: Record<string, unknown>;
  tasks?: Task[];
}

const playbook = parse(read('examples/ansible/stigmer-setup.yml')) as Play[];
const flatten = (tasks: Task[] = []): Task[] => tasks.flatMap((task) => [task, ...flatten(task.block), ...flatten(task.rescue), ...flatten(task.always)]);
const allTasks = playbook.flatMap((play) => flatten(play.tasks));
const commandTasks = allTasks.filter((task) => 'ansible.builtin.command' in task);

// Task keywords (not modules) that the playbook may use.
const TASK_KEYWORDS = new Set(['name', 'block', 'rescue', 'always', 'when', 'register', 'become', 'become_user', 'changed_when', 'failed_when', 'vars', 'environment', 'tags', 'ignore_errors', 'no_log', 'args']);

function commandArgv(task: Task): string[] {
  const spec = task['ansible.builtin.command'];
  if (typeof spec === 'string') return spec.split(/\s+/).filter(Boolean);
  const { argv, cmd } = (spec ?? {}) as { argv?: string[]; cmd?: string };
  return argv ?? cmd?.split(/\s+/).filter(Boolean) ?? [];
}

describe('examples/ansible/stigmer-setup.yml', () => {
  it('is one play for all hosts with a pinned version', () => {
    expect(playbook).toHaveLength(1);
    expect(playbook[0]?.hosts).toBe('all');
    expect(String(playbook[0]?.vars?.stigmer_setup_version)).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('runs npx -y stigmer-setup@{{ stigmer_setup_version }} --yes --json, flags the CLI accepts', () => {
    expect(commandTasks).toHaveLength(1);
    const argv = commandArgv(commandTasks[0] as Task);
    const at = argv.findIndex((arg) => arg.startsWith('stigmer-setup@'));
    expect(argv.slice(0, at)).toEqual(['npx', '-y']);
    expect(argv[at]).toMatch(/^stigmer-setup@\{\{\s*stigmer_setup_version\s*\}\}$/);
    expect(argv.slice(at + 1)).toEqual(expect.arrayContaining(['--yes', '--json']));
    expect(cliOptionsOf(argv.slice(at + 1))).toEqual(UNATTENDED_SETUP);
  });

  it('becomes root on Linux only (macOS refuses sudo)', () => {
    const become = String((commandTasks[0] as Task).become);
    expect(become).toMatch(/ansible_facts\.system\s*==\s*'Linux'/);
    expect(allTasks.filter((task) => task !== commandTasks[0]).some((task) => task.become !== undefined)).toBe(false);
  });

  it('calls every module by its FQCN', () => {
    for (const task of allTasks) {
      const modules = Object.keys(task).filter((key) => !TASK_KEYWORDS.has(key));
      if (task.block) expect(modules, task.name).toEqual([]);
      else expect(modules, task.name).toEqual([expect.stringMatching(/^ansible\.builtin\.[a-z_]+$/)]);
    }
  });

  it('reports changed only for a change with applied: true', () => {
    const changedWhen = String((commandTasks[0] as Task).changed_when);
    expect(changedWhen).toMatch(/from_json/);
    expect(changedWhen).toMatch(/\.changes\b/);
    expect(changedWhen).toMatch(/selectattr\('applied', 'equalto', true\)/);
  });

  it('fails on ok false, naming the failed checks, and on output that is not JSON', () => {
    const fails = allTasks.filter((task) => 'ansible.builtin.fail' in task);
    const onReport = fails.find((task) => /\.ok\b/.test(String(task.when)));
    expect(onReport, 'a fail task conditioned on the report\'s ok').toBeDefined();
    expect(String(onReport?.when)).toMatch(/ok is not sameas true/);
    const message = String((onReport?.['ansible.builtin.fail'] as { msg?: string } | undefined)?.msg);
    // Printed, not only tested: {{ check.id }}, or joined into the line with ~.
    for (const field of ['id', 'message', 'fix']) expect(message).toMatch(new RegExp(`(\\{\\{\\s*|~\\s*)check\\.${field}\\b`));
    expect(message).toMatch(/selectattr\('status', 'equalto', 'fail'\)/);
    // No JSON: parsing it fails inside a block whose rescue fails the host.
    const guarded = allTasks.find((task) => task.block?.some((inner) => /from_json/.test(JSON.stringify(inner['ansible.builtin.set_fact'] ?? ''))));
    expect(guarded, 'the report is parsed inside a block').toBeDefined();
    expect(guarded?.rescue?.some((task) => 'ansible.builtin.fail' in task)).toBe(true);
  });
});

describe('examples/mdm', () => {
  const jamf = read('examples/mdm/jamf.sh');
  const intune = read('examples/mdm/intune.ps1');

  it('jamf.sh runs npx -y stigmer-setup@… --yes --json as the console user, not root', () => {
    const found = invocations(jamf);
    expect(found).toHaveLength(1);
    const [call] = found;
    expect(call?.pkg).toMatch(/^stigmer-setup@\$\{?version\}?$/);
    expect(call?.before.slice(-2)).toEqual(['npx', '-y']);
    // sudo -u <console user> -H before npx; the console user comes from /dev/console.
    const sudo = call?.before.indexOf('sudo') ?? -1;
    expect(sudo).toBeGreaterThanOrEqual(0);
    expect(call?.before.slice(sudo + 1, sudo + 4)).toEqual(['-u', '$console_user', '-H']);
    expect(jamf).toMatch(/^console_user="\$\(stat -f%Su \/dev\/console\)"$/m);
    expect(jamf).toMatch(/^exit "\$status"$/m);
    expect(cliOptionsOf(call?.after ?? [])).toEqual(UNATTENDED_SETUP);
  });

  it('intune.ps1 runs npx -y stigmer-setup@… --yes --json as the signed-in user and exits with its code', () => {
    const found = invocations(intune);
    expect(found).toHaveLength(1);
    const [call] = found;
    expect(call?.pkg).toMatch(/^stigmer-setup@\$Version$/);
    expect(call?.before.slice(-2)).toEqual(['npx', '-y']);
    expect(call?.before).not.toContain('sudo');
    expect(intune).toMatch(/^\$status = \$LASTEXITCODE$/m);
    expect(intune).toMatch(/^exit \$status$/m);
    expect(cliOptionsOf(call?.after ?? [])).toEqual(UNATTENDED_SETUP);
  });

  it('all three examples pin the same version by default', () => {
    const versions = [
      String(playbook[0]?.vars?.stigmer_setup_version),
      /^version="\$\{4:-([^}]+)\}"$/m.exec(jamf)?.[1],
      /^\$Version = '([^']+)'$/m.exec(intune)?.[1],
    ];
    expect(versions[0]).toMatch(/^\d+\.\d+\.\d+$/);
    expect(new Set(versions)).toEqual(new Set([versions[0]]));
  });

  it('the flag check above does reject what the CLI does not accept', () => {
    expect(() => parseCli(['--yes', '--jsn'])).toThrow(UsageError);
    expect(() => parseCli(['--yes', '--json', '--unattended'])).toThrow(UsageError);
    expect(invocations('npx -y "stigmer-setup@$v" --yes --json 2>&1 | tee log')[0]?.after).toEqual(['--yes', '--json']);
  });
});

// ---------------------------------------------------------------------------------------------
// The changelog

describe('CHANGELOG.md', () => {
  const headings = read('CHANGELOG.md')
    .split('\n')
    .filter((line) => line.startsWith('## '));

  it('opens with Unreleased, then the version in package.json', () => {
    expect(headings[0]).toBe('## [Unreleased]');
    const version = headings.findIndex((line) => new RegExp(`^## \\[${packageJson.version.replace(/\./g, '\\.')}\\]( - \\d{4}-\\d{2}-\\d{2})?$`).test(line));
    expect(version).toBeGreaterThan(0);
  });

  it('has only Keep a Changelog version headings', () => {
    expect(headings.length).toBeGreaterThan(1);
    for (const line of headings.slice(1)) expect(line).toMatch(/^## \[\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?\]( - \d{4}-\d{2}-\d{2})?$/);
  });
});

describe('package.json, as npm users and registries read it', () => {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as Record<string, unknown>;

  it('publishes only the built bin and its chunks (a files whitelist), with no runtime dependencies', () => {
    expect(manifest.files).toEqual(['dist/']);
    expect(manifest.bin).toEqual({ 'stigmer-setup': 'dist/stigmer-setup.mjs' });
    expect(manifest.dependencies).toBeUndefined();
  });

  it('says where it comes from, what it is for, and which Node it needs', () => {
    expect(manifest.repository).toEqual({ type: 'git', url: 'git+https://github.com/stigmer/stigmer-setup.git' });
    expect(manifest.keywords).toEqual(expect.arrayContaining(['stigmer', 'ollama', 'docker']));
    expect(manifest.engines).toEqual({ node: '>=20' });
    // The links in every finding point at this repository's guide.
    expect(TROUBLESHOOTING_URL.startsWith(String(manifest.homepage).replace(/#readme$/, ''))).toBe(true);
  });
});
