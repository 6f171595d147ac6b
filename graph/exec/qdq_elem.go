package exec

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/kernels/qelem"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// Elementwise QDQ patterns, bit-identical to the literal graph:
//
//   - a region: a connected set of float elementwise nodes between one
//     DequantizeLinear and one QuantizeLinear, whose other inputs are
//     one-element constants (Sigmoid, HardSwish, x*Clip(x+3, 0, 6)/6, a
//     Mul by a scalar, or no node at all: a requantization). Its output
//     for each of the 256 codes is computed at compile time by running
//     the region's own float kernels on them and quantizing, so the
//     256-entry table is the literal graph's result for every code; one
//     table lookup per element.
//   - binary: Add, Sub, Mul or Div of two DQ'd activations [-> Relu |
//     Clip] -> Q, broadcast as ONNX: per element, the two dequantized
//     values (from 256-entry float tables of DequantizeLinear's values),
//     the float32 operation the float kernel does, and QuantizeLinear's
//     rounding, in blocks that never materialize float tensors. A Relu or
//     Clip is a clamp of the quantized result (quantization is monotonic,
//     so clamping after quantizing equals quantizing the clamped value).

// regionOps are the operators whose output element i depends only on
// input element i (and one-element constants).
var regionOps = map[string]bool{
	"Relu": true, "LeakyRelu": true, "PRelu": true, "Sigmoid": true, "HardSigmoid": true, "HardSwish": true,
	"Tanh": true, "Elu": true, "Selu": true, "Celu": true, "Softplus": true, "Softsign": true, "Gelu": true,
	"Erf": true, "Exp": true, "Log": true, "Sqrt": true, "Reciprocal": true, "Neg": true, "Abs": true,
	"Floor": true, "Ceil": true, "Round": true, "Sin": true, "Cos": true, "Clip": true, "Add": true,
	"Sub": true, "Mul": true, "Div": true, "Pow": true, "Min": true, "Max": true, "Identity": true,
	"ThresholdedRelu": true, "Mish": true, "Sign": true,
}

// maxRegion bounds the steps of a region.
const maxRegion = 32

// elementwise reports whether st is a float elementwise step a region may
// hold.
func elementwise(st *step) bool {
	if len(st.out) != 1 || st.out[0] < 0 || st.node == nil {
		return false
	}
	if _, ok := st.kernel.(*ewFused); ok {
		return true
	}
	return (st.node.Domain == "" || st.node.Domain == "ai.onnx") && regionOps[st.node.OpType]
}

// lutKernel maps each element through a 256-entry table.
type lutKernel struct {
	qdqBase
	tab                 *qelem.Table
	identity            bool // the table is the identity and the types agree
	inSigned, outSigned bool
	rank                int // the least output rank (one-element constants' broadcast)
	// chans holds one table per channel (axis 1) instead of tab.
	chans []qelem.Table
}

// matchRegion fuses the region ending at the QuantizeLinear step i.
func (m *qdqFuser) matchRegion(i int) {
	st := &m.sp.steps[i]
	if !isOp(st, "QuantizeLinear") || !m.live(i) || len(st.in) < 2 || st.in[0] < 0 {
		return
	}
	s := st.in[0]
	var q outQ
	var ok bool
	var src actQ
	region := map[int]bool{}
	// Constants that vary along axis 1 (per channel) make a table per
	// channel: their shapes, and BatchNormalization steps.
	var chanShapes [][]int
	perChannel := false
	if a, isAct := m.actOrAxis(s); isAct {
		// DequantizeLinear -> QuantizeLinear: a requantization.
		if q, ok = m.quantStep(i); !ok {
			return
		}
		src = a
	} else {
		if q, ok = m.quantOut(s); !ok {
			if q, ok = m.quantOutAxis(s); !ok {
				return
			}
		}
		if q.q != i {
			return
		}
		found := false
		var visit func(s int) bool
		visit = func(s int) bool {
			if c := m.si.constant(s); c != nil {
				if c.Numel() != 1 {
					chanShapes = append(chanShapes, c.Shape())
				}
				return true
			}
			if a, isAct := m.actOrAxis(s); isAct {
				if found && a.out != src.out {
					return false
				}
				src, found = a, true
				return true
			}
			p, has := m.producer[s]
			if !has || !m.live(p) {
				return false
			}
			if region[p] {
				return true
			}
			ps := &m.sp.steps[p]
			bn := isOp(ps, "BatchNormalization") && len(ps.out) >= 1 && ps.out[0] >= 0 && len(ps.in) == 5
			if bn {
				for _, o := range ps.out[1:] {
					if o >= 0 {
						return false
					}
				}
				perChannel = true
			}
			if len(region) >= maxRegion || (!bn && !elementwise(ps)) {
				return false
			}
			region[p] = true
			if bn {
				// Scale, bias, mean and variance: constants per channel.
				for _, in := range ps.in[1:] {
					if m.si.constant(in) == nil {
						return false
					}
				}
				return visit(ps.in[0])
			}
			for _, in := range ps.in {
				if in >= 0 && !visit(in) {
					return false
				}
			}
			return true
		}
		if !visit(s) || !found {
			return
		}
		for p := range region {
			o := m.sp.steps[p].out[0]
			if m.si.pinned[o] {
				return
			}
			for _, r := range m.readers[o] {
				if !region[r] && r != i {
					return
				}
			}
		}
	}
	var k *lutKernel
	if perChannel || len(chanShapes) > 0 || src.scales != nil || q.scales != nil {
		k, ok = m.channelTables(src, q, region, s, chanShapes)
	} else {
		k, ok = m.regionTable(src, q, region, s)
	}
	if !ok {
		return
	}
	consumed := []int{i}
	for p := range region {
		consumed = append(consumed, p)
	}
	sortInts(consumed)
	k.nodes = append(k.nodes, m.sp.steps[src.dq].node)
	for _, p := range consumed {
		k.nodes = append(k.nodes, m.sp.steps[p].node)
	}
	if len(region) == 0 {
		k.pattern = "QLinearRequantize"
	}
	m.commit(step{node: st.node, kernel: k, in: []int{src.src}, out: []int{q.out}}, consumed, []actQ{src})
}

