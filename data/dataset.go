package data

import (
	"fmt"

	"github.com/quanta-go/quanta/tensor"
)

// Dataset is a finite, indexable collection of (input, target) examples,
// like torch.utils.data.Dataset.
type Dataset interface {
	// Len returns the number of examples.
	Len() int
	// Get returns example i (0 <= i < Len()): an input and a target tensor.
	Get(i int) (x, y *tensor.Tensor, err error)
}

// Batcher is implemented by datasets that gather a whole batch at once
// faster than example by example. Batch returns inputs and targets stacked
// along a new first dimension, in the order of idx.
type Batcher interface {
	Batch(idx []int) (x, y *tensor.Tensor, err error)
}

// TensorDataset serves rows of two tensors that share their first
// dimension (torch.utils.data.TensorDataset): example i is (X[i], Y[i]).
type TensorDataset struct {
	x, y *tensor.Tensor
}

// NewTensorDataset returns the dataset of rows of x and y. Both must have
// at least one dimension, and the same size in it.
func NewTensorDataset(x, y *tensor.Tensor) (*TensorDataset, error) {
	if x.NDim() == 0 || y.NDim() == 0 {
		return nil, fmt.Errorf("data: NewTensorDataset: inputs %v and targets %v need a first dimension", x.Shape(), y.Shape())
	}
	if x.Dim(0) != y.Dim(0) {
		return nil, fmt.Errorf("data: NewTensorDataset: %d inputs %v but %d targets %v", x.Dim(0), x.Shape(), y.Dim(0), y.Shape())
	}
	return &TensorDataset{x: x, y: y}, nil
}

// Len returns the number of rows.
func (d *TensorDataset) Len() int { return d.x.Dim(0) }

// Tensors returns the whole input and target tensors (shared, not copied).
func (d *TensorDataset) Tensors() (x, y *tensor.Tensor) { return d.x, d.y }

// Get returns copies of row i of the inputs and the targets.
func (d *TensorDataset) Get(i int) (x, y *tensor.Tensor, err error) {
	if i < 0 || i >= d.Len() {
		return nil, nil, fmt.Errorf("data: TensorDataset: index %d out of range [0, %d)", i, d.Len())
	}
	return gatherRows(d.x, []int{i}, false), gatherRows(d.y, []int{i}, false), nil
}

// Batch returns rows idx of the inputs and the targets, stacked.
func (d *TensorDataset) Batch(idx []int) (x, y *tensor.Tensor, err error) {
	for _, i := range idx {
		if i < 0 || i >= d.Len() {
			return nil, nil, fmt.Errorf("data: TensorDataset: index %d out of range [0, %d)", i, d.Len())
		}
	}
	return gatherRows(d.x, idx, true), gatherRows(d.y, idx, true), nil
}

// gatherRows returns rows idx of t (indices already checked) as a new
// tensor of shape [len(idx), rest...], or [rest...] when keepDim is false
// (then len(idx) must be 1).
func gatherRows(t *tensor.Tensor, idx []int, keepDim bool) *tensor.Tensor {
	ix := make([]int64, len(idx))
	for k, i := range idx {
		ix[k] = int64(i)
	}
	out := tensor.IndexSelect(t, 0, tensor.FromInt64(ix))
	if !keepDim {
		out = out.Reshape(t.Shape()[1:]...)
	}
	return out
}

// Subset returns the dataset of ds's examples at indices, in that order
// (torch.utils.data.Subset). It serves batches through ds's Batcher when ds
// has one.
func Subset(ds Dataset, indices []int) (Dataset, error) {
	n := ds.Len()
	for _, i := range indices {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("data: Subset: index %d out of range [0, %d)", i, n)
		}
	}
	s := subset{ds: ds, idx: append([]int(nil), indices...)}
	if b, ok := ds.(Batcher); ok {
		return batchedSubset{s, b}, nil
	}
	return s, nil
}

// Range returns the indices start, start+1, ..., end-1, for Subset.
func Range(start, end int) []int {
	if end < start {
		return nil
	}
	r := make([]int, end-start)
	for i := range r {
		r[i] = start + i
	}
	return r
}

type subset struct {
	ds  Dataset
	idx []int
}

func (s subset) Len() int { return len(s.idx) }

func (s subset) Get(i int) (x, y *tensor.Tensor, err error) {
	if i < 0 || i >= len(s.idx) {
		return nil, nil, fmt.Errorf("data: Subset: index %d out of range [0, %d)", i, len(s.idx))
	}
	return s.ds.Get(s.idx[i])
}

type batchedSubset struct {
	subset
	b Batcher
}

func (s batchedSubset) Batch(idx []int) (x, y *tensor.Tensor, err error) {
	m := make([]int, len(idx))
	for k, i := range idx {
		if i < 0 || i >= len(s.idx) {
			return nil, nil, fmt.Errorf("data: Subset: index %d out of range [0, %d)", i, len(s.idx))
		}
		m[k] = s.idx[i]
	}
	return s.b.Batch(m)
}
