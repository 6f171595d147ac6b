package exec

import (
	"fmt"
	"math"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// rnnCase is a recurrent problem with every optional input set.
type rnnCase struct {
	kind                 rnnKind
	steps, batch, in, h  int
	dirs                 int
	x, w, r, b, h0, c0   []float32
	p                    []float32
	lens                 []int32
	clip                 float64
	linearBeforeReset    bool
	reverse, inputForget bool
	// scaledTanh names an LSTM's cell and hidden activations ScaledTanh
	// with alpha = beta = 1 (tanh through the scalar path).
	scaledTanh bool
}

func newRNNCase(kind rnnKind, dirs int, seed uint64) *rnnCase {
	c := &rnnCase{kind: kind, steps: 4, batch: 3, in: 2, h: 3, dirs: dirs}
	g := tensor.NewRNG(seed)
	rnd := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = g.Uniform(-1, 1)
		}
		return v
	}
	gh := kind.gates() * c.h
	c.x = rnd(c.steps * c.batch * c.in)
	c.w = rnd(dirs * gh * c.in)
	c.r = rnd(dirs * gh * c.h)
	c.b = rnd(dirs * 2 * gh)
	c.h0 = rnd(dirs * c.batch * c.h)
	c.c0 = rnd(dirs * c.batch * c.h)
	c.p = rnd(dirs * 3 * c.h)
	c.lens = []int32{4, 2, 0}
	return c
}

// reference computes Y [S, dirs, B, H], Y_h and Y_c [dirs, B, H] with
// ONNX's equations, in float64, one batch entry and direction at a time.
func (c *rnnCase) reference() (y, yh, yc []float64) {
	S, B, I, H, D := c.steps, c.batch, c.in, c.h, c.dirs
	G := c.kind.gates()
	y = make([]float64, S*D*B*H)
	yh = make([]float64, D*B*H)
	yc = make([]float64, D*B*H)
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	clip := func(v float64) float64 {
		if c.clip > 0 {
			return math.Max(-c.clip, math.Min(c.clip, v))
		}
		return v
	}
	for d := 0; d < D; d++ {
		// dot(gate k, unit j) of W·x and R·h with biases.
		wx := func(t, b, k, j int) float64 {
			s := float64(c.b[d*2*G*H+k*H+j])
			for i := 0; i < I; i++ {
				s += float64(c.w[(d*G*H+k*H+j)*I+i]) * float64(c.x[(t*B+b)*I+i])
			}
			return s
		}
		rh := func(h []float64, k, j int) float64 {
			s := float64(c.b[d*2*G*H+G*H+k*H+j])
			for i := 0; i < H; i++ {
				s += float64(c.r[(d*G*H+k*H+j)*H+i]) * h[i]
			}
			return s
		}
		for b := 0; b < B; b++ {
			h := make([]float64, H)
			cell := make([]float64, H)
			for j := 0; j < H; j++ {
				h[j] = float64(c.h0[(d*B+b)*H+j])
				cell[j] = float64(c.c0[(d*B+b)*H+j])
			}
			L := int(c.lens[b])
			for i := 0; i < L; i++ {
				t := i
				if c.reverse || d == 1 {
					t = L - 1 - i
				}
				nh, nc := make([]float64, H), make([]float64, H)
				for j := 0; j < H; j++ {
					switch c.kind {
					case rnnPlain:
						nh[j] = math.Tanh(clip(wx(t, b, 0, j) + rh(h, 0, j)))
					case rnnGRU:
						z := sig(clip(wx(t, b, 0, j) + rh(h, 0, j)))
						var pre float64
						if c.linearBeforeReset {
							r := sig(clip(wx(t, b, 1, j) + rh(h, 1, j)))
							pre = wx(t, b, 2, j) + r*rh(h, 2, j)
						} else {
							// (r ⊙ h)·Rhᵀ needs every r first.
							rhv := make([]float64, H)
							for q := 0; q < H; q++ {
								rhv[q] = sig(clip(wx(t, b, 1, q)+rh(h, 1, q))) * h[q]
							}
							pre = wx(t, b, 2, j) + rh(rhv, 2, j)
						}
						nh[j] = (1-z)*math.Tanh(clip(pre)) + z*h[j]
					case rnnLSTM:
						p := func(k int) float64 {
							if c.p == nil {
								return 0
							}
							return float64(c.p[d*3*H+k*H+j])
						}
						ig := sig(clip(wx(t, b, 0, j) + rh(h, 0, j) + p(0)*cell[j]))
						fg := sig(clip(wx(t, b, 2, j) + rh(h, 2, j) + p(2)*cell[j]))
						if c.inputForget {
							fg = 1 - ig
						}
						cc := math.Tanh(clip(wx(t, b, 3, j) + rh(h, 3, j)))
						nc[j] = fg*cell[j] + ig*cc
						og := sig(clip(wx(t, b, 1, j) + rh(h, 1, j) + p(1)*nc[j]))
						nh[j] = og * math.Tanh(nc[j])
					}
				}
				h = nh
				if c.kind == rnnLSTM {
					cell = nc
				}
				copy(y[((t*D+d)*B+b)*H:], h)
			}
			copy(yh[(d*B+b)*H:], h)
			copy(yc[(d*B+b)*H:], cell)
		}
	}
	return y, yh, yc
}

