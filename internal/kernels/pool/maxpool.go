package pool

import (
	"math"

	"github.com/quanta-go/quanta/internal/parallel"
)

// grainFor returns how many planes one parallel chunk holds so that it
// covers at least about 32K elements.
func grainFor(perPlane int) int { return max(1, (1<<15)/max(1, perPlane)) }

// MaxPool2DReference is PyTorch's CPU max_pool2d loop: for each output,
// the window rows oh*SH-PH+i*DH (i < KH) and columns likewise, clipped to
// the image (starts moved forward by whole dilation steps), are scanned in
// row-major order starting from -Inf; a value replaces the maximum when it
// is greater or NaN. idx (nil for none) receives the winning position
// ih*W+iw within the plane, initially the window's first in-image
// position. With dilation a window can miss the image entirely; it gives
// -Inf and index -1, which passes no gradient (PyTorch reports a position
// outside the window there, sometimes outside the plane).
func MaxPool2DReference(p Pool2DParams, x, y []float32, idx []int32) {
	g := p.geom()
	for pl := 0; pl < g.planes; pl++ {
		xp := x[pl*g.H*g.W:]
		for oh := 0; oh < g.OH; oh++ {
			for ow := 0; ow < g.OW; ow++ {
				ih0 := oh*g.SH - g.PH
				iw0 := ow*g.SW - g.PW
				ih1 := min(ih0+(g.KH-1)*g.DH+1, g.H)
				iw1 := min(iw0+(g.KW-1)*g.DW+1, g.W)
				for ih0 < 0 {
					ih0 += g.DH
				}
				for iw0 < 0 {
					iw0 += g.DW
				}
				maxIdx := ih0*g.W + iw0
				if ih0 >= ih1 || iw0 >= iw1 {
					maxIdx = -1
				}
				maxVal := negInf
				for ih := ih0; ih < ih1; ih += g.DH {
					for iw := iw0; iw < iw1; iw += g.DW {
						v := xp[ih*g.W+iw]
						if v > maxVal || v != v {
							maxVal = v
							maxIdx = ih*g.W + iw
						}
					}
				}
				o := (pl*g.OH+oh)*g.OW + ow
				y[o] = maxVal
				if idx != nil {
					idx[o] = int32(maxIdx)
				}
			}
		}
	}
}

var negInf = float32(math.Inf(-1))

// span is a window's clipped range along one axis: positions lo, lo+d, ...
// below hi.
type span struct{ lo, hi int }

// spans returns, for each of out windows, the clipped range as
// MaxPool2DReference computes it.
func spans(out, in, k, s, pad, d int) []span {
	sp := make([]span, out)
	for o := range sp {
		lo := o*s - pad
		hi := min(lo+(k-1)*d+1, in)
		for lo < 0 {
			lo += d
		}
		sp[o] = span{lo, hi}
	}
	return sp
}

// MaxPool2D computes y = max_pool2d(x) and, when idx is not nil, the
// argmax indices (position ih*W+iw within each plane) that
// MaxPool2DBackward needs. It gives the same results as
// MaxPool2DReference. x is [N, C, H, W]; y and idx are
// [N, C, OutH, OutW], overwritten.
//
// Each plane is first mapped to order keys (see orderKey), so a window's
// scan is an integer maximum without data-dependent branches, and the
// output is the input element at the winning index.
func MaxPool2D(p Pool2DParams, x, y []float32, idx []int32) {
	g := p.geom()
	check("x", x, p.InputLen())
	check("y", y, p.OutputLen())
	if idx != nil {
		checkIdx(idx, p.OutputLen())
	}
	rows := spans(g.OH, g.H, g.KH, g.SH, g.PH, g.DH)
	cols := spans(g.OW, g.W, g.KW, g.SW, g.PW, g.DW)
	maxPlanes(&g, rows, cols, x, y, idx)
}

// maxPlanes runs the keyed window scan over every plane, split over
// planes.
func maxPlanes(g *geom, rows, cols []span, x, y []float32, idx []int32) {
	hw, ohw := g.H*g.W, g.OH*g.OW
	parallel.For(g.planes, grainFor(hw+ohw), func(p0, p1 int) {
		keys := make([]int64, hw)
		keys32 := make([]int32, hw)
		var ib []int32
		if idx == nil {
			ib = make([]int32, ohw)
		}
		for pl := p0; pl < p1; pl++ {
			xp := x[pl*hw : (pl+1)*hw]
			yp := y[pl*ohw : (pl+1)*ohw]
			ip := ib
			if idx != nil {
				ip = idx[pl*ohw : (pl+1)*ohw]
			}
			if orderKeys32(xp, keys32) {
				argmaxPlane(keys32, int32(negInfKey), g.W, g.OW, g.DH, g.DW, rows, cols, ip)
			} else {
				orderKeys(xp, keys)
				argmaxPlane(keys, negInfKey, g.W, g.OW, g.DH, g.DW, rows, cols, ip)
			}
			for o, i := range ip[:ohw] {
				if i < 0 {
					yp[o] = negInf
				} else {
					yp[o] = xp[i]
				}
			}
		}
	})
}

