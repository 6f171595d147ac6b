package exec

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// fuseRandn returns n values: normal ones scaled by 4, with the edge
// values of the elementwise kernels (signed zeros, infinities, NaN, the
// HardSwish corners) mixed in.
func fuseRandn(r *rand.Rand, n int) []float32 {
	edge := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), -3, 3, 6, -6}
	s := make([]float32, n)
	for i := range s {
		if r.IntN(10) == 0 {
			s[i] = edge[r.IntN(len(edge))]
		} else {
			s[i] = float32(r.NormFloat64() * 4)
		}
	}
	return s
}

// runBoth compiles m with and without the compile-time rewrites and runs
// both on in with 1, 2 and 3 threads; it returns the unoptimized outputs
// and the optimized ones per thread count, and the optimized program.
func runBoth(t *testing.T, m *graph.Model, in map[string]*tensor.Tensor) (map[string]*tensor.Tensor, []map[string]*tensor.Tensor, *Program) {
	t.Helper()
	ref, err := Compile(m, Options{Unoptimized: true})
	if err != nil {
		t.Fatal(err)
	}
	want, err := ref.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]*tensor.Tensor
	var p *Program
	for th := 1; th <= 3; th++ {
		if p, err = Compile(m, Options{Threads: th}); err != nil {
			t.Fatal(err)
		}
		out, err := p.Run(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, out)
	}
	return want, got, p
}

func sameF32(a, b float32) bool {
	if a != a || b != b {
		return a != a && b != b
	}
	return math.Float32bits(a) == math.Float32bits(b)
}

// countFused returns how many steps of the main graph run fused
// elementwise kernels, and the number of steps.
func countFused(p *Program) (fused, steps int) {
	for _, st := range p.main.steps {
		if _, ok := st.kernel.(*ewFused); ok {
			fused++
		}
	}
	return fused, len(p.main.steps)
}

// TestFuseElementwiseBits runs a PP-OCR-like chain (affine by a scalar
// and a per-channel constant, HardSwish written as Add/Clip/Mul/Div, a
// squeeze-excite scale computed at run time, a last-axis constant, scalar
// on the left of Sub and Div, Relu, HardSigmoid, Sigmoid, Tanh) and checks
// that the fused program gives the same bits as the nodes run one by one,
// for every thread count, with one value also returned by the graph (the
// run must end there and start again).
func TestFuseElementwiseBits(t *testing.T) {
	g := graph.New("chain")
	x := g.AddInput("x", graph.TensorType(graph.Float, 2, 3, 5, 7))
	se := g.AddInput("se", graph.TensorType(graph.Float, 2, 3, 1, 1))
	c := func(name string, v []float32, shape ...int) *graph.Value {
		return g.AddInitializer(name, tensor.FromFloat32(v, shape...))
	}
	s1 := c("s1", []float32{0.75}, 1)
	pc := c("pc", []float32{0.5, -1, 2}, 3, 1, 1)
	three, zero, six := g.AddInitializer("three", tensor.Scalar(3)), g.AddInitializer("zero", tensor.Scalar(0)), g.AddInitializer("six", tensor.Scalar(6))
	last := c("last", []float32{1, 2, 3, 4, 5, 6, 7}, 7)
	one := g.AddInitializer("one", tensor.Scalar(1))
	node := func(name, op string, in []*graph.Value, attrs map[string]*graph.Attr) *graph.Value {
		return g.AddNode(name, op, in, []string{name}, attrs).Outputs[0]
	}
	a := node("a", "Mul", []*graph.Value{s1, x}, nil)
	b := node("b", "Add", []*graph.Value{a, pc}, nil)
	h := node("h", "Add", []*graph.Value{b, three}, nil)
	cl := node("cl", "Clip", []*graph.Value{h, zero, six}, nil)
	m := node("m", "Mul", []*graph.Value{b, cl}, nil)
	d := node("d", "Div", []*graph.Value{m, six}, nil)
	e := node("e", "Mul", []*graph.Value{d, se}, nil)
	f := node("f", "Sub", []*graph.Value{one, e}, nil) // returned too
	r := node("r", "Relu", []*graph.Value{f}, nil)
	l := node("l", "Div", []*graph.Value{last, r}, nil)
	hs := node("hs", "HardSigmoid", []*graph.Value{l}, map[string]*graph.Attr{"alpha": graph.AFloat(0.3), "beta": graph.AFloat(0.4)})
	sg := node("sg", "Sigmoid", []*graph.Value{e}, nil)
	th := node("th", "Tanh", []*graph.Value{sg}, nil)
	y := node("y", "Add", []*graph.Value{hs, th}, nil)
	g.Outputs = []*graph.Value{y, f}
	rng := rand.New(rand.NewPCG(3, 4))
	in := map[string]*tensor.Tensor{
		"x":  tensor.FromFloat32(fuseRandn(rng, 2*3*5*7), 2, 3, 5, 7),
		"se": tensor.FromFloat32(fuseRandn(rng, 6), 2, 3, 1, 1),
	}
	want, got, p := runBoth(t, model(g, 13), in)
	for th, out := range got {
		for _, name := range []string{"y", "f"} {
			w, o := want[name], out[name]
			if !tensor.SameShape(w.Shape(), o.Shape()) {
				t.Fatalf("%s: shape %v, want %v", name, o.Shape(), w.Shape())
			}
			for i, v := range o.F32() {
				if !sameF32(v, w.F32()[i]) {
					t.Fatalf("%d threads: %s[%d] = %v, unfused %v", th+1, name, i, v, w.F32()[i])
				}
			}
		}
	}
	fused, steps := countFused(p)
	// Runs: a..e (e is read outside), f (returned), r..hs, sg..y.
	if fused != steps || steps != 4 {
		t.Errorf("%d fused steps of %d, want 4 fused steps", fused, steps)
	}
}

