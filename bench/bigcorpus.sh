#!/usr/bin/env bash
# Big corpora (issue 13): a text of SIZE bytes (The Time Machine repeated, default 1 GB) trained for
# 5 steps, character tokens then words; each first run tokenises (and fills the token cache), each
# second run maps the ids back in from .gatelab/cache. Prints wall time and the trainer's peak RSS
# (GNU time: the largest resident set of the process tree's biggest member).
#
#   bash bench/bigcorpus.sh [SIZE_BYTES] [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-1000000000}
DIR=${2:-/tmp/gatelab-bigcorpus}
mkdir -p "$DIR"
if [ "$(stat -c %s "$DIR/corpus.txt" 2>/dev/null || echo 0)" != "$SIZE" ]; then
  echo "== writing $DIR/corpus.txt ($SIZE bytes)"
  src=examples/data/timemachine.txt
  reps=$(( SIZE / $(stat -c %s $src) + 1 ))
  for _ in $(seq "$reps"); do cat "$src"; done 2>/dev/null | head -c "$SIZE" > "$DIR/corpus.txt" || true
fi
for tokens in char word; do
  cat > "$DIR/big-$tokens.gatelab.yaml" <<YAML
name: big-$tokens
task: language-model
data:
  source: corpus.txt
  tokens: $tokens
  preprocess: none
  minFrequency: $([ $tokens = word ] && echo 5 || echo 0)
  sequenceLength: 35
  validation: 0.1
model:
  embedding: $([ $tokens = word ] && echo 64 || echo 0)
  layers:
    - type: lstm
      hidden: 256
train:
  steps: 5
  batchSize: 32
  optimizer: { type: sgd, learningRate: 1 }
  clipNorm: 1
  device: cpu
YAML
done
[ -f dist/cli.js ] || node esbuild.mjs
rm -rf "$DIR/.gatelab/cache"
for tokens in char word; do
  for run in first second; do
    echo "== $tokens tokens, $run run"
    /usr/bin/time -f "wall %e s, peak RSS %M KiB" node dist/cli.js train "$DIR/big-$tokens.gatelab.yaml" --no-record 2>&1 >"$DIR/summary-$tokens-$run.json" | grep -v '^\s*$' | tail -6
    head -c 400 "$DIR/summary-$tokens-$run.json"; echo
  done
done
du -sh "$DIR/.gatelab/cache"
