package quantize

import (
	"errors"
	"fmt"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/passes"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// QuantizeDynamic is dynamic quantization of a graph (PyTorch's
// quantize_dynamic, ONNX Runtime's quantize_dynamic), in QDQ form:
//
//   - Conv, Gemm and MatMul with a constant weight: the weight becomes an
//     int8 initializer behind DequantizeLinear (per channel with a
//     per-channel qconfig), and the activation input goes through
//     DynamicQuantizeLinear (uint8 qparams from each call's range, ONNX's
//     rule) and DequantizeLinear. Biases stay float. quanta's executor runs
//     the pattern as one int8 GEMM with a float output.
//   - LSTM and GRU: the W and R weights are stored int8 behind
//     DequantizeLinear (weight-only); the recurrence computes in float.
//
// The qconfig of each op comes from opts.Mapping as in Prepare (nil:
// quant.PerChannelDynamicQConfig under the quanta preset,
// quant.DefaultDynamicQConfig (per tensor, as PyTorch) under the others;
// the weight observer decides per tensor or per channel); a nil qconfig or an Exclude match keeps an op
// float. m is not changed.
func QuantizeDynamic(m *graph.Model, opts Options) (*graph.Model, error) {
	if len(opts.Int16) > 0 {
		return nil, errors.New("quantize: QuantizeDynamic: Int16 is for static quantization (Prepare, Observe, Convert)")
	}
	if opts.Engine == "" {
		opts.Engine = "quanta"
	}
	if opts.Mapping == nil {
		// PyTorch's presets keep PyTorch's per-tensor dynamic weights;
		// quanta's own preset quantizes them per channel.
		qc := quant.DefaultDynamicQConfig
		if opts.Engine == "quanta" {
			qc = quant.PerChannelDynamicQConfig
		}
		opts.Mapping = quant.NewQConfigMapping().SetGlobal(qc)
	}
	var err error
	if opts.Backend == nil {
		if opts.Backend, err = quant.GetBackendConfig(opts.Engine); err != nil {
			return nil, fmt.Errorf("quantize: QuantizeDynamic: %w", err)
		}
	}
	pm, err := preprocess(m)
	if err != nil {
		return nil, err
	}
	a := newAnalysis(pm, opts)
	c := &converter{m: pm, names: graph.NamesOf(pm.Graph), keepSum: opts.keepSum()}
	var walk func(g *graph.Graph) error
	walk = func(g *graph.Graph) error {
		for _, n := range append([]*graph.Node(nil), g.Nodes...) {
			for _, sg := range n.Subgraphs() {
				if err := walk(sg); err != nil {
					return err
				}
			}
			if err := a.dynamicNode(c, n); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(pm.Graph); err != nil {
		return nil, err
	}
	if err := graph.Sort(pm.Graph); err != nil {
		return nil, fmt.Errorf("quantize: QuantizeDynamic: %w", err)
	}
	graph.EliminateDeadCode(pm.Graph) // the float weights the int8 ones replace (needs the sorted order)
	if err := graph.Verify(pm.Graph); err != nil {
		return nil, fmt.Errorf("quantize: QuantizeDynamic: the QDQ graph does not verify: %w", err)
	}
	if pm.IRVersion < 7 {
		pm.IRVersion = 7
	}
	pm.ProducerName, pm.ProducerVersion = "quanta", "dynamic quantization"
	return pm, nil
}

// dynamicNode quantizes one node dynamically, if it qualifies.
func (a *analysis) dynamicNode(c *converter, n *graph.Node) error {
	if !(n.Domain == "" || n.Domain == "ai.onnx") {
		return nil
	}
	var weights []int
	axis := 0
	act := false
	switch n.OpType {
	case "Conv":
		weights, act = []int{1}, true
	case "Gemm":
		if ta, _ := n.Int("transA", 0); ta != 0 {
			return nil
		}
		weights, act = []int{1}, true
		if tb, _ := n.Int("transB", 0); tb == 0 {
			axis = 1
		}
	case "MatMul":
		weights, act, axis = []int{1}, true, 1
		if w := n.Input(1); w == nil || !w.IsConst() || w.Const.NDim() != 2 {
			return nil
		}
	case "LSTM", "GRU":
		weights, axis = []int{1, 2}, 1
	default:
		return nil
	}
	for _, i := range weights {
		if w := n.Input(i); w == nil || !w.IsConst() || w.Const.DType() != tensor.Float32 {
			return nil
		}
	}
	if act && !isFloat(n.Input(0)) {
		return nil
	}
	u := &Unit{Nodes: []*graph.Node{n}, Key: n.OpType}
	if kind := passes.OpKind(n); kind != "" {
		u.cfg = a.opts.Backend.Lookup(kind)
	}
	qc := a.qconfig(u)
	if qc == nil || qc.Weight == nil || a.excluded(u) || qc.Float16 {
		return nil
	}
	for _, i := range weights {
		w := &Weight{Node: n, Input: i, Observer: qc.Weight(), Axis: axis}
		if n.OpType == "LSTM" || n.OpType == "GRU" {
			// [num_directions, gates*hidden, size]: one scale per
			// direction and gate row would need a 2-D axis; observe the
			// rows (axis 1) of all directions together.
			w.PerTensor = n.Input(i).Const.Dim(0) != 1
		}
		if err := observeWeight(w); err != nil {
			return err
		}
		qp, err := w.Observer.CalculateQParams()
		if err != nil {
			return fmt.Errorf("quantize: QuantizeDynamic: weight of node %s: %w", n, err)
		}
		ax := axis
		if len(qp.Scale) == 1 {
			ax = -1
		}
		if err := c.quantizeWeight(n, i, qp, ax, w.Observer.Config()); err != nil {
			return err
		}
	}
	if act {
		c.dynamicInput(n, 0)
	}
	return nil
}

// dynamicInput routes input i of n through DynamicQuantizeLinear and
// DequantizeLinear.
func (c *converter) dynamicInput(n *graph.Node, i int) {
	x := n.Inputs[i]
	g := n.Graph
	base := x.Name
	dq := g.AddNode(c.unique(base+"_DynamicQuantizeLinear"), "DynamicQuantizeLinear", []*graph.Value{x},
		[]string{c.unique(base + "_quantized"), c.unique(base + "_scale"), c.unique(base + "_zero_point")}, nil)
	dq.Outputs[0].Type = graph.Type{Elem: graph.Uint8, Shape: x.Type.Shape, HasShape: x.Type.HasShape}
	dq.Outputs[1].Type = graph.TensorType(graph.Float)
	dq.Outputs[2].Type = graph.TensorType(graph.Uint8)
	d := g.AddNode(c.unique(base+"_DequantizeLinear"), "DequantizeLinear", dq.Outputs, []string{c.unique(base + "_dequantized")}, nil)
	d.Outputs[0].Type = x.Type
	n.Inputs[i] = d.Outputs[0]
}
