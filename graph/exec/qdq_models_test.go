package exec_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/graph/quantize"
	"github.com/quanta-go/quanta/npy"
	"github.com/quanta-go/quanta/onnx"
	"github.com/quanta-go/quanta/tensor"
)

// qdqModel is a real model and its static QDQ quantization.
type qdqModel struct {
	float, qdq *graph.Model
	feed       map[string]*tensor.Tensor
	err        error
}

var qdqModels sync.Map // name -> *qdqModel (with a sync.Once)

type qdqEntry struct {
	once sync.Once
	m    qdqModel
}

// modelsDir is sharedModels for tests and benchmarks.
func modelsDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
	models := filepath.Join(filepath.Dir(dir), "shared", "models")
	if _, err := os.Stat(models); errors.Is(err, os.ErrNotExist) {
		tb.Skipf("the real-model test needs the folder %s (shared/models beside the repository); it is absent", models)
	} else if err != nil {
		tb.Fatal(err)
	}
	return models
}

// quantizedModel loads a PP-OCR model and quantizes it statically with the
// default settings, calibrated on the committed input and three scaled
// and shifted copies of it.
func quantizedModel(tb testing.TB, name, file string) *qdqModel {
	tb.Helper()
	dir := modelsDir(tb)
	e, _ := qdqModels.LoadOrStore(name, &qdqEntry{})
	ent := e.(*qdqEntry)
	ent.once.Do(func() {
		m := &ent.m
		if m.float, m.err = onnx.Load(filepath.Join(dir, "ppocr", file)); m.err != nil {
			return
		}
		var feeds map[string]*tensor.Tensor
		if feeds, _, m.err = npy.ReadNPZ(filepath.Join("testdata", "models", name+"_inputs.npz")); m.err != nil {
			return
		}
		m.feed = feeds
		p, err := quantize.Prepare(m.float, quantize.Options{})
		if err != nil {
			m.err = err
			return
		}
		for i, s := range []float32{1, 0.8, 1.1, 0.9} {
			f := map[string]*tensor.Tensor{}
			for k, v := range feeds {
				c := tensor.FromFloat32(append([]float32(nil), v.F32()...), v.Shape()...)
				for j := range c.F32() {
					c.F32()[j] = c.F32()[j]*s + float32(i)*0.05
				}
				f[k] = c
			}
			if m.err = p.Observe(context.Background(), f); m.err != nil {
				return
			}
		}
		m.qdq, m.err = quantize.Convert(p)
	})
	if ent.m.err != nil {
		tb.Fatalf("%s: %v", name, ent.m.err)
	}
	return &ent.m
}

var ppocrQDQ = []struct{ name, file string }{
	{"ppocr_cls", "ch_ppocr_mobile_v2.0_cls_infer.onnx"},
	{"ppocr_det", "ch_PP-OCRv4_det_infer.onnx"},
}

