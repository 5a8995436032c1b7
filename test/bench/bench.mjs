// npm run bench: figures for what a user waits on — the size npx downloads, start-up time, and a
// full `doctor` against a stand-in Ollama on loopback — plus peak memory. Prints, never asserts.
import { spawn, spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bundle = path.join(repo, 'dist', 'stigmer-setup.mjs');
const RUNS = 15;
// Reports the child's peak RSS on exit without touching the product.
const rssHook = "data:text/javascript,process.on('exit',()=>process.stderr.write('\\nmaxrss_kb='+process.resourceUsage().maxRSS+'\\n'))";

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function measure(args) {
  const times = [];
  let rss = 0;
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint();
    const result = spawnSync(process.execPath, ['--import', rssHook, bundle, ...args], { encoding: 'utf8', timeout: 30_000 });
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
    rss = Math.max(rss, Number(/maxrss_kb=(\d+)/.exec(result.stderr)?.[1] ?? 0));
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(RUNS / 2)], p90: times[Math.floor(RUNS * 0.9)], rssMb: rss / 1024 };
}

const port = await freePort();
const standin = spawn(process.execPath, [path.join(repo, 'test/support/fake-ollama.mjs'), 'serve'], {
  env: { ...process.env, OLLAMA_HOST: `127.0.0.1:${port}` },
  stdio: 'ignore',
});
await new Promise((resolve) => setTimeout(resolve, 500));

try {
  console.log(`bundle size: ${(statSync(bundle).size / 1024).toFixed(1)} KiB (dist/stigmer-setup.mjs, all dependencies included)`);
  for (const [label, args] of [
    ['--version (start-up)', ['--version']],
    ['doctor --json (all checks; includes a docker run probe when a local python image exists)', ['doctor', '--json', '--host', `127.0.0.1:${port}`]],
    ['setup --dry-run', ['--dry-run', '--host', `0.0.0.0:${port}`]],
  ]) {
    const figures = measure(args);
    console.log(`${label}: median ${figures.median.toFixed(0)} ms, p90 ${figures.p90.toFixed(0)} ms, peak RSS ${figures.rssMb.toFixed(1)} MiB (${RUNS} runs)`);
  }
} finally {
  standin.kill();
}
