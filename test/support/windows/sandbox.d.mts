// Types for sandbox.mjs, so strict TypeScript tests can use the Windows sandbox.

export declare const SANDBOX_VAR: 'STIGMER_WIN_SANDBOX';
/** The folder with the shims (powershell.exe, netstat, tasklist, taskkill, netsh, sc, docker). */
export declare const BIN_DIR: string;
export declare const APP_MODULE: string;
export declare const FAKE_OLLAMA: string;
export declare const APP_IMAGE: 'ollama app.exe';
export declare const SERVER_IMAGE: 'ollama.exe';
export declare const CRLF: '\r\n';

/**
 * How host.docker.internal behaves for `docker run` through the shim:
 *  - 'forward-loopback': it reaches this machine's 127.0.0.1 (Docker Desktop forwards to Windows' loopback);
 *  - 'no-forward': it reaches this machine's first non-internal IPv4, so only a non-loopback listener answers.
 */
export type SandboxRuntime = 'forward-loopback' | 'no-forward';
/** An excluded TCP port range (netsh); a third element `true` marks an administered exclusion ("*"). */
export type ExcludedPortRange = readonly [number, number] | readonly [number, number, boolean];
export type ServiceState = false | 'running' | 'stopped';

export interface SandboxOptions {
  /** Absolute path of the sandbox folder (created if missing). Every Windows path is a file of that name in it. */
  dir: string;
  /** Default `C:\Users\ada\AppData\Local`. */
  localAppData?: string;
  /** Default `C:\Users\ada`. */
  userProfile?: string;
  /** Write the fake `ollama app.exe` (default true). */
  appInstalled?: boolean;
  /** Answer of the Administrator check; also allows writing the Machine store (default false). */
  admin?: boolean;
  /** `sc query ollama`: false = not installed (1060), true = 'running' (default false). */
  service?: boolean | ServiceState;
  excludedPorts?: readonly ExcludedPortRange[];
  /** Default 'no-forward'. */
  runtime?: SandboxRuntime;
  /** Initial User-scope store (HKCU\Environment). */
  userEnv?: Record<string, string>;
  /** Initial Machine-scope store. */
  machineEnv?: Record<string, string>;
  /** The app's folder, a Windows path (default `%LOCALAPPDATA%\Programs\Ollama`), e.g. `D:\Apps\Ollama`. */
  appDir?: string;
  /** Pids that `taskkill /F` reports terminated but that keep running (stuck in a driver call). */
  stuckPids?: number[];
}

export interface SandboxConfig {
  localAppData: string;
  userProfile: string;
  appInstalled: boolean;
  admin: boolean;
  service: ServiceState;
  excludedPorts: ExcludedPortRange[];
  runtime: SandboxRuntime;
  appDir?: string;
  stuckPids?: number[];
}

export interface ProcessRecord {
  pid: number;
  image: string;
  parentPid: number;
  /** /proc/<pid>/stat start time: a record only counts while the pid has it. */
  startTime: string;
  /** OLLAMA_HOST in the process's environment when it started (null if unset). */
  ollamaHost: string | null;
  started: string;
  /** The Windows path it was started from (Win32_Process.ExecutablePath); absent when unknown. */
  path?: string;
}

export interface TranscriptEntry {
  /** The command as invoked (`powershell.exe`, `netstat`, `sc.exe`, …). */
  cmd: string;
  args: string[];
  /** powershell.exe only: STIGMER_SETUP_VALUE as the shim received it (absent key = unset). */
  env?: Record<string, string>;
  pid: number;
  time: string;
}

export interface WinPaths {
  installDir: string;
  app: string;
  dataDir: string;
  db: string;
  appLog: string;
  serverLog: string;
  pidFile: string;
  stateDir: string;
  undoFile: string;
}

export interface Sandbox {
  dir: string;
  /** Run the product with this cwd: Windows paths are file names in it. */
  cwd: string;
  /** PATH (shims, sandbox folder, /usr/bin, /bin), LOCALAPPDATA, USERPROFILE, APPDATA, USERNAME, STIGMER_WIN_SANDBOX. */
  env: Record<string, string>;
  paths: WinPaths;
  /** The Linux file that stands for a Windows path. */
  file(winPath: string): string;
  readText(winPath: string): string | undefined;
  config(): SandboxConfig;
  /** Write (another copy of) the fake app at this Windows path. */
  installApp(winApp: string): void;
  /** Change options of a running sandbox (e.g. excluded ports, admin, service). */
  configure(partial: Partial<Omit<SandboxConfig, 'service'>> & { service?: boolean | ServiceState }): void;
  /** The User-scope store now. */
  userEnv(): Record<string, string>;
  machineEnv(): Record<string, string>;
  /** Every shim call so far, in order. */
  transcript(): TranscriptEntry[];
  /** Running processes with Windows image names (the app and its servers). */
  processes(): ProcessRecord[];
  appLog(): string;
  serverLog(): string;
  /** Explorer's environment: `env` plus `base`, then the Machine and the User store (User wins; Path excepted). */
  explorerEnv(base?: Record<string, string | undefined>): Record<string, string>;
  /**
   * Launch the app as the Start menu does (Explorer's environment, so the stores as they are now).
   * Resolves with its pid once it registered itself, or exited (an instance was already running).
   */
  startApp(base?: Record<string, string | undefined>, options?: { timeoutMs?: number }): Promise<number>;
  /** Write %LOCALAPPDATA%\Ollama\db.sqlite (sqlite3 CLI); by default a running app restarts its server. */
  setAppSettings(settings: { expose?: boolean; browser?: boolean }, options?: { restartServer?: boolean }): void;
  /** SIGKILL every process of this sandbox and its children; bounded. */
  killAll(options?: { timeoutMs?: number }): Promise<void>;
}

export declare const DEFAULTS: Readonly<Omit<Required<SandboxOptions>, 'dir'>>;
export declare function createSandbox(options: SandboxOptions): Sandbox;
export declare function winPaths(localAppData: string, appDir?: string): WinPaths;
export declare function recordProcess(dir: string, record: { pid: number; image: string; parentPid?: number; ollamaHost?: string; path?: string }): ProcessRecord | undefined;
export declare function sandboxFile(dir: string, winPath: string): string;
/** Poll every 50 ms until `check` returns something other than undefined/false; throws after `timeoutMs`. */
export declare function waitFor<T>(check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs?: number, what?: string): Promise<T>;
export declare function isRunning(pid: number, startTime?: string): boolean;
export declare function firstExternalIPv4(): string | undefined;
export declare const SETTINGS_SCHEMA: string;
