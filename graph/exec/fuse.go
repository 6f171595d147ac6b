package exec

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// Compile-time rewrites of a compiled graph's steps, after constant
// folding:
//
//   - a Conv or ConvTranspose with constant weights absorbs the
//     BatchNormalization, and the Mul and Add by scalar or
//     per-output-channel constants, that follow it
//     as the only readers of its output (ONNX Runtime's ConvBNFusion,
//     ConvMulFusion and ConvAddFusion): the weights and bias are rescaled
//     once, which changes results by float32 rounding only;
//   - a 16-bit QuantizeLinear whose codes only a DequantizeLinear with
//     the same qparams reads becomes, with it, one elementwise round
//     trip (roundtrip16.go), bit-identical to the two nodes;
//   - runs of float32 elementwise nodes become one ewFused step, whose
//     result is bit-identical to the nodes run one by one.
//
// A value is only ever removed when every reader of it is rewritten with
// it: values the graph returns, and values subgraphs read, are kept.

var errNoOutput = errors.New("kernel computed no output")

// errAt wraps a kernel error with its node, as Frame.Run does.
func errAt(n *graph.Node, err error) error {
	if strings.HasPrefix(err.Error(), "exec: ") {
		return err
	}
	return fmt.Errorf("exec: node %s: %w", n, err)
}

// stepInfo is what the rewrites know of a subprogram's values.
type stepInfo struct {
	sp     *Subprogram
	uses   []int  // readers per slot (a step reading a value twice counts twice)
	pinned []bool // returned by the graph or read by a subgraph
	input  []bool // a graph input (its default value may be replaced)
}

func newStepInfo(sp *Subprogram) *stepInfo {
	si := &stepInfo{sp: sp, uses: make([]int, sp.nslots), pinned: make([]bool, sp.nslots), input: make([]bool, sp.nslots)}
	for _, st := range sp.steps {
		for _, s := range st.in {
			if s >= 0 {
				si.uses[s]++
			}
		}
	}
	for _, s := range sp.outputs {
		si.pinned[s] = true
	}
	for _, s := range sp.inputs {
		si.input[s] = true
	}
	for _, n := range sp.g.Nodes {
		for _, sg := range n.Subgraphs() {
			for _, v := range outerValues(sg) {
				if s, ok := sp.slots[v]; ok {
					si.pinned[s] = true
				}
			}
		}
	}
	return si
}

// constant returns the compile-time value of slot s, or nil.
func (si *stepInfo) constant(s int) *tensor.Tensor {
	if s < 0 || si.input[s] {
		return nil
	}
	return si.sp.consts[s]
}

// optimize rewrites sp's steps.
func optimize(sp *Subprogram) {
	foldConvAffine(sp)
	foldRoundTrips16(sp)
	fuseElementwise(sp)
}

// isOp reports whether st runs ONNX operator op.
func isOp(st *step, op string) bool {
	return st.node != nil && st.node.OpType == op && (st.node.Domain == "" || st.node.Domain == "ai.onnx")
}

