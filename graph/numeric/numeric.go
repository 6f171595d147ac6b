// Package numeric is PyTorch's Numeric Suite for graphs: it runs a float
// model and its quantized (QDQ) version on the same inputs and measures,
// layer by layer, how far the quantized activations and weights are from
// the float ones (SQNR, cosine similarity, absolute errors), so the layers
// that hurt accuracy most can be found and excluded or configured
// differently.
//
// A layer is a node of the float model that has a node of the same name in
// the quantized model (converters keep node names: quanta's, ONNX
// Runtime's QDQ quantizer, PyTorch's exporter). Its activation is compared
// with what consumers of the quantized node read: the output of the
// DequantizeLinear after its QuantizeLinear when the output is quantized,
// else the node's own output. Its weight (input 1 of Conv, ConvTranspose,
// Gemm and MatMul) is compared with the quantized node's weight after
// dequantization. The quantized model runs literally (exec's Reference
// mode) to see every activation, and as fused int8 kernels for its final
// outputs. Statistics stream over the feeds: sums are kept, not tensors.
package numeric

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/graph/quantize"
	"github.com/quanta-go/quanta/tensor"
)

// Options configure Compare. The zero value is ready to use.
type Options struct {
	// FloatName and QuantName name the two models in errors and in the
	// report (file names, typically); empty means "float model" and
	// "quantized model".
	FloatName, QuantName string
	// Threads is the number of threads each op uses; 0 keeps the current
	// setting.
	Threads int
	// ReferenceOnly skips the fused int8 program: the final outputs are
	// compared for the literal QDQ graph only.
	ReferenceOnly bool
	// Progress, if set, is called after each feed with the number of
	// feeds done and the total.
	Progress func(done, total int)
}

// Report is the result of Compare.
type Report struct {
	// FloatName and QuantName name the models compared.
	FloatName, QuantName string
	// Feeds is the number of feeds the statistics cover.
	Feeds int
	// FoldedBatchNorms counts the batch norms folded into the float
	// model's convolutions before comparing, because the quantized model
	// has them folded.
	FoldedBatchNorms int
	// Layers are the compared layers in the float model's graph order
	// (nodes of If/Loop bodies right after their node).
	Layers []Layer
	// Inputs are the model inputs the quantized model quantizes, with
	// the statistics of their quantization.
	Inputs []Input
	// Outputs are the final outputs, in order.
	Outputs []Output
	// Unmatched names the float nodes that computed a float32 output at
	// run time but have no counterpart in the quantized model.
	Unmatched []string
}

// Layer is one compared node.
type Layer struct {
	// Index is the layer's position in the float model's graph order
	// (counting every node).
	Index int
	// Node, OpType and ModulePath describe the float node. ModulePath is
	// the node's, or the scope an exporter encoded in an ONNX node name
	// ("/features/features.3/conv/Conv" gives "features.3.conv"), or empty.
	Node, OpType, ModulePath string
	// Value is the float value compared; QuantValue the quantized model's
	// value compared with it (a DequantizeLinear output when the layer's
	// output is quantized).
	Value, QuantValue string
	// Activation compares the layer's output.
	Activation Stats
	// Weight compares the layer's weight with its dequantized quantized
	// weight; nil when the layer has no weight.
	Weight *Stats
	// WeightValue names the float weight compared.
	WeightValue string
	// InputSQNR is the SQNR (dB) of the layer's data inputs (the worst of
	// them): the noise the layer receives. +Inf for unquantized inputs,
	// NaN when unknown (a Loop body's loop-carried value).
	InputSQNR float64
	// Drop is InputSQNR - Activation.SQNR: the noise the layer adds, in
	// dB (0 when the activation is exact, +Inf when the layer is the first
	// to add noise).
	Drop float64
}

// Input is a model input the quantized model quantizes.
type Input struct {
	// Name is the input; Value the quantized model's dequantized value.
	Name, Value string
	// Stats compares the input with its quantized value.
	Stats Stats
}

// Output compares one final output.
type Output struct {
	// Name is the output's name.
	Name string
	// Reference compares the literal QDQ graph's output with the float
	// model's.
	Reference Stats
	// Fused compares the fused int8 program's output with the float
	// model's; nil with Options.ReferenceOnly.
	Fused *Stats
}

// layerProbe is a layer being measured.
type layerProbe struct {
	nf, nq      *graph.Node
	p           *probe
	weight      *Stats
	weightValue string
	// more measures the node's other outputs (an LSTM's states, an If's
	// second result), for the noise its readers receive.
	more []*probe
}

// inputProbe is a quantized model input being measured.
type inputProbe struct {
	name string
	p    *probe
}

