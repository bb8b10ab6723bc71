// LSTM variants: hard-sigmoid gates, max(0, min(1, slope·x + offset)) (ONNX / TF.js defaults 0.2
// and 0.5). Gradients pass the finite-difference check (float64, through the generated programs);
// the forward matches onnxruntime's own LSTM operator with activations [HardSigmoid, Tanh, Tanh].

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildEvalProgram, buildGradProgram } from '../../src/engine/train/program';
import { LmSpec } from '../../src/engine/nn/lm';
import { initParams } from '../../src/engine/nn/init';
import { saveCheckpoint } from '../../src/engine/train/checkpoint';
import { Rng } from '../../src/engine/util/rng';

const ROOT = path.resolve(__dirname, '../..');
const hard = { kind: 'hard-sigmoid' as const, alpha: 0.2, beta: 0.5 };

async function programs(spec: LmSpec, B: number, T: number) {
  const grad = await ort.InferenceSession.create(buildGradProgram({ lm: spec, B, T }).graph.encode(), { logSeverityLevel: 3 });
  const evalS = await ort.InferenceSession.create(buildEvalProgram({ lm: spec, B, T }).graph.encode(), { logSeverityLevel: 3 });
  return { grad, evalS };
}

async function fdCheck(gates: LmSpec['gates']) {
    const spec: LmSpec = { vocab: 6, embedding: 3, hidden: [4, 3], dtype: 'float64', gates };
    const [B, T] = [2, 7];
    const prog = buildGradProgram({ lm: spec, B, T });
    const { grad, evalS } = await programs(spec, B, T);
    const rng = new Rng(11);
    const params = initParams(prog.params, spec.hidden.map((h) => ({ hidden: h, forgetBias: 0 })), 3, 'float64');
    const feeds: Record<string, ort.Tensor> = {};
    for (const p of prog.params) {
      const d = params.get(p.name)!.data as Float64Array;
      // spread the pre-activations over the hard sigmoid's linear part and both flat parts
      if (p.name.startsWith('lstm.')) for (let i = 0; i < d.length; i++) d[i] *= 6;
      feeds[`p.${p.name}`] = new ort.Tensor('float64', d, p.shape);
    }
    spec.hidden.forEach((H, k) => {
      feeds[`h.l${k}`] = new ort.Tensor('float64', Float64Array.from({ length: B * H }, () => rng.uniform(-0.5, 0.5)), [B, H]);
      feeds[`c.l${k}`] = new ort.Tensor('float64', Float64Array.from({ length: B * H }, () => rng.uniform(-1, 1)), [B, H]);
    });
    feeds.x = new ort.Tensor('int64', BigInt64Array.from({ length: T * B }, () => BigInt(rng.int(0, spec.vocab - 1))), [T, B]);
    feeds.y = new ort.Tensor('int64', BigInt64Array.from({ length: T * B }, () => BigInt(rng.int(0, spec.vocab - 1))), [T, B]);
    const r = await grad.run(feeds);
    const loss = async () => ((await evalS.run(feeds)).loss.data as Float64Array)[0];
    let worst = 0;
    const names = [...prog.params.map((p) => [`p.${p.name}`, `d.${p.name}`]), ...spec.hidden.flatMap((_, k) => [[`h.l${k}`, `d.h.l${k}`], [`c.l${k}`, `d.c.l${k}`]])];
    for (const [input, out] of names) {
      const t = feeds[input].data as Float64Array;
      const d = r[out].data as Float64Array;
      for (let i = 0; i < t.length; i++) {
        const old = t[i];
        const eps = 1e-6;
        t[i] = old + eps;
        const up = await loss();
        t[i] = old - eps;
        const down = await loss();
        t[i] = old;
        const fd = (up - down) / (2 * eps);
        const err = Math.abs(fd - d[i]);
        worst = Math.max(worst, err / (1e-7 + 1e-5 * Math.abs(fd)));
        expect(err, `${out}[${i}]: analytic ${d[i]} vs FD ${fd}`).toBeLessThanOrEqual(1e-7 + 1e-5 * Math.abs(fd));
      }
    }
    expect(worst).toBeLessThanOrEqual(1);
    await grad.release();
    await evalS.release();
}

describe('cell variants: gradients of every parameter and of the initial state match central finite differences (float64)', () => {
  it('hard-sigmoid gates', () => fdCheck([hard, hard]));
  it('coupled input and forget gates (CIFG, f = 1 − i)', () => fdCheck([{ kind: 'sigmoid', coupled: true }, { kind: 'sigmoid', coupled: true }]));
  it('coupled gates with hard-sigmoid', () => fdCheck([{ ...hard, coupled: true }, { kind: 'sigmoid' }]));
  it('peephole connections (i, f see c_{t−1}; o sees c_t)', () => fdCheck([{ kind: 'sigmoid', peepholes: true }, { kind: 'sigmoid', peepholes: true }]));
  it('cell clipping (pre-activations beyond ±1.5 get no gradient)', () => fdCheck([{ kind: 'sigmoid', clip: 1.5 }, { ...hard, clip: 1.5, coupled: true }]));
  it('peepholes with coupled gates and hard-sigmoid', () => fdCheck([{ ...hard, peepholes: true, coupled: true }, { kind: 'sigmoid', peepholes: true }]));
  it('peepholes with cell clipping (the peephole terms inside the clipped pre-activations)', () =>
    fdCheck([{ kind: 'sigmoid', peepholes: true, clip: 1.5 }, { ...hard, peepholes: true, coupled: true, clip: 1.5 }]));
});

