/**
 * SIGINT and SIGTERM as an event the flow observes, instead of an exit from inside a signal
 * handler. A handler that exits can't know what is in place (a change applied a second ago, a
 * lock held), so it can only guess, and its guess was "nothing was changed". Here a signal only
 * aborts `signal`; cli.ts notices it at its next step, says what is in place, prints its one JSON
 * object, releases the lock and returns 128 + the signal's number.
 *
 * While a change is being applied (`hold`) a signal is noted and delivered once the change has
 * finished or rolled back: interrupting between writing a file and restarting the service would
 * leave a half-applied change.
 *
 * The real context (node-context.ts) feeds it from process signals; the unit tests' fake context
 * raises one at whatever step they choose. Both share this class, so the rules are the same.
 */

/**
 * The signals that stop a run. SIGHUP comes when the terminal closes (on Windows too, when the
 * console window is closed), SIGBREAK with Ctrl-Break on Windows: left to Node's default, either
 * would end the process at once, between stopping Ollama and starting it again.
 */
export type SignalName = 'SIGINT' | 'SIGTERM' | 'SIGHUP' | 'SIGBREAK';

/** 128 + the signal's number, as shells report a process a signal ended: SIGHUP 1, SIGINT 2, SIGTERM 15, SIGBREAK 21. */
export const SIGNAL_EXIT: Readonly<Record<SignalName, number>> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143, SIGBREAK: 149 };

/** The run stopped because of a signal; `signal` says which. */
export class InterruptedError extends Error {
  constructor(readonly signal: SignalName) {
    super(`interrupted by ${signal}`);
    this.name = 'InterruptedError';
  }
}

export class Interrupter {
  private readonly controller = new AbortController();
  private held = 0;
  private pending: SignalName | undefined;

  /** Aborted once a signal is delivered; `reason` is its name (a SignalName). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The signal delivered, if any. */
  get received(): SignalName | undefined {
    return this.controller.signal.aborted ? (this.controller.signal.reason as SignalName) : undefined;
  }

  /** True while work runs under `hold`. */
  get holding(): boolean {
    return this.held > 0;
  }

  /**
   * Whether new work (a command, a request, a wait) may start: always before a signal, and after
   * one only inside `hold`, which runs to its end whatever arrives (the change itself, releasing
   * the lock). Everything else after a signal is refused at once, so the flow reaches its next
   * step quickly instead of finishing a detection nobody will read.
   */
  get mayStart(): boolean {
    return !this.controller.signal.aborted || this.held > 0;
  }

  /**
   * A signal arrived. 'held' when it waits for the work under `hold` to finish; 'delivered' when
   * `signal` is now aborted; 'repeated' when a signal was already delivered or is already waiting.
   */
  raise(name: SignalName): 'held' | 'delivered' | 'repeated' {
    if (this.controller.signal.aborted) return 'repeated';
    if (this.held > 0) {
      if (this.pending) return 'repeated';
      this.pending = name;
      return 'held';
    }
    this.controller.abort(name);
    return 'delivered';
  }

  /** Run `work` with signals held off; one that arrived meanwhile is delivered when it ends. */
  async hold<T>(work: () => Promise<T>): Promise<T> {
    this.held++;
    try {
      return await work();
    } finally {
      this.held--;
      if (this.held === 0 && this.pending && !this.controller.signal.aborted) this.controller.abort(this.pending);
    }
  }

  /** Throws InterruptedError when a signal was delivered. */
  throwIfInterrupted(): void {
    const received = this.received;
    if (received) throw new InterruptedError(received);
  }
}
