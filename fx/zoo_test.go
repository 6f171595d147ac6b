package fx

import (
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/ops"
	_ "github.com/quanta-go/quanta/ops/quantized" // quantized kernels for ops on quint8 inputs
	"github.com/quanta-go/quanta/tensor"
)

// This file traces functions that call every op tracing maps, checks the
// traced graphs compute what the functions compute, and checks the
// functions called every op in SupportedOps that does not refuse.

// opRecorder records the op names it sees.
type opRecorder struct{ seen map[string]bool }

func (r *opRecorder) Op(name string, _ any, _, _ []*tensor.Tensor) { r.seen[name] = true }
func (r *opRecorder) EnterModule(string, string, []*tensor.Tensor) {}
func (r *opRecorder) ExitModule(string, string, []*tensor.Tensor)  {}

// opsCalled runs fn and returns the names of the ops it called.
func opsCalled(fn func(in []*tensor.Tensor) []*tensor.Tensor, ins []*tensor.Tensor, into map[string]bool) {
	rec := &opRecorder{seen: into}
	prev := ops.SetTracer(rec)
	defer ops.SetTracer(prev)
	forward(func() []*tensor.Tensor { return fn(ins) })
}

func nnZoo(rng *tensor.RNG) func(in []*tensor.Tensor) []*tensor.Tensor {
	r := func(s ...int) *tensor.Tensor { return tensor.Randn(rng, s...) }
	w1, b1 := r(6, 2, 3), r(6)
	wt, bt := r(4, 3, 3, 3), r(3)
	wc := r(5, 4, 3, 3)
	gw, gb := r(4), r(4)
	rm, rv := tensor.RandUniform(rng, -1, 1, 4), tensor.RandUniform(rng, 0.5, 2, 4)
	bw, bb := r(4), r(4)
	return func(in []*tensor.Tensor) []*tensor.Tensor {
		x, seq, img := in[0], in[1], in[2] // [2,4,9,9], [2,4,10], [4,9,9]
		return []*tensor.Tensor{
			ops.Conv1d(seq, w1, b1, ops.Conv1dAttrs{Stride: 2, Padding: 1, Groups: 2}),
			ops.Conv1d(ops.Narrow(seq, 0, 0, 1).Reshape(4, 10), w1, nil, ops.Conv1dAttrs{Dilation: 2, Groups: 2}),
			ops.ConvTranspose2d(x, wt, bt, ops.ConvTransposeAttrs{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}, OutputPadding: [2]int{1, 0}}),
			ops.Conv2d(img, wc, nil, ops.ConvAttrs{Stride: [2]int{1, 2}, Dilation: [2]int{2, 1}, Padding: [2]int{1, 0}}),
			ops.MaxPool2d(x, ops.PoolAttrs{Kernel: [2]int{2, 2}, Stride: [2]int{2, 2}, CeilMode: true}),
			ops.MaxPool2d(img, ops.PoolAttrs{Kernel: [2]int{3, 3}, Stride: [2]int{2, 1}, Padding: [2]int{1, 1}, Dilation: [2]int{2, 1}}),
			ops.AvgPool2d(x, ops.PoolAttrs{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}, CountIncludePad: true}),
			ops.AvgPool2d(x, ops.PoolAttrs{Kernel: [2]int{3, 2}, Stride: [2]int{2, 3}, Padding: [2]int{1, 1}}),
			ops.AdaptiveAvgPool2d(x, 3, 1),
			ops.AdaptiveAvgPool2d(img, 1, 1),
			ops.GroupNorm(x, 2, gw, gb, 1e-5),
			ops.GroupNorm(ops.Reshape(x, 2, 4, 81), 4, nil, nil, 1e-3),
			ops.BatchNorm(x, rm, rv, nil, nil, false, 0.1, 1e-5),
			ops.BatchNorm(ops.Mean(x, []int{2, 3}, false), rm, rv, bw, bb, false, 0.1, 1e-3),
			ops.LayerNorm(x, []int{9, 9}, nil, nil, 1e-5),
			ops.UpsampleNearest2d(x, ops.UpsampleAttrs{ScaleFactor: [2]float64{2, 2}}),
			ops.UpsampleNearest2d(img, ops.UpsampleAttrs{Size: [2]int{13, 7}}),
			ops.UpsampleBilinear2d(x, ops.UpsampleAttrs{ScaleFactor: [2]float64{1.5, 2}}),
			ops.UpsampleBilinear2d(x, ops.UpsampleAttrs{Size: [2]int{4, 17}, AlignCorners: true}),
		}
	}
}

