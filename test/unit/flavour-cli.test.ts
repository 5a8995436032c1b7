/**
 * The onboarding order through the whole CLI (issue 14 part 1): Linux, Ollama on 127.0.0.1 (the
 * systemd unit, the small fake of support/fake-systemd.ts with a real stand-in Ollama), Docker
 * running (scripted: `docker info` is a captured native engine, there is no runner container, the
 * probe from a throwaway python container is refused), and Stigmer configured
 * (~/.stigmer/config.yaml from the fixture) but not started yet. Setup must change nothing.
 */
import { cp, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../scripts/cli.ts';
import { freePort } from '../support/standin-process.ts';
import { failed, NOT_FOUND, ok, tempRoot, testContext, type TestContext } from './support/context.ts';
import { FakeSystemd } from './support/fake-systemd.ts';
import { fixture } from './support/fixtures.ts';
import { because, needs } from './support/portability.ts';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/stigmer');

let root: string;
let cleanup: () => Promise<void>;
let systemd: FakeSystemd;
let home: string;

beforeEach(async () => {
  ({ root, cleanup } = await tempRoot());
  systemd = new FakeSystemd(root, `127.0.0.1:${await freePort()}`);
  await systemd.start();
  home = path.join(root, 'home', 'ada');
  await mkdir(home, { recursive: true });
});
afterEach(async () => {
  await systemd.stop();
  await cleanup();
});

function onboardingMachine(): TestContext {
  return testContext({
    env: { HOME: home, PATH: '' },
    exec: async (command, args) => {
      const rest = command === 'sudo' ? (args[0] === '-n' ? args.slice(1) : args) : [command, ...args];
      if (rest[0] === 'systemctl') return systemd.exec(rest.slice(1));
      if (rest[0] !== 'docker') return NOT_FOUND;
      if (rest[1] === 'info') return ok(fixture('docker/info-json-native-rootful-captured-debian12.json'));
      if (rest[1] === 'inspect' || rest[1] === 'exec') return failed(fixture('docker/inspect-no-such-object.txt'));
      if (rest[1] === 'image') return ok('python:3.11-slim\n');
      if (rest[1] === 'run') return ok(`${JSON.stringify({ outcome: 'refused', address: '172.17.0.1', detail: '[Errno 111] Connection refused' })}\n`);
      return failed('not scripted');
    },
  });
}

const dropIn = () => path.join(root, 'etc/systemd/system/ollama.service.d/stigmer-setup.conf');

describe('the onboarding order', () => {
  it.skipIf(needs.proc)('setup --yes changes nothing for a configured Stigmer with no runner yet, and says why' + because(needs.proc), async () => {
    await mkdir(path.join(home, '.stigmer'));
    await cp(path.join(FIXTURES, 'go-docker-era', '.stigmer', 'config.yaml'), path.join(home, '.stigmer', 'config.yaml'));
    const ctx = onboardingMachine();
    const exit = await run(['--yes', '--json', '--root', root], ctx);
    const report = ctx.json[0] as Record<string, any>;
    expect(report.changes ?? []).toEqual([]);
    expect(JSON.stringify(report)).toContain('nothing needs to change for Stigmer');
    expect(JSON.stringify(report)).toContain("--network host, its Linux default");
    await expect(stat(dropIn())).rejects.toThrow();
    expect(systemd.restarts).toBe(0);
    expect(ctx.calls.some((call) => call.command === 'docker' && call.args[0] === 'run')).toBe(true);
    const probe = (report.checks as { id: string; status: string }[]).find((check) => check.id === 'container.probe');
    expect(probe?.status).toBe('note');
    expect(exit).toBe((report.checks as { status: string }[]).some((check) => check.status === 'fail') ? 1 : 0);
  });

  it.skipIf(needs.proc)('with no Stigmer at all, the same machine gets the change, said to be about containers in general' + because(needs.proc), async () => {
    const ctx = onboardingMachine();
    await run(['--yes', '--json', '--root', root], ctx);
    const report = ctx.json[0] as Record<string, any>;
    expect(JSON.stringify(report)).toContain('so this decision is about containers in general');
    expect((await stat(dropIn())).isFile()).toBe(true);
  });
});
