package qconv

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/conv"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/internal/parallel"
)

// packRef packs w for p and computes the reference output, the two things
// every comparison against Reference starts from.
func packRef(t testing.TB, p Params, x []uint8, w []int8, rq *qgemm.Requant) (*Packed, []uint8) {
	t.Helper()
	pk, err := Pack(p, w)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]uint8, p.Norm().OutputLen())
	Reference(&p, x, w, rq, want)
	return pk, want
}

func randConv(r *rand.Rand, p Params, perChannelZP bool) ([]uint8, []int8, *qgemm.Requant) {
	q := p.Norm()
	x := make([]uint8, q.InputLen())
	for i := range x {
		x[i] = uint8(r.IntN(256))
	}
	w := make([]int8, q.WeightLen())
	for i := range w {
		w[i] = int8(r.IntN(256) - 128)
	}
	rq := &qgemm.Requant{Bias: make([]int32, q.OutC), Multiplier: make([]float32, q.OutC), ZeroPoint: int32(r.IntN(256)), Min: 0, Max: 255}
	for c := range rq.Bias {
		rq.Bias[c] = int32(r.IntN(40001) - 20000)
		rq.Multiplier[c] = r.Float32() * 2e-4
	}
	if r.IntN(4) == 0 {
		rq.Min = rq.ZeroPoint // fused ReLU
	}
	return x, w, rq
}

func forEachTier(t *testing.T, f func(t *testing.T)) {
	for _, l := range cpu.Levels() {
		if l == cpu.AVX512 {
			continue
		}
		t.Run(l.String(), func(t *testing.T) {
			old := cpu.SetMax(l)
			defer cpu.SetMax(old)
			f(t)
		})
	}
}

