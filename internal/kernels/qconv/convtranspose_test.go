package qconv

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/kernels/conv"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
)

func randTranspose(r *rand.Rand, p TransposeParams, signedOut bool) ([]uint8, []int8, *qgemm.Requant) {
	q := p.Norm()
	x := make([]uint8, q.InputLen())
	for i := range x {
		x[i] = uint8(r.IntN(256))
	}
	w := make([]int8, q.WeightLen())
	for i := range w {
		w[i] = int8(r.IntN(256) - 128)
	}
	rq := &qgemm.Requant{Bias: make([]int32, q.OutC), Multiplier: make([]float32, q.OutC), Min: 0, Max: 255}
	if signedOut {
		rq.Min, rq.Max = -128, 127
	}
	rq.ZeroPoint = rq.Min + int32(r.IntN(256))
	for c := range rq.Bias {
		rq.Bias[c] = int32(r.IntN(40001) - 20000)
		rq.Multiplier[c] = r.Float32() * 4e-4
	}
	if r.IntN(4) == 0 {
		rq.Min = rq.ZeroPoint // fused ReLU
	}
	if r.IntN(3) == 0 {
		rq.Multiplier = rq.Multiplier[:1]
	}
	return x, w, rq
}

var transposeCases = []conv.ConvTranspose2DParams{
	{N: 1, C: 3, H: 5, W: 6, OutC: 4, KH: 3, KW: 3},
	{N: 2, C: 8, H: 7, W: 7, OutC: 6, KH: 4, KW: 4, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
	{N: 1, C: 4, H: 6, W: 5, OutC: 4, KH: 3, KW: 2, StrideH: 2, StrideW: 3, PadH: 1, OutPadH: 1, OutPadW: 2},
	{N: 1, C: 6, H: 5, W: 9, OutC: 9, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 2, PadW: 1, DilH: 2, DilW: 2, Groups: 3, OutPadH: 1},
	{N: 1, C: 4, H: 4, W: 4, OutC: 4, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 4, OutPadH: 1, OutPadW: 1}, // depthwise
	{N: 1, C: 2, H: 1, W: 13, OutC: 3, KH: 1, KW: 5, StrideW: 3, PadW: 2},
	{N: 1, C: 5, H: 9, W: 3, OutC: 2, KH: 2, KW: 1, StrideH: 1, DilH: 3},
	{N: 1, C: 16, H: 40, W: 33, OutC: 8, KH: 2, KW: 2, StrideH: 2, StrideW: 2},         // several row blocks; taps never overlap
	{N: 2, C: 6, H: 5, W: 7, OutC: 9, KH: 2, KW: 3, StrideH: 2, StrideW: 3, Groups: 3}, // taps never overlap, groups
	{N: 1, C: 24, H: 6, W: 10, OutC: 1, KH: 2, KW: 2, StrideH: 2, StrideW: 2},          // one output channel (a segmentation head)
	{N: 2, C: 24, H: 20, W: 21, OutC: 24, KH: 2, KW: 2, StrideH: 2, StrideW: 2},        // taps through the NCHW pointwise kernels, rows off multiples of 8
	{N: 1, C: 12, H: 9, W: 17, OutC: 5, KH: 2, KW: 1, StrideH: 2, StrideW: 1},          // taps, one column
	{N: 1, C: 1, H: 1, W: 1, OutC: 1, KH: 1, KW: 1},
}

// TestConvTransposeTapsPath checks that the cases whose taps never overlap
// take the requantizing tap GEMM (so TestConvTransposeMatchesReference
// covers that path with uint8 outputs) and the others do not.
func TestConvTransposeTapsPath(t *testing.T) {
	taps := 0
	for _, g := range transposeCases {
		p := TransposeParams{ConvTranspose2DParams: g, WeightZeroPoints: []int32{0}}
		pk, err := PackTranspose(p, make([]int8, p.Norm().WeightLen()))
		if err != nil {
			t.Fatal(err)
		}
		q := p.Norm()
		if pk.taps != nonOverlapping(&q) {
			t.Errorf("%+v: tap path %v", g, pk.taps)
		}
		if pk.taps {
			taps++
		}
	}
	if taps < 3 {
		t.Errorf("%d cases take the per-tap path, want at least 3", taps)
	}
}

func TestConvTransposeMatchesReference(t *testing.T) {
	forEachTier(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(41, 42))
		for i, g := range transposeCases {
			for _, perCh := range []bool{false, true} {
				for _, s8 := range []bool{false, true} {
					p := TransposeParams{ConvTranspose2DParams: g, InZeroPoint: int32(r.IntN(256)), WeightZeroPoints: []int32{0}}
					if perCh {
						p.WeightZeroPoints = make([]int32, g.OutC)
						for c := range p.WeightZeroPoints {
							p.WeightZeroPoints[c] = int32(r.IntN(7) - 3)
						}
					}
					x, w, rq := randTranspose(r, p, s8)
					pk, err := PackTranspose(p, w)
					if err != nil {
						t.Fatal(err)
					}
					n := p.Norm().OutputLen()
					want := make([]uint8, n)
					ConvTranspose2DReference(&p, x, w, rq, want)
					got := make([]uint8, n+4)
					copy(got[n:], []uint8{9, 9, 9, 9})
					ConvTranspose2D(pk, x, rq, got)
					for j := 0; j < n; j++ {
						if got[j] != want[j] {
							t.Fatalf("case %d (%+v, per-channel %v, int8 %v): y[%d] = %d, want %d", i, g, perCh, s8, j, got[j], want[j])
						}
					}
					if got[n] != 9 || got[n+3] != 9 {
						t.Fatalf("case %d: wrote past the output", i)
					}
				}
			}
		}
	})
}

