/**
 * Pure readers of Linux firewall tool output, and a verdict on one question: would a new TCP
 * connection from a Docker container (source in one of the Docker subnets, arriving on one of the
 * Docker bridge interfaces) reach a host service on a given port, or would the host's INPUT path
 * drop it? A dropped SYN is exactly what a container sees as a timeout rather than a refusal.
 *
 * Docker itself adds no INPUT rules (its chains live in FORWARD and nat), so whatever blocks a
 * container-to-host connection is the host's own firewall: ufw, firewalld, or hand-written iptables.
 *
 * All input is untrusted text: every loop is bounded, no regular expression can backtrack badly, and
 * lines that cannot be read are skipped instead of throwing.
 */
import { boundedLines } from '../../scripts/text.ts';

/** Longer lines are not output of these tools; they are skipped. */
const MAX_LINE_LENGTH = 4096;
/** ufw nests INPUT → ufw-before-input → ufw-user-input → ufw-user-limit …; 16 is far more than that. */
const MAX_CHAIN_DEPTH = 16;
/** Caps the work on a ruleset that jumps into the same chains over and over. */
const MAX_RULE_VISITS = 200_000;
/** Caps subnet × interface combinations considered for firewalld zone selection. */
const MAX_PATHS = 64;

export type PortSpec = number | [number, number];
export type Outcome = 'allowed' | 'blocked';
/** 'maybe': the rule matches some of the packets described (one subnet but not another, an unknown match). */
type Match = 'yes' | 'no' | 'maybe';

// ---------------------------------------------------------------------------------------------
// Addresses, ports, interfaces

export interface Ipv4Cidr {
  network: number;
  prefix: number;
}

function maskFor(prefix: number): number {
  return prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
}

/** `172.17.0.0/16` or a bare `172.17.0.2` (a /32). Anything else, IPv6 included, is undefined. */
export function parseIpv4Cidr(text: string): Ipv4Cidr | undefined {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(text.trim());
  if (!match) return undefined;
  const octets = [match[1], match[2], match[3], match[4]].map(Number);
  if (octets.some((octet) => octet > 255)) return undefined;
  const prefix = match[5] === undefined ? 32 : Number(match[5]);
  if (prefix > 32) return undefined;
  const address = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  return { network: (address & maskFor(prefix)) >>> 0, prefix };
}

/** True when every address of `inner` is inside `outer`: 172.16.0.0/12 contains 172.17.0.0/16. */
export function ipv4CidrContains(outer: string, inner: string): boolean {
  const a = parseIpv4Cidr(outer);
  const b = parseIpv4Cidr(inner);
  if (!a || !b) return false;
  return a.prefix <= b.prefix && ((b.network & maskFor(a.prefix)) >>> 0) === a.network;
}

/** Two colons at least: `8433:8443` is a port range, never an address. */
function looksLikeIpv6(text: string): boolean {
  return text.indexOf(':') !== text.lastIndexOf(':') && /^[0-9a-fA-F:.]+(?:\/\d{1,3})?$/.test(text);
}

/** How a rule's source address relates to the container subnets: all inside, none, or some. */
function sourceMatch(ruleAddress: string, subnets: string[]): Match {
  if (ruleAddress === '0.0.0.0/0') return 'yes';
  // ip6tables rules and ufw's v6 twins never see an IPv4 packet.
  if (looksLikeIpv6(ruleAddress)) return 'no';
  const rule = parseIpv4Cidr(ruleAddress);
  // A hostname, or an address a reporter masked as X.X.X.X: it could be anything.
  if (!rule || subnets.length === 0) return 'maybe';
  return combineAcross(
    subnets.map((subnet): Match => {
      const packet = parseIpv4Cidr(subnet);
      if (!packet) return 'maybe';
      if (rule.prefix <= packet.prefix && ((packet.network & maskFor(rule.prefix)) >>> 0) === rule.network) return 'yes';
      if (packet.prefix < rule.prefix && ((rule.network & maskFor(packet.prefix)) >>> 0) === packet.network) return 'maybe';
      return 'no';
    }),
  );
}

/**
 * The container dials some host address (the bridge gateway, or the LAN address that
 * host.docker.internal resolves to); which one is not known here. Only destinations a container
 * can never be talking to are ruled out.
 */
function destinationMatch(ruleAddress: string): Match {
  if (ruleAddress === '0.0.0.0/0') return 'yes';
  if (looksLikeIpv6(ruleAddress)) return 'no';
  const rule = parseIpv4Cidr(ruleAddress);
  if (!rule) return 'maybe';
  const loopback = parseIpv4Cidr('127.0.0.0/8')!;
  const multicast = parseIpv4Cidr('224.0.0.0/4')!;
  for (const never of [loopback, multicast]) {
    if (rule.prefix >= never.prefix && ((rule.network & maskFor(never.prefix)) >>> 0) === never.network) return 'no';
  }
  if (rule.network === 0xffffffff) return 'no';
  return 'maybe';
}

/** iptables and ufw treat a trailing '+' as "any interface whose name starts with this". */
function interfaceNameMatches(pattern: string, name: string): boolean {
  return pattern.endsWith('+') ? name.startsWith(pattern.slice(0, -1)) : pattern === name;
}

function interfaceMatch(pattern: string, interfaces: string[]): Match {
  if (interfaces.length === 0) return 'maybe';
  return combineAcross(interfaces.map((name): Match => (interfaceNameMatches(pattern, name) ? 'yes' : 'no')));
}

/** Across alternatives (several subnets, several interfaces): all yes → yes, all no → no. */
function combineAcross(matches: Match[]): Match {
  if (matches.every((match) => match === 'yes')) return 'yes';
  if (matches.every((match) => match === 'no')) return 'no';
  return 'maybe';
}

/** Across the conditions of one rule: any no → no, any maybe → maybe. */
function combineAll(matches: Match[]): Match {
  if (matches.includes('no')) return 'no';
  if (matches.includes('maybe')) return 'maybe';
  return 'yes';
}

function negate(match: Match): Match {
  return match === 'yes' ? 'no' : match === 'no' ? 'yes' : 'maybe';
}

