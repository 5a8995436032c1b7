// Bundle the CLI and every library it uses into dist/, so `npx stigmer-setup` installs a single
// package with no dependencies to resolve (create-vite and zx ship the same way).
import { build } from 'esbuild';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';

const outdir = 'dist';
const outfile = `${outdir}/stigmer-setup.mjs`;
// A fresh folder: chunk names carry a hash, and old chunks must not be packed.
await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: { 'stigmer-setup': 'scripts/main.ts' },
  outdir,
  // The bin is one small file that answers --help and --version itself; the rest (the CLI, ora,
  // prompts, yaml, each platform) sits in chunks next to it that load only when a run needs them.
  // Node compiles every line of a module it loads, so one big file made --help pay for all of it.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  legalComments: 'none',
  banner: {
    // prompts is CommonJS and calls require() for Node built-ins; ESM output has no require, so
    // give each file one (evanw/esbuild#1921).
    js: "import { createRequire as __stigmerCreateRequire } from 'node:module';\nconst require = __stigmerCreateRequire(import.meta.url);",
  },
});
// The shebang goes on the bin only (a banner would put it in every chunk).
await writeFile(outfile, `#!/usr/bin/env node\n${await readFile(outfile, 'utf8')}`);
await chmod(outfile, 0o755);
console.log(`built ${outfile} and its chunks`);
