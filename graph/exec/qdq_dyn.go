package exec

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/kernels/qdyn"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/tensor"
)

// Dynamic quantization (QuantizeDynamic's QDQ form):
//
//	x ─ DynamicQuantizeLinear ─ DequantizeLinear ─┐
//	DequantizeLinear(const int8 w) ───────────────┴─ MatMul | Gemm | Conv [+ float bias] ─ y (float)
//
// runs as one step: x's uint8 codes by ONNX's rule (qdyn.ONNX, the same
// scale, zero point and codes as DynamicQuantizeLinear), an exact int32
// accumulation of (x - zx)(w - zw[c]), and y = float32(acc) *
// float32(sx*sw[c]) + b[c]. The literal graph computes the float products
// of the dequantized values (each rounded to float32) and sums them in
// float32, so the two differ by float rounding only: per output, at most
// about (K+2) * 2^-24 * sx*sw[c] * sum |x_q - zx| |w_q - zw| (K products
// per output), which the tests check. Input with NaN or infinities is an
// error (it has no quantization parameters).

// dynKernel is the fused dynamic step.
type dynKernel struct {
	qdqBase
	conv   bool
	k, n   int // MatMul/Gemm: weight [K, N]
	pack   *qgemm.Packed
	scaleW []float32 // per output channel, or one
	bias   []float32
	// Conv: the generic N-d path.
	attrs qconvAttrs
	geo   geoCache
	wsh   []int
	packs []*qgemm.Packed
}

// matchDynamic fuses the dynamic pattern around MatMul/Gemm/Conv step i.
func (m *qdqFuser) matchDynamic(i int) {
	st := &m.sp.steps[i]
	isConv := isOp(st, "Conv")
	if !(isOp(st, "MatMul") || isOp(st, "Gemm") || isConv) || !m.literal(st) || len(st.out) != 1 || len(st.in) < 2 {
		return
	}
	n := st.node
	di, ok := m.producer[st.in[0]]
	if !ok || !m.live(di) {
		return
	}
	dq := &m.sp.steps[di]
	if !isOp(dq, "DequantizeLinear") || !m.literal(dq) || len(dq.in) < 3 {
		return
	}
	li, ok := m.producer[dq.in[0]]
	if !ok || !m.live(li) {
		return
	}
	dql := &m.sp.steps[li]
	if !isOp(dql, "DynamicQuantizeLinear") || !m.literal(dql) || len(dql.out) != 3 || dql.in[0] < 0 {
		return
	}
	for j := 0; j < 3; j++ {
		if dq.in[j] != dql.out[j] {
			return
		}
	}
	w, sw, wdq, ok := m.weight(n.Inputs[1], st.in[1])
	if !ok {
		return
	}
	k := &dynKernel{qdqBase: qdqBase{pattern: "DynamicQuantizeMatMul", nodes: nodesOf(m, li, di)}, conv: isConv}
	k.nodes = append(k.nodes, n)
	consumed := []int{i}
	if wdq >= 0 {
		consumed = append(consumed, wdq)
	}
	var cout int
	var bias *tensor.Tensor
	switch {
	case isConv:
		a, err := parseQConv(n)
		if err != nil || w.NDim() < 3 || (sw.axis >= 0 && sw.axis != 0) || w.Dim(0)%a.group != 0 {
			return
		}
		k.attrs, k.wsh, cout = a, w.Shape(), w.Dim(0)
		k.pattern = "DynamicQuantizeConv"
		if optValue(n, 2) != nil {
			if bias = m.constOf(optValue(n, 2)); bias == nil {
				return
			}
		}
	case isOp(st, "MatMul"):
		if k.k, k.n, w, _, ok = linearWeight(n, w, sw.axis); !ok {
			return
		}
	default:
		var beta float32
		if k.k, k.n, w, beta, ok = linearWeight(n, w, sw.axis); !ok || beta != 1 {
			return
		}
		if optValue(n, 2) != nil {
			if bias = m.constOf(optValue(n, 2)); bias == nil || (bias.NDim() == 2 && bias.Dim(0) != 1) || bias.NDim() > 2 {
				return
			}
		}
		k.pattern = "DynamicQuantizeGemm"
	}
	if !isConv {
		cout = k.n
	}
	if bias != nil {
		if bias.DType() != tensor.Float32 || bias.Numel() != cout {
			return
		}
		k.bias = bias.F32()
	}
	k.scaleW = make([]float32, cout)
	zws := make([]int32, cout)
	for c := range cout {
		j := 0
		if sw.axis >= 0 {
			j = c
		}
		k.scaleW[c], zws[c] = sw.scale[j], sw.zp[j]
	}
	if isConv {
		groups := k.attrs.group
		per := w.Numel() / max(cout, 1)
		mg := cout / groups
		wv := w.I8()
		for gr := 0; gr < groups; gr++ {
			k.packs = append(k.packs, qgemm.Pack(mg, per, wv[gr*mg*per:(gr+1)*mg*per], per, zws[gr*mg:(gr+1)*mg]))
		}
	} else {
		k.pack = qgemm.Pack(k.n, k.k, w.I8(), k.k, zws)
	}
	ns := step{node: n, kernel: k, in: []int{dql.in[0]}, out: []int{st.out[0]}}
	m.commit(ns, consumed, []actQ{{dq: di, out: dq.out[0]}})
}