describe('cell variants: the forward matches onnxruntime’s own LSTM operator (via gatelab export)', () => {
  const layerYaml = {
    hard: '{ hidden: 8, gateActivation: hard-sigmoid, hardSigmoidSlope: 0.25, hardSigmoidOffset: 0.4 }',
    coupled: '{ hidden: 8, coupledGates: true }',
    peepholes: '{ hidden: 8, peepholes: true }',
    clip: '{ hidden: 8, cellClip: 1.5 }',
    peepclip: '{ hidden: 8, peepholes: true, cellClip: 1.5 }',
  };
  const gatesOf = { hard: { kind: 'hard-sigmoid' as const, alpha: 0.25, beta: 0.4 }, coupled: { kind: 'sigmoid' as const, coupled: true }, peepholes: { kind: 'sigmoid' as const, peepholes: true }, clip: { kind: 'sigmoid' as const, clip: 1.5 }, peepclip: { kind: 'sigmoid' as const, peepholes: true, clip: 1.5 } };
  for (const variant of ['hard', 'coupled', 'peepholes', 'clip', 'peepclip'] as const)
  it(`${({ hard: 'HardSigmoid activations', coupled: 'input_forget = 1', peepholes: 'peepholes (input P)', clip: 'clip = 1.5', peepclip: 'peepholes (input P) and clip = 1.5' })[variant]}`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-hard-'));
    const V = 9;
    const spec: LmSpec = { vocab: V, embedding: 0, hidden: [8], dtype: 'float32', gates: [gatesOf[variant]] };
    const [B, T] = [3, 11];
    const evalP = buildEvalProgram({ lm: spec, B, T });
    const params = initParams(evalP.params, [{ hidden: 8, forgetBias: 0 }], 5, 'float32');
    for (const [k, v] of params) if (k.startsWith('lstm.')) for (let i = 0; i < v.data.length; i++) v.data[i] *= 5;
    saveCheckpoint(path.join(dir, 'w.safetensors'), { params, metadata: {} });
    fs.writeFileSync(path.join(dir, 'c.txt'), 'unused');
    fs.writeFileSync(
      path.join(dir, 'm.gatelab.yaml'),
      `name: m\ndata: { source: c.txt }\nmodel:\n  layers:\n    - ${layerYaml[variant]}\n`,
    );
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'export', 'm.gatelab.yaml', '--init', 'w.safetensors', '--onnx', 'm.onnx'], { cwd: dir, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const rng = new Rng(2);
    const x = BigInt64Array.from({ length: T * B }, () => BigInt(rng.int(0, V - 1)));
    const y = BigInt64Array.from({ length: T * B }, () => BigInt(rng.int(0, V - 1)));
    const ours = await ort.InferenceSession.create(evalP.graph.encode(), { logSeverityLevel: 3 });
    const feeds: Record<string, ort.Tensor> = { x: new ort.Tensor('int64', x, [T, B]), y: new ort.Tensor('int64', y, [T, B]) };
    for (const p of evalP.params) feeds[`p.${p.name}`] = new ort.Tensor('float32', params.get(p.name)!.data as Float32Array, p.shape);
    feeds['h.l0'] = new ort.Tensor('float32', new Float32Array(B * 8), [B, 8]);
    feeds['c.l0'] = new ort.Tensor('float32', new Float32Array(B * 8), [B, 8]);
    const ourLoss = ((await ours.run(feeds)).loss.data as Float32Array)[0];
    const theirs = await ort.InferenceSession.create(path.join(dir, 'm.onnx'));
    const logits = (await theirs.run({ tokens: new ort.Tensor('int64', x, [T, B]) })).logits.data as Float32Array;
    let loss = 0;
    for (let n = 0; n < T * B; n++) {
      const row = logits.subarray(n * V, (n + 1) * V);
      const m = Math.max(...row);
      loss += m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0)) - row[Number(y[n])];
    }
    loss /= T * B;
    expect(Math.abs(loss - ourLoss) / ourLoss).toBeLessThan(1e-5);
    // and it differs from the same weights with sigmoid gates (the variant is really in effect)
    const plain = buildEvalProgram({ lm: { ...spec, gates: undefined }, B, T });
    const sig = await ort.InferenceSession.create(plain.graph.encode(), { logSeverityLevel: 3 });
    const plainFeeds = Object.fromEntries(Object.entries(feeds).filter(([k]) => !k.includes('peephole')));
    const sigLoss = ((await sig.run(plainFeeds)).loss.data as Float32Array)[0];
    expect(Math.abs(sigLoss - ourLoss)).toBeGreaterThan(1e-3);
  });
});
