package quantize

import (
	"fmt"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// observe creates the points of the quantized units.
func (a *analysis) observe() {
	for _, u := range a.units {
		if !u.Quantized {
			continue
		}
		var ins []*Point
		for _, in := range u.Inputs {
			ins = append(ins, a.point(in, u, a.qval[in]))
		}
		if u.Weight != nil {
			u.Weight.Observer = u.QConfig.Weight()
		}
		if !u.OutputQuantized {
			continue
		}
		for i, o := range u.Outputs {
			pt := a.point(o, u, true)
			switch {
			case u.cat:
				for _, ip := range ins {
					a.union(ip, pt)
				}
			case u.obs == quant.OutputShareObserverWithInput && len(ins) > 0 && i == 0:
				a.union(ins[0], pt)
			case u.obs == quant.OutputFixedQParams:
				if fq := quant.FixedQParamsQConfig(fixedType(u.Nodes[len(u.Nodes)-1].OpType), a.opts.QAT); fq != nil {
					g := pt.group.find()
					g.obs, g.fixed = fq.Activation(), true
				}
			}
		}
	}
	a.narrowBoundaries()
}

// narrowBoundaries gives a group with a 16-bit observer the 8-bit
// observer of a unit it borders when any of its points is read or
// written by a unit with an 8-bit qconfig: only values inside a 16-bit
// region stay 16-bit, so every 8-bit unit reads and writes 8-bit codes.
func (a *analysis) narrowBoundaries() {
	done := map[*group]bool{}
	for _, pt := range a.points {
		g := pt.group.find()
		if done[g] || g.fixed || !quant.Is16Bit(g.obs.Config()) {
			continue
		}
		done[g] = true
		narrow := false
		var o8 observer.Observer
		for _, p := range g.points {
			for _, u := range p.units {
				f := u.QConfig.Activation
				if f == nil {
					continue
				}
				if o := f(); !quant.Is16Bit(o.Config()) {
					narrow = true
					if o8 == nil && u.obs != quant.OutputFixedQParams {
						o8 = o
					}
				}
			}
		}
		if !narrow {
			continue
		}
		if o8 == nil {
			// Only fixed-qparams units border the group: their own
			// observers describe their outputs, not this value.
			qc, _ := a.opts.Mapping.Global()
			if qc == nil || qc.Activation == nil || quant.Is16Bit(qc.Activation().Config()) {
				qc, _ = quant.DefaultQConfig(a.opts.Engine)
			}
			o8 = qc.Activation()
		}
		g.obs = o8
	}
}

// point returns the point of v, creating it with u's activation observer.
func (a *analysis) point(v *graph.Value, u *Unit, all bool) *Point {
	if pt, ok := a.groupOf[v]; ok {
		pt.all = pt.all || all
		pt.units = append(pt.units, u)
		return pt
	}
	g := &group{obs: u.QConfig.Activation()}
	pt := &Point{Value: v, all: all, group: g, units: []*Unit{u}}
	g.points = append(g.points, pt)
	a.groupOf[v] = pt
	a.points = append(a.points, pt)
	return pt
}

// union makes b's group share a's observer (fixed groups are not merged
// with each other; a fixed group wins over a plain one).
func (a *analysis) union(x, y *Point) {
	gx, gy := x.group.find(), y.group.find()
	if gx == gy || (gx.fixed && gy.fixed) {
		return
	}
	if gy.fixed {
		gx, gy = gy, gx
	}
	gy.parent = gx
	gx.points = append(gx.points, gy.points...)
}

// observeWeight runs a weight's observer on the weight, output channels
// first.
func observeWeight(w *Weight) error {
	t := w.Node.Inputs[w.Input].Const
	if w.Axis != 0 && !w.PerTensor {
		perm := make([]int, t.NDim())
		for i := range perm {
			perm[i] = i
		}
		perm[0], perm[w.Axis] = w.Axis, 0
		t = tensor.Permute(t, perm...)
	}
	if w.PerTensor {
		// One scale: observe the weight flattened to one channel.
		t = t.Reshape(1, t.Numel())
	}
	w.Observer.Reset()
	if err := w.Observer.Observe(t); err != nil {
		return fmt.Errorf("quantize: weight %s of node %s: %w", w.Node.Inputs[w.Input].Name, w.Node, err)
	}
	return nil
}
