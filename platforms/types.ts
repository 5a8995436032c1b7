/**
 * The interfaces every platform implements. A strategy is one way Ollama can be installed (a
 * systemd unit, a snap, a Homebrew service, the desktop app, a hand-started `ollama serve`, …):
 *   detect   look at the machine (read-only) and say whether this is how Ollama runs here;
 *   plan     pure: from what detect found and what the user asked, the exact typed changes.
 *            `--dry-run` prints this list and apply runs it, so they can't disagree;
 *   restart  the action that makes Ollama read its configuration again. It belongs to the
 *            strategy, and undo finds it by the strategy's id, never by a command stored on disk.
 */
import type path from 'node:path';
import type { Context, ExecOptions, Platform } from '../scripts/context.ts';
import type { Listener } from '../scripts/listeners.ts';
import type { DockerNetwork } from '../scripts/parsers/docker-json.ts';
import { bindScope, type BindAddress, type BindScope } from '../scripts/ollama-host.ts';

/** A file written, replaced or removed. Contents are bytes: nothing is lost to an encoding. */
export interface FileChange {
  type: 'file';
  /** The path actually written, including any --root prefix. */
  path: string;
  action: 'create' | 'modify' | 'delete';
  /** Content before the change; undefined when the file does not exist yet. */
  before?: Buffer;
  /** Content after the change; undefined for a delete. */
  after?: Buffer;
  /** Mode and owner the file ends up with; for a modify, the ones it had. */
  mode: number;
  uid?: number;
  gid?: number;
  /** Written with elevation (sudo) because we can't write there ourselves. */
  privileged: boolean;
  /**
   * 'kept': a copy of a file the user edited after setup wrote it, saved next to the backups
   * before setup or undo replaces it. It is for the user, so undo does not remove it.
   */
  role?: 'kept';
  /**
   * Undo only: restore from this backup file with elevation, for a backup only root may read (so
   * `after` is unknown here and no diff can be shown).
   */
  restoreFrom?: string;
  /** Undo only: folders setup created for this file, removed (when empty) once it is deleted. */
  removeDirs?: string[];
}

export type SettingStoreId = 'snap' | 'launchd-env' | 'windows-user-env' | 'windows-service-env' | 'windows-nssm-env';

/** A named value in a store other than a file we own: `snap set`, `launchctl setenv`, … */
export interface SettingChange {
  type: 'setting';
  store: SettingStoreId;
  key: string;
  /** undefined: the key was not set. */
  before?: string;
  /** undefined: remove the key. */
  after?: string;
  privileged: boolean;
  /** What runs, as shown by --dry-run and --json (the value itself may travel in the environment). */
  argv: string[];
}

/** Make Ollama read its configuration again: the strategy's own action. */
export interface RestartChange {
  type: 'restart';
  strategy: string;
  /** The commands it runs, in order, elevation prefix included where needed. */
  steps: string[][];
  privileged: boolean;
  /**
   * The job file the restart reloads, for a strategy that restarts by file (launchd's bootout and
   * bootstrap of one plist). The undo record keeps it as data, checked against writablePaths.
   */
  job?: string;
  /** The port the server is expected on, for a restart that waits until it is free. */
  port?: number;
}

/** What a strategy needs to build its restart, the same way for setup and for undo. */
export interface RestartContext {
  elevate: string[];
  /** The environment (Windows: LOCALAPPDATA, where the app is). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Our user id (launchd's gui/<uid> domain). */
  uid?: number;
  job?: string;
  port?: number;
  /** Built for undo: the files are back as before setup (for a restart whose steps depend on that, shown as they will run). */
  undo?: boolean;
}

export type Change = FileChange | SettingChange | RestartChange;

export interface Blocker {
  message: string;
  fix: string;
}

export interface Plan {
  strategy: string;
  /** The bind address being configured, when the plan configures one. */
  target?: BindAddress;
  changes: Change[];
  /** One sentence on what the plan does, or why it does nothing. */
  summary: string;
  /** Things the plan can't fix by itself; setup prints them with their fix and exits 1. */
  blockers: Blocker[];
  warnings: string[];
}

/** What the caller asks for, already validated. */
export interface PlanRequest {
  target: BindAddress;
  /** The user named --host; otherwise the target is the default. */
  explicitHost: boolean;
  /** Prefix for privileged commands: [] when none is needed or possible, ['sudo'], ['sudo', '-n'] with --yes. */
  elevate: string[];
  /**
   * How far the running Ollama listens now ('none': nothing listens), when known. A configuration
   * that is right but not running yet needs a restart, not "nothing to do".
   */
  listening?: BindScope | 'none';
  /** --relay: the user asked for the bridge-only relay (Linux) rather than a wider bind. */
  relay?: boolean;
}

