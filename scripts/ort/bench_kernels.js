// Times ONNX Runtime (onnxruntime-node) on the kernel models written by
// make_kernel_models.py: median of repeated timed loops, per thread count.
//
//   npm install --ignore-scripts onnxruntime-node@1.30.0   (in a scratch folder)
//   NODE_PATH=<scratch>/node_modules node scripts/ort/bench_kernels.js MODELDIR [threads...]
//
// Prints one JSON line per model and thread count with the median time per
// run in microseconds. Each loop runs many session.run calls, so Node's
// per-call overhead (~8 us) is included: subtract it for batch-1 ops.
const ort = require('onnxruntime-node');
const fs = require('fs');
const path = require('path');

const dir = process.argv[2] || 'ort-models';
const threads = process.argv.length > 3 ? process.argv.slice(3).map(Number) : [1, 2];

function feedFor(sess) {
  const feeds = {};
  for (const name of sess.inputNames) {
    const meta = sess.inputMetadata ? sess.inputMetadata.find((m) => m.name === name) : null;
    let dims, type;
    if (meta && meta.shape) { dims = meta.shape; type = meta.type; }
    const n = dims.reduce((a, b) => a * b, 1);
    if (type === 'uint8') feeds[name] = new ort.Tensor('uint8', Uint8Array.from({ length: n }, (_, i) => (i * 37) & 255), dims);
    else feeds[name] = new ort.Tensor('float32', Float32Array.from({ length: n }, (_, i) => Math.sin(i)), dims);
  }
  return feeds;
}

(async () => {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort();
  for (const t of threads) {
    for (const f of files) {
      const sess = await ort.InferenceSession.create(path.join(dir, f), { intraOpNumThreads: t, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
      const feeds = feedFor(sess);
      for (let i = 0; i < 5; i++) await sess.run(feeds);
      const t0 = process.hrtime.bigint();
      await sess.run(feeds);
      const once = Number(process.hrtime.bigint() - t0) / 1e3;
      const iters = Math.max(5, Math.min(2000, Math.floor(200000 / Math.max(once, 1))));
      const samples = [];
      for (let r = 0; r < 7; r++) {
        const s = process.hrtime.bigint();
        for (let i = 0; i < iters; i++) await sess.run(feeds);
        samples.push(Number(process.hrtime.bigint() - s) / 1e3 / iters);
      }
      samples.sort((a, b) => a - b);
      console.log(JSON.stringify({ model: f.replace('.onnx', ''), threads: t, median_us: +samples[3].toFixed(2), min_us: +samples[0].toFixed(2) }));
    }
  }
})();
