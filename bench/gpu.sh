#!/usr/bin/env bash
# One device call on the GPU machine (../shared/gpu/README.md), after the staging calls:
#   bash /root/gpu/parts/unpack.sh .gpu/p4 && bash bench/gpu.sh
# It runs everything issue 5 asks of a GPU in one go, into $OUT (or ./gpu-out):
#   doctor; bench C1-C3 on CUDA with placement, TF32 off (NVIDIA_TF32_OVERRIDE=0) and on (ORT's
#   default); PyTorch nn.LSTM (cuDNN) on the same shapes, TF32 off and on; bench on the CPU for the
#   same call; and device auto's calibration on the bundled Time Machine model (a few steps).
set -uo pipefail
OUT="${OUT:-gpu-out}"
mkdir -p "$OUT"
source /root/gpu/env.sh
ln -sfn /root/gpu/node_modules node_modules
run() { local name=$1; shift; echo "== $name: $*"; ( "$@" ) >"$OUT/$name.out" 2>"$OUT/$name.err"; echo "   rc=$?"; tail -c 2000 "$OUT/$name.out"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$OUT/gpu.txt" 2>&1; cat "$OUT/gpu.txt"
run doctor node dist/cli.js doctor
run bench-cuda-fp32 env NVIDIA_TF32_OVERRIDE=0 node dist/cli.js bench --device cuda --json --only C1,C2,C3
run bench-cuda-tf32 node dist/cli.js bench --device cuda --json --only C1,C2,C3
run bench-cuda-text node dist/cli.js bench --device cuda --only C1,C2,C3,C4,G1,G4
# PyTorch from its own cuDNN: without env.sh's LD_LIBRARY_PATH
run torch-fp32 env -u LD_LIBRARY_PATH python3 bench/torch_lstm.py --device cuda
run torch-tf32 env -u LD_LIBRARY_PATH python3 bench/torch_lstm.py --device cuda --tf32
run bench-cpu node dist/cli.js bench --device cpu --json --only C1
run auto-calibration node dist/cli.js train examples/timemachine.gatelab.yaml --device auto --steps 20 --no-record
grep -h "calibration\|device" "$OUT/auto-calibration.err" | head -5