/** Whether the running Ollama already listens as the request wants (true when that is unknown). */
export function listensAsRequested(request: PlanRequest): boolean {
  return request.listening === undefined || request.listening === bindScope(request.target.host);
}

/** A finding about how one installation is configured, in the checks' own words. */
export interface Problem {
  status: 'warn' | 'fail';
  message: string;
  why: string;
  fix: string;
  /**
   * 'persistence': the setting works now but will not survive a restart, an upgrade or a reboot.
   * Those are ollama.persistence's findings; the rest are ollama.service-config's.
   */
  kind?: 'persistence';
}

export interface Detection {
  strategy: string;
  /** How Ollama runs here, for the report: "systemd unit ollama.service". */
  description: string;
  /** The OLLAMA_HOST value this installation starts Ollama with, if any. */
  configuredHost?: string;
  /** Where that value comes from, for the report. */
  configuredIn?: string;
  /** Problems with this installation's configuration that the service-config check reports. */
  problems?: Problem[];
  /** The pid of the server this installation runs, when known: tells which one owns the port. */
  serverPid?: number;
  /** OLLAMA_MODELS this installation starts Ollama with, when its configuration says (where a pull writes). */
  modelsDir?: string;
}

/** The commands a person runs for one installation; findings quote them verbatim. */
export interface InstallationCommands {
  start: string;
  restart: string;
  logs: string;
  /** How to make it listen where containers reach it. */
  widen: string;
  /** How to stop it for good, when another installation should own the port. */
  stop: string;
  /** How to update Ollama, where this installation has its own way (brew, snap); else the platform's. */
  upgrade?: string;
  /**
   * How to give Ollama's server a proxy for its downloads (HTTPS_PROXY), where this installation
   * has a place for it: the download runs inside the server, so the shell's proxy does not reach
   * it (ollama/ollama#3434, #6952). `http://PROXY:PORT` stands for the user's proxy.
   */
  proxy?: string;
  /** Where this installation keeps its models when OLLAMA_MODELS is not set (Ollama's FAQ). */
  modelsDir?: string;
}

/** What the host's firewall does to a TCP packet from a Docker bridge to Ollama's port. */
export interface FirewallFacts {
  verdict: 'blocked' | 'allowed' | 'unknown';
  /** The firewall that decided. */
  by?: string;
  /** The deciding rule as the tool prints it, or "default policy DROP". */
  rule?: string;
  /** The exact command that lets the bridge subnet in. */
  fix?: string;
  /** Firewalls present whose rules could not be read, with why ("iptables: needs root"). */
  unreadable: string[];
  /** The subnets the verdict is for. */
  subnets: string[];
}

/**
 * The bridge-only relay (Linux, rootful native Docker): systemd-socket-proxyd listening on the
 * address Docker's host-gateway resolves to and forwarding to a loopback-only Ollama
 * (relay-and-pull.md Part A). What is on the machine now, read-only; gathered on Linux only.
 */
export interface RelayFacts {
  /** Our units as they are on disk (each read back as untrusted), when any of them exists. */
  installed?: {
    socketPath: string;
    servicePath: string;
    /** ListenStream= of our socket unit, parsed; undefined when it can't be read as one address. */
    listen?: BindAddress;
    /** Where the service forwards to (its ExecStart's HOST:PORT), parsed. */
    target?: BindAddress;
    /** How connections that don't come from a Docker bridge are kept out, as the units say. */
    protection: 'ip-address-allow' | 'iptables' | 'none';
    /** IPAddressAllow= subnets of the socket unit (protection 'ip-address-allow'). */
    allowed: string[];
    /** `systemctl is-active` of the socket unit: 'active', 'inactive', 'failed', … */
    socketState?: string;
    /**
     * The protection is in force now, when that can be told (iptables: our chain is hooked into
     * INPUT and ends in DROP; IPAddressAllow=: measured, a connection from 127.0.0.1 is dropped).
     */
    protectionActive?: boolean;
    /** Each unit says it was written by stigmer-setup (its first line is our marker). */
    ours: boolean;
    /** Drop-ins systemd applies to our units (systemctl show DropInPaths, under --root), read with them. */
    dropIns?: string[];
    /** Why a unit can't be read as one of ours (a symlink, a FIFO, too large), when it can't. */
    problem?: string;
    /** The units' bytes, mode and owner as read (for the plan: what a change replaces). */
    socketFile?: { content: Buffer; mode: number; uid: number; gid: number };
    serviceFile?: { content: Buffer; mode: number; uid: number; gid: number };
  };
  /** Where our units are (with the --root prefix), installed or not. */
  paths: { socket: string; service: string };
  /** The IPv4 address Docker's host-gateway resolves to, and where that was read. */
  gateway?: { address: string; from: string; ipv6?: string };
  /** Why the gateway could not be read (bridge disabled, docker unreadable), when it couldn't. */
  gatewayProblem?: string;
  /** Every Docker bridge network's IPv4 subnet and interface (default and user-defined). */
  bridges: { name: string; subnet: string; interface?: string }[];
  /** A cgroup2 hierarchy is mounted, which systemd's IPAddressAllow= needs (not proof it is enforced: the installed relay's filter is measured). */
  bpfFirewall: boolean;
  /** Absolute path of iptables, when present. */
  iptables?: string;
  /** Absolute path of systemd-socket-proxyd (/usr/lib/systemd/ or /lib/systemd/), when present. */
  proxyd?: string;
  /** systemd runs here as PID 1 (systemctl can manage units). */
  systemd: boolean;
  /** ollama.service exists: the relay's service then Wants= and After= it. */
  ollamaUnit: boolean;
  /** What 127.0.0.1:<port> answered to a foreign Host header: 403 proves Ollama is loopback-only. */
  foreignHostStatus?: number;
  /** Whether the relay can be offered now, and if not, why (the plan says it). */
  preflight: { ok: true } | { ok: false; reason: string };
}

