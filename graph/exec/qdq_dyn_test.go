package exec

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/qdyn"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/tensor"
)

// dynCase is x -> DynamicQuantizeLinear -> DequantizeLinear -> op(DQ(w)
// [, float bias]) -> y.
type dynCase struct {
	name     string
	op       string
	xsh, wsh []int
	attrs    map[string]*graph.Attr
	bias     bool
	nch      int
}

// TestQDQDynamic checks the dynamic int8 step: it fuses (report), and its
// outputs are within the float rounding of the literal graph: per output
// y = sum_k dx_k*dw_k (+ b) with dx = (xq-zx)*sx and dw = (wq-zw)*sw, the
// literal graph rounds each dequantized value, product and partial sum to
// float32 and the fused step computes the sum exactly and rounds twice,
// so |fused - literal| <= (K+4) * 2^-24 * (sum_k |dx_k*dw_k| + |b|).
func TestQDQDynamic(t *testing.T) {
	cases := []dynCase{
		{name: "matmul", op: "MatMul", xsh: []int{2, 3, 40}, wsh: []int{40, 24}, nch: 24},
		{name: "gemm-bias", op: "Gemm", xsh: []int{5, 33}, wsh: []int{17, 33}, attrs: map[string]*graph.Attr{"transB": graph.AInt(1)}, bias: true, nch: 17},
		{name: "conv", op: "Conv", xsh: []int{1, 4, 7, 8}, wsh: []int{6, 4, 3, 3}, attrs: map[string]*graph.Attr{"pads": graph.AInts(1, 1, 1, 1)}, bias: true, nch: 6},
		{name: "conv1d", op: "Conv", xsh: []int{1, 8, 30}, wsh: []int{4, 8, 3}, attrs: map[string]*graph.Attr{"strides": graph.AInts(2)}, nch: 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(8, 9))
			g := graph.New(c.name)
			dims := make([]int64, len(c.xsh))
			for i, v := range c.xsh {
				dims[i] = int64(v)
			}
			xin := g.AddInput("x", graph.TensorType(graph.Float, dims...))
			dql := g.AddNode("dql", "DynamicQuantizeLinear", []*graph.Value{xin}, []string{"xq", "xs", "xz"}, nil)
			dx := g.AddNode("dqx", "DequantizeLinear", dql.Outputs, []string{"xd"}, nil).Outputs[0]
			wq := make([]int8, shapeNumel(c.wsh))
			for i := range wq {
				wq[i] = int8(r.IntN(255) - 127)
			}
			sw := make([]float32, c.nch)
			for i := range sw {
				sw[i] = float32(0.001 + 0.01*r.Float64())
			}
			axis := int64(0)
			if c.op == "MatMul" {
				axis = 1
			}
			w := g.AddNode("dqw", "DequantizeLinear", []*graph.Value{
				g.AddInitializer("wq", tensor.FromInt8(wq, c.wsh...)), g.AddInitializer("ws", tensor.FromFloat32(sw, c.nch)),
				g.AddInitializer("wz", tensor.FromInt8(make([]int8, c.nch), c.nch))}, []string{"w"}, map[string]*graph.Attr{"axis": graph.AInt(axis)}).Outputs[0]
			in := []*graph.Value{dx, w}
			var bias []float32
			if c.bias {
				bias = make([]float32, c.nch)
				for i := range bias {
					bias[i] = float32(r.NormFloat64())
				}
				in = append(in, g.AddInitializer("b", tensor.FromFloat32(bias, c.nch)))
			}
			g.Outputs = g.AddNode("op", c.op, in, []string{"y"}, c.attrs).Outputs
			m := model(g, 13)
			xv := make([]float32, shapeNumel(c.xsh))
			for i := range xv {
				xv[i] = float32(r.NormFloat64()*2 + 0.5)
			}
			feeds := map[string]*tensor.Tensor{"x": tensor.FromFloat32(xv, c.xsh...)}
			want, _ := runModel(t, m, Options{Reference: true}, feeds)
			got, p := runModel(t, m, Options{Threads: 1}, feeds)
			got2, _ := runModel(t, m, Options{Threads: 2}, feeds)
			pat, fl := int8Nodes(p)
			if len(fl) != 0 || len(pat) != 1 || len(p.main.steps) != 1 {
				t.Fatalf("report %v, float %v, %d steps; want one dynamic step", pat, fl, len(p.main.steps))
			}
			// The magnitudes sum_k |dx_k*dw_k| per output, from the
			// float graph on |dx| and |dw|.
			lo, hi, _ := qdyn.MinMax(xv)
			sx, zx := qdyn.ChooseONNX(lo, hi)
			ax := make([]float32, len(xv))
			for i, v := range xv {
				ax[i] = float32(math.Abs(float64(qmath.Dequantize(qmath.Quantize(v, sx, zx, 0, 255), zx, sx))))
			}
			aw := make([]float32, len(wq))
			per := len(wq) / c.nch
			for i, q := range wq {
				ch := i / per
				if c.op == "MatMul" {
					ch = i % c.nch
				}
				aw[i] = float32(math.Abs(float64(q))) * sw[ch]
			}
			ag := graph.New("abs")
			ai := ag.AddInput("x", graph.TensorType(graph.Float, dims...))
			ag.Outputs = ag.AddNode("op", c.op, []*graph.Value{ai, ag.AddInitializer("w", tensor.FromFloat32(aw, c.wsh...))}, []string{"y"}, c.attrs).Outputs
			mag, _ := runModel(t, model(ag, 13), Options{}, map[string]*tensor.Tensor{"x": tensor.FromFloat32(ax, c.xsh...)})
			K := float64(per)
			if c.op == "MatMul" {
				K = float64(c.wsh[0])
			}
			worst := 0.0
			for i, v := range want.F32() {
				bnd := mag.F32()[i]
				ch := channelOf(c, i, want.Shape())
				b := 0.0
				if bias != nil {
					b = math.Abs(float64(bias[ch]))
				}
				tol := (K + 4) * math.Pow(2, -24) * (1.01*float64(bnd) + b)
				d := math.Abs(float64(got.F32()[i] - v))
				if got.F32()[i] != got2.F32()[i] {
					t.Fatalf("[%d]: %v with 1 thread, %v with 2", i, got.F32()[i], got2.F32()[i])
				}
				if d > tol {
					t.Fatalf("[%d]: fused %v, literal %v: difference %g over the bound %g", i, got.F32()[i], v, d, tol)
				}
				if tol > 0 {
					worst = max(worst, d/tol)
				}
			}
			t.Logf("largest difference %.3f of the bound", worst)
		})
	}
}

