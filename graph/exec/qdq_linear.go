package exec

import (
	"fmt"
	"math"
	"sync"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/qconv"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/tensor"
)

// The int8 Conv, ConvTranspose, MatMul and Gemm of QDQ models:
//
//	DequantizeLinear(x_q) ─┐
//	DequantizeLinear(w_q) ─┼─ Conv | ConvTranspose | MatMul | Gemm [─ Relu | Clip] ─ QuantizeLinear
//	[DequantizeLinear(b_q) or a float bias] ─┘
//
// runs as one step with QLinearConv / QLinearMatMul semantics: exact int32
// accumulation of (x - zx)(w - zw[c]) on the qgemm/qconv kernels (weights
// packed at compile time), plus the int32 bias, requantized with
// M[c] = float32(float32(sx*sw[c])/sy). The bias is the int32 tensor of a
// DequantizeLinear(b_q int32, float32(sx*sw[c]), 0) taken as it is (what
// quanta's converter and ONNX Runtime's quantizer write), or else the
// float bias b rounded to RNE(b / float32(sx*sw[c])). A Relu clamps at
// the output zero point and a Clip(lo, hi) at Q(lo)..Q(hi) (quantization
// is monotonic, so that is the quantized clamp). Activations are uint8 or
// int8 (int8 data is shifted to uint8 with its zero point, exactly);
// weights are int8 with one scale and zero point or one per output
// channel (Conv axis 0, ConvTranspose axis 1 with one group, MatMul axis
// 1, Gemm axis 0 with transB and 1 without).

// qlinKind is the operator of a qlinearKernel.
type qlinKind uint8

const (
	qlinGemm qlinKind = iota
	qlinConv
	qlinConvT
)

// qlinearKernel is the fused int8 step. All products run on uint8 data
// and uint8 outputs; int8 tensors are shifted by 128 on the way in and out.
type qlinearKernel struct {
	qdqBase
	kind                qlinKind
	inSigned, outSigned bool
	zx                  int32 // the input zero point, uint8 domain
	req                 qgemm.Requant
	// Gemm and MatMul: the weight [K, N].
	k, n int
	pack *qgemm.Packed
	// Conv: generic N-d path (one packed weight per group) and 2-D qconv
	// kernels packed per input shape.
	attrs qconvAttrs
	geo   geoCache
	wsh   []int
	w     []int8
	zws   []int32
	packs []*qgemm.Packed
	reqs  []*qgemm.Requant
	mu    sync.Mutex
	c2d   map[[3]int]*qconv.Packed
	// ConvTranspose.
	ct   *qconv.TransposePacked
	ctRk int // input rank: 3 or 4
	// tail, when set: the float result goes through elementwise steps
	// before the QuantizeLinear.
	tail *floatTail
}

