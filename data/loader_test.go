package data

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

// rowsDataset is n examples: x[i] is the [2,2] float tensor filled with i,
// y[i] is the float32 scalar 100+i.
func rowsDataset(t *testing.T, n int) *TensorDataset {
	t.Helper()
	x := tensor.Zeros(n, 2, 2)
	y := tensor.Zeros(n)
	for i := 0; i < n; i++ {
		for j := 0; j < 4; j++ {
			x.F32()[4*i+j] = float32(i)
		}
		y.F32()[i] = float32(100 + i)
	}
	ds, err := NewTensorDataset(x, y)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// itemsOnly hides a dataset's Batcher so the loader collates item by item.
type itemsOnly struct{ Dataset }

func TestTensorDataset(t *testing.T) {
	ds := rowsDataset(t, 5)
	if ds.Len() != 5 {
		t.Fatalf("Len %d", ds.Len())
	}
	x, y, err := ds.Get(3)
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(x.Shape(), []int{2, 2}) || x.F32()[0] != 3 || y.NDim() != 0 || y.Item() != 103 {
		t.Errorf("Get(3) = %v, %v", x, y)
	}
	x.F32()[0] = -1 // a copy: the dataset is unchanged
	if xs, _ := ds.Tensors(); xs.F32()[12] != 3 {
		t.Error("Get returned shared storage")
	}
	bx, by, err := ds.Batch([]int{4, 0, 4})
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(bx.Shape(), []int{3, 2, 2}) || !slices.Equal(by.Float64s(), []float64{104, 100, 104}) || bx.F32()[4] != 0 || bx.F32()[11] != 4 {
		t.Errorf("Batch = %v, %v", bx, by)
	}
	for _, i := range []int{-1, 5} {
		if _, _, err := ds.Get(i); err == nil || !strings.Contains(err.Error(), "out of range [0, 5)") {
			t.Errorf("Get(%d): error %v", i, err)
		}
		if _, _, err := ds.Batch([]int{0, i}); err == nil {
			t.Errorf("Batch with %d: no error", i)
		}
	}
	if _, err := NewTensorDataset(tensor.Zeros(3, 2), tensor.Zeros(4)); err == nil || !strings.Contains(err.Error(), "3 inputs [3 2] but 4 targets [4]") {
		t.Errorf("mismatched lengths: error %v", err)
	}
	if _, err := NewTensorDataset(tensor.Scalar(1), tensor.Zeros(1)); err == nil {
		t.Error("0-dim inputs: no error")
	}
}

func TestSubset(t *testing.T) {
	ds := rowsDataset(t, 10)
	for _, base := range []Dataset{ds, itemsOnly{ds}} {
		sub, err := Subset(base, []int{7, 2, 9})
		if err != nil {
			t.Fatal(err)
		}
		_, isBatcher := sub.(Batcher)
		if _, want := base.(Batcher); isBatcher != want {
			t.Errorf("Subset of %T: Batcher %v, want %v", base, isBatcher, want)
		}
		if sub.Len() != 3 {
			t.Errorf("Len %d", sub.Len())
		}
		_, y, err := sub.Get(1)
		if err != nil || y.Item() != 102 {
			t.Errorf("Get(1) = %v, %v", y, err)
		}
		if _, _, err := sub.Get(3); err == nil {
			t.Error("Get(3) of 3: no error")
		}
		l, _ := NewDataLoader(sub, LoaderOptions{BatchSize: 3})
		it := l.Epoch(0)
		if !it.Next() {
			t.Fatal(it.Err())
		}
		if _, y := it.Batch(); !slices.Equal(y.Float64s(), []float64{107, 102, 109}) {
			t.Errorf("%T batch targets %v", base, y)
		}
	}
	if _, err := Subset(ds, []int{0, 10}); err == nil || !strings.Contains(err.Error(), "index 10 out of range [0, 10)") {
		t.Errorf("bad index: error %v", err)
	}
	if r := Range(3, 6); !slices.Equal(r, []int{3, 4, 5}) || Range(2, 1) != nil {
		t.Errorf("Range(3, 6) = %v", r)
	}
}

// epochTargets runs one epoch and returns the targets of each batch.
func epochTargets(t *testing.T, l *DataLoader, epoch int) [][]float64 {
	t.Helper()
	var out [][]float64
	it := l.Epoch(epoch)
	for it.Next() {
		x, y := it.Batch()
		n := len(it.Indices())
		if !equalInts(x.Shape(), []int{n, 2, 2}) || !equalInts(y.Shape(), []int{n}) {
			t.Fatalf("batch shapes %v %v for %d indices", x.Shape(), y.Shape(), n)
		}
		for k, i := range it.Indices() {
			if x.F32()[4*k] != float32(i) || y.F32()[k] != float32(100+i) {
				t.Fatalf("batch row %d holds %v/%v, want example %d", k, x.F32()[4*k], y.F32()[k], i)
			}
		}
		out = append(out, y.Float64s())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDataLoaderSequential(t *testing.T) {
	ds := rowsDataset(t, 10)
	for _, c := range []struct {
		batch    int
		dropLast bool
		sizes    []int
	}{
		{4, false, []int{4, 4, 2}},
		{4, true, []int{4, 4}},
		{5, true, []int{5, 5}},
		{0, false, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{11, true, nil},
		{11, false, []int{10}},
	} {
		for _, d := range []Dataset{ds, itemsOnly{ds}} {
			l, err := NewDataLoader(d, LoaderOptions{BatchSize: c.batch, DropLast: c.dropLast})
			if err != nil {
				t.Fatal(err)
			}
			got := epochTargets(t, l, 0)
			var sizes []int
			var all []float64
			for _, b := range got {
				sizes = append(sizes, len(b))
				all = append(all, b...)
			}
			if !slices.Equal(sizes, c.sizes) || l.Len() != len(c.sizes) {
				t.Errorf("batch %d dropLast %v: sizes %v Len %d, want %v", c.batch, c.dropLast, sizes, l.Len(), c.sizes)
			}
			for k, v := range all {
				if v != float64(100+k) {
					t.Errorf("unshuffled order: position %d holds %v", k, v)
				}
			}
		}
	}
	if _, err := NewDataLoader(ds, LoaderOptions{BatchSize: -1}); err == nil {
		t.Error("negative batch size: no error")
	}
}

func TestDataLoaderShuffle(t *testing.T) {
	ds := rowsDataset(t, 50)
	opt := LoaderOptions{BatchSize: 8, Shuffle: true, Seed: 42}
	l1, _ := NewDataLoader(ds, opt)
	l2, _ := NewDataLoader(itemsOnly{ds}, opt)
	e0 := epochTargets(t, l1, 0)
	e1 := epochTargets(t, l1, 1)
	// Epoch 1 first, then epoch 0: each epoch's order depends on its
	// number only, and both dataset paths agree.
	if got := epochTargets(t, l2, 1); fmt.Sprint(got) != fmt.Sprint(e1) {
		t.Errorf("epoch 1 differs between loaders:\n%v\n%v", got, e1)
	}
	if got := epochTargets(t, l2, 0); fmt.Sprint(got) != fmt.Sprint(e0) {
		t.Errorf("epoch 0 differs between loaders")
	}
	if fmt.Sprint(e0) == fmt.Sprint(e1) {
		t.Error("epochs 0 and 1 have the same order")
	}
	other, _ := NewDataLoader(ds, LoaderOptions{BatchSize: 8, Shuffle: true, Seed: 43})
	if fmt.Sprint(epochTargets(t, other, 0)) == fmt.Sprint(e0) {
		t.Error("seeds 42 and 43 give the same order")
	}
	// Every example exactly once per epoch; not in sequential order.
	var flat []float64
	for _, b := range e0 {
		flat = append(flat, b...)
	}
	sorted := slices.Sorted(slices.Values(flat))
	for k, v := range sorted {
		if v != float64(100+k) {
			t.Fatalf("epoch 0 visits %v", sorted)
		}
	}
	if slices.IsSorted(flat) {
		t.Error("shuffled epoch is in dataset order")
	}
	// The same order as Order reports.
	for k, i := range l1.Order(0) {
		if flat[k] != float64(100+i) {
			t.Fatalf("position %d: batch has %v, Order says example %d", k, flat[k], i)
		}
	}
}

// raggedDataset has inputs of different shapes, which cannot be batched.
type raggedDataset struct{}

func (raggedDataset) Len() int { return 3 }
func (raggedDataset) Get(i int) (x, y *tensor.Tensor, err error) {
	return tensor.Zeros(i + 1), tensor.Scalar(float32(i)), nil
}

// failingDataset fails on example 2.
type failingDataset struct{}

func (failingDataset) Len() int { return 4 }
func (failingDataset) Get(i int) (x, y *tensor.Tensor, err error) {
	if i == 2 {
		return nil, nil, fmt.Errorf("example 2 is unreadable")
	}
	return tensor.Zeros(1), tensor.Scalar(0), nil
}

func TestDataLoaderErrors(t *testing.T) {
	l, _ := NewDataLoader(raggedDataset{}, LoaderOptions{BatchSize: 3})
	it := l.Epoch(0)
	if it.Next() {
		t.Fatal("ragged batch accepted")
	}
	if err := it.Err(); err == nil || !strings.Contains(err.Error(), "input of example 1 is float32[2], but example 0's is float32[1]") {
		t.Errorf("ragged: error %v", err)
	}
	l, _ = NewDataLoader(failingDataset{}, LoaderOptions{BatchSize: 2})
	it = l.Epoch(0)
	if !it.Next() {
		t.Fatal(it.Err())
	}
	if it.Next() || it.Next() {
		t.Error("iteration went on past a failing example")
	}
	if err := it.Err(); err == nil || !strings.Contains(err.Error(), "example 2 is unreadable") {
		t.Errorf("failing: error %v", err)
	}
}

func TestDataLoaderInt64Labels(t *testing.T) {
	x := tensor.Zeros(6, 1, 2, 2)
	y := tensor.FromInt64([]int64{5, 4, 3, 2, 1, 0})
	ds, err := NewTensorDataset(x, y)
	if err != nil {
		t.Fatal(err)
	}
	_, y1, err := ds.Get(1)
	if err != nil || y1.DType() != tensor.Int64 || y1.NDim() != 0 || y1.Item() != 4 {
		t.Errorf("Get(1) target %v, %v; want the int64 scalar 4", y1, err)
	}
	// Through Batch and through item-by-item collation alike.
	for _, d := range []Dataset{ds, itemsOnly{ds}} {
		l, _ := NewDataLoader(d, LoaderOptions{BatchSize: 4})
		it := l.Epoch(0)
		var got [][]int64
		for it.Next() {
			bx, by := it.Batch()
			if by.DType() != tensor.Int64 || bx.Dim(0) != by.Dim(0) || !equalInts(bx.Shape()[1:], []int{1, 2, 2}) || by.NDim() != 1 {
				t.Fatalf("%T: batch %v %v", d, bx, by)
			}
			got = append(got, by.I64())
		}
		if fmt.Sprint(got) != "[[5 4 3 2] [1 0]]" {
			t.Errorf("%T: labels %v", d, got)
		}
	}
}
