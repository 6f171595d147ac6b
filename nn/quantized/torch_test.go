package quantized

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// torchCase is one module of testdata/torch_golden.json, written by
// testdata/gen_torch.py with PyTorch 1.13's qnnpack engine.
type torchCase struct {
	Kind  string `json:"kind"`
	Attrs struct {
		Stride, Padding []int
		Groups          int
	} `json:"attrs"`
	XShape     []int     `json:"x_shape"`
	X          []uint8   `json:"x"`
	XScale     float32   `json:"x_scale"`
	XZeroPoint int32     `json:"x_zero_point"`
	WShape     []int     `json:"w_shape"`
	W          []int8    `json:"w"`
	WScale     float32   `json:"w_scale"`
	Bias       []float32 `json:"bias"`
	OutScale   float32   `json:"out_scale"`
	OutZP      int32     `json:"out_zero_point"`
	YShape     []int     `json:"y_shape"`
	Y          []uint8   `json:"y"`
}

func TestTorchGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/torch_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases []torchCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Cases) != 5 {
		t.Fatalf("%d cases", len(file.Cases))
	}
	total, exact := 0, 0
	for i, c := range file.Cases {
		x := tensor.NewQuantized(tensor.QUInt8, c.X, outQ(c.XScale, c.XZeroPoint), c.XShape...)
		wq := tensor.PerTensor(c.WScale, 0)
		wq.Scheme, wq.QuantMin, wq.QuantMax = tensor.PerTensorSymmetric, -128, 127
		w := tensor.NewQuantized(tensor.QInt8, c.W, wq, c.WShape...)
		b := tensor.FromFloat32(c.Bias, len(c.Bias))
		var m nn.Layer
		var err error
		switch c.Kind {
		case "Linear":
			m, err = NewLinear(w, b, c.OutScale, c.OutZP)
		case "LinearReLU":
			m, err = NewLinearReLU(w, b, c.OutScale, c.OutZP)
		case "Conv2d", "ConvReLU2d":
			a := ops.ConvAttrs{Stride: [2]int{c.Attrs.Stride[0], c.Attrs.Stride[1]}, Padding: [2]int{c.Attrs.Padding[0], c.Attrs.Padding[1]}, Groups: c.Attrs.Groups}
			if c.Kind == "Conv2d" {
				m, err = NewConv2d(w, b, a, c.OutScale, c.OutZP)
			} else {
				m, err = NewConvReLU2d(w, b, a, c.OutScale, c.OutZP)
			}
		default:
			t.Fatalf("case %d: unknown kind %q", i, c.Kind)
		}
		if err != nil {
			t.Fatal(err)
		}
		y := m.Forward(x)
		if !tensor.SameShape(y.Shape(), c.YShape) {
			t.Fatalf("case %d %s: shape %v, want %v", i, c.Kind, y.Shape(), c.YShape)
		}
		for j, v := range y.U8() {
			d := int(v) - int(c.Y[j])
			if d == 0 {
				exact++
			} else if d < -1 || d > 1 {
				t.Fatalf("case %d %s: output %d is %d, PyTorch %d", i, c.Kind, j, v, c.Y[j])
			}
			total++
		}
	}
	if float64(exact) < 0.99*float64(total) {
		t.Fatalf("%d of %d outputs equal PyTorch's, want at least 99%%", exact, total)
	}
	t.Logf("%d of %d outputs equal PyTorch 1.13 qnnpack's", exact, total)
}
