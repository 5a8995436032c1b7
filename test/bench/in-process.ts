// What the benchmark times inside one process: the listener inventory doctor runs, and the plan
// diff and plist editor on large files, without Node's start-up. Bundled on the fly by bench.mjs
// (esbuild), because the bench itself is plain JavaScript.
export { createNodeContext } from '../../scripts/node-context.ts';
export { linuxPlatform } from '../../platforms/linux/index.ts';
export { unifiedDiff } from '../../scripts/diff.ts';
export { buildPlist, readPlistDict, withEnvironmentVariable } from '../../platforms/darwin/plist-file.ts';