function parsePortNumber(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

/** `22`, `8000:9000` (iptables, ufw) or `8000-9000` (firewalld). */
function parsePortSpec(text: string, rangeSeparator: ':' | '-'): PortSpec | undefined {
  const separator = text.indexOf(rangeSeparator);
  if (separator < 0) return parsePortNumber(text);
  const low = parsePortNumber(text.slice(0, separator));
  const high = parsePortNumber(text.slice(separator + 1));
  if (low === undefined || high === undefined || low > high) return undefined;
  return [low, high];
}

/** `80,443,8000:9000`; undefined if any element is not a port or range. */
function parsePortList(text: string): PortSpec[] | undefined {
  const parts = text.split(',', 65);
  if (parts.length > 64) return undefined;
  const ports: PortSpec[] = [];
  for (const part of parts) {
    const port = parsePortSpec(part, ':');
    if (port === undefined) return undefined;
    ports.push(port);
  }
  return ports;
}

function portListContains(ports: PortSpec[], port: number): boolean {
  return ports.some((spec) => (typeof spec === 'number' ? spec === port : spec[0] <= port && port <= spec[1]));
}

function isValidPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

// ---------------------------------------------------------------------------------------------
// ufw

export type UfwAction = 'allow' | 'deny' | 'reject' | 'limit';
export type UfwDirection = 'in' | 'out' | 'fwd';

export interface UfwRule {
  /** The To column as printed, e.g. `11434/tcp`, `Anywhere on docker0`, `22/tcp (v6)`. */
  to: string;
  action: UfwAction;
  direction: UfwDirection;
  /** The From column as printed, without the `# comment` and `(log)` attributes. */
  from: string;
  /** Set when the rule names exactly one port. */
  port?: number;
  proto?: 'tcp' | 'udp';
  v6: boolean;
  /** `on IFACE` from the To column: the interface the packet must arrive on. */
  interface?: string;
  /** The line as printed, trailing padding removed. */
  raw: string;
  /** Every port and range named in To (`80,443/tcp`, `8433:8443/tcp`); absent when the rule covers every port. */
  ports?: PortSpec[];
  /** Destination address in To (`192.168.50.250 80/tcp`); absent for Anywhere. */
  toAddress?: string;
  /** Source address in From; absent for Anywhere. */
  fromAddress?: string;
  /** A source port or app in From, which this reader does not evaluate. */
  fromExtra?: string;
  /** Application profile (`OpenSSH`, `Nginx Full`); `ufw status` without `verbose` prints only its name, not its ports. */
  app?: string;
  comment?: string;
}

export interface UfwStatus {
  active: boolean;
  defaultIncoming?: 'allow' | 'deny' | 'reject';
  /** The `Default: …` line, kept to quote as the deciding rule. */
  defaultLine?: string;
  rules: UfwRule[];
}

const UFW_ACTIONS: Record<string, UfwAction> = { ALLOW: 'allow', DENY: 'deny', REJECT: 'reject', LIMIT: 'limit' };
const UFW_DIRECTIONS: Record<string, UfwDirection> = { IN: 'in', OUT: 'out', FWD: 'fwd' };

interface Token {
  text: string;
  start: number;
  end: number;
}

function spaceTokens(line: string): Token[] {
  const tokens: Token[] = [];
  let index = 0;
  while (index < line.length) {
    while (index < line.length && (line[index] === ' ' || line[index] === '\t')) index++;
    const start = index;
    while (index < line.length && line[index] !== ' ' && line[index] !== '\t') index++;
    if (index > start) tokens.push({ text: line.slice(start, index), start, end: index });
  }
  return tokens;
}

/** `Anywhere`, `Anywhere/tcp`, `172.17.0.0/16`, `192.168.50.0/24/tcp` (ufw appends the protocol to a bare address). */
function ufwAddress(token: string): { address?: string; proto?: 'tcp' | 'udp' } | undefined {
  let text = token;
  let proto: 'tcp' | 'udp' | undefined;
  if (text.endsWith('/tcp') || text.endsWith('/udp')) {
    proto = text.slice(-3) as 'tcp' | 'udp';
    text = text.slice(0, -4);
  }
  if (text === 'Anywhere') return { proto };
  if (parseIpv4Cidr(text) || looksLikeIpv6(text)) return { address: text, proto };
  return undefined;
}

/** `11434/tcp`, `443`, `8433:8443/tcp`, `80,443/tcp`. */
function ufwPorts(token: string): { ports: PortSpec[]; proto?: 'tcp' | 'udp' } | undefined {
  let text = token;
  let proto: 'tcp' | 'udp' | undefined;
  if (text.endsWith('/tcp') || text.endsWith('/udp')) {
    proto = text.slice(-3) as 'tcp' | 'udp';
    text = text.slice(0, -4);
  }
  const ports = parsePortList(text);
  return ports ? { ports, proto } : undefined;
}

/** Splits `… (app) (v6) on IFACE` off a To or From column. */
function ufwColumnParts(column: string): { base: string; v6: boolean; interface?: string; annotation?: string } {
  let text = column.trim();
  let iface: string | undefined;
  const on = text.lastIndexOf(' on ');
  if (on >= 0 && !text.slice(on + 4).includes(' ')) {
    iface = text.slice(on + 4);
    text = text.slice(0, on).trim();
  }
  const v6 = text.includes('(v6)');
  const paren = text.indexOf(' (');
  const annotation = paren >= 0 ? text.slice(paren + 1) : undefined;
  const base = paren >= 0 ? text.slice(0, paren).trim() : text;
  return { base, v6, interface: iface, annotation };
}

function parseUfwRuleLine(line: string): UfwRule | undefined {
  // `ufw status numbered` prefixes `[ 1] `; the rest of the line has the same columns.
  const body = line.replace(/^\[\s{0,3}\d{1,5}\]\s/, '');
  const tokens = spaceTokens(body);
  let actionIndex = -1;
  for (let i = 1; i < tokens.length; i++) {
    if (UFW_ACTIONS[tokens[i]!.text] !== undefined) {
      actionIndex = i;
      break;
    }
  }
  if (actionIndex < 0) return undefined;
  const actionToken = tokens[actionIndex]!;
  const directionToken = tokens[actionIndex + 1];
  const direction = directionToken ? UFW_DIRECTIONS[directionToken.text] : undefined;
  const afterAction = direction ? directionToken!.end : actionToken.end;

  const to = body.slice(0, actionToken.start).trim();
  let rest = body.slice(afterAction).trim();
  let comment: string | undefined;
  const hash = rest.startsWith('# ') ? 0 : rest.indexOf(' # ');
  if (hash >= 0) {
    comment = rest.slice(hash + (hash === 0 ? 2 : 3)).trim();
    rest = rest.slice(0, hash).trim();
  }
  const from = rest.replace(/\s\((?:log|log-all|out)(?:, (?:log|log-all|out))?\)$/, '').trim();
  if (to === '' || from === '') return undefined;

  const rule: UfwRule = {
    to,
    action: UFW_ACTIONS[actionToken.text]!,
    direction: direction ?? 'in',
    from,
    v6: false,
    raw: line.trimEnd(),
  };
  if (comment !== undefined) rule.comment = comment;

  const toParts = ufwColumnParts(to);
  const fromParts = ufwColumnParts(from);
  rule.v6 = toParts.v6 || fromParts.v6;
  // For rules that are not routed, To names the incoming interface; From names the outgoing one.
  if (toParts.interface) rule.interface = toParts.interface;

  const toTokens = toParts.base.split(' ');
  let portToken: string | undefined;
  const firstAddress = ufwAddress(toTokens[0] ?? '');
  if (firstAddress) {
    if (firstAddress.address) rule.toAddress = firstAddress.address;
    if (firstAddress.proto) rule.proto = firstAddress.proto;
    portToken = toTokens.length === 2 ? toTokens[1] : undefined;
    if (toTokens.length > 2) rule.app = toParts.base;
  } else if (toTokens.length === 1) {
    portToken = toTokens[0];
  }
  if (portToken !== undefined) {
    const ports = ufwPorts(portToken);
    if (ports) {
      rule.ports = ports.ports;
      if (ports.proto) rule.proto = ports.proto;
    } else {
      rule.app = toParts.base;
    }
  } else if (!firstAddress) {
    rule.app = toParts.base;
  }
  // Verbose output names the profile after the ports: `22/tcp (OpenSSH)`.
  if (!rule.app && toParts.annotation && toParts.annotation !== '(v6)') {
    rule.app = toParts.annotation.replace(/^\(/, '').replace(/ \(v6\)\)$|\)$/, '');
  }
  if (rule.ports?.length === 1 && typeof rule.ports[0] === 'number') rule.port = rule.ports[0];

  const fromTokens = fromParts.base.split(' ');
  const source = ufwAddress(fromTokens[0] ?? '');
  if (source) {
    if (source.address) rule.fromAddress = source.address;
    if (source.proto && !rule.proto) rule.proto = source.proto;
    if (fromTokens.length > 1) rule.fromExtra = fromTokens.slice(1).join(' ');
  } else {
    rule.fromExtra = fromParts.base;
  }
  return rule;
}