// comparison is the state of one Compare call.
type comparison struct {
	opts             Options
	fm, qm           *graph.Model
	fp, qp, ip       *exec.Program
	layers           []*layerProbe
	inputs           []inputProbe
	floatWant        map[*graph.Value][]*probe
	quantWant        map[*graph.Value][]*probe
	unmatched        []*graph.Node
	unmatchedSeen    map[*graph.Value]bool
	folded           int
	outRef, outFused []acc
}

// Compare runs float and quant on every feed (model inputs by name) and
// returns per-layer statistics of the quantized model's activations and
// weights against the float model's, and of the final outputs. The float
// model is not changed, except that compiling sorts its nodes; when the
// quantized model has folded batch norms the float model has, a folded
// copy of the float model is compared.
func Compare(ctx context.Context, float, quant *graph.Model, feeds []map[string]*tensor.Tensor, opts Options) (*Report, error) {
	if opts.FloatName == "" {
		opts.FloatName = "float model"
	}
	if opts.QuantName == "" {
		opts.QuantName = "quantized model"
	}
	if float == nil || float.Graph == nil || quant == nil || quant.Graph == nil {
		return nil, errors.New("numeric: Compare: nil model")
	}
	if len(feeds) == 0 {
		return nil, errors.New("numeric: Compare: no feeds")
	}
	if ctx == nil {
		ctx = context.Background()
	}
	c := &comparison{opts: opts, fm: float, qm: quant, floatWant: map[*graph.Value][]*probe{}, quantWant: map[*graph.Value][]*probe{}, unmatchedSeen: map[*graph.Value]bool{}}
	if err := c.compile(); err != nil {
		return nil, err
	}
	if err := c.match(); err != nil {
		return nil, err
	}
	for i, feed := range feeds {
		if err := c.feed(ctx, i, feed); err != nil {
			return nil, err
		}
		if opts.Progress != nil {
			opts.Progress(i+1, len(feeds))
		}
	}
	return c.report(len(feeds)), nil
}

// compile folds the float model's batch norms when the quantized model
// lacks them, and compiles the programs.
func (c *comparison) compile() error {
	qnames := map[string]bool{}
	for _, n := range allNodes(c.qm.Graph) {
		qnames[n.Name] = true
	}
	for _, n := range allNodes(c.fm.Graph) {
		if isOp(n, "BatchNormalization") && !qnames[n.Name] {
			// The quantizer's own preprocessing: exporters often feed
			// batch-norm parameters through Constant nodes, which must
			// become initializers before the fold.
			before := c.fm.Graph.OpCounts()["BatchNormalization"]
			fm, err := quantize.Preprocess(c.fm)
			if err != nil {
				return fmt.Errorf("numeric: %s: %w", c.opts.FloatName, err)
			}
			c.fm = fm
			c.folded = before - c.fm.Graph.OpCounts()["BatchNormalization"]
			break
		}
	}
	var err error
	if c.fp, err = exec.Compile(c.fm, exec.Options{Threads: c.opts.Threads, Unoptimized: true}); err != nil {
		return fmt.Errorf("numeric: %s: %w", c.opts.FloatName, err)
	}
	if c.qp, err = exec.Compile(c.qm, exec.Options{Threads: c.opts.Threads, Unoptimized: true, Reference: true}); err != nil {
		return fmt.Errorf("numeric: %s: %w", c.opts.QuantName, err)
	}
	if !c.opts.ReferenceOnly {
		if c.ip, err = exec.Compile(c.qm, exec.Options{Threads: c.opts.Threads}); err != nil {
			return fmt.Errorf("numeric: %s: %w", c.opts.QuantName, err)
		}
	}
	return nil
}

