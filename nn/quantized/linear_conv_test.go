package quantized

import (
	"fmt"
	"testing"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

func TestLinearMatchesReference(t *testing.T) {
	g := tensor.NewRNG(1)
	for _, pc := range []bool{false, true} {
		for _, relu := range []bool{false, true} {
			for _, sz := range [][3]int{{1, 7, 5}, {13, 33, 17}, {4, 64, 40}} {
				m, k, n := sz[0], sz[1], sz[2]
				name := fmt.Sprintf("pc=%v/relu=%v/%dx%dx%d", pc, relu, m, k, n)
				w := randW(t, g, pc, 0, n, k)
				b := tensor.RandUniform(g, -1, 1, n)
				x := randQ(g, 0.02, 120, 2, m, k)
				outS, outZ := float32(0.05), int32(100)
				var got *tensor.Tensor
				if relu {
					l, err := NewLinearReLU(w, b, outS, outZ)
					if err != nil {
						t.Fatal(err)
					}
					got = l.Forward(x)
				} else {
					l, err := NewLinear(w, b, outS, outZ)
					if err != nil {
						t.Fatal(err)
					}
					got = l.Forward(x)
				}
				ref := ops.Linear(deq(x), deq(w), b)
				if relu {
					ref = ops.ReLU(ref)
				}
				compareQ(t, name, got, quantizeOut(ref, outS, outZ), 0.99)
			}
		}
	}
}

func TestConv2dMatchesReference(t *testing.T) {
	g := tensor.NewRNG(2)
	cases := []struct {
		c, o, h, w, k int
		attrs         ops.ConvAttrs
	}{
		{3, 8, 9, 11, 3, ops.ConvAttrs{Padding: [2]int{1, 1}}},
		{8, 8, 7, 7, 3, ops.ConvAttrs{Groups: 8, Padding: [2]int{1, 1}}},
		{4, 6, 10, 8, 3, ops.ConvAttrs{Stride: [2]int{2, 1}, Dilation: [2]int{1, 2}, Groups: 2}},
		{16, 32, 6, 6, 1, ops.ConvAttrs{}},
	}
	for i, tc := range cases {
		for _, pc := range []bool{false, true} {
			for _, relu := range []bool{false, true} {
				name := fmt.Sprintf("case%d/pc=%v/relu=%v", i, pc, relu)
				groups := tc.attrs.Groups
				if groups == 0 {
					groups = 1
				}
				w := randW(t, g, pc, 0, tc.o, tc.c/groups, tc.k, tc.k)
				b := tensor.RandUniform(g, -1, 1, tc.o)
				x := randQ(g, 0.03, 128, 2, tc.c, tc.h, tc.w)
				outS, outZ := float32(0.04), int32(90)
				var got *tensor.Tensor
				if relu {
					c, err := NewConvReLU2d(w, b, tc.attrs, outS, outZ)
					if err != nil {
						t.Fatal(err)
					}
					got = c.Forward(x)
				} else {
					c, err := NewConv2d(w, b, tc.attrs, outS, outZ)
					if err != nil {
						t.Fatal(err)
					}
					got = c.Forward(x)
					// A second geometry and an unbatched input reuse the module.
					x2 := randQ(g, 0.01, 3, tc.c, tc.h+2, tc.w+1)
					ref2 := ops.Conv2d(tensor.Unsqueeze(deq(x2), 0), deq(w), b, tc.attrs)
					compareQ(t, name+"/unbatched", c.Forward(x2), quantizeOut(tensor.Squeeze(ref2, 0), outS, outZ), 0.99)
				}
				ref := ops.Conv2d(deq(x), deq(w), b, tc.attrs)
				if relu {
					ref = ops.ReLU(ref)
				}
				compareQ(t, name, got, quantizeOut(ref, outS, outZ), 0.99)
			}
		}
	}
}

func TestConv1dMatchesReference(t *testing.T) {
	g := tensor.NewRNG(3)
	attrs := ops.Conv1dAttrs{Stride: 2, Padding: 1, Dilation: 1, Groups: 1}
	for _, relu := range []bool{false, true} {
		w := randW(t, g, true, 0, 6, 4, 3)
		b := tensor.RandUniform(g, -1, 1, 6)
		x := randQ(g, 0.05, 110, 3, 4, 19)
		var got *tensor.Tensor
		if relu {
			c, err := NewConvReLU1d(w, b, attrs, 0.06, 70)
			if err != nil {
				t.Fatal(err)
			}
			got = c.Forward(x)
		} else {
			c, err := NewConv1d(w, b, attrs, 0.06, 70)
			if err != nil {
				t.Fatal(err)
			}
			got = c.Forward(x)
		}
		ref := ops.Conv1d(deq(x), deq(w), b, attrs)
		if relu {
			ref = ops.ReLU(ref)
		}
		compareQ(t, fmt.Sprintf("conv1d relu=%v", relu), got, quantizeOut(ref, 0.06, 70), 0.99)
	}
}
