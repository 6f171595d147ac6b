package quantize

import (
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

func TestFeeds(t *testing.T) {
	g := graph.New("two")
	g.AddInput("x", graph.Type{Elem: graph.Float, HasShape: true, Shape: []graph.Dim{{Param: "N"}, {Size: 3}}})
	g.AddInput("k", graph.Type{Elem: graph.Int64, HasShape: true, Shape: []graph.Dim{}})
	d := g.AddInput("opt", graph.Type{Elem: graph.Float, HasShape: true, Shape: []graph.Dim{{Size: 1}}})
	d.Const = tensor.Zeros(1)
	m := &graph.Model{Graph: g, Opsets: map[string]int64{"": 13}}
	x3 := tensor.Arange(0, 3*2*3, 1).Reshape(3, 2, 3)
	k := tensor.FromInt64([]int64{7}).Reshape()
	feeds, err := Feeds(m, map[string]*tensor.Tensor{"x": x3, "k": k}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(feeds) != 3 {
		t.Fatalf("%d feeds, want 3", len(feeds))
	}
	for i, f := range feeds {
		x := f["x"]
		if !tensor.SameShape(x.Shape(), []int{2, 3}) || x.F32()[0] != float32(6*i) || x.F32()[5] != float32(6*i+5) || f["k"] != k || len(f) != 2 {
			t.Errorf("feed %d: %v", i, f)
		}
	}
	// The input's own rank: one feed. A batched scalar input.
	feeds, err = Feeds(m, map[string]*tensor.Tensor{"x": x3.Reshape(6, 3), "k": tensor.FromInt64([]int64{1, 2}, 2)}, 0)
	if err != nil || len(feeds) != 2 || feeds[1]["k"].I64()[0] != 2 || feeds[1]["k"].NDim() != 0 || feeds[0]["x"].Dim(0) != 6 {
		t.Errorf("feeds %v, %v", feeds, err)
	}
	bad := []struct {
		arrays map[string]*tensor.Tensor
		want   string
	}{
		{map[string]*tensor.Tensor{"x": x3}, `input "k" (int64[]) is missing`},
		{map[string]*tensor.Tensor{"x": x3, "k": k, "y": k}, `the model has no input "y" (inputs: x, k, opt)`},
		{map[string]*tensor.Tensor{"x": tensor.Zeros(3), "k": k}, `input "x" is float32[N,3]; its array has shape [3] (want rank 2, or 3 for a batch of feeds)`},
		{map[string]*tensor.Tensor{"x": x3, "k": tensor.FromInt64([]int64{1, 2}, 2)}, `input "k" holds 2 feeds, input "x" holds 3`},
		{map[string]*tensor.Tensor{"x": tensor.Zeros(0, 2, 3), "k": k}, `input "x" holds no feeds`},
	}
	for _, c := range bad {
		if _, err := Feeds(m, c.arrays, 0); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}

// TestFeedsBatches checks the split of arrays of the input's own rank
// into feeds of batch rows, beside a one-rank-higher state and a scalar
// given to every feed.
func TestFeedsBatches(t *testing.T) {
	g := graph.New("g")
	g.AddInput("input", graph.TensorType(graph.Float, 1, 4))
	g.AddInput("state", graph.TensorType(graph.Float, 2, 1, 3))
	g.AddInput("sr", graph.TensorType(graph.Int64))
	m := &graph.Model{Graph: g}
	in := tensor.Zeros(5, 4)
	for i := range in.F32() {
		in.F32()[i] = float32(i)
	}
	state := tensor.Zeros(5, 2, 1, 3) // one rank higher: 5 whole feeds
	state.F32()[6] = 7                // feed 1
	sr := tensor.FromInt64([]int64{16000}).Reshape()
	feeds, err := Feeds(m, map[string]*tensor.Tensor{"input": in, "state": state, "sr": sr}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(feeds) != 5 {
		t.Fatalf("%d feeds, want 5", len(feeds))
	}
	f := feeds[1]
	if !tensor.SameShape(f["input"].Shape(), []int{1, 4}) || f["input"].F32()[0] != 4 {
		t.Errorf("feed 1 input %v %v", f["input"].Shape(), f["input"].F32())
	}
	if !tensor.SameShape(f["state"].Shape(), []int{2, 1, 3}) || f["state"].F32()[0] != 7 {
		t.Errorf("feed 1 state %v %v", f["state"].Shape(), f["state"].F32())
	}
	if f["sr"].I64()[0] != 16000 {
		t.Errorf("feed 1 sr %v", f["sr"].I64())
	}
	// Batches of 2 rows: 3 feeds, the last one row; they no longer
	// agree with the 5 whole states.
	if _, err := Feeds(m, map[string]*tensor.Tensor{"input": in, "state": state, "sr": sr}, 2); err == nil || !strings.Contains(err.Error(), "feeds") {
		t.Errorf("disagreeing feed counts: %v", err)
	}
	two, err := Feeds(m, map[string]*tensor.Tensor{"input": in, "state": tensor.Zeros(2, 1, 3), "sr": sr}, 2)
	if err != nil || len(two) != 3 || two[2]["input"].Dim(0) != 1 || two[0]["input"].Dim(0) != 2 {
		t.Fatalf("batches of 2: %v, %v", two, err)
	}
	if _, err := Feeds(m, map[string]*tensor.Tensor{"input": in, "state": tensor.Zeros(3), "sr": sr}, 1); err == nil || !strings.Contains(err.Error(), "state") {
		t.Errorf("a wrong-rank array: %v", err)
	}
}