/**
 * `ufw status`, `ufw status verbose` or `ufw status numbered` (run with LC_ALL=C: the header lines
 * are translated, e.g. `Stato: attivo`, while the rule rows are not).
 */
export function parseUfwStatus(text: string): UfwStatus {
  let statusWord: string | undefined;
  let defaultIncoming: UfwStatus['defaultIncoming'];
  let defaultLine: string | undefined;
  const rules: UfwRule[] = [];
  for (const line of boundedLines(text)) {
    if (line.length > MAX_LINE_LENGTH) continue;
    const trimmed = line.trim();
    if (trimmed === '') continue;
    const status = /^Status:\s*([a-z]+)/.exec(trimmed);
    if (status) {
      statusWord = status[1];
      continue;
    }
    const policy = /^Default:\s*(allow|deny|reject)\s\(incoming\)/.exec(trimmed);
    if (policy) {
      defaultIncoming = policy[1] as UfwStatus['defaultIncoming'];
      defaultLine = trimmed;
      continue;
    }
    const rule = parseUfwRuleLine(line);
    if (rule) rules.push(rule);
  }
  // ufw prints rule rows only while it is active, so rows without a (readable) Status line mean active.
  const active = statusWord === 'active' || (statusWord === undefined && rules.length > 0);
  const result: UfwStatus = { active, rules };
  if (defaultIncoming) result.defaultIncoming = defaultIncoming;
  if (defaultLine) result.defaultLine = defaultLine;
  return result;
}

// ---------------------------------------------------------------------------------------------
// firewalld

export interface FirewalldActiveZone {
  zone: string;
  interfaces: string[];
  sources: string[];
  /** firewalld ≥ 1.x marks the default zone `public (default)` in --get-active-zones. */
  isDefault: boolean;
}

export interface FirewalldPort {
  port: number | [number, number];
  proto: string;
}

export interface FirewalldZone {
  zone: string;
  /** `default`, `ACCEPT`, `DROP`, `%%REJECT%%`; '' if the text had no target line. */
  target: string;
  interfaces: string[];
  sources: string[];
  services: string[];
  ports: FirewalldPort[];
  /** `protocols: tcp` opens every TCP port. */
  protocols: string[];
  richRules: string[];
  isDefault: boolean;
  active: boolean;
}

function words(value: string): string[] {
  return value.split(/[ \t]+/, 4096).filter((word) => word !== '');
}

/** `firewall-cmd --get-active-zones`: a zone name, then indented `interfaces:` / `sources:` lines. */
export function parseFirewalldActiveZones(text: string): FirewalldActiveZone[] {
  const zones: FirewalldActiveZone[] = [];
  let current: FirewalldActiveZone | undefined;
  for (const line of boundedLines(text)) {
    if (line.length > MAX_LINE_LENGTH || line.trim() === '') continue;
    const binding = /^\s*(interfaces|sources):(.*)$/.exec(line);
    if (binding) {
      if (current) current[binding[1] as 'interfaces' | 'sources'].push(...words(binding[2] ?? ''));
      continue;
    }
    const header = /^([A-Za-z0-9_.-]{1,64})(?:\s+\(([a-z, ]{0,40})\))?\s*$/.exec(line);
    if (header) {
      current = { zone: header[1]!, interfaces: [], sources: [], isDefault: (header[2] ?? '').includes('default') };
      zones.push(current);
    }
  }
  return zones;
}

function parseFirewalldPorts(value: string): FirewalldPort[] {
  const ports: FirewalldPort[] = [];
  for (const word of words(value)) {
    const slash = word.indexOf('/');
    if (slash <= 0) continue;
    const port = parsePortSpec(word.slice(0, slash), '-');
    if (port !== undefined) ports.push({ port, proto: word.slice(slash + 1) });
  }
  return ports;
}

/** A zone as its header line starts it: nothing listed yet, neither default nor active. */
function emptyZone(zone: string): FirewalldZone {
  return { zone, target: '', interfaces: [], sources: [], services: [], ports: [], protocols: [], richRules: [], isDefault: false, active: false };
}

/** `firewall-cmd --list-all-zones` (or several --list-all outputs): every zone block in the text. */
export function parseFirewalldZones(text: string): FirewalldZone[] {
  const zones: FirewalldZone[] = [];
  let current: FirewalldZone | undefined;
  let lastKey = '';
  for (const line of boundedLines(text)) {
    if (line.length > MAX_LINE_LENGTH || line.trim() === '') continue;
    const indented = line.startsWith(' ') || line.startsWith('\t');
    if (!indented) {
      const header = /^([A-Za-z0-9_.-]{1,64})(?:\s+\(([a-z, ]{0,40})\))?\s*$/.exec(line);
      if (header) {
        const flags = header[2] ?? '';
        current = { ...emptyZone(header[1]!), isDefault: flags.includes('default'), active: flags.includes('active') };
        zones.push(current);
        lastKey = '';
      }
      continue;
    }
    if (!current) continue;
    const setting = /^\s+([a-z][a-z -]{0,30}):(?:[ \t](.*))?$/.exec(line);
    if (setting && !line.trimStart().startsWith('rule ')) {
      lastKey = setting[1]!;
      const value = setting[2] ?? '';
      if (lastKey === 'target') current.target = value.trim();
      else if (lastKey === 'interfaces') current.interfaces = words(value);
      else if (lastKey === 'sources') current.sources = words(value);
      else if (lastKey === 'services') current.services = words(value);
      else if (lastKey === 'ports') current.ports = parseFirewalldPorts(value);
      else if (lastKey === 'protocols') current.protocols = words(value);
      else if (lastKey === 'rich rules' && value.trim() !== '') current.richRules.push(value.trim());
      continue;
    }
    // firewalld prints each rich rule on its own tab-indented line under `rich rules:`.
    if (lastKey === 'rich rules') current.richRules.push(line.trim());
  }
  return zones;
}