// matchLinear fuses the pattern around the Conv/ConvTranspose/MatMul/Gemm
// step i.
func (m *qdqFuser) matchLinear(i int) {
	st := &m.sp.steps[i]
	var kind qlinKind
	switch {
	case isOp(st, "Conv"):
		kind = qlinConv
	case isOp(st, "ConvTranspose"):
		kind = qlinConvT
	case isOp(st, "MatMul"), isOp(st, "Gemm"):
		kind = qlinGemm
	default:
		return
	}
	n := st.node
	if len(st.out) != 1 || len(n.Inputs) < 2 {
		return
	}
	// A BatchNormalization the float rewrite folded into the Conv step
	// (its output is the step's): its per-channel affine map goes into the
	// multipliers and the bias.
	var bn *bnAffine
	if !m.literal(st) {
		var ok bool
		if bn, ok = m.foldedBN(st); !ok {
			return
		}
	}
	x, ok := m.act(st.in[0])
	if !ok {
		// Per-channel input scales factor out of convolutions whose
		// outputs each read one input channel (depthwise).
		if x, ok = m.actAxis(st.in[0]); !ok || kind != qlinConv {
			return
		}
	}
	consumed := []int{i}
	w, sw, wdq, ok := m.weight(n.Inputs[1], st.in[1])
	if !ok {
		return
	}
	if wdq >= 0 {
		consumed = append(consumed, wdq)
	}
	k := &qlinearKernel{kind: kind, inSigned: x.signed, zx: x.zp}
	if x.signed {
		k.zx += 128
	}
	k.nodes = append(k.nodes, m.sp.steps[x.dq].node, n)
	if bn != nil {
		k.nodes = append(append(k.nodes, bn.node), bn.nodes...)
	}
	var cout int
	var biasV *graph.Value
	// chOf maps an output channel to its weight qparams index.
	chOf := func(c int) int { return c }
	switch kind {
	case qlinConv:
		a, err := parseQConv(n)
		if err != nil || w.NDim() < 3 || (sw.axis >= 0 && sw.axis != 0) {
			return
		}
		k.attrs, k.wsh, cout = a, w.Shape(), w.Dim(0)
		if cout%a.group != 0 {
			return
		}
		biasV = optValue(n, 2)
		k.pattern = "QLinearConv"
	case qlinConvT:
		if w.NDim() != 3 && w.NDim() != 4 {
			return
		}
		g, err := n.Int("group", 1)
		if err != nil || g < 1 || w.Dim(0)%int(g) != 0 || (sw.axis >= 0 && (sw.axis != 1 || g != 1)) {
			return
		}
		cout = w.Dim(1) * int(g)
		biasV = optValue(n, 2)
		k.pattern = "QLinearConvTranspose"
	default:
		var beta float32
		var ok bool
		if k.k, k.n, w, beta, ok = linearWeight(n, w, sw.axis); !ok {
			return
		}
		k.pattern = "QLinearMatMul"
		if isOp(st, "Gemm") {
			if biasV = optValue(n, 2); biasV != nil && beta != 1 {
				return
			}
			k.pattern = "QLinearGemm"
		}
	}
	if kind == qlinGemm {
		cout = k.n
	}
	if sw.axis < 0 {
		chOf = func(int) int { return 0 }
	}
	// The output: [Relu | Clip ->] QuantizeLinear.
	o := st.out[0]
	type clamp struct{ lo, hi float32 }
	var clamps []clamp
	var q outQ
	var tail *floatTail
	for {
		// (Grouped convolutions, depthwise ones in particular, have no
		// fast float-output int8 kernel here: their float kernels beat a
		// GEMM per group, so they keep a float tail literal. Measured on
		// the PP-OCR detector, ungrouped ones gain from the int8 GEMM on
		// patches with a float epilogue.)
		if len(clamps) == 0 && (kind == qlinGemm || kind == qlinConv && k.attrs.group == 1) {
			if ft, ok := m.floatTail(o); ok {
				tail, q = ft, ft.q
				for _, j := range ft.idx {
					consumed = append(consumed, j)
					k.nodes = append(k.nodes, m.sp.steps[j].node)
				}
				k.pattern += " + float tail"
				break
			}
		}
		if !m.private(o) {
			return
		}
		j := m.readers[o][0]
		r := &m.sp.steps[j]
		if !m.live(j) || len(r.out) != 1 || len(r.in) == 0 || r.in[0] != o {
			return
		}
		if (isOp(r, "Relu") || isOp(r, "Clip")) && len(clamps) < 2 && m.literal(r) {
			c := clamp{0, float32(math.Inf(1))}
			if isOp(r, "Clip") {
				var ok bool
				if c.lo, c.hi, ok = m.clipBounds(r); !ok {
					return
				}
			}
			clamps = append(clamps, c)
			k.nodes = append(k.nodes, r.node)
			consumed = append(consumed, j)
			o = r.out[0]
			continue
		}
		var ok bool
		if q, ok = m.quantOut(o); !ok {
			if q, ok = m.quantOutAxis(o); !ok || kind != qlinConv {
				return
			}
			for _, c := range clamps {
				if c.lo != 0 || !math.IsInf(float64(c.hi), 1) {
					return // a Clip's bounds differ per channel
				}
			}
		}
		break
	}
	consumed = append(consumed, q.q)
	k.nodes = append(k.nodes, m.sp.steps[q.q].node)
	k.outSigned = q.signed
	lo, hi := q.lo(), q.hi()
	for _, c := range clamps {
		lo = max(lo, qmath.Quantize(c.lo, q.scale, q.zp, q.lo(), q.hi())) // per channel: Relu only, 0 -> zp
		hi = min(hi, qmath.Quantize(c.hi, q.scale, q.zp, q.lo(), q.hi()))
	}
	if lo > hi {
		return
	}
	// The input and output scales of output channel c.
	sxOf := func(int) float32 { return x.scale }
	if x.scales != nil {
		if kind != qlinConv || w.Dim(1) != 1 || len(x.scales) != k.attrs.group || tail != nil {
			return
		}
		mg := cout / k.attrs.group
		sxOf = func(c int) float32 { return x.scales[c/mg] }
	}
	syOf := func(int) float32 { return q.scale }
	if q.scales != nil {
		if len(q.scales) != cout {
			return
		}
		syOf = func(c int) float32 { return q.scales[c] }
	}
	// Multipliers, int32 biases and weight zero points per output channel.
	b32, bdq, ok := m.bias(biasV, cout, sxOf, sw, chOf)
	if !ok {
		return
	}
	if bdq >= 0 {
		consumed = append(consumed, bdq)
	}
	mult := make([]float32, cout)
	zws := make([]int32, cout)
	for c := range cout {
		mult[c] = qmath.Multiplier(sxOf(c), sw.scale[chOf(c)], syOf(c))
		zws[c] = sw.zp[chOf(c)]
	}
	if bn != nil {
		if len(bn.a) == 1 {
			bn.a, bn.t = widen(bn.a, cout), widen(bn.t, cout)
		}
		if len(bn.a) != cout {
			return
		}
	}
	if bn != nil && tail == nil {
		if b32 == nil {
			b32 = make([]int32, cout)
		}
		blo, bhi, _ := qRange(tensor.Int32)
		for c := range cout {
			// y = a*(S*acc + b) + t = a*S*(acc + (b + t/a)/S), S = sx*sw[c].
			sc := float64(float32(sxOf(c) * sw.scale[chOf(c)]))
			b := float64(b32[c])*sc + float64(bn.t[c])/float64(bn.a[c])
			b32[c] = qmath.Saturate(int64(math.Max(math.Min(math.RoundToEven(b/sc), 1<<40), -1<<40)), blo, bhi)
			mult[c] = float32(sc * float64(bn.a[c]) / float64(syOf(c)))
		}
	}
	if tail != nil {
		// The float epilogue y = float32(acc)*float32(sx*sw'[c]) + b[c],
		// sw' the weight scale times a folded BatchNormalization's.
		tail.scaleW = make([]float32, cout)
		tail.bias = make([]float32, cout)
		for c := range cout {
			sc := float32(x.scale * sw.scale[chOf(c)])
			tail.scaleW[c] = sw.scale[chOf(c)]
			if b32 != nil {
				tail.bias[c] = float32(float32(b32[c]) * sc)
			}
			if bn != nil {
				tail.scaleW[c] = float32(sw.scale[chOf(c)] * bn.a[c])
				tail.bias[c] = float32(float32(tail.bias[c]*bn.a[c]) + bn.t[c])
			}
		}
		tail.sx = x.scale
		if kind == qlinGemm && b32 == nil && bn == nil {
			tail.foldBias(m)
		}
		k.tail = tail
	}
	off := int32(0)
	if q.signed {
		off = 128
	}
	k.req = qgemm.Requant{Bias: b32, Multiplier: mult, ZeroPoint: q.zp + off, Min: lo + off, Max: hi + off}
	switch kind {
	case qlinGemm:
		k.pack = qgemm.Pack(k.n, k.k, w.I8(), k.k, zws)
	case qlinConv:
		k.w, k.zws = w.I8(), zws
		k.c2d = map[[3]int]*qconv.Packed{}
		groups, per := k.attrs.group, w.Numel()/max(cout, 1)
		mg := cout / groups
		for gr := 0; gr < groups; gr++ {
			r := k.req
			r.Multiplier = mult[gr*mg : (gr+1)*mg]
			if b32 != nil {
				r.Bias = b32[gr*mg : (gr+1)*mg]
			}
			k.reqs = append(k.reqs, &r)
			k.packs = append(k.packs, qgemm.Pack(mg, per, k.w[gr*mg*per:(gr+1)*mg*per], per, zws[gr*mg:(gr+1)*mg]))
		}
	case qlinConvT:
		if !k.packTranspose(n, w, zws) {
			return
		}
	}
	ns := step{node: n, kernel: k, in: []int{x.src}, out: []int{q.out}}
	m.commit(ns, consumed, []actQ{x})
}