// run runs the case through the operator; batchFirst feeds and reads
// layout 1 (opset 14).
func (c *rnnCase) run(batchFirst bool) ([]*tensor.Tensor, error) {
	S, B, I, H, D := c.steps, c.batch, c.in, c.h, c.dirs
	G := c.kind.gates()
	op := [...]string{"RNN", "GRU", "LSTM"}[c.kind]
	dir := map[int]string{1: "forward", 2: "bidirectional"}[D]
	if c.reverse {
		dir = "reverse"
	}
	attrs := map[string]*graph.Attr{"hidden_size": graph.AInt(int64(H)), "direction": graph.AString(dir)}
	if c.clip > 0 {
		attrs["clip"] = graph.AFloat(float32(c.clip))
	}
	if c.linearBeforeReset {
		attrs["linear_before_reset"] = graph.AInt(1)
	}
	if c.inputForget {
		attrs["input_forget"] = graph.AInt(1)
	}
	if c.scaledTanh {
		attrs["activations"] = &graph.Attr{Kind: graph.AttrStrings, Ss: []string{"Sigmoid", "ScaledTanh", "ScaledTanh"}}
		attrs["activation_alpha"] = graph.AFloats(1, 1, 1, 1)
		attrs["activation_beta"] = graph.AFloats(1, 1, 1, 1)
	}
	x := tensor.FromFloat32(c.x, S, B, I)
	h0 := tensor.FromFloat32(c.h0, D, B, H)
	c0 := tensor.FromFloat32(c.c0, D, B, H)
	if batchFirst {
		attrs["layout"] = graph.AInt(1)
		x = tensor.Permute(x, 1, 0, 2)
		h0 = tensor.Permute(h0, 1, 0, 2)
		c0 = tensor.Permute(c0, 1, 0, 2)
	}
	ins := []*tensor.Tensor{x, tensor.FromFloat32(c.w, D, G*H, I), tensor.FromFloat32(c.r, D, G*H, H),
		tensor.FromFloat32(c.b, D, 2*G*H), tensor.FromInt32(c.lens, B), h0}
	nOut := 2
	if c.kind == rnnLSTM {
		ins = append(ins, c0)
		if c.p != nil {
			ins = append(ins, tensor.FromFloat32(c.p, D, 3*H))
		}
		nOut = 3
	}
	out, err := runOp(14, op, attrs, nOut, ins...)
	if err != nil {
		return nil, err
	}
	if batchFirst {
		out[0] = tensor.Permute(out[0], 1, 2, 0, 3)
		for i := 1; i < nOut; i++ {
			out[i] = tensor.Permute(out[i], 1, 0, 2)
		}
	}
	return out, nil
}

