/**
 * ollama.relay — the bridge-only relay (Linux, rootful native Docker): stigmer-ollama-relay.socket
 * listens on the address Docker's host-gateway resolves to and systemd-socket-proxyd forwards each
 * connection to a loopback-only Ollama (relay-and-pull.md Part A). Pure on Facts.relay, which is
 * read back from the machine (the units on disk, `systemctl is-active`, iptables), so every value
 * in it is untrusted: it is shown escaped in messages and quoted in every command.
 *
 * The failure classes, worst first: the port clash (Linux refuses 0.0.0.0:P while a socket listens
 * on <gateway>:P, and the reverse: A2), a socket that does not listen, Ollama not answering behind
 * it (containers then see ECONNRESET), a relay on an address that is no longer the gateway (a
 * changed `bip`), a protection that is configured but not in force, and a Docker network that the
 * protection does not let in.
 */
import type { RelayFacts } from '../../platforms/types.ts';
import type { Facts } from '../facts.ts';
import { describeListeners, describeProcess, type Listener } from '../listeners.ts';
import { bindScope, formatBindAddress, parseOllamaHost, type BindAddress } from '../ollama-host.ts';
import { concludedProbe } from '../plan.ts';
import { hasControl } from '../text.ts';
import { installationCommands, SETUP_COMMAND, shellWord } from './fixes.ts';
import type { Check, Finding } from './types.ts';

/** The iptables chain of the 'iptables' protection (ISSUE14-DESIGN §2): accepts lo, docker0 and br-+, drops the rest. */
export const RELAY_CHAIN = 'STIGMER-OLLAMA-RELAY';
/** The interfaces that chain accepts, as iptables matches them (`br-+` is every name starting br-). */
const CHAIN_INTERFACES = ['lo', 'docker0', 'br-+'];
/** Setup run again with --relay renders the units for the gateway, the subnets and the protection of now. */
export const RELAY_SETUP_COMMAND = `${SETUP_COMMAND} --relay`;
export const UNDO_COMMAND = 'npx stigmer-setup undo';

/** Lists read from the machine can be huge: a message names this many and counts the rest. */
const NAMED = 5;
/** And the coverage test looks at no more than this many entries of each list. */
const MAX_ENTRIES = 100_000;

type Installed = NonNullable<RelayFacts['installed']>;
/** `exposed`: the LAN measurably reaches Ollama; a failure even while the runner's route works. */
type Issue = Required<Pick<Finding, 'status' | 'message' | 'why' | 'fix'>> & { exposed?: boolean };

