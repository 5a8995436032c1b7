/**
 * Ollama run as a Windows service named `ollama` (Ollama ships none; docs/windows.mdx points to
 * tools such as NSSM wrapping `ollama serve`). A service takes its environment from the service
 * control manager: the machine's environment plus the service key's own `Environment` value
 * (REG_MULTI_SZ under HKLM\SYSTEM\CurrentControlSet\Services\ollama), and NSSM adds its
 * AppEnvironmentExtra on top. Setup writes OLLAMA_HOST into the service's `Environment` and
 * restarts the service: both need an elevated PowerShell, and only this strategy ever does.
 */
import type { Context } from '../../scripts/context.ts';
import { formatBindAddress, parseOllamaHost, sameBindAddress } from '../../scripts/ollama-host.ts';
import { SETUP_COMMAND } from '../commands.ts';
import { listensAsRequested, type DetectOptions, type Detection, type Plan, type PlanRequest, type Problem, type RestartChange, type SettingStore, type Strategy } from '../types.ts';
import { reservedProblem, reservedRange } from './app.ts';
import { parseScQuery, scServiceMissing } from './parsers/sc-query.ts';
import { isElevated, powershellArgv, readEnvironmentVariable, readForStore, runPowerShell } from './powershell.ts';

const SERVICE_KEY = 'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\ollama';

/** KEY=VALUE entries, one per line (how PowerShell prints a string array). */
function entryValue(text: string, key: string): string | undefined {
  let value: string | undefined;
  for (const line of text.split(/\r?\n/)) if (line.startsWith(`${key}=`)) value = line.slice(key.length + 1);
  return value;
}

const multiStringScript = (key: string, name: string) => `(Get-ItemProperty -LiteralPath '${key}' -Name ${name} -ErrorAction SilentlyContinue).${name}`;

async function readMultiString(ctx: Context, key: string, name: string): Promise<string> {
  const result = await runPowerShell(ctx, multiStringScript(key, name));
  return result.exitCode === 0 ? result.stdout : '';
}

/**
 * The service's own environment (the `Environment` value of its key). The script keeps every
 * other entry, replaces or removes ours, and reads the value from $env:STIGMER_SETUP_VALUE (absent:
 * remove), so no value is ever part of the script.
 */
export const serviceEnvStore: SettingStore = {
  id: 'windows-service-env',
  privileged: true,
  async read(ctx, key) {
    // A failed read throws (readForStore): "unset" here would make undo delete the service's value.
    return entryValue((await readForStore(ctx, multiStringScript(SERVICE_KEY, 'Environment'), `${key} in the ollama service's environment`)).stdout, key);
  },
  command(key, value) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(key)) throw new Error(`refusing to build a PowerShell script for the variable name ${JSON.stringify(key)}`);
    const script = [
      `$list = @((Get-ItemProperty -LiteralPath '${SERVICE_KEY}' -Name Environment -ErrorAction SilentlyContinue).Environment | Where-Object { $_ -and -not $_.StartsWith('${key}=') })`,
      `if ($env:STIGMER_SETUP_VALUE) { $list += '${key}=' + $env:STIGMER_SETUP_VALUE }`,
      `if ($list.Count) { Set-ItemProperty -LiteralPath '${SERVICE_KEY}' -Name Environment -Type MultiString -Value $list -ErrorAction Stop } else { Remove-ItemProperty -LiteralPath '${SERVICE_KEY}' -Name Environment -ErrorAction SilentlyContinue }`,
    ].join('; ');
    return { argv: powershellArgv(script), env: { STIGMER_SETUP_VALUE: value } };
  },
};

export interface WinServiceDetection extends Detection {
  strategy: 'win32-service';
  state?: string;
  elevated: boolean;
  /** OLLAMA_HOST in the service's own Environment value. */
  serviceHost?: string;
  /** OLLAMA_HOST in NSSM's AppEnvironmentExtra, which NSSM applies last. */
  nssmHost?: string;
  machineHost?: string;
  port: number;
  reservedProblem?: Problem;
}

