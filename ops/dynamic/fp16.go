package dynamic

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/kernels/qdyn"
	"github.com/quanta-go/quanta/internal/kernels/sgemm"
	"github.com/quanta-go/quanta/tensor"
)

// fp16Max is the largest finite half, 65504.
const fp16Max = 65504

// PackedLinearFP16 is a Linear layer with fp16 weights (PyTorch's
// float16 dynamic qconfig, fbgemm's linear_prepack_fp16): the weights are
// rounded once to IEEE half and kept as half bits, the size a model
// stores. Products run on quanta's float32 GEMM: at pack time the halves
// are widened (exactly) into the GEMM's packed float32 panels, so a call
// costs what a float32 Linear costs and reads 4 bytes per weight, and the
// layer holds 6 bytes per weight in memory (2 of half bits, 4 of panels).
// Widening per call instead would keep 2 bytes per weight but add a
// conversion pass over the whole weight to every call, which dominates
// batch-1 products. It is read-only once built and safe for concurrent
// calls.
type PackedLinearFP16 struct {
	in, out int
	half    []uint16
	panels  *sgemm.PackedB
	bias    []float32
}

// PackLinearFP16 rounds float32 weights w [out, in] to half as PyTorch
// does (values beyond ±65504 saturate to ±65504, then round to nearest
// even, subnormals exact) and packs them with the float32 bias (nil or
// [out]). NaN weights are an error.
func PackLinearFP16(w, bias *tensor.Tensor) (*PackedLinearFP16, error) {
	const op = "PackLinearFP16"
	if w == nil || w.DType() != tensor.Float32 || w.NDim() != 2 {
		return nil, fmt.Errorf("dynamic.%s: weight must be a 2-D float32 tensor [out, in], got %v", op, describe(w))
	}
	out, in := w.Dim(0), w.Dim(1)
	var bv []float32
	if bias != nil {
		if bias.DType() != tensor.Float32 || bias.NDim() != 1 || bias.Dim(0) != out {
			return nil, fmt.Errorf("dynamic.%s: bias must be float32 [%d], got %v", op, out, describe(bias))
		}
		bv = append([]float32(nil), bias.F32()...)
	}
	src := w.F32()
	half := make([]uint16, len(src))
	wide := make([]float32, len(src))
	for i, x := range src {
		if x != x {
			return nil, fmt.Errorf("dynamic.%s: weight %v holds NaN at %d", op, w.Shape(), i)
		}
		half[i] = qdyn.Float32ToFloat16(min(max(x, -fp16Max), fp16Max))
		wide[i] = qdyn.Float16ToFloat32(half[i])
	}
	return &PackedLinearFP16{in: in, out: out, half: half, panels: sgemm.PackB(true, in, out, wide, in), bias: bv}, nil
}

// InFeatures returns the input width.
func (p *PackedLinearFP16) InFeatures() int { return p.in }

// OutFeatures returns the output width.
func (p *PackedLinearFP16) OutFeatures() int { return p.out }

// WeightFP16 returns the half bits of the weights [out, in], row-major
// (shared: read only).
func (p *PackedLinearFP16) WeightFP16() []uint16 { return p.half }

// Weight returns the weights widened to float32 [out, in] (a new tensor).
func (p *PackedLinearFP16) Weight() *tensor.Tensor {
	w := make([]float32, len(p.half))
	qdyn.Float16sToFloat32(w, p.half)
	return tensor.FromFloat32(w, p.out, p.in)
}

// LinearFP16 computes y = x · float32(W)ᵀ + b for x [..., in] with the
// float32 GEMM (sgemm's rounding: fused multiply-adds in k order), the
// bias added afterwards; y is [..., out]. NaN in x propagates.
func LinearFP16(x *tensor.Tensor, p *PackedLinearFP16) (*tensor.Tensor, error) {
	const op = "LinearFP16"
	if err := checkFP16Input(op, x, p); err != nil {
		return nil, err
	}
	shape := append(append([]int(nil), x.Shape()[:x.NDim()-1]...), p.out)
	y := tensor.New(tensor.Float32, shape...)
	p.forward(y.Numel()/max(p.out, 1), x.F32(), y.F32())
	return y, nil
}

// LinearFP16Into is LinearFP16 writing into y, a float32 tensor of
// exactly the output shape.
func LinearFP16Into(y, x *tensor.Tensor, p *PackedLinearFP16) error {
	const op = "LinearFP16Into"
	if err := checkFP16Input(op, x, p); err != nil {
		return err
	}
	if y == nil || y.DType() != tensor.Float32 || y.NDim() != x.NDim() || y.Dim(-1) != p.out || !tensor.SameShape(y.Shape()[:y.NDim()-1], x.Shape()[:x.NDim()-1]) {
		return fmt.Errorf("dynamic.%s: output %v does not fit input %v and %d output features", op, describe(y), x.Shape(), p.out)
	}
	p.forward(y.Numel()/max(p.out, 1), x.F32(), y.F32())
	return nil
}

func (p *PackedLinearFP16) forward(m int, x, y []float32) {
	if m == 0 || p.out == 0 {
		return
	}
	sgemm.SgemmPackedB(false, m, 1, x, p.in, p.panels, 0, y, p.out)
	if p.bias != nil {
		for i := 0; i < m; i++ {
			row := y[i*p.out : (i+1)*p.out]
			for j, b := range p.bias {
				row[j] += b
			}
		}
	}
}

func checkFP16Input(op string, x *tensor.Tensor, p *PackedLinearFP16) error {
	if p == nil {
		return fmt.Errorf("dynamic.%s: nil weights", op)
	}
	if x == nil || x.DType() != tensor.Float32 || x.NDim() < 1 || x.Dim(-1) != p.in {
		return fmt.Errorf("dynamic.%s: input must be float32 [..., %d], got %v", op, p.in, describe(x))
	}
	return nil
}