/** A value read back from the machine, for a message: escaped when it holds a control character, and bounded. */
export function shown(value: string, max = 120): string {
  const text = hasControl(value) ? JSON.stringify(value) : value;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function shownAddress(address: BindAddress): string {
  return shown(formatBindAddress(address));
}

function named<T>(items: T[], describe: (item: T) => string): string {
  const first = items.slice(0, NAMED).map(describe).join(', ');
  return items.length > NAMED ? `${first} and ${items.length - NAMED} more` : first;
}

/** The unit names systemctl and journalctl take: the files' own names. */
function unitNames(facts: Facts, installed: Installed): { socket: string; service: string } {
  return { socket: facts.support.path.basename(installed.socketPath), service: facts.support.path.basename(installed.servicePath) };
}

/** The exact journalctl command for both relay units (system units: reading their journal takes root or the adm group). */
export function relayLogsCommand(facts: Facts, installed: Installed): string {
  const units = unitNames(facts, installed);
  return `sudo journalctl -u ${shellWord(facts, units.socket)} -u ${shellWord(facts, units.service)} -n 50 --no-pager`;
}

/** Starting the socket again runs its ExecStartPre lines (the iptables chain) before it binds. */
export function relayRestartCommand(facts: Facts, installed: Installed): string {
  return `sudo systemctl restart ${shellWord(facts, unitNames(facts, installed).socket)}`;
}

/**
 * Whether a listener on Ollama's port is the relay's own socket rather than a server: systemd (PID
 * 1) holds it, and systemd-socket-proxyd too once the first connection started the service. Left
 * among the listeners, it reads as a second server on the gateway address (ollama.conflict would
 * offer to kill it) and as Ollama listening beyond loopback. Pure, for gatherFacts to filter with.
 */
export function isRelayListener(listener: Listener, relay: RelayFacts | undefined): boolean {
  const installed = relay?.installed;
  const listen = installed?.listen;
  if (!installed || !listen || listener.port !== listen.port || listener.address !== listen.host) return false;
  const owner = listener.owner;
  // An owner we can't see (not root: PID 1's sockets are hidden) on the relay's own address, while its socket is active, is the relay: the kernel gives one address and port to one socket.
  if (!owner) return installed.socketState === 'active';
  const units = [installed.socketPath, installed.servicePath].map((file) => file.slice(file.lastIndexOf('/') + 1));
  return owner.pid === 1 || (owner.unit !== undefined && units.includes(owner.unit)) || /(^|\/)systemd-socket-proxyd$/.test(owner.argv[0] ?? '');
}

// ---------------------------------------------------------------------------------------------
// IPv4 ranges, for "is this bridge subnet inside IPAddressAllow=": systemd takes addresses with an
// optional prefix length and the names any, localhost, link-local and multicast
// (systemd.resource-control(5)); only IPv4 matters here, the relay listens on an IPv4 gateway.

interface Range {
  first: number;
  last: number;
}

const SYMBOLIC: Record<string, Range[]> = {
  any: [{ first: 0, last: 0xffffffff }],
  localhost: [{ first: 0x7f000000, last: 0x7fffffff }],
  'link-local': [{ first: 0xa9fe0000, last: 0xa9feffff }],
  multicast: [{ first: 0xe0000000, last: 0xefffffff }],
};

/** `172.17.0.0/16` or a bare address (a /32) as the range it covers; anything else (IPv6 included) is undefined. */
function ipv4Range(text: string): Range | undefined {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(text);
  if (!match) return undefined;
  const octets = match.slice(1, 5).map(Number);
  if (octets.some((octet) => octet > 255)) return undefined;
  const prefix = match[5] === undefined ? 32 : Number(match[5]);
  if (prefix > 32) return undefined;
  const address = octets.reduce((sum, octet) => sum * 256 + octet, 0);
  const size = 2 ** (32 - prefix);
  const first = Math.floor(address / size) * size;
  return { first, last: first + size - 1 };
}

/** The allowed ranges, merged and sorted, so each subnet is tested in log time whatever the list's size. */
function allowedRanges(allowed: string[]): Range[] {
  const ranges = allowed
    .slice(0, MAX_ENTRIES)
    .flatMap((entry) => SYMBOLIC[entry.trim()] ?? [ipv4Range(entry.trim())].filter((range): range is Range => range !== undefined))
    .sort((a, b) => a.first - b.first);
  const merged: Range[] = [];
  for (const range of ranges) {
    const last = merged.at(-1);
    if (last && range.first <= last.last + 1) last.last = Math.max(last.last, range.last);
    else merged.push({ ...range });
  }
  return merged;
}

function covered(subnet: Range, ranges: Range[]): boolean {
  let low = 0;
  let high = ranges.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const range = ranges[middle] as Range;
    if (range.last < subnet.first) low = middle + 1;
    else if (range.first > subnet.first) high = middle - 1;
    else return range.last >= subnet.last;
  }
  return false;
}

/** Whether iptables' `-i` match of the chain takes this interface name. */
function chainAccepts(name: string): boolean {
  return CHAIN_INTERFACES.some((pattern) => (pattern.endsWith('+') ? name.startsWith(pattern.slice(0, -1)) : name === pattern));
}

// ---------------------------------------------------------------------------------------------

/** How to end a port clash: keep one of the two. Setup's --host removes the relay before it binds Ollama wide. */
function clashFix(facts: Facts, wanted: BindAddress, keepRelay: string): string {
  const host = wanted.host === '' ? '0.0.0.0' : wanted.host;
  const wide = formatBindAddress({ host, port: wanted.port });
  return `Keep one of the two. Remove the relay: ${UNDO_COMMAND}, or bind Ollama there instead: ${SETUP_COMMAND} --host ${shellWord(facts, wide)} (it removes the relay first). Or keep the relay: ${keepRelay}`;
}