// clipBounds returns the constant bounds of a Clip step.
func (m *qdqFuser) clipBounds(r *step) (lo, hi float32, ok bool) {
	lo, hi = float32(math.Inf(-1)), float32(math.Inf(1))
	if ck, isClip := r.kernel.(*clipKernel); isClip && ck.attrs {
		return ck.min, ck.max, true
	}
	if _, has := r.node.Attrs["min"]; has {
		return 0, 0, false
	}
	for i, dst := range []*float32{&lo, &hi} {
		v := optValue(r.node, i+1)
		if v == nil {
			continue
		}
		c := m.constOf(v)
		if c == nil || c.DType() != tensor.Float32 || c.Numel() != 1 {
			return 0, 0, false
		}
		*dst = c.F32()[0]
	}
	return lo, hi, !(lo != lo || hi != hi)
}

// weight finds the constant int8 weight behind value v (slot s): the
// DequantizeLinear producing it, folded at compile time or a step (whose
// index it returns, else -1), and its scales and zero points.
func (m *qdqFuser) weight(v *graph.Value, s int) (w *tensor.Tensor, q qparams, step int, ok bool) {
	w, q, step, ok = m.constDQ(v, s)
	if !ok || w.DType() != tensor.Int8 {
		return nil, q, -1, false
	}
	return w, q, step, true
}

