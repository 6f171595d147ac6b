// Times quanta's float and int8 runs of the real models against ONNX
// Runtime 1.30 on the same files, at batch 1 and 1 and 2 threads:
//   PP-OCRv4 det 1x3x256x256, PP-OCRv4 rec 1x3x48x320, PP-OCR cls 1x3x48x192
//   (the first evaluation page, line and crop of internal/modeleval) and
//   Silero VAD v5 (one 512-sample chunk with its state), float, static int8
//   and dynamic int8; the recognizer also with its stem and last stage at
//   16 bits (ppocr_rec_int16, quanta quantize --int16).
//
//   NODE_PATH=<scratch>/node_modules node scripts/models/bench_quantized.js QUANTA_BIN ROUNDS MODELDIR QDIR FEEDDIR
//
// scripts/models/bench_quantized.sh prepares QDIR (the quantized NAME.onnx
// files) and FEEDDIR (bench_MODEL.npz feeds) and calls this. Each round
// times every file at 1 and 2 threads with `quanta bench --json` (p50 of
// its runs after at least 5 and 1 s of warm-up runs: a process's first runs
// touch fresh memory while its heap grows, and are slower) and with ONNX
// Runtime (the same warm-up; intraOpNumThreads N, graph optimization
// 'all', which fuses QDQ patterns into ORT's int8 kernels; sequential
// execution; p50 of the same number of session.run calls, each timed
// alone, Node's ~8 us call overhead included). The engines alternate which
// goes first from round to round; an ORT session is released before quanta
// runs. The table gives medians over rounds of each p50, quanta's int8
// speed-up over its float run, and quanta int8 / ORT int8 on the same QDQ
// file (below 1: quanta is faster).
const ort = require('onnxruntime-node');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { readNpz } = require('../ort/npz.js');

const [quanta, roundsArg, modelDir, qdir, feedDir] = process.argv.slice(2);
if (!feedDir) {
  console.error('usage: node bench_quantized.js QUANTA_BIN ROUNDS MODELDIR QDIR FEEDDIR');
  process.exit(2);
}
const rounds = Number(roundsArg);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-quantized-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const rows = [
  { name: 'PP-OCRv4 det 1x3x256x256', float: 'ppocr/ch_PP-OCRv4_det_infer.onnx', int8: ['ppocr_det_static'], feed: 'bench_ppocr_det.npz', iters: 30 },
  { name: 'PP-OCRv4 rec 1x3x48x320', float: 'ppocr/ch_PP-OCRv4_rec_infer.onnx', int8: ['ppocr_rec_static', 'ppocr_rec_int16'], feed: 'bench_ppocr_rec.npz', iters: 30 },
  { name: 'PP-OCR cls 1x3x48x192', float: 'ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx', int8: ['ppocr_cls_static'], feed: 'bench_ppocr_cls.npz', iters: 300 },
  { name: 'Silero VAD v5 512 samples', float: 'silero/silero_vad_v5.onnx', int8: ['silero_static', 'silero_dynamic'], feed: 'bench_silero.npz', iters: 1000 },
];
const threads = [1, 2];

function quantaP50(file, feed, iters, t) {
  const json = path.join(tmp, 'q.json');
  execFileSync(quanta, ['bench', file, '--inputs', feed, '--threads', String(t), '--iters', String(iters), '--warmup', '5', '--warmup-time', '1s', '--json', json],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  return JSON.parse(fs.readFileSync(json, 'utf8')).p50_ms;
}

async function ortP50(file, feed, iters, t) {
  const sess = await ort.InferenceSession.create(file, {
    intraOpNumThreads: t, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const arrays = readNpz(feed);
  const feeds = {};
  for (const k of sess.inputNames) feeds[k] = new ort.Tensor(arrays[k].type, arrays[k].data, arrays[k].dims);
  // Warm-up as quanta bench's: at least 5 runs and 1 s.
  for (let i = 0, t0 = Date.now(); i < 5 || Date.now() - t0 < 1000; i++) await sess.run(feeds);
  const times = [];
  for (let i = 0; i < iters; i++) {
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
  const put = (k, v) => { (res[k] = res[k] || []).push(v); };
  for (let r = 0; r < rounds; r++) {
    for (const t of threads) {
      for (const m of rows) {
        const feed = path.join(feedDir, m.feed);
        const files = [['float', path.join(modelDir, m.float)], ...m.int8.map((n) => [n, path.join(qdir, `${n}.onnx`)])];
        for (const [kind, file] of files) {
          let q, o;
          if (r % 2 === 0) { q = quantaP50(file, feed, m.iters, t); o = await ortP50(file, feed, m.iters, t); } else { o = await ortP50(file, feed, m.iters, t); q = quantaP50(file, feed, m.iters, t); }
          put(`${m.name}|${t}|${kind}|q`, q);
          put(`${m.name}|${t}|${kind}|o`, o);
          console.error(`round ${r + 1}/${rounds} ${m.name} ${kind} threads ${t}: quanta ${q.toFixed(3)} ms, ORT ${o.toFixed(3)} ms`);
        }
      }
    }
  }
  const med = (k) => median(res[k]);
  console.log('| model (input) | int8 file | threads | quanta float ms | quanta int8 ms | int8 speed-up | ORT float ms | ORT int8 ms | quanta int8 / ORT int8 |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const m of rows) {
    for (const kind of m.int8) {
      for (const t of threads) {
        const qf = med(`${m.name}|${t}|float|q`), qi = med(`${m.name}|${t}|${kind}|q`);
        const of = med(`${m.name}|${t}|float|o`), oi = med(`${m.name}|${t}|${kind}|o`);
        console.log(`| ${m.name} | ${kind} | ${t} | ${qf.toFixed(3)} | ${qi.toFixed(3)} | ${(qf / qi).toFixed(2)}x | ${of.toFixed(3)} | ${oi.toFixed(3)} | ${(qi / oi).toFixed(2)} |`);
      }
    }
  }
})().catch((e) => { console.error(e); process.exit(1); });
