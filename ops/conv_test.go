package ops

import (
	"fmt"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/tensor"
)

// nnopNaiveConv2d is conv2d by its definition, in float64.
func nnopNaiveConv2d(x, w, b *tensor.Tensor, a ConvAttrs) ([]float64, []int) {
	xs, ws := x.Shape(), w.Shape()
	n, h, wd := xs[0], xs[2], xs[3]
	o, cg, kh, kw := ws[0], ws[1], ws[2], ws[3]
	s, d, g := a.Stride, a.Dilation, max(a.Groups, 1)
	for i := range s {
		s[i], d[i] = max(s[i], 1), max(d[i], 1)
	}
	oh := (h+2*a.Padding[0]-d[0]*(kh-1)-1)/s[0] + 1
	ow := (wd+2*a.Padding[1]-d[1]*(kw-1)-1)/s[1] + 1
	og := o / g
	out := make([]float64, n*o*oh*ow)
	for in := 0; in < n; in++ {
		for oc := 0; oc < o; oc++ {
			grp := oc / og
			for y := 0; y < oh; y++ {
				for xx := 0; xx < ow; xx++ {
					var sum float64
					if b != nil {
						sum = float64(b.F32()[oc])
					}
					for ic := 0; ic < cg; ic++ {
						for i := 0; i < kh; i++ {
							for j := 0; j < kw; j++ {
								iy, ix := y*s[0]-a.Padding[0]+i*d[0], xx*s[1]-a.Padding[1]+j*d[1]
								if iy < 0 || iy >= h || ix < 0 || ix >= wd {
									continue
								}
								sum += x.At(in, grp*cg+ic, iy, ix) * w.At(oc, ic, i, j)
							}
						}
					}
					out[((in*o+oc)*oh+y)*ow+xx] = sum
				}
			}
		}
	}
	return out, []int{n, o, oh, ow}
}

// nnopNaiveConvT2d is conv_transpose2d by scattering every input element
// through the kernel, in float64.
func nnopNaiveConvT2d(x, w, b *tensor.Tensor, a ConvTransposeAttrs) ([]float64, []int) {
	xs, ws := x.Shape(), w.Shape()
	n, c, h, wd := xs[0], xs[1], xs[2], xs[3]
	og, kh, kw := ws[1], ws[2], ws[3]
	s, d, g := a.Stride, a.Dilation, max(a.Groups, 1)
	for i := range s {
		s[i], d[i] = max(s[i], 1), max(d[i], 1)
	}
	o := og * g
	cg := c / g
	oh := (h-1)*s[0] - 2*a.Padding[0] + d[0]*(kh-1) + a.OutputPadding[0] + 1
	ow := (wd-1)*s[1] - 2*a.Padding[1] + d[1]*(kw-1) + a.OutputPadding[1] + 1
	out := make([]float64, n*o*oh*ow)
	for in := 0; in < n; in++ {
		for oc := 0; oc < o; oc++ {
			for k := 0; k < oh*ow; k++ {
				if b != nil {
					out[(in*o+oc)*oh*ow+k] = float64(b.F32()[oc])
				}
			}
		}
		for ic := 0; ic < c; ic++ {
			grp := ic / cg
			for y := 0; y < h; y++ {
				for xx := 0; xx < wd; xx++ {
					for j := 0; j < og; j++ {
						for ki := 0; ki < kh; ki++ {
							for kj := 0; kj < kw; kj++ {
								ty, tx := y*s[0]-a.Padding[0]+ki*d[0], xx*s[1]-a.Padding[1]+kj*d[1]
								if ty < 0 || ty >= oh || tx < 0 || tx >= ow {
									continue
								}
								oc := grp*og + j
								out[((in*o+oc)*oh+ty)*ow+tx] += x.At(in, ic, y, xx) * w.At(ic, j, ki, kj)
							}
						}
					}
				}
			}
		}
	}
	return out, []int{n, o, oh, ow}
}

func TestConv2dHand(t *testing.T) {
	// 1x1x3x3 input, 2x2 kernel of ones plus bias 0.5, padding 0.
	x := tensor.FromFloat32([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9}, 1, 1, 3, 3)
	w := tensor.Ones(1, 1, 2, 2)
	b := tensor.FromFloat32([]float32{0.5})
	y := Conv2d(x, w, b, ConvAttrs{})
	nnopCheckShape(t, "Conv2d", y, 1, 1, 2, 2)
	nnopCheckClose(t, "Conv2d", y.F32(), []float64{12.5, 16.5, 24.5, 28.5}, 0)
	// Stride 2, padding 1: windows at (-1,-1), (-1,1), (1,-1), (1,1).
	y = Conv2d(x, w, nil, ConvAttrs{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}})
	nnopCheckClose(t, "Conv2d strided", y.F32(), []float64{1, 5, 11, 28}, 0)
	// Unbatched input.
	y = Conv2d(x.Reshape(1, 3, 3), w, b, ConvAttrs{})
	nnopCheckShape(t, "Conv2d unbatched", y, 1, 2, 2)
}