async function detect(ctx: Context, options: DetectOptions): Promise<WinServiceDetection | undefined> {
  const sc = await ctx.exec('sc', ['queryex', 'ollama'], { timeoutMs: 15_000 });
  if (sc.failure) return undefined;
  const status = parseScQuery(sc.stdout);
  if (!status.exists || scServiceMissing(status)) return undefined;
  const [elevated, serviceHost, nssmExtra, machineHost, reserved] = await Promise.all([
    isElevated(ctx),
    // Detection reads leniently, as it always did (doctor goes on); the store's own read, just
    // before setup writes, is the one that refuses a failed PowerShell.
    readMultiString(ctx, SERVICE_KEY, 'Environment').then((text) => entryValue(text, 'OLLAMA_HOST')),
    readMultiString(ctx, `${SERVICE_KEY}\\Parameters`, 'AppEnvironmentExtra'),
    readEnvironmentVariable(ctx, 'OLLAMA_HOST', 'Machine'),
    reservedRange(ctx, options.port),
  ]);
  const nssmHost = entryValue(nssmExtra, 'OLLAMA_HOST');
  const configuredHost = nssmHost ?? serviceHost ?? machineHost;
  const problems: Problem[] = [];
  if (reserved) problems.push(reservedProblem(reserved, options.port));
  return {
    strategy: 'win32-service',
    description: `Windows service ollama${status.state ? ` (${status.state.toLowerCase()})` : ''}`,
    state: status.state,
    elevated,
    serviceHost,
    nssmHost,
    machineHost,
    port: options.port,
    reservedProblem: reserved ? reservedProblem(reserved, options.port) : undefined,
    configuredHost,
    configuredIn:
      nssmHost !== undefined
        ? "NSSM's AppEnvironmentExtra of the ollama service"
        : serviceHost !== undefined
          ? `the ollama service's Environment (${SERVICE_KEY})`
          : machineHost !== undefined
            ? 'the system (Machine) environment variable OLLAMA_HOST'
            : undefined,
    serverPid: status.pid || undefined,
    problems,
  };
}

function restartChange(): RestartChange {
  return { type: 'restart', strategy: 'win32-service', steps: [powershellArgv('Restart-Service -Name ollama -ErrorAction Stop')], privileged: true };
}

function plan(detection: WinServiceDetection, request: PlanRequest): Plan {
  const value = formatBindAddress(request.target);
  const base: Plan = { strategy: 'win32-service', target: request.target, changes: [], summary: '', blockers: [], warnings: [] };
  if (detection.reservedProblem && detection.port === request.target.port) {
    base.summary = `Port ${request.target.port} is reserved by Windows, so no setting can make Ollama listen there.`;
    base.blockers.push({ message: detection.reservedProblem.message, fix: detection.reservedProblem.fix });
    return base;
  }
  if (detection.nssmHost !== undefined && !sameBindAddress(parseOllamaHost(detection.nssmHost), request.target)) {
    // NSSM applies AppEnvironmentExtra after the service environment: ours would lose.
    base.summary = `NSSM's AppEnvironmentExtra sets OLLAMA_HOST=${detection.nssmHost} for the ollama service and overrides anything else.`;
    base.blockers.push({ message: base.summary, fix: `From an elevated PowerShell: nssm set ollama AppEnvironmentExtra OLLAMA_HOST=${value}; nssm restart ollama` });
    return base;
  }
  const configured = detection.configuredHost !== undefined && sameBindAddress(parseOllamaHost(detection.configuredHost), request.target);
  const changes: Plan['changes'] = configured ? [] : [{ type: 'setting', store: 'windows-service-env', key: 'OLLAMA_HOST', before: detection.serviceHost, after: value, privileged: true, argv: serviceEnvStore.command('OLLAMA_HOST', value).argv }];
  if (configured && listensAsRequested(request)) {
    base.summary = `The ollama service already gets OLLAMA_HOST=${detection.configuredHost} (${detection.configuredIn}).`;
    return base;
  }
  changes.push(restartChange());
  // Elevation is per change, and only this one needs it; Windows has no sudo to ask for it.
  if (!detection.elevated) {
    base.summary = `Changing the ollama service needs an elevated PowerShell.`;
    base.blockers.push({
      message: 'The ollama service runs as a Windows service, and changing its environment or restarting it needs Administrator rights, which this PowerShell does not have.',
      fix: `Open PowerShell with "Run as administrator", then: ${SETUP_COMMAND}`,
    });
    return base;
  }
  base.changes = changes;
  base.summary = configured
    ? `The ollama service is configured with OLLAMA_HOST=${detection.configuredHost}, but has not picked it up: restart it.`
    : `Set OLLAMA_HOST=${value} in the ollama service's environment, then restart the service.`;
  return base;
}

export const winServiceStrategy: Strategy<WinServiceDetection> = {
  id: 'win32-service',
  detect,
  plan,
  persistent: true,
  commands: () => ({
    start: 'Start-Service -Name ollama   # from an elevated PowerShell',
    restart: 'Restart-Service -Name ollama   # from an elevated PowerShell',
    logs: 'Get-EventLog -LogName Application -Newest 50 | Where-Object Source -Match ollama',
    widen: SETUP_COMMAND,
    stop: 'Stop-Service -Name ollama; Set-Service -Name ollama -StartupType Disabled   # elevated',
  }),
  restartChange,
  settings: [{ store: 'windows-service-env', key: 'OLLAMA_HOST' }],
};

