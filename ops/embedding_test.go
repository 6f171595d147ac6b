package ops

import (
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

func TestEmbedding(t *testing.T) {
	w := tensor.FromFloat32([]float32{0, 1, 10, 11, 20, 21}, 3, 2).SetRequiresGrad(true)
	idx := tensor.FromInt64([]int64{2, 0, 2, 1}, 2, 2)
	y := Embedding(idx, w)
	nnopCheckShape(t, "Embedding", y, 2, 2, 2)
	nnopCheckClose(t, "Embedding", y.F32(), []float64{20, 21, 0, 1, 20, 21, 10, 11}, 0)
	g := tensor.FromFloat32([]float32{1, 2, 3, 4, 5, 6, 7, 8}, 2, 2, 2)
	if err := nnopBackwardWith(y, g); err != nil {
		t.Fatal(err)
	}
	// Row 2 appears twice: its gradient is the sum.
	nnopCheckClose(t, "Embedding grad", w.Grad().F32(), []float64{3, 4, 7, 8, 6, 8}, 0)
	nnopGradcheck(t, "Embedding", func(in []*tensor.Tensor) *tensor.Tensor { return Embedding(idx, in[0]) }, nnopRandT(1, 3, 4))
	y32 := Embedding(tensor.FromInt32([]int32{1}), w)
	nnopCheckClose(t, "Embedding int32", y32.F32(), []float64{10, 11}, 0)
	nnopPanics(t, "out of range", func() { Embedding(tensor.FromInt64([]int64{3}), w) })
	nnopPanics(t, "want int64", func() { Embedding(tensor.Zeros(2), w) })
}

func TestEmbeddingBagTorch(t *testing.T) {
	// we = seq(15, 0.25).reshape(5,3), idx = [1,3,1,0,4,2,2],
	// off = [0,3,3,5], F.embedding_bag(idx, we, off, mode=m), gradients of
	// sum(y*seq(12, 1.1)).
	want := map[string][2][]float64{
		"sum": {
			{1.6866068840026855, 1.0060101747512817, -0.14772891998291016, 0.0, 0.0, 0.0, 0.9469614028930664, 0.8881238102912903, 0.4115877151489258, -1.9315460920333862, -1.8115333318710327, -0.8395280241966248},
			{-0.8322674632072449, -0.279415488243103, 0.40484991669654846, 1.7824146747589111, 1.947695255279541, 1.196944236755371, 1.7974162101745605, 1.9397796392440796, 1.1698343753814697, 0.8912073373794556, 0.9738476276397705, 0.5984721183776855, -0.8322674632072449, -0.279415488243103, 0.40484991669654846},
		},
		"mean": {
			{0.5622022747993469, 0.33533671498298645, -0.04924297332763672, 0.0, 0.0, 0.0, 0.4734807014465332, 0.44406190514564514, 0.2057938575744629, -0.9657730460166931, -0.9057666659355164, -0.4197640120983124},
			{-0.41613373160362244, -0.1397077441215515, 0.20242495834827423, 0.5941382646560669, 0.6492317914962769, 0.3989814221858978, 0.8987081050872803, 0.9698898196220398, 0.5849171876907349, 0.29706913232803345, 0.3246158957481384, 0.1994907110929489, -0.41613373160362244, -0.1397077441215515, 0.20242495834827423},
		},
		"max": {
			{0.7114733457565308, 0.8230808973312378, 0.9953937530517578, 0.0, 0.0, 0.0, 0.6995574235916138, 0.81341552734375, 0.9968650341033936, -0.9657730460166931, -0.9057666659355164, -0.4197640120983124},
			{0.0, -0.279415488243103, 0.40484991669654846, 0.8912073373794556, 0.0, 0.0, 0.8987081050872803, 0.9698898196220398, 0.5849171876907349, 0.0, 0.9738476276397705, 0.5984721183776855, -0.8322674632072449, 0.0, 0.0},
		},
	}
	idx := tensor.FromInt64([]int64{1, 3, 1, 0, 4, 2, 2})
	off := tensor.FromInt64([]int64{0, 3, 3, 5})
	for _, mode := range []string{"sum", "mean", "max"} {
		w := nnopSeq(0.25, 1, 5, 3).SetRequiresGrad(true)
		y := EmbeddingBag(idx, off, w, mode)
		nnopCheckShape(t, mode, y, 4, 3)
		nnopCheckClose(t, "EmbeddingBag "+mode, y.F32(), want[mode][0], 1e-6)
		nnopBackwardSeq(t, y)
		nnopCheckClose(t, "EmbeddingBag grad "+mode, w.Grad().F32(), want[mode][1], 1e-6)
		nnopGradcheck(t, "EmbeddingBag "+mode, func(in []*tensor.Tensor) *tensor.Tensor { return EmbeddingBag(idx, off, in[0], mode) }, nnopRandT(7, 5, 3))
	}
	// 2-D input: each row is a bag; equals the offsets form.
	w := nnopSeq(0.25, 1, 5, 3)
	y2 := EmbeddingBag(tensor.FromInt64([]int64{1, 3, 4, 2}, 2, 2), nil, w, "mean")
	y1 := EmbeddingBag(tensor.FromInt64([]int64{1, 3, 4, 2}), tensor.FromInt64([]int64{0, 2}), w, "mean")
	nnopCheckClose(t, "EmbeddingBag 2-D", y2.F32(), nnopF64(y1.F32()), 0)
	nnopPanics(t, "offsets[0]", func() { EmbeddingBag(idx, tensor.FromInt64([]int64{1, 3}), w, "sum") })
	nnopPanics(t, "non-decreasing", func() { EmbeddingBag(idx, tensor.FromInt64([]int64{0, 3, 2}), w, "sum") })
	nnopPanics(t, "unknown mode", func() { EmbeddingBag(idx, off, w, "min") })
	nnopPanics(t, "want 2-D idx", func() { EmbeddingBag(idx, nil, w, "sum") })
}
