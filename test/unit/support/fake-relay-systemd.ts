/**
 * systemctl and iptables for the relay's units, for unit tests that can't run systemd (the e2e
 * suite runs the real one). It keeps the rules of systemd 252 that the relay's restart depends
 * on, as measured in the project's systemd container (helper B, issue 14):
 *   - a unit file is read only at daemon-reload; start, stop and enable use the text loaded then;
 *   - `systemctl enable/disable` reload the daemon themselves before they change the links, so a
 *     unit whose file is gone is forgotten there (with its ExecStopPost=), and disabling a unit
 *     systemd never knew fails ("Unit file … does not exist.", exit 1);
 *   - stopping a unit that is not loaded fails ("Unit … not loaded.", exit 5), is-active says
 *     "inactive" with exit 3;
 *   - a socket unit runs ExecStartPre= before it binds and ExecStopPost= after it closes, and
 *     ExecStopPost= also after a start that failed to bind; a stop or restart runs the text
 *     loaded now (after a reload, the new one; after the file went away, none).
 * The iptables chain is modelled only as far as the units use it: whether our chain and its
 * INPUT hook exist. The unit text is read with its own small matching, not with stigmer-setup's parser.
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ExecResult } from '../../../scripts/context.ts';
import { failed, ok } from './context.ts';

const SOCKET = 'stigmer-ollama-relay.socket';
const SERVICE = 'stigmer-ollama-relay.service';
const DIR = '/etc/systemd/system';
export const NOT_BOOTED = "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down";

export class FakeRelaySystemd {
  /** The units' text systemd loaded at the last reload (undefined: not loaded). */
  loaded: Record<string, string | undefined> = {};
  /** The drop-ins (<unit>.d/*.conf under /etc/systemd/system, as systemd names them: without --root) loaded then. */
  loadedDropIns: Record<string, string[]> = {};
  enabled = false;
  active = false;
  /** Our chain exists, and the INPUT hook for this address (undefined: no hook). */
  chain = false;
  hook: string | undefined;
  /** The rules in our chain, as `iptables -S` prints them (`-A STIGMER-OLLAMA-RELAY -j DROP`). */
  rules: string[] = [];
  /** The address is taken by something else: the socket fails to bind. */
  clash = false;
  failNext: { verb: string; stderr: string } | undefined;
  /**
   * systemd is PID 1. When false (measured on systemd 252 in a container without it as init):
   * daemon-reload, stop, restart and is-active talk to the manager and fail, exit 1, with
   * NOT_BOOTED; enable and disable work on the files client-side, and disable removes the wants
   * link (exit 0) even when the unit file is gone.
   */
  booted = true;
  calls: string[][] = [];

  constructor(private root: string) {}

  private async read(unit: string): Promise<string | undefined> {
    const file = path.join(this.root, DIR, unit);
    const seen = await lstat(file).catch(() => undefined);
    return seen?.isFile() ? readFile(file, 'utf8') : undefined;
  }

  private async reload(): Promise<void> {
    const socket = await this.read(SOCKET);
    const service = await this.read(SERVICE);
    // A running unit whose file is gone stays loaded until it stops; its text is lost.
    this.loaded = { [SOCKET]: socket, [SERVICE]: service };
    for (const unit of [SOCKET, SERVICE]) {
      const dir = path.join(this.root, DIR, `${unit}.d`);
      const names = (await readdir(dir).catch(() => [] as string[])).filter((name) => name.endsWith('.conf')).sort();
      this.loadedDropIns[unit] = names.map((name) => `${DIR}/${unit}.d/${name}`);
    }
  }

  /** ExecStartPre= in order, the `-` cleanup lines included; false when a required one fails. */
  private runStartPre(text: string): boolean {
    this.runStopPost(text.replace(/^ExecStartPre=-/gm, 'ExecStopPost=-'));
    for (const line of text.split('\n')) {
      // -N fails when the chain exists (the cleanup before it could not delete it): the start fails.
      if (/^ExecStartPre=[^-].* -N STIGMER-OLLAMA-RELAY$/.test(line)) {
        if (this.chain) return false;
        this.chain = true;
      }
      const rule = /^ExecStartPre=[^-]\S* -w -A STIGMER-OLLAMA-RELAY (.*)$/.exec(line);
      if (rule) this.rules.push(`-A STIGMER-OLLAMA-RELAY ${rule[1]}`);
      const hook = /^ExecStartPre=.* -I INPUT 1 -d (\S+) .*-j STIGMER-OLLAMA-RELAY$/.exec(line);
      if (hook) this.hook = hook[1];
    }
    return true;
  }

  private runStopPost(text: string | undefined): void {
    if (!text) return;
    // -D removes only the hook for the address it names; -X fails while a hook still uses the chain.
    const removes = /^ExecStopPost=-.* -D INPUT -d (\S+) /m.exec(text);
    if (removes && removes[1] === this.hook) this.hook = undefined;
    if (/^ExecStopPost=-.* -F STIGMER-OLLAMA-RELAY$/m.test(text)) this.rules = [];
    if (/^ExecStopPost=-.* -X STIGMER-OLLAMA-RELAY$/m.test(text) && this.hook === undefined) this.chain = false;
  }

  private stopSocket(text: string | undefined): void {
    if (this.active) this.runStopPost(text);
    this.active = false;
  }

  async systemctl(args: string[]): Promise<ExecResult> {
    this.calls.push(['systemctl', ...args]);
    const verb = args[0] ?? '';
    if (this.failNext?.verb === verb) {
      const { stderr } = this.failNext;
      this.failNext = undefined;
      return failed(stderr);
    }
    const units = args.slice(1);
    if (!this.booted) {
      if (verb === 'enable') {
        if (!(await this.read(SOCKET))) return failed(`Failed to enable unit: Unit file ${SOCKET} does not exist.`);
        this.enabled = true;
        return ok();
      }
      if (verb === 'disable') {
        this.enabled = false;
        return ok();
      }
      return failed(NOT_BOOTED);
    }
    if (verb === 'daemon-reload') {
      await this.reload();
      return ok();
    }
    if (verb === 'is-active') return this.active ? ok('active\n') : { exitCode: 3, stdout: 'inactive\n', stderr: '' };
    if (verb === 'show' && units.includes(SOCKET)) {
      // One block per unit, in the order asked, separated by a blank line; an empty DropInPaths=
      // is printed too when asked for by name (measured on 252 in stigmer-e2e/systemd:3).
      return ok(`${units.filter((unit) => !unit.startsWith('-')).map((unit) => `DropInPaths=${(this.loadedDropIns[unit] ?? []).join(' ')}`).join('\n\n')}\n`);
    }
    if (verb === 'show') return failed('Unit ollama.service could not be found.', 1);
    if (verb === 'enable' || verb === 'disable') {
      await this.reload();
      if (!this.loaded[SOCKET] && !(verb === 'disable' && this.enabled)) return failed(`Failed to ${verb} unit: Unit file ${SOCKET} does not exist.`);
      this.enabled = verb === 'enable';
      return ok();
    }
    if (verb === 'stop') {
      const unknown = units.filter((unit) => this.loaded[unit] === undefined && !(unit === SOCKET && this.active));
      if (units.includes(SOCKET)) this.stopSocket(this.loaded[SOCKET]);
      return unknown.length ? failed(unknown.map((unit) => `Failed to stop ${unit}: Unit ${unit} not loaded.`).join('\n'), 5) : ok();
    }
    if (verb === 'restart' && units[0] === SOCKET) {
      const text = this.loaded[SOCKET];
      if (!text) return failed(`Failed to restart ${SOCKET}: Unit ${SOCKET} not found.`, 5);
      // A restart stops with the text loaded now: after a reload, the new text's ExecStopPost=.
      this.stopSocket(text);
      const prepared = this.runStartPre(text);
      if (!prepared || this.clash || !/^ListenStream=\d+\.\d+\.\d+\.\d+:\d+$/m.test(text)) {
        this.runStopPost(text);
        return failed(`Job for ${SOCKET} failed.`);
      }
      this.active = true;
      return ok();
    }
    return failed(`Unknown command verb ${verb}.`);
  }

  iptables(args: string[]): ExecResult {
    this.calls.push(['iptables', ...args]);
    const rest = args[0] === '-w' ? args.slice(1) : args;
    if (rest[0] === '-S' && rest[1] === 'INPUT') return ok(['-P INPUT ACCEPT', ...(this.hook ? [`-A INPUT -d ${this.hook} -p tcp -m tcp --dport 11434 -j STIGMER-OLLAMA-RELAY`] : [])].join('\n'));
    if (rest[0] === '-S') return this.chain ? ok(`${['-N STIGMER-OLLAMA-RELAY', ...this.rules].join('\n')}\n`) : failed('iptables: No chain/target/match by that name.');
    if (rest[0] === '-D' && rest[1] === 'INPUT') {
      if (!this.hook) return failed('iptables: Bad rule (does a matching rule exist in that chain?).');
      this.hook = undefined;
      return ok();
    }
    if (rest[0] === '-C') return this.hook ? ok() : failed('iptables: Bad rule (does a matching rule exist in that chain?).');
    if (rest[0] === '-F') {
      this.rules = [];
      return ok();
    }
    if (rest[0] === '-X') {
      if (this.hook) return failed('iptables v1.8.9 (nf_tables): CHAIN_DEL failed (Device or resource busy): chain STIGMER-OLLAMA-RELAY');
      this.chain = false;
      return ok();
    }
    return failed(`unsupported: iptables ${args.join(' ')}`);
  }
}
