package observer

import (
	"bytes"
	"math"
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

// batches returns n tensors of shape (4,3,5,5) with varied scales and
// offsets, so ranges grow and shrink across batches.
func batches(n int, seed uint64) []*tensor.Tensor {
	g := tensor.NewRNG(seed)
	out := make([]*tensor.Tensor, n)
	for b := range out {
		x := tensor.Randn(g, 4, 3, 5, 5)
		d := x.F32()
		s := float32(0.2 + 3*g.Float32())
		off := float32(g.Normal())
		for i := range d {
			d[i] = d[i]*s + off
		}
		out[b] = x
	}
	return out
}

// shardRoundTrip observes batches in shards (each shard a fresh observer
// made by mk), serializes every shard, decodes them with DecodeObserver as
// another process would, and merges them in shard order.
func shardRoundTrip(t *testing.T, mk func() Observer, shards [][]*tensor.Tensor) Observer {
	t.Helper()
	var merged Observer
	for _, sh := range shards {
		o := mk()
		for _, x := range sh {
			if err := o.Observe(x); err != nil {
				t.Fatal(err)
			}
		}
		b, err := o.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		d, err := DecodeObserver(b)
		if err != nil {
			t.Fatalf("DecodeObserver: %v", err)
		}
		if merged == nil {
			merged = d
		} else if err := merged.Merge(d); err != nil {
			t.Fatal(err)
		}
	}
	return merged
}

func onePass(t *testing.T, mk func() Observer, xs []*tensor.Tensor) Observer {
	o := mk()
	for _, x := range xs {
		if err := o.Observe(x); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func sameQParams(t *testing.T, name string, a, b Observer) {
	t.Helper()
	qa, err := a.CalculateQParams()
	if err != nil {
		t.Fatal(err)
	}
	qb, err := b.CalculateQParams()
	if err != nil {
		t.Fatal(err)
	}
	if !sameBits(qa.Scale, qb.Scale) || !sameBits(qa.ZeroPointF, qb.ZeroPointF) || len(qa.ZeroPoint) != len(qb.ZeroPoint) {
		t.Errorf("%s: sharded qparams %v %v, one pass %v %v", name, qa.Scale, qa.ZeroPoint, qb.Scale, qb.ZeroPoint)
		return
	}
	for i := range qa.ZeroPoint {
		if qa.ZeroPoint[i] != qb.ZeroPoint[i] {
			t.Errorf("%s: sharded zero points %v, one pass %v", name, qa.ZeroPoint, qb.ZeroPoint)
			return
		}
	}
}

// Sharded calibration (serialize, decode, merge) equals one pass, bit for
// bit, for every observer whose statistic allows it.
func TestShardedEqualsOnePass(t *testing.T) {
	xs := batches(12, 1)
	shards := [][]*tensor.Tensor{xs[:3], xs[3:4], xs[4:9], xs[9:]}
	flat := func(x *tensor.Tensor) *tensor.Tensor { return x.Reshape(x.Numel()) }
	kinds := map[string]func() Observer{
		"MinMax":          func() Observer { return NewMinMax(Config{}) },
		"MinMaxSymmetric": func() Observer { return NewMinMax(Config{Dtype: tensor.QInt8, QScheme: tensor.PerTensorSymmetric}) },
		"PerChannel": func() Observer {
			return NewPerChannelMinMax(Config{ChAxis: 1, QScheme: tensor.PerChannelSymmetric, Dtype: tensor.QInt8})
		},
		"PerChannelFloat": func() Observer { return NewPerChannelMinMax(Config{QScheme: tensor.PerChannelAffineFloatQParams}) },
		"MovingAverage": func() Observer {
			return NewMovingAverageMinMax(MovingAverageConfig{AveragingConstant: 0.1, RecordBatches: true})
		},
		"MovingAveragePerChannel": func() Observer {
			return NewMovingAveragePerChannelMinMax(MovingAverageConfig{Config: Config{ChAxis: 1}, RecordBatches: true})
		},
		"Percentile": func() Observer { return NewPercentile(PercentileConfig{Percentile: 99.9}) },
		"Entropy": func() Observer {
			return NewEntropy(EntropyConfig{Config: Config{Dtype: tensor.QInt8, QScheme: tensor.PerTensorSymmetric}})
		},
		"MSE":       func() Observer { return NewMSE(MSEConfig{}) },
		"Recording": func() Observer { return NewRecording(Config{}) },
	}
	for name, mk := range kinds {
		want := onePass(t, mk, xs)
		got := shardRoundTrip(t, mk, shards)
		if name == "Recording" {
			a, b := got.(*Recording).TensorValues(), want.(*Recording).TensorValues()
			if len(a) != len(b) || !sameBits(a[5].F32(), b[5].F32()) {
				t.Errorf("Recording: merged %d tensors, want %d", len(a), len(b))
			}
			continue
		}
		sameQParams(t, name, got, want)
		bg, _ := got.MarshalBinary()
		bw, _ := want.MarshalBinary()
		if !bytes.Equal(bg, bw) {
			t.Errorf("%s: sharded state differs from one pass", name)
		}
	}
	// The histogram-of-powers-of-two observers do not care about order or
	// batching either.
	for name, mk := range map[string]func() Observer{"Percentile": kinds["Percentile"], "Entropy": kinds["Entropy"], "MSE": kinds["MSE"]} {
		want := onePass(t, mk, xs)
		mixed := [][]*tensor.Tensor{{xs[7], flat(xs[0])}, {xs[11], xs[2], xs[5]}, {xs[1]}, {xs[3], xs[4], xs[6], xs[8], xs[9], xs[10]}}
		got := shardRoundTrip(t, mk, mixed)
		sameQParams(t, name+" (any order)", got, want)
	}
}

// Without RecordBatches, merging moving averages uses the closed form:
// exact in real arithmetic, within float32 rounding of one pass.
func TestMovingAverageClosedFormMerge(t *testing.T) {
	xs := batches(30, 2)
	for _, pc := range []bool{false, true} {
		mk := func() Observer {
			if pc {
				return NewMovingAveragePerChannelMinMax(MovingAverageConfig{AveragingConstant: 0.05})
			}
			return NewMovingAverageMinMax(MovingAverageConfig{AveragingConstant: 0.05})
		}
		want := onePass(t, mk, xs).(minMaxHolder).mm()
		got := shardRoundTrip(t, mk, [][]*tensor.Tensor{xs[:10], xs[10:11], xs[11:25], xs[25:]}).(minMaxHolder).mm()
		if got.s.batches != 30 {
			t.Errorf("batches %d", got.s.batches)
		}
		for i := range want.s.min {
			for _, p := range [][2]float32{{got.s.min[i], want.s.min[i]}, {got.s.max[i], want.s.max[i]}} {
				if d := math.Abs(float64(p[0]) - float64(p[1])); d > 1e-5*math.Abs(float64(p[1]))+1e-6 {
					t.Errorf("per-channel %v: merged %v, one pass %v", pc, p[0], p[1])
				}
			}
		}
	}
}

// Histogram shards that cover the same range add exactly; in general the
// merge re-grids like PyTorch's combine step and lands close to one pass.
func TestHistogramMerge(t *testing.T) {
	xs := batches(8, 3)
	for _, x := range xs {
		d := x.F32()
		d[0], d[1] = -64, 64 // every batch holds the global extremes
	}
	mk := func() Observer { return NewHistogram(HistogramConfig{}) }
	want := onePass(t, mk, xs)
	got := shardRoundTrip(t, mk, [][]*tensor.Tensor{xs[:2], xs[2:5], xs[5:]})
	hw, _, _, _ := want.(*Histogram).State()
	hg, _, _, _ := got.(*Histogram).State()
	if !sameBits(hg, hw) {
		t.Error("same-range histogram shards differ from one pass")
	}
	sameQParams(t, "Histogram same range", got, want)

	ys := batches(8, 4)
	want = onePass(t, mk, ys)
	got = shardRoundTrip(t, mk, [][]*tensor.Tensor{ys[:3], ys[3:5], ys[5:]})
	qw, _ := want.CalculateQParams()
	qg, _ := got.CalculateQParams()
	_, mnw, mxw, _ := want.(*Histogram).State()
	_, mng, mxg, _ := got.(*Histogram).State()
	if mng != mnw || mxg < mxw || math.Abs(float64(qg.Scale[0]/qw.Scale[0])-1) > 0.05 {
		t.Errorf("merged histogram: range [%v %v] scale %v; one pass [%v %v] scale %v", mng, mxg, qg.Scale[0], mnw, mxw, qw.Scale[0])
	}
	t.Logf("histogram merged from 3 shards with different ranges: scale %v zp %d; one pass %v %d", qg.Scale[0], qg.ZeroPoint[0], qw.Scale[0], qw.ZeroPoint[0])
	var sg, sw float64
	hg2, _, _, _ := got.(*Histogram).State()
	for i := range hg2 {
		sg += float64(hg2[i])
	}
	hw2, _, _, _ := want.(*Histogram).State()
	for i := range hw2 {
		sw += float64(hw2[i])
	}
	if math.Abs(sg-sw) > 1e-3*sw {
		t.Errorf("merged histogram holds %v counts, one pass %v", sg, sw)
	}
}

func TestMergeRejectsMismatch(t *testing.T) {
	cases := [][2]Observer{
		{NewMinMax(Config{}), NewMinMax(Config{ReduceRange: true})},
		{NewMinMax(Config{}), NewHistogram(HistogramConfig{})},
		{NewMinMax(Config{}), NewMovingAverageMinMax(MovingAverageConfig{})},
		{NewMovingAverageMinMax(MovingAverageConfig{AveragingConstant: 0.1}), NewMovingAverageMinMax(MovingAverageConfig{AveragingConstant: 0.2})},
		{NewHistogram(HistogramConfig{}), NewHistogram(HistogramConfig{Bins: 256})},
		{NewPercentile(PercentileConfig{}), NewPercentile(PercentileConfig{Percentile: 99})},
		{NewPercentile(PercentileConfig{}), NewEntropy(EntropyConfig{})},
		{NewFixedQParams(FixedQParamsConfig{Scale: 1}), NewFixedQParams(FixedQParamsConfig{Scale: 2})},
	}
	for i, c := range cases {
		if err := c[0].Merge(c[1]); err == nil {
			t.Errorf("case %d: merging %T into %T with different configs accepted", i, c[1], c[0])
		}
	}
	o := NewPerChannelMinMax(Config{})
	p := NewPerChannelMinMax(Config{})
	_ = o.Observe(tensor.FromFloat32(make([]float32, 6), 2, 3))
	_ = p.Observe(tensor.FromFloat32(make([]float32, 6), 3, 2))
	if err := o.Merge(p); err == nil {
		t.Error("merging different channel counts accepted")
	}
}