// regionCodes returns DequantizeLinear's values of the 256 stored bytes.
func regionCodes(src actQ) []float32 {
	codes := make([]float32, 256)
	for b := range codes {
		codes[b] = qmath.Dequantize(storedValue(byte(b), src.signed), src.zp, src.scale)
	}
	return codes
}

// channelTables evaluates a region with per-channel constants on a tensor
// [1, C, 1, ..., 1, 256] holding the 256 codes in every channel (the
// input's rank r >= 3, from its declared type), so that each constant
// broadcasts as it does on [N, C, ...], and quantizes one table per
// channel.
func (m *qdqFuser) channelTables(src actQ, q outQ, region map[int]bool, s int, shapes [][]int) (*lutKernel, bool) {
	xv := m.sp.values[src.src]
	if xv == nil || !xv.Type.HasShape || len(xv.Type.Shape) < 3 {
		return nil, false
	}
	r := len(xv.Type.Shape)
	C := 0
	if d := xv.Type.Shape[1]; d.Known() {
		C = int(d.Size)
	}
	for _, sh := range shapes {
		if len(sh) > r {
			return nil, false
		}
		for d, n := range sh {
			ax := d + r - len(sh)
			if n == 1 {
				continue
			}
			if ax != 1 || (C != 0 && n != C) {
				return nil, false
			}
			C = n
		}
	}
	for p := range region {
		if st := &m.sp.steps[p]; isOp(st, "BatchNormalization") {
			c := m.si.constant(st.in[1])
			if c == nil || (C != 0 && c.Numel() != C) {
				return nil, false
			}
			C = c.Numel()
		}
	}
	for _, sc := range [][]float32{src.scales, q.scales} {
		if sc != nil {
			if C != 0 && len(sc) != C {
				return nil, false
			}
			C = len(sc)
		}
	}
	if C <= 0 || C > 1<<16 {
		return nil, false
	}
	x := make([]float32, C*256)
	for c := 0; c < C; c++ {
		a := src
		if src.scales != nil {
			a.scale = src.scales[c]
		}
		copy(x[c*256:], regionCodes(a))
	}
	shape := make([]int, r)
	for d := range shape {
		shape[d] = 1
	}
	shape[1], shape[r-1] = C, 256
	var idx []int
	for p := range region {
		idx = append(idx, p)
	}
	sortInts(idx)
	vals, err := runSteps(m.sp, m.si, idx, map[int]*tensor.Tensor{src.out: tensor.FromFloat32(x, shape...)})
	if err != nil {
		return nil, false
	}
	res := vals[s]
	if res == nil || res.DType() != tensor.Float32 || !tensor.SameShape(res.Shape(), shape) {
		return nil, false
	}
	k := &lutKernel{qdqBase: qdqBase{pattern: "QLinearLUT (per channel)"}, inSigned: src.signed, outSigned: q.signed, rank: r}
	y := make([]byte, C*256)
	for c := 0; c < C; c++ {
		sy := q.scale
		if q.scales != nil {
			sy = q.scales[c]
		}
		quantizeBytes(y[c*256:(c+1)*256], res.F32()[c*256:(c+1)*256], sy, q.zp, q.lo(), q.hi(), q.signed)
	}
	k.chans = make([]qelem.Table, C)
	for c := range k.chans {
		copy(k.chans[c][:], y[c*256:(c+1)*256])
	}
	return k, true
}