func TestConv2dAgainstNaive(t *testing.T) {
	cases := []struct {
		x, w []int
		a    ConvAttrs
	}{
		{[]int{2, 3, 5, 5}, []int{4, 3, 3, 3}, ConvAttrs{}},
		{[]int{1, 2, 6, 5}, []int{3, 2, 3, 2}, ConvAttrs{Stride: [2]int{2, 1}, Padding: [2]int{1, 2}}},
		{[]int{2, 4, 7, 7}, []int{6, 2, 3, 3}, ConvAttrs{Dilation: [2]int{2, 1}, Padding: [2]int{2, 1}, Groups: 2}},
		{[]int{1, 3, 5, 4}, []int{3, 1, 3, 3}, ConvAttrs{Padding: [2]int{1, 1}, Groups: 3, Stride: [2]int{2, 2}}},
		{[]int{2, 3, 4, 4}, []int{5, 3, 1, 1}, ConvAttrs{}},
	}
	for ci, c := range cases {
		x, w, b := nnopRandT(uint64(ci+1), c.x...), nnopRandT(uint64(ci+30), c.w...), nnopRandT(uint64(ci+60), c.w[0])
		want, shape := nnopNaiveConv2d(x, w, b, c.a)
		y := Conv2d(x, w, b, c.a)
		what := fmt.Sprint("Conv2d ", c.x, c.w, c.a)
		nnopCheckShape(t, what, y, shape...)
		nnopCheckClose(t, what, y.F32(), want, 1e-5)
		nnopGradcheck(t, what, func(in []*tensor.Tensor) *tensor.Tensor { return Conv2d(in[0], in[1], in[2], c.a) }, x, w, b)
	}
	x, w := nnopRandT(5, 3, 4, 4), nnopRandT(6, 2, 3, 2, 2)
	nnopGradcheck(t, "Conv2d unbatched no bias", func(in []*tensor.Tensor) *tensor.Tensor {
		return Conv2d(in[0], in[1], nil, ConvAttrs{Padding: [2]int{1, 0}})
	}, x, w)
}

func TestConv1d(t *testing.T) {
	x, w, b := nnopRandT(1, 2, 4, 9), nnopRandT(2, 6, 2, 3), nnopRandT(3, 6)
	a := Conv1dAttrs{Stride: 2, Padding: 1, Dilation: 2, Groups: 2}
	y := Conv1d(x, w, b, a)
	// The same convolution as Conv2d with H = 1.
	want, _ := nnopNaiveConv2d(x.Reshape(2, 4, 1, 9), w.Reshape(6, 2, 1, 3), b,
		ConvAttrs{Stride: [2]int{1, 2}, Padding: [2]int{0, 1}, Dilation: [2]int{1, 2}, Groups: 2})
	nnopCheckShape(t, "Conv1d", y, 2, 6, 4)
	nnopCheckClose(t, "Conv1d", y.F32(), want, 1e-5)
	nnopGradcheck(t, "Conv1d", func(in []*tensor.Tensor) *tensor.Tensor { return Conv1d(in[0], in[1], in[2], a) }, x, w, b)
	yu := Conv1d(tensor.FromFloat32(x.F32()[:36], 4, 9), w, b, a)
	nnopCheckShape(t, "Conv1d unbatched", yu, 6, 4)
	nnopCheckClose(t, "Conv1d unbatched", yu.F32(), want[:24], 1e-5)
}

