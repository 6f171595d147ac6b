package dynamic

import (
	"testing"

	"github.com/quanta-go/quanta/nn"
	opsdyn "github.com/quanta-go/quanta/ops/dynamic"
	"github.com/quanta-go/quanta/tensor"
)

// BenchmarkLSTM runs a 1-layer LSTM 256->256 over 32 steps at batch 1:
// the float nn.LSTM (the anchor, in the same run), the dynamic int8 LSTM
// and the fp16 one. GFLOP/s counts 2 flops per weight multiply-add of the
// input and hidden products.
func BenchmarkLSTM(b *testing.B) {
	const T, B, I, H = 32, 1, 256, 256
	g := tensor.NewRNG(1)
	f, err := nn.NewLSTM(I, H, nn.RNNOptions{RNG: g})
	if err != nil {
		b.Fatal(err)
	}
	nn.Eval(f)
	x := tensor.RandUniform(g, -1, 1, T, B, I)
	flops := float64(2 * T * B * 4 * H * (I + H))
	report := func(b *testing.B) {
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	}
	b.Run("float", func(b *testing.B) {
		for b.Loop() {
			f.Forward(x, nil)
		}
		report(b)
	})
	for _, c := range []struct {
		name string
		o    Options
	}{
		{"int8", Options{Rule: opsdyn.RuleTorch}},
		{"int8-reduce-range", Options{Rule: opsdyn.RuleTorchReduceRange}},
		{"fp16", Options{Float16: true}},
	} {
		q, err := LSTMFromFloat(f, c.o)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				q.Forward(x, nil)
			}
			report(b)
		})
	}
}
