package exec

import (
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/tensor"
)

// This file holds the integer convolutions ConvInteger and QLinearConv
// (N-d, groups, strides, dilations, pads and auto_pad) and the uint8 x int8
// fast paths of the integer products on the qgemm kernels, whose int32
// accumulators equal the plain loops' bit for bit.

// qconvAttrs are the attributes of ConvInteger and QLinearConv.
type qconvAttrs struct {
	autoPad                          string
	kernel, strides, dilations, pads []int64
	group                            int
}

func parseQConv(n *graph.Node) (a qconvAttrs, err error) {
	if a.autoPad, err = n.StringAttr("auto_pad", "NOTSET"); err != nil {
		return a, err
	}
	switch a.autoPad {
	case "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER":
	default:
		return a, fmt.Errorf("auto_pad %q, want NOTSET, VALID, SAME_UPPER or SAME_LOWER", a.autoPad)
	}
	for _, f := range []struct {
		name string
		dst  *[]int64
	}{{"kernel_shape", &a.kernel}, {"strides", &a.strides}, {"dilations", &a.dilations}, {"pads", &a.pads}} {
		if *f.dst, err = n.Ints(f.name, nil); err != nil {
			return a, err
		}
	}
	g, err := n.Int("group", 1)
	if err != nil {
		return a, err
	}
	if g < 1 {
		return a, fmt.Errorf("group %d must be positive", g)
	}
	a.group = int(g)
	return a, nil
}

// qconvGeom is the geometry of one N-d convolution call.
type qconvGeom struct {
	batch, cin, cout, group      int
	in, k, out, stride, dil, pad []int // pad: the leading pad per dimension
}

func (a qconvAttrs) geometry(xsh, wsh []int) (g qconvGeom, err error) {
	nd := len(xsh) - 2
	if nd < 1 || len(wsh) != len(xsh) {
		return g, fmt.Errorf("x %v and w %v: want [N C D1...] and [M C/group K1...] of one rank, at least 3", xsh, wsh)
	}
	g.batch, g.cin, g.cout, g.group = xsh[0], xsh[1], wsh[0], a.group
	if g.cin%g.group != 0 || g.cout%g.group != 0 || wsh[1]*g.group != g.cin {
		return g, fmt.Errorf("x %v and w %v do not fit group %d", xsh, wsh, g.group)
	}
	g.in, g.k = xsh[2:], wsh[2:]
	if a.kernel != nil {
		if len(a.kernel) != nd {
			return g, fmt.Errorf("kernel_shape %v for %d spatial dimensions", a.kernel, nd)
		}
		for i, k := range a.kernel {
			if int(k) != g.k[i] {
				return g, fmt.Errorf("kernel_shape %v does not match w %v", a.kernel, wsh)
			}
		}
	}
	get := func(name string, v []int64, n int, def int) ([]int, error) {
		out := make([]int, n)
		if v == nil {
			for i := range out {
				out[i] = def
			}
			return out, nil
		}
		if len(v) != n {
			return nil, fmt.Errorf("%s %v: want %d values", name, v, n)
		}
		for i, x := range v {
			if x < 0 || (def == 1 && x < 1) {
				return nil, fmt.Errorf("%s %v: invalid value %d", name, v, x)
			}
			out[i] = int(x)
		}
		return out, nil
	}
	if g.stride, err = get("strides", a.strides, nd, 1); err != nil {
		return g, err
	}
	if g.dil, err = get("dilations", a.dilations, nd, 1); err != nil {
		return g, err
	}
	pads, err := get("pads", a.pads, 2*nd, 0)
	if err != nil {
		return g, err
	}
	g.pad, g.out = make([]int, nd), make([]int, nd)
	for d := 0; d < nd; d++ {
		span := g.dil[d]*(g.k[d]-1) + 1
		switch a.autoPad {
		case "NOTSET":
			g.pad[d] = pads[d]
			g.out[d] = (g.in[d]+pads[d]+pads[nd+d]-span)/g.stride[d] + 1
			if g.in[d]+pads[d]+pads[nd+d] < span {
				g.out[d] = 0
			}
		case "VALID":
			g.out[d] = max(0, (g.in[d]-span)/g.stride[d]+1)
			if g.in[d] < span {
				g.out[d] = 0
			}
		default:
			g.out[d] = (g.in[d] + g.stride[d] - 1) / g.stride[d]
			total := max(0, (g.out[d]-1)*g.stride[d]+span-g.in[d])
			g.pad[d] = total / 2
			if a.autoPad == "SAME_LOWER" {
				g.pad[d] = total - total/2
			}
		}
	}
	return g, nil
}

