package ops

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/tensor"
)

type fqCase struct {
	Kind       string    `json:"kind"`
	Input      string    `json:"input"`
	X          []float32 `json:"x"`
	Shape      []int     `json:"shape"`
	Axis       int       `json:"axis"`
	Scale      float32   `json:"scale"`
	ZeroPoint  int32     `json:"zero_point"`
	ZeroPointF float32   `json:"zero_point_f"`
	Scales     []float32 `json:"scales"`
	ZeroPoints []int32   `json:"zero_points"`
	QuantMin   int32     `json:"quant_min"`
	QuantMax   int32     `json:"quant_max"`
	GradFactor float32   `json:"grad_factor"`
	Y          []float32 `json:"y"`
	Upstream   []float32 `json:"upstream"`
	Grad       []float32 `json:"grad"`
	GradScale  float64   `json:"grad_scale"`
	GradZP     float64   `json:"grad_zero_point"`
	QUInt8     []int32   `json:"quint8"`
	QInt8      []int32   `json:"qint8"`
}

// TestFakeQuantPyTorchGolden compares fake quantization outputs and
// gradients, and quantize_per_tensor/per_channel integers, with PyTorch 1.13
// (scripts/golden_fakequant.py). Fake quantization matches exactly; the
// quantize functions divide by the scale where PyTorch multiplies by its
// inverse, so an integer may differ by one step where x/scale lies within an
// ulp of a half: those are counted and must be rare.
func TestFakeQuantPyTorchGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/fakequant_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Cases []fqCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) < 50 {
		t.Fatalf("only %d golden cases", len(g.Cases))
	}
	var qTotal, qHalfTies int
	for ci, c := range g.Cases {
		shape := c.Shape
		if shape == nil {
			shape = []int{len(c.X)}
		}
		x := tensor.FromFloat32(append([]float32(nil), c.X...), shape...).SetRequiresGrad(true)
		var y *tensor.Tensor
		var s, z *tensor.Tensor
		switch c.Kind {
		case "per_tensor":
			y = FakeQuantizePerTensor(x, c.Scale, c.ZeroPoint, c.QuantMin, c.QuantMax)
		case "per_channel":
			y = FakeQuantizePerChannel(x, c.Scales, c.ZeroPoints, c.Axis, c.QuantMin, c.QuantMax)
		case "learnable":
			s = tensor.FromFloat32([]float32{c.Scale}).SetRequiresGrad(true)
			z = tensor.FromFloat32([]float32{c.ZeroPointF}).SetRequiresGrad(true)
			y = FakeQuantizeLearnable(x, s, z, c.QuantMin, c.QuantMax, c.GradFactor)
		default:
			t.Fatalf("case %d: unknown kind %q", ci, c.Kind)
		}
		for i, w := range c.Y {
			if y.F32()[i] != w {
				t.Fatalf("case %d (%s %s): y[%d] = %v, PyTorch %v (x=%v)", ci, c.Kind, c.Input, i, y.F32()[i], w, c.X[i])
			}
		}
		if err := autograd.Backward(y, tensor.FromFloat32(c.Upstream, shape...)); err != nil {
			t.Fatal(err)
		}
		for i, w := range c.Grad {
			if x.Grad().F32()[i] != w {
				t.Fatalf("case %d (%s %s): grad[%d] = %v, PyTorch %v", ci, c.Kind, c.Input, i, x.Grad().F32()[i], w)
			}
		}
		if c.Kind == "learnable" {
			// The scale and zero-point gradients are float32 sums; PyTorch
			// reduces in a vectorized order, so compare to rounding.
			gs, gz := float64(s.Grad().F32()[0]), float64(z.Grad().F32()[0])
			if math.Abs(gs-c.GradScale) > 1e-4*math.Max(1, math.Abs(c.GradScale)) {
				t.Fatalf("case %d (%s): grad scale %v, PyTorch %v", ci, c.Input, gs, c.GradScale)
			}
			if math.Abs(gz-c.GradZP) > 1e-4*math.Max(1, math.Abs(c.GradZP)) {
				t.Fatalf("case %d (%s): grad zero point %v, PyTorch %v", ci, c.Input, gz, c.GradZP)
			}
		}
		check := func(dtype tensor.DType, want []int32, q *tensor.Tensor, scaleOf func(i int) float32) {
			got := IntRepr(q)
			for i, w := range want {
				var gi int32
				switch dtype {
				case tensor.QUInt8:
					gi = int32(got.U8()[i])
				case tensor.QInt8:
					gi = int32(got.I8()[i])
				}
				qTotal++
				if gi == w {
					continue
				}
				v := float64(c.X[i] / scaleOf(i))
				frac := v - math.Floor(v)
				if d := gi - w; (d == 1 || d == -1) && math.Abs(frac-0.5) < 1e-5*math.Max(1, math.Abs(v)) {
					qHalfTies++
					continue
				}
				t.Fatalf("case %d (%s %s): %v q[%d] = %d, PyTorch %d (x=%v)", ci, c.Kind, c.Input, dtype, i, gi, w, c.X[i])
			}
		}
		xs := tensor.FromFloat32(c.X, shape...)
		if c.QUInt8 != nil {
			check(tensor.QUInt8, c.QUInt8, QuantizePerTensor(xs, c.Scale, c.ZeroPoint, tensor.QUInt8), func(int) float32 { return c.Scale })
		}
		if c.QInt8 != nil {
			if c.Kind == "per_channel" {
				inner := shape[2]
				check(tensor.QInt8, c.QInt8, QuantizePerChannel(xs, c.Scales, c.ZeroPoints, c.Axis, tensor.QInt8), func(i int) float32 { return c.Scales[(i/inner)%shape[1]] })
			} else {
				check(tensor.QInt8, c.QInt8, QuantizePerTensor(xs, c.Scale, c.ZeroPoint, tensor.QInt8), func(int) float32 { return c.Scale })
			}
		}
	}
	t.Logf("quantize parity: %d integers compared, %d differ by one step at a rounding tie (x/scale vs x*(1/scale))", qTotal, qHalfTies)
	if qHalfTies*1000 > qTotal {
		t.Fatalf("%d of %d quantized values differ from PyTorch", qHalfTies, qTotal)
	}
}
