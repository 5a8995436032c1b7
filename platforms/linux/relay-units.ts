/**
 * The relay's two systemd units, rendered and read back (relay-and-pull.md Part A).
 *
 * stigmer-ollama-relay.socket listens on the address Docker's host-gateway resolves to, with
 * FreeBind= so it starts at boot before docker0 exists; stigmer-ollama-relay.service is
 * systemd-socket-proxyd forwarding each connection to Ollama's loopback address. Connections that
 * don't come from a Docker bridge are kept out by one of two protections:
 *   'ip-address-allow'  IPAddressAllow= the bridge subnets + IPAddressDeny=any on the socket (systemd
 *                       enforces it with BPF on a unified cgroup hierarchy);
 *   'iptables'          our own chain, hooked into INPUT for exactly <gateway>:<port>, accepting lo,
 *                       docker0 and br-+ and dropping the rest. The socket unit adds it before it
 *                       binds and removes it after it closes, so the rule lives exactly as long as
 *                       the relay (reboots included), and undo removes it with the unit.
 *
 * Every value rendered into a unit comes from the machine (docker, the listeners, a path found on
 * disk). systemd gives `%` (specifiers), `$` (variables), `\` and quotes meaning in these lines,
 * and a newline would start a new directive, so each value must match a strict pattern of the
 * characters its kind can hold; anything else is refused with RelayUnitError, never escaped.
 */
import { isIPv4 } from 'node:net';
import { unitFileLines } from './systemctl-show.ts';

export const SOCKET_UNIT = 'stigmer-ollama-relay.socket';
export const SERVICE_UNIT = 'stigmer-ollama-relay.service';
export const SOCKET_PATH = `/etc/systemd/system/${SOCKET_UNIT}`;
export const SERVICE_PATH = `/etc/systemd/system/${SERVICE_UNIT}`;
export const CHAIN = 'STIGMER-OLLAMA-RELAY';
/** The first line of each unit starts with this: how a unit is told to be ours. */
export const MARKER = '# Written by stigmer-setup';
/** Our units are a few hundred bytes; anything much larger is not one we wrote. */
export const MAX_UNIT_BYTES = 64 * 1024;

export type RelayProtection = 'ip-address-allow' | 'iptables';

export interface RelayUnitOptions {
  /** The IPv4 address host-gateway resolves to (the default bridge's gateway). */
  gateway: string;
  port: number;
  /** Ollama's IPv4 loopback literal: 127.0.0.1, or the 127.x address it was given. */
  target: string;
  protection: RelayProtection;
  /** IPv4 CIDRs of every Docker bridge network ('ip-address-allow'). */
  subnets: string[];
  /** Absolute path of iptables ('iptables'). */
  iptables?: string;
  /** Absolute path of systemd-socket-proxyd. */
  proxyd: string;
  /** ollama.service exists: the service Wants= and After= it. */
  ollamaUnit: boolean;
}

/** A value that can't be written into a unit file as it is. */
export class RelayUnitError extends Error {}

const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;
const ABSOLUTE_PATH = /^(\/[A-Za-z0-9._+-]+)+$/;

/** Why `value` can't go into a unit line: the characters systemd or the line itself would read otherwise. */
function hostileReason(value: string): string | undefined {
  if (/[\x00-\x1f\x7f-\x9f\u2028\u2029]/.test(value)) return 'holds a control character';
  if (/\s/.test(value)) return 'holds whitespace';
  if (value.includes('%')) return "holds '%', which systemd reads as a specifier";
  return undefined;
}

function checked(kind: string, value: string, valid: (value: string) => boolean): string {
  const hostile = hostileReason(value);
  if (hostile) throw new RelayUnitError(`The ${kind} ${JSON.stringify(value)} ${hostile}, so it can't be written into a systemd unit.`);
  if (!valid(value)) throw new RelayUnitError(`The ${kind} ${JSON.stringify(value)} is not one a relay unit can hold.`);
  return value;
}

/**
 * An IPv4 address one host can listen on alone: not 0.0.0.0 (every address), not loopback (where
 * Ollama itself is), not multicast, reserved or broadcast (240/4), not 0/8.
 */
export function isListenableIpv4(value: string): boolean {
  if (!isIPv4(value)) return false;
  const first = Number(value.split('.')[0]);
  return first !== 0 && first !== 127 && first < 224;
}

