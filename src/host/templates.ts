// Templates for "New Model from Template": real, runnable examples shipped in examples/ (with the
// data they read). The copy and adding tasks come with the rest of the model zoo.

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
];