/**
 * `firewall-cmd --list-all` / `--info-zone`: the first zone block in the text. Text without a zone
 * header gives a zone named '' that the verdict ignores.
 */
export function parseFirewalldZone(text: string): FirewalldZone {
  return parseFirewalldZones(text)[0] ?? emptyZone('');
}

// ---------------------------------------------------------------------------------------------
// iptables

export interface IptablesTcpFlags {
  mask: string[];
  set: string[];
}

export interface IptablesRule {
  /** `filter` for `iptables -S`; the `*table` section for iptables-save. */
  table: string;
  chain: string;
  source?: string;
  destination?: string;
  inInterface?: string;
  outInterface?: string;
  protocol?: string;
  /** `--dport N` → [N]; `--dport A:B` and `--dports a,b,c:d` keep ranges as [A, B]. */
  dports?: PortSpec[];
  sports?: PortSpec[];
  /** `-m state --state` / `-m conntrack --ctstate`. */
  states?: string[];
  tcpFlags?: IptablesTcpFlags;
  /** `-m addrtype --dst-type` / `--src-type`. */
  dstType?: string;
  srcType?: string;
  /** `-m policy --pol none|ipsec`. */
  ipsecPolicy?: string;
  /** `-m pkttype --pkt-type`. */
  packetType?: string;
  /** Options written after `!`, e.g. ['-s', '--dport']. */
  negated: string[];
  /** Match options this reader does not evaluate (`--match-set`, `--rcheck`, …): they make the rule uncertain. */
  unevaluated: string[];
  /** '' when the rule has no -j/-g (it only counts packets). */
  target: string;
  /** `-g CHAIN`: when CHAIN ends, processing returns past this chain too. */
  goto: boolean;
  raw: string;
}

export interface IptablesRuleset {
  /** Built-in chain policies of the filter table, e.g. { INPUT: 'DROP' }. */
  policies: Record<string, string>;
  /** Chains of the filter table that the text declares (`-N` or `:CHAIN`), built-in ones included. */
  chains: string[];
  rules: IptablesRule[];
}

/** iptables-save quotes arguments that contain spaces: `--comment "a b"`, `--log-prefix "[UFW BLOCK] "`. */
function shellTokens(line: string): string[] {
  const tokens: string[] = [];
  let current = '';
  let inToken = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const char = line[i]!;
    if (quoted) {
      if (char === '\\' && i + 1 < line.length) current += line[++i];
      else if (char === '"') quoted = false;
      else current += char;
    } else if (char === '"') {
      quoted = true;
      inToken = true;
    } else if (char === ' ' || char === '\t') {
      if (inToken) tokens.push(current);
      current = '';
      inToken = false;
    } else {
      current += char;
      inToken = true;
    }
  }
  if (inToken) tokens.push(current);
  return tokens;
}

/** Options that take one value and do not change whether a new connection's first packet matches. */
const NEUTRAL_OPTIONS = new Set([
  '--comment',
  '--limit',
  '--limit-burst',
  '--hashlimit-upto',
  '--hashlimit-burst',
  '--hashlimit-mode',
  '--hashlimit-name',
  '--hashlimit-htable-expire',
  '--hashlimit-htable-size',
  '--hashlimit-htable-max',
  '--hashlimit-srcmask',
  '--hashlimit-dstmask',
  '--dir',
  '--proto',
  '--icmp-type',
]);

/** Options that take one value and set one field of the rule, with the short name `negated` records. */
type ValueField = 'source' | 'destination' | 'inInterface' | 'outInterface' | 'protocol' | 'dstType' | 'srcType' | 'ipsecPolicy' | 'packetType';
const VALUE_OPTIONS = new Map<string, { field: ValueField; name: string }>([
  ...['-s', '--source', '--src'].map((option) => [option, { field: 'source', name: '-s' }] as const),
  ...['-d', '--destination', '--dst'].map((option) => [option, { field: 'destination', name: '-d' }] as const),
  ...['-i', '--in-interface'].map((option) => [option, { field: 'inInterface', name: '-i' }] as const),
  ...['-o', '--out-interface'].map((option) => [option, { field: 'outInterface', name: '-o' }] as const),
  ...['-p', '--protocol'].map((option) => [option, { field: 'protocol', name: '-p' }] as const),
  ['--dst-type', { field: 'dstType', name: '--dst-type' }],
  ['--src-type', { field: 'srcType', name: '--src-type' }],
  ['--pol', { field: 'ipsecPolicy', name: '--pol' }],
  ['--pkt-type', { field: 'packetType', name: '--pkt-type' }],
]);
const DPORT_OPTIONS = new Set(['--dport', '--destination-port', '--dports', '--destination-ports']);
const SPORT_OPTIONS = new Set(['--sport', '--source-port', '--sports', '--source-ports']);