/** What the relay's inspection is given by gatherFacts. */
export interface RelayRequest extends Locations {
  port: number;
  listeners?: Listener[];
  /** A rootful engine on this machine's own kernel (not Desktop, not rootless). */
  nativeRootfulDocker: boolean;
  /** What the engine is, when it is not that one ("rootless Docker", "Docker Desktop"), for the preflight's reason. */
  engine?: string;
  /** Docker's bridge networks, when gatherFacts has read them already (else the inspection reads them). */
  networks?: DockerNetwork[];
  path: path.PlatformPath;
}

/** What the relay's plan is given by decidePlan. */
export interface RelayPlanRequest {
  port: number;
  elevate: string[];
  listeners?: Listener[];
  firewall?: FirewallFacts;
  /** The Ollama installation found (its pending unit edits would be loaded by the relay's daemon-reload). */
  detection?: Detection;
}

/** Where per-machine and per-user paths are, for the platform being configured. */
export interface Locations {
  /** Prefix for system paths (--root), '/' normally. */
  root: string;
  /** The user's home folder. */
  home: string;
  env: Readonly<Record<string, string | undefined>>;
}

export interface DetectOptions extends Locations {
  /** The port Ollama is expected on, to find who listens there. */
  port: number;
  /** Who listens on that port, read once for every strategy (undefined: can't tell here). */
  listeners?: Listener[];
  path: path.PlatformPath;
}

/** Runs one step of a change, elevation already in argv; throws a StepError naming the command. */
export type StepRunner = (argv: string[], options?: ExecOptions) => Promise<void>;

export interface Strategy<D extends Detection = Detection> {
  id: string;
  detect(ctx: Context, options: DetectOptions): Promise<D | undefined>;
  plan(detection: D, request: PlanRequest): Plan;
  commands(detection: D, port: number): InstallationCommands;
  /** Whether a configuration change outlasts a restart of the server and a reboot. */
  persistent: boolean;
  /**
   * Set when this strategy's restart never stops or starts Ollama (the relay's only converges its
   * own units): what undo's summary says it does instead. Messages then never claim Ollama was
   * restarted, and undo does not wait for it. Unset: "restart Ollama".
   */
  restartWithoutOllama?: string;
  /** The restart action, built the same way for setup and for undo (pure). */
  restartChange?(context: RestartContext): RestartChange;
  /**
   * Why restarting this installation now would not be safe (undo asks before it restarts), or
   * undefined. systemd: someone else's unit edit that our daemon-reload would load too.
   */
  restartBlocker?(ctx: Context, options: DetectOptions): Promise<{ message: string; fix: string } | undefined>;
  /**
   * Why this restart must not run now (it could not start Ollama again), or undefined. Asked
   * before setup or undo changes anything, so a refusal leaves everything as it was.
   */
  checkRestart?(ctx: Context, change: RestartChange): Promise<string | undefined>;
  /** Carry the restart out; the default runs its steps in order. May wait and retry. */
  restart?(ctx: Context, change: RestartChange, run: StepRunner): Promise<void>;
  /** Every file this strategy may write. An undo record that names another file is refused. */
  writablePaths?(locations: Locations, path: path.PlatformPath): string[];
  /**
   * Whether this installation still exists: false only when the tool says for sure that it is
   * gone (the unit is not found, the snap is not installed), undefined when that can't be told.
   * Undo after Ollama was uninstalled restores the files and settings and skips the restart.
   */
  installed?(ctx: Context): Promise<boolean | undefined>;
  /** Every setting this strategy may change. An undo record that names another is refused. */
  settings?: readonly { store: SettingStoreId; key: string }[];
}

