// Structure of the generated programs: minimal scan bodies, batched work outside the scans, sound
// graphs (unique names, defined-before-use, de-duplicated constants), the programs' interfaces, and
// a committed text snapshot of a tiny gradient program so that any structural change shows in review.

import { describe, expect, it } from 'vitest';
import { GraphData, NodeData } from '../../src/engine/onnx/proto';
import { buildEvalProgram, buildGradProgram, buildStepProgram, buildTrainProgram } from '../../src/engine/train/program';
import { OptimizerConfig } from '../../src/engine/config/types';

const SGD: OptimizerConfig = { type: 'sgd', learningRate: 1, momentum: 0.9, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 };
const lm = { vocab: 5, embedding: 0, hidden: [3], dtype: 'float64' as const };

function hist(nodes: readonly NodeData[]): Record<string, number> {
  const h: Record<string, number> = {};
  for (const n of nodes) h[n.opType] = (h[n.opType] ?? 0) + 1;
  return Object.fromEntries(Object.entries(h).sort(([a], [b]) => a.localeCompare(b)));
}

function subgraphs(g: GraphData): { node: NodeData; body: GraphData }[] {
  const out: { node: NodeData; body: GraphData }[] = [];
  for (const n of g.nodes) for (const [, a] of n.attributes) if (a.kind === 'graph') out.push({ node: n, body: a.value });
  return out;
}

/** Every node input is a graph input, an initializer, an earlier output, or visible from an outer graph. */
function checkSound(g: GraphData, outer: Set<string> = new Set()): void {
  const defined = new Set<string>([...outer, ...g.inputs.map((v) => v.name), ...g.initializers.map((i) => i.name)]);
  const names = new Set<string>();
  for (const n of g.nodes) {
    expect(names.has(n.name), `duplicate node name ${n.name}`).toBe(false);
    names.add(n.name);
    for (const i of n.inputs) if (i !== '') expect(defined.has(i), `${n.opType} ${n.name} reads ${i} before it is defined`).toBe(true);
    for (const [, a] of n.attributes) if (a.kind === 'graph') checkSound(a.value, defined);
    for (const o of n.outputs) {
      expect(defined.has(o) && !outer.has(o), `${o} defined twice`).toBe(false);
      defined.add(o);
    }
  }
  for (const o of g.outputs) expect(defined.has(o.name), `output ${o.name} is not produced`).toBe(true);
}

function dump(g: GraphData, indent = ''): string {
  const lines: string[] = [];
  const fmt = (shape: readonly (number | string)[] | undefined) => (shape ? `[${shape.join(',')}]` : '?');
  if (!indent) {
    for (const v of g.inputs) lines.push(`input ${v.name}: ${v.dtype}${fmt(v.shape)}`);
    for (const i of g.initializers) lines.push(`const ${i.name}: ${i.tensor.dtype}[${i.tensor.dims.join(',')}]`);
  } else lines.push(`${indent}(${g.inputs.map((v) => `${v.name}: ${v.dtype}${fmt(v.shape)}`).join(', ')})`);
  for (const n of g.nodes) {
    const attrs = n.attributes
      .filter(([, a]) => a.kind !== 'graph')
      .map(([k, a]) => `${k}=${Array.isArray(a.value) ? `[${(a.value as unknown[]).join(',')}]` : a.kind === 'tensor' ? 'tensor' : String(a.value)}`);
    lines.push(`${indent}${n.outputs.join(', ')} = ${n.opType}(${n.inputs.join(', ')})${attrs.length ? ` {${attrs.join(' ')}}` : ''}`);
    for (const [k, a] of n.attributes) if (a.kind === 'graph') lines.push(`${indent}  ${k}:`, dump(a.value, indent + '    '));
  }
  lines.push(`${indent}return ${g.outputs.map((v) => v.name).join(', ')}`);
  return lines.join('\n');
}

