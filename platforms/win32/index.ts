/**
 * Windows: Ollama runs as the per-user tray app (the default install), as a service some tool such
 * as NSSM wraps, or as a plain `ollama serve`. There is no sudo: the one change that needs
 * elevation (a service's environment) says so instead. Paths follow path.win32 whatever OS this
 * runs on, and every command is an argument array (no shell: zx would look for bash).
 */
import path from 'node:path';
import { manualStrategy } from '../manual.ts';
import { quotePowerShell } from '../../scripts/shell-quote.ts';
import { notInstalled } from '../none.ts';
import type { PlatformSupport } from '../types.ts';
import { localAppData, winAppStrategy } from './app.ts';
import { readListeners } from './listeners.ts';
import { userEnvStore } from './powershell.ts';
import { nssmEnvStore, serviceEnvStore, winServiceStrategy } from './service.ts';

/** An ollama.exe that is neither the app's server nor the service: the registry keeps those when they claim the same pid. */
const winManual = manualStrategy({
  id: 'win32-manual',
  owner: (options) => {
    const owner = options.listeners?.find((listener) => listener.owner)?.owner;
    return owner && owner.argv[0]?.toLowerCase() === 'ollama.exe' ? owner : undefined;
  },
  install: 'the installer from https://ollama.com/download/windows',
});

export const win32Platform: PlatformSupport = {
  id: 'win32',
  path: path.win32,
  strategies: [winServiceStrategy, winAppStrategy, winManual],
  notInstalled: notInstalled('win32-none', 'no Ollama app, no ollama service, and nothing listens on the port', 'https://ollama.com/download/windows'),
  settingStores: { 'windows-user-env': userEnvStore, 'windows-service-env': serviceEnvStore, 'windows-nssm-env': nssmEnvStore },
  home: (env) => env.USERPROFILE ?? '',
  // Per-user, like the default Ollama install: %LOCALAPPDATA%\stigmer-setup.
  stateDir: (locations) => path.win32.join(localAppData({ ...locations.env, USERPROFILE: locations.env.USERPROFILE ?? locations.home }, path.win32), 'stigmer-setup'),
  // No sudo on Windows: a step that needs elevation says so instead.
  elevation: () => [],
  // Commands we print for pasting are PowerShell's.
  quote: quotePowerShell,
  readListeners,
  isWsl: async () => false,
  stigmerRunnerNetwork: 'bridge',
  containersInVm: true,
  commands: {
    upgrade: 'Ollama tray icon → "Restart to update", or run the current OllamaSetup.exe from https://ollama.com/download',
    portOwner: (port) => `Get-NetTCPConnection -LocalPort ${port} -State Listen`,
    firewallAllow: (port) => `New-NetFirewallRule -DisplayName "Ollama for WSL containers" -Direction Inbound -Protocol TCP -LocalPort ${port} -InterfaceAlias "vEthernet (WSL)" -Action Allow   # elevated`,
    limitExposure: (port) => `New-NetFirewallRule -DisplayName "Ollama: block the network" -Direction Inbound -Protocol TCP -LocalPort ${port} -RemoteAddress Internet -Action Block   # elevated`,
  },
};
