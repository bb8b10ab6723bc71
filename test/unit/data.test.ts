// Tokenizers, vocabularies, minibatches (d2l semantics), safetensors and checkpoint gate order.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildVocab, lettersOnly, loadTextCorpus, tokenize } from '../../src/engine/data/text';
import { randomEpoch, sequentialEpoch, splitTail, validationBatches, batchesPerEpoch } from '../../src/engine/data/batches';
import { Rng } from '../../src/engine/util/rng';
import { decodeSafetensors, encodeSafetensors } from '../../src/engine/util/safetensors';
import { GATE_ORDERS, INTERNAL_FROM_TORCH, TORCH_FROM_INTERNAL, loadCheckpoint, permuteGateBlocks, saveCheckpoint } from '../../src/engine/train/checkpoint';
import { UserError } from '../../src/engine/errors';
import { encodePrefix } from '../../src/engine/train/sample';

const CORPUS = path.resolve(__dirname, '../../examples/data/timemachine.txt');
const where = { file: '/m.gatelab.yaml', line: 3, key: 'data.source' };

describe('text', () => {
  it("d2l's Time Machine: letters only, lower case, 28 tokens with <unk>", async () => {
    const c = await loadTextCorpus(CORPUS, { tokens: 'char', preprocess: 'letters', minFrequency: 0 }, where);
    expect(c.vocab.size).toBe(28);
    expect(c.vocab.tokens.slice(0, 6)).toEqual(['<unk>', ' ', 'e', 't', 'a', 'i']);
    // d2l: len(corpus) = 170580 for the letters-only character corpus
    expect(c.ids.length).toBe(170580);
    const text = Array.from(c.ids.subarray(0, 16), (i) => c.vocab.tokens[i]).join('');
    expect(text).toBe('the time machine');
  });

  it('a sampling prefix is encoded with the corpus tokenizer; a trailing space asks for the next word', async () => {
    const c = await loadTextCorpus(CORPUS, { tokens: 'char', preprocess: 'letters', minFrequency: 0 }, where);
    const opts = { tokens: 'char', preprocess: 'letters', minFrequency: 0 } as const;
    const text = (ids: number[]) => ids.map((i) => c.vocab.tokens[i]).join('');
    expect(text(encodePrefix('The Time, Traveller', c.vocab, opts))).toBe('the time traveller');
    expect(text(encodePrefix('the time traveller ', c.vocab, opts))).toBe('the time traveller ');
    expect(text(encodePrefix('time!!  ', c.vocab, opts))).toBe('time ');
    expect(() => encodePrefix('1898', c.vocab, opts)).toThrow(/no tokens after preprocessing/);
  });

  it('letters rule and word tokens', () => {
    expect(lettersOnly('The Time Machine, by H. G. Wells [1898]')).toBe('the time machine by h g wells');
    expect(tokenize('Hello,  world\nagain', { tokens: 'word', preprocess: 'none', minFrequency: 0 })).toEqual(['Hello,', 'world', 'again']);
    const counts = new Map([['a', 3], ['b', 1], ['c', 3]]);
    expect(buildVocab(counts, 2).tokens).toEqual(['<unk>', 'a', 'c']);
  });

  it('bad data sources are user errors naming the model file and key', async () => {
    await expect(loadTextCorpus('/nonexistent.txt', { tokens: 'char', preprocess: 'none', minFrequency: 0 }, where)).rejects.toThrow(UserError);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-data-'));
    fs.writeFileSync(path.join(dir, 'digits.txt'), '123 456\n');
    try {
      await loadTextCorpus(path.join(dir, 'digits.txt'), { tokens: 'char', preprocess: 'letters', minFrequency: 0 }, where);
      expect.unreachable();
    } catch (e) {
      expect((e as UserError).format()).toMatch(/^\/m\.gatelab\.yaml:3: data\.source: the corpus .* has no tokens after preprocessing/);
    }
  });
});