describe('scan bodies are minimal', () => {
  const grad = buildGradProgram({ lm, B: 2, T: 4 }).graph.toData();
  const scans = subgraphs(grad);

  it('one forward and one backward Scan per layer, nothing recurrent elsewhere', () => {
    expect(scans.map((s) => s.node.opType)).toEqual(['Scan', 'Scan']);
    for (const s of scans) expect(subgraphs(s.body), 'no nested scans in a cell').toEqual([]);
    expect(hist(grad.nodes).Loop).toBeUndefined();
  });

  it('forward cell: one Gemm for h·Whhᵀ, one Sigmoid over the three gates, and the c/h update', () => {
    expect(hist(scans[0].body.nodes)).toEqual({ Add: 1, Gemm: 1, Identity: 2, Mul: 3, Sigmoid: 1, Split: 2, Tanh: 2 });
  });

  it('backward cell: one Gemm for dpre·Whh and the linear recurrence of dc', () => {
    expect(hist(scans[1].body.nodes)).toEqual({ Add: 1, Concat: 1, Gemm: 1, Identity: 1, Mul: 3 });
  });

  it('input projection and weight gradients are batched outside the scans', () => {
    const top = hist(grad.nodes);
    // one-hot input: x·W_ihᵀ is a Gather; the fc forward + backward, dW_hh and dW_ih are GEMMs over all T·B rows
    expect(top.Gather).toBe(1);
    expect(top.Gemm! + (top.MatMul ?? 0)).toBeGreaterThanOrEqual(4);
    const bodyOps = scans.flatMap((s) => s.body.nodes.map((n) => n.opType));
    expect(bodyOps.filter((o) => o === 'Gemm' || o === 'MatMul')).toHaveLength(2);
  });

  it('the K-step training program is one outer Scan whose body holds the step', () => {
    const train = buildTrainProgram({ lm: { ...lm, dtype: 'float32' }, B: 2, T: 4, optimizer: SGD, clipNorm: 1 }).graph.toData();
    expect(hist(train.nodes).Scan).toBe(1);
    const [outer] = subgraphs(train);
    expect(subgraphs(outer.body).map((s) => s.node.opType)).toEqual(['Scan', 'Scan']);
  });
});

