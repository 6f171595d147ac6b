// Package autograd is quanta's reverse-mode automatic differentiation. Ops
// (package ops) record a Node for each call whose inputs require gradients;
// Backward walks those nodes from a scalar loss back to the leaves and
// accumulates each leaf's gradient in Tensor.Grad, as torch.autograd does.
package autograd

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/quanta-go/quanta/tensor"
)

// BackwardFunc maps the gradients of an op's outputs (nil where an output
// received no gradient, already replaced by zeros) to the gradients of its
// inputs, in input order. It returns nil for inputs that need no gradient.
type BackwardFunc func(gradOutputs []*tensor.Tensor) []*tensor.Tensor

// Node is the record of one op call in the autograd graph.
type Node struct {
	name     string
	inputs   []*tensor.Tensor
	outputs  []outputInfo
	backward BackwardFunc
	freed    bool
}

type outputInfo struct {
	shape []int
	dtype tensor.DType
}

// Ref ties an op output to its Node; it is what Tensor.GradFn holds.
type Ref struct {
	Node  *Node
	Index int
}

// Name returns the op's backward name, e.g. "AddBackward".
func (r *Ref) Name() string { return r.Node.name + "Backward" }

// Inputs returns the inputs the op recorded.
func (n *Node) Inputs() []*tensor.Tensor { return n.inputs }

var disabled atomic.Int32

// IsGradEnabled reports whether ops record autograd history.
func IsGradEnabled() bool { return disabled.Load() == 0 }

// SetGradEnabled turns history recording on or off and returns the previous
// state, like torch.set_grad_enabled. The setting is process-wide.
func SetGradEnabled(on bool) (prev bool) {
	prev = IsGradEnabled()
	if on != prev {
		if on {
			disabled.Add(-1)
		} else {
			disabled.Add(1)
		}
	}
	return prev
}

// NoGrad runs fn with history recording off (torch.no_grad): inference
// and weight updates use it.
func NoGrad(fn func()) {
	disabled.Add(1)
	defer disabled.Add(-1)
	fn()
}

// NeedsGrad reports whether an op with these inputs must record history.
func NeedsGrad(inputs ...*tensor.Tensor) bool {
	if !IsGradEnabled() {
		return false
	}
	for _, t := range inputs {
		if t != nil && t.RequiresGrad() {
			return true
		}
	}
	return false
}

// Record attaches a Node to outputs when NeedsGrad(inputs...) holds. It
// returns whether it did. backward must not be nil.
func Record(name string, inputs, outputs []*tensor.Tensor, backward BackwardFunc) bool {
	if !NeedsGrad(inputs...) {
		return false
	}
	n := &Node{name: name, inputs: append([]*tensor.Tensor(nil), inputs...), backward: backward}
	for i, o := range outputs {
		n.outputs = append(n.outputs, outputInfo{shape: append([]int(nil), o.Shape()...), dtype: o.DType()})
		o.SetGradFn(&Ref{Node: n, Index: i})
	}
	return true
}

// ErrNoGrad is returned when Backward starts from a tensor with no history.
var ErrNoGrad = errors.New("autograd: tensor does not require grad and has no grad_fn")

// Backward computes the gradient of root with respect to every leaf that
// requires grad, adding it to the leaf's Grad. grad is the gradient of root
// itself; nil means ones (root is usually a scalar loss). The graph is freed
// afterwards: a second Backward through the same nodes is an error.
func Backward(root, grad *tensor.Tensor) error {
	if !root.RequiresGrad() {
		return ErrNoGrad
	}
	if grad == nil {
		grad = tensor.Full(1, root.Shape()...)
	} else if !tensor.SameShape(grad.Shape(), root.Shape()) {
		return fmt.Errorf("autograd: Backward: grad shape %v does not match root shape %v", grad.Shape(), root.Shape())
	}
	prev := SetGradEnabled(false)
	defer SetGradEnabled(prev)

	ref, _ := root.GradFn().(*Ref)
	if ref == nil {
		accumulate(root, grad)
		return nil
	}
	// Topological order by depth-first search (iterative).
	var order []*Node
	visited := map[*Node]bool{}
	type frame struct {
		n *Node
		i int
	}
	stack := []frame{{ref.Node, 0}}
	visited[ref.Node] = true
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if top.i < len(top.n.inputs) {
			in := top.n.inputs[top.i]
			top.i++
			if in == nil {
				continue
			}
			if r, ok := in.GradFn().(*Ref); ok && !visited[r.Node] {
				visited[r.Node] = true
				stack = append(stack, frame{r.Node, 0})
			}
			continue
		}
		order = append(order, top.n)
		stack = stack[:len(stack)-1]
	}
	grads := map[*Node][]*tensor.Tensor{}
	grads[ref.Node] = make([]*tensor.Tensor, len(ref.Node.outputs))
	grads[ref.Node][ref.Index] = grad
	for i := len(order) - 1; i >= 0; i-- {
		n := order[i]
		if n.freed {
			return fmt.Errorf("autograd: Backward: graph of %s was already freed by an earlier Backward", n.name)
		}
		gs := grads[n]
		delete(grads, n)
		for j := range gs {
			if gs[j] == nil {
				gs[j] = tensor.New(n.outputs[j].dtype, n.outputs[j].shape...)
			}
		}
		inGrads := n.backward(gs)
		if len(inGrads) != len(n.inputs) {
			return fmt.Errorf("autograd: %s backward returned %d gradients for %d inputs", n.name, len(inGrads), len(n.inputs))
		}
		for j, in := range n.inputs {
			g := inGrads[j]
			if in == nil || g == nil || !in.RequiresGrad() {
				continue
			}
			if !tensor.SameShape(g.Shape(), in.Shape()) {
				return fmt.Errorf("autograd: %s backward gave gradient of shape %v for input %d of shape %v", n.name, g.Shape(), j, in.Shape())
			}
			if r, ok := in.GradFn().(*Ref); ok {
				acc := grads[r.Node]
				if acc == nil {
					acc = make([]*tensor.Tensor, len(r.Node.outputs))
					grads[r.Node] = acc
				}
				if acc[r.Index] == nil {
					acc[r.Index] = g
				} else {
					acc[r.Index] = addNew(acc[r.Index], g)
				}
			} else {
				accumulate(in, g)
			}
		}
		n.backward, n.inputs, n.freed = nil, nil, true
	}
	return nil
}

func accumulate(leaf, g *tensor.Tensor) {
	if leaf.Grad() == nil {
		leaf.SetGrad(g.Clone())
		return
	}
	dst, src := leaf.Grad().F32(), g.F32()
	for i := range dst {
		dst[i] += src[i]
	}
}

func addNew(a, b *tensor.Tensor) *tensor.Tensor {
	out := a.Clone()
	dst, src := out.F32(), b.F32()
	for i := range dst {
		dst[i] += src[i]
	}
	return out
}