describe('minibatches', () => {
  const ids = Int32Array.from({ length: 1000 }, (_, i) => i);

  it('sequential: row b of batch k+1 continues row b of batch k; y is x shifted by one', () => {
    const ep = sequentialEpoch(ids, 4, 5, new Rng(1));
    expect(ep.contiguous).toBe(true);
    const [B, T] = [4, 5];
    for (let k = 0; k + 1 < ep.count; k++) {
      const [cur, next] = [ep.batch(k), ep.batch(k + 1)];
      for (let b = 0; b < B; b++) {
        expect(next.x[b]).toBe(cur.x[(T - 1) * B + b] + 1);
        for (let t = 0; t < T; t++) expect(cur.y[t * B + b]).toBe(cur.x[t * B + b] + 1);
      }
    }
    expect(ep.count).toBeGreaterThanOrEqual(batchesPerEpoch(ids.length, B, T, 'sequential'));
  });

  it('random: each sequence is T consecutive tokens, all distinct starts, multiples of T after the offset', () => {
    const ep = randomEpoch(ids, 4, 5, new Rng(2));
    const starts = new Set<number>();
    for (let k = 0; k < ep.count; k++) {
      const b = ep.batch(k);
      for (let s = 0; s < 4; s++) {
        const start = b.x[s];
        starts.add(start);
        for (let t = 0; t < 5; t++) expect(b.x[t * 4 + s]).toBe(start + t);
      }
    }
    expect(starts.size).toBe(ep.count * 4);
    const offset = Math.min(...starts) % 5;
    for (const s of starts) expect((s - offset) % 5).toBe(0);
  });

  it('validation: the tail, no random offset', () => {
    const { train, valid } = splitTail(ids, 0.1);
    expect(train.length).toBe(900);
    expect(valid[0]).toBe(900);
    const vb = validationBatches(valid, 32, 10);
    expect(vb.B).toBe(9);
    expect(vb.batch(0).x[0]).toBe(900);
  });
});

describe('safetensors and checkpoints', () => {
  it('encode/decode round trip, scalars included; corrupt files are user errors', () => {
    const buf = encodeSafetensors(
      { a: { dtype: 'F64', shape: [2], data: Float64Array.of(1, 2) }, loss: { dtype: 'F32', shape: [], data: Float32Array.of(3.5) } },
      { k: 'v' },
    );
    const back = decodeSafetensors(buf, 'x.safetensors');
    expect(Array.from(back.tensors.a.data as Float64Array)).toEqual([1, 2]);
    expect(back.tensors.loss.shape).toEqual([]);
    expect(back.metadata.k).toBe('v');
    expect(() => decodeSafetensors(buf.subarray(0, buf.length - 4), 'x.safetensors')).toThrow(UserError);
    expect(() => decodeSafetensors(Uint8Array.of(1, 2, 3), 'x.safetensors')).toThrow(UserError);
  });

  it('gate order: one permutation table, PyTorch (i,f,g,o) at the file boundary, internal (i,f,o,g) inside', () => {
    expect(GATE_ORDERS.pytorch).toEqual(['i', 'f', 'g', 'o']);
    expect(INTERNAL_FROM_TORCH).toEqual([0, 1, 3, 2]);
    expect(TORCH_FROM_INTERNAL.map((k) => GATE_ORDERS.internal[k])).toEqual(['i', 'f', 'g', 'o']);
    // rows tagged by gate: torch block k holds value 10·k
    const H = 2;
    const torch = Float32Array.from({ length: 4 * H * 3 }, (_, n) => 10 * Math.floor(n / (H * 3)));
    const internal = permuteGateBlocks(torch, [4 * H, 3], INTERNAL_FROM_TORCH);
    expect([0, 1, 2, 3].map((k) => internal[k * H * 3])).toEqual([0, 10, 30, 20]);
    expect(Array.from(permuteGateBlocks(internal, [4 * H, 3], TORCH_FROM_INTERNAL))).toEqual(Array.from(torch));

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-ck-'));
    const f = path.join(dir, 'w.safetensors');
    saveCheckpoint(f, { params: new Map([['lstm.bias_ih_l0', { shape: [4 * H], data: Float32Array.of(1, 1, 2, 2, 3, 3, 4, 4) }]]), metadata: {} });
    // in the file: i, f, g, o = internal blocks 0, 1, 3, 2
    const raw = decodeSafetensors(fs.readFileSync(f), f);
    expect(Array.from(raw.tensors['lstm.bias_ih_l0'].data as Float32Array)).toEqual([1, 1, 2, 2, 4, 4, 3, 3]);
    expect(raw.metadata.format).toBe('pt');
    expect(Array.from(loadCheckpoint(f).params.get('lstm.bias_ih_l0')!.data)).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
    expect(fs.readdirSync(dir)).toEqual(['w.safetensors']);
  });
});
