package observer

import (
	"errors"
	"math"
	"testing"

	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

func vec(v ...float32) *tensor.Tensor { return tensor.FromFloat32(v) }

func qparamsOf(t *testing.T, o Observer, xs ...*tensor.Tensor) *tensor.QParams {
	t.Helper()
	for _, x := range xs {
		if err := o.Observe(x); err != nil {
			t.Fatal(err)
		}
	}
	q, err := o.CalculateQParams()
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// Hand-computed values (float32 arithmetic written out) and the examples
// measured with PyTorch in the reference notes.
func TestQParamsHandComputed(t *testing.T) {
	cases := []struct {
		name   string
		cfg    Config
		x      *tensor.Tensor
		scale  float32
		zp     int32
		lo, hi int32
	}{
		{"affine [-1,3]", Config{}, vec(-1, 3), float32(4) / 255, 64, 0, 255},
		{"affine reduce_range", Config{ReduceRange: true}, vec(-1, 3), float32(4) / 127, 32, 0, 127},
		{"custom 0..15", Config{HasRange: true, QuantMin: 0, QuantMax: 15}, vec(-1, 3), float32(4) / 15, 4, 0, 15},
		{"symmetric qint8 [-2,1]", Config{Dtype: tensor.QInt8, QScheme: tensor.PerTensorSymmetric}, vec(-2, 1), float32(2) / 127.5, 0, -128, 127},
		{"symmetric quint8", Config{QScheme: tensor.PerTensorSymmetric}, vec(-2, 1), float32(2) / 127.5, 128, 0, 255},
		{"symmetric quint8 custom", Config{QScheme: tensor.PerTensorSymmetric, HasRange: true, QuantMin: 0, QuantMax: 101}, vec(-2, 1), float32(2) / 50.5, 50, 0, 101},
		{"constant zero: scale eps", Config{}, vec(0, 0, 0), float32Eps, 0, 0, 255},
		{"constant positive c: c/255", Config{}, vec(5, 5), float32(5) / 255, 0, 0, 255},
		{"all negative: zp qmax", Config{}, vec(-3, -1), float32(3) / 255, 255, 0, 255},
		{"qint8 reduce_range", Config{Dtype: tensor.QInt8, ReduceRange: true}, vec(-1, 3), float32(4) / 127, -32, -64, 63},
		{"custom range reduce_range halves", Config{HasRange: true, QuantMin: -127, QuantMax: 127, ReduceRange: true, Dtype: tensor.QInt8, QScheme: tensor.PerTensorSymmetric},
			vec(-2, 1), float32(2) / 63.5, 0, -64, 63},
		{"eps floor", Config{Eps: 0.5}, vec(-1, 3), 0.5, 2, 0, 255},
	}
	for _, c := range cases {
		q := qparamsOf(t, NewMinMax(c.cfg), c.x)
		if q.Scale[0] != c.scale || q.ZeroPoint[0] != c.zp || q.QuantMin != c.lo || q.QuantMax != c.hi {
			t.Errorf("%s: got scale %v zp %d range [%d,%d], want %v %d [%d,%d]", c.name, q.Scale[0], q.ZeroPoint[0], q.QuantMin, q.QuantMax, c.scale, c.zp, c.lo, c.hi)
		}
	}
}

func TestFloatQParams(t *testing.T) {
	// Channel 0 spans [0.25, 1.25]: scale 1/255, zp -0.25*255 = -63.75.
	// Channel 1 is constant: scale 1.0, zp -c.
	x := tensor.FromFloat32([]float32{0.25, 1.25, 0.5, 2, 2, 2}, 2, 3)
	q := qparamsOf(t, NewPerChannelMinMax(Config{QScheme: tensor.PerChannelAffineFloatQParams}), x)
	s0 := float32(1) / 255
	if q.Scale[0] != s0 || q.ZeroPointF[0] != float32(-0.25)/s0 || q.Scale[1] != 1 || q.ZeroPointF[1] != -2 || q.ZeroPoint != nil {
		t.Errorf("float qparams = %v %v %v", q.Scale, q.ZeroPointF, q.ZeroPoint)
	}
	q4 := qparamsOf(t, NewPerChannelMinMax(Config{QScheme: tensor.PerChannelAffineFloatQParams, Bits4: true}), x)
	if q4.Scale[0] != float32(1)/15 || q4.QuantMax != 15 {
		t.Errorf("4-bit float qparams = %v [%d,%d]", q4.Scale, q4.QuantMin, q4.QuantMax)
	}
}

func TestPerChannelAxes(t *testing.T) {
	// shape (2,3,2): channel c along axis 1 holds x[o][c][i].
	d := []float32{0, 1, -2, 3, 4, 5, 6, -7, 8, 9, 10, 11}
	x := tensor.FromFloat32(d, 2, 3, 2)
	for _, ax := range []int{0, 1, 2, -1, -3} {
		o := NewPerChannelMinMax(Config{ChAxis: ax})
		if err := o.Observe(x); err != nil {
			t.Fatal(err)
		}
		mins, maxs := o.Ranges()
		a := ax
		if a < 0 {
			a += 3
		}
		shape := []int{2, 3, 2}
		stride := []int{6, 2, 1}
		for c := 0; c < shape[a]; c++ {
			mn, mx := float32(math.Inf(1)), float32(math.Inf(-1))
			for i, v := range d {
				if (i/stride[a])%shape[a] == c {
					mn, mx = min32(mn, v), max32(mx, v)
				}
			}
			if mins[c] != mn || maxs[c] != mx {
				t.Errorf("axis %d channel %d: [%v %v], want [%v %v]", ax, c, mins[c], maxs[c], mn, mx)
			}
		}
	}
	if err := NewPerChannelMinMax(Config{ChAxis: 3}).Observe(x); err == nil {
		t.Error("ChAxis 3 of a 3-d tensor accepted")
	}
	o := NewPerChannelMinMax(Config{})
	_ = o.Observe(x)
	if err := o.Observe(tensor.FromFloat32(make([]float32, 6), 3, 2)); err == nil {
		t.Error("channel count change accepted")
	}
}

func TestMovingAverageHand(t *testing.T) {
	// c = 0.5: max 1 then 3 gives 2 (PyTorch's documented example).
	o := NewMovingAverageMinMax(MovingAverageConfig{AveragingConstant: 0.5})
	_ = o.Observe(vec(0, 1))
	_ = o.Observe(vec(0, 3))
	mins, maxs := o.Ranges()
	if mins[0] != 0 || maxs[0] != 2 || o.Batches() != 2 {
		t.Errorf("moving average = [%v %v] after %d batches", mins[0], maxs[0], o.Batches())
	}
}

func TestConfigErrors(t *testing.T) {
	bad := []Observer{
		NewMinMax(Config{QScheme: tensor.PerTensorSymmetric, ReduceRange: true}),
		NewMinMax(Config{QScheme: tensor.PerChannelAffine}),
		NewMinMax(Config{HasRange: true, QuantMin: 1, QuantMax: 10}),
		NewMinMax(Config{HasRange: true, QuantMin: 5, QuantMax: 5}),
		NewMinMax(Config{Dtype: tensor.QInt8, HasRange: true, QuantMin: -200, QuantMax: 100}),
		NewMinMax(Config{Dtype: tensor.Int8}),
		NewMinMax(Config{Eps: -1}),
		NewMinMax(Config{ChAxis: 1}),
		NewMinMax(Config{Dtype: tensor.QInt8, Bits4: true}),
		NewPerChannelMinMax(Config{QScheme: tensor.PerTensorSymmetric}),
		NewMovingAverageMinMax(MovingAverageConfig{AveragingConstant: 2}),
		NewHistogram(HistogramConfig{Bins: -1}),
		NewHistogram(HistogramConfig{Config: Config{QScheme: tensor.PerChannelAffine}}),
		NewPercentile(PercentileConfig{Percentile: 101}),
		NewPercentile(PercentileConfig{Bins: 1000}),
		NewEntropy(EntropyConfig{QuantizedBins: 3}),
		NewMSE(MSEConfig{Config: Config{QScheme: tensor.PerChannelSymmetric}}),
		NewFixedQParams(FixedQParamsConfig{}),
	}
	for i, o := range bad {
		if err := o.Observe(vec(1, 2)); err == nil {
			t.Errorf("case %d (%T): invalid config accepted by Observe", i, o)
		}
		if _, err := o.CalculateQParams(); err == nil {
			t.Errorf("case %d (%T): invalid config accepted by CalculateQParams", i, o)
		}
	}
	// HistogramObserver, like PyTorch's, does not reject symmetric quint8
	// with reduce_range.
	if err := NewHistogram(HistogramConfig{Config: Config{QScheme: tensor.PerTensorSymmetric, ReduceRange: true}}).Observe(vec(1)); err != nil {
		t.Error(err)
	}
}

func TestNotObserved(t *testing.T) {
	for _, o := range []Observer{
		NewMinMax(Config{}), NewMovingAverageMinMax(MovingAverageConfig{}), NewPerChannelMinMax(Config{}),
		NewMovingAveragePerChannelMinMax(MovingAverageConfig{}), NewHistogram(HistogramConfig{}),
		NewPercentile(PercentileConfig{}), NewEntropy(EntropyConfig{}), NewMSE(MSEConfig{}),
	} {
		if err := o.Observe(tensor.FromFloat32(nil, 0)); err != nil {
			t.Errorf("%T: empty tensor: %v", o, err)
		}
		if _, err := o.CalculateQParams(); !errors.Is(err, ErrNotObserved) {
			t.Errorf("%T: CalculateQParams before Observe: %v, want ErrNotObserved", o, err)
		}
		_ = o.Observe(vec(1, 2))
		o.Reset()
		if _, err := o.CalculateQParams(); !errors.Is(err, ErrNotObserved) {
			t.Errorf("%T: CalculateQParams after Reset: %v, want ErrNotObserved", o, err)
		}
	}
	for _, o := range []Observer{NewPlaceholder(PlaceholderConfig{}), NewNoop(NoopConfig{}), NewRecording(Config{})} {
		if _, err := o.CalculateQParams(); err == nil {
			t.Errorf("%T computes qparams", o)
		}
	}
}

func TestNonFinite(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	mk := func(ignore bool) []Observer {
		c := Config{IgnoreNonFinite: ignore}
		return []Observer{
			NewMinMax(c), NewMovingAverageMinMax(MovingAverageConfig{Config: c}), NewPerChannelMinMax(c),
			NewMovingAveragePerChannelMinMax(MovingAverageConfig{Config: c}), NewHistogram(HistogramConfig{Config: c}),
			NewPercentile(PercentileConfig{Config: c}), NewEntropy(EntropyConfig{Config: c}), NewMSE(MSEConfig{Config: c}),
		}
	}
	clean := tensor.FromFloat32([]float32{-1, 2, 0.5, 3}, 2, 2)
	dirty := tensor.FromFloat32([]float32{-1, nan, 2, 0.5, -inf, 3}, 2, 3)
	for _, o := range mk(false) {
		_ = o.Observe(clean)
		before, _ := o.CalculateQParams()
		err := o.Observe(dirty)
		if !errors.Is(err, ErrNonFinite) {
			t.Errorf("%T: NaN/Inf: %v, want ErrNonFinite", o, err)
		}
		after, _ := o.CalculateQParams()
		if before.Scale[0] != after.Scale[0] {
			t.Errorf("%T: a rejected tensor changed the qparams", o)
		}
	}
	for _, o := range mk(true) {
		if err := o.Observe(tensor.FromFloat32([]float32{-1, nan, 2, 0.5, -inf, 3}, 3, 2)); err != nil {
			t.Fatalf("%T: %v", o, err)
		}
		q, err := o.CalculateQParams()
		if err != nil {
			t.Fatalf("%T: %v", o, err)
		}
		if n := o.(interface{ NonFinite() int64 }).NonFinite(); n != 2 {
			t.Errorf("%T: counted %d non-finite values, want 2", o, n)
		}
		for _, s := range q.Scale {
			if !(s > 0) || math.IsInf(float64(s), 0) {
				t.Errorf("%T: scale %v", o, s)
			}
		}
	}
	// A tensor of only NaN leaves an ignoring observer unobserved.
	o := NewMinMax(Config{IgnoreNonFinite: true})
	_ = o.Observe(vec(nan, nan))
	if _, err := o.CalculateQParams(); !errors.Is(err, ErrNotObserved) {
		t.Errorf("only NaN observed: %v", err)
	}
}

// Results never depend on the thread count.
func TestThreadInvariance(t *testing.T) {
	g := tensor.NewRNG(7)
	x := tensor.Randn(g, 300001)
	d := x.F32()
	for i := 0; i < len(d); i += 1000 {
		d[i] *= 40
	}
	run := func() [][]float32 {
		var out [][]float32
		for _, o := range []Observer{NewMinMax(Config{}), NewHistogram(HistogramConfig{}), NewPercentile(PercentileConfig{}),
			NewEntropy(EntropyConfig{}), NewMSE(MSEConfig{}), NewPerChannelMinMax(Config{ChAxis: 1})} {
			in := x
			if _, ok := o.(*PerChannelMinMax); ok {
				in = x.Reshape(1, 300001)
			}
			q := qparamsOf(t, o, in)
			out = append(out, q.Scale)
		}
		h := NewHistogram(HistogramConfig{})
		_ = h.Observe(x)
		hist, _, _, _ := h.State()
		return append(out, hist)
	}
	prev := parallel.SetNumThreads(1)
	defer parallel.SetNumThreads(prev)
	want := run()
	for _, n := range []int{2, 3} {
		parallel.SetNumThreads(n)
		got := run()
		for i := range want {
			for j := range want[i] {
				if math.Float32bits(got[i][j]) != math.Float32bits(want[i][j]) {
					t.Fatalf("%d threads: result %d[%d] = %v, 1 thread %v", n, i, j, got[i][j], want[i][j])
				}
			}
		}
	}
}

// fmod32 equals math.Mod (C's fmod) on float32 inputs of every magnitude.
func TestFmod32(t *testing.T) {
	g := tensor.NewRNG(13)
	for i := 0; i < 200000; i++ {
		a := g.Normal() * float32(math.Pow(10, float64(g.IntN(16)-8)))
		b := g.Normal() * float32(math.Pow(10, float64(g.IntN(16)-8)))
		if i%7 == 0 {
			a = float32(g.IntN(1000)) * b // exact multiples
		}
		if b == 0 {
			continue
		}
		want := float32(math.Mod(float64(a), float64(b)))
		if got := fmod32(a, b); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fmod32(%v, %v) = %v, want %v", a, b, got, want)
		}
	}
}