function parseIptablesRuleTokens(tokens: string[], table: string, raw: string): IptablesRule | undefined {
  let index = 0;
  // iptables-save -c prefixes counters: `[12:345] -A INPUT …`.
  if (tokens[0]?.startsWith('[')) index++;
  if (tokens[index] !== '-A' && tokens[index] !== '--append') return undefined;
  const chain = tokens[index + 1];
  if (!chain) return undefined;
  const rule: IptablesRule = { table, chain, negated: [], unevaluated: [], target: '', goto: false, raw: raw.trim() };
  let negateNext = false;
  let afterTarget = false;
  for (index += 2; index < tokens.length; index++) {
    const option = tokens[index]!;
    if (option === '!') {
      negateNext = true;
      continue;
    }
    const value = tokens[index + 1] ?? '';
    const negated = negateNext;
    negateNext = false;
    const note = (name: string) => {
      if (negated) rule.negated.push(name);
    };
    const valueOption = VALUE_OPTIONS.get(option);
    if (valueOption) {
      // A protocol matches whatever its case (-p TCP is tcp); the rest is kept as printed.
      rule[valueOption.field] = valueOption.field === 'protocol' ? value.toLowerCase() : value;
      note(valueOption.name);
      index++;
    } else if (DPORT_OPTIONS.has(option)) {
      const ports = parsePortList(value);
      if (ports) rule.dports = ports;
      else rule.unevaluated.push(option);
      note('--dport');
      index++;
    } else if (SPORT_OPTIONS.has(option)) {
      const ports = parsePortList(value);
      if (ports) rule.sports = ports;
      else rule.unevaluated.push(option);
      note('--sport');
      index++;
    } else if (option === '--state' || option === '--ctstate') {
      rule.states = value.split(',', 16);
      note('--state');
      index++;
    } else if (option === '--tcp-flags') {
      rule.tcpFlags = { mask: value.split(',', 16), set: (tokens[index + 2] ?? '').split(',', 16) };
      note('--tcp-flags');
      index += 2;
    } else if (option === '--syn') {
      rule.tcpFlags = { mask: ['FIN', 'SYN', 'RST', 'ACK'], set: ['SYN'] };
      note('--tcp-flags');
    } else if (option === '-m' || option === '--match') {
      index++;
    } else if (option === '-j' || option === '--jump' || option === '-g' || option === '--goto') {
      rule.target = value;
      rule.goto = option === '-g' || option === '--goto';
      afterTarget = true;
      index++;
    } else if (NEUTRAL_OPTIONS.has(option)) {
      index++;
    } else if (option.startsWith('-')) {
      // Options after the target are the target's own (--reject-with, --log-prefix): they match nothing.
      if (!afterTarget) rule.unevaluated.push(option);
      while (index + 1 < tokens.length && !tokens[index + 1]!.startsWith('-') && tokens[index + 1] !== '!') index++;
    }
  }
  return rule;
}

/** `iptables -S [CHAIN]` or `iptables-save`. Only the filter table is kept: nat and mangle also have an INPUT chain. */
export function parseIptablesRules(text: string): IptablesRuleset {
  const policies: Record<string, string> = {};
  const chains: string[] = [];
  const rules: IptablesRule[] = [];
  let table = 'filter';
  for (const line of boundedLines(text)) {
    if (line.length > MAX_LINE_LENGTH) continue;
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed === 'COMMIT') continue;
    if (trimmed.startsWith('*')) {
      table = trimmed.slice(1).trim();
      continue;
    }
    if (table !== 'filter') continue;
    if (trimmed.startsWith(':')) {
      // iptables-save: `:INPUT DROP [0:0]` for a built-in chain, `:name - [0:0]` for a user chain.
      const [name, policy] = trimmed.slice(1).split(' ', 2);
      if (!name) continue;
      if (!chains.includes(name)) chains.push(name);
      if (policy && policy !== '-') policies[name] = policy;
      continue;
    }
    const tokens = shellTokens(trimmed);
    if (tokens[0] === '-P' && tokens[1] && tokens[2]) {
      policies[tokens[1]] = tokens[2];
      if (!chains.includes(tokens[1])) chains.push(tokens[1]);
      continue;
    }
    if (tokens[0] === '-N' && tokens[1]) {
      if (!chains.includes(tokens[1])) chains.push(tokens[1]);
      continue;
    }
    const rule = parseIptablesRuleTokens(tokens, table, trimmed);
    if (rule) rules.push(rule);
  }
  return { policies, chains, rules };
}

/** The first packet of the connection: TCP, a SYN, conntrack state NEW, unicast, to a local address. */
function iptablesRuleMatch(rule: IptablesRule, port: number, subnets: string[], interfaces: string[]): Match {
  const conditions: Match[] = [];
  const flip = (name: string, match: Match) => (rule.negated.includes(name) ? negate(match) : match);
  if (rule.protocol !== undefined) {
    const isTcp = ['tcp', '6', 'all', '0'].includes(rule.protocol);
    conditions.push(flip('-p', isTcp ? 'yes' : 'no'));
  }
  if (rule.source !== undefined) conditions.push(flip('-s', sourceMatch(rule.source, subnets)));
  if (rule.destination !== undefined) conditions.push(flip('-d', destinationMatch(rule.destination)));
  if (rule.inInterface !== undefined) conditions.push(flip('-i', interfaceMatch(rule.inInterface, interfaces)));
  // A packet on its way in to this host has no outgoing interface.
  if (rule.outInterface !== undefined) conditions.push(flip('-o', 'no'));
  if (rule.dports !== undefined) conditions.push(flip('--dport', portListContains(rule.dports, port) ? 'yes' : 'no'));
  if (rule.sports !== undefined) {
    // The client's port is an ephemeral one (1024–65535); which one is not known.
    const coversEphemeral = rule.sports.some((spec) => typeof spec !== 'number' && spec[0] <= 1024 && spec[1] >= 65535);
    const belowEphemeral = rule.sports.every((spec) => (typeof spec === 'number' ? spec : spec[1]) < 1024);
    conditions.push(flip('--sport', coversEphemeral ? 'yes' : belowEphemeral ? 'no' : 'maybe'));
  }
  if (rule.states !== undefined) conditions.push(flip('--state', rule.states.includes('NEW') ? 'yes' : 'no'));
  if (rule.tcpFlags !== undefined) {
    const all = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'];
    const expand = (flags: string[]) => (flags.includes('ALL') ? all : flags.includes('NONE') ? [] : flags);
    const mask = expand(rule.tcpFlags.mask);
    const set = expand(rule.tcpFlags.set);
    const synOnly = mask.every((flag) => (flag === 'SYN') === set.includes(flag));
    conditions.push(flip('--tcp-flags', synOnly ? 'yes' : 'no'));
  }
  if (rule.dstType !== undefined) {
    const local = rule.dstType.split(',').includes('LOCAL') || rule.dstType.split(',').includes('UNICAST');
    conditions.push(flip('--dst-type', local ? 'yes' : 'no'));
  }
  if (rule.srcType !== undefined) conditions.push(flip('--src-type', rule.srcType.split(',').includes('UNICAST') ? 'yes' : 'no'));
  if (rule.ipsecPolicy !== undefined) conditions.push(flip('--pol', rule.ipsecPolicy === 'none' ? 'yes' : 'no'));
  if (rule.packetType !== undefined) conditions.push(flip('--pkt-type', rule.packetType === 'unicast' ? 'yes' : 'no'));
  if (rule.unevaluated.length > 0) conditions.push('maybe');
  return combineAll(conditions);
}

const TERMINAL_TARGETS: Record<string, Outcome> = { ACCEPT: 'allowed', DROP: 'blocked', REJECT: 'blocked' };

interface Decision {
  outcome: Outcome | 'unknown';
  rule: string;
  zone?: string;
}

