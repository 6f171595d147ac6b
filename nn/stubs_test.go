package nn

import (
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

// stubRecorder is an ActivationPostProcess stand-in that records what it sees
// and adds 100 so tests can tell it ran.
type stubRecorder struct {
	Base
	seen []*tensor.Tensor
}

func (r *stubRecorder) Forward(x *tensor.Tensor) *tensor.Tensor {
	r.seen = append(r.seen, x)
	return tensor.AddScalar(x, 100)
}

func stubEq(t *testing.T, what string, got *tensor.Tensor, want []float32) {
	t.Helper()
	g := got.F32()
	if len(g) != len(want) {
		t.Fatalf("%s: got %v, want %v", what, g, want)
	}
	for i := range g {
		if g[i] != want[i] {
			t.Fatalf("%s: got %v, want %v", what, g, want)
		}
	}
}

func TestStubsIdentity(t *testing.T) {
	x := tensor.FromFloat32([]float32{1, -2, 3}, 3)
	if got := NewQuantStub(nil).Forward(x); got != x {
		t.Fatal("QuantStub changed its input")
	}
	if got := NewDeQuantStub(nil).Forward(x); got != x {
		t.Fatal("DeQuantStub changed its input")
	}
	qc := "qconfig"
	s := NewQuantStub(qc)
	if s.QConfig != qc {
		t.Fatal("QuantStub lost its qconfig")
	}
}

func TestQuantWrapper(t *testing.T) {
	lin, err := NewLinear(2, 1, LinearOptions{})
	if err != nil {
		t.Fatal(err)
	}
	copy(lin.Weight.F32(), []float32{2, 3})
	lin.Bias.F32()[0] = 1
	lin.QConfig = "qc"
	w := NewQuantWrapper(lin)
	var names []string
	for _, c := range Children(w) {
		names = append(names, c.Name)
	}
	if len(names) != 3 || names[0] != "quant" || names[1] != "dequant" || names[2] != "module" {
		t.Fatalf("children %v, want [quant dequant module]", names)
	}
	if w.QConfig != "qc" || w.Quant.ModuleBase().QConfig != "qc" || w.DeQuant.ModuleBase().QConfig != "qc" {
		t.Fatal("qconfig not carried to the wrapper and its stubs")
	}
	// The quant stub's output feeds the module; replace the stubs to see the order.
	order := []string{}
	w.Quant.ModuleBase().RegisterForwardHook(func(m Module, in, out []*tensor.Tensor) []*tensor.Tensor {
		order = append(order, "quant")
		return nil
	})
	lin.RegisterForwardHook(func(m Module, in, out []*tensor.Tensor) []*tensor.Tensor {
		order = append(order, "module")
		return nil
	})
	w.DeQuant.ModuleBase().RegisterForwardHook(func(m Module, in, out []*tensor.Tensor) []*tensor.Tensor {
		order = append(order, "dequant")
		return nil
	})
	y := w.Forward(tensor.FromFloat32([]float32{1, 1, 2, -1}, 2, 2))
	stubEq(t, "wrapper", y, []float32{2 + 3 + 1, 4 - 3 + 1})
	if len(order) != 3 || order[0] != "quant" || order[1] != "module" || order[2] != "dequant" {
		t.Fatalf("call order %v", order)
	}
	if _, err := Get(w, "module"); err != nil {
		t.Fatal(err)
	}
}

func TestFloatFunctional(t *testing.T) {
	a := tensor.FromFloat32([]float32{1, -2, 3, -4}, 2, 2)
	b := tensor.FromFloat32([]float32{0.5, 1, -5, 2}, 2, 2)
	f := NewFloatFunctional()
	if TypeName(f) != "FloatFunctional" {
		t.Fatal(TypeName(f))
	}
	// Without an observer the ops are the float ops.
	stubEq(t, "add", f.Add(a, b), []float32{1.5, -1, -2, -2})
	stubEq(t, "mul", f.Mul(a, b), []float32{0.5, -2, -15, -8})
	stubEq(t, "add_scalar", f.AddScalar(a, 2), []float32{3, 0, 5, -2})
	stubEq(t, "mul_scalar", f.MulScalar(a, -2), []float32{-2, 4, -6, 8})
	stubEq(t, "add_relu", f.AddReLU(a, b), []float32{1.5, 0, 0, 0})
	c := f.Cat([]*tensor.Tensor{a, b}, 0)
	if c.Dim(0) != 4 || c.Dim(1) != 2 {
		t.Fatalf("cat shape %v", c.Shape())
	}
	stubEq(t, "cat", c, []float32{1, -2, 3, -4, 0.5, 1, -5, 2})

	// With an ActivationPostProcess, observed ops pass through it; the
	// scalar ops do not (PyTorch's FloatFunctional).
	r := &stubRecorder{}
	f.ActivationPostProcess = r
	stubEq(t, "observed add", f.Add(a, b), []float32{101.5, 99, 98, 98})
	stubEq(t, "observed mul", f.Mul(a, b), []float32{100.5, 98, 85, 92})
	stubEq(t, "observed add_relu", f.AddReLU(a, b), []float32{101.5, 100, 100, 100})
	f.Cat([]*tensor.Tensor{a, b}, 1)
	stubEq(t, "unobserved add_scalar", f.AddScalar(a, 2), []float32{3, 0, 5, -2})
	stubEq(t, "unobserved mul_scalar", f.MulScalar(a, 2), []float32{2, -4, 6, -8})
	if len(r.seen) != 4 {
		t.Fatalf("observer saw %d tensors, want 4", len(r.seen))
	}
	stubEq(t, "observer input of add_relu", r.seen[2], []float32{1.5, 0, 0, 0})
	if names := Children(f); len(names) != 1 || names[0].Name != "activation_post_process" {
		t.Fatalf("children %v", names)
	}

	// Forward hooks see every call with its inputs and (observed) output.
	var calls int
	f.RegisterForwardHook(func(m Module, in, out []*tensor.Tensor) []*tensor.Tensor {
		calls++
		if len(in) != 2 || out[0].F32()[0] != 101.5 {
			t.Errorf("hook saw %d inputs, output %v", len(in), out[0].F32())
		}
		return nil
	})
	f.Add(a, b)
	if calls != 1 {
		t.Fatalf("hook ran %d times", calls)
	}
}