// TestFuseElementwiseFallback checks that fused runs give the nodes'
// results and errors when the inputs are not float32 or do not broadcast.
func TestFuseElementwiseFallback(t *testing.T) {
	g := graph.New("ints")
	x := g.AddInput("x", graph.Type{Elem: graph.Undefined})
	k := g.AddInput("k", graph.Type{Elem: graph.Undefined})
	a := g.AddNode("a", "Add", []*graph.Value{x, k}, []string{"a"}, nil).Outputs[0]
	b := g.AddNode("b", "Mul", []*graph.Value{a, a}, []string{"b"}, nil).Outputs[0]
	g.Outputs = []*graph.Value{b}
	p, err := Compile(model(g, 13), Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Run(context.Background(), map[string]*tensor.Tensor{
		"x": tensor.FromInt64([]int64{1, 2, 3}, 3), "k": tensor.FromInt64([]int64{10}, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if v := out["b"].I64(); out["b"].DType() != tensor.Int64 || v[0] != 121 || v[1] != 144 || v[2] != 169 {
		t.Errorf("int64 chain gives %v %v, want [121 144 169]", out["b"].DType(), out["b"])
	}
	// [2, 3] + [2]: the nodes' error, naming the node.
	_, err = p.Run(context.Background(), map[string]*tensor.Tensor{
		"x": tensor.FromFloat32(make([]float32, 6), 2, 3), "k": tensor.FromFloat32(make([]float32, 2), 2)})
	if err == nil || !strings.Contains(err.Error(), "node a") {
		t.Errorf("bad broadcast: error %v, want one naming node a", err)
	}
	// [3, 1] * [1, 4] broadcasts both ways: fused (each operand one run of
	// dimensions), the same as numpy.
	out, err = p.Run(context.Background(), map[string]*tensor.Tensor{
		"x": tensor.FromFloat32([]float32{1, 2, 3}, 3, 1), "k": tensor.FromFloat32([]float32{0, 10, 20, 30}, 1, 4)})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 121, 441, 961, 4, 144, 484, 1024, 9, 169, 529, 1089}
	for i, v := range out["b"].F32() {
		if v != want[i] {
			t.Fatalf("outer sum squared: %v, want %v", out["b"].F32(), want)
		}
	}
}

// TestFuseKeepsSubgraphReads checks that a value a subgraph reads is
// still computed when it sits inside an elementwise run.
func TestFuseKeepsSubgraphReads(t *testing.T) {
	g := graph.New("sub")
	x := g.AddInput("x", graph.TensorType(graph.Float, 3))
	cond := g.AddInput("cond", graph.TensorType(graph.Bool))
	two := g.AddInitializer("two", tensor.Scalar(2))
	a := g.AddNode("a", "Add", []*graph.Value{x, two}, []string{"a"}, nil).Outputs[0]
	b := g.AddNode("b", "Mul", []*graph.Value{a, two}, []string{"b"}, nil).Outputs[0]
	then := graph.New("then")
	tn := then.AddNode("t", "Neg", []*graph.Value{a}, []string{"t_out"}, nil)
	then.Outputs = tn.Outputs
	els := graph.New("else")
	en := els.AddNode("e", "Neg", []*graph.Value{b}, []string{"e_out"}, nil)
	els.Outputs = en.Outputs
	n := g.AddNode("if", "If", []*graph.Value{cond}, []string{"y"}, map[string]*graph.Attr{
		"then_branch": graph.AGraph(then), "else_branch": graph.AGraph(els)})
	g.Outputs = n.Outputs
	p, err := Compile(model(g, 13), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cond bool
		want []float32
	}{{true, []float32{-3, -4, -5}}, {false, []float32{-6, -8, -10}}} {
		out, err := p.Run(context.Background(), map[string]*tensor.Tensor{
			"x": tensor.FromFloat32([]float32{1, 2, 3}, 3), "cond": tensor.FromBool([]bool{c.cond}).Reshape()})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range out["y"].F32() {
			if v != c.want[i] {
				t.Fatalf("cond %v: %v, want %v", c.cond, out["y"].F32(), c.want)
			}
		}
	}
}

// convAffineModel is Conv -> BatchNormalization -> Mul by a scalar -> Add
// of a per-channel constant -> Relu, with the Conv output also returned
// when keepConv is set (no folding may then happen).
func convAffineModel(r *rand.Rand, group int, keepConv bool) *graph.Model {
	g := graph.New("convbn")
	const cin, cout = 4, 8
	x := g.AddInput("x", graph.TensorType(graph.Float, 2, cin, 9, 11))
	w := g.AddInitializer("w", tensor.FromFloat32(fuseRandn(r, cout*cin/group*9)[:cout*cin/group*9], cout, cin/group, 3, 3))
	for i, v := range w.Const.F32() {
		if v != v || math.IsInf(float64(v), 0) {
			w.Const.F32()[i] = 0.5
		}
	}
	bias := g.AddInitializer("b", tensor.FromFloat32(randUniform(r, cout, -1, 1), cout))
	conv := g.AddNode("conv", "Conv", []*graph.Value{x, w, bias}, []string{"c"}, map[string]*graph.Attr{
		"pads": graph.AInts(1, 1, 1, 1), "group": graph.AInt(int64(group)), "strides": graph.AInts(1, 2)}).Outputs[0]
	bn := g.AddNode("bn", "BatchNormalization", []*graph.Value{conv,
		g.AddInitializer("scale", tensor.FromFloat32(randUniform(r, cout, 0.5, 2), cout)),
		g.AddInitializer("beta", tensor.FromFloat32(randUniform(r, cout, -1, 1), cout)),
		g.AddInitializer("mean", tensor.FromFloat32(randUniform(r, cout, -1, 1), cout)),
		g.AddInitializer("var", tensor.FromFloat32(randUniform(r, cout, 0.1, 3), cout)),
	}, []string{"n"}, map[string]*graph.Attr{"epsilon": graph.AFloat(1e-5)}).Outputs[0]
	mul := g.AddNode("mul", "Mul", []*graph.Value{g.AddInitializer("s", tensor.FromFloat32([]float32{1.5}, 1)), bn}, []string{"m"}, nil).Outputs[0]
	add := g.AddNode("add", "Add", []*graph.Value{mul, g.AddInitializer("pc", tensor.FromFloat32(randUniform(r, cout, -1, 1), 1, cout, 1, 1))}, []string{"a"}, nil).Outputs[0]
	y := g.AddNode("relu", "Relu", []*graph.Value{add}, []string{"y"}, nil).Outputs[0]
	g.Outputs = []*graph.Value{y}
	if keepConv {
		g.Outputs = append(g.Outputs, conv)
	}
	return model(g, 13)
}

func randUniform(r *rand.Rand, n int, lo, hi float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = lo + (hi-lo)*r.Float32()
	}
	return s
}

// TestFoldConvAffine checks Conv+BatchNormalization+Mul+Add folding
// against the nodes run one by one (float32 rounding apart), that it
// leaves Conv and Relu as the only steps, that results do not depend on
// the thread count, and that nothing is folded when the Conv output is
// also returned.
func TestFoldConvAffine(t *testing.T) {
	for _, group := range []int{1, 2, 4} {
		for _, keep := range []bool{false, true} {
			r := rand.New(rand.NewPCG(uint64(group), 9))
			m := convAffineModel(r, group, keep)
			xv := randUniform(r, 2*4*9*11, -2, 2)
			in := map[string]*tensor.Tensor{"x": tensor.FromFloat32(xv, 2, 4, 9, 11)}
			want, got, p := runBoth(t, m, in)
			for th, out := range got {
				yw, yg := want["y"].F32(), out["y"].F32()
				for i := range yw {
					if d := math.Abs(float64(yg[i] - yw[i])); d > 1e-5*(1+math.Abs(float64(yw[i]))) {
						t.Fatalf("group %d keep %v: y[%d] = %v, unfolded %v", group, keep, i, yg[i], yw[i])
					}
					if th > 0 && math.Float32bits(yg[i]) != math.Float32bits(got[0]["y"].F32()[i]) {
						t.Fatalf("group %d: %d threads differ from 1 at %d", group, th+1, i)
					}
				}
			}
			steps := len(p.main.steps)
			if !keep && steps != 2 {
				t.Errorf("group %d: %d steps, want 2 (Conv with BN/Mul/Add folded, Relu)", group, steps)
			}
			if keep && steps != 3 {
				t.Errorf("group %d, Conv output returned: %d steps, want 3 (Conv, BN, fused Mul/Add/Relu)", group, steps)
			}
		}
	}
}

// TestFuseThreadsSetting checks that runs do not change the process-wide
// thread count.
func TestFuseThreadsSetting(t *testing.T) {
	before := parallel.NumThreads()
	r := rand.New(rand.NewPCG(1, 1))
	runBoth(t, convAffineModel(r, 1, false), map[string]*tensor.Tensor{"x": tensor.FromFloat32(randUniform(r, 2*4*9*11, -1, 1), 2, 4, 9, 11)})
	if parallel.NumThreads() != before {
		t.Errorf("thread count %d after runs, was %d", parallel.NumThreads(), before)
	}
}

// TestArenaReuse runs a model whose values alias (Reshape and Identity
// of intermediate values, one returned) several times, concurrently too,
// and checks that outputs a run returned are not overwritten by later
// runs reusing buffers, against the unoptimized program.
func TestArenaReuse(t *testing.T) {
	g := graph.New("alias")
	x := g.AddInput("x", graph.TensorType(graph.Float, 1, 4, 16, 20))
	r := rand.New(rand.NewPCG(5, 6))
	w := g.AddInitializer("w", tensor.FromFloat32(randUniform(r, 8*4*9, -1, 1), 8, 4, 3, 3))
	one := g.AddInitializer("one", tensor.Scalar(1))
	two := g.AddInitializer("two", tensor.Scalar(2))
	shape := g.AddInitializer("shape", tensor.FromInt64([]int64{-1}, 1))
	node := func(name, op string, in ...*graph.Value) *graph.Value {
		return g.AddNode(name, op, in, []string{name}, nil).Outputs[0]
	}
	c := g.AddNode("conv", "Conv", []*graph.Value{x, w}, []string{"c"}, map[string]*graph.Attr{"pads": graph.AInts(1, 1, 1, 1)}).Outputs[0]
	rl := node("relu", "Relu", c)
	flat := node("flat", "Reshape", rl, shape)
	a := node("a", "Add", rl, one)
	id := node("id", "Identity", a)
	m := node("m", "Mul", a, two)
	c2 := g.AddNode("conv2", "Conv", []*graph.Value{m, g.AddInitializer("w2", tensor.FromFloat32(randUniform(r, 8*8, -1, 1), 8, 8, 1, 1))}, []string{"c2"}, nil).Outputs[0]
	s := node("s", "Sub", c2, id)
	g.Outputs = []*graph.Value{flat, id, s}
	mod := model(g, 13)
	ref, err := Compile(mod, Options{Unoptimized: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(mod, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const runs = 12
	ins := make([]map[string]*tensor.Tensor, runs)
	outs := make([]map[string]*tensor.Tensor, runs)
	for i := range ins {
		ins[i] = map[string]*tensor.Tensor{"x": tensor.FromFloat32(randUniform(r, 4*16*20, -2, 2), 1, 4, 16, 20)}
	}
	var wg sync.WaitGroup
	for i := range runs {
		if i < 4 { // sequential runs first, then concurrent ones
			if outs[i], err = p.Run(context.Background(), ins[i]); err != nil {
				t.Fatal(err)
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := p.Run(context.Background(), ins[i])
			if err != nil {
				t.Error(err)
			}
			outs[i] = o
		}()
	}
	wg.Wait()
	for i := range runs {
		want, err := ref.Run(context.Background(), ins[i])
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"flat", "id", "s"} {
			wv, gv := want[name].F32(), outs[i][name].F32()
			for j := range wv {
				if d := math.Abs(float64(wv[j] - gv[j])); d > 1e-5*(1+math.Abs(float64(wv[j]))) {
					t.Fatalf("run %d: %s[%d] = %v, want %v", i, name, j, gv[j], wv[j])
				}
			}
		}
	}
}

// TestFoldConvTranspose folds Add and BatchNormalization into a grouped
// ConvTranspose (weights [C, O/g, k, k]) and compares with the nodes run
// one by one.
func TestFoldConvTranspose(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	g := graph.New("convt")
	const cin, og, group = 4, 3, 2
	cout := og * group
	x := g.AddInput("x", graph.TensorType(graph.Float, 1, cin, 5, 6))
	w := g.AddInitializer("w", tensor.FromFloat32(randUniform(r, cin*og*4, -1, 1), cin, og, 2, 2))
	ct := g.AddNode("ct", "ConvTranspose", []*graph.Value{x, w}, []string{"ct"}, map[string]*graph.Attr{
		"strides": graph.AInts(2, 2), "group": graph.AInt(group)}).Outputs[0]
	add := g.AddNode("add", "Add", []*graph.Value{ct, g.AddInitializer("pc", tensor.FromFloat32(randUniform(r, cout, -1, 1), 1, cout, 1, 1))}, []string{"a"}, nil).Outputs[0]
	bn := g.AddNode("bn", "BatchNormalization", []*graph.Value{add,
		g.AddInitializer("scale", tensor.FromFloat32(randUniform(r, cout, 0.5, 2), cout)),
		g.AddInitializer("beta", tensor.FromFloat32(randUniform(r, cout, -1, 1), cout)),
		g.AddInitializer("mean", tensor.FromFloat32(randUniform(r, cout, -1, 1), cout)),
		g.AddInitializer("var", tensor.FromFloat32(randUniform(r, cout, 0.1, 3), cout)),
	}, []string{"y"}, nil).Outputs[0]
	g.Outputs = []*graph.Value{bn}
	in := map[string]*tensor.Tensor{"x": tensor.FromFloat32(randUniform(r, cin*30, -2, 2), 1, cin, 5, 6)}
	want, got, p := runBoth(t, model(g, 13), in)
	for _, out := range got {
		yw, yg := want["y"].F32(), out["y"].F32()
		for i := range yw {
			if d := math.Abs(float64(yg[i] - yw[i])); d > 1e-5*(1+math.Abs(float64(yw[i]))) {
				t.Fatalf("y[%d] = %v, unfolded %v", i, yg[i], yw[i])
			}
		}
	}
	if n := len(p.main.steps); n != 1 {
		t.Errorf("%d steps, want 1 (ConvTranspose with Add and BN folded)", n)
	}
}
