package data

import (
	"fmt"

	"github.com/quanta-go/quanta/tensor"
)

// LoaderOptions configure a DataLoader. The zero value serves batches of
// one example in dataset order.
type LoaderOptions struct {
	// BatchSize is the number of examples per batch; 0 means 1.
	BatchSize int
	// Shuffle draws a new random order of the examples for every epoch.
	// The order of epoch e depends only on Seed and e.
	Shuffle bool
	// Seed seeds the shuffling.
	Seed uint64
	// DropLast drops the last batch of an epoch when it is smaller than
	// BatchSize.
	DropLast bool
}

// DataLoader cuts a Dataset into batches, as torch.utils.data.DataLoader
// does, deterministically: the same options give the same batches on every
// run and platform. Batches are stacked along a new first dimension, so
// inputs of shape [1, 28, 28] come out as [B, 1, 28, 28] and scalar targets
// as [B].
type DataLoader struct {
	ds  Dataset
	opt LoaderOptions
}

// NewDataLoader returns a loader over ds. A negative BatchSize is an error.
func NewDataLoader(ds Dataset, opt LoaderOptions) (*DataLoader, error) {
	if opt.BatchSize < 0 {
		return nil, fmt.Errorf("data: NewDataLoader: negative batch size %d", opt.BatchSize)
	}
	if opt.BatchSize == 0 {
		opt.BatchSize = 1
	}
	return &DataLoader{ds: ds, opt: opt}, nil
}

// Len returns the number of batches in one epoch.
func (l *DataLoader) Len() int {
	n, b := l.ds.Len(), l.opt.BatchSize
	if l.opt.DropLast {
		return n / b
	}
	return (n + b - 1) / b
}

// Order returns the order in which epoch visits the dataset's examples:
// 0..Len-1 without shuffling, otherwise a permutation drawn from a generator
// seeded by Seed and epoch alone.
func (l *DataLoader) Order(epoch int) []int {
	n := l.ds.Len()
	if !l.opt.Shuffle {
		return Range(0, n)
	}
	// Mix the epoch into the seed (SplitMix64 finalizer) so neighbouring
	// seeds and epochs give unrelated permutations.
	z := l.opt.Seed + uint64(epoch+1)*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return tensor.NewRNG(z).Perm(n)
}

// Epoch returns an iterator over the batches of the given epoch (counted
// from 0). Use it like bufio.Scanner:
//
//	it := loader.Epoch(e)
//	for it.Next() {
//		x, y := it.Batch()
//		...
//	}
//	if err := it.Err(); err != nil { ... }
func (l *DataLoader) Epoch(epoch int) *Iterator {
	return &Iterator{l: l, order: l.Order(epoch)}
}

// Iterator walks the batches of one epoch. It is not safe for concurrent
// use.
type Iterator struct {
	l     *DataLoader
	order []int
	pos   int
	idx   []int
	x, y  *tensor.Tensor
	err   error
}

// Next loads the next batch and reports whether there was one. It returns
// false at the end of the epoch or on an error (see Err).
func (it *Iterator) Next() bool {
	if it.err != nil {
		return false
	}
	b := it.l.opt.BatchSize
	rest := len(it.order) - it.pos
	if rest <= 0 || (it.l.opt.DropLast && rest < b) {
		it.x, it.y, it.idx = nil, nil, nil
		return false
	}
	it.idx = it.order[it.pos:min(it.pos+b, len(it.order))]
	it.pos += len(it.idx)
	if bt, ok := it.l.ds.(Batcher); ok {
		it.x, it.y, it.err = bt.Batch(it.idx)
	} else {
		it.x, it.y, it.err = collate(it.l.ds, it.idx)
	}
	return it.err == nil
}

// Batch returns the current batch: inputs and targets stacked along a new
// first dimension.
func (it *Iterator) Batch() (x, y *tensor.Tensor) { return it.x, it.y }

// Indices returns the dataset indices of the current batch (shared; do
// not modify).
func (it *Iterator) Indices() []int { return it.idx }

// Err returns the error that stopped the iteration, if any.
func (it *Iterator) Err() error { return it.err }

// collate fetches examples idx one by one and stacks them.
func collate(ds Dataset, idx []int) (x, y *tensor.Tensor, err error) {
	xs := make([]*tensor.Tensor, len(idx))
	ys := make([]*tensor.Tensor, len(idx))
	for k, i := range idx {
		if xs[k], ys[k], err = ds.Get(i); err != nil {
			return nil, nil, err
		}
	}
	if x, err = stack(xs, idx, "input"); err != nil {
		return nil, nil, err
	}
	if y, err = stack(ys, idx, "target"); err != nil {
		return nil, nil, err
	}
	return x, y, nil
}

// stack copies equally shaped tensors into one of shape [len(ts), shape...].
func stack(ts []*tensor.Tensor, idx []int, what string) (*tensor.Tensor, error) {
	first := ts[0]
	for k, t := range ts {
		if t.DType() != first.DType() || !tensor.SameShape(t.Shape(), first.Shape()) {
			return nil, fmt.Errorf("data: DataLoader: %s of example %d is %v%v, but example %d's is %v%v; a batch needs equal shapes",
				what, idx[k], t.DType(), t.Shape(), idx[0], first.DType(), first.Shape())
		}
	}
	return tensor.Stack(ts, 0), nil
}