// intConv computes the int32 convolution of zero-point-shifted x
// [N, C, D...] and w [M, C/group, K...] (int32 values) with geometry g.
func intConv(x, w []int32, g qconvGeom) []int32 {
	K, P, S := shapeNumel(g.k), shapeNumel(g.out), shapeNumel(g.in)
	src := g.taps()
	cg, mg := g.cin/g.group, g.cout/g.group
	q := cg * K
	cols := make([]int32, q*P)
	out := make([]int32, g.batch*g.cout*P)
	for b := 0; b < g.batch; b++ {
		for gr := 0; gr < g.group; gr++ {
			for c := 0; c < cg; c++ {
				plane := x[(b*g.cin+gr*cg+c)*S : (b*g.cin+gr*cg+c+1)*S]
				for kk := 0; kk < K; kk++ {
					row := cols[(c*K+kk)*P : (c*K+kk+1)*P]
					for p, s := range src[kk*P : (kk+1)*P] {
						if s >= 0 {
							row[p] = plane[s]
						} else {
							row[p] = 0
						}
					}
				}
			}
			for m := 0; m < mg; m++ {
				oc := gr*mg + m
				dst := out[(b*g.cout+oc)*P : (b*g.cout+oc+1)*P]
				wr := w[oc*q : (oc+1)*q]
				for j, wv := range wr {
					if wv == 0 {
						continue
					}
					for p, v := range cols[j*P : (j+1)*P] {
						dst[p] += wv * v
					}
				}
			}
		}
	}
	return out
}

// unflatten writes the coordinates of flat index i in shape to c.
func unflatten(i int, shape, c []int) {
	for d := len(shape) - 1; d >= 0; d-- {
		c[d] = i % shape[d]
		i /= shape[d]
	}
}

// convAcc returns the int32 accumulators of the convolution of x shifted
// by its (scalar) zero point with w shifted by its per-tensor or
// per-output-channel zero point, and the geometry. uint8 x with int8 w
// runs on the qgemm kernels; other types on intConv.
func convAcc(a qconvAttrs, x, xzp, w, wzp *tensor.Tensor) ([]int32, qconvGeom, error) {
	g, err := a.geometry(x.Shape(), w.Shape())
	if err != nil {
		return nil, g, err
	}
	if xzp != nil && xzp.Numel() != 1 {
		return nil, g, fmt.Errorf("x zero point must be one value, has shape %v", xzp.Shape())
	}
	if wzp != nil && wzp.Numel() != 1 && wzp.Numel() != g.cout {
		return nil, g, fmt.Errorf("w zero point has %d values for %d output channels", wzp.Numel(), g.cout)
	}
	if x.DType() == tensor.Uint8 && w.DType() == tensor.Int8 &&
		(xzp == nil || xzp.DType() == tensor.Uint8) && (wzp == nil || wzp.DType() == tensor.Int8) {
		var zx int32
		if xzp != nil {
			zx = int32(xzp.U8()[0])
		}
		zw := []int32{0}
		if wzp != nil {
			zw, _ = int32s(wzp)
		}
		return convU8S8(x.U8(), zx, w.I8(), zw, g), g, nil
	}
	xv, wv, err := convOperands(g, x, xzp, w, wzp)
	if err != nil {
		return nil, g, err
	}
	return intConv(xv, wv, g), g, nil
}