// regionTable evaluates the region (steps of region, from the activation
// src to float slot s) on the 256 codes with its own kernels and
// quantizes the results.
func (m *qdqFuser) regionTable(src actQ, q outQ, region map[int]bool, s int) (*lutKernel, bool) {
	codes := regionCodes(src)
	var idx []int
	for p := range region {
		idx = append(idx, p)
	}
	sortInts(idx)
	vals, err := runSteps(m.sp, m.si, idx, map[int]*tensor.Tensor{src.out: tensor.FromFloat32(codes, 256)})
	if err != nil {
		return nil, false
	}
	r := vals[s]
	if r == nil || r.DType() != tensor.Float32 || r.Numel() != 256 {
		return nil, false
	}
	k := &lutKernel{qdqBase: qdqBase{pattern: "QLinearLUT"}, tab: new(qelem.Table), inSigned: src.signed, outSigned: q.signed, rank: r.NDim()}
	if len(region) == 0 {
		k.rank = 0
	}
	rv := r.F32()
	k.identity = src.signed == q.signed
	for b := 0; b < 256; b++ {
		v := qmath.Quantize(rv[b], q.scale, q.zp, q.lo(), q.hi())
		k.tab[b] = byte(v)
		k.identity = k.identity && v == storedValue(byte(b), src.signed)
	}
	return k, true
}

// actOrAxis is act, or actAxis for per-channel qparams.
func (m *qdqFuser) actOrAxis(s int) (actQ, bool) {
	if a, ok := m.act(s); ok {
		return a, true
	}
	return m.actAxis(s)
}

// quantStep checks that step j is a QuantizeLinear with one scale and
// zero point (whatever the readers of its input).
func (m *qdqFuser) quantStep(j int) (outQ, bool) {
	r := &m.sp.steps[j]
	if len(r.in) == 0 || r.in[0] < 0 {
		return outQ{}, false
	}
	// quantOut checks privacy of the input; check the rest with a copy
	// of the reader lists that makes it private.
	s := r.in[0]
	saved, uses, pinned := m.readers[s], m.si.uses[s], m.si.pinned[s]
	m.readers[s], m.si.uses[s], m.si.pinned[s] = []int{j}, 1, false
	q, ok := m.quantOut(s)
	if !ok {
		q, ok = m.quantOutAxis(s)
	}
	m.readers[s], m.si.uses[s], m.si.pinned[s] = saved, uses, pinned
	return q, ok
}

func sortInts(s []int) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Run maps x through the table.
func (k *lutKernel) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	if err := wantBytes(x, k.inSigned); err != nil {
		return nil, err
	}
	shape := x.Shape()
	if len(shape) < k.rank {
		shape = append(make([]int, k.rank-len(shape)), shape...)
		for i := 0; i < k.rank-x.NDim(); i++ {
			shape[i] = 1
		}
	}
	if k.chans != nil {
		return k.runChannels(f, x)
	}
	if k.identity {
		if len(shape) == x.NDim() {
			return []*tensor.Tensor{x}, nil
		}
		return []*tensor.Tensor{x.Reshape(shape...)}, nil
	}
	y := f.allocBytes(x.Numel())
	qelem.Lookup(y, bytesOf(x), k.tab)
	return []*tensor.Tensor{byteTensor(y, k.outSigned, shape...)}, nil
}

// runChannels maps each channel's planes through its table.
func (k *lutKernel) runChannels(f *Frame, x *tensor.Tensor) ([]*tensor.Tensor, error) {
	C := len(k.chans)
	if x.NDim() != k.rank || x.Dim(1) != C {
		return nil, fmt.Errorf("input %v does not have the %d channels (rank %d) of the tables", x.Shape(), C, k.rank)
	}
	inner := shapeNumel(x.Shape()[2:])
	planes := x.Dim(0) * C
	xb := bytesOf(x)
	y := f.allocBytes(len(xb))
	parallel.For(planes, max(1, byteGrain/max(1, inner)), func(s, e int) {
		for p := s; p < e; p++ {
			lutRow(y[p*inner:(p+1)*inner], xb[p*inner:(p+1)*inner], &k.chans[p%C])
		}
	})
	return []*tensor.Tensor{byteTensor(y, k.outSigned, x.Shape()...)}, nil
}

// storedValue is the integer a stored byte holds.
func storedValue(b byte, signed bool) int32 {
	if signed {
		return int32(int8(b))
	}
	return int32(b)
}

// byteGrain is the fewest 8-bit elements one goroutine takes in the int8
// elementwise, table and layout steps: at several bytes a nanosecond, a
// smaller share would take less time than handing it to another core.
const byteGrain = 1 << 16