// constDQ finds a DequantizeLinear of a constant behind value v (slot s):
// folded at compile time, or a step private to its reader (whose index it
// returns, else -1). Scales must be positive.
func (m *qdqFuser) constDQ(v *graph.Value, s int) (w *tensor.Tensor, q qparams, step int, ok bool) {
	p := v.Producer
	step = -1
	if p == nil || p.OpType != "DequantizeLinear" || (p.Domain != "" && p.Domain != "ai.onnx") || len(p.Inputs) < 2 {
		return nil, q, -1, false
	}
	if m.si.constant(s) == nil {
		j, has := m.producer[s]
		if !has || m.sp.steps[j].node != p || !m.private(s) || !m.live(j) {
			return nil, q, -1, false
		}
		step = j
	}
	w = m.constOf(p.Inputs[0])
	if w == nil {
		return nil, q, -1, false
	}
	scale, zp := m.constOf(p.Inputs[1]), m.constOf(optValue(p, 2))
	if scale == nil || (optValue(p, 2) != nil && zp == nil) || (zp != nil && zp.DType() != w.DType()) {
		return nil, q, -1, false
	}
	ax, err := p.Int("axis", 1)
	if err != nil {
		return nil, q, -1, false
	}
	if bs, err := p.Int("block_size", 0); err != nil || bs != 0 {
		return nil, q, -1, false
	}
	q, err = readQParams(scale, zp, w.Shape(), ax)
	if err != nil {
		return nil, q, -1, false
	}
	for _, sc := range q.scale {
		if !(sc > 0) {
			return nil, q, -1, false
		}
	}
	return w, q, step, true
}