interface ChainResult {
  decisions: Decision[];
  /** Some packet can reach the end of the chain (or RETURN from it). */
  fallsThrough: boolean;
}

interface IptablesWalk {
  chains: Map<string, IptablesRule[]>;
  declared: Set<string>;
  port: number;
  subnets: string[];
  interfaces: string[];
  visits: number;
  unresolved: Set<string>;
}

/**
 * Every outcome a packet described by (subnets, interfaces, port) can meet in this chain. A rule that
 * matches only some of those packets ('maybe') contributes its outcome and lets the walk go on.
 */
function walkChain(walk: IptablesWalk, chain: string, depth: number): ChainResult {
  const decisions: Decision[] = [];
  for (const rule of walk.chains.get(chain) ?? []) {
    if (++walk.visits > MAX_RULE_VISITS) return { decisions: [...decisions, { outcome: 'unknown', rule: 'ruleset too large to follow' }], fallsThrough: false };
    const match = iptablesRuleMatch(rule, walk.port, walk.subnets, walk.interfaces);
    if (match === 'no') continue;
    const always = match === 'yes';
    const terminal = TERMINAL_TARGETS[rule.target];
    if (terminal) {
      decisions.push({ outcome: terminal, rule: rule.raw });
      if (always) return { decisions, fallsThrough: false };
      continue;
    }
    if (rule.target === 'RETURN') {
      if (always) return { decisions, fallsThrough: true };
      continue;
    }
    if (walk.chains.has(rule.target) || walk.declared.has(rule.target)) {
      if (depth >= MAX_CHAIN_DEPTH) {
        decisions.push({ outcome: 'unknown', rule: `${rule.raw} (chains nested too deep to follow)` });
        continue;
      }
      const inner = walkChain(walk, rule.target, depth + 1);
      decisions.push(...inner.decisions);
      if (always && (!inner.fallsThrough || rule.goto)) return { decisions, fallsThrough: inner.fallsThrough };
      continue;
    }
    // Extension targets (LOG, MARK, NFLOG …) decide nothing, so the walk goes on. A lower-case or hyphenated
    // name is a chain the text does not show (`iptables -S INPUT` prints one chain); it is passed over too,
    // but named in the verdict's note, because that chain may well have decided.
    if (rule.target !== '' && !/^[A-Z]+$/.test(rule.target)) walk.unresolved.add(rule.target);
  }
  return { decisions, fallsThrough: true };
}

function iptablesDecisions(ruleset: IptablesRuleset, port: number, subnets: string[], interfaces: string[]): { decisions: Decision[]; unresolved: string[] } {
  const chains = new Map<string, IptablesRule[]>();
  for (const rule of ruleset.rules) {
    if (rule.table !== 'filter') continue;
    const list = chains.get(rule.chain) ?? [];
    list.push(rule);
    chains.set(rule.chain, list);
  }
  const walk: IptablesWalk = { chains, declared: new Set(ruleset.chains), port, subnets, interfaces, visits: 0, unresolved: new Set() };
  if (!chains.has('INPUT') && ruleset.policies.INPUT === undefined) {
    return { decisions: [{ outcome: 'unknown', rule: 'no INPUT chain in the iptables text' }], unresolved: [] };
  }
  const result = walkChain(walk, 'INPUT', 0);
  const decisions = [...result.decisions];
  if (result.fallsThrough) {
    const policy = ruleset.policies.INPUT;
    const outcome = policy === undefined ? 'unknown' : policy === 'ACCEPT' ? 'allowed' : 'blocked';
    decisions.push({ outcome, rule: policy === undefined ? 'no INPUT policy in the iptables text' : `default policy ${policy}` });
  }
  return { decisions, unresolved: [...walk.unresolved] };
}

// ---------------------------------------------------------------------------------------------
// Verdict

export interface FirewallVerdictInput {
  ufw?: UfwStatus;
  firewalld?: { zones: FirewalldZone[]; activeZones: FirewalldActiveZone[] };
  iptables?: IptablesRuleset;
  port: number;
  /** CIDRs of the Docker networks, e.g. 172.17.0.0/16. */
  subnets: string[];
  /** Their bridge interfaces, e.g. docker0, br-3cdb1cb92a36. */
  interfaces: string[];
}

export interface FirewallVerdict {
  verdict: 'blocked' | 'allowed' | 'unknown';
  by?: 'ufw' | 'firewalld' | 'iptables';
  /** The deciding rule as printed, or `default policy DROP` / the ufw `Default:` line / a firewalld zone summary. */
  rule?: string;
  /** A command that opens the port for the first subnet; also given for 'unknown' when blocking is one of the possibilities. */
  fix?: string;
  /** Why the verdict is less certain than it looks, e.g. chains the text jumps to but does not show. */
  note?: string;
}

function combineDecisions(decisions: Decision[]): { verdict: FirewallVerdict['verdict']; decision?: Decision; blocking?: Decision } {
  const first = decisions[0];
  if (!first) return { verdict: 'unknown' };
  const blocking = decisions.find((decision) => decision.outcome === 'blocked');
  if (decisions.every((decision) => decision.outcome === first.outcome) && first.outcome !== 'unknown') {
    return { verdict: first.outcome, decision: first, blocking };
  }
  // Different packets of the described set would meet different fates, or one fate cannot be read.
  // The first of them in rule order is the one to look at.
  return { verdict: 'unknown', decision: first, blocking };
}

const SAFE_CIDR = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\/\d{1,2}$/;
const SAFE_INTERFACE = /^[A-Za-z0-9_.+-]{1,15}$/;
const SAFE_ZONE = /^[A-Za-z0-9_.-]{1,64}$/;

/** The fix is printed for a person to paste into a root shell, so nothing from the input reaches it unchecked. */
function fixCommand(by: 'ufw' | 'firewalld' | 'iptables', port: number, subnets: string[], interfaces: string[], zone?: string): string | undefined {
  if (!isValidPort(port)) return undefined;
  const subnet = subnets.find((candidate) => SAFE_CIDR.test(candidate) && parseIpv4Cidr(candidate));
  const iface = interfaces.find((candidate) => SAFE_INTERFACE.test(candidate));
  if (by === 'firewalld') {
    if (!zone || !SAFE_ZONE.test(zone)) return undefined;
    return `sudo firewall-cmd --permanent --zone=${zone} --add-port=${port}/tcp && sudo firewall-cmd --reload`;
  }
  if (by === 'ufw') {
    if (subnet) return `sudo ufw allow from ${subnet} to any port ${port} proto tcp`;
    if (iface) return `sudo ufw allow in on ${iface} to any port ${port} proto tcp`;
    return undefined;
  }
  if (subnet) return `sudo iptables -I INPUT -s ${subnet} -p tcp --dport ${port} -j ACCEPT`;
  if (iface) return `sudo iptables -I INPUT -i ${iface} -p tcp --dport ${port} -j ACCEPT`;
  return undefined;
}