export function isIpv4Cidr(value: string): boolean {
  const match = IPV4_CIDR.exec(value);
  return match !== null && isIPv4(value.split('/')[0] as string) && Number(match[5]) <= 32;
}

function validateOptions(options: RelayUnitOptions): RelayUnitOptions {
  const gateway = checked('gateway address', options.gateway, isListenableIpv4);
  const target = checked("Ollama's loopback address", options.target, (value) => isIPv4(value) && value.startsWith('127.'));
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) throw new RelayUnitError(`The port ${JSON.stringify(options.port)} is not a TCP port.`);
  const proxyd = checked('path of systemd-socket-proxyd', options.proxyd, (value) => ABSOLUTE_PATH.test(value));
  const subnets = options.subnets.map((subnet) => checked('bridge subnet', subnet, isIpv4Cidr));
  let iptables: string | undefined;
  if (options.protection === 'iptables') {
    if (options.iptables === undefined) throw new RelayUnitError('The iptables protection needs the path of iptables.');
    iptables = checked('path of iptables', options.iptables, (value) => ABSOLUTE_PATH.test(value));
  } else if (subnets.length === 0) {
    throw new RelayUnitError('The ip-address-allow protection needs at least one bridge subnet.');
  }
  return { ...options, gateway, target, proxyd, subnets, iptables };
}

/** The iptables commands that remove our hook and chain; each may fail (nothing to remove). */
function cleanupCommands(iptables: string, gateway: string, port: number): string[] {
  return [
    `-${iptables} -w -D INPUT -d ${gateway}/32 -p tcp --dport ${port} -j ${CHAIN}`,
    `-${iptables} -w -F ${CHAIN}`,
    `-${iptables} -w -X ${CHAIN}`,
  ];
}

export function renderSocketUnit(input: RelayUnitOptions): string {
  const options = validateOptions(input);
  const { gateway, port, target } = options;
  const lines = [
    `${MARKER}: Docker bridge containers reach Ollama on ${target}:${port} through ${gateway}:${port}. Remove: npx stigmer-setup undo`,
    '[Unit]',
    `Description=stigmer-setup relay: Docker bridge containers to Ollama on ${target}:${port}`,
    '',
    '[Socket]',
    `ListenStream=${gateway}:${port}`,
    // Binds before docker0 has the address (at boot), and keeps listening when docker0 is recreated.
    'FreeBind=yes',
  ];
  if (options.protection === 'ip-address-allow') {
    lines.push('# Only Docker bridge networks may connect (systemd enforces this with BPF).', `IPAddressAllow=${options.subnets.join(' ')}`, 'IPAddressDeny=any');
  } else {
    const iptables = options.iptables as string;
    lines.push(
      `# Only Docker bridge interfaces may connect: chain ${CHAIN}, hooked into INPUT for ${gateway}:${port}, added before the socket binds and removed after it closes.`,
      ...cleanupCommands(iptables, gateway, port).map((command) => `ExecStartPre=${command}`),
      `ExecStartPre=${iptables} -w -N ${CHAIN}`,
      `ExecStartPre=${iptables} -w -A ${CHAIN} -i lo -j ACCEPT`,
      `ExecStartPre=${iptables} -w -A ${CHAIN} -i docker0 -j ACCEPT`,
      `ExecStartPre=${iptables} -w -A ${CHAIN} -i br-+ -j ACCEPT`,
      `ExecStartPre=${iptables} -w -A ${CHAIN} -j DROP`,
      `ExecStartPre=${iptables} -w -I INPUT 1 -d ${gateway}/32 -p tcp --dport ${port} -j ${CHAIN}`,
      ...cleanupCommands(iptables, gateway, port).map((command) => `ExecStopPost=${command}`),
    );
  }
  lines.push('', '[Install]', 'WantedBy=sockets.target', '');
  return lines.join('\n');
}

