package quantize

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/passes"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// Convert turns a calibrated model into a QDQ model (PyTorch's
// convert_fx, in ONNX's quantized format): every point gets a
// QuantizeLinear/DequantizeLinear pair with the qparams its observer
// computed, every quantized weight becomes an int8 initializer behind a
// DequantizeLinear, and biases of Conv, ConvTranspose and Gemm become int32
// with scale s_x*s_w[c]. Units with a 16-bit qconfig (Options.Int16) get
// uint16/int16 codes, keep float biases, and raise the model to opset 21. p is not changed: Convert may be called again
// after more calibration. For QAT, Convert quantizes the weights held by
// p.Model's initializers at the time of the call with their fake
// quantizers' qparams.
func Convert(p *Prepared) (*graph.Model, error) {
	if p == nil || p.Model == nil {
		return nil, fmt.Errorf("quantize: Convert: nil prepared model")
	}
	if p.Feeds == 0 && p.hasActivationObservers() {
		return nil, fmt.Errorf("quantize: Convert: no calibration data observed; run Observe on sample inputs before Convert")
	}
	m, vals, nodes := p.Model.CloneMap()
	c := &converter{m: m, names: graph.NamesOf(m.Graph), qp: map[observer.Observer]*tensor.QParams{}, calc: qparamsMemo(), keepSum: p.opts.keepSum()}
	c.observed = seen(c.calc)
	unreached := p.unreached(c.observed)
	quantUnit := map[*graph.Node]bool{}
	for _, u := range p.Units {
		if u.Quantized && !unreached[u] {
			for _, n := range u.Nodes {
				quantUnit[nodes[n]] = true
			}
		}
	}
	// Input equalization of depthwise convolutions, before anything reads
	// the weights it rescales.
	unitOfClone := map[*graph.Node]*Unit{}
	for _, u := range p.Units {
		for _, n := range u.Nodes {
			unitOfClone[nodes[n]] = u
		}
	}
	moved := map[*Point]*graph.Value{}
	reobserve := map[*Unit]bool{}
	var eqs []Equalization
	for _, e := range p.eq {
		if unreached[e.conv] || !c.observed(e.pt) {
			continue
		}
		s, err := e.scales()
		if err != nil {
			continue
		}
		d := nodes[e.conv.Nodes[0]]
		nx, prod, err := c.equalize(d, vals[e.x], s)
		if err != nil {
			return nil, errEqualize(d, err)
		}
		qp, err := e.scaledQParams(s)
		if err != nil {
			return nil, errEqualize(d, err)
		}
		c.qp[e.pt.Observer] = qp
		moved[e.pt] = nx
		reobserve[e.conv] = true
		rec := Equalization{Value: vals[e.x].Name, Consumer: d.Name, Scales: s}
		if prod != nil {
			rec.Producer = prod.Name
		}
		eqs = append(eqs, rec)
		if prod != nil {
			if u := unitOfClone[prod]; u != nil {
				reobserve[u] = true
			}
		}
	}
	users := readers(m.Graph)
	// Activation points.
	for _, pt := range p.Points {
		if !c.observed(pt) {
			continue
		}
		qp, err := c.qparams(pt)
		if err != nil {
			return nil, err
		}
		v := vals[pt.Value]
		if nv, ok := moved[pt]; ok {
			v = nv
		}
		var rd []*graph.Node
		for _, r := range users[v] {
			if pt.all || quantUnit[r] {
				rd = append(rd, r)
			}
		}
		c.insertQDQ(v, qp, rd, pt.all)
	}
	// Weights and biases.
	for _, u := range p.Units {
		if !u.Quantized || u.Weight == nil || unreached[u] {
			continue
		}
		n := nodes[u.Weight.Node]
		wobs := u.Weight.Observer
		if reobserve[u] {
			// Equalization rescaled the weight: observe the new one.
			w := *u.Weight
			w.Node, w.Observer = n, u.QConfig.Weight()
			if err := observeWeight(&w); err != nil {
				return nil, err
			}
			wobs = w.Observer
		}
		wqp, err := wobs.CalculateQParams()
		if err != nil {
			return nil, fmt.Errorf("quantize: Convert: weight of node %s: %w", n, err)
		}
		axis := u.Weight.Axis
		if len(wqp.Scale) == 1 {
			axis = -1
		}
		if err := c.quantizeWeight(n, u.Weight.Input, wqp, axis, wobs.Config()); err != nil {
			return nil, err
		}
		if bi := biasInput(n); bi > 0 {
			in := p.pointFor(u.Inputs[0])
			if in == nil {
				continue
			}
			xqp, err := c.qparams(in)
			if err != nil {
				return nil, err
			}
			if is16Bit(xqp) || is16Bit(wqp) {
				// s_x*s_w of 16-bit codes is so small that int32 bias
				// codes would overflow: the bias stays float.
				continue
			}
			if err := c.quantizeBias(n, bi, xqp.Scale, wqp.Scale); err != nil {
				return nil, err
			}
		}
	}
	if err := graph.Sort(m.Graph); err != nil {
		return nil, fmt.Errorf("quantize: Convert: %w", err)
	}
	graph.EliminateDeadCode(m.Graph) // the float weights the int8 ones replace (needs the sorted order)
	if err := graph.Verify(m.Graph); err != nil {
		return nil, fmt.Errorf("quantize: Convert: the QDQ graph does not verify: %w", err)
	}
	if m.Opset("") < 13 {
		m.Opsets[""] = 13
	}
	if m.IRVersion < 7 {
		m.IRVersion = 7
	}
	if c.wide && m.Opset("") < 21 {
		// uint16 and int16 QuantizeLinear/DequantizeLinear are opset 21.
		if _, err := passes.UpgradeOpset(m, 21); err != nil {
			return nil, fmt.Errorf("quantize: Convert: raising the opset to 21 for 16-bit QDQ: %w", err)
		}
	}
	m.ProducerName, m.ProducerVersion = "quanta", "graph-mode quantization"
	if len(eqs) > 0 {
		b, err := json.Marshal(eqs)
		if err != nil {
			return nil, fmt.Errorf("quantize: Convert: %w", err)
		}
		m.Metadata = append(m.Metadata, graph.StringPair{Key: EqualizationKey, Value: string(b)})
	}
	return m, nil
}

