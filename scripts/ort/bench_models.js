// Compares quanta's float latency on the real models with ONNX Runtime's,
// at batch 1, on the inputs of quanta's real-model test
// (graph/exec/testdata/models): the PP-OCRv4 detector (1x3x128x256) and
// recognizer (1x3x48x128), the PP-OCR direction classifier (2x3x48x192: the
// test's batch of an upright and a rotated line) and Silero VAD v5 (one
// 512-sample chunk of speech).
//
//   NODE_PATH=<scratch>/node_modules node scripts/ort/bench_models.js QUANTA_BIN [ROUNDS] [MODELDIR] [DATADIR]
//
// scripts/ort/bench_models.sh builds QUANTA_BIN and calls this. Each round
// times every model at 1 and 2 threads with `quanta bench --json` (p50 of
// its runs) and with ONNX Runtime (intraOpNumThreads N, graph optimization
// 'all', sequential execution; p50 of the same number of session.run calls,
// each timed alone, Node's ~8 us call overhead included). The engines
// alternate which goes first from round to round; an ONNX Runtime session
// is released before quanta runs so its spinning workers take no CPU. The
// table gives the median over rounds of each p50 and of the per-round
// ratios quanta/ORT, and the smallest p50 of each (the least disturbed
// round, when others share the machine).
const ort = require('onnxruntime-node');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { readNpz, writeNpz } = require('./npz.js');

const quanta = process.argv[2];
const rounds = Number(process.argv[3] || 5);
const modelDir = process.argv[4] || path.join('..', 'shared', 'models');
const dataDir = process.argv[5] || path.join('graph', 'exec', 'testdata', 'models');
if (!quanta) {
  console.error('usage: node bench_models.js QUANTA_BIN [ROUNDS] [MODELDIR] [DATADIR]');
  process.exit(2);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-models-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

// Silero's benchmark input: chunk 8 of the test audio (speech), zero state.
const sil = readNpz(path.join(dataDir, 'silero_inputs.npz'));
const len = sil.chunks.dims[1];
const sileroNpz = path.join(tmp, 'silero_chunk.npz');
writeNpz(sileroNpz, [
  ['input', { type: 'float32', dims: [1, len], data: sil.chunks.data.slice(8 * len, 9 * len) }],
  ['state', sil.state],
  ['sr', sil.sr],
]);

const models = [
  { name: 'PP-OCRv4 det 1x3x128x256', file: 'ppocr/ch_PP-OCRv4_det_infer.onnx', inputs: path.join(dataDir, 'ppocr_det_inputs.npz'), iters: 40 },
  { name: 'PP-OCRv4 rec 1x3x48x128', file: 'ppocr/ch_PP-OCRv4_rec_infer.onnx', inputs: path.join(dataDir, 'ppocr_rec_inputs.npz'), iters: 40 },
  { name: 'PP-OCR cls 2x3x48x192', file: 'ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx', inputs: path.join(dataDir, 'ppocr_cls_inputs.npz'), iters: 200 },
  { name: 'Silero VAD v5 512 samples', file: 'silero/silero_vad_v5.onnx', inputs: sileroNpz, iters: 1000 },
];
const threads = [1, 2];

function quantaP50(m, t) {
  const json = path.join(tmp, 'q.json');
  execFileSync(quanta, ['bench', path.join(modelDir, m.file), '--inputs', m.inputs, '--threads', String(t),
    '--iters', String(m.iters), '--warmup', '5', '--json', json], { stdio: ['ignore', 'ignore', 'ignore'] });
  return JSON.parse(fs.readFileSync(json, 'utf8')).p50_ms;
}

async function ortP50(m, t) {
  const sess = await ort.InferenceSession.create(path.join(modelDir, m.file), {
    intraOpNumThreads: t, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const arrays = readNpz(m.inputs);
  const feeds = {};
  for (const k of sess.inputNames) feeds[k] = new ort.Tensor(arrays[k].type, arrays[k].data, arrays[k].dims);
  for (let i = 0; i < 5; i++) await sess.run(feeds);
  const times = [];
  for (let i = 0; i < m.iters; i++) {
    const s = process.hrtime.bigint();
    await sess.run(feeds);
    times.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  await sess.release();
  return median(times);
}

function median(v) {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

(async () => {
  const res = {};
  for (let r = 0; r < rounds; r++) {
    for (const t of threads) {
      for (const m of models) {
        const key = `${m.name}|${t}`;
        res[key] = res[key] || { q: [], o: [], ratio: [] };
        let q, o;
        if (r % 2 === 0) { q = quantaP50(m, t); o = await ortP50(m, t); } else { o = await ortP50(m, t); q = quantaP50(m, t); }
        res[key].q.push(q); res[key].o.push(o); res[key].ratio.push(q / o);
        console.error(`round ${r + 1}/${rounds} ${m.name} threads ${t}: quanta ${q.toFixed(3)} ms, ORT ${o.toFixed(3)} ms`);
      }
    }
  }
  console.log(`| model (input) | threads | quanta p50 ms | ORT p50 ms | quanta/ORT | best quanta / ORT ms |`);
  console.log(`| --- | ---: | ---: | ---: | ---: | ---: |`);
  for (const m of models) {
    for (const t of threads) {
      const x = res[`${m.name}|${t}`];
      console.log(`| ${m.name} | ${t} | ${median(x.q).toFixed(3)} | ${median(x.o).toFixed(3)} | ${median(x.ratio).toFixed(2)} | ${Math.min(...x.q).toFixed(3)} / ${Math.min(...x.o).toFixed(3)} |`);
    }
  }
})().catch((e) => { console.error(e); process.exit(1); });
