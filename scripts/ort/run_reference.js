// Runs ONNX Runtime on the inputs of quanta's real-model test and writes its
// outputs as the test's references (graph/exec/testdata/models/*_ort.npz).
//
//   npm install --ignore-scripts onnxruntime-node@1.30.0   (in a scratch folder)
//   /usr/bin/python3 scripts/ort/make_model_inputs.py      (the inputs)
//   NODE_PATH=<scratch>/node_modules node scripts/ort/run_reference.js [MODELDIR] [DATADIR]
//
// MODELDIR defaults to ../shared/models, DATADIR to graph/exec/testdata/models.
// Every model runs twice, with graphOptimizationLevel 'all' (the written
// reference) and 'disabled', and prints the relative L2 error
// (||a-b||/||b||) between the two for every output. Graph optimization
// reorders float arithmetic (batch norms folded into convolutions, fused
// activations), so they differ by rounding: up to about 1e-6 on these
// inputs. The script fails if any output differs by more than 1e-5, a
// tenth of the tolerance quanta's test applies. Silero VAD runs the audio
// chunk by chunk, feeding each chunk's stateN back as the next state; its
// reference holds every chunk's output and the final state.
const ort = require('onnxruntime-node');
const fs = require('fs');
const path = require('path');
const { readNpz, writeNpz } = require('./npz.js');

const modelDir = process.argv[2] || path.join('..', 'shared', 'models');
const dataDir = process.argv[3] || path.join('graph', 'exec', 'testdata', 'models');

function relL2(a, b) {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

function tensor(t) { return new ort.Tensor(t.type, t.data, t.dims); }
function plain(t) { return { type: t.type, dims: t.dims.slice(), data: t.data.slice() }; }

async function session(file, level) {
  return ort.InferenceSession.create(path.join(modelDir, file), {
    graphOptimizationLevel: level, intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
  });
}

// runImage runs a one-input model once; returns [[name, tensor]...].
async function runImage(file, inputs, level) {
  const s = await session(file, level);
  const res = await s.run({ x: tensor(inputs.x) });
  return s.outputNames.map((n) => [n, plain(res[n])]);
}

// runSilero feeds the chunks one by one, carrying the state.
async function runSilero(file, inputs, level) {
  const s = await session(file, level);
  const [n, len] = inputs.chunks.dims;
  let state = tensor(inputs.state);
  const sr = tensor(inputs.sr);
  const probs = new Float32Array(n);
  let last;
  for (let i = 0; i < n; i++) {
    const chunk = new ort.Tensor('float32', inputs.chunks.data.slice(i * len, (i + 1) * len), [1, len]);
    const res = await s.run({ input: chunk, state, sr });
    if (res.output.data.length !== 1) throw new Error(`silero: output has ${res.output.data.length} values`);
    probs[i] = res.output.data[0];
    state = res.stateN;
    last = res.stateN;
  }
  return [['output', { type: 'float32', dims: [n, 1], data: probs }], ['stateN', plain(last)]];
}

const jobs = [
  { name: 'ppocr_det', file: 'ppocr/ch_PP-OCRv4_det_infer.onnx', run: runImage },
  { name: 'ppocr_rec', file: 'ppocr/ch_PP-OCRv4_rec_infer.onnx', run: runImage },
  { name: 'ppocr_cls', file: 'ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx', run: runImage },
  { name: 'silero', file: 'silero/silero_vad_v5.onnx', run: runSilero },
];

(async () => {
  let failed = false;
  for (const job of jobs) {
    const inputs = readNpz(path.join(dataDir, `${job.name}_inputs.npz`));
    const all = await job.run(job.file, inputs, 'all');
    const off = await job.run(job.file, inputs, 'disabled');
    for (let i = 0; i < all.length; i++) {
      const e = relL2(off[i][1].data, all[i][1].data);
      const ok = e <= 1e-5;
      if (!ok) failed = true;
      console.log(`${job.name} ${all[i][0]} [${all[i][1].dims}] 'disabled' vs 'all' relative L2 ${e.toExponential(2)}${ok ? '' : '  > 1e-5'}`);
    }
    const out = path.join(dataDir, `${job.name}_ort.npz`);
    writeNpz(out, all);
    console.log(`wrote ${out} (${fs.statSync(out).size} bytes)`);
  }
  if (failed) process.exit(1);
})().catch((e) => { console.error(e); process.exit(1); });