function ufwRuleMatch(rule: UfwRule, port: number, subnets: string[], interfaces: string[]): Match {
  const conditions: Match[] = [];
  if (rule.proto !== undefined) conditions.push(rule.proto === 'tcp' ? 'yes' : 'no');
  if (rule.ports !== undefined) conditions.push(portListContains(rule.ports, port) ? 'yes' : 'no');
  // Without `verbose`, a profile rule shows only its name; stock profiles are for other services' well-known ports.
  else if (rule.app !== undefined) conditions.push('no');
  if (rule.toAddress !== undefined) conditions.push(destinationMatch(rule.toAddress));
  if (rule.fromAddress !== undefined) conditions.push(sourceMatch(rule.fromAddress, subnets));
  if (rule.fromExtra !== undefined) conditions.push('maybe');
  if (rule.interface !== undefined) conditions.push(interfaceMatch(rule.interface, interfaces));
  return combineAll(conditions);
}

function ufwDecisions(status: UfwStatus, port: number, subnets: string[], interfaces: string[], iptables?: IptablesRuleset): Decision[] {
  const decisions: Decision[] = [];
  for (const rule of status.rules) {
    // ufw's v6 rules go to ip6tables; its OUT and FWD rules are other chains than INPUT.
    if (rule.v6 || rule.direction !== 'in') continue;
    const match = ufwRuleMatch(rule, port, subnets, interfaces);
    if (match === 'no') continue;
    decisions.push({ outcome: rule.action === 'allow' || rule.action === 'limit' ? 'allowed' : 'blocked', rule: rule.raw });
    if (match === 'yes') return decisions;
  }
  if (status.defaultIncoming && status.defaultLine) {
    decisions.push({ outcome: status.defaultIncoming === 'allow' ? 'allowed' : 'blocked', rule: status.defaultLine });
  } else if (iptables?.policies.INPUT) {
    // Plain `ufw status` omits the default; ufw applies it as the INPUT chain policy.
    const policy = iptables.policies.INPUT;
    decisions.push({ outcome: policy === 'ACCEPT' ? 'allowed' : 'blocked', rule: `default policy ${policy}` });
  } else {
    decisions.push({ outcome: 'unknown', rule: 'ufw default incoming policy not found (read it with `LC_ALL=C ufw status verbose`)' });
  }
  return decisions;
}

// Ports of firewalld's stock services, so a zone's `services:` list can be read without the service files.
const FIREWALLD_SERVICE_PORTS: Record<string, FirewalldPort[]> = {
  ssh: [{ port: 22, proto: 'tcp' }],
  http: [{ port: 80, proto: 'tcp' }],
  https: [{ port: 443, proto: 'tcp' }],
  http3: [{ port: 443, proto: 'udp' }],
  'dhcpv6-client': [{ port: 546, proto: 'udp' }],
  dhcp: [{ port: 67, proto: 'udp' }],
  dns: [
    { port: 53, proto: 'tcp' },
    { port: 53, proto: 'udp' },
  ],
  cockpit: [{ port: 9090, proto: 'tcp' }],
  mdns: [{ port: 5353, proto: 'udp' }],
  'samba-client': [
    { port: 137, proto: 'udp' },
    { port: 138, proto: 'udp' },
  ],
  ntp: [{ port: 123, proto: 'udp' }],
  mysql: [{ port: 3306, proto: 'tcp' }],
  postgresql: [{ port: 5432, proto: 'tcp' }],
  smtp: [{ port: 25, proto: 'tcp' }],
  ftp: [{ port: 21, proto: 'tcp' }],
};

function firewalldPortsContain(ports: FirewalldPort[], port: number): boolean {
  return ports.some((entry) => entry.proto === 'tcp' && portListContains([entry.port], port));
}

function firewalldServiceMatch(service: string, port: number): Match {
  const ports = FIREWALLD_SERVICE_PORTS[service];
  if (!ports) return 'maybe';
  return firewalldPortsContain(ports, port) ? 'yes' : 'no';
}

