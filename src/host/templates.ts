// Templates for "New Model from Template": real, runnable examples shipped in examples/ (with the
// data they read). Classification and the copy task come with the rest of the model zoo.

export interface Template {
  id: string;
  label: string;
  description: string;
  /** file name proposed in the workspace */
  fileName: string;
  /** model file under examples/ */
  source: string;
  /** data files (relative to examples/) copied beside the new model file */
  data: string[];
}

export const TEMPLATES: Template[] = [
  {
    id: 'char-lm',
    label: 'Character language model',
    description: "d2l's Time Machine: one-hot characters → LSTM 256, SGD, clipping",
    fileName: 'timemachine.gatelab.yaml',
    source: 'timemachine.gatelab.yaml',
    data: ['data/timemachine.txt'],
  },
  {
    id: 'word-lm',
    label: 'Word language model',
    description: 'The Time Machine as words: embedding → 2-layer LSTM, Adam',
    fileName: 'timemachine-words.gatelab.yaml',
    source: 'timemachine-words.gatelab.yaml',
    data: ['data/timemachine.txt'],
  },
  {
    id: 'forecast',
    label: 'Time-series forecast',
    description: 'Airline passengers: the next month from the last 12, against seasonal-naive',
    fileName: 'airline.gatelab.yaml',
    source: 'airline.gatelab.yaml',
    data: ['data/airline-passengers.csv'],
  },
];