/** Keep the relay by putting Ollama back on loopback, where the relay forwards to. */
function keepRelayFix(facts: Facts, listen: BindAddress): string {
  const from = facts.detection?.configuredIn ? ` in ${shown(facts.detection.configuredIn)}` : '';
  return `set OLLAMA_HOST back to 127.0.0.1:${listen.port} (or remove it)${from}, then: ${installationCommands(facts).restart}`;
}

const CLASH_WHY = 'Linux refuses a socket on 0.0.0.0 (or [::]) for a port while another listens on one address with that port, and the reverse, SO_REUSEADDR or not: the relay and a wide bind of the same port exclude each other.';

/** Listeners that hold what the relay needs: the wildcard or its own address, on its port, other than itself. */
function holders(listeners: Listener[] | undefined, listen: BindAddress): Listener[] {
  return (listeners ?? []).filter((listener) => listener.port === listen.port && (listener.scope === 'wildcard' || listener.address === listen.host));
}

/** Ollama's configured OLLAMA_HOST, when it wants what the relay holds: the wildcard, or the relay's own address, on its port. */
function configuredClash(facts: Facts, listen: BindAddress): BindAddress | undefined {
  const raw = facts.detection?.configuredHost;
  if (raw === undefined) return undefined;
  const configured = parseOllamaHost(raw);
  if (configured.port !== listen.port) return undefined;
  return bindScope(configured.host) === 'wildcard' || configured.host === listen.host ? configured : undefined;
}

function protectionText(relay: RelayFacts, installed: Installed): string {
  if (installed.protection === 'ip-address-allow') {
    const state =
      installed.protectionActive === true
        ? ", measured in force (a connection from 127.0.0.1, which it does not allow, was dropped)"
        : relay.bpfFirewall
          ? ", which systemd's BPF firewall should enforce (not measured)"
          : '';
    return `IPAddressAllow=${installed.allowed.length ? named(installed.allowed, (entry) => shown(entry, 60)) : '(none)'} on the socket${state}`;
  }
  if (installed.protection === 'iptables') {
    const state = installed.protectionActive === true ? 'in force' : installed.protectionActive === false ? 'not in force' : 'whether it is in force could not be read (iptables needs root)';
    return `the iptables chain ${RELAY_CHAIN}, which accepts ${CHAIN_INTERFACES.join(', ')} only (${state})`;
  }
  return 'nothing';
}

