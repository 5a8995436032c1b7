/**
 * How a pull's progress reads, on stderr. Pure formatting: time comes from an injected clock
 * (milliseconds), output goes to an injected sink, so every rule is testable without waiting.
 * Modelled on `ollama pull` itself (cmd/cmd.go pullModelWithProgress, progress/bar.go):
 *   - a line with a digest and bytes drives the bar for that layer: percent, done/total in
 *     decimal units (HumanBytes: KB = 1000, "4.7 GB"), a rate over a sliding window of up to 10
 *     samples taken at most once a second, and an ETA capped at "99h+";
 *   - a line without bytes (pulling manifest, verifying sha256 digest, writing manifest) is a
 *     spinner with its text, shown when the text changes;
 *   - on a terminal the bar is one live line, redrawn at most every 100 ms; elsewhere (CI,
 *     `| tee`) a plain line at most every 10 s or every 10 %, and one when a layer completes.
 * Status text comes from the server: pull.ts has already stripped its control characters, and it
 * is cut short here again, so a hostile line never reaches the terminal raw or whole.
 */
import type { PullEvent } from './pull.ts';
import { cleanField } from './text.ts';

/** Where formatted progress goes: the CLI maps it onto ctx.terminal. */
export interface ProgressSink {
  /** Replace the live line (terminals only). */
  redraw(text: string): void;
  /** Finish the live line so the next output starts below it. */
  endRedraw(): void;
  /** A plain line. */
  line(text: string): void;
  /** Show a spinner with this text (replacing any earlier one); undefined stops it. */
  spinner(text: string | undefined): void;
}

export const REDRAW_INTERVAL_MS = 100;
export const PLAIN_INTERVAL_MS = 10_000;
const PLAIN_STEP_PERCENT = 10;
const RATE_SAMPLES = 10;
const RATE_SAMPLE_MS = 1000;
const MAX_STATUS_CHARS = 80;

/** Ollama's format.HumanBytes: decimal units; below 10 one decimal unless whole, then whole numbers. */
export function humanBytes(bytes: number): string {
  const units: [number, string][] = [
    [1e12, 'TB'],
    [1e9, 'GB'],
    [1e6, 'MB'],
    [1e3, 'KB'],
  ];
  const found = units.find(([size]) => bytes >= size);
  if (!found) return `${Math.max(0, Math.floor(bytes))} B`;
  const value = bytes / found[0];
  if (value >= 10) return `${Math.floor(value)} ${found[1]}`;
  return value !== Math.trunc(value) ? `${value.toFixed(1)} ${found[1]}` : `${value} ${found[1]}`;
}