// qparamsMemo returns a function computing each observer's qparams once
// (a histogram's range search is not cheap) for one Convert or Unreached
// call; calibration may go on between calls.
func qparamsMemo() func(o observer.Observer) (*tensor.QParams, error) {
	type result struct {
		q   *tensor.QParams
		err error
	}
	memo := map[observer.Observer]result{}
	return func(o observer.Observer) (*tensor.QParams, error) {
		r, ok := memo[o]
		if !ok {
			r.q, r.err = o.CalculateQParams()
			memo[o] = r
		}
		return r.q, r.err
	}
}

// seen returns whether a point's observer has seen data (values in If
// branches the calibration data never took have not), by calc.
func seen(calc func(observer.Observer) (*tensor.QParams, error)) func(pt *Point) bool {
	return func(pt *Point) bool {
		if pt.Fixed {
			return true
		}
		_, err := calc(pt.Observer)
		return !errors.Is(err, observer.ErrNotObserved)
	}
}

func (p *Prepared) hasActivationObservers() bool {
	for _, pt := range p.Points {
		if !pt.Fixed {
			return true
		}
	}
	return false
}

// unreached returns the quantized units some of whose points saw no
// calibration data: Convert keeps them float.
func (p *Prepared) unreached(observed func(*Point) bool) map[*Unit]bool {
	out := map[*Unit]bool{}
	for _, u := range p.Units {
		if !u.Quantized {
			continue
		}
		vs := append([]*graph.Value(nil), u.Inputs...)
		if u.OutputQuantized {
			vs = append(vs, u.Outputs...)
		}
		for _, v := range vs {
			if pt := p.pointFor(v); pt != nil && !observed(pt) {
				out[u] = true
			}
		}
	}
	return out
}

// Unreached lists the quantized units whose observers saw no calibration
// data (typically in If branches the data never took), by their first
// node; Convert leaves them float.
func (p *Prepared) Unreached() []string {
	un := p.unreached(seen(qparamsMemo()))
	var out []string
	for _, u := range p.Units {
		if un[u] {
			out = append(out, u.Nodes[0].String())
		}
	}
	return out
}

// pointFor returns the point of v, or nil.
func (p *Prepared) pointFor(v *graph.Value) *Point {
	if pts := p.byValue[v]; len(pts) > 0 {
		return pts[0]
	}
	return nil
}