// Run computes the dynamic product from float x.
func (k *dynKernel) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	if err := wantFloat("x", x); err != nil {
		return nil, err
	}
	if k.conv {
		return k.runConv(f, x)
	}
	if x.NDim() < 1 || x.Dim(-1) != k.k {
		return nil, fmt.Errorf("x %v does not fit a weight of %d rows", x.Shape(), k.k)
	}
	rows := shapeNumel(x.Shape()[:x.NDim()-1])
	shape := append(append([]int{}, x.Shape()[:x.NDim()-1]...), k.n)
	y := f.allocF32(rows * k.n)
	if _, ok := qdyn.Linear(qdyn.ONNX, rows, x.F32(), k.k, k.pack, k.scaleW, k.bias, y, k.n); !ok {
		return nil, fmt.Errorf("x holds NaN or an infinity")
	}
	if rows == 0 || k.n == 0 {
		return []*tensor.Tensor{tensor.FromFloat32(make([]float32, rows*k.n), shape...)}, nil
	}
	return []*tensor.Tensor{nnTensor(y, shape)}, nil
}

// runConv quantizes the whole input with ONNX's rule and runs the
// convolution as per-group GEMMs of input patches with a float epilogue.
func (k *dynKernel) runConv(f *Frame, x *tensor.Tensor) ([]*tensor.Tensor, error) {
	g, osh, err := k.geo.get(k.attrs, x.Shape(), k.wsh)
	if err != nil {
		return nil, err
	}
	xv := x.F32()
	p, ok := qdyn.ScanActivations(qdyn.ONNX, 1, len(xv), xv, len(xv))
	if !ok {
		return nil, fmt.Errorf("x holds NaN or an infinity")
	}
	codes := make([]uint8, len(xv))
	qdyn.Quantize(codes, xv, p.Scale, p.ZeroPoint, p.QMin, p.QMax)
	K, P := shapeNumel(g.k), shapeNumel(g.out)
	out := f.allocF32(g.batch * g.cout * P)
	cg, mg := g.cin/g.group, g.cout/g.group
	q := cg * K
	if P == 0 || len(out) == 0 || q == 0 {
		if len(out) > 0 {
			return nil, fmt.Errorf("empty convolution %v x %v", x.Shape(), k.wsh)
		}
		return []*tensor.Tensor{nnTensor(out, osh)}, nil
	}
	src := g.taps()
	a := make([]uint8, P*q)
	c := make([]float32, P*mg)
	za := uint8(p.ZeroPoint)
	for b := 0; b < g.batch; b++ {
		for gr := 0; gr < g.group; gr++ {
			g.patches(codes, b, gr, src, za, a)
			d := &qgemm.Dequant{ScaleA: p.Scale, ScaleW: k.scaleW[gr*mg : (gr+1)*mg]}
			if k.bias != nil {
				d.Bias = k.bias[gr*mg : (gr+1)*mg]
			}
			qgemm.GemmF32(P, a, q, p.ZeroPoint, k.packs[gr], d, c, mg)
			base := (b*g.cout + gr*mg) * P
			for m := 0; m < mg; m++ {
				dst := out[base+m*P : base+(m+1)*P]
				for pp := range dst {
					dst[pp] = c[pp*mg+m]
				}
			}
		}
	}
	return []*tensor.Tensor{nnTensor(out, osh)}, nil
}
