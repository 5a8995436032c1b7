/**
 * Who listens on Ollama's port on Windows: `netstat -ano` (every Windows has it, and its PID
 * column is there on every version; Get-NetTCPConnection lacks OwningProcess on some, per
 * MicrosoftDocs/windows-powershell-docs#1788), with image names from tasklist.
 */
import type { Context } from '../../scripts/context.ts';
import { listenerAt, type Listener } from '../../scripts/listeners.ts';
import { parseGetNetTcpConnectionListeners } from './parsers/get-nettcpconnection.ts';
import { parseNetstatListening, type WindowsListener } from './parsers/netstat.ts';
import { runPowerShell } from './powershell.ts';
import { tasklist } from './processes.ts';

/** netstat first; where it can't run, Get-NetTCPConnection's default table (it may lack OwningProcess on old Windows). */
async function listening(ctx: Context, port: number): Promise<WindowsListener[] | undefined> {
  const netstat = await ctx.exec('netstat', ['-ano'], { timeoutMs: 15_000 });
  if (netstat.exitCode === 0) return parseNetstatListening(netstat.stdout);
  const cmdlet = await runPowerShell(ctx, `Get-NetTCPConnection -LocalPort ${port} -State Listen -ErrorAction SilentlyContinue`);
  if (cmdlet.failure === 'not-found' && netstat.failure === 'not-found') return undefined;
  return parseGetNetTcpConnectionListeners(cmdlet.stdout);
}

export async function readListeners(ctx: Context, port: number): Promise<Listener[] | undefined> {
  const found = await listening(ctx, port);
  if (found === undefined) return undefined;
  const rows = found.filter((row) => row.port === port);
  if (rows.length === 0) return [];
  const images = new Map((await tasklist(ctx)).map((entry) => [entry.pid, entry.imageName]));
  return rows.map((row) => listenerAt(row.address, row.port, row.family, { pid: row.pid, argv: [images.get(row.pid) ?? `pid ${row.pid}`] }));
}