// TestConvTransposeReferenceIsConvTranspose checks the reference against
// the float transposed convolution of the centred integers (exact in
// float32 at these sizes), requantized by hand.
func TestConvTransposeReferenceIsConvTranspose(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	for i, g := range transposeCases[:7] {
		p := TransposeParams{ConvTranspose2DParams: g, InZeroPoint: int32(r.IntN(256)), WeightZeroPoints: make([]int32, g.OutC)}
		for c := range p.WeightZeroPoints {
			p.WeightZeroPoints[c] = int32(r.IntN(9) - 4)
		}
		x, w, rq := randTranspose(r, p, false)
		q := p.Norm()
		fx := make([]float32, len(x))
		for j, v := range x {
			fx[j] = float32(int32(v) - p.InZeroPoint)
		}
		opg := q.OutC / q.Groups
		fw := make([]float32, len(w))
		for j, v := range w {
			o := (j / (q.KH * q.KW)) % opg
			ic := j / (opg * q.KH * q.KW)
			oc := (ic/(q.C/q.Groups))*opg + o
			fw[j] = float32(int32(v) - p.WeightZeroPoints[oc])
		}
		fb := make([]float32, q.OutC)
		for c, b := range rq.Bias {
			fb[c] = float32(b)
		}
		fy := make([]float32, q.OutputLen())
		conv.ConvTranspose2DReference(q, fx, fw, fb, fy)
		got := make([]uint8, len(fy))
		ConvTranspose2DReference(&p, x, w, rq, got)
		ohw := q.OutH() * q.OutW()
		for j, v := range fy {
			oc := (j / ohw) % q.OutC
			want := qmath.Requantize(int32(v), requantMult(rq, oc), rq.ZeroPoint, rq.Min, rq.Max)
			if int32(got[j]) != want {
				t.Fatalf("case %d: y[%d] = %d, float conv_transpose gives %d", i, j, got[j], want)
			}
		}
	}
}