// bias returns the int32 bias of a pattern (nil without one): the int32
// data of a DequantizeLinear whose scale is float32(sx*sw[c]) and zero
// point 0, taken as it is; otherwise the float bias (or the dequantized
// one) rounded on that scale. It also returns the bias DequantizeLinear's
// step to remove, or -1.
func (m *qdqFuser) bias(v *graph.Value, cout int, sxOf func(int) float32, sw qparams, chOf func(int) int) ([]int32, int, bool) {
	if v == nil {
		return nil, -1, true
	}
	s := m.slotOf(v)
	blo, bhi, _ := qRange(tensor.Int32)
	out := make([]int32, cout)
	if bq, bp, step, ok := m.constDQ(v, s); ok && bq.DType() == tensor.Int32 && bq.Numel() == cout {
		bv := bq.I32()
		for c := range cout {
			k := 0
			if bp.axis >= 0 {
				k = c
			}
			want := float32(sxOf(c) * sw.scale[chOf(c)])
			if bp.scale[k] == want && bp.zp[k] == 0 {
				out[c] = bv[c]
			} else {
				out[c] = qmath.Quantize(qmath.Dequantize(bv[c], bp.zp[k], bp.scale[k]), want, 0, blo, bhi)
			}
		}
		return out, step, true
	}
	b := m.si.constant(s)
	if b == nil || b.DType() != tensor.Float32 || b.Numel() != cout || b.NDim() > 2 || (b.NDim() == 2 && b.Dim(0) != 1) {
		return nil, -1, false
	}
	for c, f := range b.F32() {
		out[c] = qmath.Quantize(f, float32(sxOf(c)*sw.scale[chOf(c)]), 0, blo, bhi)
	}
	return out, -1, true
}

// packTranspose prepares a ConvTranspose's weights ([C, OutC/group, KH,
// KW] or [C, OutC/group, K]); it reports false for attributes the 2-D
// kernel does not take (output_shape, auto_pad, unequal pads).
func (k *qlinearKernel) packTranspose(n *graph.Node, w *tensor.Tensor, zws []int32) bool {
	nd := w.NDim() - 2
	if _, has := n.Attrs["output_shape"]; has {
		return false
	}
	if ap, err := n.StringAttr("auto_pad", "NOTSET"); err != nil || ap != "NOTSET" {
		return false
	}
	get := func(name string, def int64, cnt int) ([]int, bool) {
		v, err := n.Ints(name, nil)
		if err != nil || (v != nil && len(v) != cnt) {
			return nil, false
		}
		out := make([]int, cnt)
		for i := range out {
			out[i] = int(def)
			if v != nil {
				out[i] = int(v[i])
			}
		}
		return out, true
	}
	strides, ok1 := get("strides", 1, nd)
	dils, ok2 := get("dilations", 1, nd)
	opad, ok3 := get("output_padding", 0, nd)
	pads, ok4 := get("pads", 0, 2*nd)
	ks, err := n.Ints("kernel_shape", nil)
	if !ok1 || !ok2 || !ok3 || !ok4 || err != nil {
		return false
	}
	for d := 0; d < nd; d++ {
		if pads[d] != pads[nd+d] || (ks != nil && (len(ks) != nd || int(ks[d]) != w.Dim(2+d))) {
			return false
		}
	}
	g, _ := n.Int("group", 1)
	p := qconv.TransposeParams{InZeroPoint: k.zx, WeightZeroPoints: zws}
	p.N, p.C, p.H, p.W, p.OutC, p.Groups = 1, w.Dim(0), 64, 64, w.Dim(1)*int(g), int(g)
	p.KH, p.StrideH, p.PadH, p.OutPadH, p.DilH = 1, 1, 0, 0, 1
	last := nd - 1
	p.KW, p.StrideW, p.PadW, p.OutPadW, p.DilW = w.Dim(2+last), strides[last], pads[last], opad[last], dils[last]
	if nd == 2 {
		p.KH, p.StrideH, p.PadH, p.OutPadH, p.DilH = w.Dim(2), strides[0], pads[0], opad[0], dils[0]
	}
	pk, err := qconv.PackTranspose(p, w.I8())
	if err != nil {
		return false
	}
	k.ct, k.ctRk = pk, nd+2
	return true
}

