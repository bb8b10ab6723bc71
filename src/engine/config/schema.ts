// The JSON Schema (draft-07) of one model document (DESIGN §2). It is the single description of the
// format: the loader (./load.ts) validates against it with its own small validator (with line/column
// positions), VS Code uses it for completion and hover in JSON model files (media/gatelab.schema.json
// is generated from it by schemaJson(); test/unit/config.test.ts keeps the two in sync), and its
// `default`s are the defaults the engine applies. Defaults that depend on another key (the learning
// rate and weight decay on the optimizer, epochs when steps is absent) are stated in the descriptions
// and applied by the loader.
//
// Keywords understood by the loader's validator: type (one or a list), properties, required,
// additionalProperties: false, items, minItems, enum, minimum, maximum, exclusiveMinimum,
// exclusiveMaximum, minLength, pattern (+ patternErrorMessage), dependencies of the form
// { key: { not: { required: [...] }, errorMessage } }. Everything else (descriptions, enumDescriptions,
// markdown*) is documentation for the editor.

export type JsonType = 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean';

export interface JsonSchema {
  /** one type, or a scalar type or a list of it (e.g. a file or a list of files) */
  type?: JsonType | JsonType[];
  description?: string;
  markdownDescription?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  /** false: no other keys; true: any (checked elsewhere); a schema: every other key's value */
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  minItems?: number;
  enum?: readonly (string | number | boolean)[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  pattern?: string;
  /** VS Code: the message shown when `pattern` does not match (the loader uses it too) */
  patternErrorMessage?: string;
  /** VS Code: the message shown when this schema fails (used here for `dependencies`) */
  errorMessage?: string;
  /** VS Code: one description per `enum` value, shown in completion */
  enumDescriptions?: string[];
  markdownEnumDescriptions?: string[];
  /** draft-07 property dependencies; used as `{ key: { not: { required: [other] } } }` (mutually exclusive keys) */
  dependencies?: Record<string, JsonSchema>;
  not?: JsonSchema;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  $ref?: string;
  definitions?: Record<string, JsonSchema>;
  $schema?: string;
  $id?: string;
  title?: string;
}

const layer: JsonSchema = {
  type: 'object',
  description: 'One recurrent layer. Layers are stacked in order; the first reads the input (one-hot or embedding).',
  additionalProperties: false,
  required: ['hidden'],
  properties: {
    type: {
      type: 'string',
      enum: ['lstm', 'gru', 'rnn', 'cell'],
      default: 'lstm',
      description: 'Cell type: lstm (gates i, f, g, o), gru (gates r, z, n, PyTorch formulation), rnn (a plain Elman RNN, no gates: to compare with) or cell (your own gate equations, under equations and state).',
      enumDescriptions: [
        'Long short-term memory: input, forget, cell and output gates, a cell state c beside h.',
        'Gated recurrent unit: reset and update gates, no separate cell state.',
        "Plain RNN (PyTorch nn.RNN): h' = tanh(W_ih x + b_ih + W_hh h + b_hh), no gates; its gradient fades over time.",
        'Your own cell: the gate equations written under equations, the carried states under state (h is the output).',
      ],
    },
    equations: {
      type: 'object',
      additionalProperties: { type: 'string', minLength: 1, description: 'One equation of the cell, evaluated at every step in the order written.' },
      description:
        'cell layers: the equations, evaluated top to bottom at every step, e.g. f: sigmoid(W x + U h + b). x is the layer input; a state not yet assigned in this step is its previous value; other lowercase names are earlier equations; an uppercase name before an operand is a learned matrix (W x, U (f * h)); b, b_<name> are biases and p, p_<name> per-unit vectors; functions sigmoid, tanh, relu, hardsigmoid(z[, slope, offset]), softsign; operators + - * and parentheses.',
      markdownDescription: [
        '`type: cell` layers: the **gate equations**, evaluated top to bottom at every step. Gatelab builds the cell, derives its backward pass and shows every equation in the gate views.',
        '',
        '```yaml',
        'equations:',
        '  f: sigmoid(W x + U h + b)',
        '  n: tanh(W x + U (f * h) + b)',
        '  h: (1 - f) * h + f * n',
        'state: [h]',
        '```',
        '',
        '- `x`: the layer input at this step',
        "- a state (listed under `state`) not yet assigned in this step is its previous value (h₍ₜ₋₁₎); after its equation, its new value",
        '- other lowercase names: earlier equations',
        '- `W x`, `U h`, `U (f * h)`: a learned matrix (a name beginning with an uppercase letter) applied to its operand, shape [hidden, width of the operand]',
        '- `b`, `b_<name>`: learned biases [hidden]; `p`, `p_<name>`: learned per-unit vectors [hidden] (e.g. a peephole `p * c`)',
        '- functions `sigmoid`, `tanh`, `relu`, `hardsigmoid(z[, slope, offset])`, `softsign`; operators `+ - *`, unary minus, parentheses; numbers',
        '',
        'Parameters belong to their equation: `f`\'s `W` is `cell.l0.f.W` in checkpoints. Every parameter starts U(−1/√hidden, 1/√hidden), as PyTorch\'s recurrent layers; `init` sets constants.',
      ].join('\n'),
    },
    state: {
      type: 'array',
      items: { type: 'string', minLength: 1, description: 'A state: the name of an equation whose value is carried to the next step.' },
      description: 'cell layers: the states carried from step to step (h, the layer output, and at most one more, e.g. [h, c]); default [h].',
    },
    init: {
      type: 'object',
      additionalProperties: { type: 'number', description: 'The constant a parameter starts at.' },
      description: 'cell layers: constants for named parameters, e.g. { f.b: 1 } starts the bias of f at 1 (the others start U(−1/√hidden, 1/√hidden)).',
    },
    activation: {
      type: 'string',
      enum: ['tanh', 'relu'],
      default: 'tanh',
      description: 'rnn layers: the nonlinearity (PyTorch\'s nonlinearity), tanh or relu (gated layers keep their tanh).',
    },
    hidden: { type: 'integer', minimum: 1, maximum: 65536, description: 'Number of hidden units H.' },
    forgetBias: {
      type: 'number',
      default: 0,
      description: 'Added to the initial forget-gate bias (Gers et al. 2000; Jozefowicz et al. 2015 recommend 1). 0 keeps PyTorch\'s initialisation. LSTM layers only.',
      markdownDescription:
        'Added to the initial **forget-gate bias** (Gers et al. 2000; Jozefowicz et al. 2015 recommend `1`, so that the cell remembers by default early in training). `0` keeps PyTorch\'s initialisation. LSTM layers only (a GRU has no forget gate).',
    },
    peepholes: { type: 'boolean', default: false, description: 'Peephole connections: i and f look at c(t-1), o at c(t), as in the ONNX LSTM operator. LSTM layers only.' },
    coupledGates: { type: 'boolean', default: false, description: 'Coupled input and forget gates (CIFG): f = 1 - i. LSTM layers only.' },
    gateActivation: {
      type: 'string',
      enum: ['sigmoid', 'hard-sigmoid'],
      default: 'sigmoid',
      description: 'Nonlinearity of the gates i, f, o (GRU: r, z): sigmoid, or hard-sigmoid max(0, min(1, slope·x + offset)) (ONNX and TF.js: slope 0.2, offset 0.5; Keras 3 uses x/6 + 0.5).',
      enumDescriptions: ['σ(x) = 1 / (1 + e^−x)', 'max(0, min(1, hardSigmoidSlope·x + hardSigmoidOffset)): cheaper, saturates exactly'],
    },
    hardSigmoidSlope: { type: 'number', exclusiveMinimum: 0, default: 0.2, description: 'hard-sigmoid gates: the slope (ONNX alpha).' },
    hardSigmoidOffset: { type: 'number', default: 0.5, description: 'hard-sigmoid gates: the offset (ONNX beta).' },
    cellClip: { type: 'number', minimum: 0, default: 0, description: 'Clip every gate pre-activation to [−cellClip, cellClip] (the ONNX LSTM operator\'s clip); 0 = off. LSTM layers only.' },
    bidirectional: { type: 'boolean', default: false, description: 'Add a reverse direction with its own weights, reading each sequence backwards from its last real step; the outputs [forward, reverse] are concatenated (PyTorch\'s bidirectional; the reverse direction\'s tensors are named lstm.*_reverse, gru.*_reverse or rnn.*_reverse). Classification and forecast models, every layer type.' },
  },
};

export const MODEL_SCHEMA: JsonSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'Gatelab model',
  type: 'object',
  description: 'A Gatelab model: the data, the network and how to train it.',
  additionalProperties: false,
  required: ['name', 'model'],
  properties: {
    name: {
      type: 'string',
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
      patternErrorMessage: 'use letters, digits, ".", "_" and "-", starting with a letter or digit',
      description: 'Name of the model (letters, digits, `.`, `_`, `-`); unique within the file. Runs and checkpoints are named after it.',
      markdownDescription:
        'Name of the model: letters, digits, `.`, `_` and `-`, starting with a letter or digit; unique within the file. Runs and checkpoints are named after it, and `gatelab train FILE --model NAME` picks it.',
    },
    task: {
      type: 'string',
      enum: ['language-model', 'classification', 'forecast', 'copy', 'adding', 'key-query', 'change-point'],
      default: 'language-model',
      description: 'What the model learns: language-model (next token), classification, forecast, or one of the generated tasks that isolate what a gate does: copy, adding, key-query, change-point.',
      enumDescriptions: [
        'Predict the next token of a text (data.source: a text file); reports perplexity and can sample.',
        'Label sentences (data.source: TSV files of sentence<TAB>label); reports accuracy.',
        'Predict the next values of a time series (data.source: a CSV file, data.column); reports RMSE.',
        'Synthetic: remember data.copyLength symbols over a delay of data.sequenceLength steps (no data file).',
        'Synthetic: add the two marked numbers of a long sequence (Hochreiter & Schmidhuber 1997; no data file).',
        'Synthetic: a value stored after KEY must be shown only when QUERY asks for it, through data.sequenceLength steps of noise (the output gate\'s trapdoor; no data file).',
        'Synthetic: track a noisy mean that jumps at random steps (data.rate, data.noise): the forget gate must drop at each change point (an adaptive leaky integrator; no data file).',
      ],
    },
    data: {
      type: 'object',
      description: 'Where the data comes from and how it is cut into sequences (copy and adding generate their own).',
      additionalProperties: false,
      properties: {
        source: {
          type: ['string', 'array'],
          items: { type: 'string', minLength: 1, description: 'A data file.' },
          minLength: 1,
          description: 'Data file, relative to the model file (or an absolute path): a text file for language models, a CSV file for forecasts, a TSV file (sentence<TAB>label) or a list of them for classification. Required except for the copy and adding tasks.',
          markdownDescription:
            'Data file, **relative to the model file** (or an absolute path): a text file for `language-model`, a CSV file for `forecast`, a TSV file (`sentence<TAB>label`) or a list of them for `classification`. Required except for the `copy` and `adding` tasks, which generate their data.',
        },
        tokens: { type: 'string', enum: ['char', 'word'], default: 'char', description: 'Tokens: characters or whitespace-separated words.' },
        preprocess: {
          type: 'string',
          enum: ['none', 'letters'],
          default: 'none',
          description: 'none: the text as is. letters: as d2l, every run of non-letters becomes one space, lower case (28 character tokens with <unk>).',
        },
        minFrequency: { type: 'integer', minimum: 0, default: 0, description: 'Tokens seen fewer times become <unk>; 0 keeps every token.' },
        split: {
          anyOf: [
            { type: 'string', enum: ['tail', 'random'], description: 'tail: the end of the data; random: a seeded random sample of the examples (classification).', enumDescriptions: ['The end of the data.', 'A seeded random sample of the examples (classification).'] },
            {
              type: 'object',
              description: 'classification of numeric sequences: validate on the sequences of some groups (e.g. train on two rooms, validate on the third).',
              additionalProperties: false,
              required: ['file', 'group', 'valid'],
              properties: {
                file: { type: 'string', minLength: 1, description: 'The group table (CSV with a header), relative to the model file.' },
                id: { type: 'string', minLength: 1, description: 'Its column of sequence ids (default: the first column).' },
                group: { type: 'string', minLength: 1, description: 'Its column of group names or numbers.' },
                valid: { type: 'array', minItems: 1, items: { type: ['string', 'number'], description: 'A group whose sequences are validated on.' }, description: 'The groups held out for validation.' },
              },
            },
          ],
          default: 'tail',
          description: 'How the validation part is chosen: the end of the data (tail), a seeded random sample of the examples (random, classification), or, for numeric sequences, the groups of a group table ({ file, id, group, valid }).',
          markdownDescription:
            'How the validation part is chosen: `tail` (the end of the data), `random` (a seeded random sample of the examples; classification), or for numeric sequences a **group table**: `{ file: groups.csv, id: sequence_ID, group: dataset_ID, valid: [3] }` validates on the sequences of group 3 and trains on the others.',
        },
        pooling: {
          type: 'string',
          enum: ['last', 'mean'],
          default: 'last',
          description: 'classification: the sentence vector is the last real step\'s hidden state, or the mean over the real steps (padding never counts).',
        },
        column: { type: 'string', description: 'forecast: the header name of the numeric CSV column to forecast (the short form of columns: [X], target: X).' },
        columns: {
          type: 'array',
          minItems: 1,
          items: { type: 'string', minLength: 1, description: 'A CSV column (header name).' },
          description: 'forecast: the input columns, in order (the target may be among them). Classification of numeric sequences: the feature columns (default: all).',
          markdownDescription:
            '`forecast`: the **input columns**, in order; the target may be among them. Every numeric input is z-scored with the training part; `categorical` columns are one-hot encoded. Classification of numeric sequences: the feature columns of each sequence (default: all).',
        },
        target: { type: 'string', minLength: 1, description: 'forecast: the column to predict (default: the single column of columns, or column).' },
        categorical: {
          type: 'array',
          items: { type: 'string', minLength: 1, description: 'A column of categories.' },
          description: 'forecast: columns of categories (e.g. a wind direction), one-hot encoded with their categories sorted.',
        },
        missing: {
          type: 'string',
          enum: ['error', 'previous', 'zero', 'drop'],
          default: 'error',
          description: 'Missing cells (empty or NA) in numeric data: error (names the file, line and column of the first), previous (the last value; leading gaps from the first value that follows), zero, or drop the row.',
          enumDescriptions: ['Stop at the first missing cell, naming its file, line and column.', 'Fill from the last value; a leading gap from the first value that follows.', 'Fill with 0.', 'Leave the row out.'],
        },
        sequences: {
          type: 'string',
          minLength: 1,
          pattern: '\\{id\\}',
          patternErrorMessage: 'the pattern needs {id} where each file name has its sequence id, e.g. dataset/MovementAAL_RSS_{id}.csv',
          description: 'classification of numeric sequences, one CSV per sequence: a path pattern relative to the model file with {id} for the sequence id (e.g. dataset/MovementAAL_RSS_{id}.csv); the labels come from data.labels.',
        },
        labels: {
          type: 'object',
          additionalProperties: false,
          required: ['file'],
          description: 'classification of numeric sequences: the label table (CSV with a header; names are trimmed and a leading # ignored).',
          properties: {
            file: { type: 'string', minLength: 1, description: 'The label table, relative to the model file.' },
            id: { type: 'string', minLength: 1, description: 'Its column of sequence ids (default: the first column).' },
            label: { type: 'string', minLength: 1, description: 'Its column of labels (default: the second column).' },
          },
        },
        idColumn: {
          type: 'string',
          minLength: 1,
          description: 'classification of numeric sequences from one long CSV (data.source): the column of sequence ids; the rows of one id, in file order, are one sequence.',
        },
        probe: {
          type: ['string', 'number'],
          description: 'classification of numeric sequences: the id of the sequence the gate views show (default: the first validation sequence).',
        },
        scale: {
          type: 'string',
          enum: ['standard', 'none'],
          default: 'standard',
          description: 'classification of numeric sequences: z-score every feature with the training sequences (standard), or feed the values as they are (none).',
        },
        textColumn: {
          type: 'string',
          minLength: 1,
          description: 'classification from CSV files (data.source ending in .csv): the header name of the column holding the sentence.',
          markdownDescription: 'classification from CSV files (`data.source` ending in `.csv`, with a header line): the header name of the column holding the **sentence**. Quoted fields may hold commas, quotes (`""`) and line breaks.',
        },
        labelColumn: {
          type: 'string',
          minLength: 1,
          description: 'classification from CSV files: the header name of the column holding the label.',
        },
        window: { type: 'integer', minimum: 1, maximum: 100000, default: 12, description: 'forecast: past values the model sees for each forecast.' },
        horizon: { type: 'integer', minimum: 1, maximum: 10000, default: 1, description: 'forecast: values predicted at once after each window.' },
        transform: {
          type: 'string',
          enum: ['none', 'log', 'difference', 'log-difference'],
          default: 'none',
          description: 'forecast: model a transform of the series and map forecasts back: log, difference (y_t − y_{t−1}) or log-difference (growth rates; good for trending, multiplicative-seasonal series such as airline passengers).',
        },
        rate: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.05, description: 'change-point task: the probability that the mean jumps at each step.' },
        noise: { type: 'number', minimum: 0, default: 0.5, description: 'change-point task: the standard deviation of the noise around the mean.' },
        values: { type: 'integer', minimum: 2, maximum: 26, default: 4, description: 'key-query task: how many different values a KEY can store (chance accuracy at the query is 1 / values).' },
        copyLength: { type: 'integer', minimum: 1, maximum: 1000, default: 10, description: 'copy task: symbols to remember (from an alphabet of 8); data.sequenceLength is the delay before they must be repeated.' },
        season: { type: 'integer', minimum: 1, description: 'forecast: season length (e.g. 12 for monthly data) for the seasonal-naive baseline.' },
        sequenceLength: { type: 'integer', minimum: 1, maximum: 100000, default: 35, description: 'Time steps T per sequence: the BPTT length of a language model, the padded sentence length of a classifier (numeric sequences: default the longest), the length of an adding/copy sequence.' },
        validation: {
          type: 'number',
          minimum: 0,
          exclusiveMaximum: 1,
          default: 0.1,
          description: 'Fraction of the data held out at its end for validation (0 = none): the end of the token stream, or the last part of a series.',
        },
        validationTokens: {
          type: 'integer',
          minimum: 1,
          default: 1000000,
          description: 'language-model: at most this many tokens of the held-out tail (its start) are evaluated at each evaluation, so a big corpus is validated in bounded time.',
          markdownDescription:
            '`language-model`: at most this many tokens of the held-out tail (its start) are evaluated at each evaluation, so the validation of a big corpus takes bounded time. Default 1,000,000; the log says when the cap applies.',
        },
        partition: {
          type: 'string',
          enum: ['sequential', 'random'],
          default: 'sequential',
          description: 'sequential: consecutive minibatches continue each other and the state is carried (d2l default); random: shuffled subsequences, fresh state each minibatch.',
        },
      },
    },
    model: {
      type: 'object',
      description: 'The network: input, recurrent layers, output.',
      additionalProperties: false,
      required: ['layers'],
      properties: {
        embedding: { type: 'integer', minimum: 0, default: 0, description: 'Embedding size; 0 = one-hot input of the vocabulary size.' },
        layers: {
          type: 'array',
          minItems: 1,
          items: layer,
          description: 'Recurrent layers, bottom first.',
          markdownDescription: 'Recurrent layers, bottom first; each needs `hidden`. Example:\n\n```yaml\nlayers:\n  - type: lstm\n    hidden: 256\n```',
        },
        dropout: { type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0, description: 'Inverted dropout between stacked layers and before the output layer, in training only (language-model, classification and forecast models).' },
        init: {
          type: 'object',
          description: 'Weight initialisation of the recurrent layers (biases keep PyTorch\'s default, plus forgetBias).',
          additionalProperties: false,
          properties: {
            input: {
              type: 'string',
              enum: ['pytorch', 'xavier', 'normal'],
              default: 'pytorch',
              description: 'Input weights W_ih: pytorch U(±1/√H), xavier U(±√(6/(fan_in+fan_out))) per gate, normal N(0, 0.01²).',
            },
            recurrent: {
              type: 'string',
              enum: ['pytorch', 'orthogonal', 'xavier', 'normal'],
              default: 'pytorch',
              description: 'Recurrent weights W_hh: pytorch U(±1/√H), orthogonal (each gate block an orthogonal H×H matrix), xavier, normal N(0, 0.01²).',
            },
          },
        },
      },
    },
    train: {
      type: 'object',
      description: 'How to train.',
      additionalProperties: false,
      dependencies: { steps: { not: { required: ['epochs'] }, errorMessage: 'give train.epochs or train.steps, not both' } },
      properties: {
        epochs: {
          type: 'integer',
          minimum: 1,
          description: 'Passes over the training data (default 10). Give epochs or steps, not both.',
          markdownDescription: 'Passes over the training data (default `10` when `steps` is not given). Give `epochs` **or** `steps`, not both.',
        },
        steps: { type: 'integer', minimum: 1, description: 'Optimizer steps to run instead of epochs. Give epochs or steps, not both.' },
        batchSize: { type: 'integer', minimum: 1, maximum: 65536, default: 32, description: 'Sequences per minibatch B.' },
        optimizer: {
          type: 'object',
          description: 'Optimizer and its settings (PyTorch semantics).',
          additionalProperties: false,
          properties: {
            type: {
              type: 'string',
              enum: ['sgd', 'momentum', 'adam', 'adamw'],
              default: 'sgd',
              description: 'sgd, momentum (SGD with momentum), adam or adamw.',
              enumDescriptions: [
                'Plain SGD (torch.optim.SGD); default learning rate 1.',
                'SGD with momentum (torch.optim.SGD, momentum); default learning rate 1.',
                'Adam (torch.optim.Adam); default learning rate 0.001.',
                'AdamW, decoupled weight decay (torch.optim.AdamW); default learning rate 0.001, weight decay 0.01.',
              ],
            },
            learningRate: {
              type: 'number',
              exclusiveMinimum: 0,
              description: 'Learning rate (default 1 for sgd and momentum, 0.001 for adam and adamw).',
              markdownDescription: 'Learning rate. Default: `1` for `sgd` and `momentum` (as d2l\'s character model), `0.001` for `adam` and `adamw`.',
            },
            momentum: { type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0.9, description: 'Momentum factor (momentum optimizer).' },
            beta1: { type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0.9, description: 'Adam β1.' },
            beta2: { type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0.999, description: 'Adam β2.' },
            epsilon: { type: 'number', exclusiveMinimum: 0, default: 1e-8, description: 'Adam ε.' },
            weightDecay: { type: 'number', minimum: 0, description: 'L2 penalty (sgd, momentum, adam) or decoupled weight decay (adamw; default 0.01, else 0).' },
          },
        },
        clipNorm: { type: 'number', minimum: 0, default: 1, description: 'Clip the global gradient norm to this value; 0 = no clipping.' },
        seed: { type: 'integer', default: 42, description: 'Seed of the initial weights, the minibatch order and the samples.' },
        device: {
          type: 'string',
          enum: ['auto', 'cuda', 'cpu'],
          default: 'auto',
          description: 'auto: CUDA when its provider loads, else the CPU (the reason is logged).',
          enumDescriptions: ['CUDA when its provider loads, else the CPU (the reason is logged).', 'CUDA; fail with the reason if it cannot be used.', 'The CPU.'],
        },
        carryState: { type: 'boolean', default: true, description: 'With sequential partitioning, carry (h, c) from one minibatch to the next (reset each epoch).' },
        schedule: {
          type: 'object',
          description: 'Learning-rate schedule over the optimizer steps of the run (warm-up first, then the decay).',
          additionalProperties: false,
          properties: {
            type: {
              type: 'string',
              enum: ['constant', 'step', 'cosine'],
              default: 'constant',
              description: 'constant; step: multiply by gamma every stepSize steps (StepLR); cosine: anneal to minLearningRate at the last step (CosineAnnealingLR).',
            },
            warmupSteps: { type: 'integer', minimum: 0, default: 0, description: 'Linear warm-up: step s < warmupSteps uses learningRate·(s+1)/warmupSteps.' },
            stepSize: { type: 'integer', minimum: 1, default: 1000, description: 'step schedule: optimizer steps between decays.' },
            gamma: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.1, description: 'step schedule: factor applied every stepSize steps.' },
            minLearningRate: { type: 'number', minimum: 0, default: 0, description: 'cosine schedule: the learning rate at the last step.' },
          },
        },
        earlyStopping: {
          type: 'object',
          description: 'Stop when the validation loss has not improved for `patience` epochs, and restore the best weights (needs data.validation > 0).',
          additionalProperties: false,
          required: ['patience'],
          properties: {
            patience: { type: 'integer', minimum: 1, description: 'Epochs without improvement before stopping.' },
            minDelta: { type: 'number', minimum: 0, default: 0, description: 'An improvement must lower the validation loss by more than this.' },
          },
        },
        evaluateEvery: {
          type: 'integer',
          minimum: 1,
          default: 100,
          description: 'Tasks whose data is generated afresh every step (copy, adding): optimizer steps between evaluations on the fixed validation set (each such period counts as an epoch).',
        },
        stepsPerRun: {
          type: 'integer',
          minimum: 1,
          maximum: 1000,
          default: 16,
          description: 'Optimizer steps per onnxruntime call (K); weights cross into JavaScript once per K steps.',
        },
      },
    },
    sweep: {
      type: 'object',
      additionalProperties: true,
      description: 'A grid of variants for `gatelab sweep`: a key path (model.layers.0.forgetBias, train.seed, …) → the list of values to try; every combination is trained, and the table gives each setting\'s metric as mean ± standard deviation over the train.seed values. `gatelab train` trains the document as written.',
      markdownDescription:
        'A grid of variants for `gatelab sweep`: a **key path** (`model.layers.0.forgetBias`, `train.seed`, …) → the **list of values** to try, e.g. `{ model.layers.0.forgetBias: [0, 1], train.seed: [1, 2, 3, 4, 5] }`. Every combination is trained; the table gives each setting\'s metric as mean ± standard deviation over the `train.seed` values. `gatelab train` trains the document as written.',
    },
  },
};

