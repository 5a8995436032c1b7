// Bundle the CLI and every library it uses into one ESM file, so `npx stigmer-setup` installs a
// single package with no dependencies to resolve (create-vite and zx ship the same way).
import { build } from 'esbuild';
import { chmod } from 'node:fs/promises';

const outfile = 'dist/stigmer-setup.mjs';
await build({
  entryPoints: ['scripts/main.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  legalComments: 'none',
  banner: {
    // prompts is CommonJS and calls require() for Node built-ins; ESM output has no require, so
    // give the bundle one (evanw/esbuild#1921).
    js: "#!/usr/bin/env node\nimport { createRequire as __stigmerCreateRequire } from 'node:module';\nconst require = __stigmerCreateRequire(import.meta.url);",
  },
});
await chmod(outfile, 0o755);
console.log(`built ${outfile}`);
