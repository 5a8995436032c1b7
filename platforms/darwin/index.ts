/**
 * macOS: everything is per-user. Ollama runs as a Homebrew service (a LaunchAgent), as the desktop
 * app, or as a plain process; several can be installed at once, and they then compete for the port.
 * No step uses sudo, and a run through sudo is refused: root would read and write root's home.
 */
import path from 'node:path';
import { manualStrategy } from '../manual.ts';
import { notInstalled } from '../none.ts';
import { quotePosix } from '../../scripts/shell-quote.ts';
import type { PlatformSupport } from '../types.ts';
import { appStrategy } from './app.ts';
import { brewStrategy } from './brew.ts';
import { launchdEnvStore } from './launchd.ts';
import { readListeners } from './listeners.ts';
import { parseSwVers } from './parsers/sw-vers.ts';

/** A server that is neither Homebrew's nor the app's: the registry keeps those two when they claim the same pid. */
const darwinManual = manualStrategy({
  id: 'darwin-manual',
  owner: (options) => {
    const owner = options.listeners?.find((listener) => listener.owner)?.owner;
    // lsof names the process (truncated to 9 characters); only an ollama server is "Ollama started by hand".
    return owner && /^ollama/i.test(owner.argv[0] ?? '') ? owner : undefined;
  },
  install: 'brew install ollama && brew services start ollama, or the app from https://ollama.com/download/mac',
});

export const darwinPlatform: PlatformSupport = {
  id: 'darwin',
  path: path.posix,
  strategies: [brewStrategy, appStrategy, darwinManual],
  notInstalled: notInstalled('darwin-none', 'no Homebrew service, no Ollama.app, and nothing listens on the port', 'brew install ollama && brew services start ollama, or the app from https://ollama.com/download/mac'),
  settingStores: { 'launchd-env': launchdEnvStore },
  home: (env) => env.HOME ?? '',
  quote: quotePosix,
  // Everything on a Mac is per-user: the user's own Application Support folder.
  stateDir: (locations) => path.posix.join(locations.home, 'Library', 'Application Support', 'stigmer-setup'),
  elevation: () => [],
  readListeners,
  isWsl: async () => false,
  async describeHost(ctx) {
    const swVers = await ctx.exec('sw_vers', [], { timeoutMs: 5000 });
    const { productName, productVersion, buildVersion } = parseSwVers(swVers.stdout);
    return productName && productVersion ? `${productName} ${productVersion}${buildVersion ? ` (${buildVersion})` : ''}` : undefined;
  },
  preflight(ctx) {
    if (ctx.isRoot && ctx.env.SUDO_USER) {
      return 'run without sudo: on macOS stigmer-setup changes only your own launchd settings and files, and as root it would change root\'s instead (and leave root-owned files in your home).';
    }
    return undefined;
  },
  stigmerRunnerNetwork: 'bridge',
  containersInVm: true,
  commands: {
    // The app updates itself (the cask is auto_updates true); a new build waits for a restart.
    upgrade: 'Ollama menu bar icon → "Restart to update", or install the current app from https://ollama.com/download',
    portOwner: (port) => `lsof -nP -iTCP:${port} -sTCP:LISTEN`,
    firewallAllow: () => 'Check the macOS firewall: /usr/libexec/ApplicationFirewall/socketfilterfw --getglobalstate --getblockall',
    limitExposure: (port) => `Turn on the macOS firewall (System Settings → Network → Firewall) and keep incoming connections to ollama blocked; Docker Desktop still reaches 127.0.0.1:${port}`,
  },
};
