// Runs ONNX Runtime on the models that package fx traced and exported
// (fx/testdata/*.onnx, written by `go test ./fx -run TestORTReference -update`)
// and writes ONNX Runtime's outputs beside them as the test's references.
//
//   npm install --ignore-scripts onnxruntime-node@1.30.0   (in a scratch folder)
//   NODE_PATH=<scratch>/node_modules node scripts/ort/run_traced.js [DIR]
//
// DIR defaults to fx/testdata. For every NAME.onnx it reads NAME_inputs.npz
// (arrays named as the model's inputs), runs the model with all graph
// optimizations and with none, requires the two to agree within relative L2
// error 1e-6 per output, and writes NAME_ort.npz (arrays named as the
// model's outputs, from the optimized run).
//
// The same files pass the onnx package's full checker (shape inference
// included):
//   /usr/bin/python3 -c 'import onnx,sys; [onnx.checker.check_model(onnx.load(f), full_check=True) for f in sys.argv[1:]]' fx/testdata/*.onnx
const ort = require('onnxruntime-node');
const fs = require('fs');
const path = require('path');
const { readNpz, writeNpz } = require('./npz.js');

const dir = process.argv[2] || path.join('fx', 'testdata');

function relL2(a, b) {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

async function run(file, inputs, level) {
  const s = await ort.InferenceSession.create(file, { graphOptimizationLevel: level });
  const feeds = {};
  for (const name of s.inputNames) {
    const t = inputs[name];
    if (!t) throw new Error(`${file}: no input ${name}`);
    feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
  }
  const res = await s.run(feeds);
  return s.outputNames.map((n) => [n, { type: res[n].type, dims: res[n].dims, data: res[n].data }]);
}

(async () => {
  let failed = false;
  const models = fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort();
  if (models.length === 0) throw new Error(`no .onnx files in ${dir}`);
  for (const f of models) {
    const name = f.replace(/\.onnx$/, '');
    const file = path.join(dir, f);
    const inputs = readNpz(path.join(dir, `${name}_inputs.npz`));
    const all = await run(file, inputs, 'all');
    const off = await run(file, inputs, 'disabled');
    let worst = 0;
    for (let i = 0; i < all.length; i++) {
      const e = relL2(off[i][1].data, all[i][1].data);
      worst = Math.max(worst, e);
      if (!(e <= 1e-6)) {
        failed = true;
        console.log(`${name} ${all[i][0]}: 'disabled' vs 'all' relative L2 ${e.toExponential(2)} > 1e-6`);
      }
    }
    const out = path.join(dir, `${name}_ort.npz`);
    writeNpz(out, all);
    console.log(`${name}: ${all.length} outputs, optimized vs plain relative L2 <= ${worst.toExponential(2)}; wrote ${out}`);
  }
  if (failed) process.exit(1);
})().catch((e) => { console.error(e); process.exit(1); });
