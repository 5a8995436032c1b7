/** Windows: not configurable yet (see the Windows issue); doctor runs the checks that need no Windows tooling. */
import path from 'node:path';
import { notInstalled } from '../none.ts';
import type { PlatformSupport } from '../types.ts';

export const win32Platform: PlatformSupport = {
  id: 'win32',
  path: path.win32,
  configurable: false,
  strategies: [],
  notInstalled: notInstalled('win32-none', 'no Ollama app and no Ollama service', 'https://ollama.com/download/windows'),
  settingStores: {},
  home: (env) => env.USERPROFILE ?? '',
  // Per-user, like the default Ollama install: %LOCALAPPDATA%\stigmer-setup.
  stateDir: (locations) => path.win32.join(locations.env.LOCALAPPDATA ?? path.win32.join(locations.home, 'AppData', 'Local'), 'stigmer-setup'),
  // No sudo on Windows: a step that needs elevation says so instead.
  elevation: () => [],
  readListeners: async () => undefined,
  isWsl: async () => false,
  commands: {
    limitExposure: (port) => `New-NetFirewallRule -DisplayName "Block Ollama from the network" -Direction Inbound -Protocol TCP -LocalPort ${port} -RemoteAddress Internet -Action Block`,
    portOwner: (port) => `Get-NetTCPConnection -LocalPort ${port} -State Listen`,
    firewallAllow: (port) => `New-NetFirewallRule -DisplayName "Ollama for containers" -Direction Inbound -Protocol TCP -LocalPort ${port} -Action Allow`,
  },
};
