// task: language-model — a text corpus (characters or words), d2l's minibatches (sequential: a
// random offset per epoch and the state carried between consecutive batches, reset at the epoch
// start; random: fresh state per batch), the validation loss of the held-out tail, perplexity, an
// editable gate probe with the next-token guesses, and samples at epoch ends and after training.

import * as ort from 'onnxruntime-node';
import type { ModelConfig } from '../config/types';
import { whereOf } from '../config/load';
import { UserError } from '../errors';
import { loadTextCorpus, TokenIds, Vocab } from '../data/text';
import { batchesPerEpoch, randomEpoch, sequentialEpoch, splitTail, validationBatches } from '../data/batches';
import { readTokenBatch, timeMajor } from '../data/batchjson';
import { hasCellState } from '../nn/gru';
import { lmParams } from '../nn/lm';
import { buildEvalProgram, buildGradProgram, buildTrainProgram, carriedState } from '../train/program';
import { checkCheckpointFits, checkpointVocabSize, lmMetadata, lmSpecOf, textOptionsOf, vocabFromMetadata } from '../train/lmsetup';
import { encodePrefix, LmSampler, sampleText } from '../train/sample';
import { GateProbe } from '../train/probe';
import type { Task, TaskRun } from './task';
import { noBidirectional, zeros } from './common';

const DTYPE = 'float32' as const;

/** The first words of the corpus (d2l samples after "time traveller"). */
export function defaultPrefix(ids: TokenIds, vocab: Vocab, tokens: 'char' | 'word'): string {
  const n = tokens === 'char' ? 15 : 3;
  const toks = Array.from(ids.subarray(0, n), (i) => vocab.tokens[i]);
  if (tokens === 'word') return toks.join(' ');
  // end at a word boundary when there is one
  const s = toks.join('');
  const cut = s.lastIndexOf(' ');
  return cut > 3 ? s.slice(0, cut) : s;
}