// argmaxPlane writes into ip the position of the largest key of each
// window (the first one in row-major order among equal keys), or -1 for an
// empty window.
func argmaxPlane[K int32 | int64](keys []K, negInfKey K, w, ow, dh, dw int, rows, cols []span, ip []int32) {
	for oh, r := range rows {
		ir := ip[oh*ow : (oh+1)*ow]
		for o, c := range cols {
			if r.lo >= r.hi || c.lo >= c.hi {
				ir[o] = -1
				continue
			}
			km, mi := negInfKey, r.lo*w+c.lo
			for ih := r.lo; ih < r.hi; ih += dh {
				base := ih*w + c.lo
				kr := keys[base : ih*w+c.hi]
				if dw == 1 && len(kr) == 3 {
					// Unrolled common case (3-wide window row).
					if k := kr[0]; k > km {
						km, mi = k, base
					}
					if k := kr[1]; k > km {
						km, mi = k, base+1
					}
					if k := kr[2]; k > km {
						km, mi = k, base+2
					}
					continue
				}
				if dw == 1 && len(kr) == 2 {
					if k := kr[0]; k > km {
						km, mi = k, base
					}
					if k := kr[1]; k > km {
						km, mi = k, base+1
					}
					continue
				}
				if dw == 1 {
					for j, k := range kr {
						if k > km {
							km, mi = k, base+j
						}
					}
					continue
				}
				for j := 0; j < len(kr); j += dw {
					if k := kr[j]; k > km {
						km, mi = k, base+j
					}
				}
			}
			ir[o] = int32(mi)
		}
	}
}

// orderKeys32 writes the order keys of a plane without NaN as int32 and
// reports true, or reports false if the plane holds a NaN (keys32 is then
// garbage and the int64 keys are needed).
func orderKeys32(x []float32, keys []int32) bool {
	keys = keys[:len(x)]
	nan := int32(0)
	for i, f := range x {
		b := math.Float32bits(f)
		v := int32(b)
		s := v >> 31
		keys[i] = (v ^ int32(uint32(s)>>1)) - s
		nan |= 0x7f800000 - int32(b&0x7fffffff)
	}
	return nan >= 0
}

// negInfKey is the order key of -Inf.
var negInfKey = orderKey(math.Float32bits(negInf), 0)

// orderKey maps a float32 (bits b, at plane position i) to an int64 such
// that "key(v) > key(m)" is PyTorch's replacement test "v > m || isnan(v)"
// whenever m is the running maximum: keys of non-NaN values are ordered
// like the values, with -0 and +0 equal, and every NaN is above every
// number and above every earlier NaN.
func orderKey(b uint32, i int) int64 {
	if b&0x7fffffff > 0x7f800000 {
		return 1<<32 + int64(i)
	}
	v := int32(b)
	s := v >> 31 // -1 for negatives
	return int64((v ^ int32(uint32(s)>>1)) - s)
}

// orderKeys writes orderKey(bits of x[i], i) into keys[i], without
// branches.
func orderKeys(x []float32, keys []int64) {
	keys = keys[:len(x)]
	for i, f := range x {
		b := math.Float32bits(f)
		v := int32(b)
		s := v >> 31
		k := int64((v ^ int32(uint32(s)>>1)) - s)
		nan := int64(int32(0x7f800000-int32(b&0x7fffffff)) >> 31) // -1 for NaN
		keys[i] = k&^nan | (1<<32+int64(i))&nan
	}
}

// MaxPool2DBackward computes the input gradient of MaxPool2D: gx is
// zeroed, then gy[o] is added to gx at idx[o] of its plane, in output
// order (index -1 passes nothing). idx comes from MaxPool2D with the same
// p.
func MaxPool2DBackward(p Pool2DParams, gy []float32, idx []int32, gx []float32) {
	g := p.geom()
	check("gy", gy, p.OutputLen())
	checkIdx(idx, p.OutputLen())
	check("gx", gx, p.InputLen())
	scatterBackward(g.planes, g.H*g.W, g.OH*g.OW, gy, idx, gx)
}

// scatterBackward adds each gy element into gx at its plane-relative index.
func scatterBackward(planes, hw, ohw int, gy []float32, idx []int32, gx []float32) {
	parallel.For(planes, grainFor(hw+ohw), func(p0, p1 int) {
		for pl := p0; pl < p1; pl++ {
			gp := gx[pl*hw : (pl+1)*hw]
			clear(gp)
			ip := idx[pl*ohw : (pl+1)*ohw]
			for o, v := range gy[pl*ohw : (pl+1)*ohw] {
				i := ip[o]
				if i < 0 || int(i) >= hw {
					if i == -1 {
						continue
					}
					panic("pool: max-pool index out of range")
				}
				gp[i] += v
			}
		}
	})
}

// MaxPool2DBackwardReference is the plain loop of MaxPool2DBackward.
func MaxPool2DBackwardReference(p Pool2DParams, gy []float32, idx []int32, gx []float32) {
	g := p.geom()
	hw, ohw := g.H*g.W, g.OH*g.OW
	clear(gx[:g.planes*hw])
	for pl := 0; pl < g.planes; pl++ {
		for o := 0; o < ohw; o++ {
			if i := idx[pl*ohw+o]; i >= 0 {
				gx[pl*hw+int(i)] += gy[pl*ohw+o]
			}
		}
	}
}