func TestConv2DMatchesReference(t *testing.T) {
	forEachTier(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		cases := []conv.Conv2DParams{
			{N: 1, C: 3, H: 9, W: 11, OutC: 5, KH: 3, KW: 3, PadH: 1, PadW: 1},
			{N: 2, C: 8, H: 7, W: 7, OutC: 16, KH: 1, KW: 1},
			{N: 1, C: 6, H: 10, W: 9, OutC: 4, KH: 3, KW: 2, StrideH: 2, StrideW: 2, PadH: 1},
			{N: 1, C: 4, H: 12, W: 12, OutC: 8, KH: 3, KW: 3, DilH: 2, DilW: 2, PadH: 2, PadW: 2, Groups: 2},
			{N: 1, C: 16, H: 19, W: 35, OutC: 16, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 16}, // depthwise
			{N: 2, C: 5, H: 8, W: 40, OutC: 5, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 5},
			{N: 1, C: 3, H: 13, W: 17, OutC: 3, KH: 5, KW: 5, PadH: 2, PadW: 2, Groups: 3},
			{N: 1, C: 4, H: 9, W: 33, OutC: 4, KH: 3, KW: 7, PadW: 3, Groups: 4},
			{N: 1, C: 2, H: 6, W: 16, OutC: 2, KH: 3, KW: 3, DilH: 2, DilW: 3, PadH: 2, PadW: 3, Groups: 2},
			{N: 1, C: 3, H: 5, W: 5, OutC: 3, KH: 1, KW: 9, PadW: 4, Groups: 3},  // too wide for the asm path
			{N: 2, C: 32, H: 9, W: 21, OutC: 48, KH: 3, KW: 3, PadH: 1, PadW: 1}, // 16x16 block transposes with overlapping tails
			{N: 1, C: 16, H: 4, W: 16, OutC: 16, KH: 1, KW: 1},
			{N: 1, C: 24, H: 7, W: 19, OutC: 40, KH: 3, KW: 3, PadH: 1, PadW: 1},                         // block transposes plus a channel remainder
			{N: 2, C: 40, H: 5, W: 17, OutC: 24, KH: 1, KW: 1},                                           // outputs of 24 channels back to NCHW
			{N: 1, C: 3, H: 20, W: 37, OutC: 16, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}, // an image stem: pixels of 3 channels padded to 4
			{N: 2, C: 1, H: 9, W: 18, OutC: 8, KH: 3, KW: 3, PadH: 1, PadW: 1},
			{N: 1, C: 2, H: 6, W: 7, OutC: 40, KH: 2, KW: 2, PadH: 1},
			{N: 1, C: 4, H: 7, W: 9, OutC: 33, KH: 3, KW: 3, PadW: 2},
			// Single pixels (squeeze-excite projections, convOnePixel):
			// channels short of a quadruple, one panel of 16, several of
			// 32 with a remainder.
			{N: 1, C: 200, H: 1, W: 1, OutC: 50, KH: 1, KW: 1},
			{N: 1, C: 50, H: 1, W: 1, OutC: 200, KH: 1, KW: 1},
			{N: 1, C: 5, H: 1, W: 1, OutC: 16, KH: 1, KW: 1},
			{N: 1, C: 22, H: 1, W: 1, OutC: 88, KH: 1, KW: 1},
			{N: 2, C: 6, H: 1, W: 1, OutC: 3, KH: 1, KW: 1},
			// Depthwise planes a few rows high, where some kernel rows of
			// every output row lie in the padding: the classifier's 5x5
			// on 2 and 3 rows, one row, strides and dilations, and a
			// padding taller than the kernel.
			{N: 1, C: 20, H: 2, W: 96, OutC: 20, KH: 5, KW: 5, PadH: 2, PadW: 2, Groups: 20},
			{N: 1, C: 9, H: 3, W: 40, OutC: 9, KH: 5, KW: 5, PadH: 2, PadW: 2, Groups: 9},
			{N: 2, C: 4, H: 1, W: 33, OutC: 4, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 4},
			{N: 1, C: 6, H: 5, W: 21, OutC: 6, KH: 5, KW: 3, StrideH: 2, PadH: 2, PadW: 1, Groups: 6},
			{N: 1, C: 3, H: 6, W: 18, OutC: 3, KH: 3, KW: 3, DilH: 2, PadH: 2, PadW: 1, Groups: 3},
			{N: 1, C: 2, H: 4, W: 16, OutC: 2, KH: 3, KW: 3, PadH: 4, PadW: 1, Groups: 2},
		}
		for i, g := range cases {
			for _, perCh := range []bool{false, true} {
				p := Params{Conv2DParams: g, InZeroPoint: int32(r.IntN(256))}
				if perCh {
					p.WeightZeroPoints = make([]int32, g.OutC)
					for c := range p.WeightZeroPoints {
						p.WeightZeroPoints[c] = int32(r.IntN(7) - 3)
					}
				} else {
					p.WeightZeroPoints = []int32{0}
				}
				x, w, rq := randConv(r, p, perCh)
				pk, want := packRef(t, p, x, w, rq)
				n := len(want)
				got := make([]uint8, n+4)
				copy(got[n:], []uint8{9, 9, 9, 9})
				Conv2D(pk, x, rq, got)
				for j := 0; j < n; j++ {
					if got[j] != want[j] {
						t.Fatalf("case %d (%+v, per-channel zp %v): y[%d] = %d, want %d", i, g, perCh, j, got[j], want[j])
					}
				}
				if got[n] != 9 || got[n+3] != 9 {
					t.Fatalf("case %d: wrote past the output", i)
				}
			}
		}
	})
}

