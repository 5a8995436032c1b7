/**
 * Who listens on Ollama's port on Windows: `netstat -ano` (every Windows has it, and its PID
 * column is there on every version; Get-NetTCPConnection lacks OwningProcess on some, per
 * MicrosoftDocs/windows-powershell-docs#1788), with image names from tasklist.
 */
import type { Context } from '../../scripts/context.ts';
import { listenerAt, type Listener } from '../../scripts/listeners.ts';
import { parseNetstatListening } from './parsers/netstat.ts';
import { tasklist } from './processes.ts';

export async function readListeners(ctx: Context, port: number): Promise<Listener[] | undefined> {
  const netstat = await ctx.exec('netstat', ['-ano'], { timeoutMs: 15_000 });
  if (netstat.failure === 'not-found') return undefined;
  const rows = parseNetstatListening(netstat.stdout).filter((row) => row.port === port);
  if (rows.length === 0) return [];
  const images = new Map((await tasklist(ctx)).map((entry) => [entry.pid, entry.imageName]));
  return rows.map((row) => listenerAt(row.address, row.port, row.family, { pid: row.pid, argv: [images.get(row.pid) ?? `pid ${row.pid}`] }));
}
