/**
 * Our relay units read back as untrusted input (issue 14 §2): what sits at their paths may be a
 * symlink to a system file, a FIFO that would block a read forever, megabytes, or a unit edited
 * by hand. Inspection must never follow, block on or parse those as ours; the plan must never
 * replace or delete a file stigmer-setup did not write; an edit to one it did write is kept.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { linuxPlatform } from '../../platforms/linux/index.ts';
import { inspectRelay, SERVICE_PATH, SOCKET_PATH } from '../../platforms/linux/relay.ts';
import { renderServiceUnit, renderSocketUnit } from '../../platforms/linux/relay-units.ts';
import type { RelayFacts } from '../../platforms/types.ts';
import { applySetup, keepEdits, type Applier } from '../../scripts/apply.ts';
import { SystemFiles } from '../../scripts/system-files.ts';
import { allowedFor, readRecord } from '../../scripts/undo-record.ts';
import { freePort } from '../support/standin-process.ts';
import { NOT_FOUND, ok, tempRoot, testContext, type TestContext } from './support/context.ts';
import { FakeRelaySystemd } from './support/fake-relay-systemd.ts';
import { listener, PORT } from './support/facts.ts';
import { because, needs } from './support/portability.ts';

let root: string;
let cleanup: () => Promise<void>;
let ctx: TestContext;
let fake: FakeRelaySystemd;

beforeEach(async () => {
  ({ root, cleanup } = await tempRoot());
  await mkdir(path.join(root, 'etc/systemd/system'), { recursive: true });
  fake = new FakeRelaySystemd(root);
  ctx = testContext({
    exec: async (command, args) => {
      if (command === 'systemctl') return fake.systemctl(args);
      if (command.endsWith('iptables')) return fake.iptables(args);
      if (command === 'docker') return ok('[]');
      return NOT_FOUND;
    },
  });
});
afterEach(() => cleanup());

const UNIT = { gateway: '172.17.0.1', port: PORT, target: '127.0.0.1', protection: 'iptables' as const, subnets: ['172.17.0.0/16'], iptables: '/usr/sbin/iptables', proxyd: '/usr/lib/systemd/systemd-socket-proxyd', ollamaUnit: false };
const socketPath = () => path.join(root, SOCKET_PATH);
const servicePath = () => path.join(root, SERVICE_PATH);

async function inspect(): Promise<RelayFacts> {
  const networks = [{ name: 'bridge', driver: 'bridge', subnets: ['172.17.0.0/16'], gateways: ['172.17.0.1'], bridgeInterface: 'docker0' }];
  return inspectRelay(ctx, { root, home: '/nonexistent-home', env: {}, port: await freePort(), listeners: [listener('127.0.0.1')], nativeRootfulDocker: true, networks, path: path.posix });
}

/** The relay facts of a machine where the relay can be offered, with what inspect found at our paths. */
function offerable(found: RelayFacts): RelayFacts {
  return { ...found, proxyd: '/usr/lib/systemd/systemd-socket-proxyd', iptables: '/usr/sbin/iptables', systemd: true, foreignHostStatus: 403, preflight: { ok: true } };
}
const plan = (relay: RelayFacts) => linuxPlatform.relay!.plan(relay, { port: PORT, elevate: [], listeners: [listener('127.0.0.1')] });

