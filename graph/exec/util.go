package exec

import (
	"fmt"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// nIn checks that a node has between lo and hi inputs (hi < 0: no limit).
func nIn(n *graph.Node, lo, hi int) error {
	k := len(n.Inputs)
	for k > 0 && n.Inputs[k-1] == nil {
		k--
	}
	if k < lo || (hi >= 0 && len(n.Inputs) > hi) {
		if hi == lo {
			return fmt.Errorf("want %d inputs, got %d", lo, len(n.Inputs))
		}
		return fmt.Errorf("want %d to %d inputs, got %d", lo, hi, len(n.Inputs))
	}
	for i := 0; i < lo; i++ {
		if n.Inputs[i] == nil {
			return fmt.Errorf("input %d is required", i)
		}
	}
	return nil
}

// one wraps a function of the node's inputs returning one output.
func one(f func(in []*tensor.Tensor) (*tensor.Tensor, error)) Kernel {
	return KernelFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		y, err := f(in)
		if err != nil {
			return nil, err
		}
		return []*tensor.Tensor{y}, nil
	})
}

// axis normalizes a possibly negative axis for rank r.
func axis(a int64, r int) (int, error) {
	if a < -int64(r) || a >= int64(r) {
		return 0, fmt.Errorf("axis %d out of range for rank %d", a, r)
	}
	if a < 0 {
		a += int64(r)
	}
	return int(a), nil
}

// ints64 returns the values of an integer tensor (int64 or int32).
func ints64(t *tensor.Tensor) ([]int64, error) {
	if t == nil {
		return nil, nil
	}
	switch t.DType() {
	case tensor.Int64:
		return t.I64(), nil
	case tensor.Int32:
		out := make([]int64, t.Numel())
		for i, v := range t.I32() {
			out[i] = int64(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want an int64 or int32 tensor, got %s", t.DType())
}

// wantFloat checks a tensor is float32.
func wantFloat(what string, t *tensor.Tensor) error {
	if t == nil || t.DType() != tensor.Float32 {
		dt := "nothing"
		if t != nil {
			dt = t.DType().String()
		}
		return fmt.Errorf("%s must be float32, got %s", what, dt)
	}
	return nil
}

// ConstantValue returns the tensor a Constant node produces (its value,
// value_float(s) or value_int(s) attribute), for passes that turn Constant
// nodes into initializers.
func ConstantValue(n *graph.Node) (*tensor.Tensor, error) {
	for _, name := range []string{"value", "value_float", "value_floats", "value_int", "value_ints"} {
		a, ok := n.Attrs[name]
		if !ok {
			continue
		}
		switch name {
		case "value":
			if a.T == nil {
				return nil, fmt.Errorf("attribute value holds no tensor")
			}
			return a.T, nil
		case "value_float":
			return tensor.Scalar(a.F), nil
		case "value_floats":
			return tensor.FromFloat32(append([]float32(nil), a.Fs...), len(a.Fs)), nil
		case "value_int":
			return tensor.FromInt64([]int64{a.I}).Reshape(), nil
		case "value_ints":
			return tensor.FromInt64(append([]int64(nil), a.Is...), len(a.Is)), nil
		}
	}
	return nil, fmt.Errorf("Constant needs one of value, value_float(s), value_int(s) (sparse and string values are not supported)")
}