// TestQDQRealModels quantizes the PP-OCR classifier and detector, runs
// them fused and literally (Options.Reference), and checks that every
// Conv runs in int8, that no DequantizeLinear or QuantizeLinear is left
// between fused steps more than the graph's edges need, and that the
// fused outputs agree with the literal ones (the int8 Conv rounds once
// where the float path rounds per product: within a few quantization
// steps of the output).
func TestQDQRealModels(t *testing.T) {
	for _, mdl := range ppocrQDQ {
		t.Run(mdl.name, func(t *testing.T) {
			m := quantizedModel(t, mdl.name, mdl.file)
			fused, err := exec.Compile(m.qdq, exec.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ref, err := exec.Compile(m.qdq, exec.Options{Reference: true})
			if err != nil {
				t.Fatal(err)
			}
			rows := fused.QuantReport()
			var i8, fl int
			for _, s := range exec.SummarizeQuant(rows) {
				i8 += s.Int8
				fl += s.Float
				t.Logf("%-20s int8 %4d float %4d", s.Op, s.Int8, s.Float)
			}
			t.Logf("%d nodes int8, %d float", i8, fl)
			// Every Conv whose result is quantized (through Relu or Clip
			// at most) with one zero point, and whose input has one scale
			// (or is depthwise), runs in int8.
			readers := map[*graph.Value][]*graph.Node{}
			for _, n := range m.qdq.Graph.Nodes {
				for _, in := range n.Inputs {
					readers[in] = append(readers[in], n)
				}
			}
			quantized := map[string]bool{}
			for _, n := range m.qdq.Graph.Nodes {
				if n.OpType != "Conv" {
					continue
				}
				v := n.Outputs[0]
				for len(readers[v]) == 1 && (readers[v][0].OpType == "Relu" || readers[v][0].OpType == "Clip") {
					v = readers[v][0].Outputs[0]
				}
				quantized[n.Name] = len(readers[v]) == 1 && readers[v][0].OpType == "QuantizeLinear"
				// The int8 kernels write one zero point.
				if q := readers[v]; quantized[n.Name] && len(q[0].Inputs) > 2 && q[0].Inputs[2].Const != nil {
					zs := tensor.Cast(q[0].Inputs[2].Const, tensor.Int32).I32()
					for _, z := range zs {
						if z != zs[0] {
							quantized[n.Name] = false
						}
					}
				}
				// Per-channel input scales only factor out of depthwise
				// convolutions.
				if dq := n.Inputs[0].Producer; dq != nil && len(dq.Inputs) > 1 && dq.Inputs[1].Const != nil && dq.Inputs[1].Const.Numel() > 1 {
					if g, _ := n.Int("group", 1); g == 1 {
						quantized[n.Name] = false
					}
				}
			}
			for _, r := range rows {
				if r.Op == "Conv" && quantized[r.Node] && !r.Int8 {
					t.Errorf("Conv %s has a quantized result but runs in float", r.Node)
				}
			}
			got, err := fused.Run(context.Background(), m.feed)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ref.Run(context.Background(), m.feed)
			if err != nil {
				t.Fatal(err)
			}
			for name, w := range want {
				g := got[name]
				if !tensor.SameShape(g.Shape(), w.Shape()) {
					t.Fatalf("%s: shape %v, literal %v", name, g.Shape(), w.Shape())
				}
				var maxd, sum float64
				agree := 0
				for i, v := range w.F32() {
					d := math.Abs(float64(g.F32()[i] - v))
					maxd = max(maxd, d)
					sum += d
					if (g.F32()[i] > 0.3) == (v > 0.3) {
						agree++
					}
				}
				frac := float64(agree) / float64(w.Numel())
				t.Logf("%s %v: max |fused - literal| %.4f, mean %.5f, threshold-0.3 agreement %.4f", name, w.Shape(), maxd, sum/float64(w.Numel()), frac)
				if frac < 0.99 {
					t.Errorf("%s: fused and literal agree on %.4f of the elements at 0.3", name, frac)
				}
			}
		})
	}
}

// BenchmarkQDQModels times the PP-OCR classifier and detector in float,
// statically quantized with fused int8 steps, and the same QDQ file run
// literally, at 1 and 2 threads; the int8 run reports its speed-up over
// float measured in the same benchmark as x-float.
func BenchmarkQDQModels(b *testing.B) {
	for _, mdl := range ppocrQDQ {
		m := quantizedModel(b, mdl.name, mdl.file)
		for _, th := range []int{1, 2} {
			progs := map[string]*exec.Program{}
			for _, v := range []struct {
				name string
				m    *graph.Model
				ref  bool
			}{{"float", m.float, false}, {"int8", m.qdq, false}, {"reference", m.qdq, true}} {
				p, err := exec.Compile(v.m, exec.Options{Threads: th, Reference: v.ref})
				if err != nil {
					b.Fatal(err)
				}
				progs[v.name] = p
			}
			var floatNs float64
			for _, v := range []string{"float", "int8", "reference"} {
				b.Run(mdl.name+"/"+v+"/threads-"+string(rune('0'+th)), func(b *testing.B) {
					p := progs[v]
					for b.Loop() {
						if _, err := p.Run(context.Background(), m.feed); err != nil {
							b.Fatal(err)
						}
					}
					ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
					b.ReportMetric(ns/1e6, "ms/run")
					if v == "float" {
						floatNs = ns
					} else if floatNs > 0 {
						b.ReportMetric(floatNs/ns, "x-float")
					}
				})
			}
		}
	}
}
