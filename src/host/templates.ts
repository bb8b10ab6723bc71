// Templates for "New Model from Template": real, runnable examples shipped in examples/ (with the
// data they read).

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
  {
    id: 'sentiment',
    label: 'Sentiment classifier',
    description: 'UCI review sentences: embedding → LSTM → mean over words → positive/negative',
    fileName: 'sentiment.gatelab.yaml',
    source: 'sentiment.gatelab.yaml',
    data: ['data/sentiment/amazon_cells_labelled.txt', 'data/sentiment/imdb_labelled.txt', 'data/sentiment/yelp_labelled.txt'],
  },
  {
    id: 'copy',
    label: 'Copy task',
    description: 'Remember 10 symbols through a delay of 20 (long memory; Arjovsky et al. 2016)',
    fileName: 'copy.gatelab.yaml',
    source: 'copy.gatelab.yaml',
    data: [],
  },
  {
    id: 'adding',
    label: 'Adding problem',
    description: 'Sum the two marked numbers of a 50-step sequence (Hochreiter & Schmidhuber 1997)',
    fileName: 'adding.gatelab.yaml',
    source: 'adding.gatelab.yaml',
    data: [],
  },
];
