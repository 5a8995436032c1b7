// Types for the test-facing API of sandbox.mjs (the macOS sandbox: shims for launchctl, brew,
// open, pkill, pgrep, lsof and docker on PATH, state in $STIGMER_MAC_SANDBOX). See the README at
// the top of sandbox.mjs for what each shim models and the choices made where docs are silent.

export type BrewLabel = 'homebrew.mxcl.ollama' | 'sh.brew.ollama';
/** 'none': docker installed, engine not running (Docker Desktop not started). */
export type DockerRuntime = 'forward-loopback' | 'no-forward' | 'none';

export interface SandboxOptions {
  /** Sandbox state folder (becomes STIGMER_MAC_SANDBOX). Created if missing. */
  dir: string;
  /** The sandbox user's home (becomes HOME). Created if missing. */
  home: string;
  /** `brew --version`; decides the services/ollama.env merge (>= 6.0.15) and info fields. Default '4.4.6'. */
  brewVersion?: string;
  /** launchd label of the formula's service. Default 'homebrew.mxcl.ollama'. */
  brewLabel?: BrewLabel;
  /** Install the ollama keg under the brew prefix. Default true. */
  brewInstalled?: boolean;
  /** Homebrew prefix. Default <dir>/homebrew. */
  brewPrefix?: string;
  /** Install Ollama.app (at appPath). Default false. */
  appInstalled?: boolean;
  /** Where the app is installed. Default $HOME/Applications/Ollama.app. */
  appPath?: string;
  /** What `docker` behaves like. Default 'forward-loopback' (Docker Desktop). */
  runtime?: DockerRuntime;
  /** Images `docker image ls` lists and `docker run --pull=never` finds. Default ['python:3.11-slim']. */
  dockerImages?: string[];
  /** How long a booted-out label keeps draining (print works, bootstrap fails with 5). Default 300. */
  drainMs?: number;
  /** launchd's KeepAlive respawn throttle when the plist has no ThrottleInterval. Default 10000 (launchd's 10 s). */
  launchdThrottleMs?: number;
}

export interface TranscriptEntry {
  cmd: string;
  args: string[];
}

export interface ShimResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Extra environment; a value of undefined removes the variable. */
  env?: Record<string, string | undefined>;
  /**
   * Write this shim invocation to the transcript. Default false for the helpers and for run() of a
   * shim; run() of anything else (the product's bundle) always records the shims it runs.
   */
  record?: boolean;
  cwd?: string;
  /** Default 30 000. */
  timeoutMs?: number;
}

export interface LaunchdJobState {
  label: string;
  plistPath: string;
  phase: 'loaded' | 'draining';
  /** pid of the job's program while it runs. */
  pid: number | null;
  runs: number;
  lastExit: { code: number | null; signal: string | null } | null;
  /** The plist's EnvironmentVariables as loaded. */
  environment: Record<string, string>;
}

export interface Sandbox {
  dir: string;
  home: string;
  uid: number;
  shimDir: string;
  brewPrefix: string;
  brewLabel: BrewLabel;
  /** Where the app is installed (default $HOME/Applications/Ollama.app). */
  appPath: string;
  /** $HOME/Library/LaunchAgents/<brewLabel>.plist (what brew services writes). */
  plistPath: string;
  /** PATH (<dir>/bin, wrappers running the shims with process.execPath, first; then /usr/bin:/bin), STIGMER_MAC_SANDBOX, HOME. */
  env: { PATH: string; STIGMER_MAC_SANDBOX: string; HOME: string };
  /** Every recorded shim invocation, in order. */
  transcript(): TranscriptEntry[];
  clearTranscript(): void;
  /** A snapshot of state.json (after settling dead processes). */
  state(): unknown;
  /** Run a shim by name (or any command, e.g. process.execPath with the bundle) with the sandbox environment. */
  run(cmd: string, args?: string[], opts?: RunOptions): Promise<ShimResult>;
  /** Stop every process whose environment names this sandbox (SIGTERM, then SIGKILL) and unload all jobs. */
  killAll(): Promise<void>;
}

export declare function createSandbox(opts: SandboxOptions): Sandbox;

export declare function runShim(sandbox: Sandbox, cmd: string, args?: string[], opts?: RunOptions): Promise<ShimResult>;

/** `brew services start|stop|restart ollama`; throws unless it exits 0. Not recorded unless opts.record. */
export declare function brewServicesStart(sandbox: Sandbox, opts?: RunOptions): Promise<ShimResult>;
export declare function brewServicesStop(sandbox: Sandbox, opts?: RunOptions): Promise<ShimResult>;
export declare function brewServicesRestart(sandbox: Sandbox, opts?: RunOptions): Promise<ShimResult>;
/** `open -a Ollama --args hidden`; throws unless it exits 0. */
export declare function openApp(sandbox: Sandbox, opts?: RunOptions): Promise<ShimResult>;
/** Install another copy of the app at `bundle` (registered after the first: `open -a` still picks the first). */
export declare function installAppAt(sandbox: Sandbox, bundle: string): string;
/** `open <bundle> --args hidden`; throws unless it exits 0. */
export declare function openAppAt(sandbox: Sandbox, bundle: string, opts?: RunOptions): Promise<ShimResult>;
/** Make the app ignore SIGTERM (a hung app), or quit on it again. */
export declare function setAppIgnoresTerm(sandbox: Sandbox, ignores: boolean): void;
/** The bundle the running app was started from, or null. */
export declare function runningAppBundle(sandbox: Sandbox): string | null;
/** A reboot and the next login: processes, setenv values and loaded jobs are gone; then every LaunchAgent and the app's login item start, in `order`. */
export declare function reboot(sandbox: Sandbox, options?: { order?: 'app-first' | 'agents-first'; loginItem?: string }): Promise<void>;
export declare function launchctl(sandbox: Sandbox, args: string[], opts?: RunOptions): Promise<ShimResult>;
export declare function launchctlSetenv(sandbox: Sandbox, key: string, value: string, opts?: RunOptions): Promise<ShimResult>;

export interface AppSettings {
  expose?: boolean;
  browser?: boolean;
  models?: string;
  contextLength?: number;
}
/** Create/update ~/Library/Application Support/Ollama/db.sqlite (table settings, row id = 1). Returns its path. */
export declare function writeAppSettings(sandbox: Sandbox, settings: AppSettings): string;

/** The running fake app and its server, or null. */
export declare function appProcess(sandbox: Sandbox): { pid: number; serverPid: number | null } | null;
/** A loaded launchd job (default: the brew label), or null. */
export declare function launchdJob(sandbox: Sandbox, label?: string): LaunchdJobState | null;

/** The `plist` package's XML builder and parser (Homebrew's layout: { indent: '\t', offset: -1 } plus a final newline). */
export declare function buildPlist(obj: unknown, opts?: { indent?: string; offset?: number; pretty?: boolean }): string;
export declare function parsePlist(text: string): unknown;

export declare const REPO: string;
export declare const SHIM_DIR: string;
export declare const STANDIN: string;
export declare const FORMULA_ENV: Readonly<Record<string, string>>;
