package dynamic

import (
	"testing"

	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/nn"
	opsdyn "github.com/quanta-go/quanta/ops/dynamic"
	"github.com/quanta-go/quanta/tensor"
)

// TestThreadIndependence runs a bidirectional LSTM large enough for its
// input projections to be split across goroutines with 1, 2 and 3 threads:
// the outputs must be bit-identical.
func TestThreadIndependence(t *testing.T) {
	defer parallel.SetNumThreads(parallel.SetNumThreads(1))
	g := tensor.NewRNG(8)
	f, _ := nn.NewLSTM(256, 256, nn.RNNOptions{Bidirectional: true, RNG: g})
	x := tensor.RandUniform(g, -1, 1, 32, 4, 256)
	for _, o := range []Options{{Rule: opsdyn.RuleTorchReduceRange, PerChannel: true}, {Float16: true}} {
		q, err := LSTMFromFloat(f, o)
		if err != nil {
			t.Fatal(err)
		}
		var first []float32
		for _, n := range []int{1, 2, 3} {
			parallel.SetNumThreads(n)
			y, st := q.Forward(x, nil)
			got := append(append([]float32(nil), y.F32()...), st.C.F32()...)
			if first == nil {
				first = got
				continue
			}
			for i := range got {
				if got[i] != first[i] {
					t.Fatalf("%s: %d threads: element %d is %v, with 1 thread %v", optName(o), n, i, got[i], first[i])
				}
			}
		}
	}
}
