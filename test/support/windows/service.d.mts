// Types for service.mjs (the sandbox's ollama Windows service).
import type { Sandbox } from './sandbox.mjs';

export declare const SERVICE_KEY: string;
export declare const PARAMETERS_KEY: string;
export interface RegistryEntry {
  kind: 'MultiString' | 'String' | 'ExpandString' | 'DWord' | string;
  value: unknown;
}
export type Registry = Record<string, Record<string, RegistryEntry>>;
export declare function readRegistry(dir: string): Registry;
export declare function writeRegistry(dir: string, registry: Registry): void;
export declare function getValue(registry: Registry, key: string, name: string): RegistryEntry | undefined;
export declare function setValue(registry: Registry, key: string, name: string, entry: RegistryEntry | undefined): Registry;
export declare function serviceStatus(dir: string): { state: 'RUNNING' | 'START_PENDING' | 'STOP_PENDING' | 'STOPPED'; pid: number; exitCode: number };
export declare function psJson(value: unknown): string;
export interface InstallServiceOptions {
  /** Wrapped by NSSM: Parameters\Application, AppParameters (and the two environment lists). */
  nssm?: boolean;
  /** The key's Environment: a REG_MULTI_SZ list, or a whole entry (another kind). */
  environment?: string[] | RegistryEntry;
  appEnvironmentExtra?: string[];
  appEnvironment?: string[];
  /** Start value: 2 automatic, 3 manual, 4 disabled (default 2). */
  start?: number;
  /** Start the service now (default true). */
  running?: boolean;
  /** The program in ImagePath; null: leave the file missing. */
  program?: string | null;
  /** The service's program fails at start when its server would get this OLLAMA_HOST. */
  failWhen?: string;
  /** The service process ignores the stop control (STOP_PENDING until ended by pid). */
  stopHangs?: boolean;
}
/** Install (and by default start) the ollama service; returns its program's Windows path. */
export declare function installService(box: Sandbox, options?: InstallServiceOptions): Promise<string>;
/** Stop the service and delete its key (what `sc delete` / `nssm remove` leave). */
export declare function uninstallService(box: Sandbox): Promise<void>;