// transposeI8 returns the transpose of a 2-D int8 tensor.
func transposeI8(w *tensor.Tensor) *tensor.Tensor {
	r, c := w.Dim(0), w.Dim(1)
	src := w.I8()
	dst := make([]int8, len(src))
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			dst[j*r+i] = src[i*c+j]
		}
	}
	return tensor.FromInt8(dst, c, r)
}

// flip128 returns b with every byte's top bit flipped (int8 <-> uint8
// shifted by 128), into dst when it is long enough.
func flip128(dst, b []byte) []byte {
	if len(dst) < len(b) {
		dst = make([]byte, len(b))
	}
	dst = dst[:len(b)]
	for i, v := range b {
		dst[i] = v ^ 0x80
	}
	return dst
}

// Run computes the fused pattern from x_q.
func (k *qlinearKernel) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	if err := wantBytes(x, k.inSigned); err != nil {
		return nil, err
	}
	xb := bytesOf(x)
	if k.inSigned {
		xb = flip128(nil, xb)
	}
	if k.tail != nil {
		yf, err := k.runFloat(f, xb, x.Shape())
		if err != nil {
			return nil, err
		}
		y, shape, err := k.tail.run(f, yf)
		if err != nil {
			return nil, err
		}
		return []*tensor.Tensor{byteTensor(y, k.outSigned, shape...)}, nil
	}
	var y []byte
	var shape []int
	var err error
	switch k.kind {
	case qlinConv:
		y, shape, err = k.runConv(f, xb, x.Shape())
	case qlinConvT:
		y, shape, err = k.runConvT(f, xb, x.Shape())
	default:
		if x.NDim() < 1 || x.Dim(-1) != k.k {
			return nil, fmt.Errorf("x %v does not fit a weight of %d rows", x.Shape(), k.k)
		}
		rows := shapeNumel(x.Shape()[:x.NDim()-1])
		shape = append(append([]int{}, x.Shape()[:x.NDim()-1]...), k.n)
		y = f.allocBytes(rows * k.n)
		if rows > 0 && k.n > 0 {
			qgemm.GemmU8(rows, xb, k.k, k.zx, k.pack, &k.req, y, k.n)
		}
	}
	if err != nil {
		return nil, err
	}
	if k.outSigned {
		flip128(y, y)
	}
	return []*tensor.Tensor{byteTensor(y, k.outSigned, shape...)}, nil
}

