/**
 * Just enough of systemctl for CLI-level unit tests, which can't run systemd (the e2e suite runs the
 * real one). It keeps systemd's rules that matter here, as checked against systemd 252: drop-ins on
 * disk take effect only at daemon-reload (until then `show` reports the loaded DropInPaths and
 * NeedDaemonReload=yes), MainPID is the running server's pid (0 when inactive), and a restart
 * starts a real stand-in Ollama with the loaded OLLAMA_HOST. Drop-ins are read from the test's
 * --root folder, where stigmer-setup writes them.
 *
 * The environment follows systemd.exec(5), read independently of stigmer-setup's parser:
 * Environment= lines in drop-in order, an empty one resetting everything before it;
 * EnvironmentFile= files read at each start (after Environment=, so they win; `-` makes one
 * optional, and a missing required one makes the start fail); UnsetEnvironment= applied last.
 * systemd reads every file as root, so a 0600 drop-in is read here too.
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ExecResult } from '../../../scripts/context.ts';
import { startStandin, type RunningStandin } from '../../support/standin-process.ts';
import { failed, NOT_FOUND, ok } from './context.ts';

const DROP_IN_DIR = '/etc/systemd/system/ollama.service.d';

export class FakeSystemd {
  loadedHost: string | undefined;
  standin: RunningStandin | undefined;
  /** Make the next `systemctl <verb>` fail, to test rollbacks. */
  failNext: { verb: string; stderr: string } | undefined;
  restarts = 0;
  /** OLLAMA_HOST values with which the service dies right after starting. */
  crashesWith = new Set<string>();
  /**
   * Ollama was uninstalled (its unit file removed, then daemon-reload): `show` answers
   * LoadState=not-found with exit 0, and `restart` fails with systemctl's "Unit … not found." (exit 5).
   */
  uninstalled = false;

  /** `unitHost` is what ollama.service itself sets (Environment= in the unit); drop-ins override it. */
  /** The drop-ins (path and content) systemd read at the last daemon-reload. */
  private loaded: string[] = [];

  constructor(
    private root: string,
    private unitHost: string | undefined,
  ) {
    this.loadedHost = unitHost;
    this.environment = unitHost ? [`OLLAMA_HOST=${unitHost}`] : [];
  }

  private async snapshot(): Promise<string[]> {
    const files: string[] = [];
    for (const dropIn of await this.dropIns()) files.push(`${dropIn}\0${await readFile(path.join(this.root, dropIn), 'utf8')}`);
    return files;
  }

  async start(): Promise<void> {
    this.standin = await startStandin({ ollamaHost: this.loadedHost });
  }

  async stop(): Promise<void> {
    await this.standin?.stop();
    this.standin = undefined;
  }

  private async dropIns(): Promise<string[]> {
    const names = await readdir(path.join(this.root, DROP_IN_DIR)).catch(() => [] as string[]);
    const files: string[] = [];
    // Only regular files: this fake must not block on a FIFO the tests plant there.
    for (const name of names.filter((entry) => entry.endsWith('.conf')).sort()) {
      const seen = await lstat(path.join(this.root, DROP_IN_DIR, name)).catch(() => undefined);
      if (seen?.isFile()) files.push(`${DROP_IN_DIR}/${name}`);
    }
    return files;
  }

  /** What systemd keeps from the unit and its drop-ins at daemon-reload. */
  private environment: string[] = [];
  private environmentFiles: string[] = [];
  private unsetEnvironment: string[] = [];

  /** Words of a unit-file value: space-separated, a word may be wrapped in double quotes. */
  private static words(value: string): string[] {
    return [...value.matchAll(/"([^"]*)"|(\S+)/g)].map((match) => match[1] ?? match[2] ?? '');
  }

  private async loadEnvironment(): Promise<void> {
    let environment = this.unitHost ? [`OLLAMA_HOST=${this.unitHost}`] : [];
    let files: string[] = [];
    let unset: string[] = [];
    for (const dropIn of await this.dropIns()) {
      let inService = false;
      for (const line of (await readFile(path.join(this.root, dropIn), 'utf8')).split('\n')) {
        const header = /^\s*\[(.*)\]\s*$/.exec(line);
        if (header) inService = header[1] === 'Service';
        const directive = /^\s*(Environment|EnvironmentFile|UnsetEnvironment)\s*=(.*)$/.exec(line);
        if (!inService || !directive) continue;
        const value = (directive[2] ?? '').trim();
        if (directive[1] === 'Environment') environment = value === '' ? [] : [...environment, ...FakeSystemd.words(value)];
        if (directive[1] === 'EnvironmentFile') files = value === '' ? [] : [...files, value];
        if (directive[1] === 'UnsetEnvironment') unset = value === '' ? [] : [...unset, ...FakeSystemd.words(value)];
      }
    }
    this.environment = environment;
    this.environmentFiles = files;
    this.unsetEnvironment = unset;
  }

  /** OLLAMA_HOST as the service gets it at a start, or 'fail' when a required EnvironmentFile= is missing. */
  private async hostAtStart(): Promise<string | undefined | 'fail'> {
    let host: string | undefined;
    for (const assignment of this.environment) if (assignment.startsWith('OLLAMA_HOST=')) host = assignment.slice('OLLAMA_HOST='.length);
    for (const entry of this.environmentFiles) {
      const optional = entry.startsWith('-');
      const pattern = optional ? entry.slice(1) : entry;
      // systemd expands a wildcard with glob(3): sorted matches; none is a missing file.
      let matches = [pattern];
      if (pattern.includes('*')) {
        const folder = path.posix.dirname(pattern);
        const name = new RegExp(`^${path.posix.basename(pattern).split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`);
        const names = await readdir(path.join(this.root, folder)).catch(() => [] as string[]);
        matches = names.filter((entryName) => !entryName.startsWith('.') && name.test(entryName)).sort().map((entryName) => `${folder}/${entryName}`);
        if (matches.length === 0 && !optional) return 'fail';
      }
      for (const file of matches) {
        const text = await readFile(path.join(this.root, file), 'utf8').catch(() => undefined);
        if (text === undefined) {
          if (optional) continue;
          return 'fail';
        }
        for (const line of text.split('\n')) {
          const match = /^\s*OLLAMA_HOST\s*=\s*(.*?)\s*$/.exec(line);
          if (match) host = (match[1] ?? '').replace(/^"(.*)"$/, '$1');
        }
      }
    }
    if (host !== undefined && this.unsetEnvironment.some((word) => word === 'OLLAMA_HOST' || word === `OLLAMA_HOST=${host}`)) host = undefined;
    return host;
  }

  async exec(args: string[]): Promise<ExecResult> {
    const verb = args[0] ?? '';
    if (this.failNext?.verb === verb) {
      const { stderr } = this.failNext;
      this.failNext = undefined;
      return failed(stderr);
    }
    if (this.uninstalled) {
      if (verb === 'show') return ok(['LoadState=not-found', 'FragmentPath=', 'DropInPaths=', 'Environment=', 'ActiveState=inactive', 'NeedDaemonReload=no', 'MainPID=0'].join('\n'));
      if (verb === 'daemon-reload') return ok();
      if (verb === 'restart' || verb === 'start') return failed(`Failed to ${verb} ollama.service: Unit ollama.service not found.`, 5);
    }
    if (verb === 'show') {
      // systemctl quotes an assignment with a space in it, C-style.
      const environment = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...this.environment].map((word) => (/[\s"]/.test(word) ? `"${word.replace(/"/g, '\\"')}"` : word));
      return ok(
        [
          'LoadState=loaded',
          'FragmentPath=/etc/systemd/system/ollama.service',
          `DropInPaths=${this.loaded.map((entry) => entry.split('\0')[0]).join(' ')}`,
          `Environment=${environment.join(' ')}`,
          ...this.environmentFiles.map((entry) => `EnvironmentFiles=${entry.replace(/^-/, '')} (ignore_errors=${entry.startsWith('-') ? 'yes' : 'no'})`),
          `UnsetEnvironment=${this.unsetEnvironment.join(' ')}`,
          `ActiveState=${this.standin ? 'active' : 'inactive'}`,
          `NeedDaemonReload=${(await this.snapshot()).join('\n') === this.loaded.join('\n') ? 'no' : 'yes'}`,
          `MainPID=${this.standin?.child.pid ?? 0}`,
        ].join('\n'),
      );
    }
    if (verb === 'daemon-reload') {
      this.loaded = await this.snapshot();
      await this.loadEnvironment();
      return ok();
    }
    if (verb === 'restart' && args[1] === 'ollama') {
      this.restarts++;
      await this.stop();
      const host = await this.hostAtStart();
      // systemd: "Failed to load environment files", and the unit stays down.
      if (host === 'fail') return failed('Job for ollama.service failed because the control process exited with error code.');
      this.loadedHost = host;
      // Like a Type=simple unit, restart succeeds once the process is spawned, even if it dies.
      if (!this.crashesWith.has(this.loadedHost ?? '')) await this.start();
      return ok();
    }
    if (verb === 'start' && args[1] === 'ollama') {
      if (this.standin) return ok();
      const host = await this.hostAtStart();
      if (host === 'fail') return failed('Job for ollama.service failed because the control process exited with error code.');
      this.loadedHost = host;
      if (!this.crashesWith.has(this.loadedHost ?? '')) await this.start();
      return ok();
    }
    return NOT_FOUND;
  }
}
