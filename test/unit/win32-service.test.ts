/**
 * The ollama Windows service strategy: detection, the plan (which store, which value, what it
 * refuses), the edit of one NAME=VALUE entry, and the restart's order and guarantees. Commands
 * answer in their real formats (sc captures in test/fixtures/win32; PowerShell 5.1's JSON).
 * The whole path, with a registry and an SCM, runs in test/e2e/windows-service.test.ts.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Change, PlanRequest, RestartChange, SettingChange } from '../../platforms/types.ts';
import { editEntries, entryValue } from '../../platforms/win32/registry.ts';
import { nssmEnvStore, serviceEnvStore, winServiceStrategy, type WinServiceDetection } from '../../platforms/win32/service.ts';
import { defaultRegistry, PARAMETERS_KEY, PROGRAM, SERVICE_KEY, winServiceMachine, type FakeMachine } from './support/fake-win-service.ts';

const REQUEST: PlanRequest = { target: { host: '0.0.0.0', port: 11434 }, explicitHost: false, elevate: [], listening: 'loopback' };
const settings = (changes: Change[]) => changes.filter((change): change is SettingChange => change.type === 'setting');
const restarts = (changes: Change[]) => changes.filter((change): change is RestartChange => change.type === 'restart');

async function detect(machine: FakeMachine = {}): Promise<WinServiceDetection> {
  const { ctx } = winServiceMachine(machine);
  const found = await winServiceStrategy.detect(ctx, { root: '/', home: 'C:\\Users\\ada', env: ctx.env, port: 11434, listeners: [], path: path.win32 });
  if (!found) throw new Error('no service detected');
  return found;
}

describe('detection', () => {
  it('reads OLLAMA_HOST from the service Environment, whatever the case of its name', async () => {
    const detection = await detect({ registry: defaultRegistry(['OLLAMA_MODELS=D:\\models', 'ollama_host=127.0.0.1:11500']) });
    expect(detection).toMatchObject({ strategy: 'win32-service', state: 'RUNNING', nssm: false, serviceHost: '127.0.0.1:11500', configuredHost: '127.0.0.1:11500' });
    expect(detection.configuredIn).toContain("the ollama service's Environment");
  });

  it('an NSSM service: AppEnvironmentExtra wins over the service Environment; AppEnvironment replaces it', async () => {
    const registry = defaultRegistry(['OLLAMA_HOST=127.0.0.1:1']);
    registry[PARAMETERS_KEY] = { Application: { kind: 'ExpandString', value: 'C:\\ollama\\ollama.exe' }, AppEnvironmentExtra: { kind: 'MultiString', value: ['OLLAMA_HOST=127.0.0.1:2'] } };
    expect(await detect({ registry })).toMatchObject({ nssm: true, nssmHost: '127.0.0.1:2', configuredHost: '127.0.0.1:2' });
    registry[PARAMETERS_KEY] = { Application: { kind: 'ExpandString', value: 'C:\\ollama\\ollama.exe' }, AppEnvironment: { kind: 'MultiString', value: ['TEMP=C:\\Temp'] } };
    // The Environment's value never reaches the application: AppEnvironment replaced it.
    expect((await detect({ registry })).configuredHost).toBeUndefined();
  });
});

describe('the plan', () => {
  it('elevated: one setting in the service Environment (the value as data) and a restart by sc stop / sc start', async () => {
    const plan = winServiceStrategy.plan(await detect({ registry: defaultRegistry(['OLLAMA_HOST=127.0.0.1:11434']) }), REQUEST);
    const [setting] = settings(plan.changes);
    expect(setting).toMatchObject({ store: 'windows-service-env', key: 'OLLAMA_HOST', before: '127.0.0.1:11434', after: '0.0.0.0:11434', privileged: true });
    expect(setting?.argv.at(-1)).not.toContain('0.0.0.0');
    expect(serviceEnvStore.command('OLLAMA_HOST', '0.0.0.0:11434').env).toEqual({ STIGMER_SETUP_VALUE: '0.0.0.0:11434' });
    expect(restarts(plan.changes)[0]?.steps).toEqual([
      ['sc', 'stop', 'ollama'],
      ['sc', 'start', 'ollama'],
    ]);
  });

  it('an NSSM service: the setting goes into AppEnvironmentExtra (never a whole-list `nssm set`)', async () => {
    const registry = defaultRegistry();
    registry[PARAMETERS_KEY] = { Application: { kind: 'ExpandString', value: 'C:\\ollama\\ollama.exe' }, AppEnvironmentExtra: { kind: 'MultiString', value: ['OLLAMA_MODELS=D:\\m', 'OLLAMA_HOST=127.0.0.1:11434'] } };
    const plan = winServiceStrategy.plan(await detect({ registry }), REQUEST);
    expect(plan.blockers).toEqual([]);
    expect(settings(plan.changes)[0]).toMatchObject({ store: 'windows-nssm-env', before: '127.0.0.1:11434', after: '0.0.0.0:11434' });
    expect(settings(plan.changes)[0]?.argv.at(-1)).toContain("-Name 'AppEnvironmentExtra' -Type MultiString");
    expect(nssmEnvStore.command('OLLAMA_HOST', undefined).env).toBeUndefined();
  });

  it('not elevated: changes nothing and names the command to run as administrator, with the same --host quoted for PowerShell', async () => {
    const detection = await detect({ admin: false });
    expect(winServiceStrategy.plan(detection, REQUEST)).toMatchObject({ changes: [], blockers: [{ fix: 'Open PowerShell with "Run as administrator", then: npx stigmer-setup --yes' }] });
    const explicit = winServiceStrategy.plan(detection, { ...REQUEST, target: { host: '0.0.0.0', port: 11500 }, explicitHost: true });
    expect(explicit.blockers[0]?.fix).toBe(`Open PowerShell with "Run as administrator", then: npx stigmer-setup --yes --host '0.0.0.0:11500'`);
  });

  it('a disabled service or a missing program: refuses before anything is stopped', async () => {
    const disabled = defaultRegistry();
    (disabled[SERVICE_KEY] as Record<string, { kind: string; value: unknown }>).Start = { kind: 'DWord', value: 4 };
    const one = winServiceStrategy.plan(await detect({ registry: disabled }), REQUEST);
    expect(one.changes).toEqual([]);
    expect(one.blockers[0]?.message).toContain('is disabled, so it could not be started again after a stop');
    const two = winServiceStrategy.plan(await detect({ files: [] }), REQUEST);
    expect(two.changes).toEqual([]);
    expect(two.blockers[0]?.message).toContain(`${PROGRAM} (its ImagePath) does not exist`);
  });
});

describe('editing one NAME=VALUE entry', () => {
  it('keeps the entry in its place and its spelling of the name, every other entry as it was; appends when absent; removes', () => {
    const list = ['A=1', 'ollama_host=old', 'B=\u001b[31m\n2'];
    expect(editEntries(list, 'OLLAMA_HOST', 'new')).toEqual(['A=1', 'ollama_host=new', 'B=\u001b[31m\n2']);
    expect(editEntries(['A=1'], 'OLLAMA_HOST', 'new')).toEqual(['A=1', 'OLLAMA_HOST=new']);
    expect(editEntries(list, 'OLLAMA_HOST', undefined)).toEqual(['A=1', 'B=\u001b[31m\n2']);
    // A name that only starts like ours is another variable.
    expect(editEntries(['OLLAMA_HOSTS=x'], 'OLLAMA_HOST', 'new')).toEqual(['OLLAMA_HOSTS=x', 'OLLAMA_HOST=new']);
    // Setup then undo returns the list it found.
    expect(editEntries(editEntries(list, 'OLLAMA_HOST', 'new'), 'OLLAMA_HOST', 'old')).toEqual(list);
    expect(entryValue(['OLLAMA_HOST='], 'OLLAMA_HOST', 'here')).toBe('');
  });
});

describe('the restart', () => {
  const change = winServiceStrategy.restartChange?.({ elevate: [] }) as RestartChange;
  const run = async () => {};

  it('stops, waits for STOPPED, starts, waits for RUNNING', async () => {
    const { ctx, scCalls } = winServiceMachine({ states: ['RUNNING', 'STOP_PENDING', 'STOPPED', 'START_PENDING', 'RUNNING'] });
    await winServiceStrategy.restart?.(ctx, change, run);
    expect(scCalls).toEqual(['queryex ollama', 'stop ollama', 'queryex ollama', 'queryex ollama', 'start ollama', 'queryex ollama', 'queryex ollama']);
  });

  it('a stop that stays STOP_PENDING is ended with taskkill on the service pid, then the service is started', async () => {
    const { ctx, scCalls } = winServiceMachine({ states: ['RUNNING', ...Array(81).fill('STOP_PENDING'), 'STOPPED', 'RUNNING'] });
    await winServiceStrategy.restart?.(ctx, change, run);
    expect(scCalls.filter((call) => !call.startsWith('queryex'))).toEqual(['stop ollama', 'taskkill /F /T /PID 4321', 'start ollama']);
  });

  it('a service that stops again after sc start is a failed start, named as such', async () => {
    const { ctx } = winServiceMachine({ states: ['RUNNING', 'STOPPED', 'START_PENDING', 'STOPPED'] });
    await expect(winServiceStrategy.restart?.(ctx, change, run)).rejects.toThrow('The ollama service stopped again right after `sc start ollama`: it failed to start');
  });

  it('never stops a service it could not start again (disabled by the time of the restart)', async () => {
    const registry = defaultRegistry();
    (registry[SERVICE_KEY] as Record<string, { kind: string; value: unknown }>).Start = { kind: 'DWord', value: 4 };
    const { ctx, scCalls } = winServiceMachine({ registry });
    await expect(winServiceStrategy.restart?.(ctx, change, run)).rejects.toThrow('is disabled, so it could not be started again after a stop; it was not stopped.');
    expect(scCalls).toEqual(['queryex ollama']);
  });

  it('a service already stopped (a rollback after a failed start) is started without asking the registry first: a failing PowerShell can\'t keep it down', async () => {
    const { ctx, scCalls } = winServiceMachine({ states: ['STOPPED', 'RUNNING'], readOutput: 'not the JSON PowerShell prints' });
    await expect(winServiceStrategy.restart?.(ctx, change, run)).resolves.toBeUndefined();
    expect(scCalls).toEqual(['queryex ollama', 'start ollama', 'queryex ollama']);
  });

  it('sc start refused (1058, disabled) is reported with its code and text', async () => {
    const { ctx } = winServiceMachine({
      states: ['STOPPED'],
      startOutput: '[SC] StartService FAILED 1058:\r\n\r\nThe service cannot be started, either because it is disabled or because it has no enabled devices associated with it.\r\n\r\n',
    });
    await expect(winServiceStrategy.restart?.(ctx, change, run)).rejects.toThrow('`sc start ollama` failed (error 1058: The service cannot be started, either because it is disabled');
  });

  it('a service uninstalled since setup: nothing to restart, so undo is not blocked by it; an unreadable state stops nothing', async () => {
    const gone = winServiceMachine({ states: ['MISSING'] });
    await expect(winServiceStrategy.restart?.(gone.ctx, change, run)).resolves.toBeUndefined();
    expect(gone.scCalls).toEqual(['queryex ollama']);
    const garbled = winServiceMachine({ states: ['GARBLED'] });
    await expect(winServiceStrategy.restart?.(garbled.ctx, change, run)).rejects.toThrow('did not say what state the ollama service is in, so it was not stopped');
    expect(garbled.scCalls).toEqual(['queryex ollama']);
  });
});