function attribute(tokens: string[], name: string, from: number): string | undefined {
  const token = tokens[from];
  if (!token || !token.startsWith(`${name}=`)) return undefined;
  return token.slice(name.length + 1).replace(/^["']|["']$/g, '');
}

/** A rich rule such as `rule family="ipv4" source address="192.168.222.1" port port="80" protocol="tcp" reject`. */
function richRuleMatch(text: string, port: number, subnets: string[]): { match: Match; action?: 'accept' | 'reject' | 'drop' } {
  const tokens = shellTokens(text.replace(/'/g, '"'));
  const conditions: Match[] = [];
  let action: 'accept' | 'reject' | 'drop' | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.startsWith('family=')) {
      if (attribute(tokens, 'family', i) === 'ipv6') conditions.push('no');
    } else if (token === 'source' || token === 'destination') {
      const inverted = tokens[i + 1] === 'not';
      if (inverted) i++;
      const address = attribute(tokens, 'address', i + 1);
      const match: Match = address === undefined ? 'maybe' : token === 'source' ? sourceMatch(address, subnets) : destinationMatch(address);
      conditions.push(inverted ? negate(match) : match);
      if (address !== undefined) i++;
    } else if (token === 'port') {
      const portValue = attribute(tokens, 'port', i + 1);
      const protocol = attribute(tokens, 'protocol', i + 2) ?? attribute(tokens, 'protocol', i + 1);
      const spec = portValue === undefined ? undefined : parsePortSpec(portValue, '-');
      conditions.push(spec === undefined ? 'maybe' : protocol === 'tcp' && portListContains([spec], port) ? 'yes' : 'no');
    } else if (token === 'service') {
      const name = attribute(tokens, 'name', i + 1);
      conditions.push(name === undefined ? 'maybe' : firewalldServiceMatch(name, port));
    } else if (token === 'protocol') {
      conditions.push(attribute(tokens, 'value', i + 1) === 'tcp' ? 'yes' : 'no');
    } else if (token === 'forward-port' || token === 'icmp-block' || token === 'icmp-type' || token === 'masquerade') {
      conditions.push('no');
    } else if (token === 'source-port' || token.startsWith('priority=') || token === 'ipset') {
      conditions.push('maybe');
    } else if (token === 'accept' || token === 'reject' || token === 'drop') {
      action = token;
    }
  }
  if (!action) return { match: 'no' };
  return { match: combineAll(conditions), action };
}

function zoneSummary(zone: FirewalldZone, port: number): string {
  return `zone ${zone.zone} (target: ${zone.target || 'unknown'}) does not list ${port}/tcp in ports or services`;
}

/** firewalld's order inside a zone: deny rich rules, then allow (rich rules, services, ports), then the target. */
function zoneDecisions(zone: FirewalldZone, port: number, subnets: string[]): Decision[] {
  const decisions: Decision[] = [];
  const rich = zone.richRules.map((text) => ({ text, ...richRuleMatch(text, port, subnets) }));
  for (const rule of rich) {
    if (rule.match === 'no' || rule.action === 'accept') continue;
    decisions.push({ outcome: 'blocked', rule: `zone ${zone.zone}: ${rule.text}`, zone: zone.zone });
    if (rule.match === 'yes') return decisions;
  }
  if (zone.target === 'ACCEPT') {
    decisions.push({ outcome: 'allowed', rule: `zone ${zone.zone}: target ACCEPT`, zone: zone.zone });
    return decisions;
  }
  if (firewalldPortsContain(zone.ports, port)) {
    decisions.push({ outcome: 'allowed', rule: `zone ${zone.zone}: ports ${port}/tcp`, zone: zone.zone });
    return decisions;
  }
  if (zone.protocols.includes('tcp')) {
    decisions.push({ outcome: 'allowed', rule: `zone ${zone.zone}: protocols tcp`, zone: zone.zone });
    return decisions;
  }
  const allowers: { match: Match; rule: string }[] = [
    ...zone.services.map((service) => ({ match: firewalldServiceMatch(service, port), rule: `zone ${zone.zone}: service ${service}` })),
    ...rich.filter((rule) => rule.action === 'accept').map((rule) => ({ match: rule.match, rule: `zone ${zone.zone}: ${rule.text}` })),
  ];
  for (const allower of allowers) {
    if (allower.match === 'no') continue;
    decisions.push({ outcome: 'allowed', rule: allower.rule, zone: zone.zone });
    if (allower.match === 'yes') return decisions;
  }
  if (zone.target === '') {
    decisions.push({ outcome: 'unknown', rule: `zone ${zone.zone}: no target in the text`, zone: zone.zone });
  } else {
    // `default` rejects what the zone does not allow, like %%REJECT%%; DROP drops it.
    decisions.push({ outcome: 'blocked', rule: zoneSummary(zone, port), zone: zone.zone });
  }
  return decisions;
}

function firewalldDecisions(input: NonNullable<FirewallVerdictInput['firewalld']>, port: number, subnets: string[], interfaces: string[]): Decision[] {
  const zonesByName = new Map<string, FirewalldZone>();
  const bindings = new Map<string, { interfaces: Set<string>; sources: Set<string> }>();
  let defaultZone: string | undefined;
  const bind = (zone: string, zoneInterfaces: string[], sources: string[], isDefault: boolean) => {
    const binding = bindings.get(zone) ?? { interfaces: new Set<string>(), sources: new Set<string>() };
    zoneInterfaces.forEach((name) => binding.interfaces.add(name));
    sources.forEach((source) => binding.sources.add(source));
    bindings.set(zone, binding);
    if (isDefault) defaultZone = zone;
  };
  for (const zone of input.zones) {
    if (zone.zone === '') continue;
    zonesByName.set(zone.zone, zone);
    bind(zone.zone, zone.interfaces, zone.sources, zone.isDefault);
  }
  for (const zone of input.activeZones) bind(zone.zone, zone.interfaces, zone.sources, zone.isDefault);

  const decisionsForZone = (name: string | undefined, why: string): Decision[] => {
    if (name === undefined) return [{ outcome: 'unknown', rule: `no zone is bound to ${why} and the default zone is not shown` }];
    const zone = zonesByName.get(name);
    if (!zone) return [{ outcome: 'unknown', rule: `zone ${name} (bound to ${why}) has no --list-all output here`, zone: name }];
    return zoneDecisions(zone, port, subnets);
  };

  const decisions: Decision[] = [];
  const subnetList = subnets.length > 0 ? subnets : [undefined];
  const interfaceList = interfaces.length > 0 ? interfaces : [undefined];
  let paths = 0;
  for (const subnet of subnetList) {
    for (const iface of interfaceList) {
      if (++paths > MAX_PATHS) break;
      // firewalld picks a zone by source address first, then by incoming interface, then the default zone.
      let bySource: string | undefined;
      for (const [zone, binding] of bindings) {
        for (const source of binding.sources) {
          const match = subnet === undefined ? 'maybe' : sourceMatch(source, [subnet]);
          if (match === 'yes' && !bySource) bySource = zone;
          else if (match === 'maybe') decisions.push(...decisionsForZone(zone, `source ${source}`));
        }
      }
      if (bySource) {
        decisions.push(...decisionsForZone(bySource, `a source containing ${subnet}`));
        continue;
      }
      if (iface === undefined) {
        decisions.push({ outcome: 'unknown', rule: 'no Docker interface given to look up its zone' });
        continue;
      }
      let byInterface: string | undefined;
      for (const [zone, binding] of bindings) if (binding.interfaces.has(iface)) byInterface = byInterface ?? zone;
      decisions.push(...decisionsForZone(byInterface ?? defaultZone, byInterface ? `interface ${iface}` : `${iface} (default zone)`));
    }
  }
  return decisions;
}

/**
 * Would a new TCP connection from a container reach the host on `port`? ufw, when active, is asked
 * first: its rules are the iptables chains it generated, and its own view names them the way the fix
 * will. Otherwise firewalld, when its zones are given. Otherwise the raw iptables INPUT chain.
 */
export function firewallVerdict(input: FirewallVerdictInput): FirewallVerdict {
  const { port, subnets, interfaces } = input;
  let by: FirewallVerdict['by'];
  let decisions: Decision[] = [];
  let note: string | undefined;
  if (input.ufw?.active) {
    by = 'ufw';
    decisions = ufwDecisions(input.ufw, port, subnets, interfaces, input.iptables);
  } else if (input.firewalld && (input.firewalld.zones.length > 0 || input.firewalld.activeZones.length > 0)) {
    by = 'firewalld';
    decisions = firewalldDecisions(input.firewalld, port, subnets, interfaces);
  } else if (input.iptables) {
    by = 'iptables';
    const walked = iptablesDecisions(input.iptables, port, subnets, interfaces);
    decisions = walked.decisions;
    if (walked.unresolved.length > 0) {
      note = `jumps to chains not in the text were passed over: ${walked.unresolved.slice(0, 10).join(', ')}`;
    }
  } else {
    return { verdict: 'unknown' };
  }
  const combined = combineDecisions(decisions);
  const result: FirewallVerdict = { verdict: combined.verdict, by };
  if (combined.decision) result.rule = combined.decision.rule;
  if (combined.blocking && combined.verdict !== 'allowed') {
    const fix = fixCommand(by, port, subnets, interfaces, combined.blocking.zone);
    if (fix) result.fix = fix;
  }
  if (note) result.note = note;
  return result;
}