func TestConvTransposeHandValues(t *testing.T) {
	// x = [[1, 2], [3, 4]] (za 0), kernel [[1, -1], [2, 0]], stride 2: each
	// input pixel stamps v*kernel into its own 2x2 output block.
	p := TransposeParams{ConvTranspose2DParams: conv.ConvTranspose2DParams{N: 1, C: 1, H: 2, W: 2, OutC: 1, KH: 2, KW: 2, StrideH: 2, StrideW: 2},
		WeightZeroPoints: []int32{0}}
	w := []int8{1, -1, 2, 0}
	pk, err := PackTranspose(p, w)
	if err != nil {
		t.Fatal(err)
	}
	rq := &qgemm.Requant{Bias: []int32{1}, Multiplier: []float32{1}, ZeroPoint: 10, Min: 0, Max: 255}
	y := make([]uint8, 16)
	ConvTranspose2D(pk, []uint8{1, 2, 3, 4}, rq, y)
	want := []uint8{12, 10, 13, 9, 13, 11, 15, 11, 14, 8, 15, 7, 17, 11, 19, 11}
	for i := range want {
		if y[i] != want[i] {
			t.Fatalf("y = %v, want %v", y, want)
		}
	}
	// Stride 1: overlapping stamps add up: y[0][1] = 1*-1 + 2*1 = 1 (+bias 1 +zp 10).
	p.StrideH, p.StrideW = 1, 1
	pk, _ = PackTranspose(p, w)
	y = make([]uint8, 9)
	ConvTranspose2D(pk, []uint8{1, 2, 3, 4}, rq, y)
	if y[0] != 12 || y[1] != 12 || y[4] != 11+3-2+2*2 {
		t.Fatalf("stride 1 y = %v", y)
	}
}

func TestConvTransposeThreadIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	for _, g := range []conv.ConvTranspose2DParams{
		{N: 2, C: 16, H: 14, W: 14, OutC: 24, KH: 4, KW: 4, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
		{N: 1, C: 24, H: 64, W: 60, OutC: 24, KH: 2, KW: 2, StrideH: 2, StrideW: 2}, // taps: split pointwise pieces and interleaves
	} {
		p := TransposeParams{ConvTranspose2DParams: g, InZeroPoint: 3, WeightZeroPoints: []int32{0}}
		x, w, rq := randTranspose(r, p, false)
		pk, err := PackTranspose(p, w)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]uint8, p.Norm().OutputLen())
		ConvTranspose2DReference(&p, x, w, rq, want)
		for _, th := range []int{1, 2, 3} {
			old := parallel.SetNumThreads(th)
			y := make([]uint8, p.Norm().OutputLen())
			ConvTranspose2D(pk, x, rq, y)
			parallel.SetNumThreads(old)
			for i := range want {
				if y[i] != want[i] {
					t.Fatalf("%+v at %d threads: y[%d] = %d, want %d", g, th, i, y[i], want[i])
				}
			}
		}
	}
}

func TestPackTransposeErrors(t *testing.T) {
	g := conv.ConvTranspose2DParams{N: 1, C: 2, H: 3, W: 3, OutC: 4, KH: 3, KW: 3}
	if _, err := PackTranspose(TransposeParams{ConvTranspose2DParams: g, WeightZeroPoints: []int32{0, 0}}, make([]int8, 72)); err == nil {
		t.Fatal("2 zero points for 4 channels accepted")
	}
	if _, err := PackTranspose(TransposeParams{ConvTranspose2DParams: g, WeightZeroPoints: []int32{0}}, make([]int8, 71)); err == nil {
		t.Fatal("short weights accepted")
	}
	g.OutPadH = 1
	if _, err := PackTranspose(TransposeParams{ConvTranspose2DParams: g, WeightZeroPoints: []int32{0}}, make([]int8, 72)); err == nil {
		t.Fatal("output padding >= stride accepted")
	}
}