func closeTo(t *testing.T, what string, got *tensor.Tensor, want []float64, shape ...int) {
	t.Helper()
	if !tensor.SameShape(got.Shape(), shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape(), shape)
	}
	for i, v := range got.F32() {
		if math.Abs(float64(v)-want[i]) > 1e-5 {
			t.Fatalf("%s: element %d = %g, want %g", what, i, v, want[i])
		}
	}
}

// TestRNNReference checks RNN, GRU (both reset modes) and LSTM, forward,
// reverse and bidirectional, with biases, initial states, sequence_lens
// (4, 2 and 0 steps), with and without peepholes, input_forget and clip,
// in both layouts, against a float64 implementation of ONNX's equations.
func TestRNNReference(t *testing.T) {
	type variant struct {
		name string
		edit func(c *rnnCase)
	}
	variants := []variant{
		{"plain", func(c *rnnCase) {}},
		{"reverse", func(c *rnnCase) { c.reverse = true }},
		{"clip", func(c *rnnCase) { c.clip = 0.5 }},
	}
	for _, kind := range []rnnKind{rnnPlain, rnnGRU, rnnLSTM} {
		vs := append([]variant{}, variants...)
		if kind == rnnGRU {
			vs = append(vs, variant{"linear_before_reset", func(c *rnnCase) { c.linearBeforeReset = true }})
		}
		if kind == rnnLSTM {
			// Without peepholes the Sigmoid gates go through
			// conv.EwSigmoid a row at a time (lstmSigmoidRows).
			vs = append(vs, variant{"input_forget", func(c *rnnCase) { c.inputForget = true }},
				variant{"no peepholes", func(c *rnnCase) { c.p = nil }},
				variant{"no peepholes, clip, input_forget", func(c *rnnCase) { c.p, c.clip, c.inputForget = nil, 0.5, true }},
				variant{"no peepholes, ScaledTanh", func(c *rnnCase) { c.p, c.scaledTanh = nil, true }})
		}
		for _, dirs := range []int{1, 2} {
			for _, v := range vs {
				if v.name == "reverse" && dirs == 2 {
					continue
				}
				c := newRNNCase(kind, dirs, uint64(7*dirs+int(kind)))
				v.edit(c)
				y, yh, yc := c.reference()
				for _, bf := range []bool{false, true} {
					name := fmt.Sprintf("%s/%d dirs/%s/batch first %v", [...]string{"RNN", "GRU", "LSTM"}[kind], dirs, v.name, bf)
					out, err := c.run(bf)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					closeTo(t, name+" Y", out[0], y, c.steps, dirs, c.batch, c.h)
					closeTo(t, name+" Y_h", out[1], yh, dirs, c.batch, c.h)
					if kind == rnnLSTM {
						closeTo(t, name+" Y_c", out[2], yc, dirs, c.batch, c.h)
					}
				}
			}
		}
	}
}

func TestRNNErrors(t *testing.T) {
	c := newRNNCase(rnnLSTM, 1, 1)
	_, err := runOp(14, "LSTM", map[string]*graph.Attr{"hidden_size": graph.AInt(3), "direction": graph.AString("sideways")}, 1,
		tensor.FromFloat32(c.x, 4, 3, 2), tensor.FromFloat32(c.w, 1, 12, 2), tensor.FromFloat32(c.r, 1, 12, 3))
	wantErr(t, "direction", err, "direction \"sideways\"")
	_, err = runOp(14, "LSTM", map[string]*graph.Attr{"hidden_size": graph.AInt(3), "activations": {Kind: graph.AttrStrings, Ss: []string{"Sigmoid", "Tanh", "Frob"}}}, 1,
		tensor.FromFloat32(c.x, 4, 3, 2), tensor.FromFloat32(c.w, 1, 12, 2), tensor.FromFloat32(c.r, 1, 12, 3))
	wantErr(t, "activation", err, "unknown activation \"Frob\"")
	_, err = runOp(14, "LSTM", map[string]*graph.Attr{"hidden_size": graph.AInt(3)}, 1,
		tensor.FromFloat32(c.x, 4, 3, 2), tensor.FromFloat32(c.w[:18], 1, 9, 2), tensor.FromFloat32(c.r, 1, 12, 3))
	wantErr(t, "shapes", err, "want [1 12 2]")
}
