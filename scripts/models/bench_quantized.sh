#!/usr/bin/env bash
# Measures quantization's speed-up on the real models (PP-OCRv4 detector and
# recognizer, PP-OCR direction classifier, Silero VAD v5): quantizes each
# with `quanta quantize` on the calibration sets of internal/modeleval (the
# same files TestQuantizedRealModels evaluates), then times quanta's float
# and int8 runs (`quanta bench`, batch 1, 1 and 2 threads) and ONNX Runtime
# 1.30 on the same float and QDQ files in one run, and prints a Markdown
# table (see bench_quantized.js).
#
#   npm install --ignore-scripts onnxruntime-node@1.30.0   (in a scratch folder)
#   NODE_PATH=<scratch>/node_modules scripts/models/bench_quantized.sh [ROUNDS] [MODELDIR]
#
# Run from the repository root; MODELDIR defaults to ../shared/models. The
# quanta binary is built from the working tree unless QUANTA_BIN names one.
# Take the 2-thread figures when nothing else runs on the machine.
set -euo pipefail
rounds=${1:-3}
models=${2:-../shared/models}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
quanta=${QUANTA_BIN:-}
if [ -z "$quanta" ]; then
  go build -o "$work/quanta" ./cmd/quanta
  quanta=$work/quanta
fi
echo "$(date)  $(uname -m)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')  $(nproc) CPUs" >&2

# Calibration sets, benchmark feeds and the test's own quantized files.
go test ./internal/modeleval -count=1 -run '^TestWriteQuantized$' -args -modeleval.out "$work/t" >&2

q() { # q NAME MODELFILE ARGS...: quantize with the CLI; check it wrote the test's file
  local name=$1 file=$2
  shift 2
  "$quanta" quantize "$models/$file" -o "$work/$name.onnx" "$@" >&2
  if cmp -s "$work/$name.onnx" "$work/t/$name.onnx"; then
    echo "$name: quanta quantize wrote the file internal/modeleval evaluates" >&2
  else
    echo "$name: quanta quantize wrote a different file than internal/modeleval's test" >&2
  fi
}
q ppocr_det_static ppocr/ch_PP-OCRv4_det_infer.onnx --calib "$work/t/calib_ppocr_det.npz"
q ppocr_rec_static ppocr/ch_PP-OCRv4_rec_infer.onnx --calib "$work/t/calib_ppocr_rec.npz"
q ppocr_cls_static ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx --calib "$work/t/calib_ppocr_cls.npz"
q silero_static silero/silero_vad_v5.onnx --calib "$work/t/calib_silero.npz"
q silero_dynamic silero/silero_vad_v5.onnx --mode dynamic
q ppocr_rec_int16 ppocr/ch_PP-OCRv4_rec_infer.onnx --calib "$work/t/calib_ppocr_rec.npz" --int16 '^p2o\.Conv\.([0-9]|2[4-9]|3[0-2])$'

node "$(dirname "$0")/bench_quantized.js" "$quanta" "$rounds" "$models" "$work" "$work/t"