// match pairs the float model's nodes and inputs with the quantized
// model's and computes the weight statistics.
func (c *comparison) match() error {
	fx, qx := newIndex(c.fm), newIndex(c.qm)
	unscale, weightFix, err := equalizations(c.qm, qx)
	if err != nil {
		return fmt.Errorf("numeric: %s: %w", c.opts.QuantName, err)
	}
	seen := map[string]int{}
	for _, nf := range fx.nodes {
		k := seen[nf.Name]
		seen[nf.Name]++
		if nf.Output(0) == nil || isOp(nf, "Constant") {
			continue
		}
		nq := qx.counterpart(nf, k)
		var fv, qv *graph.Value
		var deq *affine
		ok := nq != nil
		if ok {
			fv, qv, deq, ok = activation(qx, nf, nq)
		}
		if !ok {
			c.unmatched = append(c.unmatched, nf)
			c.unmatchedSeen[nf.Outputs[0]] = false
			continue
		}
		lp := &layerProbe{nf: nf, nq: nq, p: &probe{fv: fv, qv: qv, deq: deq, unscale: unscale[fv.Name]}}
		wv, x, q, ok, err := weight(nf, nq)
		if err != nil {
			return fmt.Errorf("numeric: node %s: %w", nf, err)
		}
		if fix := weightFix[nf.Name]; ok && fix != nil {
			q = fix(q)
		}
		if ok {
			s := Measure(x, q)
			lp.weight, lp.weightValue = &s, wv.Name
		}
		c.layers = append(c.layers, lp)
		c.floatWant[fv] = append(c.floatWant[fv], lp.p)
		c.quantWant[qv] = append(c.quantWant[qv], lp.p)
		if deq != nil {
			continue
		}
		for k := 1; k < len(nf.Outputs); k++ {
			fo, qo := nf.Outputs[k], nq.Output(k)
			if fo == nil || qo == nil {
				continue
			}
			if d := qx.dequantized(qo); d != nil {
				qo = d
			}
			p := &probe{fv: fo, qv: qo}
			lp.more = append(lp.more, p)
			c.floatWant[fo] = append(c.floatWant[fo], p)
			c.quantWant[qo] = append(c.quantWant[qo], p)
		}
	}
	for _, in := range c.fm.Graph.Inputs {
		qin := qx.values[in.Name]
		if qin == nil || qin.Producer != nil {
			continue
		}
		if d := qx.dequantized(qin); d != nil {
			p := &probe{fv: in, qv: d}
			c.inputs = append(c.inputs, inputProbe{name: in.Name, p: p})
			c.quantWant[d] = append(c.quantWant[d], p)
		}
	}
	c.outRef = make([]acc, len(c.fm.Graph.Outputs))
	c.outFused = make([]acc, len(c.fm.Graph.Outputs))
	if len(c.qm.Graph.Outputs) != len(c.fm.Graph.Outputs) {
		return fmt.Errorf("numeric: %s has %d outputs, %s has %d", c.opts.FloatName, len(c.fm.Graph.Outputs), c.opts.QuantName, len(c.qm.Graph.Outputs))
	}
	return nil
}

// feed runs both models on one feed and accumulates the statistics.
func (c *comparison) feed(ctx context.Context, i int, feed map[string]*tensor.Tensor) error {
	fin, qin := map[string]*tensor.Tensor{}, map[string]*tensor.Tensor{}
	for _, v := range c.fm.Graph.Inputs {
		t, ok := feed[v.Name]
		if !ok && v.Const == nil {
			return fmt.Errorf("numeric: feed %d: input %q (%s) of %s is missing", i, v.Name, v.Type, c.opts.FloatName)
		}
		if ok {
			fin[v.Name] = t
		}
	}
	for _, v := range c.qm.Graph.Inputs {
		if t, ok := feed[v.Name]; ok {
			qin[v.Name] = t
		}
	}
	for _, ip := range c.inputs {
		if t := fin[ip.name]; t != nil && t.DType() == tensor.Float32 {
			ip.p.pending = append(ip.p.pending, observed{data: t.F32(), shape: t.Shape()})
		}
	}
	fout, err := c.fp.RunWith(ctx, fin, exec.RunOptions{Observe: func(v *graph.Value, t *tensor.Tensor) error {
		if seen, ok := c.unmatchedSeen[v]; ok && !seen && t.DType() == tensor.Float32 {
			c.unmatchedSeen[v] = true
		}
		ps := c.floatWant[v]
		if len(ps) == 0 {
			return nil
		}
		if t.DType() != tensor.Float32 {
			for _, p := range ps {
				p.skip = true
			}
			return nil
		}
		o := observed{data: append([]float32(nil), t.F32()...), shape: append([]int(nil), t.Shape()...)}
		for _, p := range ps {
			p.pending = append(p.pending, o)
		}
		return nil
	}})
	if err != nil {
		return fmt.Errorf("numeric: %s: feed %d: %w", c.opts.FloatName, i, err)
	}
	qout, err := c.qp.RunWith(ctx, qin, exec.RunOptions{Observe: func(v *graph.Value, t *tensor.Tensor) error {
		for _, p := range c.quantWant[v] {
			if err := c.pair(p, t); err != nil {
				return err
			}
		}
		return nil
	}})
	if err != nil {
		return fmt.Errorf("numeric: %s: feed %d: %w", c.opts.QuantName, i, err)
	}
	for _, lp := range c.layers {
		lp.p.pending = nil
		for _, p := range lp.more {
			p.pending = nil
		}
	}
	for _, ip := range c.inputs {
		ip.p.pending = nil
	}
	if err := c.outputs(c.outRef, fout, qout, i); err != nil {
		return err
	}
	if c.ip != nil {
		iout, err := c.ip.Run(ctx, qin)
		if err != nil {
			return fmt.Errorf("numeric: %s (int8): feed %d: %w", c.opts.QuantName, i, err)
		}
		if err := c.outputs(c.outFused, fout, iout, i); err != nil {
			return err
		}
	}
	return nil
}

