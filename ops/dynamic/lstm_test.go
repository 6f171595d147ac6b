package dynamic

import (
	"math"
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

// TestLSTMStepTorchGolden runs a dynamic quantized LSTM layer as PyTorch
// 1.13 does on CPU (torch.ao.nn.quantized.dynamic.LSTM, qnnpack): the
// input projection of the whole sequence is one dynamic linear product
// (one set of activation qparams for all T*B rows, bias b_ih inside), and
// each time step adds the hidden projection, a dynamic linear product on
// that step's h written into a gate buffer with LinearRows (bias b_hh),
// before float gate math. It matches PyTorch to float32 rounding of the
// sigmoid and tanh: the quantized products themselves are exact.
func TestLSTMStepTorchGolden(t *testing.T) {
	g := loadGolden(t)
	if len(g.LSTM) < 2 {
		t.Fatalf("%d LSTM cases", len(g.LSTM))
	}
	sig := func(v float32) float32 { return float32(1 / (1 + math.Exp(-float64(v)))) }
	th := func(v float32) float32 { return float32(math.Tanh(float64(v))) }
	for ci, c := range g.LSTM {
		T, B, I, H := c.T, c.B, c.I, c.H
		wih, err := PackLinear(tensor.FromFloat32(c.WIh, 4*H, I), tensor.FromFloat32(c.BIh, 4*H), PerTensor)
		if err != nil {
			t.Fatal(err)
		}
		whh, err := PackLinear(tensor.FromFloat32(c.WHh, 4*H, H), tensor.FromFloat32(c.BHh, 4*H), PerTensor)
		if err != nil {
			t.Fatal(err)
		}
		h := append([]float32(nil), c.H0...)
		cs := append([]float32(nil), c.C0...)
		giAll := make([]float32, T*B*4*H)
		if err := LinearRows(T*B, c.X, I, wih, RuleTorch, giAll, 4*H); err != nil {
			t.Fatal(err)
		}
		gh := make([]float32, B*4*H)
		var maxDiff float64
		for step := 0; step < T; step++ {
			gi := giAll[step*B*4*H:]
			if err := LinearRows(B, h, H, whh, RuleTorch, gh, 4*H); err != nil {
				t.Fatal(err)
			}
			for b := 0; b < B; b++ {
				for j := 0; j < H; j++ {
					at := func(k int) float32 { return gh[b*4*H+k*H+j] + gi[b*4*H+k*H+j] }
					in, f, cell, out := sig(at(0)), sig(at(1)), th(at(2)), sig(at(3))
					cv := f*cs[b*H+j] + in*cell
					cs[b*H+j] = cv
					h[b*H+j] = out * th(cv)
				}
			}
			for i, v := range h {
				d := math.Abs(float64(v - c.Y[step*B*H+i]))
				maxDiff = math.Max(maxDiff, d)
			}
		}
		for i := range h {
			maxDiff = math.Max(maxDiff, math.Abs(float64(h[i]-c.HN[i])))
			maxDiff = math.Max(maxDiff, math.Abs(float64(cs[i]-c.CN[i])))
		}
		t.Logf("case %d (T=%d B=%d I=%d H=%d): max |Δ| = %.3g", ci, T, B, I, H, maxDiff)
		if maxDiff > 1e-6 {
			t.Fatalf("case %d: outputs differ from PyTorch by %g", ci, maxDiff)
		}
	}
}