func TestConv2DThreadIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 9))
	for _, g := range []conv.Conv2DParams{
		{N: 2, C: 16, H: 14, W: 14, OutC: 32, KH: 3, KW: 3, PadH: 1, PadW: 1},
		{N: 2, C: 24, H: 14, W: 14, OutC: 24, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 24},
		// Large enough to run in parallel: padded rows, output row groups
		// with overlapping 16-pixel transposes, depthwise planes.
		{N: 2, C: 48, H: 30, W: 30, OutC: 64, KH: 3, KW: 3, PadH: 1, PadW: 1},
		{N: 1, C: 256, H: 21, W: 21, OutC: 160, KH: 1, KW: 1},
		{N: 1, C: 128, H: 9, W: 100, OutC: 64, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
		{N: 1, C: 160, H: 7, W: 7, OutC: 320, KH: 3, KW: 3, PadH: 1, PadW: 1},
		{N: 2, C: 144, H: 30, W: 30, OutC: 144, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 144},
		{N: 1, C: 200, H: 2, W: 96, OutC: 200, KH: 5, KW: 5, PadH: 2, PadW: 2, Groups: 200},            // runs of short planes
		{N: 1, C: 3, H: 200, W: 120, OutC: 16, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}, // an image stem
		{N: 2, C: 64, H: 33, W: 37, OutC: 150, KH: 1, KW: 1},                                           // NCHW pointwise: pieces of chunks, a partial last chunk
	} {
		p := Params{Conv2DParams: g, InZeroPoint: 3, WeightZeroPoints: []int32{0}}
		x, w, rq := randConv(r, p, false)
		pk, want := packRef(t, p, x, w, rq)
		outs := [][]uint8{want}
		for _, th := range []int{1, 2, 3} {
			old := parallel.SetNumThreads(th)
			y := make([]uint8, p.Norm().OutputLen())
			Conv2D(pk, x, rq, y)
			parallel.SetNumThreads(old)
			outs = append(outs, y)
		}
		for i := range outs[0] {
			if outs[1][i] != outs[0][i] || outs[2][i] != outs[0][i] || outs[3][i] != outs[0][i] {
				t.Fatalf("%+v: output %d at 1, 2, 3 threads = %d, %d, %d, want %d", g, i, outs[1][i], outs[2][i], outs[3][i], outs[0][i])
			}
		}
	}
}

// TestPointwiseNCHW checks the NCHW pointwise path against Reference:
// input channels on and off multiples of 4 (a zero-padded last quadruple),
// output channels on and off multiples of the 4-channel block, planes of
// whole 64-pixel chunks, a partial last chunk, a plane under one chunk and
// pixel counts off multiples of 16 (the interleave's scalar tail), batches
// of 2, narrowed output ranges and saturating multipliers, 1 and 2
// threads, every tier.
func TestPointwiseNCHW(t *testing.T) {
	forEachTier(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		for _, g := range []conv.Conv2DParams{
			{N: 1, C: 8, H: 24, W: 96, OutC: 8, KH: 1, KW: 1},
			{N: 2, C: 7, H: 5, W: 13, OutC: 9, KH: 1, KW: 1},
			{N: 1, C: 1, H: 4, W: 4, OutC: 3, KH: 1, KW: 1},
			{N: 1, C: 200, H: 2, W: 96, OutC: 32, KH: 1, KW: 1},
			{N: 1, C: 32, H: 2, W: 96, OutC: 200, KH: 1, KW: 1},
			{N: 2, C: 13, H: 9, W: 15, OutC: 6, KH: 1, KW: 1},
			{N: 1, C: 4, H: 1, W: 64, OutC: 5, KH: 1, KW: 1},
		} {
			for _, narrow := range []bool{false, true} {
				p := Params{Conv2DParams: g, InZeroPoint: int32(r.IntN(256)), WeightZeroPoints: []int32{0}}
				x, w, rq := randConv(r, p, false)
				if narrow {
					rq.ZeroPoint, rq.Min, rq.Max = 100+int32(r.IntN(21)), 20, 230
					rq.Multiplier[0] *= 50 // saturate one channel
				}
				pk, want := packRef(t, p, x, w, rq)
				n := len(want)
				for _, th := range []int{1, 2} {
					old := parallel.SetNumThreads(th)
					got := make([]uint8, n+1)
					got[n] = 7
					Conv2D(pk, x, rq, got)
					parallel.SetNumThreads(old)
					for j := 0; j < n; j++ {
						if got[j] != want[j] {
							t.Fatalf("%+v narrow %v, %d threads: y[%d] = %d, want %d", g, narrow, th, j, got[j], want[j])
						}
					}
					if got[n] != 7 {
						t.Fatalf("%+v: wrote past the output", g)
					}
				}
			}
		}
	})
}

func TestPackErrors(t *testing.T) {
	p := Params{Conv2DParams: conv.Conv2DParams{N: 1, C: 3, H: 4, W: 4, OutC: 2, KH: 3, KW: 3}, WeightZeroPoints: []int32{0, 0, 0}}
	if _, err := Pack(p, make([]int8, 54)); err == nil {
		t.Fatal("3 zero points for 2 channels accepted")
	}
	p.WeightZeroPoints = []int32{0}
	if _, err := Pack(p, make([]int8, 5)); err == nil {
		t.Fatal("short weights accepted")
	}
}

