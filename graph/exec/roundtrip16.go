package exec

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/qelem"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// 16-bit round trips. The layers mixed precision puts at 16 bits run in
// float between their QuantizeLinear/DequantizeLinear pairs, in quanta
// as in ONNX Runtime: every such value goes float -> uint16 or int16
// codes -> float. foldRoundTrips16 makes each pair whose codes only the
// DequantizeLinear reads one step, roundTrip16, that computes
// DQ(Q(x)) element by element with the same functions as the two
// literal kernels (qelem.Quantize32, then qelem.Dequantize32), so the
// values are the same bit for bit, without the codes ever being stored.
// The step is elementwise, so fuseElementwise then runs it inside the
// elementwise chain around it (a hardswish and its affine maps, a
// residual add): one pass over the data where there were three.

// roundTrip16 is a per-tensor 16-bit QuantizeLinear and the
// DequantizeLinear that alone reads its codes, with the same qparams.
type roundTrip16 struct {
	scale  float32
	zp     int32
	lo, hi int32
	q, dq  *graph.Node
}

// rtChunk is how many codes a scratch buffer of apply holds.
const rtChunk = 512

// apply sets d[i] = DQ(Q(a[i])), holding the codes of up to len(codes)
// elements at a time in codes.
func (k *roundTrip16) apply(d, a []float32, codes []int32) {
	a = a[:len(d)]
	for i := 0; i < len(d); i += len(codes) {
		n := min(len(codes), len(d)-i)
		qelem.Quantize32Serial(codes[:n], a[i:i+n], k.scale, k.zp, k.lo, k.hi)
		qelem.Dequantize32Serial(d[i:i+n], codes[:n], k.scale, k.zp)
	}
}

// Run computes DQ(Q(x)) of a float32 tensor.
func (k *roundTrip16) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	if x != nil && x.DType() == tensor.Int32 {
		x = tensor.Cast(x, tensor.Float32) // as the literal QuantizeLinear
	}
	if x == nil || x.DType() != tensor.Float32 {
		return nil, fmt.Errorf("x must be float32 or int32")
	}
	xv := x.F32()
	y := f.allocF32(len(xv))
	parallel.For(len(xv), 1<<14, func(s, e int) {
		var codes [rtChunk]int32
		k.apply(y[s:e], xv[s:e], codes[:])
	})
	return []*tensor.Tensor{nnTensor(y, x.Shape())}, nil
}

// foldRoundTrips16 replaces every 16-bit QuantizeLinear step whose codes
// only one DequantizeLinear step with the same constant per-tensor
// qparams reads (and that the graph does not return) by a roundTrip16
// step computing the DequantizeLinear's output.
func foldRoundTrips16(sp *Subprogram) {
	si := newStepInfo(sp)
	reader := map[int]int{} // slot -> the index of its only reader
	for i, st := range sp.steps {
		for _, s := range st.in {
			if s >= 0 {
				reader[s] = i
			}
		}
	}
	removed := map[int]bool{}
	for i := range sp.steps {
		st := &sp.steps[i]
		if removed[i] || !isOp(st, "QuantizeLinear") || len(st.in) != 3 || len(st.out) != 1 || st.out[0] < 0 || st.in[0] < 0 {
			continue
		}
		o := st.out[0]
		if si.pinned[o] || si.uses[o] != 1 {
			continue
		}
		j := reader[o]
		dq := &sp.steps[j]
		if j <= i || !isOp(dq, "DequantizeLinear") || len(dq.in) != 3 || dq.in[0] != o || len(dq.out) != 1 || dq.out[0] < 0 {
			continue
		}
		k, ok := roundTripOf(si, st, dq)
		if !ok {
			continue
		}
		// The new step sits at the DequantizeLinear's place: its input
		// was computed before the QuantizeLinear, its output is read
		// after the DequantizeLinear.
		sp.steps[j] = step{node: st.node, kernel: k, in: []int{st.in[0]}, out: []int{dq.out[0]}}
		removed[i] = true
	}
	if len(removed) == 0 {
		return
	}
	steps := sp.steps[:0]
	for i, st := range sp.steps {
		if !removed[i] {
			steps = append(steps, st)
		}
	}
	sp.steps = steps
}

// roundTripOf returns the round trip of QuantizeLinear step q and
// DequantizeLinear step dq when both have the same constant scalar scale
// and 16-bit zero point (declared uint16 or int16 on both nodes).
func roundTripOf(si *stepInfo, q, dq *step) (*roundTrip16, bool) {
	qz, dz := q.node.Input(2), dq.node.Input(2)
	if qz == nil || dz == nil || qz.Type.Elem != dz.Type.Elem {
		return nil, false
	}
	lo, hi, ok := quantElemRange(qz.Type.Elem)
	if !ok || (qz.Type.Elem != graph.Uint16 && qz.Type.Elem != graph.Int16) {
		return nil, false
	}
	if od, err := q.node.Int("output_dtype", 0); err != nil || (od != 0 && graph.ElemType(od) != qz.Type.Elem) {
		return nil, false
	}
	scalars := func(st *step) (float32, int32, bool) {
		s, z := si.constant(st.in[1]), si.constant(st.in[2])
		if s == nil || z == nil || s.DType() != tensor.Float32 || z.DType() != tensor.Int32 || s.Numel() != 1 || z.Numel() != 1 {
			return 0, 0, false
		}
		return s.F32()[0], z.I32()[0], true
	}
	s1, z1, ok1 := scalars(q)
	s2, z2, ok2 := scalars(dq)
	if !ok1 || !ok2 || math.Float32bits(s1) != math.Float32bits(s2) || z1 != z2 || !(s1 > 0) || math.IsInf(float64(s1), 0) {
		return nil, false
	}
	if z1 < lo || z1 > hi {
		return nil, false
	}
	return &roundTrip16{scale: s1, zp: z1, lo: lo, hi: hi, q: q.node, dq: dq.node}, true
}
