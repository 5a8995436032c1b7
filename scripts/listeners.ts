/**
 * Who listens on Ollama's port, read from /proc in-process (Linux). Finding the owning process
 * means matching the socket's inode against every /proc/PID/fd link, which only works for our own
 * processes unless we are root; the owner is a bonus, the bind address is what matters.
 */
import type { Context } from './context.ts';
import { bindScope, type BindScope } from './ollama-host.ts';
import { parseProcNetTcp, TCP_LISTEN } from './parsers/proc-net-tcp.ts';

export interface Listener {
  address: string;
  port: number;
  family: 4 | 6;
  scope: BindScope;
  inode: number;
  owner?: ProcessInfo;
}

export interface ProcessInfo {
  pid: number;
  /** argv, from /proc/PID/cmdline. */
  argv: string[];
  /** The systemd unit or snap it runs under, from /proc/PID/cgroup, if any. */
  unit?: string;
}

/** Bound the /proc walk: a busy host has thousands of processes and we only want a few sockets. */
const MAX_PROCESSES_SCANNED = 4000;
const MAX_FDS_SCANNED = 50_000;

export async function readListeners(ctx: Context, port: number): Promise<Listener[]> {
  const [tcp, tcp6] = await Promise.all([ctx.fs.readText('/proc/net/tcp'), ctx.fs.readText('/proc/net/tcp6')]);
  const rows = [...parseProcNetTcp(tcp ?? '', 4), ...parseProcNetTcp(tcp6 ?? '', 6)];
  return rows
    .filter((row) => row.state === TCP_LISTEN && row.port === port)
    .map((row) => ({ address: row.address, port: row.port, family: row.family, scope: bindScope(row.address), inode: row.inode }));
}

export async function readProcess(ctx: Context, pid: number): Promise<ProcessInfo | undefined> {
  const cmdline = await ctx.fs.readText(`/proc/${pid}/cmdline`).catch(() => undefined);
  if (cmdline === undefined) return undefined;
  const cgroup = (await ctx.fs.readText(`/proc/${pid}/cgroup`).catch(() => undefined)) ?? '';
  // cgroup v2 line "0::/system.slice/ollama.service"; snaps run as snap.ollama.<app>.service.
  const unit = /\/([^/\n]+\.(?:service|scope))\s*$/m.exec(cgroup)?.[1];
  return { pid, argv: cmdline.split('\0').filter(Boolean), unit };
}

/** Fill in `owner` for each listener whose socket inode we can find among the processes we can see. */
export async function findOwners(ctx: Context, listeners: Listener[]): Promise<void> {
  const wanted = new Map(listeners.map((listener) => [`socket:[${listener.inode}]`, listener]));
  if (wanted.size === 0) return;
  const pids = (await ctx.fs.listDir('/proc')).filter((name) => /^\d+$/.test(name)).slice(0, MAX_PROCESSES_SCANNED);
  let fdsScanned = 0;
  for (const pid of pids) {
    const fds = await ctx.fs.listDir(`/proc/${pid}/fd`);
    for (const fd of fds) {
      if (++fdsScanned > MAX_FDS_SCANNED) return;
      const link = await ctx.fs.readLink(`/proc/${pid}/fd/${fd}`);
      const listener = link ? wanted.get(link) : undefined;
      if (!listener) continue;
      listener.owner = await readProcess(ctx, Number(pid));
      wanted.delete(link as string);
      if (wanted.size === 0) return;
    }
  }
}

export function describeListeners(listeners: Listener[]): string {
  return listeners.map((l) => (l.family === 6 ? `[${l.address}]:${l.port}` : `${l.address}:${l.port}`)).join(', ');
}

/** The widest reach among the listeners: one wildcard socket is enough for containers. */
export function widestScope(listeners: Listener[]): BindScope | undefined {
  if (listeners.some((l) => l.scope === 'wildcard')) return 'wildcard';
  if (listeners.some((l) => l.scope === 'specific')) return 'specific';
  return listeners.length > 0 ? 'loopback' : undefined;
}