// pair compares the quantized tensor t with the oldest pending float
// tensor of p.
func (c *comparison) pair(p *probe, t *tensor.Tensor) error {
	if p.skip || len(p.pending) == 0 {
		return nil
	}
	x := p.pending[0]
	p.pending = p.pending[1:]
	var q []float32
	switch {
	case p.deq != nil:
		qs, err := ints(t)
		if err != nil {
			p.skip = true
			return nil
		}
		q = make([]float32, len(qs))
		for i, v := range qs {
			q[i] = float32(v-p.deq.zp) * p.deq.scale
		}
	case t.DType() == tensor.Float32:
		q = t.F32()
	default:
		p.skip = true
		return nil
	}
	if len(q) != len(x.data) || !tensor.SameShape(x.shape, t.Shape()) {
		return fmt.Errorf("%s value %q has shape %v, %s value %q has shape %v", c.opts.FloatName, p.fv.Name, x.shape, c.opts.QuantName, p.qv.Name, t.Shape())
	}
	if s := p.unscale; s != nil && t.NDim() >= 2 && t.Dim(1) == len(s) {
		inner := 1
		for _, d := range t.Shape()[2:] {
			inner *= d
		}
		u := make([]float32, len(q)) // q may be the run's own tensor
		for i, v := range q {
			u[i] = v / s[(i/inner)%len(s)]
		}
		q = u
	}
	p.acc.add(x.data, q)
	return nil
}

// outputs accumulates the final outputs of one feed: the quantized
// model's outputs are matched by name, else by position.
func (c *comparison) outputs(accs []acc, fout, qout map[string]*tensor.Tensor, feed int) error {
	for i, v := range c.fm.Graph.Outputs {
		x := fout[v.Name]
		q, ok := qout[v.Name]
		if !ok {
			q = qout[c.qm.Graph.Outputs[i].Name]
		}
		if x == nil || q == nil || x.DType() != tensor.Float32 || q.DType() != tensor.Float32 {
			continue
		}
		if !tensor.SameShape(x.Shape(), q.Shape()) {
			return fmt.Errorf("numeric: feed %d: output %q has shape %v in %s, %v in %s", feed, v.Name, x.Shape(), c.opts.FloatName, q.Shape(), c.opts.QuantName)
		}
		accs[i].add(x.F32(), q.F32())
	}
	return nil
}

// report assembles the Report.
func (c *comparison) report(feeds int) *Report {
	r := &Report{FloatName: c.opts.FloatName, QuantName: c.opts.QuantName, Feeds: feeds, FoldedBatchNorms: c.folded}
	for _, n := range c.unmatched {
		if c.unmatchedSeen[n.Outputs[0]] {
			r.Unmatched = append(r.Unmatched, n.Name)
		}
	}
	pos := map[*graph.Node]int{}
	for i, n := range allNodes(c.fm.Graph) {
		pos[n] = i
	}
	valueSQNR := map[*graph.Value]float64{}
	for _, ip := range c.inputs {
		if ip.p.acc.n > 0 {
			s := ip.p.acc.stats()
			r.Inputs = append(r.Inputs, Input{Name: ip.name, Value: ip.p.qv.Name, Stats: s})
			valueSQNR[ip.p.fv] = s.SQNR
		}
	}
	var nodes []*graph.Node // the float node of each layer of r.Layers
	for _, lp := range c.layers {
		for _, p := range lp.more {
			if !p.skip && p.acc.n > 0 {
				valueSQNR[p.fv] = p.acc.stats().SQNR
			}
		}
		if lp.p.skip || lp.p.acc.n == 0 {
			continue
		}
		nodes = append(nodes, lp.nf)
		mp := lp.nf.ModulePath
		if mp == "" {
			mp = quantize.ScopeOf(lp.nf.Name)
		}
		l := Layer{Index: pos[lp.nf], Node: lp.nf.Name, OpType: lp.nf.OpType, ModulePath: mp,
			Value: lp.p.fv.Name, QuantValue: lp.p.qv.Name, Activation: lp.p.acc.stats(), Weight: lp.weight, WeightValue: lp.weightValue}
		r.Layers = append(r.Layers, l)
		valueSQNR[lp.p.fv] = l.Activation.SQNR
	}
	in := inputNoise{known: valueSQNR, memo: map[*graph.Value]float64{}, inputs: map[*graph.Value]bool{}}
	for _, v := range c.fm.Graph.Inputs {
		in.inputs[v] = true
	}
	for i := range r.Layers {
		l := &r.Layers[i]
		l.InputSQNR = in.node(nodes[i])
		l.Drop = drop(l.InputSQNR, l.Activation.SQNR)
	}
	for i, v := range c.fm.Graph.Outputs {
		o := Output{Name: v.Name, Reference: c.outRef[i].stats()}
		if c.ip != nil {
			s := c.outFused[i].stats()
			o.Fused = &s
		}
		r.Outputs = append(r.Outputs, o)
	}
	return r
}

