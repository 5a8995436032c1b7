/**
 * Who listens on Ollama's port, read from /proc in-process (Linux). Finding the owning process
 * means matching the socket's inode against every /proc/PID/fd link, which only works for our own
 * processes unless we are root; the owner is a bonus, the bind address is what matters.
 */
import type { Context } from '../../scripts/context.ts';
import { listenerAt, type Listener, type ProcessInfo } from '../../scripts/listeners.ts';
import { cleanField } from '../../scripts/text.ts';
import { parseProcNetTcp, TCP_LISTEN } from './proc-net-tcp.ts';

/** Bound the /proc walk: a busy host has thousands of processes and we only want a few sockets. */
const MAX_PROCESSES_SCANNED = 4000;
const MAX_FDS_SCANNED = 50_000;

async function readProcText(ctx: Context, file: string): Promise<string | undefined> {
  // A process can exit between listing and reading, and another user's files are unreadable:
  // both just mean "unknown".
  return ctx.fs.readText(file, { follow: true }).catch(() => undefined);
}

export async function readListeners(ctx: Context, port: number): Promise<Listener[]> {
  const [tcp, tcp6] = await Promise.all([readProcText(ctx, '/proc/net/tcp'), readProcText(ctx, '/proc/net/tcp6')]);
  const rows = [...parseProcNetTcp(tcp ?? '', 4), ...parseProcNetTcp(tcp6 ?? '', 6)];
  return rows
    .filter((row) => row.state === TCP_LISTEN && row.port === port)
    .map((row) => ({ ...listenerAt(row.address, row.port, row.family), inode: row.inode }));
}

export async function readProcess(ctx: Context, pid: number): Promise<ProcessInfo | undefined> {
  const cmdline = await readProcText(ctx, `/proc/${pid}/cmdline`);
  if (cmdline === undefined) return undefined;
  const cgroupFile = (await readProcText(ctx, `/proc/${pid}/cgroup`)) ?? '';
  // cgroup v2 line "0::/system.slice/ollama.service"; v1 has a "name=systemd:" line with the same path.
  const cgroup = (/^0::(\/.*)$/m.exec(cgroupFile) ?? /^\d+:name=systemd:(\/.*)$/m.exec(cgroupFile))?.[1];
  // snaps run as snap.ollama.<app>.service; a terminal's processes sit in a session-N.scope.
  const unit = /\/([^/\n]+\.(?:service|scope))\s*$/m.exec(cgroup ?? cgroupFile)?.[1];
  // A process chooses its own argv: a newline in it would start a forged line ("✓ …") in the
  // report, so every field is one line with no control characters, from here on.
  const argv = cmdline.split('\0').filter(Boolean).map(cleanField).filter(Boolean);
  return { pid, argv, unit: unit === undefined ? undefined : cleanField(unit), cgroup: cgroup === undefined ? undefined : cleanField(cgroup) };
}

/** Fill in `owner` for each listener whose socket inode we can find among the processes we can see. */
export async function findOwners(ctx: Context, listeners: Listener[]): Promise<void> {
  const wanted = new Map(listeners.filter((listener) => listener.inode !== undefined).map((listener) => [`socket:[${listener.inode}]`, listener]));
  if (wanted.size === 0) return;
  const pids = (await ctx.fs.listDir('/proc')).filter((name) => /^\d+$/.test(name)).slice(0, MAX_PROCESSES_SCANNED);
  let fdsLeft = MAX_FDS_SCANNED;
  for (const pid of pids) {
    if (fdsLeft <= 0) return;
    const targets = await ctx.fs.readLinksIn(`/proc/${pid}/fd`, fdsLeft);
    fdsLeft -= targets.length;
    for (const link of new Set(targets)) {
      const listener = wanted.get(link);
      if (!listener) continue;
      const owner = await readProcess(ctx, Number(pid));
      // The same socket is shared by every process that inherited it: all listeners on it get the first one.
      for (const other of listeners) if (other.inode === listener.inode) other.owner = owner;
      wanted.delete(link);
      if (wanted.size === 0) return;
    }
  }
}

export async function readListenersWithOwners(ctx: Context, port: number): Promise<Listener[]> {
  const listeners = await readListeners(ctx, port);
  await findOwners(ctx, listeners);
  return listeners;
}
