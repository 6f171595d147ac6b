package qelem

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/quanta-go/quanta/internal/kernels/pool"
)

func testResize[T Byte](t *testing.T, r *rand.Rand) {
	signed := isSigned[T]()
	for trial := 0; trial < 200; trial++ {
		p := ResizeParams{N: 1 + r.IntN(2), C: 1 + r.IntN(3), H: 1 + r.IntN(9), W: 1 + r.IntN(20), AlignCorners: r.IntN(2) == 0}
		p.OutH, p.OutW = 1+r.IntN(25), 1+r.IntN(45)
		switch trial % 4 {
		case 0:
			p.OutH, p.OutW = 2*p.H, 2*p.W
		case 1:
			p.ScaleH, p.ScaleW = float64(p.OutH)/float64(p.H)*1.01, float64(p.OutW)/float64(p.W)*0.99
		}
		x := bytesAs[T](randBytes(r, p.N*p.C*p.H*p.W))
		n := p.N * p.C * p.OutH * p.OutW
		want, got := make([]T, n), make([]T, n)
		UpsampleNearest2DReference(p, x, want)
		UpsampleNearest2D(p, x, got)
		equalSlices(t, fmt.Sprintf("nearest %+v", p), got, want)
		rq := randRequant(r, signed, trial%3 != 0)
		UpsampleBilinear2DReference(p, rq, x, want)
		UpsampleBilinear2D(p, rq, x, got)
		equalSlices(t, fmt.Sprintf("bilinear %+v %+v", p, *rq), got, want)
	}
}

func TestResizeMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	testResize[uint8](t, r)
	testResize[int8](t, r)
}

func TestResizeHandValues(t *testing.T) {
	// 1x1x2x2 to 4x4, align_corners false: source index (o+0.5)/2-0.5,
	// clamped at 0: 0, 0.25, 0.75, 1.25 -> (0, w 0), (0, .25), (0, .75), (1, .25 but no next).
	x := []uint8{10, 20, 30, 40}
	p := ResizeParams{N: 1, C: 1, H: 2, W: 2, OutH: 4, OutW: 4}
	same := &Requant{InScale: 1, InZero: 10, OutScale: 1, OutZero: 10, Min: 0, Max: 255}
	y := make([]uint8, 16)
	UpsampleBilinear2D(p, same, x, y)
	// Row 0: 10, 12.5 -> 12, 17.5 -> 18, 20. Row 1 (h 0.25): 15, 17.5 -> 18, 22.5 -> 22, 25.
	want := []uint8{10, 12, 18, 20, 15, 18, 22, 25, 25, 28, 32, 35, 30, 32, 38, 40}
	equalSlices(t, "bilinear 2x2->4x4", y, want)
	p.AlignCorners = true // source o*(1/3): 0, 1/3, 2/3, 1
	UpsampleBilinear2D(p, same, x, y)
	if y[0] != 10 || y[3] != 20 || y[12] != 30 || y[15] != 40 || y[1] != 13 {
		t.Errorf("align_corners bilinear = %v", y)
	}
	UpsampleNearest2D(p, x, y)
	equalSlices(t, "nearest", y, []uint8{10, 10, 20, 20, 10, 10, 20, 20, 30, 30, 40, 40, 30, 30, 40, 40})
}

type torchCase struct {
	Op              string  `json:"op"`
	Input           int     `json:"input"`
	YShape          []int   `json:"y_shape"`
	Y               []int   `json:"y"`
	OutScale        float64 `json:"out_scale"`
	OutZP           int32   `json:"out_zp"`
	Kernel          int     `json:"kernel"`
	Stride          int     `json:"stride"`
	Padding         int     `json:"padding"`
	Dilation        int     `json:"dilation"`
	CeilMode        bool    `json:"ceil_mode"`
	CountIncludePad bool    `json:"count_include_pad"`
	Divisor         int     `json:"divisor"`
	AlignCorners    bool    `json:"align_corners"`
	ScaleFactor     float64 `json:"scale_factor"`
}

type torchInput struct {
	DType string  `json:"dtype"`
	Shape []int   `json:"shape"`
	Scale float64 `json:"scale"`
	ZP    int32   `json:"zp"`
	X     []int   `json:"x"`
}

// TestTorchParity compares pooling and upsampling with PyTorch 1.13's
// quantized kernels (testdata/gen_torch.py), bit for bit.
func TestTorchParity(t *testing.T) {
	raw, err := os.ReadFile("testdata/torch_qelem.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Inputs []torchInput `json:"inputs"`
		Cases  []torchCase  `json:"cases"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Cases) < 200 {
		t.Fatalf("only %d cases", len(file.Cases))
	}
	for i, c := range file.Cases {
		in := file.Inputs[c.Input]
		if in.DType == "quint8" {
			torchCheck[uint8](t, i, in, c)
		} else {
			torchCheck[int8](t, i, in, c)
		}
	}
}

func torchCheck[T Byte](t *testing.T, i int, in torchInput, c torchCase) {
	t.Helper()
	x := make([]T, len(in.X))
	for j, v := range in.X {
		x[j] = T(v)
	}
	lo, hi := typeRange[T]()
	s := float32(in.Scale)
	rq := &Requant{InScale: s, InZero: in.ZP, OutScale: s, OutZero: in.ZP, Min: lo, Max: hi}
	if float32(c.OutScale) != s || c.OutZP != in.ZP {
		t.Fatalf("case %d: PyTorch changed qparams", i)
	}
	sh := in.Shape
	y := make([]T, len(c.Y))
	pp := pool.Pool2DParams{N: sh[0], C: sh[1], H: sh[2], W: sh[3], KH: c.Kernel, KW: c.Kernel, StrideH: c.Stride, StrideW: c.Stride,
		PadH: c.Padding, PadW: c.Padding, DilH: c.Dilation, DilW: c.Dilation, CeilMode: c.CeilMode, CountIncludePad: c.CountIncludePad, Divisor: c.Divisor}
	rp := ResizeParams{N: sh[0], C: sh[1], H: sh[2], W: sh[3], OutH: c.YShape[2], OutW: c.YShape[3], ScaleH: c.ScaleFactor, ScaleW: c.ScaleFactor, AlignCorners: c.AlignCorners}
	switch c.Op {
	case "avg_pool2d":
		AvgPool2D(pp, rq, x, y)
	case "max_pool2d":
		MaxPool2D(pp, x, y)
	case "adaptive_avg_pool2d":
		AdaptiveAvgPool2D(pool.AdaptivePool2DParams{N: sh[0], C: sh[1], H: sh[2], W: sh[3], OutH: c.YShape[2], OutW: c.YShape[3]}, rq, x, y)
	case "upsample_bilinear2d":
		UpsampleBilinear2D(rp, rq, x, y)
	case "upsample_nearest2d":
		UpsampleNearest2D(rp, x, y)
	default:
		t.Fatalf("case %d: unknown op %q", i, c.Op)
	}
	for j, w := range c.Y {
		if int(y[j]) != w {
			t.Fatalf("case %d %s (%+v, input zp %d %s): y[%d] = %d, PyTorch %d", i, c.Op, c, in.ZP, in.DType, j, y[j], w)
		}
	}
}
