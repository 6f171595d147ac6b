package fx

import (
	"context"
	"fmt"
	"math"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/tensor"
)

// trained is one quantized constant (weight or bias) FinetuneQDQ trains:
// the DequantizeLinear reading it, and the float parameter standing in
// for it.
type trained struct {
	dq    string // the DequantizeLinear node's name
	param *graph.Value
}

// FinetuneQDQ is quantization-aware fine-tuning of a model that is
// already quantized, without labels: it trains the int8 weights and int32
// biases of the QDQ model qdq (graph/quantize.Convert's output, calibrated
// and equalized) to reproduce the float teacher's outputs on the feeds,
// and returns the QDQ model with the new codes. The activation qparams,
// the weight scales and the graph are those of qdq; only the integer
// codes change. qdq is not changed.
//
// Each quantized constant read by one DequantizeLinear becomes a float
// parameter (its dequantized value) fake-quantized with the constant's
// scale and zero point (the straight-through estimator passes the
// gradient), and every activation QuantizeLinear/DequantizeLinear pair is
// fake quantization with its fixed qparams. The loss of a feed is the sum
// over the model's float outputs of ‖student - teacher‖² / ‖teacher‖²
// (the inverse of the output SQNR); Adam trains with a cosine learning
// rate and, by default, mixup (FinetuneOptions). The first pass over the feeds measures the loss
// of qdq as it is (FinetuneResult.Losses[0]). The codes written are those
// the last forward pass used: round(w/scale) + zero point, clamped, as
// QuantizeLinear rounds.
func FinetuneQDQ(ctx context.Context, qdq *graph.Model, teacher *exec.Program, feeds []map[string]*tensor.Tensor, opts FinetuneOptions) (*graph.Model, *FinetuneResult, error) {
	if qdq == nil || qdq.Graph == nil {
		return nil, nil, fmt.Errorf("fx: FinetuneQDQ: nil model")
	}
	for _, n := range qdq.Graph.Nodes {
		for _, a := range n.Attrs {
			if a.G != nil || len(a.Gs) > 0 {
				return nil, nil, fmt.Errorf("fx: FinetuneQDQ: node %s (%s) has a subgraph; fine-tuning runs models without If, Loop or Scan", n.Name, n.OpType)
			}
		}
	}
	tm := qdq.Clone()
	g := tm.Graph
	names := graph.NamesOf(g)
	readers := map[*graph.Value]int{}
	for _, n := range g.Nodes {
		for _, v := range n.Inputs {
			readers[v]++
		}
	}
	var params []string
	var ts []trained
	for _, dq := range append([]*graph.Node(nil), g.Nodes...) {
		if dq.OpType != "DequantizeLinear" || len(dq.Inputs) < 2 {
			continue
		}
		c := dq.Inputs[0]
		if c == nil || c.Const == nil || readers[c] != 1 || dq.Inputs[1].Const == nil {
			continue
		}
		switch c.Const.DType() {
		case tensor.Int8, tensor.Uint8, tensor.Int32:
		default:
			continue
		}
		in := make([]*tensor.Tensor, len(dq.Inputs))
		for i, v := range dq.Inputs {
			if v != nil {
				if v.Const == nil {
					in = nil
					break
				}
				in[i] = v.Const
			}
		}
		if in == nil {
			continue
		}
		w, err := runDequantizeLinear(dq, in)
		if err != nil {
			return nil, nil, fmt.Errorf("fx: FinetuneQDQ: node %s: %w", dq.Name, err)
		}
		p := g.AddInitializer(names.Unique(c.Name+"_float"), w[0])
		qin := []*graph.Value{p, dq.Inputs[1]}
		if len(dq.Inputs) > 2 && dq.Inputs[2] != nil {
			qin = append(qin, dq.Inputs[2])
		}
		q := g.AddNode(names.Unique(c.Name+"_QuantizeLinear"), "QuantizeLinear", qin, []string{names.Unique(c.Name + "_codes")}, graph.CopyAttrs(dq.Attrs))
		dq.Inputs[0] = q.Outputs[0]
		params = append(params, p.Name)
		ts = append(ts, trained{dq: dq.Name, param: p})
	}
	if len(ts) == 0 {
		return nil, nil, fmt.Errorf("fx: FinetuneQDQ: the model has no quantized weights (DequantizeLinear of an integer constant)")
	}
	gm, err := NewGraphModule(tm, GraphModuleOptions{Parameters: params})
	if err != nil {
		return nil, nil, fmt.Errorf("fx: FinetuneQDQ: %w", err)
	}
	res, err := distill(ctx, "FinetuneQDQ", gm, teacher, feeds, opts)
	if err != nil {
		return nil, nil, err
	}
	out := qdq.Clone()
	byName := map[string]*graph.Node{}
	for _, n := range out.Graph.Nodes {
		byName[n.Name] = n
	}
	for _, t := range ts {
		dq := byName[t.dq]
		codes, err := requantize(dq, t.param.Const)
		if err != nil {
			return nil, nil, fmt.Errorf("fx: FinetuneQDQ: node %s: %w", dq.Name, err)
		}
		c := dq.Inputs[0]
		nc := &graph.Value{Name: c.Name, Type: c.Type, Const: codes, Graph: c.Graph, DocString: c.DocString}
		for i, v := range out.Graph.Initializers {
			if v == c {
				out.Graph.Initializers[i] = nc
			}
		}
		dq.Inputs[0] = nc
	}
	return out, res, nil
}

// requantize returns the integer codes of w under dq's scale and zero
// point, in the type of dq's constant: round half to even of w/scale,
// plus the zero point, clamped to the type's range.
func requantize(dq *graph.Node, w *tensor.Tensor) (*tensor.Tensor, error) {
	c := dq.Inputs[0].Const
	in := []*tensor.Tensor{c, dq.Inputs[1].Const, nil}
	if len(dq.Inputs) > 2 && dq.Inputs[2] != nil {
		in[2] = dq.Inputs[2].Const
	}
	p, err := readQDQ(dq, in, c)
	if err != nil {
		return nil, err
	}
	ws := w.F32()
	inner, nch := 1, 1
	if p.axis >= 0 {
		nch = c.Dim(p.axis)
		for _, d := range c.Shape()[p.axis+1:] {
			inner *= d
		}
	}
	code := func(i int) int64 {
		ch := (i / inner) % nch
		v := math.RoundToEven(float64(ws[i])/float64(p.scales[ch])) + float64(p.zeroPoints[ch])
		return int64(math.Max(float64(p.qmin), math.Min(float64(p.qmax), v)))
	}
	switch c.DType() {
	case tensor.Int8:
		q := make([]int8, len(ws))
		for i := range q {
			q[i] = int8(code(i))
		}
		return tensor.FromInt8(q, c.Shape()...), nil
	case tensor.Uint8:
		q := make([]uint8, len(ws))
		for i := range q {
			q[i] = uint8(code(i))
		}
		return tensor.FromUint8(q, c.Shape()...), nil
	default:
		q := make([]int32, len(ws))
		for i := range q {
			q[i] = int32(code(i))
		}
		return tensor.FromInt32(q, c.Shape()...), nil
	}
}
