package fx

import (
	"fmt"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// QuantizeLinear and DequantizeLinear for GraphModule, so that a QDQ model
// trains (FinetuneQDQ): QuantizeLinear is fake quantization with the
// straight-through estimator whose output holds the integer codes as
// float32; DequantizeLinear maps codes (float32, or the integer constants
// of weights and biases) back to real values. The pair computes what the
// literal QDQ graph computes, and passes gradients where the value is in
// range.

// qdqParams reads a QuantizeLinear/DequantizeLinear node's scale and zero
// point (per tensor, or per index of the axis attribute) and the integer
// range of the zero point's type (its declared type for the 16-bit types,
// which are held as int32).
type qdqParams struct {
	scales     []float32
	zeroPoints []int32
	axis       int // -1: per tensor
	qmin, qmax int32
}

func readQDQ(n *graph.Node, in []*tensor.Tensor, x *tensor.Tensor) (*qdqParams, error) {
	s, err := need(n, in, 1)
	if err != nil {
		return nil, err
	}
	if s.DType() != tensor.Float32 || s.NDim() > 1 {
		return nil, fmt.Errorf("scale is %s %v, want a float32 scalar or 1-D tensor", s.DType(), s.Shape())
	}
	p := &qdqParams{scales: s.F32(), axis: -1, qmin: 0, qmax: 255}
	p.zeroPoints = make([]int32, len(p.scales))
	if len(in) > 2 && in[2] != nil {
		z := in[2]
		if z.Numel() != len(p.scales) {
			return nil, fmt.Errorf("%d zero points for %d scales", z.Numel(), len(p.scales))
		}
		switch z.DType() {
		case tensor.Uint8:
			for i, v := range z.U8() {
				p.zeroPoints[i] = int32(v)
			}
		case tensor.Int8:
			p.qmin, p.qmax = -128, 127
			for i, v := range z.I8() {
				p.zeroPoints[i] = int32(v)
			}
		case tensor.Int32:
			// int16 and uint16 codes are held as int32: the zero point's
			// declared type gives their range.
			switch n.Input(2).Type.Elem {
			case graph.Int16:
				p.qmin, p.qmax = -1<<15, 1<<15-1
			case graph.Uint16:
				p.qmin, p.qmax = 0, 1<<16-1
			default:
				p.qmin, p.qmax = -1<<31, 1<<31-1
			}
			copy(p.zeroPoints, z.I32())
		default:
			return nil, fmt.Errorf("zero point is %s, want uint8, int8 or int32", z.DType())
		}
	}
	if s.NDim() == 1 && x.NDim() > 0 {
		axis, err := n.Int("axis", 1)
		if err != nil {
			return nil, err
		}
		if axis < 0 {
			axis += int64(x.NDim())
		}
		if axis < 0 || int(axis) >= x.NDim() || x.Dim(int(axis)) != len(p.scales) {
			return nil, fmt.Errorf("%d scales along axis %d of shape %v", len(p.scales), axis, x.Shape())
		}
		p.axis = int(axis)
	} else if len(p.scales) != 1 {
		return nil, fmt.Errorf("%d scales for a scalar", len(p.scales))
	}
	return p, nil
}

// bcast returns v as a tensor that broadcasts along p's axis of x.
func (p *qdqParams) bcast(x *tensor.Tensor, v []float32) *tensor.Tensor {
	shape := make([]int, x.NDim())
	for i := range shape {
		shape[i] = 1
	}
	shape[p.axis] = len(v)
	return tensor.FromFloat32(v, shape...)
}

func (p *qdqParams) zeroFloats() []float32 {
	z := make([]float32, len(p.zeroPoints))
	for i, v := range p.zeroPoints {
		z[i] = float32(v)
	}
	return z
}

func runQuantizeLinear(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := need(n, in, 0)
	if err != nil {
		return nil, err
	}
	if x.DType() != tensor.Float32 {
		return nil, fmt.Errorf("input is %s, want float32", x.DType())
	}
	p, err := readQDQ(n, in, x)
	if err != nil {
		return nil, err
	}
	if p.axis < 0 {
		fq := ops.FakeQuantizePerTensor(x, p.scales[0], p.zeroPoints[0], p.qmin, p.qmax)
		return one1(ops.AddScalar(ops.MulScalar(fq, 1/p.scales[0]), float32(p.zeroPoints[0]))), nil
	}
	fq := ops.FakeQuantizePerChannel(x, p.scales, p.zeroPoints, p.axis, p.qmin, p.qmax)
	return one1(ops.Add(ops.Div(fq, p.bcast(x, p.scales)), p.bcast(x, p.zeroFloats()))), nil
}

func runDequantizeLinear(n *graph.Node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := need(n, in, 0)
	if err != nil {
		return nil, err
	}
	p, err := readQDQ(n, in, x)
	if err != nil {
		return nil, err
	}
	if x.DType() != tensor.Float32 {
		x = tensor.Cast(x.Detach(), tensor.Float32)
	}
	if p.axis < 0 {
		return one1(ops.MulScalar(ops.AddScalar(x, -float32(p.zeroPoints[0])), p.scales[0])), nil
	}
	return one1(ops.Mul(ops.Sub(x, p.bcast(x, p.zeroFloats())), p.bcast(x, p.scales))), nil
}
