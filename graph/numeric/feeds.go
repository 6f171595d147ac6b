package numeric

import (
	"fmt"
	"sort"
	"strings"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// Feeds splits arrays keyed by input name (an .npz file's arrays) into
// feeds of m: an array of the input's declared rank is the input of every
// feed; an array one rank higher holds one feed per index of its axis 0.
// Inputs without a declared shape take their array whole. Every input
// without a default value must have an array, every array must name an
// input, and batched arrays must agree on the number of feeds; errors
// name the input.
func Feeds(m *graph.Model, arrays map[string]*tensor.Tensor) ([]map[string]*tensor.Tensor, error) {
	if m == nil || m.Graph == nil {
		return nil, fmt.Errorf("numeric: Feeds: nil model")
	}
	declared := map[string]*graph.Value{}
	var names []string
	for _, v := range m.Graph.Inputs {
		declared[v.Name] = v
		names = append(names, v.Name)
	}
	var extra []string
	for k := range arrays {
		if declared[k] == nil {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return nil, fmt.Errorf("numeric: the model has no input %q (inputs: %s)", extra[0], strings.Join(names, ", "))
	}
	n, batchedBy := -1, ""
	batched := map[string]bool{}
	for _, v := range m.Graph.Inputs {
		t, ok := arrays[v.Name]
		if !ok {
			if v.Const != nil {
				continue
			}
			return nil, fmt.Errorf("numeric: input %q (%s) is missing", v.Name, v.Type)
		}
		if !v.Type.HasShape || t.NDim() == len(v.Type.Shape) {
			continue
		}
		if t.NDim() != len(v.Type.Shape)+1 {
			return nil, fmt.Errorf("numeric: input %q is %s; its array has shape %v (want rank %d, or %d for a batch of feeds)", v.Name, v.Type, t.Shape(), len(v.Type.Shape), len(v.Type.Shape)+1)
		}
		if n >= 0 && t.Dim(0) != n {
			return nil, fmt.Errorf("numeric: input %q holds %d feeds, input %q holds %d", v.Name, t.Dim(0), batchedBy, n)
		}
		n, batchedBy = t.Dim(0), v.Name
		batched[v.Name] = true
	}
	if n == 0 {
		return nil, fmt.Errorf("numeric: input %q holds no feeds (axis 0 is empty)", batchedBy)
	}
	if n < 0 {
		n = 1
	}
	feeds := make([]map[string]*tensor.Tensor, n)
	for i := range feeds {
		feeds[i] = map[string]*tensor.Tensor{}
		for k, t := range arrays {
			if batched[k] {
				feeds[i][k] = tensor.Slice(t, 0, i, i+1, 1).Reshape(t.Shape()[1:]...)
			} else {
				feeds[i][k] = t
			}
		}
	}
	return feeds, nil
}
