// `gatelab export FILE --pytorch DIR [--init W.safetensors] [--runs RUNS_DIR]`: the model as a small
// PyTorch project that trains as Gatelab does — one process (`python DIR/train.py`) or many under
// `torchrun` (DistributedDataParallel) — and records its run in Gatelab's format, so the side panel
// and the dashboard show it. Everything the job needs from Gatelab is resolved here and written into
// its config.json: the data file (absolute, with `--data-root` to move it), the vocabulary, the
// network, the optimizer, schedule, clipping, evaluation and early stopping, the checkpoint metadata
// that `gatelab sample` reads, the model file's text for the run record.
//
// Language models, forecasters (one column or several) and classifiers (sentences, numeric
// sequences) with LSTM, GRU and RNN layers: PyTorch's own modules where the layer is plain (so
// cuDNN runs them; bidirectional layers too, packed where sentences are padded), an explicit cell
// for the variants PyTorch lacks (LSTM peepholes, coupled gates, cell clip; hard-sigmoid gates) and
// for equation cells (evaluated from Gatelab's parse trees). The generated tasks and bidirectional
// explicit cells are errors at their key.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { readModel, whereOf } from '../config/load';
import { UserError } from '../errors';
import { checkModel } from '../tasks/registry';
import { loadTextCorpus } from '../data/text';
import { loadCheckpoint } from '../train/checkpoint';
import { cellOf, lmMetadata, textOptionsOf, vocabFromMetadata } from '../train/lmsetup';
import { cellParams } from '../nn/cellspec';
import { defaultRunsDir } from '../train/runrecord';
import { writeFileAtomic } from '../util/fsx';
import { DATA_PY, MODEL_PY, ST_PY, TRAIN_PY } from './templates';
import { defaultPrefix } from '../tasks/languageModel';
import { forecastColumns, forecastData, forecastMetadata } from '../tasks/forecast';
import type { ModelConfig } from '../config/types';
import { isNumericClassification } from '../tasks/numericClassification';

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
  if (!['language-model', 'forecast', 'classification'].includes(cfg.task))
    throw new UserError(`the PyTorch job exports language models, forecasters and classifiers so far; model "${cfg.name}" is a ${cfg.task} model`, whereOf(cfg, 'task'), 'the generated tasks train in Gatelab; export the model as ONNX (--onnx)');
  cfg.model.layers.forEach((l, k) => {
    const explicit = l.type === 'cell' || l.gateActivation !== 'sigmoid' || (l.type === 'lstm' && (l.peepholes || l.coupledGates || l.cellClip > 0));
    if (l.bidirectional && explicit)
      throw new UserError('the PyTorch job has no bidirectional explicit cells yet (equation cells, LSTM variants)', whereOf(cfg, `model.layers.${k}.bidirectional`), 'export it with one direction, or with a plain lstm, gru or rnn layer');
  });
  const dataRoot = path.dirname(cfg.file);
  const taskPart =
    cfg.task === 'forecast' ? await forecastPart(cfg) : isNumericClassification(cfg) ? sequencesPart(cfg, dataRoot) : cfg.task === 'classification' ? classificationPart(cfg, dataRoot) : await languageModelPart(cfg, o.init);
  const config = {
    ...taskPart,
    format: 1,
    task: cfg.task,
    name: cfg.name,
    modelFile: cfg.file,
    modelLine: cfg.line,
    modelText: text,
    dataRoot,
    sourceRelative: path.relative(dataRoot, cfg.data.source),
    validation: cfg.data.validation,
    batchSize: cfg.train.batchSize,
    layers: cfg.model.layers.map((l) => ({
      type: l.type,
      hidden: l.hidden,
      bidirectional: l.bidirectional,
      ...(l.type === 'rnn' ? { activation: l.activation } : {}),
      ...(l.type === 'cell' ? { cell: cellConfig(l) } : {}),
      ...(l.type === 'lstm' ? { peepholes: l.peepholes, coupledGates: l.coupledGates, cellClip: l.cellClip } : {}),
      ...(l.type !== 'cell' ? { gateActivation: l.gateActivation, hardSigmoidSlope: l.hardSigmoidSlope, hardSigmoidOffset: l.hardSigmoidOffset } : {}),
    })),
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

/** An equation cell for the job: its states, its equations as Gatelab parsed them (trees), its parameters and init constants. */
function cellConfig(l: ModelConfig['model']['layers'][number]) {
  const spec = cellOf(l).equations!;
  return { states: spec.states, equations: spec.equations.map((q) => ({ name: q.name, expr: q.expr })), params: cellParams(spec), init: spec.init };
}

/** What a language model's job needs: the tokens, the vocabulary (the checkpoint's, or the corpus's), the sample prefix. */
async function languageModelPart(cfg: ModelConfig, init: string | undefined) {
  const opts = textOptionsOf(cfg);
  const ck = init ? loadCheckpoint(init) : undefined;
  const given = ck ? vocabFromMetadata(ck.metadata, init!) : undefined;
  const corpus = await loadTextCorpus(cfg.data.source, opts, { ...whereOf(cfg, 'data.source'), file: cfg.file, key: 'data.source' }, given);
  const vocab = corpus.vocab;
  return {
    tokens: cfg.data.tokens,
    preprocess: cfg.data.preprocess,
    vocab: vocab.tokens,
    sequenceLength: cfg.data.sequenceLength,
    validationTokens: cfg.data.validationTokens,
    partition: cfg.data.partition,
    carryState: cfg.train.carryState,
    embedding: cfg.model.embedding,
    checkpointMetadata: lmMetadata(cfg, vocab, 0),
    samplePrefix: defaultPrefix(corpus.ids, vocab, cfg.data.tokens),
    sampleLength: cfg.data.tokens === 'char' ? 100 : 30,
  };
}

/** What a sentence classifier's job needs: its files and columns, tokens, split, padding, pooling (the vocabulary and classes the job builds from its training examples). */
function classificationPart(cfg: ModelConfig, dataRoot: string) {
  return {
    sourcesRelative: cfg.data.sources.map((f) => path.relative(dataRoot, f)),
    textColumn: cfg.data.textColumn ?? null,
    labelColumn: cfg.data.labelColumn ?? null,
    tokens: cfg.data.tokens,
    preprocess: cfg.data.preprocess,
    minFrequency: cfg.data.minFrequency,
    split: cfg.data.split,
    sequenceLength: cfg.data.sequenceLength,
    embedding: cfg.model.embedding,
    pooling: cfg.data.pooling,
    checkpointMetadata: { 'gatelab.model': cfg.name, 'gatelab.task': 'classification', 'gatelab.tokens': cfg.data.tokens, 'gatelab.preprocess': cfg.data.preprocess },
  };
}

/** What a classifier of numeric sequences needs: where its sequences and labels are (relative to the data root), its columns, missing cells, scaling, split, padding. */
function sequencesPart(cfg: ModelConfig, dataRoot: string) {
  const rel = (f: string) => path.relative(dataRoot, f);
  const split = cfg.data.split;
  return {
    numeric: true,
    ...(cfg.data.sequences ? { sequences: rel(cfg.data.sequences) } : { idColumn: cfg.data.idColumn, labelColumn: cfg.data.labelColumn ?? null }),
    labels: cfg.data.labels ? { ...cfg.data.labels, file: rel(cfg.data.labels.file) } : null,
    columns: cfg.data.columns ?? null,
    missing: cfg.data.missing,
    scale: cfg.data.scale,
    split: typeof split === 'object' ? { ...split, file: rel(split.file) } : split,
    sequenceLength: cfg.data.sequenceLength,
    sequenceLengthGiven: cfg.data.sequenceLengthGiven,
    pooling: cfg.data.pooling,
    checkpointMetadata: { 'gatelab.model': cfg.name, 'gatelab.task': 'classification' },
  };
}

/** What a forecaster's job needs: its columns, missing cells, window, horizon, transform, and the checkpoint metadata of its normalisation. */
async function forecastPart(cfg: ModelConfig) {
  const { s, layout } = await forecastData(cfg);
  const cols = forecastColumns(cfg);
  return {
    columns: cols.columns,
    target: cols.target,
    categorical: cols.categorical,
    missing: cfg.data.missing,
    window: cfg.data.window,
    horizon: cfg.data.horizon,
    transform: cfg.data.transform,
    checkpointMetadata: forecastMetadata(cfg, s, layout, 0),
  };
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