// channelOf returns the output channel of output element i.
func channelOf(c dynCase, i int, shape []int) int {
	if c.op == "Conv" {
		return i / shapeNumel(shape[2:]) % c.nch
	}
	return i % c.nch
}

// TestQDQDynamicNotFused: a dynamic MatMul whose weight is not constant
// stays literal.
func TestQDQDynamicNotFused(t *testing.T) {
	g := graph.New("dyn")
	xin := g.AddInput("x", graph.TensorType(graph.Float, 2, 4))
	win := g.AddInput("w", graph.TensorType(graph.Float, 4, 3))
	dql := g.AddNode("dql", "DynamicQuantizeLinear", []*graph.Value{xin}, []string{"xq", "xs", "xz"}, nil)
	dx := g.AddNode("dqx", "DequantizeLinear", dql.Outputs, []string{"xd"}, nil).Outputs[0]
	g.Outputs = g.AddNode("mm", "MatMul", []*graph.Value{dx, win}, []string{"y"}, nil).Outputs
	p, err := Compile(model(g, 13), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if pat, _ := int8Nodes(p); len(pat) != 0 {
		t.Fatalf("fused %v with a float weight", pat)
	}
	feeds := map[string]*tensor.Tensor{"x": tensor.FromFloat32(make([]float32, 8), 2, 4), "w": tensor.FromFloat32(make([]float32, 12), 4, 3)}
	if _, err := p.Run(context.Background(), feeds); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkQDQDynamicMatMul(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	g := graph.New("dyn")
	xin := g.AddInput("x", graph.TensorType(graph.Float, 64, 512))
	dql := g.AddNode("dql", "DynamicQuantizeLinear", []*graph.Value{xin}, []string{"xq", "xs", "xz"}, nil)
	dx := g.AddNode("dqx", "DequantizeLinear", dql.Outputs, []string{"xd"}, nil).Outputs[0]
	wq := make([]int8, 512*512)
	for i := range wq {
		wq[i] = int8(r.IntN(255) - 127)
	}
	w := g.AddNode("dqw", "DequantizeLinear", []*graph.Value{g.AddInitializer("wq", tensor.FromInt8(wq, 512, 512)), g.AddInitializer("ws", tensor.Scalar(float32(0.01)))}, []string{"w"}, nil).Outputs[0]
	g.Outputs = g.AddNode("mm", "MatMul", []*graph.Value{dx, w}, []string{"y"}, nil).Outputs
	m := model(g, 13)
	xv := make([]float32, 64*512)
	for i := range xv {
		xv[i] = float32(r.NormFloat64())
	}
	feeds := map[string]*tensor.Tensor{"x": tensor.FromFloat32(xv, 64, 512)}
	for _, ref := range []bool{false, true} {
		name := "fused"
		if ref {
			name = "reference"
		}
		b.Run(name, func(b *testing.B) {
			p, err := Compile(m, Options{Reference: ref})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := p.Run(context.Background(), feeds); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(2*64*512*512*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
		})
	}
}