// BenchmarkQConv2D reports GOP/s (2 per multiply-add) at batch 1.
func BenchmarkQConv2D(b *testing.B) {
	shapes := []struct {
		name string
		g    conv.Conv2DParams
	}{
		{"3x3_64x64_56", conv.Conv2DParams{N: 1, C: 64, H: 56, W: 56, OutC: 64, KH: 3, KW: 3, PadH: 1, PadW: 1}},
		{"3x3_128x128_56", conv.Conv2DParams{N: 1, C: 128, H: 56, W: 56, OutC: 128, KH: 3, KW: 3, PadH: 1, PadW: 1}},
		{"3x3_128x128_28", conv.Conv2DParams{N: 1, C: 128, H: 28, W: 28, OutC: 128, KH: 3, KW: 3, PadH: 1, PadW: 1}},
		{"1x1_256x256_14", conv.Conv2DParams{N: 1, C: 256, H: 14, W: 14, OutC: 256, KH: 1, KW: 1}},
		{"dw3x3_144_56", conv.Conv2DParams{N: 1, C: 144, H: 56, W: 56, OutC: 144, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 144}},
		// Mobile-network shapes, where layout and per-call costs dominate:
		// an image stem, a thin pointwise layer, a depthwise layer on two
		// rows, a squeeze-excite projection on one pixel.
		{"stem3x3s2_3to16_256", conv.Conv2DParams{N: 1, C: 3, H: 256, W: 256, OutC: 16, KH: 3, KW: 3, PadH: 1, PadW: 1, StrideH: 2, StrideW: 2}},
		{"stem3x3s2_3to8_48x192", conv.Conv2DParams{N: 1, C: 3, H: 48, W: 192, OutC: 8, KH: 3, KW: 3, PadH: 1, PadW: 1, StrideH: 2, StrideW: 2}},
		{"1x1_8to8_24x96", conv.Conv2DParams{N: 1, C: 8, H: 24, W: 96, OutC: 8, KH: 1, KW: 1}},
		{"dw5x5_200_2x96", conv.Conv2DParams{N: 1, C: 200, H: 2, W: 96, OutC: 200, KH: 5, KW: 5, PadH: 2, PadW: 2, Groups: 200}},
		{"se_200to50_1x1", conv.Conv2DParams{N: 1, C: 200, H: 1, W: 1, OutC: 50, KH: 1, KW: 1}},
		{"dw3x3s2_16_256", conv.Conv2DParams{N: 1, C: 16, H: 256, W: 256, OutC: 16, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 16}},
		{"dw3x3_16_128", conv.Conv2DParams{N: 1, C: 16, H: 128, W: 128, OutC: 16, KH: 3, KW: 3, PadH: 1, PadW: 1, Groups: 16}},
		{"1x1_32to200_2x96", conv.Conv2DParams{N: 1, C: 32, H: 2, W: 96, OutC: 200, KH: 1, KW: 1}},
		{"1x1_200to32_2x96", conv.Conv2DParams{N: 1, C: 200, H: 2, W: 96, OutC: 32, KH: 1, KW: 1}},
		{"1x1_16to88_3x96", conv.Conv2DParams{N: 1, C: 16, H: 3, W: 96, OutC: 88, KH: 1, KW: 1}},
		{"1x1_88to16_3x96", conv.Conv2DParams{N: 1, C: 88, H: 3, W: 96, OutC: 16, KH: 1, KW: 1}},
		{"1x1_64to64_64x64", conv.Conv2DParams{N: 1, C: 64, H: 64, W: 64, OutC: 64, KH: 1, KW: 1}},
	}
	for _, th := range []int{1, 2} {
		for _, s := range shapes {
			r := rand.New(rand.NewPCG(1, 1))
			p := Params{Conv2DParams: s.g, InZeroPoint: 5, WeightZeroPoints: []int32{0}}
			x, w, rq := randConv(r, p, false)
			pk, _ := Pack(p, w)
			y := make([]uint8, p.Norm().OutputLen())
			q := p.Norm()
			macs := float64(q.OutputLen()) * float64(q.C/q.Groups*q.KH*q.KW)
			b.Run(fmt.Sprintf("t%d/%s", th, s.name), func(b *testing.B) {
				old := parallel.SetNumThreads(th)
				defer parallel.SetNumThreads(old)
				for i := 0; i < b.N; i++ {
					Conv2D(pk, x, rq, y)
				}
				b.ReportMetric(2*macs*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
			})
		}
	}
}

func TestTransposeBlock(t *testing.T) {
	if transposeBlock == nil {
		return // no assembly transpose in this build; the scalar path is tested by TestConv2DMatchesReference
	}
	src := make([]byte, 20*37)
	for i := range src {
		src[i] = byte(i * 7)
	}
	dst := make([]byte, 16*29+5)
	transposeBlock(&src[3], 37, &dst[0], 29)
	for i := 0; i < 16; i++ {
		for j := 0; j < 16; j++ {
			if dst[j*29+i] != src[3+i*37+j] {
				t.Fatalf("dst[%d][%d] = %d, want %d", j, i, dst[j*29+i], src[3+i*37+j])
			}
		}
	}
	for j := 0; j < 16; j++ {
		for i := 16; i < 29 && j*29+i < len(dst); i++ {
			if dst[j*29+i] != 0 {
				t.Fatalf("wrote outside the block at row %d col %d", j, i)
			}
		}
	}
}

// TestNHWCToNCHW checks the layout transpose against a naive loop for
// channel counts on and off multiples of 16 (overlapping block
// transposes), of 8 to 15 (8x8 transposes plus a scalar remainder) and
// under 8, pixels packed or further apart than their channels, pixel
// ranges shorter and longer than a block, and every tier; bytes outside
// [p0, p1) stay untouched.
func TestNHWCToNCHW(t *testing.T) {
	forEachTier(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, c := range []int{1, 3, 8, 12, 15, 16, 17, 24, 32, 40, 47, 64} {
			for _, m := range []int{1, 7, 15, 16, 17, 40, 100} {
				for _, ld := range []int{c, c + 5} {
					src := make([]uint8, m*ld)
					for i := range src {
						src[i] = uint8(r.IntN(256))
					}
					for _, rg := range [][2]int{{0, m}, {m / 3, m}, {0, m / 2}} {
						p0, p1 := rg[0], rg[1]
						dst := make([]uint8, c*m)
						fill(dst, 7)
						nhwcToNCHW(src, ld, m, c, dst, p0, p1)
						for ch := 0; ch < c; ch++ {
							for p := 0; p < m; p++ {
								want := uint8(7)
								if p >= p0 && p < p1 {
									want = src[p*ld+ch]
								}
								if got := dst[ch*m+p]; got != want {
									t.Fatalf("c %d ld %d m %d [%d,%d): dst[%d][%d] = %d, want %d", c, ld, m, p0, p1, ch, p, got, want)
								}
							}
						}
					}
				}
			}
		}
	})
}

