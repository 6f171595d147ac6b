package quantized

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// convTransposeScatter is an independent statement of ConvTranspose2d:
// every input pixel scatters (x - zx) * (w - zw) onto the outputs its taps
// reach; then bias and requantization as documented.
func convTransposeScatter(x, w, bias *tensor.Tensor, a ops.ConvTransposeAttrs, scale float32, zp int32, relu bool) []int32 {
	xs, ws := x.Shape(), w.Shape()
	n, c, h, wd := xs[0], xs[1], xs[2], xs[3]
	g := max(a.Groups, 1)
	opg, kh, kw := ws[1], ws[2], ws[3]
	s, p, op, d := a.Stride, a.Padding, a.OutputPadding, a.Dilation
	for i := range s {
		s[i], d[i] = max(s[i], 1), max(d[i], 1)
	}
	oh := (h-1)*s[0] - 2*p[0] + d[0]*(kh-1) + op[0] + 1
	ow := (wd-1)*s[1] - 2*p[1] + d[1]*(kw-1) + op[1] + 1
	outC := opg * g
	xq, wq := x.QParams(), w.QParams()
	xv, wv := codes(x), make([]int32, w.Numel())
	for i, v := range w.I8() {
		wv[i] = int32(v)
	}
	wScale := func(oc int) (float32, int32) {
		if wq.Scheme.PerChannel() {
			return wq.Scale[oc%opg], wq.ZeroPoint[oc%opg]
		}
		return wq.Scale[0], wq.ZeroPoint[0]
	}
	acc := make([]int64, n*outC*oh*ow)
	for b := 0; b < n; b++ {
		for ic := 0; ic < c; ic++ {
			grp := ic / (c / g)
			for ih := 0; ih < h; ih++ {
				for iw := 0; iw < wd; iw++ {
					xv0 := int64(xv[((b*c+ic)*h+ih)*wd+iw] - xq.ZeroPoint[0])
					for o := 0; o < opg; o++ {
						oc := grp*opg + o
						_, zw := wScale(oc)
						for i := 0; i < kh; i++ {
							for j := 0; j < kw; j++ {
								y, z := ih*s[0]-p[0]+i*d[0], iw*s[1]-p[1]+j*d[1]
								if y < 0 || y >= oh || z < 0 || z >= ow {
									continue
								}
								acc[((b*outC+oc)*oh+y)*ow+z] += xv0 * int64(wv[((ic*opg+o)*kh+i)*kw+j]-zw)
							}
						}
					}
				}
			}
		}
	}
	lo, hi := dtypeRange(x.DType())
	if relu {
		lo = zp
	}
	out := make([]int32, len(acc))
	for i, v := range acc {
		oc := (i / (oh * ow)) % outC
		sw, _ := wScale(oc)
		if bias != nil {
			v += int64(qmath.Quantize(bias.F32()[oc], float32(xq.Scale[0]*sw), 0, math.MinInt32, math.MaxInt32))
		}
		out[i] = qmath.Requantize(int32(v), qmath.Multiplier(xq.Scale[0], sw, scale), zp, lo, hi)
	}
	return out
}

