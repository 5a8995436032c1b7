/**
 * Parser for `launchctl print gui/<uid>/<label>` (also `system/<label>`).
 *
 * launchctl(1) says this output "is NOT API in any sense at all", so the parser reads only what it
 * needs and tolerates everything else. Its shape, from the captures in test/fixtures/darwin:
 *
 *   gui/501/com.example.job = {
 *   	path = /Users/…/Library/LaunchAgents/com.example.job.plist
 *   	state = running
 *   	program = /path/to/binary
 *   	arguments = {
 *   		/path/to/binary
 *   		serve
 *   	}
 *   	inherited environment = {
 *   		SSH_AUTH_SOCK => /private/tmp/com.apple.launchd.…/Listeners
 *   	}
 *   	default environment = {
 *   		PATH => /usr/bin:/bin:/usr/sbin:/sbin
 *   	}
 *   	environment = {
 *   		OSLogRateLimit => 64
 *   		XPC_SERVICE_NAME => com.example.job
 *   	}
 *   	pid = 17594
 *   	last exit code = (never exited)
 *   	resource coalition = {
 *   		state = active
 *   	}
 *   }
 *
 * Nesting is tracked with the `{` / `}` lines, not with indentation (pasted captures turn the tabs
 * into spaces), and only keys at the job's own top level are read. `state` also appears inside
 * coalition and endpoint blocks, where it means something else.
 *
 * Which environment block is read, and why: launchctl prints up to five blocks
 * (`controller-supplied environment`, `global environment`, `inherited environment`,
 * `default environment`, and `environment`). Only the block named exactly `environment` is the
 * job's own: it holds the plist's EnvironmentVariables plus the XPC_SERVICE_NAME (and on newer
 * macOS OSLogRateLimit) that launchd adds. Evidence: in the captures a plist with no
 * EnvironmentVariables gives an `environment` block with only XPC_SERVICE_NAME, and a job with
 * variables lists them there. `inherited environment` holds what the domain passes down
 * (SSH_AUTH_SOCK in every capture; per user reports also values set with `launchctl setenv`, which
 * do not survive a reboot), and `default environment` is launchd's fallback PATH. Neither is part
 * of the job's definition, so neither is recorded here. (Block order and names also match the
 * format strings in a public decompilation of launchctl; see SOURCES.md.)
 *
 * Never throws; bounded work on any input.
 */
import { boundedLines, MAX_LINE_CHARS, parseDecimal, cleanField } from '../../../scripts/text.ts';

export interface LaunchctlJob {
  path?: string;
  state?: string;
  pid?: number;
  program?: string;
  arguments?: string[];
  /** The job's own `environment = { K => V }` block. Empty if absent. */
  environment: Map<string, string>;
  /** As printed: `0`, `(never exited)`, `78: EX_CONFIG`, … */
  lastExitCode?: string;
}

const MAX_DEPTH = 64;
const MAX_VALUE_CHARS = 4096;
const MAX_ENTRIES = 1000;
const OPENER = /^(.*?)\s*=>?\s*\{$/;
const KEY_VALUE = /^([^=]+?) = (.*)$/;
const HEADER = /^\S.*=\s*\{\s*$/;

function clean(value: string): string {
  return cleanField(value).slice(0, MAX_VALUE_CHARS);
}

/** The job launchctl printed. Fields that are absent, or that we cannot read, are left undefined. */
export function parseLaunchctlPrint(text: string): LaunchctlJob {
  const job: LaunchctlJob = { environment: new Map() };
  const lines = boundedLines(text);
  const first = lines.find((line) => line.trim() !== '');
  // The job's keys sit one level inside the `gui/501/label = {` header. A paste that left the
  // header out has them at the outermost level.
  const topDepth = first !== undefined && HEADER.test(first) ? 1 : 0;
  let depth = 0;
  let block: 'environment' | 'arguments' | undefined;
  const args: string[] = [];
  let sawArguments = false;
  let sawEnvironment = false;

  for (const line of lines) {
    if (line.length > MAX_LINE_CHARS) continue;
    const trimmed = line.trim();
    if (trimmed === '') continue;

    if (block !== undefined) {
      // Inside the job's environment or arguments block every line but `}` is an entry, even one
      // that ends in `{`: an environment value can.
      if (trimmed === '}') {
        block = undefined;
        depth -= 1;
      } else if (block === 'arguments') {
        if (args.length < MAX_ENTRIES) args.push(clean(trimmed));
      } else {
        const arrow = trimmed.indexOf(' => ');
        if (arrow > 0 && job.environment.size < MAX_ENTRIES) {
          const key = clean(trimmed.slice(0, arrow));
          if (key !== '' && !job.environment.has(key)) job.environment.set(key, clean(trimmed.slice(arrow + 4)));
        }
      }
      continue;
    }

    if (trimmed === '}') {
      depth = Math.max(0, depth - 1);
      continue;
    }

    const opener = OPENER.exec(trimmed);
    if (opener !== null) {
      if (depth === topDepth) {
        const name = opener[1];
        if (name === 'environment' && !sawEnvironment) {
          block = 'environment';
          sawEnvironment = true;
        } else if (name === 'arguments' && !sawArguments) {
          block = 'arguments';
          sawArguments = true;
        }
      }
      depth += 1;
      if (depth > MAX_DEPTH) break;
      continue;
    }

    if (depth !== topDepth) continue;
    const pair = KEY_VALUE.exec(trimmed);
    if (pair === null) continue;
    const [, key, rawValue] = pair;
    const value = clean(rawValue ?? '');
    switch (key) {
      case 'path':
        job.path ??= value;
        break;
      case 'state':
        job.state ??= value;
        break;
      case 'program':
        job.program ??= value;
        break;
      case 'pid':
        job.pid ??= parseDecimal(value);
        break;
      case 'last exit code':
        job.lastExitCode ??= value;
        break;
    }
  }
  if (sawArguments) job.arguments = args;
  return job;
}

/**
 * True if launchctl said the label is not loaded in the domain: `launchctl print` prints
 * `Could not find service "<label>" in domain for user gui: 501` (exit 113); `launchctl list <label>`
 * prints `… in domain for port`; kickstart on a system label `… in domain for system`.
 */
export function launchctlServiceMissing(text: string): boolean {
  if (typeof text !== 'string') return false;
  return /Could not find service "[^"\n]{0,1024}" in domain for/.test(text.slice(0, 65536));
}
