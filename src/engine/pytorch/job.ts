// `gatelab export FILE --pytorch DIR [--init W.safetensors] [--runs RUNS_DIR]`: the model as a small
// PyTorch project that trains as Gatelab does — one process (`python DIR/train.py`) or many under
// `torchrun` (DistributedDataParallel) — and records its run in Gatelab's format, so the side panel
// and the dashboard show it. Everything the job needs from Gatelab is resolved here and written into
// its config.json: the data file (absolute, with `--data-root` to move it), the vocabulary, the
// network, the optimizer, schedule, clipping, evaluation and early stopping, the checkpoint metadata
// that `gatelab sample` reads, the model file's text for the run record.
//
// Language models with plain LSTM, GRU and RNN layers (PyTorch's own modules, so cuDNN runs them);
// the other tasks and the cell variants PyTorch lacks are errors at their key, for now.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { readModel, whereOf } from '../config/load';
import { UserError } from '../errors';
import { checkModel } from '../tasks/registry';
import { loadTextCorpus } from '../data/text';
import { loadCheckpoint } from '../train/checkpoint';
import { lmMetadata, textOptionsOf, vocabFromMetadata } from '../train/lmsetup';
import { defaultRunsDir } from '../train/runrecord';
import { writeFileAtomic } from '../util/fsx';
import { DATA_PY, MODEL_PY, ST_PY, TRAIN_PY } from './templates';
import { defaultPrefix } from '../tasks/languageModel';

export interface PytorchJobOptions {
  modelFile: string;
  modelName?: string;
  /** the job's initial weights (a Gatelab checkpoint); absent: PyTorch's default initialisation */
  init?: string;
  /** the project folder */
  dir: string;
  /** where the job records its runs (default: the model file's runs folder) */
  runs?: string;
}

/** Writes the job; returns its folder and files. */
export async function exportPytorchJob(o: PytorchJobOptions): Promise<{ dir: string; files: string[] }> {
  const { cfg, text } = readModel(o.modelFile, o.modelName);
  checkModel(cfg);
  if (cfg.task !== 'language-model')
    throw new UserError(`the PyTorch job exports language models so far; model "${cfg.name}" is a ${cfg.task} model`, whereOf(cfg, 'task'), 'export it as ONNX (--onnx), or export a language model');
  cfg.model.layers.forEach((l, k) => {
    const at = `model.layers.${k}`;
    const variant = l.type === 'cell' ? ['type', 'an equation cell'] : l.peepholes ? ['peepholes', 'peepholes'] : l.coupledGates ? ['coupledGates', 'coupled gates'] : l.cellClip > 0 ? ['cellClip', 'cell clipping'] : l.gateActivation !== 'sigmoid' ? ['gateActivation', 'hard-sigmoid gates'] : undefined;
    if (variant) throw new UserError(`the PyTorch job has no explicit cell for ${variant[1]} yet`, whereOf(cfg, `${at}.${variant[0]}`), 'export a model with plain lstm, gru or rnn layers (nn.LSTM, nn.GRU, nn.RNN)');
  });
  const opts = textOptionsOf(cfg);
  const ck = o.init ? loadCheckpoint(o.init) : undefined;
  const given = ck ? vocabFromMetadata(ck.metadata, o.init!) : undefined;
  const corpus = await loadTextCorpus(cfg.data.source, opts, { ...whereOf(cfg, 'data.source'), file: cfg.file, key: 'data.source' }, given);
  const vocab = corpus.vocab;
  const samplePrefix = defaultPrefix(corpus.ids, vocab, cfg.data.tokens);
  const dataRoot = path.dirname(cfg.file);
  const config = {
    format: 1,
    task: cfg.task,
    name: cfg.name,
    modelFile: cfg.file,
    modelLine: cfg.line,
    modelText: text,
    dataRoot,
    sourceRelative: path.relative(dataRoot, cfg.data.source),
    tokens: cfg.data.tokens,
    preprocess: cfg.data.preprocess,
    vocab: vocab.tokens,
    sequenceLength: cfg.data.sequenceLength,
    validation: cfg.data.validation,
    validationTokens: cfg.data.validationTokens,
    partition: cfg.data.partition,
    carryState: cfg.train.carryState,
    batchSize: cfg.train.batchSize,
    embedding: cfg.model.embedding,
    layers: cfg.model.layers.map((l) => ({ type: l.type, hidden: l.hidden, ...(l.type === 'rnn' ? { activation: l.activation } : {}) })),
    dropout: cfg.model.dropout,
    optimizer: cfg.train.optimizer,
    schedule: cfg.train.schedule,
    clipNorm: cfg.train.clipNorm,
    seed: cfg.train.seed,
    epochs: cfg.train.epochs ?? null,
    steps: cfg.train.steps ?? null,
    earlyStopping: cfg.train.earlyStopping ?? null,
    init: o.init ? path.resolve(o.init) : null,
    runsDir: path.resolve(o.runs ?? defaultRunsDir(cfg.file)),
    checkpointMetadata: lmMetadata(cfg, vocab, 0),
    samplePrefix,
    sampleLength: cfg.data.tokens === 'char' ? 100 : 30,
  };
  const dir = path.resolve(o.dir);
  fs.mkdirSync(dir, { recursive: true });
  const files: Record<string, string> = {
    'config.json': JSON.stringify(config, null, 2) + '\n',
    'model.py': MODEL_PY,
    'data.py': DATA_PY,
    'train.py': TRAIN_PY,
    'st.py': ST_PY,
    'requirements.txt': '# PyTorch (Debian: apt-get install python3-torch); safetensors is used when installed, else st.py reads and writes the format\ntorch>=1.13\n',
    'README.md': readme(cfg.name, dir, config.runsDir),
  };
  for (const [name, body] of Object.entries(files)) writeFileAtomic(path.join(dir, name), body);
  return { dir, files: Object.keys(files) };
}

function readme(name: string, dir: string, runs: string): string {
  return `# ${name}: a Gatelab model as a PyTorch training job

Written by \`gatelab export --pytorch\`. The model, data and training settings are in \`config.json\`
(the data file's path is absolute; \`--data-root DIR\` moves it). The job trains as Gatelab does —
the same tokens, vocabulary, minibatches (Gatelab's generator), optimizer, schedule, clipping and
evaluation — and records its run in Gatelab's format in the runs folder, so the Gatelab side panel
and dashboard show it, and its \`model.safetensors\` works with \`gatelab sample / predict / export\`
and as \`--init\`.

    python3 ${path.join(dir, 'train.py')} [--runs RUNS_DIR] [--steps N | --epochs N] [--init W.safetensors] [--device cpu|cuda]

Several processes (DistributedDataParallel: gloo on CPU, NCCL on GPU; each process takes its share
of every minibatch's rows, rank 0 writes the record and the checkpoints):

    torchrun --redirects 1 --tee 1 --nproc_per_node 2 ${path.join(dir, 'train.py')} --runs ${runs}

(Debian's torch 1.13 under Python 3.11 parses torchrun's default \`--redirects\` / \`--tee\` wrongly
and crashes; giving \`--redirects 1 --tee 1\` works.) On a cluster, the same command under Slurm or
Kubernetes with \`--nnodes\` and a rendezvous endpoint; point \`--runs\` at a shared folder and list it
in the extension's \`gatelab.runsFolder\` setting.

Files: \`model.py\` (the network as nn.LSTM / nn.GRU / nn.RNN layers under Gatelab's parameter names),
\`data.py\` (Gatelab's data pipeline), \`train.py\` (the loop), \`st.py\` (safetensors files, without the
\`safetensors\` package if need be), \`requirements.txt\`.
`;
}