// biasInput returns the bias input index of a Conv, ConvTranspose or Gemm
// node whose bias is a constant float 1-D tensor, or -1.
func biasInput(n *graph.Node) int {
	switch n.OpType {
	case "Conv", "ConvTranspose":
	case "Gemm":
		if beta, _ := n.Float("beta", 1); beta != 1 {
			return -1
		}
		if alpha, _ := n.Float("alpha", 1); alpha != 1 {
			return -1
		}
	default:
		return -1
	}
	b := n.Input(2)
	if b == nil || !b.IsConst() || b.Const.DType() != tensor.Float32 || b.Const.NDim() != 1 {
		return -1
	}
	return 2
}

type converter struct {
	m     *graph.Model
	names graph.Names
	// qp holds the activation qparams written, by observer; calc computes
	// an observer's qparams once, and observed says a point saw data.
	qp       map[observer.Observer]*tensor.QParams
	calc     func(observer.Observer) (*tensor.QParams, error)
	observed func(*Point) bool
	// keepSum rounds convolution weights with RoundKeepSum.
	keepSum bool
	// wide records that a 16-bit QuantizeLinear or DequantizeLinear was
	// written: the model then needs opset 21.
	wide bool
}

// unique returns base, or base with a numeric suffix, unused so far.
func (c *converter) unique(base string) string { return c.names.Unique(base) }

// qparams returns the (cached) qparams of a point's observer.
func (c *converter) qparams(pt *Point) (*tensor.QParams, error) {
	if q, ok := c.qp[pt.Observer]; ok {
		return q, nil
	}
	q, err := c.calc(pt.Observer)
	if err != nil {
		return nil, fmt.Errorf("quantize: Convert: value %q: %w (run the prepared model on calibration data before Convert)", pt.Value.Name, err)
	}
	if len(q.Scale) != 1 {
		return nil, fmt.Errorf("quantize: Convert: value %q: activation qparams must be per tensor, the observer gave %d scales", pt.Value.Name, len(q.Scale))
	}
	c.qp[pt.Observer] = q
	return q, nil
}

// is16Bit reports whether qparams use a 16-bit integer range.
func is16Bit(q *tensor.QParams) bool { return q.QuantMax > 255 || q.QuantMin < -128 }

// codeElem returns the ONNX type of q's codes: uint8 or int8, uint16 or
// int16 for 16-bit ranges (held as int32).
func codeElem(q *tensor.QParams, signed bool) graph.ElemType {
	switch {
	case is16Bit(q) && signed:
		return graph.Int16
	case is16Bit(q):
		return graph.Uint16
	case signed:
		return graph.Int8
	}
	return graph.Uint8
}

// zeroPointTensor returns the zero-point initializer of an activation
// (1-D for per-channel qparams).
func zeroPointTensor(q *tensor.QParams, signed bool) *tensor.Tensor {
	n := len(q.ZeroPoint)
	if is16Bit(q) {
		return tensor.FromInt32(append([]int32(nil), q.ZeroPoint...), n)
	}
	if signed {
		b := make([]int8, n)
		for i, z := range q.ZeroPoint {
			b[i] = int8(z)
		}
		return tensor.FromInt8(b, n)
	}
	b := make([]uint8, n)
	for i, z := range q.ZeroPoint {
		b[i] = uint8(z)
	}
	return tensor.FromUint8(b, n)
}

// scalar returns a rank-0 tensor.
func scalar(t *tensor.Tensor) *tensor.Tensor { return t.Reshape() }

// insertQDQ puts QuantizeLinear/DequantizeLinear on v and makes readers
// read the dequantized value. With all set and v a graph output, the
// dequantized value takes v's name.
func (c *converter) insertQDQ(v *graph.Value, q *tensor.QParams, readers []*graph.Node, all bool) {
	g := v.Graph
	signed := q.QuantMin < 0
	base := v.Name
	st, zt := tensor.FromFloat32(append([]float32(nil), q.Scale...), len(q.Scale)), zeroPointTensor(q, signed)
	var attrs map[string]*graph.Attr
	if len(q.Scale) == 1 {
		st, zt = scalar(st), scalar(zt)
	} else {
		attrs = map[string]*graph.Attr{"axis": graph.AInt(int64(q.Axis))}
	}
	scale := g.AddInitializer(c.unique(base+"_scale"), st)
	zp := g.AddInitializer(c.unique(base+"_zero_point"), zt)
	elem := codeElem(q, signed)
	zp.Type.Elem = elem
	c.wide = c.wide || is16Bit(q)
	qn := g.AddNode(c.unique(base+"_QuantizeLinear"), "QuantizeLinear", []*graph.Value{v, scale, zp}, []string{c.unique(base + "_quantized")}, attrs)
	qn.Outputs[0].Type = graph.Type{Elem: elem, Shape: v.Type.Shape, HasShape: v.Type.HasShape}
	isOut := false
	for _, o := range g.Outputs {
		isOut = isOut || o == v
	}
	dqName := base + "_dequantized"
	if all && isOut {
		v.Name = c.unique(base + "_prequant")
		dqName = base
	} else {
		dqName = c.unique(dqName)
	}
	dq := g.AddNode(c.unique(base+"_DequantizeLinear"), "DequantizeLinear", []*graph.Value{qn.Outputs[0], scale, zp}, []string{dqName}, graph.CopyAttrs(attrs))
	out := dq.Outputs[0]
	out.Type = v.Type
	for _, r := range readers {
		if r == qn {
			continue
		}
		for i, in := range r.Inputs {
			if in == v {
				r.Inputs[i] = out
			}
		}
	}
	if all && isOut {
		for i, o := range g.Outputs {
			if o == v {
				g.Outputs[i] = out
			}
		}
	}
}