// TestToPixels4 checks the 4-byte pixels of 1-4 channel planes (the
// padded NHWC input of a stem convolution, the tails of the pointwise
// interleave) against the definition, on every tier: the vector rows of
// 16 pixels, the scalar tails, rows shorter than 16, and planes longer
// than the row (hw > w), with the channels past c holding the pad byte.
func TestToPixels4(t *testing.T) {
	forEachTier(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(4, 4))
		for _, c := range []int{1, 2, 3, 4} {
			for _, w := range []int{1, 7, 15, 16, 17, 33, 48, 100} {
				hw := w + r.IntN(5)
				src := make([]uint8, (c-1)*hw+w)
				for i := range src {
					src[i] = uint8(r.IntN(256))
				}
				za := uint8(r.IntN(256))
				dst := make([]uint8, 4*w+4)
				dst[4*w] = 0x5a
				toPixels4(dst, src, hw, w, c, za)
				for j := 0; j < w; j++ {
					for q := 0; q < 4; q++ {
						want := za
						if q < c {
							want = src[q*hw+j]
						}
						if dst[4*j+q] != want {
							t.Fatalf("c %d, w %d, hw %d: pixel %d byte %d = %d, want %d", c, w, hw, j, q, dst[4*j+q], want)
						}
					}
				}
				if dst[4*w] != 0x5a {
					t.Fatalf("c %d, w %d: wrote past the %d pixels", c, w, w)
				}
			}
		}
	})
}
