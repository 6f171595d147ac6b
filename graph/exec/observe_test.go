package exec

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// TestRunWithObserve checks that RunOptions.Observe sees every computed
// value of an unoptimized program, with its data, and that its error
// stops the run naming the node.
func TestRunWithObserve(t *testing.T) {
	p, err := Compile(addRelu(), Options{Unoptimized: true})
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.FromFloat32([]float32{0, 0, -2, -2}, 1, 4)
	seen := map[string][]float32{}
	_, err = p.RunWith(context.Background(), map[string]*tensor.Tensor{"x": x}, RunOptions{
		Observe: func(v *graph.Value, t *tensor.Tensor) error {
			seen[v.Name] = append([]float32(nil), t.F32()...)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{"s": {-1, 0, -1, 0}, "y": {0, 0, 0, 0}}
	if len(seen) != len(want) {
		t.Fatalf("observed %v, want the values %v", seen, want)
	}
	for k, w := range want {
		for i := range w {
			if seen[k][i] != w[i] {
				t.Fatalf("%s = %v, want %v", k, seen[k], w)
			}
		}
	}
	boom := errors.New("boom")
	_, err = p.RunWith(context.Background(), map[string]*tensor.Tensor{"x": x}, RunOptions{
		Observe: func(v *graph.Value, t *tensor.Tensor) error { return boom },
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "add (Add)") {
		t.Fatalf("error %v, want boom naming node add", err)
	}
}
