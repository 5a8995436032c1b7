/**
 * Inside WSL, with no Ollama of its own: Ollama may run on the Windows side. How a container in
 * WSL's Docker reaches it depends on WSL's networking mode (MS Learn, WSL/networking.md):
 *  - NAT (the default): Windows is the default gateway, and a connection from WSL counts as one
 *    from the network, so Ollama on Windows must listen beyond loopback (and the firewall let
 *    vEthernet (WSL) in);
 *  - mirrored: WSL shares Windows' addresses (a loopback0 interface shows it, MicrosoftDocs/WSL#1967),
 *    so 127.0.0.1 reaches Windows, but only from the host network: a bridge container does not.
 * stigmer-setup changes Windows' settings from Windows, so here it finds out which case this is
 * and says exactly what to run there.
 */
import type { Context } from '../../scripts/context.ts';
import { formatBindAddress } from '../../scripts/ollama-host.ts';
import { SETUP_COMMAND } from '../commands.ts';
import type { DetectOptions, Detection, Plan, PlanRequest, Strategy } from '../types.ts';
import { isWsl, parseDefaultGateway } from '../win32/parsers/wsl.ts';

export interface WslWindowsDetection extends Detection {
  strategy: 'linux-wsl-windows';
  mode: 'nat' | 'mirrored';
  /** Where Windows is, seen from WSL: the default gateway (NAT) or 127.0.0.1 (mirrored). */
  windowsAddress?: string;
  /** Ollama on Windows answered there. */
  answers: boolean;
}

const FIREWALL = (port: number) =>
  `New-NetFirewallRule -DisplayName "Ollama for WSL containers" -Direction Inbound -Protocol TCP -LocalPort ${port} -InterfaceAlias "vEthernet (WSL)" -Action Allow`;

async function detect(ctx: Context, options: DetectOptions): Promise<WslWindowsDetection | undefined> {
  if (options.listeners === undefined || options.listeners.length > 0) return undefined;
  const procVersion = await ctx.fs.readText('/proc/version', { follow: true }).catch(() => undefined);
  if (!procVersion || !isWsl(procVersion)) return undefined;
  const mode = ctx.networkAddresses().some((address) => address.name === 'loopback0') ? 'mirrored' : 'nat';
  let windowsAddress: string | undefined = '127.0.0.1';
  if (mode === 'nat') {
    const route = await ctx.exec('ip', ['route', 'show', 'default'], { timeoutMs: 5000 });
    windowsAddress = route.exitCode === 0 ? parseDefaultGateway(route.stdout)?.gateway : undefined;
  }
  const answer = windowsAddress ? await ctx.http.get(`http://${formatBindAddress({ host: windowsAddress, port: options.port })}/api/version`, { timeoutMs: 2000 }) : undefined;
  const answers = answer?.kind === 'response' && answer.status === 200;
  const where = windowsAddress ? `${formatBindAddress({ host: windowsAddress, port: options.port })}` : 'the default gateway';
  return {
    strategy: 'linux-wsl-windows',
    description: answers
      ? `Ollama on the Windows side, reached from WSL at ${where} (${mode === 'nat' ? 'NAT' : 'mirrored'} networking)`
      : `no Ollama inside WSL, and none answering on the Windows side at ${where} (${mode === 'nat' ? 'NAT' : 'mirrored'} networking)`,
    mode,
    windowsAddress,
    answers,
  };
}

function plan(detection: WslWindowsDetection, request: PlanRequest): Plan {
  const port = request.target.port;
  const gateway = detection.windowsAddress ?? '<the default gateway: ip route show default>';
  const nat = detection.mode === 'nat';
  const message = nat
    ? `WSL uses NAT networking: a container inside WSL reaches Windows only through the default gateway (${gateway}), so Ollama on Windows must listen beyond loopback.`
    : "WSL uses mirrored networking: WSL reaches Windows' 127.0.0.1, but a bridge-networked container does not.";
  const fix = nat
    ? `On Windows, in PowerShell: ${SETUP_COMMAND} --host 0.0.0.0:${port}; then, elevated: ${FIREWALL(port)}; and give the agent-runner OLLAMA_BASE_URL=http://${gateway}:${port}. Or install Ollama inside WSL: curl -fsSL https://ollama.com/install.sh | sh`
    : `Run the agent-runner with --network host and OLLAMA_BASE_URL=http://127.0.0.1:${port}; or on Windows, in PowerShell: ${SETUP_COMMAND} --host 0.0.0.0:${port}, then, elevated: ${FIREWALL(port)}`;
  return {
    strategy: 'linux-wsl-windows',
    target: request.target,
    changes: [],
    summary: `${detection.description}. stigmer-setup changes Windows' settings from Windows, not from inside WSL.`,
    blockers: [{ message, fix }],
    warnings: [],
  };
}

export const wslWindowsStrategy: Strategy<WslWindowsDetection> = {
  id: 'linux-wsl-windows',
  detect,
  plan,
  persistent: true,
  commands: (detection, port) => {
    const windows = `On Windows, in PowerShell: ${SETUP_COMMAND} --host 0.0.0.0:${port}`;
    return {
      start: 'Start Ollama on Windows (Start menu), or install it inside WSL: curl -fsSL https://ollama.com/install.sh | sh',
      restart: 'Quit Ollama from its tray icon on Windows and start it again from the Start menu',
      logs: 'On Windows: Get-Content -Tail 50 "$env:LOCALAPPDATA\\Ollama\\server.log"',
      widen: detection.mode === 'nat' ? `${windows}; then, elevated: ${FIREWALL(port)}` : `${windows}, or run the agent-runner with --network host`,
      stop: 'Quit Ollama from its tray icon on Windows',
    };
  },
};
