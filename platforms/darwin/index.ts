/** macOS: not configurable yet (see the macOS issue); doctor runs the checks that need no macOS tooling. */
import path from 'node:path';
import { notInstalled } from '../none.ts';
import type { PlatformSupport } from '../types.ts';

export const darwinPlatform: PlatformSupport = {
  id: 'darwin',
  path: path.posix,
  configurable: false,
  strategies: [],
  notInstalled: notInstalled('darwin-none', 'no Homebrew service and no Ollama.app', 'https://ollama.com/download/mac'),
  settingStores: {},
  home: (env) => env.HOME ?? '',
  // Everything on a Mac is per-user: the user's own Application Support folder.
  stateDir: (locations) => path.posix.join(locations.home, 'Library', 'Application Support', 'stigmer-setup'),
  elevation: () => [],
  readListeners: async () => undefined,
  isWsl: async () => false,
  commands: {
    limitExposure: (port) => `Turn on the macOS firewall (System Settings → Network → Firewall) and keep incoming connections to ollama blocked; Docker Desktop still reaches 127.0.0.1:${port}`,
    portOwner: (port) => `lsof -nP -iTCP:${port} -sTCP:LISTEN`,
    firewallAllow: () => '/usr/libexec/ApplicationFirewall/socketfilterfw --getglobalstate',
  },
};