func elementwiseZoo(rng *tensor.RNG) func(in []*tensor.Tensor) []*tensor.Tensor {
	b := tensor.RandUniform(rng, 0.5, 2, 5)
	return func(in []*tensor.Tensor) []*tensor.Tensor {
		a := in[0] // [3,5]
		pos := ops.AddScalar(ops.Abs(a), 0.25)
		mask := tensor.New(tensor.Bool, 3, 5) // a constant made during forward
		for i, v := range a.F32() {
			mask.Bools()[i] = v > 0
		}
		return []*tensor.Tensor{
			ops.Add(a, b), ops.Sub(b, a), ops.Mul(a, b), ops.Div(a, b), ops.Pow(pos, b),
			ops.Maximum(a, b), ops.Minimum(a, ops.Neg(b)), ops.MulScalar(a, -3), ops.PowScalar(pos, 1.5),
			ops.Exp(a), ops.Log(pos), ops.Sqrt(pos), ops.Rsqrt(pos), ops.Reciprocal(pos),
			ops.Where(mask, a, b), ops.Clamp(a, -0.5, 0.7),
			ops.ReLU(a), ops.ReLU6(ops.MulScalar(a, 5)), ops.Hardtanh(a, -1, 0.5), ops.Sigmoid(a), ops.Tanh(a), ops.Erf(a),
			ops.Hardswish(ops.MulScalar(a, 3)), ops.Hardsigmoid(ops.MulScalar(a, 3)), ops.LeakyReLU(a, 0.1), ops.ELU(a, 0.7),
			ops.GELU(a, false), ops.GELU(a, true), ops.SiLU(a), ops.Softplus(a), ops.SoftplusWith(ops.MulScalar(a, 2), 2, 1),
			ops.Softmax(a, 0), ops.LogSoftmax(a, 1),
		}
	}
}

func shapeZoo(rng *tensor.RNG) func(in []*tensor.Tensor) []*tensor.Tensor {
	idx := tensor.FromInt64([]int64{3, 0, 3}, 3)
	idx0 := tensor.FromInt64([]int64{1}, 1).Reshape()
	gidx := tensor.New(tensor.Int64, 2, 3, 4, 2)
	for i := range gidx.I64() {
		gidx.I64()[i] = int64(i*7) % 5
	}
	u := tensor.Randn(rng, 1, 3, 1, 1)
	w, wb := tensor.Randn(rng, 10, 4), tensor.Randn(rng, 7, 3)
	lw, lb := tensor.Randn(rng, 3, 5), tensor.Randn(rng, 3)
	mw := tensor.Randn(rng, 5, 6)
	return func(in []*tensor.Tensor) []*tensor.Tensor {
		x, ids, bags := in[0], in[1], in[2] // [2,3,4,5] float, [2,3] int64, [3,4] int64
		split := ops.Split(x, []int{1, 2}, 1)
		chunks := ops.Chunk(x, 2, -1)
		v5 := ops.Reshape(ops.Narrow(x, 0, 1, 1), 60)
		mx, _ := ops.Max(x, 1, false)
		mn, _ := ops.Min(x, -1, true)
		return []*tensor.Tensor{
			ops.Reshape(x, 6, -1), ops.View(x, 2, 3, 20), ops.Flatten(x, 0, -1), ops.Flatten(x, 1, 2), ops.Flatten(x, 1, -1),
			ops.Squeeze(ops.Unsqueeze(x, -2)), ops.Exp(ops.Squeeze(x, 0, 1)), ops.Squeeze(ops.Unsqueeze(x, 2), 2, 0),
			ops.Transpose(x, 1, -1), ops.Permute(x, 3, 0, 2, 1), ops.Slice(x, 3, 1, 5, 2), ops.Slice(x, -2, -3, 100, 1),
			split[0], split[1], chunks[0], chunks[1],
			ops.Stack([]*tensor.Tensor{split[0], ops.Neg(split[0])}, -1),
			ops.Concat([]*tensor.Tensor{x, tensor.New(tensor.Float32, 0), split[1]}, 1),
			ops.IndexSelect(x, 2, idx), ops.IndexSelect(x, -1, idx0), ops.Gather(x, 3, gidx),
			ops.Pad(x, []int{1, 2, 0, 1}, 0.5), ops.Pad(x, []int{-1, 0, 1, 1, 0, 0, 2, 0}, 0),
			ops.Expand(u, 2, -1, 4, 5), ops.Repeat(ops.Narrow(v5, 0, 0, 12).Reshape(3, 4), 2, 1, 2),
			ops.Sum(x, []int{1, -1}, false), ops.Sum(x, nil, true), ops.Mean(x, []int{2}, true),
			ops.SumAll(x), ops.MeanAll(x), ops.Var(x, []int{3}, true, false), ops.Var(x, nil, false, true), mx, mn,
			ops.MatMul(x, mw), ops.MatMul(ops.Narrow(v5, 0, 0, 5), mw),
			ops.Linear(ops.Narrow(v5, 0, 0, 5), lw, lb),
			ops.Embedding(ids, w), ops.EmbeddingBag(bags, nil, wb, "sum"),
			ops.EmbeddingBag(bags, nil, wb, "mean"), ops.EmbeddingBag(bags, nil, wb, "max"),
		}
	}
}