// convOperands shifts x by its (scalar) zero point and w by its per-tensor
// or per-output-channel zero point, returning int32 values.
func convOperands(g qconvGeom, x, xzp, w, wzp *tensor.Tensor) (xv, wv []int32, err error) {
	xs, err := zpShift(x, xzp, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("x: %w", err)
	}
	if wzp != nil && wzp.Numel() != 1 {
		shape := make([]int, w.NDim())
		for i := range shape {
			shape[i] = 1
		}
		shape[0] = g.cout
		wzp = wzp.Reshape(shape...)
	}
	ws, err := zpShift(w, wzp, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("w: %w", err)
	}
	return xs.I32(), ws.I32(), nil
}

// geoCache remembers the geometry of the last input shape a kernel saw,
// so that a step run again on the same shape computes nothing. It is safe
// for concurrent runs; the shapes it returns must not be modified.
type geoCache struct {
	last atomic.Pointer[geoEntry]
}

type geoEntry struct {
	xsh, out []int
	g        qconvGeom
}

// get returns a.geometry(xsh, wsh) and its output shape.
func (c *geoCache) get(a qconvAttrs, xsh, wsh []int) (qconvGeom, []int, error) {
	if e := c.last.Load(); e != nil && slices.Equal(e.xsh, xsh) {
		return e.g, e.out, nil
	}
	xsh = slices.Clone(xsh) // g.in aliases it
	g, err := a.geometry(xsh, wsh)
	if err != nil {
		return g, nil, err
	}
	e := &geoEntry{xsh: xsh, out: g.outShape(), g: g}
	c.last.Store(e)
	return g, e.out, nil
}

func (g qconvGeom) outShape() []int {
	return append([]int{g.batch, g.cout}, g.out...)
}

func compileConvInteger(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 2, 4); err != nil {
		return nil, err
	}
	a, err := parseQConv(n)
	if err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		acc, g, err := convAcc(a, in[0], optIn(in, 2), in[1], optIn(in, 3))
		if err != nil {
			return nil, err
		}
		return tensor.FromInt32(acc, g.outShape()...), nil
	}), nil
}

func compileQLinearConv(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 8, 9); err != nil {
		return nil, err
	}
	a, err := parseQConv(n)
	if err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		acc, g, err := convAcc(a, in[0], in[2], in[3], in[5])
		if err != nil {
			return nil, err
		}
		sx, err := scalesFor("x_scale", in[1], 1)
		if err != nil {
			return nil, err
		}
		sw, err := scalesFor("w_scale", in[4], g.cout)
		if err != nil {
			return nil, err
		}
		sy, err := scalesFor("y_scale", in[6], 1)
		if err != nil {
			return nil, err
		}
		zy, dt, err := outZeroPoint(in[7])
		if err != nil {
			return nil, err
		}
		P := shapeNumel(g.out)
		if bias := optIn(in, 8); bias != nil {
			if bias.DType() != tensor.Int32 || bias.Numel() != g.cout {
				return nil, fmt.Errorf("B must be %d int32 values, got %s%v", g.cout, bias.DType(), bias.Shape())
			}
			bv := bias.I32()
			for i := range acc {
				acc[i] += bv[i/P%g.cout]
			}
		}
		mults := make([]float32, g.cout)
		for oc := range mults {
			s := sw[0]
			if len(sw) > 1 {
				s = sw[oc]
			}
			mults[oc] = qmath.Multiplier(sx[0], s, sy[0])
		}
		return requantize(acc, func(i int) float32 { return mults[i/P%g.cout] }, zy, dt, g.outShape()), nil
	}), nil
}

// taps returns, for kernel tap kk and output position p, the offset in an
// input plane that the tap reads at src[kk*P+p], or -1 in the padding.
func (g qconvGeom) taps() []int {
	K, P, nd := shapeNumel(g.k), shapeNumel(g.out), len(g.in)
	src := make([]int, K*P)
	kc, oc := make([]int, nd), make([]int, nd)
	inStr := tensor.Strides(g.in)
	for kk := 0; kk < K; kk++ {
		unflatten(kk, g.k, kc)
		for p := 0; p < P; p++ {
			unflatten(p, g.out, oc)
			off := 0
			for d := 0; d < nd; d++ {
				i := oc[d]*g.stride[d] - g.pad[d] + kc[d]*g.dil[d]
				if i < 0 || i >= g.in[d] {
					off = -1
					break
				}
				off += i * inStr[d]
			}
			src[kk*P+p] = off
		}
	}
	return src
}

