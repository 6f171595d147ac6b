#!/usr/bin/env bash
# Compares quanta's float latency on the real models (PP-OCR detector,
# recognizer and classifier, Silero VAD v5) with ONNX Runtime 1.30's, at 1
# and 2 threads, on the inputs of graph/exec/testdata/models; prints a
# Markdown table of medians over ROUNDS rounds (see bench_models.js).
#
#   npm install --ignore-scripts onnxruntime-node@1.30.0   (in a scratch folder)
#   NODE_PATH=<scratch>/node_modules scripts/ort/bench_models.sh [ROUNDS] [MODELDIR]
#
# Run from the repository root; MODELDIR defaults to ../shared/models. The
# quanta binary is built from the working tree unless QUANTA_BIN names one.
# Take the 2-thread figures when nothing else runs on the machine.
set -euo pipefail
rounds=${1:-5}
models=${2:-../shared/models}
quanta=${QUANTA_BIN:-}
if [ -z "$quanta" ]; then
  bin=$(mktemp -d)
  trap 'rm -rf "$bin"' EXIT
  go build -o "$bin/quanta" ./cmd/quanta
  quanta=$bin/quanta
fi
echo "$(date)  $(uname -m)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')  $(nproc) CPUs" >&2
node "$(dirname "$0")/bench_models.js" "$quanta" "$rounds" "$models" graph/exec/testdata/models