func TestConvTranspose2d(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	cases := []struct {
		x, w []int
		a    ops.ConvTransposeAttrs
	}{
		{[]int{1, 4, 5, 6}, []int{4, 3, 3, 3}, ops.ConvTransposeAttrs{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}, OutputPadding: [2]int{1, 0}}},
		{[]int{2, 6, 4, 4}, []int{6, 2, 4, 4}, ops.ConvTransposeAttrs{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}, Groups: 3}},
		{[]int{1, 3, 5, 3}, []int{3, 5, 2, 3}, ops.ConvTransposeAttrs{Stride: [2]int{1, 3}, Dilation: [2]int{2, 1}, OutputPadding: [2]int{1, 2}}},
		{[]int{1, 8, 3, 3}, []int{8, 1, 3, 3}, ops.ConvTransposeAttrs{Stride: [2]int{2, 2}, Groups: 8}},
	}
	for _, dt := range dtypes {
		for i, c := range cases {
			for _, perCh := range []bool{false, true} {
				x := randQ(r, dt, 0.04, randZP(r, dt), c.x...)
				wf := tensor.RandUniform(tensor.NewRNG(uint64(i)), -1, 1, c.w...)
				var w *tensor.Tensor
				if perCh {
					sc, zs := make([]float32, c.w[1]), make([]int32, c.w[1])
					for j := range sc {
						sc[j], zs[j] = 0.004+0.002*float32(j), int32(j%3)-1
					}
					w = ops.QuantizePerChannel(wf, sc, zs, 1, tensor.QInt8)
				} else {
					w = ops.QuantizePerTensor(wf, 0.008, 2, tensor.QInt8)
				}
				outC := c.w[1] * max(c.a.Groups, 1)
				bias := tensor.RandUniform(tensor.NewRNG(7), -0.5, 0.5, outC)
				pk, err := PackConvTranspose2d(w, bias, c.a)
				if err != nil {
					t.Fatal(err)
				}
				so, zo := float32(0.03), randZP(r, dt)
				for _, relu := range []bool{false, true} {
					var y *tensor.Tensor
					if relu {
						y = ok(t)(ConvTranspose2dReLU(x, pk, so, zo))
					} else {
						y = ok(t)(ConvTranspose2d(x, pk, so, zo))
					}
					want := convTransposeScatter(x, w, bias, c.a, so, zo, relu)
					got := codes(y)
					if len(got) != len(want) {
						t.Fatalf("%v case %d: %d outputs, want %d (shape %v)", dt, i, len(got), len(want), y.Shape())
					}
					for j := range want {
						if got[j] != want[j] {
							t.Fatalf("%v case %d per-channel %v relu %v: y[%d] = %d, want %d", dt, i, perCh, relu, j, got[j], want[j])
						}
					}
					// Within a few steps of the float reference model.
					if !relu {
						fy := ops.ConvTranspose2d(ops.Dequantize(x), ops.Dequantize(w), bias, c.a)
						ref := codes(ops.QuantizePerTensor(fy, so, zo, dt))
						for j := range ref {
							if d := got[j] - ref[j]; d < -2 || d > 2 {
								t.Fatalf("%v case %d: y[%d] = %d, float model %d", dt, i, j, got[j], ref[j])
							}
						}
					}
				}
			}
		}
	}
}

func TestConvTranspose2dShapesAndErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	w := ops.QuantizePerTensor(tensor.RandUniform(tensor.NewRNG(3), -1, 1, 4, 2, 3, 3), 0.01, 0, tensor.QInt8)
	pk, err := PackConvTranspose2d(w, nil, ops.ConvTransposeAttrs{Stride: [2]int{2, 2}})
	if err != nil {
		t.Fatal(err)
	}
	y := ok(t)(ConvTranspose2d(randQ(r, tensor.QUInt8, 0.1, 5, 4, 3, 3), pk, 0.1, 3))
	if !tensor.SameShape(y.Shape(), []int{2, 7, 7}) {
		t.Fatalf("unbatched output shape %v", y.Shape())
	}
	if _, err := ConvTranspose2d(randQ(r, tensor.QUInt8, 0.1, 5, 1, 3, 3, 3), pk, 0.1, 3); err == nil {
		t.Error("3 input channels for a 4-channel weight accepted")
	}
	if _, err := PackConvTranspose2d(ops.QuantizePerTensor(tensor.Ones(4, 2, 3, 3), 0.1, 0, tensor.QUInt8), nil, ops.ConvTransposeAttrs{}); err == nil {
		t.Error("quint8 weight accepted")
	}
	if _, err := PackConvTranspose2d(w, tensor.Ones(3), ops.ConvTransposeAttrs{}); err == nil {
		t.Error("bias of 3 for 2 output channels accepted")
	}
	if _, err := PackConvTranspose2d(w, nil, ops.ConvTransposeAttrs{Stride: [2]int{1, 1}, OutputPadding: [2]int{1, 0}}); err == nil {
		t.Error("output padding >= stride accepted")
	}
	pc := ops.QuantizePerChannel(tensor.Ones(4, 2, 3, 3), []float32{0.1, 0.1, 0.1, 0.1}, []int32{0, 0, 0, 0}, 0, tensor.QInt8)
	if _, err := PackConvTranspose2d(pc, nil, ops.ConvTransposeAttrs{}); err == nil {
		t.Error("per-channel weight along axis 0 accepted")
	}
}
