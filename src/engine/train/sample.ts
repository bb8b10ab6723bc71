// Text generation from a language model: the one-token step program, warmed up on the prefix, then
// sampling from softmax(logits / temperature) token by token (temperature 0 = greedy, as d2l's
// predict_ch8). Seeded, so a sample is reproducible.

import * as ort from 'onnxruntime-node';
import { LmSpec } from '../nn/lm';
import { hasCellState } from '../nn/gru';
import { Rng } from '../util/rng';
import { DeviceChoice, createSession } from '../runtime/device';
import { buildStepProgram } from './program';
import { FloatData } from './checkpoint';
import { Vocab, TextOptions, tokenize, detokenize } from '../data/text';
import { UserError } from '../errors';

export interface SampleOptions {
  prefix: string;
  length: number;
  temperature: number;
  seed?: number;
}

export class LmSampler {
  private constructor(
    private session: ort.InferenceSession,
    private readonly spec: LmSpec,
    private readonly feeds: Record<string, ort.Tensor>,
    private readonly choice: DeviceChoice,
    private readonly threads?: number,
  ) {}

  static async create(
    spec: LmSpec,
    params: Map<string, { shape: number[]; data: FloatData }>,
    choice: DeviceChoice = { device: 'cpu' },
    threads?: number,
  ): Promise<LmSampler> {
    const s = new LmSampler(undefined as unknown as ort.InferenceSession, spec, {}, choice, threads);
    await s.load(params);
    return s;
  }

  /** (Re)builds the session with these weights baked in. */
  private async load(params: Map<string, { shape: number[]; data: FloatData }>): Promise<void> {
    const prog = buildStepProgram({ lm: this.spec, B: 1, weights: params as Map<string, { shape: number[]; data: Float32Array }> });
    const old = this.session;
    this.session = (await createSession(prog.graph.encode(), this.choice, { fallback: true, threads: this.threads })).session;
    await old?.release().catch(() => undefined);
  }

  /** Uses new weights (same shapes), e.g. the trainer's current ones. */
  async setParams(params: Map<string, { shape: number[]; data: FloatData }>): Promise<void> {
    await this.load(params);
  }

  /** Token ids following `prefixIds` (which must not be empty). */
  async generate(prefixIds: number[], length: number, temperature: number, rng: Rng): Promise<number[]> {
    if (prefixIds.length === 0) throw new Error('generate: empty prefix');
    const { spec } = this;
    const Float = spec.dtype === 'float64' ? Float64Array : Float32Array;
    const state: Record<string, ort.Tensor> = {};
    spec.hidden.forEach((H, k) => {
      state[`h.l${k}`] = new ort.Tensor(spec.dtype as 'float32', new Float(H), [1, H]);
      if (hasCellState(spec, k)) state[`c.l${k}`] = new ort.Tensor(spec.dtype as 'float32', new Float(H), [1, H]);
    });
    const out: number[] = [];
    let logits: ArrayLike<number> = [];
    const step = async (id: number) => {
      const r = await this.session.run({ ...this.feeds, ...state, x: new ort.Tensor('int64', BigInt64Array.of(BigInt(id)), [1]) });
      spec.hidden.forEach((_, k) => {
        state[`h.l${k}`] = r[`h_out.l${k}`];
        if (hasCellState(spec, k)) state[`c.l${k}`] = r[`c_out.l${k}`];
      });
      logits = r.logits.data as Float32Array;
    };
    for (const id of prefixIds) await step(id);
    for (let n = 0; n < length; n++) {
      const next = pick(logits, temperature, rng);
      out.push(next);
      if (n + 1 < length) await step(next);
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Greedy at temperature 0, else a draw from softmax(logits / temperature). */
export function pick(logits: ArrayLike<number>, temperature: number, rng: Rng): number {
  if (temperature <= 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const p = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) p[i] = Math.exp((logits[i] - max) / temperature);
  return rng.categorical(p);
}

/** Prefix text → ids with the corpus's tokenizer; an empty result is a user error. */
export function encodePrefix(prefix: string, vocab: Vocab, opts: TextOptions): number[] {
  const toks = tokenize(prefix, opts);
  if (toks.length === 0)
    throw new UserError(`the prefix "${prefix}" has no tokens after preprocessing`, { key: '--prefix' }, 'give a prefix with letters in it');
  // letters-only preprocessing strips each line (d2l), but a character prefix that ends in a space
  // asks for the next word: keep that space, as the user typed it
  if (opts.tokens === 'char' && /\s$/.test(prefix) && toks[toks.length - 1] !== ' ' && vocab.tokens.includes(' ')) toks.push(' ');
  return toks.map((t) => vocab.id(t));
}

/** Prefix followed by the generated text. */
export async function sampleText(
  sampler: LmSampler,
  vocab: Vocab,
  opts: TextOptions,
  o: SampleOptions,
): Promise<string> {
  const ids = encodePrefix(o.prefix, vocab, opts);
  const gen = await sampler.generate(ids, o.length, o.temperature, new Rng(o.seed ?? 0));
  const prefixText = detokenize(ids.map((i) => vocab.tokens[i]), opts.tokens);
  const genText = detokenize(gen.map((i) => vocab.tokens[i]), opts.tokens);
  return opts.tokens === 'word' ? `${prefixText} ${genText}` : prefixText + genText;
}