export const languageModel: Task = {
  kind: 'language-model',
  sweepMetric: 'validLoss',

  check(cfg: ModelConfig) {
    // a language model must not see the future
    noBidirectional(cfg, 'a bidirectional language model');
  },

  async setup({ cfg, job, init, log, session, io }): Promise<TaskRun> {
    const opts = textOptionsOf(cfg);
    const given = init ? vocabFromMetadata(init.ck.metadata, init.file) : undefined;
    const corpus = await loadTextCorpus(cfg.data.source, opts, { ...whereOf(cfg, 'data.source'), file: cfg.file, key: 'data.source' }, given, io);
    if (corpus.cached) log('info', `${corpus.ids.length.toLocaleString('en-US')} tokens of ${cfg.data.sourceAsWritten} from the token cache (--no-cache tokenises again)`);
    const vocab = corpus.vocab;
    const { train, valid: heldOut } = splitTail(corpus.ids, cfg.data.validation);
    // each evaluation reads at most data.validationTokens of the held-out tail (its start)
    const valid = heldOut.subarray(0, Math.min(heldOut.length, cfg.data.validationTokens));
    if (valid.length < heldOut.length)
      log('info', `validation: the first ${valid.length.toLocaleString('en-US')} of the ${heldOut.length.toLocaleString('en-US')} held-out tokens are evaluated each time (data.validationTokens)`);
    const B = cfg.train.batchSize;
    const T = cfg.data.sequenceLength;
    const partition = cfg.data.partition;
    const perEpoch = batchesPerEpoch(train.length, B, T, partition);
    if (perEpoch < 1)
      throw new UserError(
        `the training part of the corpus (${train.length} tokens) is too short for one batch of ${B} sequences × ${T} steps`,
        whereOf(cfg, 'train.batchSize'),
        'lower train.batchSize or data.sequenceLength, or use more text',
      );
    const spec = lmSpecOf(cfg, vocab.size, DTYPE);
    const dropout = cfg.model.dropout;
    const program = buildTrainProgram({ lm: spec, B, T, optimizer: cfg.train.optimizer, clipNorm: cfg.train.clipNorm, dropout });

    // validation: the held-out tail cut into rows, the state carried from batch to batch
    const vb = valid.length > T + 1 ? validationBatches(valid, B, T) : undefined;
    if (!vb && cfg.data.validation > 0) log('warn', `the validation part (${valid.length} tokens) is too short for one sequence of ${T}; no validation loss`);

    // gate views: the start of the validation text (or of the training text), or the user's probe
    const probe = new GateProbe(spec, vocab.tokens);
    const probeSource = valid.length >= 40 ? valid : train;
    let probeIds = Array.from(probeSource.subarray(0, Math.min(120, probeSource.length)));
    if (job.probe) probeIds = encodePrefix(job.probe, vocab, opts).slice(0, 400);

    // samples (at evaluations at most every 20 s, and at the end)
    let sampler: LmSampler | undefined;
    let lastSampleAt = Date.now();
    const samplePrefix = defaultPrefix(corpus.ids, vocab, cfg.data.tokens);
    const sampleLength = cfg.data.tokens === 'char' ? 100 : 30;
    const sample = async (run: Parameters<NonNullable<TaskRun['finish']>>[0], temperature: number): Promise<string | undefined> => {
      try {
        if (sampler) await sampler.setParams(run.params());
        else sampler = await LmSampler.create(spec, run.params(), run.device, job.threads);
        const text = await sampleText(sampler, vocab, opts, { prefix: samplePrefix, length: sampleLength, temperature, seed: run.step });
        lastSampleAt = Date.now();
        run.emitSample({ step: run.step, prefix: samplePrefix, text }, temperature);
        return text;
      } catch (e) {
        log('warn', `could not generate a sample: ${(e as Error).message}`);
        return undefined;
      }
    };

    return {
      program,
      carried: carriedState(spec, B),
      dropout: dropout > 0 ? { p: dropout, shapes: spec.hidden.map((H, k) => ({ name: `drop.l${k}`, shape: [T, B, H] })) } : undefined,
      stepsPerEpoch: perEpoch,
      started: { vocabulary: vocab.size, tokensPerStep: B * T, trainTokens: train.length, validTokens: valid.length },
      describe: `vocabulary ${vocab.size}, ${train.length} training tokens, ${valid.length} validation tokens`,
      epoch(rng) {
        const ep = partition === 'sequential' ? sequentialEpoch(train, B, T, rng) : randomEpoch(train, B, T, rng);
        const carry = ep.contiguous && cfg.train.carryState;
        return {
          steps: ep.count,
          chunk(i, k) {
            const x = new BigInt64Array(k * T * B);
            const y = new BigInt64Array(k * T * B);
            for (let j = 0; j < k; j++) {
              const b = ep.batch(i + j);
              for (let n = 0; n < T * B; n++) {
                x[j * T * B + n] = BigInt(b.x[n]);
                y[j * T * B + n] = BigInt(b.y[n]);
              }
            }
            // the state starts afresh at the epoch's first batch, and at every batch of random partitioning
            const keep = new Float32Array(k).fill(carry ? 1 : 0);
            if (i === 0) keep[0] = 0;
            return { x: new ort.Tensor('int64', x, [k, T, B]), y: new ort.Tensor('int64', y, [k, T, B]), keep: new ort.Tensor(DTYPE, keep, [k]) };
          },
        };
      },
      async evaluate(params) {
        if (!vb) return undefined;
        const s = await session('eval', () => buildEvalProgram({ lm: spec, B: vb.B, T }).graph.encode());
        const feeds: Record<string, ort.Tensor> = { ...params };
        spec.hidden.forEach((H, k) => {
          feeds[`h.l${k}`] = zeros([vb.B, H]);
          if (hasCellState(spec, k)) feeds[`c.l${k}`] = zeros([vb.B, H]);
        });
        let sum = 0;
        for (let k = 0; k < vb.count; k++) {
          const b = vb.batch(k);
          feeds.x = new ort.Tensor('int64', BigInt64Array.from(b.x, BigInt), [T, vb.B]);
          feeds.y = new ort.Tensor('int64', BigInt64Array.from(b.y, BigInt), [T, vb.B]);
          const r = await s.run(feeds);
          sum += (r.loss.data as Float32Array)[0];
          spec.hidden.forEach((_, k) => {
            feeds[`h.l${k}`] = r[`h_out.l${k}`];
            if (hasCellState(spec, k)) feeds[`c.l${k}`] = r[`c_out.l${k}`];
          });
        }
        const loss = sum / vb.count;
        return { loss, metrics: { validPerplexity: Math.exp(loss) } };
      },
      trainMetrics: (l) => ({ epoch: { trainPerplexity: Math.exp(l) }, summary: { perplexity: Math.exp(l) } }),
      metadata: (step) => lmMetadata(cfg, vocab, step),
      probe: {
        run: (params, step) => probe.run(params, probeIds, step),
        setText(text) {
          try {
            probeIds = encodePrefix(text, vocab, opts).slice(0, 400);
          } catch (e) {
            log('warn', `probe text: ${(e as Error).message}`);
          }
        },
        release: () => probe.release(),
      },
      async afterEvaluation(run, last) {
        if (job.sampleAtEnd !== false && !last && Date.now() - lastSampleAt >= 20_000) await sample(run, 0.7);
      },
      async finish(run) {
        const text = job.sampleAtEnd !== false ? await sample(run, 0) : undefined;
        return text !== undefined ? { sample: text } : {};
      },
      async release() {
        await sampler?.release();
      },
    };
  },

  grad(cfg, ck, ckFile, batchFile) {
    const V = checkpointVocabSize(ck, ckFile);
    const spec = lmSpecOf(cfg, V, 'float64');
    const params = lmParams(spec);
    checkCheckpointFits(ck, params, ckFile, cfg);
    const { B, T, inputs, targets } = readTokenBatch(batchFile, V);
    const feeds: Record<string, ort.Tensor> = { x: new ort.Tensor('int64', timeMajor(inputs), [T, B]), y: new ort.Tensor('int64', timeMajor(targets), [T, B]) };
    spec.hidden.forEach((H, k) => {
      feeds[`h.l${k}`] = zeros([B, H], 'float64');
      if (hasCellState(spec, k)) feeds[`c.l${k}`] = zeros([B, H], 'float64');
    });
    return { params, program: buildGradProgram({ lm: spec, B, T }), feeds, shape: `${B}x${T}` };
  },
};
