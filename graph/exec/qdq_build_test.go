package exec

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// qb builds QDQ test graphs.
type qb struct {
	g     *graph.Graph
	n     int
	feeds map[string]*tensor.Tensor
	r     *rand.Rand
}

func newQB(name string, seed uint64) *qb {
	return &qb{g: graph.New(name), feeds: map[string]*tensor.Tensor{}, r: rand.New(rand.NewPCG(seed, 99))}
}

func (b *qb) name(p string) string {
	b.n++
	return fmt.Sprintf("%s%d", p, b.n)
}

// input adds a random 8-bit graph input whose first elements are the
// edge codes (the type's extremes and the given zero point).
func (b *qb) input(shape []int, signed bool, zp int32) *graph.Value {
	dims := make([]int64, len(shape))
	for i, d := range shape {
		dims[i] = int64(d)
	}
	name := b.name("in")
	n := shapeNumel(shape)
	raw := make([]byte, n)
	for i := range raw {
		raw[i] = byte(b.r.IntN(256))
	}
	edges := []byte{0, 255, 128, 127, byte(zp), 1, 254}
	for i := 0; i < len(edges) && i < n; i++ {
		raw[i] = edges[i]
	}
	if signed {
		b.feeds[name] = byteTensor(raw, true, shape...)
		return b.g.AddInput(name, graph.TensorType(graph.Int8, dims...))
	}
	b.feeds[name] = tensor.FromUint8(raw, shape...)
	return b.g.AddInput(name, graph.TensorType(graph.Uint8, dims...))
}

// qparam adds a scale and a zero point initializer.
func (b *qb) qparam(s float32, z int32, signed bool) (*graph.Value, *graph.Value) {
	sv := b.g.AddInitializer(b.name("s"), tensor.Scalar(s))
	var zv *graph.Value
	if signed {
		zv = b.g.AddInitializer(b.name("z"), tensor.FromInt8([]int8{int8(z)}).Reshape())
	} else {
		zv = b.g.AddInitializer(b.name("z"), tensor.FromUint8([]uint8{uint8(z)}).Reshape())
	}
	return sv, zv
}

func (b *qb) dq(x *graph.Value, s float32, z int32, signed bool) *graph.Value {
	sv, zv := b.qparam(s, z, signed)
	return b.node("DequantizeLinear", []*graph.Value{x, sv, zv}, nil)
}

func (b *qb) q(x *graph.Value, s float32, z int32, signed bool) *graph.Value {
	sv, zv := b.qparam(s, z, signed)
	return b.node("QuantizeLinear", []*graph.Value{x, sv, zv}, nil)
}

func (b *qb) node(op string, in []*graph.Value, attrs map[string]*graph.Attr) *graph.Value {
	return b.g.AddNode(b.name(op), op, in, []string{b.name("v")}, attrs).Outputs[0]
}

func (b *qb) nodeN(op string, in []*graph.Value, nout int, attrs map[string]*graph.Attr) []*graph.Value {
	outs := make([]string, nout)
	for i := range outs {
		outs[i] = b.name("v")
	}
	return b.g.AddNode(b.name(op), op, in, outs, attrs).Outputs
}

func (b *qb) scalar(v float32) *graph.Value { return b.g.AddInitializer(b.name("c"), tensor.Scalar(v)) }

func (b *qb) ints(v ...int64) *graph.Value {
	return b.g.AddInitializer(b.name("i"), tensor.FromInt64(v, len(v)))
}

func (b *qb) model(outs ...*graph.Value) *graph.Model {
	b.g.Outputs = outs
	return model(b.g, 17)
}

// runQDQBoth compiles m fused (1 and 2 threads) and literally, runs them
// on feeds, checks every output is bit-identical, and returns the fused
// program.
func runQDQBoth(t *testing.T, m *graph.Model, feeds map[string]*tensor.Tensor) *Program {
	t.Helper()
	ref, err := Compile(m, Options{Reference: true})
	if err != nil {
		t.Fatal(err)
	}
	want, err := ref.Run(context.Background(), feeds)
	if err != nil {
		t.Fatal(err)
	}
	var fused *Program
	for _, th := range []int{1, 2, 3} {
		p, err := Compile(m, Options{Threads: th})
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Run(context.Background(), feeds)
		if err != nil {
			t.Fatal(err)
		}
		for name, w := range want {
			g := got[name]
			if g.DType() != w.DType() || !tensor.SameShape(g.Shape(), w.Shape()) {
				t.Fatalf("%d threads: output %s is %s%v, literal %s%v", th, name, g.DType(), g.Shape(), w.DType(), w.Shape())
			}
			if w.DType() == tensor.Float32 {
				for i, v := range w.F32() {
					if g.F32()[i] != v {
						t.Fatalf("%d threads: output %s[%d] = %v, literal %v", th, name, i, g.F32()[i], v)
					}
				}
				continue
			}
			gb, wb := bytesOf(g), bytesOf(w)
			for i := range wb {
				if gb[i] != wb[i] {
					t.Fatalf("%d threads: output %s[%d] = %d, literal %d (input %v)", th, name, i, gb[i], wb[i], feedAt(feeds, i))
				}
			}
		}
		fused = p
	}
	return fused
}

func feedAt(feeds map[string]*tensor.Tensor, i int) []int32 {
	var s []int32
	for _, f := range feeds {
		if v, err := int32s(f); err == nil && i < len(v) {
			s = append(s, v[i])
		}
	}
	return s
}

// int8Nodes counts the report's int8 rows by pattern, and the float rows.
func int8Nodes(p *Program) (map[string]int, []string) {
	pat := map[string]int{}
	var fl []string
	for _, r := range p.QuantReport() {
		if r.Int8 {
			pat[r.Pattern]++
		} else {
			fl = append(fl, r.Op+":"+r.Node)
		}
	}
	return pat, fl
}

// wantAllInt8 checks that every node runs int8 and that a pattern ran.
func wantAllInt8(t *testing.T, p *Program, pattern string) {
	t.Helper()
	pat, fl := int8Nodes(p)
	if len(fl) != 0 || pat[pattern] == 0 {
		t.Fatalf("report %v, float %v; want all int8 with pattern %s", pat, fl, pattern)
	}
}
