package exec

import (
	"fmt"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// Pad (opset 2 on): modes constant, reflect, edge and wrap (opset 19);
// pads and value are attributes before opset 11, inputs (pads,
// constant_value, and axes from opset 18) after. Negative pads crop. Any
// dtype quanta holds is padded.

func init() {
	register("Pad", 2, compilePad)
}

// padKernel is a compiled Pad node.
type padKernel struct {
	mode  string
	attrs bool    // opsets 2 to 10
	pads  []int64 // attribute pads
	value float32 // attribute value
	opset int64
}

func compilePad(c *CompileContext, n *graph.Node) (Kernel, error) {
	k := &padKernel{opset: c.Opset("")}
	var err error
	if k.mode, err = n.StringAttr("mode", "constant"); err != nil {
		return nil, err
	}
	switch k.mode {
	case "constant", "reflect", "edge":
	case "wrap":
		if k.opset < 19 {
			return nil, fmt.Errorf("mode wrap needs opset 19")
		}
	default:
		return nil, fmt.Errorf("mode %q, want constant, reflect, edge or wrap", k.mode)
	}
	if k.opset < 11 {
		if err := nIn(n, 1, 1); err != nil {
			return nil, err
		}
		k.attrs = true
		if k.pads, err = n.Ints("pads", nil); err != nil {
			return nil, err
		}
		if k.pads == nil {
			return nil, fmt.Errorf("attribute pads is required")
		}
		if k.value, err = n.Float("value", 0); err != nil {
			return nil, err
		}
		return k, nil
	}
	hi := 3
	if k.opset >= 18 {
		hi = 4
	}
	if err := nIn(n, 2, hi); err != nil {
		return nil, err
	}
	return k, nil
}

// Run pads the input.
func (k *padKernel) Run(_ *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	xs := x.Shape()
	r := len(xs)
	pads := k.pads
	var cval *tensor.Tensor
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	if !k.attrs {
		var err error
		if pads, err = ints64(in[1]); err != nil {
			return nil, fmt.Errorf("pads: %w", err)
		}
		if len(in) > 2 && in[2] != nil {
			cval = in[2]
			if cval.DType() != x.DType() || cval.Numel() != 1 {
				return nil, fmt.Errorf("constant_value must be one %s, got %s %v", x.DType(), cval.DType(), cval.Shape())
			}
		}
		if len(in) > 3 && in[3] != nil {
			a, err := ints64(in[3])
			if err != nil {
				return nil, fmt.Errorf("axes: %w", err)
			}
			if axes, err = nnAxes(a, r); err != nil {
				return nil, err
			}
		}
	}
	if len(pads) != 2*len(axes) {
		return nil, fmt.Errorf("pads has %d values for %d axes of input %v", len(pads), len(axes), xs)
	}
	pb, pe := make([]int, r), make([]int, r)
	for i, a := range axes {
		pb[a], pe[a] = int(pads[i]), int(pads[i+len(axes)])
	}
	out := make([]int, r)
	tables := make([][]int, r)
	for d := range r {
		out[d] = xs[d] + pb[d] + pe[d]
		if out[d] < 0 {
			return nil, fmt.Errorf("pads %v crop more than dimension %d of %v", pads, d, xs)
		}
		if out[d] > 0 && xs[d] == 0 && k.mode != "constant" && (pb[d] > 0 || pe[d] > 0) {
			return nil, fmt.Errorf("mode %s cannot pad the empty dimension %d of %v", k.mode, d, xs)
		}
		tables[d] = padTable(k.mode, xs[d], out[d], pb[d])
	}
	var y *tensor.Tensor
	numel := nnProd(out)
	switch x.DType() {
	case tensor.Float32:
		y = tensor.FromFloat32(padTyped(x, cval, (*tensor.Tensor).F32, k.value, out, tables), numel)
	case tensor.Int64:
		y = tensor.FromInt64(padTyped(x, cval, (*tensor.Tensor).I64, 0, out, tables), numel)
	case tensor.Int32:
		y = tensor.FromInt32(padTyped(x, cval, (*tensor.Tensor).I32, 0, out, tables), numel)
	case tensor.Int8:
		y = tensor.FromInt8(padTyped(x, cval, (*tensor.Tensor).I8, 0, out, tables), numel)
	case tensor.Uint8:
		y = tensor.FromUint8(padTyped(x, cval, (*tensor.Tensor).U8, 0, out, tables), numel)
	case tensor.Bool:
		y = tensor.FromBool(padTyped(x, cval, (*tensor.Tensor).Bools, false, out, tables), numel)
	default:
		return nil, fmt.Errorf("input of type %s is not supported", x.DType())
	}
	return []*tensor.Tensor{nnReshape(y, out)}, nil
}

// padTyped pads x, whose elements elems reads, to the shape out along the
// tables, with the constant cval holds, or def when cval is nil.
func padTyped[T any](x, cval *tensor.Tensor, elems func(*tensor.Tensor) []T, def T, out []int, tables [][]int) []T {
	if cval != nil {
		def = elems(cval)[0]
	}
	return padApply(elems(x), x.Shape(), out, tables, def)
}

// padTable maps each output index of a dimension to its input index, -1
// for the constant.
func padTable(mode string, n, out, before int) []int {
	t := make([]int, out)
	for o := range t {
		i := o - before
		if i >= 0 && i < n {
			t[o] = i
			continue
		}
		switch mode {
		case "constant":
			i = -1
		case "edge":
			i = min(max(i, 0), n-1)
		case "wrap":
			i = ((i % n) + n) % n
		case "reflect":
			if n == 1 {
				i = 0
				break
			}
			p := 2 * (n - 1)
			i = ((i % p) + p) % p
			if i >= n {
				i = p - i
			}
		}
		t[o] = i
	}
	return t
}

// padApply builds the padded tensor's values: element (o1, ..., or) is
// x[table1[o1], ..., tabler[or]], or c when any table gives -1.
func padApply[T any](x []T, xs, out []int, tables [][]int, c T) []T {
	r := len(xs)
	y := make([]T, nnProd(out))
	if len(y) == 0 {
		return y
	}
	if r == 0 {
		y[0] = x[0]
		return y
	}
	last := out[r-1]
	rows := len(y) / last
	strides := tensor.Strides(xs)
	parallel.For(rows, 64, func(s, e int) {
		for row := s; row < e; row++ {
			dst := y[row*last : (row+1)*last]
			base, rem := 0, row
			for d := r - 2; d >= 0 && base >= 0; d-- {
				i := tables[d][rem%out[d]]
				rem /= out[d]
				if i < 0 {
					base = -1
					break
				}
				base += i * strides[d]
			}
			if base < 0 {
				for j := range dst {
					dst[j] = c
				}
				continue
			}
			for j, i := range tables[r-1] {
				if i < 0 {
					dst[j] = c
				} else {
					dst[j] = x[base+i]
				}
			}
		}
	})
	return y
}