// foldConvAffine folds BatchNormalization, Mul and Add steps into the Conv
// and ConvTranspose steps before them.
func foldConvAffine(sp *Subprogram) {
	si := newStepInfo(sp)
	removed := make([]bool, len(sp.steps))
	for i := range sp.steps {
		st := &sp.steps[i]
		if removed[i] || len(st.out) != 1 || st.out[0] < 0 || len(st.in) < 2 {
			continue
		}
		var w, b *tensor.Tensor
		var group int
		switch k := st.kernel.(type) {
		case *convKernel:
			w, b, group = k.w, k.b, k.group
		case *convTKernel:
			w, b, group = k.w, k.b, k.group
		}
		if w == nil || !(isOp(st, "Conv") || isOp(st, "ConvTranspose")) {
			continue
		}
		if si.constant(st.in[1]) == nil || (len(st.in) > 2 && st.in[2] >= 0 && si.constant(st.in[2]) == nil) {
			continue
		}
		wl := newWeightLayout(w, group, isOp(st, "ConvTranspose"))
		w0, b0 := w, b
		for {
			o := st.out[0]
			if si.uses[o] != 1 || si.pinned[o] {
				break
			}
			j := i + 1
			for j < len(sp.steps) && (removed[j] || !reads(&sp.steps[j], o)) {
				j++
			}
			if j == len(sp.steps) {
				break
			}
			nw, nb, ok := foldInto(si, &sp.steps[j], o, w, b, wl)
			if !ok {
				break
			}
			w, b = nw, nb
			removed[j] = true
			st.out = sp.steps[j].out
		}
		if w == w0 && b == b0 {
			continue
		}
		switch k := st.kernel.(type) {
		case *convKernel:
			nk := *k
			nk.w, nk.b = w, b
			st.kernel = nk.packed()
		case *convTKernel:
			nk := *k
			nk.w, nk.b = w, b
			st.kernel = &nk
		}
	}
	var steps []step
	for i, st := range sp.steps {
		if !removed[i] {
			steps = append(steps, st)
		}
	}
	sp.steps = steps
}

// weightLayout maps the elements of a Conv weight [O, C/g, k...] or a
// ConvTranspose weight [C, O/g, k...] to their output channels.
type weightLayout struct {
	outC, rank   int
	transposed   bool
	per          int // Conv: elements per output channel
	og, cg, kvol int // ConvTranspose: outputs and inputs per group, kernel size
}

func newWeightLayout(w *tensor.Tensor, group int, transposed bool) weightLayout {
	l := weightLayout{rank: w.NDim(), transposed: transposed}
	if !transposed {
		l.outC = w.Dim(0)
		l.per = w.Numel() / max(1, l.outC)
		return l
	}
	l.og, l.cg = w.Dim(1), w.Dim(0)/group
	l.outC = l.og * group
	l.kvol = w.Numel() / max(1, w.Dim(0)*w.Dim(1))
	return l
}

// channel returns the output channel of weight element i.
func (l *weightLayout) channel(i int) int {
	if !l.transposed {
		return i / l.per
	}
	return (i/(l.og*l.kvol))/l.cg*l.og + (i/l.kvol)%l.og
}

// reads reports whether st reads slot s.
func reads(st *step, s int) bool {
	for _, v := range st.in {
		if v == s {
			return true
		}
	}
	return false
}

// foldInto returns the weight and bias of a Conv (weight w, bias b or nil)
// followed by step st reading its output o, or false when st cannot be
// folded.
func foldInto(si *stepInfo, st *step, o int, w, b *tensor.Tensor, wl weightLayout) (*tensor.Tensor, *tensor.Tensor, bool) {
	outC, rank := wl.outC, wl.rank
	if outC == 0 || len(st.out) != 1 || st.out[0] < 0 {
		return nil, nil, false
	}
	bias := make([]float32, outC)
	if b != nil {
		if b.Numel() != outC {
			return nil, nil, false
		}
		copy(bias, b.F32())
	}
	wv := w.F32()
	switch {
	case isOp(st, "BatchNormalization"):
		bk, ok := st.kernel.(*bnKernel)
		if !ok || len(st.in) != 5 || st.in[0] != o {
			return nil, nil, false
		}
		var p [4][]float32
		for i := range p {
			t := si.constant(st.in[1+i])
			if t == nil || t.DType() != tensor.Float32 || t.Numel() != outC {
				return nil, nil, false
			}
			p[i] = t.F32()
		}
		scale, beta, mean, vr := p[0], p[1], p[2], p[3]
		a := make([]float32, outC)
		for c := range outC {
			a[c] = scale[c] / float32(math.Sqrt(float64(vr[c]+bk.eps)))
			bias[c] = (bias[c]-mean[c])*a[c] + beta[c]
		}
		nw := make([]float32, len(wv))
		for i, v := range wv {
			nw[i] = v * a[wl.channel(i)]
		}
		return tensor.FromFloat32(nw, w.Shape()...), tensor.FromFloat32(bias, outC), true
	case isOp(st, "Mul"), isOp(st, "Add"):
		if len(st.in) != 2 || (st.in[0] == o) == (st.in[1] == o) {
			return nil, nil, false
		}
		other := st.in[0]
		if other == o {
			other = st.in[1]
		}
		c := si.constant(other)
		if c == nil || c.DType() != tensor.Float32 || !perChannel(c.Shape(), outC, rank) {
			return nil, nil, false
		}
		cv := c.F32()
		at := func(ch int) float32 {
			if len(cv) == 1 {
				return cv[0]
			}
			return cv[ch]
		}
		if isOp(st, "Add") {
			for ch := range outC {
				bias[ch] += at(ch)
			}
			return w, tensor.FromFloat32(bias, outC), true
		}
		nw := make([]float32, len(wv))
		for i, v := range wv {
			nw[i] = v * at(wl.channel(i))
		}
		for ch := range outC {
			bias[ch] *= at(ch)
		}
		return tensor.FromFloat32(nw, w.Shape()...), tensor.FromFloat32(bias, outC), true
	}
	return nil, nil, false
}