// drop returns the SQNR a layer loses: in - out, 0 when out is exact.
func drop(in, out float64) float64 {
	switch {
	case math.IsInf(out, 1):
		return 0
	case math.IsInf(in, 1):
		return math.Inf(1)
	}
	return in - out
}

// inputNoise computes the SQNR of the data a node reads: the measured SQNR
// of a value, else (values of unmatched nodes) the worst SQNR of what
// their producer reads.
type inputNoise struct {
	known  map[*graph.Value]float64
	memo   map[*graph.Value]float64
	inputs map[*graph.Value]bool
}

// node returns the worst SQNR of n's non-constant inputs and, for If,
// Loop and Scan, of the results of its bodies (+Inf when it reads none,
// NaN when all are unknown).
func (in *inputNoise) node(n *graph.Node) float64 {
	worst, any, unknown := math.Inf(1), false, false
	reads := n.Inputs
	for _, sg := range n.Subgraphs() {
		reads = append(append([]*graph.Value(nil), reads...), sg.Outputs...)
	}
	for _, v := range reads {
		if v == nil || constOf(v) != nil {
			continue
		}
		s := in.value(v)
		if math.IsNaN(s) {
			unknown = true
			continue
		}
		any = true
		worst = min(worst, s)
	}
	if !any && unknown {
		return math.NaN()
	}
	return worst
}

func (in *inputNoise) value(v *graph.Value) float64 {
	if s, ok := in.known[v]; ok {
		return s
	}
	if s, ok := in.memo[v]; ok {
		return s
	}
	s := math.NaN()
	switch {
	case in.inputs[v]:
		s = math.Inf(1) // an input the quantized model does not quantize
	case v.Producer != nil:
		in.memo[v] = math.NaN() // cycles cannot occur; this guards anyway
		s = in.node(v.Producer)
	}
	in.memo[v] = s
	return s
}

// equalizations reads the input equalizations a quantizer recorded in the
// model's metadata (quantize.EqualizationKey) and returns, by float value
// name, the per-channel scales to divide the quantized value by (the
// equalized producer's outputs), and, by node name, functions that undo
// the scaling of the quantized weights (the producer's rows were
// multiplied, the depthwise consumer's channels divided).
func equalizations(m *graph.Model, qx *index) (map[string][]float32, map[string]func([]float32) []float32, error) {
	unscale := map[string][]float32{}
	fix := map[string]func([]float32) []float32{}
	for _, kv := range m.Metadata {
		if kv.Key != quantize.EqualizationKey {
			continue
		}
		var eqs []quantize.Equalization
		if err := json.Unmarshal([]byte(kv.Value), &eqs); err != nil {
			return nil, nil, fmt.Errorf("metadata %s: %w", kv.Key, err)
		}
		for _, e := range eqs {
			s := e.Scales
			if len(s) == 0 {
				continue
			}
			rows := func(q []float32, f func(v, s float32) float32) []float32 {
				out := make([]float32, len(q))
				inner := max(1, len(q)/len(s))
				for i, v := range q {
					out[i] = f(v, s[min(i/inner, len(s)-1)])
				}
				return out
			}
			fix[e.Consumer] = func(q []float32) []float32 {
				return rows(q, func(v, s float32) float32 { return v * s })
			}
			if e.Producer == "" {
				continue
			}
			fix[e.Producer] = func(q []float32) []float32 {
				return rows(q, func(v, s float32) float32 { return v / s })
			}
			unscale[e.Value] = s
			// The producing Conv's own output, when a Relu follows it.
			for _, n := range qx.nodes {
				if n.Name == e.Producer && n.Output(0) != nil {
					unscale[n.Output(0).Name] = s
				}
			}
		}
	}
	return unscale, fix, nil
}
