/**
 * ollama.conflict: one server on the port, and it is Ollama (F15). Two servers on the same port
 * (one on 127.0.0.1, another on the bridge address, say) send local tools and containers to
 * different programs; a port held by something else keeps Ollama from binding at all.
 */
import { describeProcess, type Listener } from '../listeners.ts';
import { formatBindAddress } from '../ollama-host.ts';
import { installationCommands } from './fixes.ts';
import type { Check } from './types.ts';

interface Server {
  pid: number;
  name: string;
  addresses: string[];
}

function servers(listeners: Listener[]): Server[] {
  const byPid = new Map<number, Server>();
  for (const listener of listeners) {
    if (!listener.owner) continue;
    const where = formatBindAddress({ host: listener.address, port: listener.port });
    const known = byPid.get(listener.owner.pid);
    if (known) known.addresses.push(where);
    else byPid.set(listener.owner.pid, { pid: listener.owner.pid, name: describeProcess(listener.owner), addresses: [where] });
  }
  return [...byPid.values()];
}

const describe = (server: Server) => `${server.name} (on ${server.addresses.join(', ')})`;

export const conflictCheck: Check = {
  id: 'ollama.conflict',
  diagnose(facts) {
    const listeners = facts.listeners;
    if (!listeners) return { status: 'skip', message: `Reading listeners is not implemented on ${facts.platform} yet.` };
    if (listeners.length === 0) return { status: 'skip', message: `Nothing listens on port ${facts.port}, so nothing competes for it.` };
    const found = servers(listeners);
    const probe = facts.hostProbe;
    if (!probe.ok && probe.kind === 'not-ollama') {
      const holder = found.find((server) => server.addresses.some((address) => probe.url.endsWith(`//${address}`))) ?? found[0];
      return {
        status: 'fail',
        message: `Port ${facts.port} is held by ${holder ? describe(holder) : 'a program this user can\'t see'}, which is not Ollama: ${probe.error}.`,
        why: 'Ollama cannot bind a port another program holds, and everything that expects Ollama there talks to that program instead.',
        fix: holder ? `Stop pid ${holder.pid} (kill ${holder.pid}) or move it to another port, then: ${installationCommands(facts).start}` : `${facts.support.commands.portOwner(facts.port)}   # find it, stop it, then: ${installationCommands(facts).start}`,
      };
    }
    if (found.length > 1) {
      const keep = found.find((server) => server.pid === facts.detection?.serverPid);
      const others = found.filter((server) => server !== keep);
      return {
        status: 'warn',
        message: `${found.length} servers listen on port ${facts.port}: ${found.map(describe).join('; ')}.`,
        why: 'Local tools and containers connect to different addresses, so they reach different servers, with different models and settings (F15).',
        fix: `Keep one: stop ${others.map((server) => `pid ${server.pid} (kill ${server.pid})`).join(' and ')}${keep ? `, and keep ${facts.detection?.description}` : ''}; then: npx stigmer-setup doctor`,
      };
    }
    if (facts.conflict) return { status: facts.conflict.status, message: facts.conflict.message, why: facts.conflict.why, fix: facts.conflict.fix };
    const only = found[0];
    const others = facts.installations.filter((installation) => installation.detection !== facts.detection).map((installation) => installation.detection.description);
    const also = others.length ? ` Also installed, not competing for it: ${others.join('; ')}.` : '';
    return {
      status: 'ok',
      message: only
        ? `One server holds port ${facts.port}: ${describe(only)}.${also}`
        : `One server holds port ${facts.port} (its process is not visible to this user).${also}`,
    };
  },
};