export function renderServiceUnit(input: RelayUnitOptions): string {
  const options = validateOptions(input);
  const { port, target, proxyd } = options;
  const lines = [
    `${MARKER}: forwards the relay's connections to Ollama on ${target}:${port}. Remove: npx stigmer-setup undo`,
    '[Unit]',
    `Description=stigmer-setup relay to Ollama on ${target}:${port}`,
    `Requires=${SOCKET_UNIT}`,
    `After=${SOCKET_UNIT}`,
  ];
  // Wants=, not Requires=: a stopped or restarted Ollama must not take the relay with it.
  if (options.ollamaUnit) lines.push('Wants=ollama.service', 'After=ollama.service');
  lines.push(
    '',
    '[Service]',
    // Type=simple on purpose: systemd-socket-proxyd of systemd <= 252 never sends READY=1.
    `ExecStart=${proxyd} ${target}:${port}`,
  );
  if (options.protection === 'ip-address-allow') lines.push('# The proxy may dial loopback and nothing else.', 'IPAddressAllow=localhost', 'IPAddressDeny=any');
  lines.push('');
  return lines.join('\n');
}

/** What one of our units says, read back as untrusted text. */
export interface ParsedSocketUnit {
  ours: boolean;
  /** ListenStream= as host and port, when it is one IPv4 address:port. */
  listen?: { host: string; port: number };
  protection: RelayProtection | 'none';
  allowed: string[];
}

export interface ParsedServiceUnit {
  ours: boolean;
  target?: { host: string; port: number };
}

/**
 * The assignments of one section, in order, as systemd reads the unit and then its drop-ins: each
 * file's logical lines (a trailing backslash joins the next line, comments inside a continuation
 * skipped: systemd.syntax(7)), and each file starts outside any section.
 */
function assignments(texts: string | string[], section: string): { key: string; value: string }[] {
  const found: { key: string; value: string }[] = [];
  for (const text of typeof texts === 'string' ? [texts] : texts) {
    let current = '';
    for (const logical of unitFileLines(text).slice(0, 2000)) {
      const line = logical.trim();
      if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
      const header = /^\[([^\]]*)\]$/.exec(line);
      if (header) {
        current = header[1] ?? '';
        continue;
      }
      if (current !== section) continue;
      const equals = line.indexOf('=');
      if (equals <= 0) continue;
      found.push({ key: line.slice(0, equals).trim(), value: line.slice(equals + 1).trim() });
    }
  }
  return found;
}

/** A list setting's values as systemd ends up with them: an empty assignment resets the list. */
function listValues(entries: { key: string; value: string }[], key: string): string[] {
  let values: string[] = [];
  for (const entry of entries) if (entry.key === key) values = entry.value === '' ? [] : [...values, entry.value];
  return values;
}

/** IPAddressAllow= entries that let everyone in: `any`, or a prefix of length 0. */
function allowsEveryone(entry: string): boolean {
  return entry === 'any' || /\/0$/.test(entry);
}

function ipv4HostPort(value: string): { host: string; port: number } | undefined {
  const match = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(value);
  if (!match || !isIPv4(match[1] as string)) return undefined;
  const port = Number(match[2]);
  return port >= 1 && port <= 65535 ? { host: match[1] as string, port } : undefined;
}

export function isOurs(text: string): boolean {
  return text.startsWith(MARKER);
}

export function parseSocketUnit(text: string, dropIns: string[] = []): ParsedSocketUnit {
  const socket = assignments([text, ...dropIns], 'Socket');
  const listens = listValues(socket, 'ListenStream');
  // More than one address is not ours.
  const listen = listens.length === 1 ? ipv4HostPort(listens[0] ?? '') : undefined;
  const allowed = listValues(socket, 'IPAddressAllow').flatMap((value) => value.split(/\s+/));
  const denyAny = listValues(socket, 'IPAddressDeny').some((value) => value.split(/\s+/).includes('any'));
  const hooked = listValues(socket, 'ExecStartPre').some((value) => /\s-I\s+INPUT\b/.test(value) && value.includes(`-j ${CHAIN}`));
  const protection = denyAny && allowed.length > 0 && !allowed.some(allowsEveryone) ? 'ip-address-allow' : hooked ? 'iptables' : 'none';
  return { ours: isOurs(text), listen, protection, allowed: allowed.slice(0, 256) };
}

export function parseServiceUnit(text: string, dropIns: string[] = []): ParsedServiceUnit {
  // An empty ExecStart= resets the list; a Type=simple service with two is refused by systemd.
  const execs = listValues(assignments([text, ...dropIns], 'Service'), 'ExecStart');
  const words = execs.length === 1 ? (execs[0] as string).split(/\s+/) : [];
  const target = words.length === 2 ? ipv4HostPort(words[1] as string) : undefined;
  return { ours: isOurs(text), target };
}
