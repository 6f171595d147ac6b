package qdyn

import (
	"encoding/json"
	"os"
	"testing"
)

// TestTorchAndONNXGolden compares ChooseTorch with PyTorch 1.13's
// torch._choose_qparams_per_tensor (onednn engine, so reduce_range is
// honoured) on edge and random ranges, and ChooseONNX plus Quantize with
// the ONNX reference formulas evaluated by numpy in float32. The files
// come from ops/dynamic/testdata/gen_torch.py.
func TestTorchAndONNXGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/torch_qparams.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Choose []struct {
			Min, Max    float32
			ReduceRange bool    `json:"reduce_range"`
			Scale       float64 `json:"scale"`
			ZeroPoint   int32   `json:"zero_point"`
		} `json:"choose"`
		ONNX []struct {
			X         []float32 `json:"x"`
			Scale     float32   `json:"scale"`
			ZeroPoint int32     `json:"zero_point"`
			Y         []uint8   `json:"y"`
		} `json:"onnx"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Choose) < 300 || len(g.ONNX) < 200 {
		t.Fatalf("only %d + %d golden cases", len(g.Choose), len(g.ONNX))
	}
	for _, c := range g.Choose {
		s, z := ChooseTorch(c.Min, c.Max, 0, 255, c.ReduceRange)
		if s != float32(c.Scale) || z != c.ZeroPoint {
			t.Errorf("ChooseTorch(%v, %v, reduce=%v) = (%v, %d), PyTorch (%v, %d)", c.Min, c.Max, c.ReduceRange, s, z, float32(c.Scale), c.ZeroPoint)
		}
	}
	forEachVariant(t, func(t *testing.T) {
		for _, c := range g.ONNX {
			p, ok := ScanActivations(ONNX, 1, len(c.X), c.X, len(c.X))
			if !ok || p.Scale != c.Scale || p.ZeroPoint != c.ZeroPoint {
				t.Fatalf("x=%v: %+v, want scale %v zp %d", c.X, p, c.Scale, c.ZeroPoint)
			}
			y := make([]uint8, len(c.X))
			Quantize(y, c.X, p.Scale, p.ZeroPoint, p.QMin, p.QMax)
			if string(y) != string(c.Y) {
				t.Fatalf("x=%v: y = %v, want %v", c.X, y, c.Y)
			}
		}
	})
}