// quantizeWeight replaces input i of n (a constant float weight) by the
// DequantizeLinear of its quantized form, rounded to nearest or, with
// c.keepSum and a convolution's weight, by RoundKeepSum.
func (c *converter) quantizeWeight(n *graph.Node, i int, q *tensor.QParams, axis int, cfg observer.Config) error {
	w := n.Inputs[i]
	t := w.Const
	g := n.Graph
	data := t.F32()
	shape := t.Shape()
	ch := 1
	if axis >= 0 {
		ch = shape[axis]
		if len(q.Scale) != ch {
			return fmt.Errorf("quantize: Convert: weight %s of node %s: %d scales for %d channels on axis %d", w.Name, n, len(q.Scale), ch, axis)
		}
	}
	inner := 1
	for d := axis + 1; axis >= 0 && d < len(shape); d++ {
		inner *= shape[d]
	}
	signed := q.QuantMin < 0 || cfg.Dtype == tensor.QInt8
	// Stored codes use the full range of their type (8 or 16 bits); the
	// observer's range only chose the scale.
	bits := 8
	if is16Bit(q) {
		bits = 16
	}
	tlo, thi := qmath.Range(signed, bits)
	codes := make([]int32, len(data))
	for j, x := range data {
		c := 0
		if axis >= 0 {
			c = (j / inner) % ch
		}
		codes[j] = qmath.Quantize(x, q.Scale[c], q.ZeroPoint[c], tlo, thi)
	}
	if c.keepSum && n.OpType != "MatMul" && n.OpType != "Gemm" {
		keepFilterSums(data, codes, shape, axis, q, tlo, thi)
	}
	var qt, zt *tensor.Tensor
	zps := make([]int32, len(q.Scale))
	copy(zps, q.ZeroPoint)
	switch {
	case bits == 16:
		qt = tensor.FromInt32(codes, shape...)
		zt = tensor.FromInt32(zps, len(zps))
		c.wide = true
	case signed:
		b := make([]int8, len(codes))
		for j, v := range codes {
			b[j] = int8(v)
		}
		qt = tensor.FromInt8(b, shape...)
		zb := make([]int8, len(zps))
		for j, v := range zps {
			zb[j] = int8(v)
		}
		zt = tensor.FromInt8(zb, len(zb))
	default:
		b := make([]uint8, len(codes))
		for j, v := range codes {
			b[j] = uint8(v)
		}
		qt = tensor.FromUint8(b, shape...)
		zb := make([]uint8, len(zps))
		for j, v := range zps {
			zb[j] = uint8(v)
		}
		zt = tensor.FromUint8(zb, len(zb))
	}
	st := tensor.FromFloat32(append([]float32(nil), q.Scale...), len(q.Scale))
	if axis < 0 {
		st, zt = scalar(st), scalar(zt)
	}
	qv := g.AddInitializer(c.unique(w.Name+"_quantized"), qt)
	sv := g.AddInitializer(c.unique(w.Name+"_scale"), st)
	zv := g.AddInitializer(c.unique(w.Name+"_zero_point"), zt)
	qv.Type.Elem = codeElem(q, signed)
	zv.Type.Elem = qv.Type.Elem
	var attrs map[string]*graph.Attr
	if axis >= 0 {
		attrs = map[string]*graph.Attr{"axis": graph.AInt(int64(axis))}
	}
	dq := g.AddNode(c.unique(w.Name+"_DequantizeLinear"), "DequantizeLinear", []*graph.Value{qv, sv, zv}, []string{c.unique(w.Name + "_dequantized")}, attrs)
	dq.Outputs[0].Type = w.Type
	n.Inputs[i] = dq.Outputs[0]
	return nil
}