/** What keeps everything but Docker's bridges out, and whether it does: each problem as an issue. */
function protectionIssues(facts: Facts, relay: RelayFacts, installed: Installed, listen: BindAddress): Issue[] {
  const issues: Issue[] = [];
  const bridges = relay.bridges.slice(0, MAX_ENTRIES);
  const neighbour = `a machine on your network that routes ${shown(listen.host)} through this host reaches Ollama through the relay, with no authentication`;
  if (installed.protection === 'none') {
    issues.push({
      status: 'warn',
      message: `The relay lets in anyone who reaches ${shownAddress(listen)}: its units have neither IPAddressAllow= nor the iptables chain ${RELAY_CHAIN}.`,
      why: `Linux delivers a packet for the gateway address whatever interface it arrives on, so ${neighbour}.`,
      fix: `${RELAY_SETUP_COMMAND}   # renders the relay again, with the protection this machine supports`,
    });
  } else if (installed.protection === 'ip-address-allow') {
    if (installed.protectionActive === false && installed.socketState === 'active') {
      issues.push({
        status: 'fail',
        // Measured open to the LAN: a working route for the runner doesn't make that a warning.
        exposed: true,
        message: `The relay's IPAddressAllow= is not in force, measured: a connection to ${shownAddress(listen)} from 127.0.0.1, which it does not allow, got in. systemd starts the socket unfiltered when the kernel lacks cgroup BPF (CONFIG_CGROUP_BPF) or systemd its support, and says so once in its log.`,
        why: `Nothing else keeps the LAN out: ${neighbour}.`,
        fix: `${RELAY_SETUP_COMMAND}   # switches the relay to its iptables protection (an INPUT rule for exactly ${shown(formatBindAddress(listen))})`,
      });
    } else if (!relay.bpfFirewall && installed.protectionActive !== true) {
      issues.push({
        status: 'warn',
        message: "The relay's IPAddressAllow= is not in force: systemd enforces it only on a unified cgroup v2 hierarchy (its BPF firewall), and this machine has none, so it ignores the setting.",
        why: `Nothing else keeps the LAN out: ${neighbour}.`,
        fix: `${RELAY_SETUP_COMMAND}   # switches the relay to its iptables protection (an INPUT rule for exactly ${shown(formatBindAddress(listen))})`,
      });
    }
    const ranges = allowedRanges(installed.allowed);
    const missing = bridges.filter((bridge) => {
      const range = ipv4Range(bridge.subnet);
      return range !== undefined && !covered(range, ranges);
    });
    if (missing.length) {
      issues.push({
        status: 'warn',
        message: `Docker network${missing.length === 1 ? '' : 's'} ${named(missing, (bridge) => `${shown(bridge.name, 60)} (${shown(bridge.subnet, 40)})`)} ${missing.length === 1 ? 'is' : 'are'} not in the relay's IPAddressAllow=, so ${missing.length === 1 ? 'its' : 'their'} containers can't reach Ollama through it (their connections time out).`,
        why: 'The relay lets in only the subnets it was set up with; a network created later (a new compose project) has its own subnet.',
        fix: `${RELAY_SETUP_COMMAND}   # adds every current bridge subnet to IPAddressAllow=`,
      });
    }
  } else if (installed.protection === 'iptables') {
    if (installed.protectionActive === false) {
      // With ufw (or another default-deny INPUT), our chain's ACCEPT is what lets the bridge in;
      // without it the container's connection times out, so the route is broken, not only exposed.
      const dropped = facts.firewall?.verdict === 'blocked' || ('outcome' in facts.containerProbe && facts.containerProbe.outcome === 'timeout');
      const by = facts.firewall?.verdict === 'blocked' ? facts.firewall.by ?? 'the firewall' : 'the firewall';
      issues.push({
        status: dropped ? 'fail' : 'warn',
        message: `The relay's iptables chain ${RELAY_CHAIN} is not in INPUT for ${shownAddress(listen)} now: something removed it after the relay started (\`iptables -F\`, or a firewall tool that rewrites the whole ruleset).`,
        why: dropped
          ? `${by} drops the bridge traffic that chain accepted, so containers time out reaching the relay; and ${neighbour}.`
          : `The chain is what keeps the LAN out: without it, ${neighbour}.`,
        fix: `${relayRestartCommand(facts, installed)}   # its ExecStartPre lines add the chain again; check: sudo iptables -w -C INPUT -d ${shellWord(facts, `${listen.host}/32`)} -p tcp --dport ${listen.port} -j ${RELAY_CHAIN}`,
      });
    }
    const outside = bridges.filter((bridge) => bridge.interface !== undefined && ipv4Range(bridge.subnet) !== undefined && !chainAccepts(bridge.interface));
    if (outside.length) {
      const first = outside[0] as RelayFacts['bridges'][number];
      issues.push({
        status: 'warn',
        message: `Docker network${outside.length === 1 ? '' : 's'} ${named(outside, (bridge) => `${shown(bridge.name, 60)} (interface ${shown(bridge.interface ?? '', 40)})`)} ${outside.length === 1 ? 'is' : 'are'} not let in by the relay's chain ${RELAY_CHAIN}, which accepts ${CHAIN_INTERFACES.join(', ')} only: ${outside.length === 1 ? 'its' : 'their'} containers' connections are dropped.`,
        why: 'A network created with its own bridge name (com.docker.network.bridge.name) does not match br-+.',
        fix: `sudo iptables -w -I ${RELAY_CHAIN} 1 -i ${shellWord(facts, first.interface ?? '')} -j ACCEPT   # until the relay restarts; recreating the network without a custom bridge name lasts`,
      });
    }
  }
  return issues;
}

