/**
 * Inside WSL with no Ollama of its own: is it on the Windows side, which networking mode is this,
 * and what must be run on Windows. Real /proc/version and `ip route` captures (test/fixtures/win32).
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { wslWindowsStrategy, type WslWindowsDetection } from '../../platforms/linux/wsl.ts';
import type { HttpResult, NetworkAddress } from '../../scripts/context.ts';
import { fixture } from './support/fixtures.ts';
import { NOT_FOUND, ok, testContext } from './support/context.ts';

const LOOPBACK0: NetworkAddress = { name: 'loopback0', address: '10.255.255.254', family: 4, internal: false };

function insideWsl(options: { procVersion: string; addresses?: NetworkAddress[]; answering?: string }) {
  const asked: string[] = [];
  const ctx = testContext({ exec: (command, args) => (command === 'ip' && args[0] === 'route' ? ok(fixture('win32/ip-route-wsl2-nat-default-and-link.txt')) : NOT_FOUND) });
  const readText = ctx.fs.readText;
  ctx.fs = { ...ctx.fs, readText: async (file, opts) => (file === '/proc/version' ? fixture(options.procVersion) : readText(file, opts)) };
  ctx.networkAddresses = () => options.addresses ?? [{ name: 'eth0', address: '172.17.21.238', family: 4, internal: false }];
  ctx.http = {
    ...ctx.http,
    get: async (url): Promise<HttpResult> => {
      asked.push(url);
      return options.answering && url.startsWith(options.answering) ? { kind: 'response', status: 200, body: '{"version":"0.32.15"}' } : { kind: 'error', code: 'timeout', message: 'no answer' };
    },
  };
  return { ctx, asked };
}
const detect = (ctx: ReturnType<typeof insideWsl>['ctx']) =>
  wslWindowsStrategy.detect(ctx, { root: '/', home: '/home/ada', env: {}, port: 11434, listeners: [], path: path.posix }) as Promise<WslWindowsDetection | undefined>;
const REQUEST = { target: { host: '0.0.0.0', port: 11434 }, explicitHost: false, elevate: [] };

describe('WSL with no Ollama of its own', () => {
  it('in NAT mode, asks the default gateway; an Ollama answering there is on Windows, and the fix is run on Windows with the firewall rule', async () => {
    const { ctx, asked } = insideWsl({ procVersion: 'win32/proc-version-wsl2-5.4.72-microsoft-standard-WSL2-kiri-28.txt', answering: 'http://172.17.16.1:11434' });
    const detection = await detect(ctx);
    expect(asked).toEqual(['http://172.17.16.1:11434/api/version']);
    expect(detection).toMatchObject({ mode: 'nat', windowsAddress: '172.17.16.1', answers: true });
    expect(detection?.description).toBe('Ollama on the Windows side, reached from WSL at 172.17.16.1:11434 (NAT networking)');
    const plan = wslWindowsStrategy.plan(detection!, REQUEST);
    expect(plan.changes).toEqual([]);
    expect(plan.blockers[0]?.message).toContain('reaches Windows only through the default gateway (172.17.16.1)');
    expect(plan.blockers[0]?.fix).toContain('npx stigmer-setup --yes --host 0.0.0.0:11434');
    expect(plan.blockers[0]?.fix).toContain('New-NetFirewallRule -DisplayName "Ollama for WSL containers" -Direction Inbound -Protocol TCP -LocalPort 11434 -InterfaceAlias "vEthernet (WSL)" -Action Allow');
    expect(plan.blockers[0]?.fix).toContain('OLLAMA_BASE_URL=http://172.17.16.1:11434');
  });

  it('in mirrored mode (a loopback0 interface), looks on 127.0.0.1 and says only host-networked containers get there', async () => {
    const { ctx, asked } = insideWsl({ procVersion: 'win32/proc-version-wsl2-5.4.72-microsoft-standard-WSL2-kiri-28.txt', addresses: [LOOPBACK0], answering: 'http://127.0.0.1:11434' });
    const detection = await detect(ctx);
    expect(asked).toEqual(['http://127.0.0.1:11434/api/version']);
    expect(detection).toMatchObject({ mode: 'mirrored', answers: true });
    expect(wslWindowsStrategy.plan(detection!, REQUEST).blockers[0]?.fix).toMatch(/^Run the agent-runner with --network host/);
  });

  it('says so when nothing answers on the Windows side either', async () => {
    const { ctx } = insideWsl({ procVersion: 'win32/proc-version-wsl2-4.19.67-microsoft-standard-wsl-4555.txt' });
    expect((await detect(ctx))?.description).toBe('no Ollama inside WSL, and none answering on the Windows side at 172.17.16.1:11434 (NAT networking)');
  });

  it('is not this case outside WSL, or when Ollama listens inside WSL', async () => {
    const { ctx } = insideWsl({ procVersion: 'win32/proc-version-native-ubuntu-jc.txt' });
    expect(await detect(ctx)).toBeUndefined();
    const { ctx: wsl } = insideWsl({ procVersion: 'win32/proc-version-wsl2-5.4.72-microsoft-standard-WSL2-kiri-28.txt' });
    const listeners = [{ address: '127.0.0.1', port: 11434, family: 4 as const, scope: 'loopback' as const }];
    expect(await wslWindowsStrategy.detect(wsl, { root: '/', home: '/', env: {}, port: 11434, listeners, path: path.posix })).toBeUndefined();
  });
});
