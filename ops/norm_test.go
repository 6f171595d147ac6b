package ops

import (
	"fmt"
	"math"
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

func TestBatchNormHand(t *testing.T) {
	x := tensor.FromFloat32([]float32{1, 10, 2, 20, 3, 30, 4, 40}, 4, 2)
	rm := tensor.FromFloat32([]float32{0, 1})
	rv := tensor.FromFloat32([]float32{1, 2})
	y := BatchNorm(x, rm, rv, nil, nil, true, 0.1, 1e-5)
	// Channel 0: mean 2.5, biased var 1.25, unbiased 5/3.
	// Channel 1: mean 25, biased var 125, unbiased 500/3.
	s0, s1 := math.Sqrt(1.25+1e-5), math.Sqrt(125+1e-5)
	nnopCheckClose(t, "train y", y.F32(), []float64{
		-1.5 / s0, -15 / s1, -0.5 / s0, -5 / s1, 0.5 / s0, 5 / s1, 1.5 / s0, 15 / s1}, 1e-6)
	nnopCheckClose(t, "running mean", rm.F32(), []float64{0.25, 0.9 + 2.5}, 1e-6)
	nnopCheckClose(t, "running var", rv.F32(), []float64{0.9 + 0.1*5.0/3, 1.8 + 0.1*500.0/3}, 1e-6)

	// Eval: running statistics, affine.
	w := tensor.FromFloat32([]float32{2, -1})
	b := tensor.FromFloat32([]float32{0.5, 1})
	rm2 := tensor.FromFloat32([]float32{1, 2})
	rv2 := tensor.FromFloat32([]float32{4, 9})
	ye := BatchNorm(tensor.FromFloat32([]float32{3, 5}, 1, 2), rm2, rv2, w, b, false, 0.1, 0)
	nnopCheckClose(t, "eval y", ye.F32(), []float64{2*(3-1)/2.0 + 0.5, -(5-2)/3.0 + 1}, 1e-6)
	nnopCheckClose(t, "eval leaves running mean", rm2.F32(), []float64{1, 2}, 0)
}

// nnopNaiveBatchNorm normalizes x [n, c, s] per channel by the given or the
// batch statistics.
func nnopNaiveBatchNorm(x, w, b []float32, n, c, s int, eps float64) []float64 {
	out := make([]float64, len(x))
	for ch := 0; ch < c; ch++ {
		var vals []float64
		for i := 0; i < n; i++ {
			for j := 0; j < s; j++ {
				vals = append(vals, float64(x[(i*c+ch)*s+j]))
			}
		}
		var mu, vr float64
		for _, v := range vals {
			mu += v
		}
		mu /= float64(len(vals))
		for _, v := range vals {
			vr += (v - mu) * (v - mu)
		}
		vr /= float64(len(vals))
		for i := 0; i < n; i++ {
			for j := 0; j < s; j++ {
				k := (i*c+ch)*s + j
				out[k] = (float64(x[k])-mu)/math.Sqrt(vr+eps)*float64(w[ch]) + float64(b[ch])
			}
		}
	}
	return out
}

func TestBatchNormShapes(t *testing.T) {
	for ci, sh := range [][]int{{5, 3}, {3, 2, 4}, {2, 3, 2, 3}} {
		n, c, s := sh[0], sh[1], nnopProd(sh[2:])
		x, w, b := nnopRandT(uint64(ci+1), sh...), nnopRandT(uint64(ci+20), c), nnopRandT(uint64(ci+40), c)
		rm, rv := tensor.Zeros(c), tensor.Ones(c)
		y := BatchNorm(x, rm, rv, w, b, true, 0.1, 1e-5)
		nnopCheckShape(t, "BatchNorm", y, sh...)
		nnopCheckClose(t, fmt.Sprint("BatchNorm ", sh), y.F32(), nnopNaiveBatchNorm(x.F32(), w.F32(), b.F32(), n, c, s, 1e-5), 1e-5)
		train := func(in []*tensor.Tensor) *tensor.Tensor {
			return BatchNorm(in[0], rm, rv, in[1], in[2], true, 0.1, 1e-5)
		}
		nnopGradcheck(t, fmt.Sprint("BatchNorm train ", sh), train, x, w, b)
		nnopGradcheck(t, fmt.Sprint("BatchNorm train no affine ", sh), func(in []*tensor.Tensor) *tensor.Tensor {
			return BatchNorm(in[0], nil, nil, nil, nil, true, 0.1, 1e-5)
		}, x)
		rm2, rv2 := tensor.RandUniform(tensor.NewRNG(9), -0.5, 0.5, c), tensor.RandUniform(tensor.NewRNG(9), 0.5, 2, c)
		nnopGradcheck(t, fmt.Sprint("BatchNorm eval ", sh), func(in []*tensor.Tensor) *tensor.Tensor {
			return BatchNorm(in[0], rm2, rv2, in[1], in[2], false, 0.1, 1e-5)
		}, x, w, b)
	}
}

func TestBatchNormThreadsAndErrors(t *testing.T) {
	x, w, b := nnopRandT(1, 4, 5, 3, 3), nnopRandT(2, 5), nnopRandT(3, 5)
	nnopThreads(t, "BatchNorm", func() [][]float32 {
		for _, p := range []*tensor.Tensor{x, w, b} {
			p.SetGrad(nil)
		}
		rm, rv := tensor.Zeros(5), tensor.Ones(5)
		y := BatchNorm(x, rm, rv, w, b, true, 0.1, 1e-5)
		if err := nnopBackward(y); err != nil {
			t.Fatal(err)
		}
		return [][]float32{y.F32(), rm.F32(), rv.F32(), x.Grad().F32(), w.Grad().F32(), b.Grad().F32()}
	})
	nnopPanics(t, "more than 1 value per channel", func() { BatchNorm(tensor.Zeros(1, 3), nil, nil, nil, nil, true, 0.1, 1e-5) })
	nnopPanics(t, "needs runningMean", func() { BatchNorm(tensor.Zeros(2, 3), nil, nil, nil, nil, false, 0.1, 1e-5) })
	nnopPanics(t, "want [3]", func() { BatchNorm(tensor.Zeros(2, 3), nil, nil, tensor.Zeros(2), nil, true, 0.1, 1e-5) })
}

func TestLayerNorm(t *testing.T) {
	x := tensor.FromFloat32([]float32{1, 2, 3, 2, 2, 5}, 2, 3)
	y := LayerNorm(x, []int{3}, nil, nil, 1e-5)
	s0 := math.Sqrt(2.0/3 + 1e-5)
	s1 := math.Sqrt(2 + 1e-5) // mean 3, var (1+1+4)/3
	nnopCheckClose(t, "LayerNorm", y.F32(), []float64{-1 / s0, 0, 1 / s0, -1 / s1, -1 / s1, 2 / s1}, 1e-6)

	// Normalized over [3,4] of [2,3,4] with affine, against a naive loop.
	x3, w, b := nnopRandT(7, 2, 3, 4), nnopRandT(8, 3, 4), nnopRandT(9, 3, 4)
	y3 := LayerNorm(x3, []int{3, 4}, w, b, 1e-5)
	want := make([]float64, 24)
	for r := 0; r < 2; r++ {
		row := x3.F32()[r*12 : (r+1)*12]
		var mu, vr float64
		for _, v := range row {
			mu += float64(v) / 12
		}
		for _, v := range row {
			vr += (float64(v) - mu) * (float64(v) - mu) / 12
		}
		for j, v := range row {
			want[r*12+j] = (float64(v)-mu)/math.Sqrt(vr+1e-5)*float64(w.F32()[j]) + float64(b.F32()[j])
		}
	}
	nnopCheckClose(t, "LayerNorm 2-D shape", y3.F32(), want, 1e-5)
	nnopGradcheck(t, "LayerNorm", func(in []*tensor.Tensor) *tensor.Tensor {
		return LayerNorm(in[0], []int{3, 4}, in[1], in[2], 1e-5)
	}, x3, w, b)
	nnopGradcheck(t, "LayerNorm last dim", func(in []*tensor.Tensor) *tensor.Tensor {
		return LayerNorm(in[0], []int{4}, nil, nil, 1e-5)
	}, x3)
	nnopThreads(t, "LayerNorm", func() [][]float32 {
		for _, p := range []*tensor.Tensor{x3, w, b} {
			p.SetGrad(nil)
		}
		y := LayerNorm(x3, []int{3, 4}, w, b, 1e-5)
		if err := nnopBackward(y); err != nil {
			t.Fatal(err)
		}
		return [][]float32{y.F32(), x3.Grad().F32(), w.Grad().F32(), b.Grad().F32()}
	})
	nnopPanics(t, "not a trailing shape", func() { LayerNorm(x3, []int{3}, nil, nil, 1e-5) })
}

func TestGroupNorm(t *testing.T) {
	x, w, b := nnopRandT(11, 2, 6, 2, 2), nnopRandT(12, 6), nnopRandT(13, 6)
	y := GroupNorm(x, 3, w, b, 1e-5)
	want := make([]float64, x.Numel())
	xv := x.F32()
	for n := 0; n < 2; n++ {
		for g := 0; g < 3; g++ {
			var mu, vr float64
			for j := 0; j < 8; j++ {
				mu += float64(xv[n*24+g*8+j]) / 8
			}
			for j := 0; j < 8; j++ {
				d := float64(xv[n*24+g*8+j]) - mu
				vr += d * d / 8
			}
			for j := 0; j < 8; j++ {
				ch := g*2 + j/4
				k := n*24 + g*8 + j
				want[k] = (float64(xv[k])-mu)/math.Sqrt(vr+1e-5)*float64(w.F32()[ch]) + float64(b.F32()[ch])
			}
		}
	}
	nnopCheckClose(t, "GroupNorm", y.F32(), want, 1e-5)
	f := func(in []*tensor.Tensor) *tensor.Tensor { return GroupNorm(in[0], 3, in[1], in[2], 1e-5) }
	nnopGradcheck(t, "GroupNorm", f, x, w, b)
	nnopGradcheck(t, "GroupNorm 2-D", func(in []*tensor.Tensor) *tensor.Tensor {
		return GroupNorm(in[0], 2, in[1], nil, 1e-5)
	}, nnopRandT(14, 3, 6), w)
	// One group is LayerNorm over [C, H, W] (without affine).
	g1 := GroupNorm(x, 1, nil, nil, 1e-5)
	ln := LayerNorm(x, []int{6, 2, 2}, nil, nil, 1e-5)
	nnopCheckClose(t, "GroupNorm(1) == LayerNorm", g1.F32(), nnopF64(ln.F32()), 1e-6)
	nnopThreads(t, "GroupNorm", func() [][]float32 {
		for _, p := range []*tensor.Tensor{x, w, b} {
			p.SetGrad(nil)
		}
		y := GroupNorm(x, 3, w, b, 1e-5)
		if err := nnopBackward(y); err != nil {
			t.Fatal(err)
		}
		return [][]float32{y.F32(), x.Grad().F32(), w.Grad().F32(), b.Grad().F32()}
	})
	nnopPanics(t, "channel groups", func() { GroupNorm(x, 4, nil, nil, 1e-5) })
}

// nnopF64 widens float32 values.
func nnopF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// PyTorch references: xn = seq(24, 0.5, 2).reshape(2,3,2,2), w = seq(3, 1.5),
// b = seq(3, 2.5), rm = seq(3, 0.1)*0.2, rv = seq(3, 0.2).abs()+0.5,
// F.batch_norm(xn, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5),
// gradients of sum(y*seq(24, 1.1)).
func TestBatchNormTorch(t *testing.T) {
	x := nnopSeq(0.5, 2, 2, 3, 2, 2).SetRequiresGrad(true)
	w := nnopSeq(1.5, 1, 3).SetRequiresGrad(true)
	b := nnopSeq(2.5, 1, 3).SetRequiresGrad(true)
	rm := nnopSeq(0.1, 0.2, 3)
	rv := nnopSeq(0.2, 1, 3)
	for i, v := range rv.F32() {
		rv.F32()[i] = float32(math.Abs(float64(v))) + 0.5
	}
	y := BatchNorm(x, rm, rv, w, b, true, 0.1, 1e-5)
	nnopCheckClose(t, "y", y.F32(), []float64{1.0290542840957642, 1.67783522605896, 1.6982771158218384, 1.0807658433914185, 0.08189597725868225, -0.6646197438240051, -0.9675850868225098, -0.6845108270645142, -0.8906536102294922, -0.6229351162910461, -0.44721296429634094, -0.44613200426101685, 1.060009241104126, 0.0919589251279831, -0.7585681080818176, -1.0915555953979492, -0.6710761785507202, 0.0721031129360199, 0.9123404622077942, 1.4544590711593628, -0.44844213128089905, -0.6259891390800476, -0.8940961360931396, -1.1266682147979736}, 1e-6)
	nnopCheckClose(t, "running mean", rm.F32(), []float64{0.053777117282152176, 0.07506243884563446, 0.24561822414398193}, 1e-6)
	nnopCheckClose(t, "running var", rv.F32(), []float64{0.850178062915802, 1.3474200963974, 1.5165873765945435}, 1e-6)
	nnopBackwardSeq(t, y)
	nnopCheckClose(t, "dx", x.Grad().F32(), []float64{0.4568505585193634, 0.21663130819797516, -0.0618373267352581, -0.24758712947368622, -0.435733437538147, -0.2710902988910675, -0.026333719491958618, 0.1834235042333603, 0.13333357870578766, 0.10770444571971893, 0.04081011563539505, -0.0358879528939724, -0.2500309944152832, -0.2509653568267822, -0.07023104280233383, 0.2071698158979416, 0.18711377680301666, 0.25925329327583313, 0.162077397108078, -0.05871061608195305, -0.037539053708314896, -0.08696631342172623, -0.08610203862190247, -0.03535275161266327}, 1e-5)
	nnopCheckClose(t, "dw", w.Grad().F32(), []float64{5.13905668258667, 4.940052032470703, 4.45643424987793}, 1e-5)
	nnopCheckClose(t, "db", b.Grad().F32(), []float64{-0.18813753128051758, -0.764592170715332, 1.628969669342041}, 1e-5)
}

// PyTorch references: xg = seq(24, 0.4, 2).reshape(2,4,3), wg = seq(4, 0.6),
// bg = seq(4, 1.6), F.group_norm(xg, 2, wg, bg, 1e-5), gradients of
// sum(y*seq(24, 1.1)).
func TestGroupNormTorch(t *testing.T) {
	x := nnopSeq(0.4, 2, 2, 4, 3).SetRequiresGrad(true)
	w := nnopSeq(0.6, 1, 4).SetRequiresGrad(true)
	b := nnopSeq(1.6, 1, 4)
	y := GroupNorm(x, 2, w, b, 1e-5)
	nnopCheckClose(t, "y", y.F32(), []float64{1.0371173620224, 1.5292021036148071, 1.6102441549301147, 1.1596227884292603, 0.060396961867809296, -0.9928843975067139, -1.047452688217163, -0.8596646189689636, -0.2165183275938034, -0.3237905204296112, -0.05376095324754715, -0.014840534888207912, 2.017228126525879, 1.3200730085372925, 0.6602485179901123, -0.3660629689693451, -0.05495939403772354, 0.9536433815956116, 0.2604122459888458, 1.0134786367416382, 1.106029987335205, -0.3637256622314453, -0.8468693494796753, -1.2985187768936157}, 1e-6)
	nnopBackwardSeq(t, y)
	nnopCheckClose(t, "dx", x.Grad().F32(), []float64{0.44856345653533936, 0.09939552843570709, -0.14884090423583984, -0.1996179223060608, -0.21615225076675415, 0.01665198802947998, -0.2385902851819992, 0.037357378751039505, 0.2791082262992859, 0.09591427445411682, -0.024211794137954712, -0.14957773685455322, -0.13499265909194946, -0.22434601187705994, -0.1527523696422577, -0.26087573170661926, 0.18051959574222565, 0.5924472808837891, 0.44977009296417236, 0.20444810390472412, -0.13713501393795013, -0.3765726685523987, -0.2043643742799759, 0.0638536587357521}, 1e-5)
	nnopCheckClose(t, "dw", w.Grad().F32(), []float64{1.6854826211929321, 3.5158379077911377, 2.88759446144104, 4.503809928894043}, 1e-5)
}

func BenchmarkNorm(b *testing.B) {
	x := nnopRandT(1, 64, 32, 28, 28)
	w, bias := nnopRandT(2, 32), nnopRandT(3, 32)
	rm, rv := tensor.Zeros(32), tensor.Ones(32)
	b.Run("BatchNorm/train/64x32x28x28", func(b *testing.B) {
		b.SetBytes(int64(4 * x.Numel()))
		for b.Loop() {
			for _, p := range []*tensor.Tensor{x, w, bias} {
				p.SetGrad(nil)
			}
			if err := nnopBackward(BatchNorm(x, rm, rv, w, bias, true, 0.1, 1e-5)); err != nil {
				b.Fatal(err)
			}
		}
	})
	xl := nnopRandT(4, 64, 128, 256)
	wl, bl := nnopRandT(5, 256), nnopRandT(6, 256)
	b.Run("LayerNorm/train/64x128x256", func(b *testing.B) {
		b.SetBytes(int64(4 * xl.Numel()))
		for b.Loop() {
			for _, p := range []*tensor.Tensor{xl, wl, bl} {
				p.SetGrad(nil)
			}
			if err := nnopBackward(LayerNorm(xl, []int{256}, wl, bl, 1e-5)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