// BenchmarkQConvTranspose2D reports GOP/s (2 per multiply-add) with the
// direct reference loop as the baseline on the smallest shape.
func BenchmarkQConvTranspose2D(b *testing.B) {
	shapes := []struct {
		name string
		g    conv.ConvTranspose2DParams
	}{
		{"4x4s2_64to32_28", conv.ConvTranspose2DParams{N: 1, C: 64, H: 28, W: 28, OutC: 32, KH: 4, KW: 4, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}},
		{"2x2s2_128to64_32", conv.ConvTranspose2DParams{N: 1, C: 128, H: 32, W: 32, OutC: 64, KH: 2, KW: 2, StrideH: 2, StrideW: 2}},
		{"3x3s2_256to128_14", conv.ConvTranspose2DParams{N: 1, C: 256, H: 14, W: 14, OutC: 128, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, OutPadH: 1, OutPadW: 1}},
		// A text detector's head: 2x upsamplings of 24 channels.
		{"2x2s2_24to24_64", conv.ConvTranspose2DParams{N: 1, C: 24, H: 64, W: 64, OutC: 24, KH: 2, KW: 2, StrideH: 2, StrideW: 2}},
		{"2x2s2_24to1_128", conv.ConvTranspose2DParams{N: 1, C: 24, H: 128, W: 128, OutC: 1, KH: 2, KW: 2, StrideH: 2, StrideW: 2}},
	}
	for _, s := range shapes {
		r := rand.New(rand.NewPCG(1, 1))
		p := TransposeParams{ConvTranspose2DParams: s.g, InZeroPoint: 5, WeightZeroPoints: make([]int32, s.g.OutC)}
		x, w, rq := randTranspose(r, p, false)
		pk, _ := PackTranspose(p, w)
		y := make([]uint8, p.Norm().OutputLen())
		q := p.Norm()
		macs := float64(q.InputLen()) * float64(q.OutC/q.Groups*q.KH*q.KW)
		for _, th := range []int{1, 2} {
			b.Run(fmt.Sprintf("t%d/%s", th, s.name), func(b *testing.B) {
				old := parallel.SetNumThreads(th)
				defer parallel.SetNumThreads(old)
				for i := 0; i < b.N; i++ {
					ConvTranspose2D(pk, x, rq, y)
				}
				b.ReportMetric(2*macs*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
			})
		}
		if s.name == shapes[0].name {
			b.Run("reference/"+s.name, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					ConvTranspose2DReference(&p, x, w, rq, y)
				}
				b.ReportMetric(2*macs*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
			})
		}
	}
}

func TestTransposeForInput(t *testing.T) {
	r := rand.New(rand.NewPCG(47, 48))
	g := conv.ConvTranspose2DParams{N: 1, C: 4, H: 3, W: 3, OutC: 6, KH: 3, KW: 3, StrideH: 2, StrideW: 2, Groups: 2}
	p := TransposeParams{ConvTranspose2DParams: g, InZeroPoint: 1, WeightZeroPoints: []int32{0}}
	x, w, rq := randTranspose(r, p, false)
	pk, err := PackTranspose(p, w)
	if err != nil {
		t.Fatal(err)
	}
	p2 := p
	p2.N, p2.H, p2.W, p2.InZeroPoint = 2, 5, 4, 200
	x = make([]uint8, p2.Norm().InputLen())
	for i := range x {
		x[i] = uint8(r.IntN(256))
	}
	pk2, err := pk.ForInput(2, 5, 4, 200)
	if err != nil {
		t.Fatal(err)
	}
	want, got := make([]uint8, p2.Norm().OutputLen()), make([]uint8, p2.Norm().OutputLen())
	ConvTranspose2DReference(&p2, x, w, rq, want)
	ConvTranspose2D(pk2, x, rq, got)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("y[%d] = %d, want %d", i, got[i], want[i])
		}
	}
	if _, err := pk.ForInput(1, 3, 3, 300); err == nil {
		t.Fatal("input zero point 300 accepted")
	}
}
