// A run's step metrics for the dashboard, held on the host side: metrics.jsonl read in chunks
// (asynchronously, so the extension host stays responsive while a long record loads) into growable
// columns, then served as windows of at most a few thousand points: the minimum and maximum of
// each pixel bucket of the visible range (chartdata's minMaxIndices), with the smoothed curve
// computed over the whole series. A run of 1,000,000 steps posts a few hundred kilobytes instead
// of tens of megabytes, and zooming asks for the finer points of the new range.
//
// This module does not import `vscode` (unit- and browser-tested with the real files).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUN_FILES, STEP_FIELDS } from '../engine/train/runrecord';
import type { DashboardToHost, EpochRow, HostToDashboard, StepSeries } from '../shared/dashboard';
import { emaDebiased, minMaxIndices } from '../../webview/dashboard/chartdata';

/** Series up to this many steps are posted whole (the webview smooths and downsamples them itself). */
export const WHOLE_SERIES_LIMIT = 20_000;

const COLUMNS = STEP_FIELDS;
type Column = (typeof COLUMNS)[number];

class Growable {
  data = new Float64Array(1024);
  n = 0;
  push(v: number): void {
    if (this.n === this.data.length) {
      const d = new Float64Array(this.data.length * 2);
      d.set(this.data);
      this.data = d;
    }
    this.data[this.n++] = v;
  }
  get view(): Float64Array {
    return this.data.subarray(0, this.n);
  }
}

export class RunSeries {
  private readonly cols: Record<Column, Growable> = { step: new Growable(), loss: new Growable(), gradNorm: new Growable(), lr: new Growable(), time: new Growable() };
  readonly epochs: EpochRow[] = [];
  private offset = 0;
  private binOffset = 0;
  /** steps come from steps.bin (decided at the first read) */
  private binary?: boolean;
  private rest = Buffer.alloc(0);
  private smoothCache?: { weight: number; n: number; values: (number | null)[] };
  private smoothNum?: { values: (number | null)[]; numbers: Float64Array };
  private reading?: Promise<void>;

  constructor(readonly dir: string) {}

  get file(): string {
    return path.join(this.dir, RUN_FILES.metrics);
  }

  get length(): number {
    return this.cols.step.n;
  }

  column(c: Column): Float64Array {
    return this.cols[c].view;
  }