// perChannel reports whether a constant of shape s broadcast against a
// Conv output of rank r with c channels keeps the output's shape and has
// one value, or one value per channel (axis 1).
func perChannel(s []int, c, r int) bool {
	if len(s) > r {
		return false
	}
	n := 1
	for _, d := range s {
		n *= d
	}
	if n == 1 {
		return true
	}
	if n != c {
		return false
	}
	off := r - len(s)
	for i, d := range s {
		if d != 1 && i+off != 1 {
			return false
		}
	}
	return true
}

// ewCodes maps the fusable operators to their codes.
var ewCodes = map[string]ewCode{
	"Add": ewcAdd, "Sub": ewcSub, "Mul": ewcMul, "Div": ewcDiv, "Clip": ewcClip, "Relu": ewcRelu,
	"Sigmoid": ewcSigmoid, "Tanh": ewcTanh, "HardSigmoid": ewcHardSigmoid, "HardSwish": ewcHardSwish,
}

// ewCodeOf returns the code of a fusable step.
func ewCodeOf(si *stepInfo, st *step) (ewCode, bool) {
	n := st.node
	if n == nil || (n.Domain != "" && n.Domain != "ai.onnx") || len(st.out) != 1 || st.out[0] < 0 {
		return 0, false
	}
	if _, ok := st.kernel.(*roundTrip16); ok {
		return ewcRoundTrip16, len(st.in) == 1 && st.in[0] >= 0
	}
	c, ok := ewCodes[n.OpType]
	if !ok {
		return 0, false
	}
	switch c {
	case ewcAdd, ewcSub, ewcMul, ewcDiv:
		if len(st.in) != 2 || st.in[0] < 0 || st.in[1] < 0 {
			return 0, false
		}
	case ewcClip:
		if _, ok := st.kernel.(*clipKernel); !ok || len(st.in) < 1 || st.in[0] < 0 {
			return 0, false
		}
		for _, s := range st.in[1:] {
			if s >= 0 && si.constant(s) == nil {
				return 0, false
			}
		}
	default:
		if len(st.in) != 1 || st.in[0] < 0 {
			return 0, false
		}
	}
	return c, true
}

// maxFusedInputs bounds the non-constant inputs of a fused group.
const maxFusedInputs = 4

