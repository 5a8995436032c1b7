// What the benchmark times inside one process: the listener inventory doctor runs, without Node's
// start-up. Bundled on the fly by bench.mjs (esbuild), because the bench itself is plain JavaScript.
export { createNodeContext } from '../../scripts/node-context.ts';
export { linuxPlatform } from '../../platforms/linux/index.ts';