  /** Reads what was appended since the last call (all of it the first time); a file that shrank is read again. */
  refresh(): Promise<void> {
    this.reading ??= this.read().finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async read(): Promise<void> {
    let size: number;
    try {
      size = (await fs.promises.stat(this.file)).size;
    } catch {
      return;
    }
    if (size < this.offset) this.reset(); // rewritten (a resumed run keeps only the steps up to its checkpoint)
    if (size === this.offset) return;
    // the trainer's binary step records, when it wrote them, spare parsing every step line
    const bin = path.join(this.dir, RUN_FILES.steps);
    this.binary ??= fs.existsSync(bin) && this.offset === 0;
    if (this.binary) await this.readSteps(bin);
    const fh = await fs.promises.open(this.file, 'r');
    try {
      const chunk = Buffer.allocUnsafe(1 << 22);
      while (this.offset < size) {
        const { bytesRead } = await fh.read(chunk, 0, Math.min(chunk.length, size - this.offset), this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        const buf = this.rest.length ? Buffer.concat([this.rest, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
        if (this.binary) this.epochLines(buf);
        else this.parse(buf);
      }
    } finally {
      await fh.close();
    }
  }

  private reset(): void {
    for (const c of COLUMNS) this.cols[c] = new Growable();
    this.epochs.length = 0;
    this.offset = 0;
    this.binOffset = 0;
    this.binary = undefined;
    this.rest = Buffer.alloc(0);
    this.smoothCache = undefined;
  }

  /** Whole records of steps.bin after those already read. */
  private async readSteps(file: string): Promise<void> {
    const rec = 8 * STEP_FIELDS.length;
    const size = (await fs.promises.stat(file)).size;
    const whole = Math.floor(size / rec) * rec;
    if (whole <= this.binOffset) return;
    const fh = await fs.promises.open(file, 'r');
    try {
      const buf = Buffer.alloc(whole - this.binOffset);
      await fh.read(buf, 0, buf.length, this.binOffset);
      const f = new Float64Array(buf.buffer, buf.byteOffset, buf.length / 8);
      for (let i = 0; i < f.length; i += STEP_FIELDS.length) STEP_FIELDS.forEach((c, j) => this.cols[c].push(f[i + j]));
      this.binOffset = whole;
    } finally {
      await fh.close();
    }
  }

  /** The epoch lines of a chunk of metrics.jsonl (`{"epoch":…}`), found without parsing the step lines. */
  private epochLines(buf: Buffer): void {
    const last = buf.lastIndexOf(0x0a);
    this.rest = Buffer.from(buf.subarray(last + 1));
    const marker = Buffer.from('{"epoch":');
    for (let i = buf[0] === 0x7b && buf.subarray(0, marker.length).equals(marker) ? 0 : buf.indexOf('\n{"epoch":'); i >= 0 && i < last; i = buf.indexOf('\n{"epoch":', i + 1)) {
      const from = buf[i] === 0x0a ? i + 1 : i;
      const to = buf.indexOf(0x0a, from);
      try {
        this.row(JSON.parse(buf.toString('utf8', from, to < 0 ? buf.length : to)));
      } catch {
        // torn
      }
    }
  }

  /** Whole lines of buf into the columns; the torn tail waits for the next read. */
  private parse(buf: Buffer): void {
    const last = buf.lastIndexOf(0x0a);
    if (last < 0) {
      this.rest = Buffer.from(buf);
      return;
    }
    this.rest = Buffer.from(buf.subarray(last + 1));
    const text = buf.toString('utf8', 0, last);
    // the lines of a chunk as one JSON array (V8 parses that far faster than line by line); a
    // chunk with a blank or torn line is read line by line, skipping what does not parse
    let rows: unknown[] | undefined;
    if (!/\r|\n\n|^\n/.test(text)) {
      try {
        rows = JSON.parse(`[${text.replace(/\n/g, ',')}]`) as unknown[];
      } catch {
        rows = undefined;
      }
    }
    if (!rows) {
      rows = [];
      for (const l of text.split(/\r?\n/)) {
        if (!l.trim()) continue;
        try {
          rows.push(JSON.parse(l));
        } catch {
          // a torn line of a killed writer
        }
      }
    }
    for (const r of rows) this.row(r as Record<string, unknown>);
  }

  private row(m: Record<string, unknown>): void {
    if (!m || typeof m !== 'object') return;
    if (m.trainLoss !== undefined && m.epoch !== undefined) {
      this.epochs.push(m as unknown as EpochRow);
      return;
    }
    if (this.binary) return;
    if (m.step === undefined || m.loss === undefined) return;
    for (const c of COLUMNS) {
      const v = m[c];
      this.cols[c].push(typeof v === 'number' ? v : NaN);
    }
  }

  /** The debiased EMA of the whole loss series (cached; extended as steps arrive). */
  smoothed(weight: number): (number | null)[] {
    const loss = this.column('loss');
    const c = this.smoothCache;
    if (c && c.weight === weight && c.n === loss.length) return c.values;
    const values = emaDebiased(loss, weight);
    this.smoothCache = { weight, n: loss.length, values };
    return values;
  }

  /**
   * The points of the steps in [x0, x1] to draw `buckets` pixels wide: every point when there are
   * few, else each bucket's minimum and maximum of the loss, with the other columns and the
   * smoothed loss at the same steps.
   */
  window(o: { x0?: number; x1?: number; buckets: number; smoothing: number }): { steps: StepSeries; smoothed: (number | null)[]; extent: [number, number] } {
    const step = this.column('step');
    const loss = this.column('loss');
    const buckets = Math.max(1, Math.floor(o.buckets));
    const sm = this.smoothed(o.smoothing);
    // each bucket's extremes of the loss and of the smoothed loss, so that both curves keep their shape
    const a = minMaxIndices(step, loss, buckets, o.x0 ?? -Infinity, o.x1 ?? Infinity);
    const b = o.smoothing > 0 ? minMaxIndices(step, this.smoothedNumbers(o.smoothing), buckets, o.x0 ?? -Infinity, o.x1 ?? Infinity) : [];
    const idx = b.length ? [...new Set([...a, ...b])].sort((x, y) => x - y) : a;
    const pick = (c: Column) => idx.map((i) => this.cols[c].data[i]);
    const n = step.length;
    return {
      steps: { step: pick('step'), loss: pick('loss'), gradNorm: pick('gradNorm'), lr: pick('lr'), time: pick('time') },
      smoothed: idx.map((i) => sm[i]),
      extent: [n ? step[0] : 0, n ? step[n - 1] : 0],
    };
  }

  private smoothedNumbers(weight: number): Float64Array {
    const c = this.smoothCache!;
    if (this.smoothNum?.values !== c.values) this.smoothNum = { values: c.values, numbers: Float64Array.from(c.values, (v) => (v === null ? NaN : v)) };
    void weight;
    return this.smoothNum.numbers;
  }

  /** Every step, as columns (the whole series of a short run, the data of an export). */
  all(): StepSeries {
    return { step: Array.from(this.column('step')), loss: Array.from(this.column('loss')), gradNorm: Array.from(this.column('gradNorm')), lr: Array.from(this.column('lr')), time: Array.from(this.column('time')) };
  }
}

/** One series per run folder, shared by the dashboards that show it (and the overlays of others); the `keep` used last. */
export class MetricsCache {
  private readonly runs = new Map<string, RunSeries>();

  constructor(private readonly keep = 12) {}

  async get(dir: string): Promise<RunSeries> {
    let s = this.runs.get(dir);
    if (s) this.runs.delete(dir);
    else s = new RunSeries(dir);
    this.runs.set(dir, s); // the newest last
    while (this.runs.size > this.keep) this.runs.delete(this.runs.keys().next().value!);
    await s.refresh();
    return s;
  }

  forget(dir: string): void {
    this.runs.delete(dir);
  }
}

/** The steps of a dashboard snapshot: all of a short run, a window of buckets × 2 points of a long one. */
export function snapshotSteps(series: RunSeries, o: { buckets?: number; smoothing?: number } = {}): { steps: StepSeries; stepsTotal?: number; smoothed?: (number | null)[]; stepsExtent?: [number, number] } {
  if (series.length <= WHOLE_SERIES_LIMIT) return { steps: series.all() };
  const w = series.window({ buckets: o.buckets ?? 1200, smoothing: o.smoothing ?? 0.6 });
  return { steps: w.steps, smoothed: w.smoothed, stepsTotal: series.length, stepsExtent: w.extent };
}

/** The answer to a webview's series/window request. */
export function windowAnswer(series: RunSeries, m: Extract<DashboardToHost, { type: 'series/window' }>): Extract<HostToDashboard, { type: 'series/didWindow' }> {
  const buckets = Math.min(4096, Math.max(16, Math.floor(m.buckets)));
  const smoothing = Math.min(0.999, Math.max(0, Number.isFinite(m.smoothing) ? m.smoothing : 0.6));
  const w = series.window({ x0: m.x0, x1: m.x1, buckets, smoothing });
  return { type: 'series/didWindow', requestId: m.requestId, steps: w.steps, smoothed: w.smoothed, total: series.length, extent: w.extent };
}

/** A loss overlay of another run: at most 2000 points. */
export function overlaySteps(series: RunSeries): { step: number[]; loss: number[] } {
  const w = series.window({ buckets: 1000, smoothing: 0 });
  return { step: w.steps.step, loss: w.steps.loss };
}
