/**
 * Who listens on Ollama's port, as every platform reports it: Linux reads /proc, macOS parses
 * `lsof`, Windows `Get-NetTCPConnection` or `netstat -ano`. The bind address is what decides
 * whether a container can connect; the owning process says which Ollama (or which other program)
 * holds the port.
 */
import { bindScope, type BindScope } from './ollama-host.ts';
import { cleanField } from './text.ts';

export interface ProcessInfo {
  pid: number;
  /** argv (Linux /proc/PID/cmdline), or the command name where that is all the OS tells. */
  argv: string[];
  /** The systemd unit or scope it runs under, from /proc/PID/cgroup, if any (Linux). */
  unit?: string;
  /** The whole cgroup path (Linux), e.g. /user.slice/user-1000.slice/user@1000.service/app.slice/ollama.service. */
  cgroup?: string;
}

export interface Listener {
  address: string;
  port: number;
  family: 4 | 6;
  scope: BindScope;
  /** The process that owns the socket, when the OS lets us see it. */
  owner?: ProcessInfo;
  /** Platform detail used to find the owner (the socket inode on Linux). */
  inode?: number;
}

export function listenerAt(address: string, port: number, family: 4 | 6, owner?: ProcessInfo): Listener {
  return { address, port, family, scope: bindScope(address), owner };
}

export function describeListeners(listeners: Listener[]): string {
  return listeners.map((l) => (l.family === 6 ? `[${l.address}]:${l.port}` : `${l.address}:${l.port}`)).join(', ');
}

/** "pid 123: ollama serve", with anything a process put in its own name that could drive a terminal or start a line removed. */
export function describeProcess(process: ProcessInfo): string {
  return `pid ${process.pid}: ${process.argv.map(cleanField).join(' ').slice(0, 200)}`;
}

/** The widest reach among the listeners: one wildcard socket is enough for containers. */
export function widestScope(listeners: Listener[]): BindScope | undefined {
  if (listeners.some((l) => l.scope === 'wildcard')) return 'wildcard';
  if (listeners.some((l) => l.scope === 'specific')) return 'specific';
  return listeners.length > 0 ? 'loopback' : undefined;
}