describe.skipIf(needs.symlinks)('hostile relay units' + because(needs.symlinks), () => {
  it('a symlink at the socket unit is not followed: inspection says so, and the plan refuses to replace it', async () => {
    const secret = path.join(root, 'etc/shadow');
    await writeFile(secret, 'root:$6$secret\n');
    await symlink(secret, socketPath());
    const found = await inspect();
    expect(found.installed).toMatchObject({ ours: false, problem: expect.stringContaining('is a symlink') });
    expect(found.installed?.socketFile).toBeUndefined();
    const refused = plan(offerable(found));
    expect(refused.changes).toEqual([]);
    expect(refused.blockers[0]?.message).toMatch(/is a symlink/);
    // Nor removed to make way for --host 0.0.0.0.
    expect(linuxPlatform.relay!.removal(offerable(found), { elevate: [], target: { host: '0.0.0.0', port: PORT } })).toMatchObject({ changes: [], blocker: expect.anything() });
    expect(await readFile(secret, 'utf8')).toBe('root:$6$secret\n');
  });

  it.skipIf(needs.mkfifo)('a FIFO at the service unit is not opened (a read would block forever)', async () => {
    execFileSync('mkfifo', [servicePath()]);
    const found = await inspect();
    expect(found.installed).toMatchObject({ ours: false, problem: expect.stringMatching(/not a regular file \(fifo\)/) });
    expect(plan(offerable(found)).blockers).toHaveLength(1);
  });

  it('a huge file at the socket unit is not read', async () => {
    await writeFile(socketPath(), `# Written by stigmer-setup\n${'x'.repeat(2 * 1024 * 1024)}`);
    const found = await inspect();
    expect(found.installed).toMatchObject({ ours: false, problem: expect.stringMatching(/2097\d+ bytes, far larger/) });
  });

  it('a unit someone wrote by hand (no marker) is not ours: never replaced, never deleted', async () => {
    const theirs = renderSocketUnit(UNIT).split('\n').slice(1).join('\n');
    await writeFile(socketPath(), theirs);
    const found = await inspect();
    expect(found.installed).toMatchObject({ ours: false, listen: { host: '172.17.0.1', port: PORT } });
    expect(found.installed?.problem).toBeUndefined();
    const refused = plan(offerable(found));
    expect(refused.changes).toEqual([]);
    expect(refused.blockers[0]?.message).toMatch(/not written by stigmer-setup/);
    expect(linuxPlatform.relay!.removal(offerable(found), { elevate: [], target: { host: '0.0.0.0', port: PORT } })?.changes).toEqual([]);
  });

  it('control characters and a % in our own unit read back are not taken as a listen address', async () => {
    await writeFile(socketPath(), renderSocketUnit(UNIT).replace('ListenStream=172.17.0.1:11434', 'ListenStream=172.17.0.1:11434\x1b[2J%h'));
    await writeFile(servicePath(), renderServiceUnit(UNIT).replace('systemd-socket-proxyd 127.0.0.1:11434', 'systemd-socket-proxyd 127.0.0.1:11434 --evil'));
    const found = await inspect();
    expect(found.installed).toMatchObject({ ours: true, listen: undefined, target: undefined });
  });

  it('our unit, edited by hand since setup wrote it: the edit is kept in kept/ before setup rewrites it', async () => {
    const applier: Applier = { ctx, support: linuxPlatform, files: new SystemFiles(ctx, [], path.posix), stateDir: path.join(root, 'var/lib/stigmer-setup') };
    expect((await applySetup(applier, plan(offerable(await inspect())), {})).ok).toBe(true);
    const edited = `${await readFile(socketPath(), 'utf8')}# my note\n`;
    await writeFile(socketPath(), edited);
    const state = await readRecord(ctx, allowedFor(linuxPlatform, { root, home: '/nonexistent-home', env: {} }), applier.stateDir);
    const again = plan(offerable(await inspect()));
    expect(again.changes[0]).toMatchObject({ type: 'file', action: 'modify', path: socketPath() });
    const kept = keepEdits(applier, again.changes, state?.record, new Date());
    expect(kept.warnings[0]).toMatch(/was edited after stigmer-setup wrote it; your version will be kept/);
    expect((await applySetup(applier, { ...again, changes: kept.changes }, state!)).ok).toBe(true);
    const copies = await readdir(path.join(applier.stateDir, 'kept'));
    expect(copies).toHaveLength(1);
    expect(await readFile(path.join(applier.stateDir, 'kept', copies[0]!), 'utf8')).toBe(edited);
    expect(await readFile(socketPath(), 'utf8')).not.toContain('# my note');
  });
});