/**
 * The sub-schema at a dotted key path (`train.optimizer.learningRate`, `model.layers.0.hidden`; a list
 * index may also be written `*`), or undefined when the path names no key of the format.
 */
export function schemaAt(keyPath: string, root: JsonSchema = MODEL_SCHEMA): JsonSchema | undefined {
  let s: JsonSchema | undefined = root;
  for (const part of keyPath ? keyPath.split('.') : []) {
    if (!s) return undefined;
    s = (part === '*' || /^\d+$/.test(part)) && s.items ? s.items : s.properties?.[part];
  }
  return s;
}

function keysOf(s: JsonSchema, prefix: string, out: string[]): string[] {
  for (const [k, sub] of Object.entries(s.properties ?? {})) {
    const full = prefix ? `${prefix}.${k}` : k;
    out.push(full);
    keysOf(sub, full, out);
    if (sub.type === 'array' && sub.items?.properties) keysOf(sub.items, `${full}.*`, out);
  }
  return out;
}

/** Every key of the format as a dotted path, list items as `*` (`model.layers.*.hidden`), in schema order. */
export const SCHEMA_KEYS: readonly string[] = Object.freeze(keysOf(MODEL_SCHEMA, '', []));

/** The value keys a sweep can set, a list's first entry standing for its items (model.layers.0.hidden). */
export const SWEEP_KEYS: readonly string[] = Object.freeze(
  (function leaves(s: JsonSchema, prefix: string): string[] {
    return Object.entries(s.properties ?? {}).flatMap(([k, sub]) => {
      const full = prefix ? `${prefix}.${k}` : k;
      if (!prefix && ['name', 'task', 'sweep'].includes(k)) return [];
      if (sub.type === 'object') return leaves(sub, full);
      if (sub.type === 'array' && sub.items?.type === 'object') return leaves(sub.items, `${full}.0`);
      return [full];
    });
  })(MODEL_SCHEMA, ''),
);

/** The keys allowed directly under a dotted path ('' = the top level of a model). */
export function keysAt(keyPath: string): string[] {
  return Object.keys(schemaAt(keyPath)?.properties ?? {});
}

/**
 * The schema VS Code reads for `*.gatelab.json` (contributes.jsonValidation): one model, or a list of
 * models. media/gatelab.schema.json holds exactly this text.
 */
export function schemaJson(): string {
  const model: JsonSchema = { ...MODEL_SCHEMA };
  delete model.$schema; // only the file's root names the draft
  const doc: JsonSchema = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://gatelab.dev/schema/model.json',
    title: 'Gatelab model file',
    description: 'One Gatelab model, or a list of models.',
    definitions: { model },
    oneOf: [{ $ref: '#/definitions/model' }, { type: 'array', items: { $ref: '#/definitions/model' }, minItems: 1 }],
  };
  return JSON.stringify(doc, null, 2) + '\n';
}
