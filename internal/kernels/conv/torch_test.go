package conv

import (
	"encoding/json"
	"os"
	"testing"
)

// torchCase is one conv2d or conv_transpose2d evaluation by PyTorch,
// written by testdata/gen_torch.py.
type torchCase struct {
	Kind                              string
	N, C, H, W, OC, KH, KW, G, OH, OW int
	S, P, D, OP                       []int
	X, Wt, B, Y, GY, GX, GW, GB       []float32
}

func loadTorch(t *testing.T) []torchCase {
	t.Helper()
	data, err := os.ReadFile("testdata/torch_conv.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Cases []torchCase }
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("testdata/torch_conv.json: %v", err)
	}
	if len(f.Cases) == 0 {
		t.Fatal("testdata/torch_conv.json: no cases")
	}
	return f.Cases
}

// TestTorchParity compares forward and backward results with PyTorch's on
// the golden cases: output sizes, weight layouts, output padding and groups.
func TestTorchParity(t *testing.T) {
	const tol = 1e-4
	for i, c := range loadTorch(t) {
		y := make([]float32, len(c.Y))
		gx := make([]float32, len(c.X))
		gw := make([]float32, len(c.Wt))
		gb := make([]float32, len(c.B))
		switch c.Kind {
		case "conv":
			p := Conv2DParams{N: c.N, C: c.C, H: c.H, W: c.W, OutC: c.OC, KH: c.KH, KW: c.KW,
				StrideH: c.S[0], StrideW: c.S[1], PadH: c.P[0], PadW: c.P[1], DilH: c.D[0], DilW: c.D[1], Groups: c.G}
			if p.OutH() != c.OH || p.OutW() != c.OW {
				t.Fatalf("case %d: output %dx%d, torch %dx%d", i, p.OutH(), p.OutW(), c.OH, c.OW)
			}
			Conv2D(p, c.X, c.Wt, c.B, y)
			Conv2DBackwardInput(p, c.Wt, c.GY, gx)
			Conv2DBackwardWeight(p, c.X, c.GY, gw)
			Conv2DBackwardBias(p, c.GY, gb)
		case "convT":
			p := ConvTranspose2DParams{N: c.N, C: c.C, H: c.H, W: c.W, OutC: c.OC, KH: c.KH, KW: c.KW,
				StrideH: c.S[0], StrideW: c.S[1], PadH: c.P[0], PadW: c.P[1], DilH: c.D[0], DilW: c.D[1],
				OutPadH: c.OP[0], OutPadW: c.OP[1], Groups: c.G}
			if err := p.Validate(); err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			if p.OutH() != c.OH || p.OutW() != c.OW {
				t.Fatalf("case %d: output %dx%d, torch %dx%d", i, p.OutH(), p.OutW(), c.OH, c.OW)
			}
			ConvTranspose2D(p, c.X, c.Wt, c.B, y)
			ConvTranspose2DBackwardInput(p, c.Wt, c.GY, gx)
			ConvTranspose2DBackwardWeight(p, c.X, c.GY, gw)
			ConvTranspose2DBackwardBias(p, c.GY, gb)
		default:
			t.Fatalf("case %d: unknown kind %q", i, c.Kind)
		}
		assertClose(t, c.Kind+" y", y, c.Y, tol)
		assertClose(t, c.Kind+" gx", gx, c.GX, tol)
		assertClose(t, c.Kind+" gw", gw, c.GW, tol)
		assertClose(t, c.Kind+" gb", gb, c.GB, tol)
	}
}
