/**
 * Linux's read-only audits for doctor: what the firewall does to container traffic (F3), whether
 * a [::] socket takes IPv4 (F9), and a rootless dockerd's opt-in to the host's loopback (F10).
 * Reading a firewall's rules needs root; without it the firewall is named as unreadable, never
 * guessed.
 */
import type { Context } from '../../scripts/context.ts';
import { lastLine } from '../../scripts/text.ts';
import type { FirewallFacts } from '../types.ts';
import {
  firewallVerdict,
  parseFirewalldActiveZones,
  parseFirewalldZone,
  parseIptablesRules,
  parseUfwStatus,
  type FirewalldZone,
} from './firewall.ts';
import { parseEnvironmentList, parseSystemctlShow } from './systemctl-show.ts';

const FIREWALL_TIMEOUT_MS = 5000;
/** ufw translates its "Status:" and "Default:" lines; the parsers read the untranslated ones. */
const UNTRANSLATED = { LC_ALL: 'C', LANG: 'C' };
/** More active zones than this is not a workstation; the first ones decide for docker0 anyway. */
const MAX_ZONES = 8;

/** Why a firewall tool said nothing useful: missing (fine), or present but refused. */
function unreadableReason(tool: string, result: { exitCode: number | null; stderr: string; stdout: string; failure?: string }): string | undefined {
  if (result.failure === 'not-found') return undefined;
  const said = lastLine(result.stderr || result.stdout);
  return `${tool}: ${/root|permission|denied|not permitted/i.test(said) ? 'needs root' : said || `exit ${result.exitCode}`}`;
}

export async function readFirewall(ctx: Context, request: { port: number; subnets: string[]; interfaces: string[] }): Promise<FirewallFacts> {
  const unreadable: string[] = [];
  const [ufwResult, firewalldState, iptablesResult] = await Promise.all([
    ctx.exec('ufw', ['status', 'verbose'], { timeoutMs: FIREWALL_TIMEOUT_MS, env: UNTRANSLATED }),
    ctx.exec('firewall-cmd', ['--state'], { timeoutMs: FIREWALL_TIMEOUT_MS, env: UNTRANSLATED }),
    ctx.exec('iptables', ['-S'], { timeoutMs: FIREWALL_TIMEOUT_MS, env: UNTRANSLATED }),
  ]);

  let ufw: ReturnType<typeof parseUfwStatus> | undefined;
  if (ufwResult.exitCode === 0) ufw = parseUfwStatus(ufwResult.stdout);
  else {
    const reason = unreadableReason('ufw', ufwResult);
    if (reason) unreadable.push(reason);
  }

  // firewall-cmd --state prints "running", or "not running" with exit 252.
  let firewalld: { zones: FirewalldZone[]; activeZones: ReturnType<typeof parseFirewalldActiveZones> } | undefined;
  if (firewalldState.exitCode === 0 && firewalldState.stdout.trim() === 'running') {
    const active = await ctx.exec('firewall-cmd', ['--get-active-zones'], { timeoutMs: FIREWALL_TIMEOUT_MS, env: UNTRANSLATED });
    const activeZones = active.exitCode === 0 ? parseFirewalldActiveZones(active.stdout).slice(0, MAX_ZONES) : [];
    const names = [...new Set([...activeZones.map((zone) => zone.zone), 'docker'])].filter((zone) => /^[A-Za-z0-9_-]{1,64}$/.test(zone));
    const listed = await Promise.all(names.map((zone) => ctx.exec('firewall-cmd', [`--zone=${zone}`, '--list-all'], { timeoutMs: FIREWALL_TIMEOUT_MS, env: UNTRANSLATED })));
    const zones = listed.flatMap((result) => (result.exitCode === 0 ? [parseFirewalldZone(result.stdout)] : []));
    firewalld = { zones, activeZones };
  } else if (firewalldState.failure !== 'not-found' && !/not running/.test(firewalldState.stdout + firewalldState.stderr)) {
    const reason = unreadableReason('firewalld', firewalldState);
    if (reason) unreadable.push(reason);
  }

  let iptables: ReturnType<typeof parseIptablesRules> | undefined;
  if (iptablesResult.exitCode === 0) iptables = parseIptablesRules(iptablesResult.stdout);
  else {
    const reason = unreadableReason('iptables', iptablesResult);
    if (reason) unreadable.push(reason);
  }

  const verdict = firewallVerdict({ ufw, firewalld, iptables, port: request.port, subnets: request.subnets, interfaces: request.interfaces });
  return { ...verdict, unreadable, subnets: request.subnets };
}

export async function readBindV6Only(ctx: Context): Promise<boolean | undefined> {
  const text = await ctx.fs.readText('/proc/sys/net/ipv6/bindv6only', { follow: true }).catch(() => undefined);
  const value = text?.trim();
  return value === '1' ? true : value === '0' ? false : undefined;
}

/**
 * A rootless dockerd runs as the user's systemd service; the opt-in to the host's loopback is an
 * Environment= of that unit (moby contrib/dockerd-rootless.sh, docker/docs#21986).
 */
export async function readRootlessHostLoopback(ctx: Context): Promise<string | undefined> {
  const result = await ctx.exec('systemctl', ['--user', 'show', 'docker.service', '--property=Environment'], { timeoutMs: FIREWALL_TIMEOUT_MS, env: UNTRANSLATED });
  if (result.exitCode !== 0) return undefined;
  const environment = parseSystemctlShow(result.stdout).get('Environment');
  return environment === undefined ? undefined : parseEnvironmentList(environment).get('DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK');
}