// keepFilterSums applies RoundKeepSum to a convolution weight of the
// given shape ([M, C/group, K...] or ConvTranspose's [C, M/group, K...]):
// codes hold the nearest codes of data, channels on axis (-1: one scale),
// within [lo, hi]. In each spatial filter (the prod(K) contiguous taps
// one input channel gives one output channel), it moves the fewest codes
// one step, those with the largest remainders toward the filter sum's
// error (ties by position), so that the codes less the zero point sum to
// the rounded sum of the scaled taps; codes at a range limit and codes
// whose remainder points the other way stay.
func keepFilterSums(data []float32, codes []int32, shape []int, axis int, q *tensor.QParams, lo, hi int32) {
	if len(shape) < 3 {
		return
	}
	sp := 1
	for _, d := range shape[2:] {
		sp *= d
	}
	if sp < 2 {
		return
	}
	ch, inner := 1, 1
	if axis >= 0 {
		ch = shape[axis]
		for _, d := range shape[axis+1:] {
			inner *= d
		}
	}
	idx := make([]int, sp)
	rem := make([]float64, sp)
	for g := 0; g+sp <= len(data); g += sp {
		c := 0
		if axis >= 0 {
			c = (g / inner) % ch
		}
		s, zp := q.Scale[c], q.ZeroPoint[c]
		if s == 0 {
			continue
		}
		var sum float64
		for t := 0; t < sp; t++ {
			idx[t] = t
			rem[t] = float64(data[g+t])/float64(s) - float64(codes[g+t]-zp)
			sum += rem[t]
		}
		n := int(math.RoundToEven(sum))
		if n == 0 {
			continue
		}
		step := int32(1)
		if n < 0 {
			step, n = -1, -n
			for t := range rem {
				rem[t] = -rem[t]
			}
		}
		sort.SliceStable(idx, func(a, b int) bool { return rem[idx[a]] > rem[idx[b]] })
		for _, t := range idx {
			if n == 0 || rem[t] <= 0 {
				break
			}
			if v := codes[g+t] + step; v >= lo && v <= hi {
				codes[g+t] = v
				n--
			}
		}
	}
}

// quantizeBias replaces input i of n (a constant float 1-D bias) by the
// DequantizeLinear of int32 RNE(b / float32(sx*sw[c])).
func (c *converter) quantizeBias(n *graph.Node, i int, sxs []float32, sw []float32) error {
	b := n.Inputs[i]
	data := b.Const.F32()
	scales := make([]float32, len(data))
	codes := make([]int32, len(data))
	for j, x := range data {
		s := sw[0]
		if len(sw) > 1 {
			if len(sw) != len(data) {
				return fmt.Errorf("quantize: Convert: bias %s of node %s has %d entries for %d weight scales", b.Name, n, len(data), len(sw))
			}
			s = sw[j]
		}
		sx := sxs[0]
		if len(sxs) > 1 {
			// Per-channel input qparams: a depthwise convolution, whose
			// output channel j reads input channel j alone.
			if len(sxs) != len(data) {
				return fmt.Errorf("quantize: Convert: bias %s of node %s has %d entries for %d input scales", b.Name, n, len(data), len(sxs))
			}
			sx = sxs[j]
		}
		scales[j] = float32(sx * s)
		if scales[j] == 0 {
			return fmt.Errorf("quantize: Convert: bias %s of node %s: zero scale", b.Name, n)
		}
		codes[j] = qmath.Quantize(x, scales[j], 0, math.MinInt32, math.MaxInt32)
	}
	g := n.Graph
	qv := g.AddInitializer(c.unique(b.Name+"_quantized"), tensor.FromInt32(codes, len(codes)))
	sv := g.AddInitializer(c.unique(b.Name+"_scale"), tensor.FromFloat32(scales, len(scales)))
	zv := g.AddInitializer(c.unique(b.Name+"_zero_point"), tensor.FromInt32(make([]int32, len(codes)), len(codes)))
	dq := g.AddNode(c.unique(b.Name+"_DequantizeLinear"), "DequantizeLinear", []*graph.Value{qv, sv, zv},
		[]string{c.unique(b.Name + "_dequantized")}, map[string]*graph.Attr{"axis": graph.AInt(0)})
	dq.Outputs[0].Type = b.Type
	n.Inputs[i] = dq.Outputs[0]
	return nil
}
