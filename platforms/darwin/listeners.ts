/** Who listens on Ollama's port on a Mac: `lsof -nP -iTCP:<port> -sTCP:LISTEN`, parsed from its real layout. */
import type { Context } from '../../scripts/context.ts';
import { listenerAt, type Listener } from '../../scripts/listeners.ts';
import { parseLsofListen } from './parsers/lsof.ts';

export async function readListeners(ctx: Context, port: number): Promise<Listener[] | undefined> {
  const lsof = await ctx.exec('lsof', ['-nP', `-iTCP:${port}`, '-sTCP:LISTEN'], { timeoutMs: 10_000 });
  if (lsof.failure === 'not-found') return undefined;
  // lsof exits 1, printing nothing, when nothing matches.
  return parseLsofListen(lsof.stdout)
    .filter((row) => row.port === port)
    .map((row) => listenerAt(row.address, row.port, row.family, { pid: row.pid, argv: [row.command] }));
}