describe('graphs are sound', () => {
  const programs = {
    train: buildTrainProgram({ lm: { vocab: 7, embedding: 4, hidden: [5, 3], dtype: 'float32' }, B: 2, T: 6, optimizer: { ...SGD, type: 'adamw', learningRate: 0.001, weightDecay: 0.01 }, clipNorm: 1 }),
    eval: buildEvalProgram({ lm, B: 2, T: 4 }),
    grad: buildGradProgram({ lm, B: 2, T: 4 }),
    step: buildStepProgram({ lm, B: 1 }),
  };
  for (const [name, p] of Object.entries(programs)) {
    it(`${name}: names unique, every value defined before use, constants de-duplicated`, () => {
      const g = p.graph.toData();
      checkSound(g);
      const seen = new Map<string, string>();
      for (const i of g.initializers) {
        const t = i.tensor;
        const key = `${t.dtype}[${t.dims.join(',')}]:${Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('hex')}`;
        expect(seen.get(key), `${i.name} duplicates ${seen.get(key)}`).toBeUndefined();
        seen.set(key, i.name);
      }
    });
  }

  it('program interfaces', () => {
    const io = (g: GraphData) => ({
      inputs: g.inputs.map((v) => `${v.name}: ${v.dtype}[${v.shape?.join(',')}]`),
      outputs: g.outputs.map((v) => `${v.name}: ${v.dtype}[${v.shape?.join(',')}]`),
    });
    expect(io(programs.train.graph.toData())).toMatchInlineSnapshot(`
      {
        "inputs": [
          "p.embedding.weight: float32[7,4]",
          "p.lstm.weight_ih_l0: float32[20,4]",
          "p.lstm.weight_hh_l0: float32[20,5]",
          "p.lstm.bias_ih_l0: float32[20]",
          "p.lstm.bias_hh_l0: float32[20]",
          "p.lstm.weight_ih_l1: float32[12,5]",
          "p.lstm.weight_hh_l1: float32[12,3]",
          "p.lstm.bias_ih_l1: float32[12]",
          "p.lstm.bias_hh_l1: float32[12]",
          "p.fc.weight: float32[7,3]",
          "p.fc.bias: float32[7]",
          "s.exp_avg.embedding.weight: float32[7,4]",
          "s.exp_avg.lstm.weight_ih_l0: float32[20,4]",
          "s.exp_avg.lstm.weight_hh_l0: float32[20,5]",
          "s.exp_avg.lstm.bias_ih_l0: float32[20]",
          "s.exp_avg.lstm.bias_hh_l0: float32[20]",
          "s.exp_avg.lstm.weight_ih_l1: float32[12,5]",
          "s.exp_avg.lstm.weight_hh_l1: float32[12,3]",
          "s.exp_avg.lstm.bias_ih_l1: float32[12]",
          "s.exp_avg.lstm.bias_hh_l1: float32[12]",
          "s.exp_avg.fc.weight: float32[7,3]",
          "s.exp_avg.fc.bias: float32[7]",
          "s.exp_avg_sq.embedding.weight: float32[7,4]",
          "s.exp_avg_sq.lstm.weight_ih_l0: float32[20,4]",
          "s.exp_avg_sq.lstm.weight_hh_l0: float32[20,5]",
          "s.exp_avg_sq.lstm.bias_ih_l0: float32[20]",
          "s.exp_avg_sq.lstm.bias_hh_l0: float32[20]",
          "s.exp_avg_sq.lstm.weight_ih_l1: float32[12,5]",
          "s.exp_avg_sq.lstm.weight_hh_l1: float32[12,3]",
          "s.exp_avg_sq.lstm.bias_ih_l1: float32[12]",
          "s.exp_avg_sq.lstm.bias_hh_l1: float32[12]",
          "s.exp_avg_sq.fc.weight: float32[7,3]",
          "s.exp_avg_sq.fc.bias: float32[7]",
          "s.step: float32[]",
          "h.l0: float32[2,5]",
          "h.l1: float32[2,3]",
          "c.l0: float32[2,5]",
          "c.l1: float32[2,3]",
          "x: int64[K,6,2]",
          "y: int64[K,6,2]",
          "keep: float32[K]",
          "lr: float32[K]",
        ],
        "outputs": [
          "p_out.embedding.weight: float32[7,4]",
          "p_out.lstm.weight_ih_l0: float32[20,4]",
          "p_out.lstm.weight_hh_l0: float32[20,5]",
          "p_out.lstm.bias_ih_l0: float32[20]",
          "p_out.lstm.bias_hh_l0: float32[20]",
          "p_out.lstm.weight_ih_l1: float32[12,5]",
          "p_out.lstm.weight_hh_l1: float32[12,3]",
          "p_out.lstm.bias_ih_l1: float32[12]",
          "p_out.lstm.bias_hh_l1: float32[12]",
          "p_out.fc.weight: float32[7,3]",
          "p_out.fc.bias: float32[7]",
          "s_out.exp_avg.embedding.weight: float32[7,4]",
          "s_out.exp_avg.lstm.weight_ih_l0: float32[20,4]",
          "s_out.exp_avg.lstm.weight_hh_l0: float32[20,5]",
          "s_out.exp_avg.lstm.bias_ih_l0: float32[20]",
          "s_out.exp_avg.lstm.bias_hh_l0: float32[20]",
          "s_out.exp_avg.lstm.weight_ih_l1: float32[12,5]",
          "s_out.exp_avg.lstm.weight_hh_l1: float32[12,3]",
          "s_out.exp_avg.lstm.bias_ih_l1: float32[12]",
          "s_out.exp_avg.lstm.bias_hh_l1: float32[12]",
          "s_out.exp_avg.fc.weight: float32[7,3]",
          "s_out.exp_avg.fc.bias: float32[7]",
          "s_out.exp_avg_sq.embedding.weight: float32[7,4]",
          "s_out.exp_avg_sq.lstm.weight_ih_l0: float32[20,4]",
          "s_out.exp_avg_sq.lstm.weight_hh_l0: float32[20,5]",
          "s_out.exp_avg_sq.lstm.bias_ih_l0: float32[20]",
          "s_out.exp_avg_sq.lstm.bias_hh_l0: float32[20]",
          "s_out.exp_avg_sq.lstm.weight_ih_l1: float32[12,5]",
          "s_out.exp_avg_sq.lstm.weight_hh_l1: float32[12,3]",
          "s_out.exp_avg_sq.lstm.bias_ih_l1: float32[12]",
          "s_out.exp_avg_sq.lstm.bias_hh_l1: float32[12]",
          "s_out.exp_avg_sq.fc.weight: float32[7,3]",
          "s_out.exp_avg_sq.fc.bias: float32[7]",
          "s_out.step: float32[]",
          "h_out.l0: float32[2,5]",
          "h_out.l1: float32[2,3]",
          "c_out.l0: float32[2,5]",
          "c_out.l1: float32[2,3]",
          "loss: float32[K]",
          "gnorm: float32[K]",
        ],
      }
    `);
  });
});

describe('snapshot', () => {
  it('the gradient program of a one-layer model (T=4, B=2, V=5, H=3) as text', async () => {
    const text = dump(buildGradProgram({ lm, B: 2, T: 4 }).graph.toData()) + '\n';
    await expect(text).toMatchFileSnapshot('./__snapshots__/grad-program.txt');
  });
});
