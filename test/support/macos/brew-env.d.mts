// Types for brew-env.mjs (the macOS sandbox's model of how brew reads services/<formula>.env).
export class RubyArgumentError extends Error {}
export function brewEnvOverrides(bytes: Buffer, file: string): { overrides: Map<string, string>; warnings: string[] };
