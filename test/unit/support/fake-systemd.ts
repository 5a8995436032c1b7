/**
 * Just enough of systemctl for CLI-level unit tests, which can't run systemd (the e2e suite runs the
 * real one). It keeps systemd's rules that matter here, as checked against systemd 252: drop-ins on
 * disk take effect only at daemon-reload (until then `show` reports the loaded DropInPaths and
 * NeedDaemonReload=yes), MainPID is the running server's pid (0 when inactive), and a restart
 * starts a real stand-in Ollama with the loaded OLLAMA_HOST. Drop-ins are read from the test's
 * --root folder, where stigmer-setup writes them.
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

  private async hostOnDisk(): Promise<string | undefined> {
    let host: string | undefined;
    for (const dropIn of await this.dropIns()) {
      const text = await readFile(path.join(this.root, dropIn), 'utf8');
      const match = /^Environment="OLLAMA_HOST=([^"]*)"/m.exec(text);
      if (match) host = match[1];
    }
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
      const environment = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...(this.loadedHost ? [`OLLAMA_HOST=${this.loadedHost}`] : [])];
      return ok(
        [
          'LoadState=loaded',
          'FragmentPath=/etc/systemd/system/ollama.service',
          `DropInPaths=${this.loaded.map((entry) => entry.split('\0')[0]).join(' ')}`,
          `Environment=${environment.join(' ')}`,
          `ActiveState=${this.standin ? 'active' : 'inactive'}`,
          `NeedDaemonReload=${(await this.snapshot()).join('\n') === this.loaded.join('\n') ? 'no' : 'yes'}`,
          `MainPID=${this.standin?.child.pid ?? 0}`,
        ].join('\n'),
      );
    }
    if (verb === 'daemon-reload') {
      this.loaded = await this.snapshot();
      this.loadedHost = (await this.hostOnDisk()) ?? this.unitHost;
      return ok();
    }
    if (verb === 'restart' && args[1] === 'ollama') {
      this.restarts++;
      await this.stop();
      // Like a Type=simple unit, restart succeeds once the process is spawned, even if it dies.
      if (!this.crashesWith.has(this.loadedHost ?? '')) await this.start();
      return ok();
    }
    return NOT_FOUND;
  }
}
