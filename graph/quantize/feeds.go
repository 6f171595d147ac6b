package quantize

import (
	"fmt"
	"sort"
	"strings"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// Feeds splits arrays keyed by input name (an .npz file's arrays) into
// feeds of m, for calibration (Prepared.Observe) or comparison:
//
//   - an array one rank higher than its input holds one whole feed per
//     index of axis 0 (inputs like a recurrent state, or a scalar sample
//     rate, that have no batch axis of their own);
//   - an array of the input's own rank is, with batch 0, the input of
//     every feed; with batch > 0 it is split along axis 0 into feeds of
//     batch rows (the last one may be shorter). A rank-0 array is never
//     split.
//
// Inputs without a declared shape take their array as of the input's
// rank. An input that yields a single feed is given to every feed. Every
// input without a default value must have an array, every array must
// name an input, and the inputs that yield several feeds must agree on
// how many; errors name the input.
func Feeds(m *graph.Model, arrays map[string]*tensor.Tensor, batch int) ([]map[string]*tensor.Tensor, error) {
	if m == nil || m.Graph == nil {
		return nil, fmt.Errorf("Feeds: nil model")
	}
	if batch < 0 {
		return nil, fmt.Errorf("Feeds: batch %d", batch)
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
		return nil, fmt.Errorf("the model has no input %q (inputs: %s)", extra[0], strings.Join(names, ", "))
	}
	parts := map[string][]*tensor.Tensor{}
	n, by := 1, ""
	for _, v := range m.Graph.Inputs {
		t, ok := arrays[v.Name]
		if !ok {
			if v.Const != nil {
				continue
			}
			return nil, fmt.Errorf("input %q (%s) is missing", v.Name, v.Type)
		}
		var ps []*tensor.Tensor
		switch {
		case v.Type.HasShape && t.NDim() == len(v.Type.Shape)+1:
			if t.Dim(0) == 0 {
				return nil, fmt.Errorf("input %q holds no feeds (axis 0 is empty)", v.Name)
			}
			for i := 0; i < t.Dim(0); i++ {
				ps = append(ps, tensor.Slice(t, 0, i, i+1, 1).Reshape(t.Shape()[1:]...))
			}
		case v.Type.HasShape && t.NDim() != len(v.Type.Shape):
			return nil, fmt.Errorf("input %q is %s; its array has shape %v (want rank %d, or %d for a batch of feeds)", v.Name, v.Type, t.Shape(), len(v.Type.Shape), len(v.Type.Shape)+1)
		case batch > 0 && t.NDim() > 0:
			if t.Dim(0) == 0 {
				return nil, fmt.Errorf("input %q holds no rows (axis 0 is empty)", v.Name)
			}
			for i := 0; i < t.Dim(0); i += batch {
				ps = append(ps, tensor.Slice(t, 0, i, min(i+batch, t.Dim(0)), 1))
			}
		default:
			ps = []*tensor.Tensor{t}
		}
		parts[v.Name] = ps
		if len(ps) > 1 {
			if n > 1 && len(ps) != n {
				return nil, fmt.Errorf("input %q holds %d feeds, input %q holds %d", v.Name, len(ps), by, n)
			}
			n, by = len(ps), v.Name
		}
	}
	feeds := make([]map[string]*tensor.Tensor, n)
	for i := range feeds {
		feeds[i] = map[string]*tensor.Tensor{}
		for k, ps := range parts {
			if len(ps) == 1 {
				feeds[i][k] = ps[0]
			} else {
				feeds[i][k] = ps[i]
			}
		}
	}
	return feeds, nil
}
