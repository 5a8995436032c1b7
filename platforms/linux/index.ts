/**
 * Linux: which way Ollama is installed decides what to change. The order is the preference when
 * several are present — a systemd unit or a snap may also show up as a listening process, and the
 * managed form is the one to configure — unless another one owns the port.
 */
import path from 'node:path';
import { quotePosix } from '../../scripts/shell-quote.ts';
import type { Context } from '../../scripts/context.ts';
import { notInstalled } from '../none.ts';
import type { PlatformSupport } from '../types.ts';
import { dockerStrategy, systemdUserStrategy } from './elsewhere.ts';
import { isWsl } from '../win32/parsers/wsl.ts';
import { readBindV6Only, readFirewall, readRootlessHostLoopback } from './audits.ts';
import { readListenersWithOwners } from './listeners.ts';
import { manualStrategy } from './manual.ts';
import { inspectRelay, planRelay, relayRemoval, relayStrategy } from './relay.ts';
import { snapStore, snapStrategy } from './snap.ts';
import { systemdStrategy } from './systemd.ts';
import { wslWindowsStrategy } from './wsl.ts';

export const notInstalledStrategy = notInstalled(
  'linux-none',
  'no ollama.service, no ollama snap, and nothing listens on the port',
  'curl -fsSL https://ollama.com/install.sh | sh',
);

export const linuxPlatform: PlatformSupport = {
  id: 'linux',
  path: path.posix,
  // relayStrategy never detects an installation: it is there for the relay's apply and undo.
  strategies: [systemdStrategy, snapStrategy, systemdUserStrategy, dockerStrategy, manualStrategy, wslWindowsStrategy, relayStrategy],
  notInstalled: notInstalledStrategy,
  settingStores: { snap: snapStore },
  home: (env) => env.HOME ?? '',
  quote: quotePosix,
  // System changes need root; the folder is root's, like the drop-ins whose backups it keeps.
  stateDir: (locations) => path.posix.join(locations.root, 'var', 'lib', 'stigmer-setup'),
  // Under --yes nothing may prompt, sudo included: -n fails fast instead of waiting for a password.
  elevation: (ctx: Context, unattended) => (ctx.isRoot ? [] : unattended ? ['sudo', '-n'] : ['sudo']),
  readListeners: readListenersWithOwners,
  async isWsl(ctx) {
    return isWsl((await ctx.fs.readText('/proc/version', { follow: true }).catch(() => undefined)) ?? '');
  },
  relay: { inspect: inspectRelay, plan: planRelay, removal: relayRemoval },
  audits: { firewall: readFirewall, bindV6Only: readBindV6Only, rootlessHostLoopback: readRootlessHostLoopback },
  stigmerRunnerNetwork: 'host',
  containersInVm: false,
  commands: {
    // install.sh replaces the binary in place and leaves drop-ins alone (ollama-facts §3).
    upgrade: 'curl -fsSL https://ollama.com/install.sh | sh',
    limitExposure: (port) => `Allow only Docker's bridge, e.g. with ufw: sudo ufw allow in on docker0 to any port ${port} proto tcp && sudo ufw deny ${port}/tcp`,
    portOwner: (port) => `sudo ss -ltnp 'sport = :${port}'`,
    firewallAllow: (port) => `sudo ufw allow in on docker0 to any port ${port} proto tcp   # or your firewall's equivalent for the bridge subnet`,
  },
};
