/**
 * Linux detection on a machine without systemd or snap, against real processes: a hand-started
 * stand-in Ollama, found through the real /proc, and one that Stigmer's CLI started (it records
 * ~/.stigmer/llm.pid).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { detectInstallations } from '../../platforms/index.ts';
import { linuxPlatform } from '../../platforms/linux/index.ts';
import type { Context } from '../../scripts/context.ts';
import type { ManualDetection } from '../../platforms/linux/manual.ts';
import { freePort, startStandin, type RunningStandin } from '../support/standin-process.ts';
import { tempRoot, testContext } from './support/context.ts';
import { because, needs } from './support/portability.ts';

/** The installation stigmer-setup would configure, as the registry picks it. */
async function detectLinux(ctx: Context, options: { root: string; port: number }) {
  return (await detectInstallations(ctx, linuxPlatform, { ...options, home: ctx.env.HOME ?? '', env: ctx.env })).primary;
}

let root: string;
let cleanup: () => Promise<void>;
let standin: RunningStandin | undefined;
beforeEach(async () => ({ root, cleanup } = await tempRoot()));
afterEach(async () => {
  await standin?.stop();
  await cleanup();
});

describe('detectLinux without systemd or snap', () => {
  it.skipIf(needs.proc)('finds a hand-started Ollama by the socket it listens on, with the OLLAMA_HOST it was started with' + because(needs.proc), async () => {
    const port = await freePort();
    standin = await startStandin({ ollamaHost: `127.0.0.1:${port}` });
    const { strategy, detection } = await detectLinux(testContext({ env: { HOME: root } }), { root, port });
    expect(strategy.id).toBe('linux-manual');
    const manual = detection as ManualDetection;
    expect(manual.process.pid).toBe(standin.child.pid);
    expect(manual.startedByStigmer).toBe(false);
    expect(manual.configuredHost).toBe(`127.0.0.1:${port}`);
    expect(manual.description).toContain(`(pid ${standin.child.pid})`);
  });

  it.skipIf(needs.proc)("recognises the Ollama that Stigmer's CLI started from ~/.stigmer/llm.pid" + because(needs.proc), async () => {
    const port = await freePort();
    standin = await startStandin({ ollamaHost: `127.0.0.1:${port}` });
    await mkdir(path.join(root, '.stigmer'), { recursive: true });
    await writeFile(path.join(root, '.stigmer', 'llm.pid'), `${standin.child.pid}\n`);
    const { detection } = await detectLinux(testContext({ env: { HOME: root } }), { root, port });
    expect((detection as ManualDetection).startedByStigmer).toBe(true);
    expect(detection.description).toBe(`\`ollama serve\` started by Stigmer (pid ${standin.child.pid})`);
  });

  it('reports nothing installed when nobody listens and there is no unit or snap', async () => {
    const { strategy } = await detectLinux(testContext({ env: { HOME: root } }), { root, port: await freePort() });
    expect(strategy.id).toBe('linux-none');
  });

  it('sees an installed unit without a running systemd (a container, WSL without systemd)', async () => {
    await mkdir(path.join(root, 'etc/systemd/system'), { recursive: true });
    await writeFile(path.join(root, 'etc/systemd/system/ollama.service'), '[Service]\nExecStart=/usr/local/bin/ollama serve\n');
    // A machine whose PID 1 is not systemd: no systemctl answers, and no /run/systemd/system
    // (sd_booted's test), whatever the machine running this test is booted with.
    const ctx = testContext({ env: { HOME: root } });
    const realExists = ctx.fs.exists;
    ctx.fs = { ...ctx.fs, exists: async (file) => file !== '/run/systemd/system' && realExists(file) };
    const { strategy, detection } = await detectLinux(ctx, { root, port: await freePort() });
    expect(strategy.id).toBe('linux-systemd');
    expect(detection).toMatchObject({ systemdRunning: false, unitPath: '/etc/systemd/system/ollama.service' });
  });
});