/** A duration as Go prints a rounded time.Duration ("45s", "1m16s", "2h3m0s"), capped at 99h+. */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  if (seconds >= 100 * 3600) return '99h+';
  const whole = Math.round(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = whole % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

function shortStatus(status: string): string {
  const clean = cleanField(status);
  return clean.length > MAX_STATUS_CHARS ? `${clean.slice(0, MAX_STATUS_CHARS - 1)}…` : clean;
}

interface Layer {
  digest: string;
  label: string;
  total: number;
  completed: number;
  /** Bytes on disk when this run first saw the layer: a resumed or cached layer is not "downloaded now". */
  startedAt: number;
  samples: { at: number; completed: number }[];
  lastPlainAt?: number;
  lastPlainPercent: number;
  lastPlainText?: string;
  done: boolean;
}

export class PullProgressView {
  private layers = new Map<string, Layer>();
  private current?: Layer;
  private lastRedrawAt = -Infinity;
  private spinnerText?: string;
  private readonly startedAt: number;

  constructor(
    private readonly sink: ProgressSink,
    private readonly options: { live: boolean; now: () => number; model: string },
  ) {
    this.startedAt = options.now();
  }

  update(event: PullEvent): void {
    const now = this.options.now();
    if (!event.digest || event.total === 0) {
      // A byte-less status (or a layer whose size is not known): a spinner with its text.
      if (event.status === 'success') return;
      this.finishLayer();
      const text = shortStatus(event.status);
      if (text !== this.spinnerText) {
        this.spinnerText = text;
        this.sink.spinner(text);
      }
      return;
    }
    let layer = this.layers.get(event.digest);
    if (!layer) {
      this.finishLayer();
      const hex = /^sha256:([0-9a-f]{12})/.exec(event.digest)?.[1];
      layer = { digest: event.digest, label: hex ? `pulling ${hex}` : shortStatus(event.status), total: event.total, completed: event.completed, startedAt: event.completed, samples: [], lastPlainPercent: -1, done: false };
      this.layers.set(event.digest, layer);
      if (this.spinnerText !== undefined) {
        this.spinnerText = undefined;
        this.sink.spinner(undefined);
      }
    } else if (layer !== this.current) {
      this.finishLayer();
    }
    this.current = layer;
    layer.total = event.total;
    layer.completed = Math.min(event.completed, event.total);
    const last = layer.samples.at(-1);
    if (!last || now - last.at >= RATE_SAMPLE_MS) {
      layer.samples.push({ at: now, completed: layer.completed });
      if (layer.samples.length > RATE_SAMPLES) layer.samples.shift();
    }
    // As `ollama pull` does: a layer's lines before its first byte (completed absent) draw no bar,
    // so a 0 % bar never shows; the status before it stays on screen meanwhile.
    if (layer.completed === 0) return;
    if (this.options.live) {
      // Ollama sends ~16 lines a second per layer; the screen needs 10 at most. The last one of a
      // layer is always drawn, so a bar never stops at 99 %.
      if (now - this.lastRedrawAt >= REDRAW_INTERVAL_MS || layer.completed === layer.total) {
        this.lastRedrawAt = now;
        this.sink.redraw(this.barText(layer));
      }
      return;
    }
    const percent = this.percent(layer);
    const due = layer.lastPlainAt === undefined || now - layer.lastPlainAt >= PLAIN_INTERVAL_MS || percent - layer.lastPlainPercent >= PLAIN_STEP_PERCENT;
    // A layer at 100 % was printed once already (a cached layer's only line included).
    if (due && !(layer.lastPlainPercent === 100 && percent === 100)) {
      layer.lastPlainAt = now;
      layer.lastPlainPercent = percent;
      layer.lastPlainText = this.barText(layer);
      this.sink.line(layer.lastPlainText);
    }
  }

  /** The pull ended: the live line is left as it is, and a summary line says what happened. */
  finish(outcome: { ok: boolean; bytes: number }): string {
    const now = this.options.now();
    this.finishLayer();
    if (this.spinnerText !== undefined) this.sink.spinner(undefined);
    this.spinnerText = undefined;
    // After success every layer is complete, whatever its last progress line said: Ollama's
    // download ends without a final line at completed == total (download.go Wait() returns on
    // done), so a layer's last ~60 ms would otherwise read as "already there".
    const downloaded = [...this.layers.values()].reduce((sum, layer) => sum + Math.max(0, (outcome.ok ? layer.total : layer.completed) - layer.startedAt), 0);
    const took = formatEta((now - this.startedAt) / 1000) || '0s';
    const summary = outcome.ok
      ? `✓ Pulled ${this.options.model}: ${humanBytes(outcome.bytes)}${downloaded < outcome.bytes ? ` (${humanBytes(downloaded)} downloaded, the rest was already there)` : ''} in ${took}.`
      : `✖ The pull of ${this.options.model} stopped after ${took} (${humanBytes(downloaded)} downloaded in this run).`;
    this.sink.line(summary);
    return summary;
  }

  private finishLayer(): void {
    const layer = this.current;
    if (!layer || layer.done) return;
    layer.done = true;
    if (this.options.live) {
      // Its last state stays on screen, like Ollama's finished bars.
      if (layer.completed === 0) return void (this.current = undefined);
      this.sink.redraw(this.barText(layer));
      this.sink.endRedraw();
    } else if (layer.completed > 0 && this.barText(layer) !== layer.lastPlainText) {
      this.sink.line(this.barText(layer));
    }
    this.current = undefined;
  }

  private percent(layer: Layer): number {
    return layer.total > 0 ? Math.floor((layer.completed / layer.total) * 100) : 0;
  }

  /** Bytes per second over the window, or undefined before two samples a second apart. */
  private rate(layer: Layer): number | undefined {
    const first = layer.samples[0];
    const last = layer.samples.at(-1);
    if (!first || !last || last.at - first.at < RATE_SAMPLE_MS) return undefined;
    return ((last.completed - first.completed) * 1000) / (last.at - first.at);
  }

  private barText(layer: Layer): string {
    const percent = this.percent(layer);
    if (layer.completed >= layer.total) return `${layer.label}: 100% ${humanBytes(layer.total)}`;
    const parts = [`${layer.label}: ${String(percent).padStart(3)}%`, `${humanBytes(layer.completed)}/${humanBytes(layer.total)}`];
    const rate = this.rate(layer);
    if (rate !== undefined) {
      parts.push(`${humanBytes(rate)}/s`);
      parts.push(rate > 0 ? formatEta((layer.total - layer.completed) / rate) : '99h+');
    }
    return parts.join('  ');
  }
}