func TestConvTranspose2d(t *testing.T) {
	// Hand: 1x1x2x2 input, 2x2 kernel of ones, stride 2: each input value
	// fills its own 2x2 block.
	x := tensor.FromFloat32([]float32{1, 2, 3, 4}, 1, 1, 2, 2)
	y := ConvTranspose2d(x, tensor.Ones(1, 1, 2, 2), nil, ConvTransposeAttrs{Stride: [2]int{2, 2}})
	nnopCheckShape(t, "ConvTranspose2d hand", y, 1, 1, 4, 4)
	nnopCheckClose(t, "ConvTranspose2d hand", y.F32(), []float64{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, 0)

	cases := []struct {
		x, w []int
		a    ConvTransposeAttrs
	}{
		{[]int{2, 3, 3, 3}, []int{3, 2, 3, 3}, ConvTransposeAttrs{}},
		{[]int{1, 2, 3, 4}, []int{2, 3, 3, 2}, ConvTransposeAttrs{Stride: [2]int{2, 3}, Padding: [2]int{1, 0}, OutputPadding: [2]int{1, 2}}},
		{[]int{2, 4, 3, 3}, []int{4, 1, 2, 3}, ConvTransposeAttrs{Stride: [2]int{2, 1}, Dilation: [2]int{1, 2}, Groups: 2, Padding: [2]int{0, 1}}},
		{[]int{1, 3, 4, 3}, []int{3, 1, 3, 3}, ConvTransposeAttrs{Groups: 3, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}},
	}
	for ci, c := range cases {
		g := max(c.a.Groups, 1)
		x, w, b := nnopRandT(uint64(ci+1), c.x...), nnopRandT(uint64(ci+30), c.w...), nnopRandT(uint64(ci+60), c.w[1]*g)
		want, shape := nnopNaiveConvT2d(x, w, b, c.a)
		y := ConvTranspose2d(x, w, b, c.a)
		what := fmt.Sprint("ConvTranspose2d ", c.x, c.w, c.a)
		nnopCheckShape(t, what, y, shape...)
		nnopCheckClose(t, what, y.F32(), want, 1e-5)
		nnopGradcheck(t, what, func(in []*tensor.Tensor) *tensor.Tensor { return ConvTranspose2d(in[0], in[1], in[2], c.a) }, x, w, b)
	}
}

func TestConvThreadsAndErrors(t *testing.T) {
	x, w, b := nnopRandT(1, 3, 4, 6, 6), nnopRandT(2, 6, 2, 3, 3), nnopRandT(3, 6)
	nnopThreads(t, "Conv2d", func() [][]float32 {
		for _, p := range []*tensor.Tensor{x, w, b} {
			p.SetGrad(nil)
		}
		y := Conv2d(x, w, b, ConvAttrs{Padding: [2]int{1, 1}, Groups: 2})
		if err := nnopBackward(y); err != nil {
			t.Fatal(err)
		}
		return [][]float32{y.F32(), x.Grad().F32(), w.Grad().F32(), b.Grad().F32()}
	})
	nnopPanics(t, "does not fit input", func() { Conv2d(tensor.Zeros(1, 4, 5, 5), tensor.Zeros(2, 3, 3, 3), nil, ConvAttrs{}) })
	nnopPanics(t, "smaller than the dilated kernel", func() { Conv2d(tensor.Zeros(1, 1, 2, 2), tensor.Zeros(1, 1, 3, 3), nil, ConvAttrs{}) })
	nnopPanics(t, "bias", func() { Conv2d(tensor.Zeros(1, 1, 3, 3), tensor.Zeros(2, 1, 3, 3), tensor.Zeros(3), ConvAttrs{}) })
	nnopPanics(t, "want input", func() { Conv2d(tensor.Zeros(1, 3, 3), tensor.Zeros(2, 1, 3), nil, ConvAttrs{}) })
	nnopPanics(t, "ConvTranspose2d", func() {
		ConvTranspose2d(tensor.Zeros(1, 1, 3, 3), tensor.Zeros(1, 1, 3, 3), nil, ConvTransposeAttrs{OutputPadding: [2]int{1, 0}})
	})
}

func BenchmarkConv2d(b *testing.B) {
	cases := []struct {
		name string
		x, w []int
		a    ConvAttrs
	}{
		{"mnist_5x5", []int{64, 1, 28, 28}, []int{32, 1, 5, 5}, ConvAttrs{Padding: [2]int{2, 2}}},
		{"3x3_64ch", []int{8, 64, 28, 28}, []int{64, 64, 3, 3}, ConvAttrs{Padding: [2]int{1, 1}}},
		{"depthwise_3x3", []int{8, 128, 28, 28}, []int{128, 1, 3, 3}, ConvAttrs{Padding: [2]int{1, 1}, Groups: 128}},
	}
	for _, c := range cases {
		x, w, bias := nnopRandT(1, c.x...), nnopRandT(2, c.w...), nnopRandT(3, c.w[0])
		var y *tensor.Tensor
		autograd.NoGrad(func() { y = Conv2d(x, w, bias, c.a) })
		flops := 2 * float64(y.Numel()*c.w[1]*c.w[2]*c.w[3])
		b.Run("forward/"+c.name, func(b *testing.B) {
			for b.Loop() {
				autograd.NoGrad(func() { Conv2d(x, w, bias, c.a) })
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run("train/"+c.name, func(b *testing.B) {
			for b.Loop() {
				for _, p := range []*tensor.Tensor{x, w, bias} {
					p.SetGrad(nil)
				}
				if err := nnopBackward(Conv2d(x, w, bias, c.a)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(3*flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