// patches writes the input patches of group gr of image b of the 8-bit
// x ([N, C, D...]) into a ([P][C/group*K], row p the patch of output
// position p): a[p*q + ch*K + kk] is the value tap kk of channel ch reads,
// or zx in the padding. src is taps(); nil means a 1x1 convolution with
// unit strides and no padding, whose patches are the pixels.
func (g qconvGeom) patches(x []uint8, b, gr int, src []int, zx uint8, a []uint8) {
	K, P, S := shapeNumel(g.k), shapeNumel(g.out), shapeNumel(g.in)
	cg := g.cin / g.group
	q := cg * K
	for ch := 0; ch < cg; ch++ {
		plane := x[(b*g.cin+gr*cg+ch)*S : (b*g.cin+gr*cg+ch+1)*S]
		if src == nil {
			for p, v := range plane {
				a[p*q+ch] = v
			}
			continue
		}
		for kk := 0; kk < K; kk++ {
			col := ch*K + kk
			for p, s := range src[kk*P : (kk+1)*P] {
				if s >= 0 {
					a[p*q+col] = plane[s]
				} else {
					a[p*q+col] = zx
				}
			}
		}
	}
}

// convU8S8 is intConv for uint8 x and int8 w on the qgemm kernels: per
// batch entry and group, the input patches [P, C/group*K] (padding holds
// the zero point, so it contributes nothing) times the packed weights.
func convU8S8(x []uint8, zx int32, w []int8, zw []int32, g qconvGeom) []int32 {
	K, P := shapeNumel(g.k), shapeNumel(g.out)
	src := g.taps()
	cg, mg := g.cin/g.group, g.cout/g.group
	q := cg * K
	packs := make([]*qgemm.Packed, g.group)
	for gr := range packs {
		zps := zw
		if len(zw) > 1 {
			zps = zw[gr*mg : (gr+1)*mg]
		}
		packs[gr] = qgemm.Pack(mg, q, w[gr*mg*q:(gr+1)*mg*q], q, zps)
	}
	a := make([]uint8, P*q)
	c := make([]int32, P*mg)
	out := make([]int32, g.batch*g.cout*P)
	if P == 0 || q == 0 {
		return out
	}
	for b := 0; b < g.batch; b++ {
		for gr := 0; gr < g.group; gr++ {
			g.patches(x, b, gr, src, uint8(zx), a)
			qgemm.GemmS32(P, a, q, zx, packs[gr], c, mg)
			for m := 0; m < mg; m++ {
				dst := out[(b*g.cout+gr*mg+m)*P : (b*g.cout+gr*mg+m+1)*P]
				for p := range dst {
					dst[p] = c[p*mg+m]
				}
			}
		}
	}
	return out
}

// matMulU8S8 is MatMulInteger for uint8 a [..., K] with one zero point and
// a 2-D int8 b [K, N] with per-tensor or per-column zero points.
func matMulU8S8(a, za, b, zb *tensor.Tensor) *tensor.Tensor {
	k, n := b.Dim(0), b.Dim(1)
	rows := a.Numel() / max(k, 1)
	if k == 0 {
		rows = shapeNumel(a.Shape()[:a.NDim()-1])
	}
	bt := make([]int8, n*k)
	for i, v := range b.I8() {
		bt[i%n*k+i/n] = v
	}
	zw := []int32{0}
	if zb != nil {
		zw, _ = int32s(zb)
	}
	var zx int32
	if za != nil {
		zx = int32(za.U8()[0])
	}
	c := make([]int32, rows*n)
	if rows > 0 && n > 0 && k > 0 {
		qgemm.GemmS32(rows, a.U8(), k, zx, qgemm.Pack(n, k, bt, k, zw), c, n)
	}
	shape := append(append([]int{}, a.Shape()[:a.NDim()-1]...), n)
	return tensor.FromInt32(c, shape...)
}
