/**
 * The platform registry: one entry per OS, and the detection every platform shares. Code outside
 * platforms/ asks this file for what differs between operating systems and never branches on a
 * platform's name itself.
 */
import type { Context, Platform } from '../scripts/context.ts';
import { describeProcess, type Listener } from '../scripts/listeners.ts';
import type { Installation, Locations, PlatformSupport, Problem } from './types.ts';

/**
 * The entry for one OS. Each is loaded when asked for, so a run pays only for its own platform
 * (macOS's plist library is never loaded on Linux).
 */
export async function loadPlatform(platform: Platform): Promise<PlatformSupport> {
  const loaders: Record<Platform, () => Promise<PlatformSupport>> = {
    linux: async () => (await import('./linux/index.ts')).linuxPlatform,
    darwin: async () => (await import('./darwin/index.ts')).darwinPlatform,
    win32: async () => (await import('./win32/index.ts')).win32Platform,
  };
  return loaders[platform]();
}

export interface DetectedInstallations {
  /** Every installation found, in the platform's order of preference; never empty. */
  installations: Installation[];
  /** The one to configure: the one whose server owns the port, else the first. */
  primary: Installation;
  /** Who listens on the port (undefined where this platform can't tell). */
  listeners?: Listener[];
  /** Two installations compete for the port. */
  conflict?: Problem;
}

/**
 * Every installation on the machine, not just the first match: a Mac can have the Homebrew service
 * and the app, a Linux host a unit and a hand-started server. The listeners are read once and
 * handed to every strategy.
 */
export async function detectInstallations(ctx: Context, support: PlatformSupport, options: Locations & { port: number }): Promise<DetectedInstallations> {
  const listeners = await support.readListeners(ctx, options.port);
  const detected = await Promise.all(
    support.strategies.map(async (strategy) => {
      const detection = await strategy.detect(ctx, { ...options, listeners, path: support.path });
      return detection ? { strategy, detection } : undefined;
    }),
  );
  const installations: Installation[] = [];
  for (const found of detected) {
    // Two strategies can see the same server (a unit's MainPID is also the port's owner): it is one
    // installation, managed by the strategy that comes first.
    const pid = found?.detection.serverPid;
    if (found && (pid === undefined || !installations.some((other) => other.detection.serverPid === pid))) installations.push(found);
  }
  if (installations.length === 0) {
    const strategy = support.notInstalled;
    installations.push({ strategy, detection: (await strategy.detect(ctx, { ...options, listeners, path: support.path })) as Installation['detection'] });
  }
  const owner = listeners?.find((listener) => listener.owner)?.owner;
  const primary = installations.find((found) => owner !== undefined && found.detection.serverPid === owner.pid) ?? (installations[0] as Installation);
  return { installations, primary, listeners, conflict: conflictBetween(installations, primary, options.port, owner) };
}

function conflictBetween(installations: Installation[], primary: Installation, port: number, owner: Listener['owner']): Problem | undefined {
  if (installations.length < 2) return undefined;
  const others = installations.filter((found) => found !== primary);
  const holder = owner ? `${describeProcess(owner)} (${primary.detection.description}) holds port ${port}` : `nothing holds port ${port} right now`;
  return {
    status: 'warn',
    message: `Ollama is installed ${installations.length} ways here: ${installations.map((found) => found.detection.description).join('; ')}. ${holder}.`,
    why: 'Two servers compete for one port: whichever starts first wins, and the other fails or restarts in a loop, so where Ollama listens can change at the next reboot.',
    fix: `Keep one. To stop the other: ${others.map((found) => found.strategy.commands(found.detection, port).stop).join('; ')}`,
  };
}
