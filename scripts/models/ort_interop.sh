#!/usr/bin/env bash
# Regenerates the ONNX Runtime references of internal/modeleval's
# TestORTInterop: quantizes the real models the way the test does (writing
# the QDQ files, their fixed inputs and a manifest with each file's SHA-256
# into a scratch folder), runs them in ONNX Runtime 1.30 and writes ORT's
# outputs into internal/modeleval/testdata/ort.
#
#   npm install --ignore-scripts onnxruntime-node@1.30.0   (in a scratch folder)
#   NODE_PATH=<scratch>/node_modules scripts/models/ort_interop.sh [OUTDIR]
#
# Run from the repository root, with the models in ../shared/models. Rerun
# whenever the quantizer changes what it writes (the test then reports a
# SHA-256 mismatch).
set -euo pipefail
out=${1:-internal/modeleval/testdata/ort}
q=$(mktemp -d)
trap 'rm -rf "$q"' EXIT
go test ./internal/modeleval -count=1 -run '^TestWriteQuantized$' -args -modeleval.out "$q"
node "$(dirname "$0")/ort_interop.js" "$q" "$out"