func TestTraceEveryOp(t *testing.T) {
	rng := tensor.NewRNG(21)
	ids := tensor.FromInt64([]int64{1, 9, 0, 4, 4, 2}, 2, 3)
	bags := tensor.FromInt64([]int64{0, 1, 2, 3, 6, 6, 5, 4, 1, 1, 1, 1}, 3, 4)
	cases := []struct {
		name string
		fn   func(in []*tensor.Tensor) []*tensor.Tensor
		ins  []*tensor.Tensor
	}{
		{"nn", nnZoo(rng), []*tensor.Tensor{tensor.Randn(rng, 2, 4, 9, 9), tensor.Randn(rng, 2, 4, 10), tensor.Randn(rng, 4, 9, 9)}},
		{"elementwise", elementwiseZoo(rng), []*tensor.Tensor{tensor.Randn(rng, 3, 5)}},
		{"shape", shapeZoo(rng), []*tensor.Tensor{tensor.Randn(rng, 2, 3, 4, 5), ids, bags}},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		opsCalled(c.fn, c.ins, seen)
		m := checkTrace(t, c.name, c.fn, nil, c.ins...)
		if c.name == "nn" {
			for _, n := range m.Graph.Nodes {
				if n.OpType == "MaxPool" && n.Inputs[0].Name == "input_0" {
					if cm, _ := n.Int("ceil_mode", 0); cm != 1 {
						t.Errorf("MaxPool 9x9 kernel 2 ceil: ceil_mode %d", cm)
					}
				}
			}
		}
	}
	var missing []string
	for _, name := range SupportedOps() {
		if !seen[name] && !refused[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Errorf("ops no test traced: %v", missing)
	}
	var names []string
	for k := range seen {
		names = append(names, k)
	}
	sort.Strings(names)
	t.Logf("traced %d ops: %s", len(names), strings.Join(names, " "))
	if !slices.Contains(names, "GELU") {
		t.Fatal("the recorder saw nothing")
	}
}

// refused are the ops whose lowering is an error.
var refused = map[string]bool{"Dropout": true, "FakeQuantize": true, "FakeQuantizeLearnable": true, "FakeQuantizeFloatQParams": true}

func TestTraceRefusesFakeQuant(t *testing.T) {
	x := tensor.Randn(tensor.NewRNG(1), 4)
	_, err := TraceFunc(func(in []*tensor.Tensor) []*tensor.Tensor {
		return []*tensor.Tensor{ops.FakeQuantizePerTensor(in[0], 0.1, 0, -128, 127)}
	}, nil, []*tensor.Tensor{x})
	if err == nil || !strings.Contains(err.Error(), "trace the float model") || !strings.Contains(err.Error(), "FakeQuantize") {
		t.Fatalf("fake quantization: %v", err)
	}
	q := ops.QuantizePerTensor(x, 0.1, 0, tensor.QInt8)
	_, err = TraceFunc(func(in []*tensor.Tensor) []*tensor.Tensor {
		return []*tensor.Tensor{ops.ReLU(ops.QuantizePerTensor(in[0], 0.1, 0, tensor.QUInt8))}
	}, nil, []*tensor.Tensor{x})
	if err == nil || !strings.Contains(err.Error(), "trace the float model") {
		t.Fatalf("quantized op: %v", err)
	}
	if _, err := TraceFunc(func(in []*tensor.Tensor) []*tensor.Tensor { return in }, nil, []*tensor.Tensor{q}); err == nil {
		t.Fatal("a quantized example input was accepted")
	}
}
