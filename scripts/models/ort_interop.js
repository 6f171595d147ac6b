// Runs the quantized real models (QDQ ONNX files written by quanta) in ONNX
// Runtime 1.30 on fixed inputs and writes ORT's outputs as the references of
// internal/modeleval's TestORTInterop.
//
//   NODE_PATH=/tmp/ort/node_modules node scripts/models/ort_interop.js QDIR [OUTDIR]
//
// ORT_OPT=disabled|basic|extended|all (default all) sets ORT's graph
// optimization level: 'disabled' runs the QDQ graph literally, as
// `quanta run --reference` does; 'all' is what the references hold.
//
// QDIR holds what `go test ./internal/modeleval -run TestWriteQuantized
// -args -modeleval.out QDIR` writes: manifest.json, and per quantized model
// NAME.onnx and NAME_inputs.npz (each input's feeds stacked along a new
// first axis). OUTDIR defaults to internal/modeleval/testdata/ort. For every
// model the script runs each feed alone (graph optimization 'all', so ORT
// fuses the QDQ patterns into its own int8 kernels; one thread), stacks
// every output along a new first axis into OUTDIR/NAME.npz, and writes
// OUTDIR/manifest.json with each model's SHA-256, so the Go test can tell
// when the quantizer has changed the file. scripts/models/ort_interop.sh
// runs both steps.
const ort = require('onnxruntime-node');
const fs = require('fs');
const path = require('path');
const { readNpz, writeNpz } = require('../ort/npz.js');

const qdir = process.argv[2];
const outDir = process.argv[3] || path.join('internal', 'modeleval', 'testdata', 'ort');
const level = process.env.ORT_OPT || 'all';
if (!qdir) {
  console.error('usage: node ort_interop.js QDIR [OUTDIR]');
  process.exit(2);
}

function slice(t, i, n) {
  const per = t.data.length / n;
  return new ort.Tensor(t.type, t.data.slice(i * per, (i + 1) * per), t.dims.slice(1));
}

(async () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(qdir, 'manifest.json'), 'utf8'));
  fs.mkdirSync(outDir, { recursive: true });
  const written = [];
  for (const e of manifest) {
    const sess = await ort.InferenceSession.create(path.join(qdir, e.model), {
      graphOptimizationLevel: level, intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
    });
    const inputs = readNpz(path.join(qdir, e.inputs));
    const outs = {};
    for (let i = 0; i < e.feeds; i++) {
      const feed = {};
      for (const k of sess.inputNames) {
        if (!inputs[k]) throw new Error(`${e.inputs}: no input ${k}`);
        feed[k] = slice(inputs[k], i, e.feeds);
      }
      const res = await sess.run(feed);
      for (const o of e.outputs) {
        const t = res[o];
        if (!t) throw new Error(`${e.model}: ORT returned no output ${o}`);
        if (t.type !== 'float32') throw new Error(`${e.model}: output ${o} is ${t.type}`);
        if (!outs[o]) outs[o] = { dims: t.dims.slice(), parts: [] };
        if (outs[o].dims.join() !== t.dims.join()) throw new Error(`${e.model}: output ${o} changes shape`);
        outs[o].parts.push(t.data.slice());
      }
    }
    await sess.release();
    const arrays = e.outputs.map((o) => {
      const { dims, parts } = outs[o];
      const data = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
      let off = 0;
      for (const p of parts) { data.set(p, off); off += p.length; }
      return [o, { type: 'float32', dims: [e.feeds, ...dims], data }];
    });
    const file = path.join(outDir, `${e.name}.npz`);
    writeNpz(file, arrays);
    console.log(`${e.name}: ${e.feeds} feeds, outputs ${e.outputs.map((o) => `${o} [${outs[o].dims}]`).join(', ')} -> ${file} (${fs.statSync(file).size} bytes)`);
    written.push({ name: e.name, model: e.model, inputs: e.inputs, sha256: e.sha256, feeds: e.feeds, outputs: e.outputs });
  }
  fs.writeFileSync(path.join(outDir, 'manifest.json'), JSON.stringify(written, null, 2) + '\n');
})().catch((err) => { console.error(err); process.exit(1); });
