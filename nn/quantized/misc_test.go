package quantized

import (
	"strings"
	"sync"
	"testing"

	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

func TestTypeNames(t *testing.T) {
	g := tensor.NewRNG(10)
	w2 := randW(t, g, false, 0, 4, 4)
	w4 := randW(t, g, false, 0, 4, 4, 1, 1)
	w3 := randW(t, g, false, 0, 4, 4, 1)
	l, _ := NewLinear(w2, nil, 1, 0)
	lr, _ := NewLinearReLU(w2, nil, 1, 0)
	c2, _ := NewConv2d(w4, nil, ops.ConvAttrs{}, 1, 0)
	cr2, _ := NewConvReLU2d(w4, nil, ops.ConvAttrs{}, 1, 0)
	c1, _ := NewConv1d(w3, nil, ops.Conv1dAttrs{}, 1, 0)
	cr1, _ := NewConvReLU1d(w3, nil, ops.Conv1dAttrs{}, 1, 0)
	ct, _ := NewConvTranspose2d(w4, nil, ops.ConvTransposeAttrs{}, 1, 0)
	q, _ := NewQuantize(1, 0)
	hs, _ := NewHardswish(1, 0)
	gn, _ := NewGroupNorm(2, 4, nil, nil, 0, 1, 0)
	in1, _ := NewInstanceNorm1d(4, nil, nil, 0, 1, 0)
	in2, _ := NewInstanceNorm2d(4, nil, nil, 0, 1, 0)
	qf, _ := NewQFunctional(1, 0)
	want := map[nn.Module]string{
		l: "quantized.Linear", lr: "quantized.LinearReLU", c2: "quantized.Conv2d", cr2: "quantized.ConvReLU2d",
		c1: "quantized.Conv1d", cr1: "quantized.ConvReLU1d", ct: "quantized.ConvTranspose2d", q: "quantized.Quantize",
		NewDeQuantize(): "quantized.DeQuantize", hs: "quantized.Hardswish", gn: "quantized.GroupNorm",
		in1: "quantized.InstanceNorm1d", in2: "quantized.InstanceNorm2d", qf: "quantized.QFunctional",
		NewReLU6(): "quantized.ReLU6", NewDropout(0.1): "quantized.Dropout",
	}
	for m, name := range want {
		if got := nn.TypeName(m); got != name {
			t.Errorf("TypeName %q, want %q", got, name)
		}
	}
	// Embedded state is found by the state dict walk.
	if sd := nn.StateDict(in2); len(sd) != 2 || sd["scale"] == nil {
		t.Fatalf("InstanceNorm2d state %v", nn.StateDictKeys(in2))
	}
}

func TestConstructorErrors(t *testing.T) {
	g := tensor.NewRNG(11)
	w := randW(t, g, false, 0, 4, 6)
	wpc1 := randW(t, g, true, 1, 4, 6)
	cases := []struct {
		name string
		err  error
	}{
		{"float weight", func() error { _, err := NewLinear(tensor.Zeros(4, 6), nil, 1, 0); return err }()},
		{"bias shape", func() error { _, err := NewLinear(w, tensor.Zeros(5), 1, 0); return err }()},
		{"per-channel axis", func() error { _, err := NewLinear(wpc1, nil, 1, 0); return err }()},
		{"scale", func() error { _, err := NewLinear(w, nil, -1, 0); return err }()},
		{"zero point", func() error { _, err := NewLinear(w, nil, 1, 256); return err }()},
		{"conv rank", func() error { _, err := NewConv2d(w, nil, ops.ConvAttrs{}, 1, 0); return err }()},
		{"conv groups", func() error {
			_, err := NewConv2d(randW(t, g, false, 0, 6, 2, 3, 3), nil, ops.ConvAttrs{Groups: 4}, 1, 0)
			return err
		}()},
		{"out qparams", func() error {
			f, _ := nn.NewLinear(6, 4, nn.LinearOptions{})
			_, err := LinearFromFloat(f, nil, &tensor.QParams{Scheme: tensor.PerChannelAffine, Scale: []float32{1, 1}, ZeroPoint: []int32{0, 0}})
			return err
		}()},
	}
	for _, c := range cases {
		if c.err == nil || !strings.HasPrefix(c.err.Error(), "quantized: ") {
			t.Errorf("%s: error %v", c.name, c.err)
		}
	}
}

func TestObservedQParams(t *testing.T) {
	s := nn.NewQuantStub(nil)
	if _, err := QuantizeFromStub(s); err == nil {
		t.Fatal("unobserved QuantStub converted")
	}
	s.ActivationPostProcess = &fixedSource{q: tensor.PerTensor(0.125, 3)}
	q, err := QuantizeFromStub(s)
	if err != nil {
		t.Fatal(err)
	}
	y := q.Forward(tensor.FromFloat32([]float32{1, -0.25}, 2))
	if y.U8()[0] != 11 || y.U8()[1] != 1 {
		t.Fatalf("codes %v, want [11 1]", y.U8())
	}
}

// The outputs do not depend on the thread count, and concurrent calls
// (which share the packed weights) agree.
func TestThreadsAndConcurrency(t *testing.T) {
	g := tensor.NewRNG(12)
	c, err := NewConvReLU2d(randW(t, g, true, 0, 32, 16, 3, 3), tensor.RandUniform(g, -1, 1, 32), ops.ConvAttrs{Padding: [2]int{1, 1}}, 0.05, 30)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLinear(randW(t, g, false, 0, 48, 96), tensor.RandUniform(g, -1, 1, 48), 0.05, 128)
	if err != nil {
		t.Fatal(err)
	}
	xc := randQ(g, 0.02, 128, 2, 16, 12, 12)
	xl := randQ(g, 0.02, 128, 33, 96)
	defer parallel.SetNumThreads(parallel.SetNumThreads(1))
	wantC, wantL := c.Forward(xc), l.Forward(xl)
	for _, n := range []int{2, 3} {
		parallel.SetNumThreads(n)
		compareQ(t, "conv threads", c.Forward(xc), wantC, 1)
		compareQ(t, "linear threads", l.Forward(xl), wantL, 1)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tensor.MaxAbsDiff(deq(c.Forward(xc)), deq(wantC)) != 0 || tensor.MaxAbsDiff(deq(l.Forward(xl)), deq(wantL)) != 0 {
				errs <- "concurrent call differs"
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}