// conv2D returns the qconv kernel for geometry g, or nil when qconv does
// not compute it (more than 2 spatial dimensions, padding the symmetric
// form does not reproduce).
func (k *qlinearKernel) conv2D(g qconvGeom) *qconv.Packed {
	nd := len(g.in)
	if nd < 1 || nd > 2 {
		return nil
	}
	key := [3]int{g.batch, 1, g.in[nd-1]}
	if nd == 2 {
		key[1] = g.in[0]
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if pk, ok := k.c2d[key]; ok {
		return pk
	}
	p := qconv.Params{InZeroPoint: k.zx, WeightZeroPoints: k.zws}
	p.N, p.C, p.OutC, p.Groups = g.batch, g.cin, g.cout, g.group
	p.H, p.KH, p.StrideH, p.PadH, p.DilH = 1, 1, 1, 0, 1
	l := nd - 1
	p.W, p.KW, p.StrideW, p.PadW, p.DilW = g.in[l], g.k[l], g.stride[l], g.pad[l], g.dil[l]
	if nd == 2 {
		p.H, p.KH, p.StrideH, p.PadH, p.DilH = g.in[0], g.k[0], g.stride[0], g.pad[0], g.dil[0]
	}
	var pk *qconv.Packed
	if p.Validate() == nil && p.OutH() == prod1(g.out[:nd-1]) && p.OutW() == g.out[l] {
		pk, _ = qconv.Pack(p, k.w)
	}
	if len(k.c2d) < 16 {
		k.c2d[key] = pk
	}
	return pk
}

func prod1(s []int) int {
	n := 1
	for _, v := range s {
		n *= v
	}
	return n
}

// runConv runs the convolution on uint8 data: the qconv kernels for 1-D
// and 2-D convolutions they take, else per batch entry and group the
// input patches [P, C/group*K] (padding holds the zero point) times the
// packed weights.
func (k *qlinearKernel) runConv(f *Frame, xv []byte, xsh []int) ([]byte, []int, error) {
	g, osh, err := k.geo.get(k.attrs, xsh, k.wsh)
	if err != nil {
		return nil, nil, err
	}
	K, P := shapeNumel(g.k), shapeNumel(g.out)
	out := f.allocBytes(g.batch * g.cout * P)
	if P == 0 || len(out) == 0 {
		return out, osh, nil
	}
	if pk := k.conv2D(g); pk != nil {
		qconv.Conv2D(pk, xv, &k.req, out)
		return out, osh, nil
	}
	cg, mg := g.cin/g.group, g.cout/g.group
	q := cg * K
	if q == 0 || mg == 0 {
		return nil, nil, fmt.Errorf("empty convolution %v x %v", xsh, k.wsh)
	}
	src := g.taps()
	a := make([]uint8, P*q)
	cu := make([]uint8, P*mg)
	for b := 0; b < g.batch; b++ {
		for gr := 0; gr < g.group; gr++ {
			g.patches(xv, b, gr, src, uint8(k.zx), a)
			base := (b*g.cout + gr*mg) * P
			qgemm.GemmU8(P, a, q, k.zx, k.packs[gr], k.reqs[gr], cu, mg)
			for m := 0; m < mg; m++ {
				dst := out[base+m*P : base+(m+1)*P]
				for p := range dst {
					dst[p] = cu[p*mg+m]
				}
			}
		}
	}
	return out, osh, nil
}

// runConvT runs the transposed convolution on uint8 data.
func (k *qlinearKernel) runConvT(f *Frame, xv []byte, xsh []int) ([]byte, []int, error) {
	p := k.ct.Params()
	if len(xsh) != k.ctRk || xsh[1] != p.C {
		return nil, nil, fmt.Errorf("x %v does not fit ConvTranspose weights of %d input channels (rank %d)", xsh, p.C, k.ctRk)
	}
	h, w := 1, xsh[len(xsh)-1]
	if k.ctRk == 4 {
		h = xsh[2]
	}
	pk, err := k.ct.ForInput(xsh[0], h, w, k.zx)
	if err != nil {
		return nil, nil, err
	}
	q := pk.Params().ConvTranspose2DParams
	shape := []int{q.N, q.OutC, q.OutH(), q.OutW()}
	if k.ctRk == 3 {
		shape = []int{q.N, q.OutC, q.OutW()}
	}
	y := f.allocBytes(q.OutputLen())
	if len(y) > 0 && len(xv) > 0 {
		qconv.ConvTranspose2D(pk, xv, &k.req, y)
	}
	return y, shape, nil
}

// linearWeight reads the constant int8 weight w of a MatMul ([K, N]) or of
// a Gemm with alpha 1 and no transA ([K, N], or [N, K] with transB), whose
// per-channel axis (if axis >= 0) must be the N axis, and returns K, N,
// the weight laid out [N][K] for packing, and the Gemm's beta; ok is
// false for any other form.
func linearWeight(n *graph.Node, w *tensor.Tensor, axis int) (k, nOut int, wt *tensor.Tensor, beta float32, ok bool) {
	if w.NDim() != 2 {
		return
	}
	tb := int64(0)
	beta = 1
	if n.OpType == "Gemm" {
		alpha, err1 := n.Float("alpha", 1)
		b, err2 := n.Float("beta", 1)
		ta, err3 := n.Int("transA", 0)
		t, err4 := n.Int("transB", 0)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || alpha != 1 || ta != 0 {
			return
		}
		tb, beta = t, b
	}
	if tb == 0 {
		if axis >= 0 && axis != 1 {
			return
		}
		return w.Dim(0), w.Dim(1), transposeI8(w), beta, true
	}
	if axis >= 0 && axis != 0 {
		return
	}
	return w.Dim(1), w.Dim(0), w, beta, true
}