/** How one kind of setting is read and written. */
export interface SettingStore {
  id: SettingStoreId;
  /** Whether writing it needs elevation on a machine where we are not root. */
  privileged: boolean;
  read(ctx: Context, key: string): Promise<string | undefined>;
  /** The command that sets `value` (or removes the key, for undefined), and its environment. */
  command(key: string, value: string | undefined): { argv: string[]; env?: Record<string, string | undefined> };
}

/** One installation found on the machine, with the strategy that manages it. */
export interface Installation {
  strategy: Strategy<any>;
  detection: Detection;
}

/** Everything that differs between operating systems, so nothing outside platforms/ branches on one. */
export interface PlatformSupport {
  id: Platform;
  /** Path rules of the target OS (path.win32 for Windows), whatever OS this runs on. */
  path: path.PlatformPath;
  /** Every way Ollama can be installed here, in the order preferred when several are present. */
  strategies: Strategy<any>[];
  /** Reported when no installation is found. */
  notInstalled: Strategy;
  /** How each kind of setting is read and written here; undo resolves stores by id through this. */
  settingStores: Partial<Record<SettingStoreId, SettingStore>>;
  /** The user's home folder. */
  home(env: Readonly<Record<string, string | undefined>>): string;
  /** Where backups, the undo record and the lock live. */
  stateDir(locations: Locations): string;
  /** Prefix for steps that need elevation ([] where none is needed or none exists). */
  elevation(ctx: Context, unattended: boolean): string[];
  /** Who listens on the port; undefined where this OS's listeners can't be read. */
  readListeners(ctx: Context, port: number): Promise<Listener[] | undefined>;
  /** Whether this runs inside WSL (a Linux VM on Windows, with its own networking rules). */
  isWsl(ctx: Context): Promise<boolean>;
  /** The OS and version, for the report ("macOS 14.5"), when the platform can tell. */
  describeHost?(ctx: Context): Promise<string | undefined>;
  /**
   * A reason to refuse before anything is looked at (exit 2), e.g. macOS run through sudo: its
   * changes are per-user, and root would read and write the wrong home.
   */
  preflight?(ctx: Context): string | undefined | Promise<string | undefined>;
  /**
   * One value as one word of the shell a user of this platform pastes our commands into (POSIX sh,
   * PowerShell: scripts/shell-quote.ts), for every machine-supplied value in a fix or a printed
   * command; throws UnquotableError for a control character.
   */
  quote(value: string): string;
  /**
   * How Stigmer's supervisor networks the agent-runner here (stigmer.md §1): on Linux it shares the
   * host's network (--network host); elsewhere it is bridged, and only "localhost" in the base URL
   * is rewritten to host.docker.internal.
   */
  stigmerRunnerNetwork: 'host' | 'bridge';
  /**
   * Containers run inside a VM the runtime manages (Docker Desktop, Podman machine, Colima): a
   * rootless engine in that VM says nothing about reaching this machine's loopback.
   */
  containersInVm: boolean;
  /** Read-only host audits for doctor; each is absent where the OS has no such thing or it isn't read. */
  audits?: {
    /** The firewall's verdict on bridge traffic to the port (Linux: ufw, firewalld, iptables). */
    firewall?(ctx: Context, request: { port: number; subnets: string[]; interfaces: string[] }): Promise<FirewallFacts>;
    /** net.ipv6.bindv6only: whether a [::] listener refuses IPv4. */
    bindV6Only?(ctx: Context): Promise<boolean | undefined>;
    /** A rootless dockerd's DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK, when it can be read. */
    rootlessHostLoopback?(ctx: Context): Promise<string | undefined>;
  };
  /**
   * The bridge-only relay, where this platform has one (Linux): read what is there, read-only.
   * `facts` is what gatherFacts knows by then (docker, listeners, the port).
   */
  relay?: {
    inspect(ctx: Context, request: RelayRequest): Promise<RelayFacts>;
    /** Pure: the plan that installs, repairs or keeps the relay, once its preflight has passed. */
    plan(relay: RelayFacts, request: RelayPlanRequest): Plan;
    /**
     * Pure: the changes that remove our relay before Ollama is bound to `target`, when that bind
     * would clash with the relay's socket (a wildcard, or the gateway address); undefined otherwise.
     */
    removal(relay: RelayFacts, request: { elevate: string[]; target: BindAddress }): { changes: Change[]; blocker?: Blocker } | undefined;
  };
  /** Commands that findings quote. */
  commands: {
    /** How to update Ollama when the installation has no way of its own. */
    upgrade: string;
    /** Find the program that holds the port. */
    portOwner(port: number): string;
    /** Let containers reach the port through the host's firewall. */
    firewallAllow(port: number): string;
    /** Keep a wildcard-bound Ollama away from the network while containers still reach it. */
    limitExposure(port: number): string;
  };
}