// fuseElementwise replaces runs of consecutive fusable steps, each reading
// a value of the run, by ewFused steps.
func fuseElementwise(sp *Subprogram) {
	si := newStepInfo(sp)
	var steps []step
	for i := 0; i < len(sp.steps); {
		if _, ok := ewCodeOf(si, &sp.steps[i]); !ok {
			steps = append(steps, sp.steps[i])
			i++
			continue
		}
		// Grow the run.
		produced := map[int]bool{sp.steps[i].out[0]: true}
		ext := map[int]bool{}
		addExt := func(st *step) bool {
			for _, s := range st.in {
				if s >= 0 && !produced[s] && si.constant(s) == nil {
					ext[s] = true
				}
			}
			return len(ext) <= maxFusedInputs
		}
		addExt(&sp.steps[i])
		j := i + 1
		for j < len(sp.steps) {
			st := &sp.steps[j]
			if _, ok := ewCodeOf(si, st); !ok {
				break
			}
			linked := false
			for _, s := range st.in {
				linked = linked || (s >= 0 && produced[s])
			}
			if !linked || !addExt(st) {
				break
			}
			produced[st.out[0]] = true
			j++
		}
		// Shrink it until every value but the last is read only inside it.
		for ; j > i+1; j-- {
			if closedRun(si, sp.steps[i:j]) {
				break
			}
		}
		steps = append(steps, newFusedStep(si, sp.steps[i:j]))
		i = j
	}
	sp.steps = steps
}

// closedRun reports whether the values run computes, but its last, are
// read only by run's steps.
func closedRun(si *stepInfo, run []step) bool {
	inside := map[int]int{}
	for _, st := range run {
		for _, s := range st.in {
			if s >= 0 {
				inside[s]++
			}
		}
	}
	for _, st := range run[:len(run)-1] {
		o := st.out[0]
		if si.pinned[o] || si.uses[o] != inside[o] {
			return false
		}
	}
	return true
}

// newFusedStep builds the ewFused step of a run.
func newFusedStep(si *stepInfo, run []step) step {
	k := &ewFused{}
	inIdx := map[int]int{}
	var ins []int
	input := func(s int) int {
		if i, ok := inIdx[s]; ok {
			return i
		}
		inIdx[s] = len(ins)
		ins = append(ins, s)
		return len(ins) - 1
	}
	reg := map[int]int{}
	operand := func(s int) int {
		if r, ok := reg[s]; ok {
			return -1 - r
		}
		return input(s)
	}
	for r, st := range run {
		code, _ := ewCodeOf(si, &st)
		in := ewInstr{code: code, a: operand(st.in[0]), b: -1, lo: -1, hi: -1}
		switch code {
		case ewcAdd, ewcSub, ewcMul, ewcDiv:
			in.b = operand(st.in[1])
		case ewcClip:
			ck := st.kernel.(*clipKernel)
			in.p0, in.p1 = float32(math.Inf(-1)), float32(math.Inf(1))
			if ck.attrs {
				in.p0, in.p1 = ck.min, ck.max
			} else {
				if len(st.in) > 1 && st.in[1] >= 0 {
					in.lo = input(st.in[1])
				}
				if len(st.in) > 2 && st.in[2] >= 0 {
					in.hi = input(st.in[2])
				}
			}
		case ewcHardSigmoid:
			in.p0, _ = st.node.Float("alpha", 0.2)
			in.p1, _ = st.node.Float("beta", 0.5)
		case ewcRoundTrip16:
			in.rt = st.kernel.(*roundTrip16)
		}
		k.instrs = append(k.instrs, in)
		reg[st.out[0]] = r
	}
	// The original steps, on the fused kernel's numbering.
	k.nIn = len(ins)
	num := func(s int) int {
		if s < 0 {
			return -1
		}
		if r, ok := reg[s]; ok {
			return k.nIn + r
		}
		return inIdx[s]
	}
	for _, st := range run {
		o := step{node: st.node, kernel: st.kernel, out: []int{num(st.out[0])}}
		for _, s := range st.in {
			o.in = append(o.in, num(s))
		}
		k.orig = append(k.orig, o)
	}
	last := run[len(run)-1]
	return step{node: last.node, kernel: k, in: ins, out: []int{last.out[0]}}
}
