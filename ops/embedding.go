package ops

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// Embedding looks up rows of weight [V, D] by the int64 (or int32) indices
// idx, as torch.nn.functional.embedding: the result has shape
// idx.Shape() + [D]. Indices must lie in [0, V). The gradient of weight
// accumulates the output gradients of every occurrence of an index, in
// index order. The traced op is "Embedding" with inputs (idx, weight) and
// nil attributes.
func Embedding(idx, weight *tensor.Tensor) *tensor.Tensor {
	const op = "Embedding"
	wv := nnopF32(op, "weight", weight)
	if weight.NDim() != 2 {
		panic(fmt.Sprintf("ops: Embedding: weight %v must be 2-D [num_embeddings, dim]", weight.Shape()))
	}
	v, d := weight.Dim(0), weight.Dim(1)
	ids := nnopIndices(op, "idx", idx, v)
	yv := make([]float32, len(ids)*d)
	parallel.For(len(ids), 64, func(s, e int) {
		for i := s; i < e; i++ {
			copy(yv[i*d:(i+1)*d], wv[ids[i]*d:(ids[i]+1)*d])
		}
	})
	yShape := append(append([]int(nil), idx.Shape()...), d)
	y := nnopTensor(yv, yShape)
	return Apply(op, nil, Ts(idx, weight), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		if !needs(weight) {
			return Ts(nil, nil)
		}
		gv := g[0].F32()
		gw := make([]float32, len(wv))
		for i, r := range ids {
			dst := gw[r*d : (r+1)*d]
			for j, x := range gv[i*d : (i+1)*d] {
				dst[j] += x
			}
		}
		return Ts(nil, nnopTensor(gw, weight.Shape()))
	})
}

// EmbeddingBagAttrs are the attributes EmbeddingBag records when traced.
type EmbeddingBagAttrs struct {
	// Mode is "sum", "mean" or "max".
	Mode string
}

// EmbeddingBag reduces bags of embedding rows, as
// torch.nn.functional.embedding_bag. Either idx is 2-D [B, L] and offsets
// is nil (each row is a bag of L indices), or idx is 1-D and offsets is a
// 1-D int64 (or int32) tensor [B] of non-decreasing bag starts with
// offsets[0] == 0 (bag b is idx[offsets[b]:offsets[b+1]], the last bag
// running to the end). mode is "sum", "mean" or "max"; an empty bag gives
// zeros. The result is [B, D]. In "max" mode each element takes the first
// maximum and its gradient goes there. The traced op is "EmbeddingBag" with
// inputs (idx, offsets, weight), offsets possibly nil, and
// EmbeddingBagAttrs.
func EmbeddingBag(idx, offsets, weight *tensor.Tensor, mode string) *tensor.Tensor {
	const op = "EmbeddingBag"
	if mode != "sum" && mode != "mean" && mode != "max" {
		panic(fmt.Sprintf("ops: EmbeddingBag: unknown mode %q (want sum, mean or max)", mode))
	}
	wv := nnopF32(op, "weight", weight)
	if weight.NDim() != 2 {
		panic(fmt.Sprintf("ops: EmbeddingBag: weight %v must be 2-D [num_embeddings, dim]", weight.Shape()))
	}
	v, d := weight.Dim(0), weight.Dim(1)
	ids := nnopIndices(op, "idx", idx, v)
	var starts []int
	switch {
	case idx.NDim() == 2 && offsets == nil:
		bags, l := idx.Dim(0), idx.Dim(1)
		starts = make([]int, bags+1)
		for b := range starts {
			starts[b] = b * l
		}
	case idx.NDim() == 1 && offsets != nil:
		if offsets.NDim() != 1 {
			panic(fmt.Sprintf("ops: EmbeddingBag: offsets %v must be 1-D", offsets.Shape()))
		}
		off := nnopIndices(op, "offsets", offsets, len(ids)+1)
		starts = append(off, len(ids))
		if len(off) > 0 && off[0] != 0 {
			panic(fmt.Sprintf("ops: EmbeddingBag: offsets[0] is %d, must be 0", off[0]))
		}
		for b := 1; b < len(starts); b++ {
			if starts[b] < starts[b-1] {
				panic(fmt.Sprintf("ops: EmbeddingBag: offsets are not non-decreasing at %d", b))
			}
		}
	default:
		panic(fmt.Sprintf("ops: EmbeddingBag: want 2-D idx without offsets or 1-D idx with offsets, got idx %v, offsets set: %v", idx.Shape(), offsets != nil))
	}
	bags := len(starts) - 1
	yv := make([]float32, bags*d)
	var arg []int // max mode: the row chosen for each output element (-1 if none)
	if mode == "max" {
		arg = make([]int, bags*d)
	}
	parallel.For(bags, 8, func(b0, b1 int) {
		for b := b0; b < b1; b++ {
			out := yv[b*d : (b+1)*d]
			lo, hi := starts[b], starts[b+1]
			if mode == "max" {
				am := arg[b*d : (b+1)*d]
				for j := range am {
					am[j] = -1
				}
				for p := lo; p < hi; p++ {
					row := wv[ids[p]*d : (ids[p]+1)*d]
					for j, x := range row {
						if am[j] < 0 || x > out[j] {
							out[j], am[j] = x, ids[p]
						}
					}
				}
				continue
			}
			for p := lo; p < hi; p++ {
				for j, x := range wv[ids[p]*d : (ids[p]+1)*d] {
					out[j] += x
				}
			}
			if mode == "mean" && hi > lo {
				n := float32(hi - lo)
				for j := range out {
					out[j] /= n
				}
			}
		}
	})
	y := nnopTensor(yv, []int{bags, d})
	return Apply(op, EmbeddingBagAttrs{Mode: mode}, Ts(idx, offsets, weight), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		if !needs(weight) {
			return Ts(nil, nil, nil)
		}
		gv := g[0].F32()
		gw := make([]float32, len(wv))
		for b := 0; b < bags; b++ {
			gb := gv[b*d : (b+1)*d]
			if mode == "max" {
				for j, r := range arg[b*d : (b+1)*d] {
					if r >= 0 {
						gw[r*d+j] += gb[j]
					}
				}
				continue
			}
			lo, hi := starts[b], starts[b+1]
			scale := float32(1)
			if mode == "mean" && hi > lo {
				scale = 1 / float32(hi-lo)
			}
			for p := lo; p < hi; p++ {
				dst := gw[ids[p]*d : (ids[p]+1)*d]
				for j, x := range gb {
					dst[j] += x * scale
				}
			}
		}
		return Ts(nil, nil, nnopTensor(gw, weight.Shape()))
	})
}

// nnopIndices returns the values of an int64 or int32 index tensor as ints,
// panicking when one lies outside [0, n).
func nnopIndices(op, name string, t *tensor.Tensor, n int) []int {
	if t == nil {
		panic(fmt.Sprintf("ops: %s: %s is nil", op, name))
	}
	out := make([]int, t.Numel())
	switch t.DType() {
	case tensor.Int64:
		for i, x := range t.I64() {
			out[i] = int(x)
		}
	case tensor.Int32:
		for i, x := range t.I32() {
			out[i] = int(x)
		}
	default:
		panic(fmt.Sprintf("ops: %s: %s is %v, want int64 or int32", op, name, t.DType()))
	}
	for _, x := range out {
		if x < 0 || x >= n {
			panic(fmt.Sprintf("ops: %s: %s value %d out of range [0, %d)", op, name, x, n))
		}
	}
	return out
}