export const relayCheck: Check = {
  id: 'ollama.relay',
  diagnose(facts) {
    const relay = facts.relay;
    if (!relay) {
      // Whether the platform has a relay at all is the registry's to say, not a platform name's.
      return { status: 'skip', message: facts.support.relay ? 'The relay was not looked at on this run.' : `There is no bridge-only relay on ${facts.platform} (it exists on Linux only).` };
    }
    const installed = relay.installed;
    // Nothing of ours is installed, so nothing of ours can be broken: a healthy machine without a
    // relay stays all ✓ (a skip would read as a check that could not run).
    if (!installed) return { status: 'ok', message: 'No stigmer-setup relay is installed (nothing of the relay to check).' };

    const units = unitNames(facts, installed);
    const logs = relayLogsCommand(facts, installed);
    const restart = relayRestartCommand(facts, installed);
    const listen = installed.listen;
    if (!listen) {
      return {
        status: 'fail',
        message: `The relay's socket unit ${shown(installed.socketPath)} has no ListenStream= address stigmer-setup can read.`,
        why: 'It was edited by hand, or damaged: where it listens, and what it keeps out, are unknown.',
        fix: `${UNDO_COMMAND}   # removes the relay; then, to set it up again: ${RELAY_SETUP_COMMAND}`,
      };
    }
    const where = shownAddress(listen);
    const issues: Issue[] = [];
    const gateway = relay.gateway?.address;
    const state = installed.socketState;
    // systemctl could not say (not root, no bus): a listener on the relay's address says it listens.
    const seen = facts.listeners?.some((listener) => listener.port === listen.port && listener.address === listen.host);
    const listening = state === 'active' || (state === undefined && seen === true);
    const unknownState = state === undefined && seen !== true;

    if (!relay.systemd) {
      issues.push({
        status: 'fail',
        message: `The relay's units are on disk (${shown(units.socket)}, ${shown(units.service)}), but systemd does not run this machine, so nothing listens for them.`,
        why: 'Containers that reach Ollama at host.docker.internal are refused.',
        fix: `${UNDO_COMMAND}   # removes the relay; on a machine without systemd as PID 1, bind Ollama for containers instead: ${SETUP_COMMAND} --host ${shellWord(facts, `0.0.0.0:${listen.port}`)}`,
      });
    } else if (!listening && !unknownState) {
      const others = holders(facts.listeners, listen);
      if (others.length) {
        const owner = others.find((listener) => listener.owner)?.owner;
        issues.push({
          status: 'fail',
          message: `Port clash: the relay can't listen on ${where} (${shown(units.socket)} is ${shown(state ?? 'not active')}): ${describeListeners(others)}${owner ? ` is held by ${describeProcess(owner)}` : ' is taken'}.`,
          why: `${CLASH_WHY} Containers that reach Ollama at host.docker.internal (${shown(gateway ?? listen.host)}) get nothing from the relay.`,
          fix: clashFix(
            facts,
            { host: others[0]?.scope === 'wildcard' ? (others[0] as Listener).address : '0.0.0.0', port: listen.port },
            // Ollama itself took the port (configured wide): it goes back to loopback, it isn't stopped.
            configuredClash(facts, listen) ? `${keepRelayFix(facts, listen)}, then: ${restart}` : `stop ${owner ? `pid ${owner.pid}` : 'what holds the port'}, then: ${restart}`,
          ),
        });
      } else {
        issues.push({
          status: 'fail',
          message: `The relay is installed, but ${shown(units.socket)} is ${shown(state ?? 'not active')}: nothing listens on ${where}.`,
          why: `Containers that reach Ollama at host.docker.internal (${shown(gateway ?? listen.host)}) are refused.`,
          fix: `${logs}   # says why it stopped; then: ${restart}`,
        });
      }
    }

    if (listening) {
      const clash = configuredClash(facts, listen);
      if (clash) {
        const wanted = shownAddress(clash);
        const from = facts.detection?.configuredIn ? ` in ${shown(facts.detection.configuredIn)}` : '';
        const keep = keepRelayFix(facts, listen);
        issues.push(
          facts.hostProbe.ok
            ? {
                status: 'warn',
                message: `Port clash: Ollama is configured for ${wanted}${from}, which it can't bind while the relay listens on ${where}; the Ollama running now started before that, and its next restart fails.`,
                why: `${CLASH_WHY} Ollama then stops with "listen tcp ${wanted}: bind: address already in use".`,
                fix: clashFix(facts, clash, keep),
              }
            : {
                status: 'fail',
                message: `Port clash: Ollama is configured for ${wanted}${from}, which it can't bind while the relay listens on ${where}, so Ollama does not start.`,
                why: `${CLASH_WHY} Ollama's log says "listen tcp ${wanted}: bind: address already in use".`,
                fix: clashFix(facts, clash, keep),
              },
        );
      }
      if (!clash && installed.target && relay.foreignHostStatus === undefined && !facts.hostProbe.ok) {
        issues.push({
          status: 'fail',
          message: `Ollama is not running behind the relay: nothing answers on ${shownAddress(installed.target)}, where it forwards.`,
          why: 'The relay accepts each connection and, with nothing to forward to, resets it: containers see ECONNRESET ("connection reset by peer"), not "connection refused".',
          fix: installationCommands(facts).start,
        });
      }
      if (gateway !== undefined && listen.host !== gateway) {
        issues.push({
          status: 'warn',
          message: `The relay listens on ${where}, but Docker's host-gateway is now ${shown(gateway)} (from ${shown(relay.gateway?.from ?? 'docker')}): containers reach host.docker.internal there, where nothing forwards to Ollama.`,
          why: "Docker's default bridge got another address (a new `bip` or `host-gateway-ips` in /etc/docker/daemon.json, or a pool that collided with a VPN).",
          fix: `${RELAY_SETUP_COMMAND}   # renders the relay again for ${shown(gateway)}`,
        });
      }
      if (installed.target && bindScope(installed.target.host) !== 'loopback') {
        issues.push({
          status: 'warn',
          message: `The relay forwards to ${shownAddress(installed.target)}, which is not a loopback address.`,
          why: 'The relay exists so that Ollama can stay on 127.0.0.1; its service unit was edited.',
          fix: `${RELAY_SETUP_COMMAND}   # renders the relay again`,
        });
      }
      if (relay.foreignHostStatus !== undefined && relay.foreignHostStatus !== 403 && relay.foreignHostStatus < 400) {
        issues.push({
          status: 'warn',
          message: `Ollama on 127.0.0.1:${listen.port} accepts a foreign Host header (HTTP ${relay.foreignHostStatus}): it is not loopback-only, so the relay does not keep it off your network.`,
          why: "Ollama's Host guard is on only while it listens on loopback (or it is older than 0.1.29, which had none); see ollama.exposure for where it answers.",
          fix: `set OLLAMA_HOST back to 127.0.0.1:${listen.port}, then: ${installationCommands(facts).restart}`,
        });
      }
    }
    issues.push(...protectionIssues(facts, relay, installed, listen));

    if (issues.length === 0) {
      const via = gateway === undefined ? ` (Docker's gateway could not be read${relay.gatewayProblem ? `: ${shown(relay.gatewayProblem)}` : ''}, so whether it is still the gateway is unknown)` : ` (Docker's host-gateway, from ${shown(relay.gateway?.from ?? 'docker')})`;
      const target = installed.target ? ` and forwards to ${shownAddress(installed.target)}` : '';
      const ollama = relay.foreignHostStatus === 403 ? ', where Ollama is loopback-only (a foreign Host header gets 403)' : '';
      const how = unknownState ? 'is installed for' : 'listens on';
      return { status: 'ok', message: `The relay ${how} ${where}${via}${target}${ollama}; it lets in Docker's bridges only: ${protectionText(relay, installed)}.` };
    }
    // A check fails only when the agent-runner can't use Ollama now: a dead relay while the
    // container reaches Ollama anyway (Ollama bound wide took the port first) is a conflict to
    // settle, not a broken route.
    // A measured hole (anyone on the LAN gets in) stays a failure.
    if (concludedProbe(facts)?.outcome === 'ok') for (const issue of issues) if (!issue.exposed) issue.status = 'warn';
    // One finding per check: the worst problem leads, the others follow it.
    const ordered = [...issues.filter((issue) => issue.status === 'fail'), ...issues.filter((issue) => issue.status === 'warn')];
    const [first, ...rest] = ordered as [Issue, ...Issue[]];
    const fixes = [first.fix, ...rest.map((issue) => issue.fix).filter((fix, index, all) => fix !== first.fix && all.indexOf(fix) === index)];
    return {
      status: first.status,
      message: [first.message, ...rest.map((issue) => `Also: ${issue.message}`)].join(' '),
      why: first.why,
      fix: fixes.join('; also: '),
    };
  },
};
