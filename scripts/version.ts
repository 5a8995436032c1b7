/**
 * Ollama's version, as /api/version reports it ("0.17.1", "0.12.0-rc1", "0.0.0" for a source
 * build). Only ordering against a security floor is needed, so this is a small semver reader
 * rather than a dependency.
 */

/** The first release with the fix for CVE-2026-7482 "Bleeding Llama" (failure catalogue §2). */
export const SECURITY_FLOOR = '0.17.1';
export const SECURITY_FLOOR_CVE = 'CVE-2026-7482';

export interface Version {
  major: number;
  minor: number;
  patch: number;
  /** A pre-release ("rc1") sorts before the release itself. */
  prerelease: boolean;
}

export function parseVersion(text: string): Version | undefined {
  const match = /^v?(\d{1,6})\.(\d{1,6})\.(\d{1,6})(-[0-9A-Za-z.-]{1,40})?(\+[0-9A-Za-z.-]{1,40})?$/.exec(text.trim());
  if (!match) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3]), prerelease: match[4] !== undefined };
}

/** Negative when a < b, zero when equal, positive when a > b. */
export function compareVersions(a: Version, b: Version): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch || (a.prerelease === b.prerelease ? 0 : a.prerelease ? -1 : 1);
}

/**
 * Whether this version is older than the floor. A source build reports 0.0.0 and can't be judged
 * (it may be newer than any release), so it is not called old; neither is text that is no version.
 */
export function olderThan(text: string, floor: string): boolean | undefined {
  const version = parseVersion(text);
  const minimum = parseVersion(floor);
  if (!version || !minimum) return undefined;
  if (version.major === 0 && version.minor === 0 && version.patch === 0) return undefined;
  return compareVersions(version, minimum) < 0;
}
