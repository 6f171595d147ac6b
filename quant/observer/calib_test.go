package observer

import (
	"math"
	"sort"
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

func TestPow2HistBins(t *testing.T) {
	// 16 bins: 8 per side. max |x| 5 -> 2^(3-3) = 1 wide bins over [-8, 8).
	h := pow2Hist{half: 8}
	h.add([]float32{-5, -0.5, 0, 0.5, 1, 4.99, 5}, -5, 5)
	if h.exp != 0 {
		t.Fatalf("exp %d, want 0", h.exp)
	}
	want := []uint64{0, 0, 0, 1, 0, 0, 0, 1, 2, 1, 0, 0, 1, 1, 0, 0}
	for i := range want {
		if h.counts[i] != want[i] {
			t.Fatalf("counts %v, want %v", h.counts, want)
		}
	}
	// A value of 9 needs width 2: bins merge pairwise.
	h.add([]float32{9}, 9, 9)
	want = []uint64{0, 0, 0, 0, 0, 1, 0, 1, 3, 0, 2, 0, 1, 0, 0, 0}
	for i := range want {
		if h.counts[i] != want[i] {
			t.Fatalf("after growth %v, want %v", h.counts, want)
		}
	}
	if h.exp != 1 || h.total != 8 || h.min != -5 || h.max != 9 {
		t.Errorf("exp %d total %d range [%v %v]", h.exp, h.total, h.min, h.max)
	}
	if e := expFor(0, 1024); e != minPow2Exp {
		t.Errorf("expFor(0) = %d", e)
	}
}

// quantile returns the value at rank ceil(p*n) (1-based) of sorted v.
func quantile(v []float64, p float64) float64 {
	r := int(math.Ceil(p*float64(len(v)))) - 1
	return v[min(max(r, 0), len(v)-1)]
}

func TestPercentileRange(t *testing.T) {
	var d []float32
	var abs []float64
	for i := 1; i <= 10000; i++ {
		v := float32(i)
		if i%3 == 0 {
			v = -v
		}
		d = append(d, v)
		abs = append(abs, math.Abs(float64(v)))
	}
	sort.Float64s(abs)
	o := NewPercentile(PercentileConfig{Config: Config{Dtype: tensor.QInt8, QScheme: tensor.PerTensorSymmetric}, Percentile: 99})
	_ = o.Observe(tensor.FromFloat32(d))
	lo, hi, _ := o.Range()
	w := o.h.width()
	q := quantile(abs, 0.99)
	if !(float64(hi) > q && float64(hi)-w <= q) || lo != -hi {
		t.Errorf("symmetric 99%%: range [%v %v] (bin width %v), |x| quantile %v", lo, hi, w, q)
	}
	// Affine: 0.5% off each tail.
	sorted := make([]float64, len(d))
	for i, v := range d {
		sorted[i] = float64(v)
	}
	sort.Float64s(sorted)
	a := NewPercentile(PercentileConfig{Percentile: 99})
	_ = a.Observe(tensor.FromFloat32(d))
	lo, hi, _ = a.Range()
	ql, qh := quantile(sorted, 0.005), quantile(sorted, 0.995)
	if !(float64(lo) <= ql && float64(lo)+w > ql) || !(float64(hi) > qh && float64(hi)-w <= qh) {
		t.Errorf("affine 99%%: range [%v %v], quantiles %v %v (bin %v)", lo, hi, ql, qh, w)
	}
	// 100% keeps everything.
	f := NewPercentile(PercentileConfig{Percentile: 100})
	_ = f.Observe(tensor.FromFloat32(d))
	if lo, hi, _ := f.Range(); float64(lo) != sorted[0] || float64(hi) != sorted[len(sorted)-1] {
		t.Errorf("100%%: [%v %v]", lo, hi)
	}
}

func gaussWithOutliers(n int) []float32 {
	g := tensor.NewRNG(11)
	d := make([]float32, n)
	for i := range d {
		d[i] = g.Normal()
	}
	for i := 0; i < n/2000; i++ {
		d[i*2000] = 60 * float32(1-2*(i%2))
	}
	return d
}

func TestEntropyClipsOutliers(t *testing.T) {
	d := gaussWithOutliers(200000)
	o := NewEntropy(EntropyConfig{Config: Config{Dtype: tensor.QInt8, QScheme: tensor.PerTensorSymmetric}})
	_ = o.Observe(tensor.FromFloat32(d))
	lo, hi, _ := o.Range()
	if !(hi > 2 && hi < 20 && lo == -hi) {
		t.Errorf("entropy range [%v %v] for N(0,1) with outliers at ±60", lo, hi)
	}
	// Uniform data have nothing to clip: the threshold is near the max.
	u := NewEntropy(EntropyConfig{})
	g := tensor.NewRNG(3)
	_ = u.Observe(tensor.RandUniform(g, -1, 1, 100000))
	if _, hi, _ := u.Range(); hi < 0.9 {
		t.Errorf("entropy threshold %v for U(-1,1)", hi)
	}
}

func TestSmoothAndKL(t *testing.T) {
	p := []float64{0, 2, 0, 2}
	if !smooth(p) || p[0] != 1e-4 || p[1] != 2-1e-4 {
		t.Errorf("smooth = %v", p)
	}
	// A window whose quantization is exact has zero divergence: 4 bins, 2
	// levels, pairs with equal counts.
	counts := []uint64{3, 3, 5, 5}
	prefix := []uint64{0, 3, 6, 11, 16}
	kl := windowKL(counts, prefix, 0, 4, 2, make([]float64, 4), make([]float64, 4))
	if math.Abs(kl) > 1e-12 {
		t.Errorf("KL of an exactly representable window = %v", kl)
	}
	// Unequal pairs: p = (1,3)/4 per pair, q = (2,2)/4: KL = sum p log(p/q).
	counts = []uint64{1, 3, 1, 3}
	prefix = []uint64{0, 1, 4, 5, 8}
	kl = windowKL(counts, prefix, 0, 4, 2, make([]float64, 4), make([]float64, 4))
	want := 2 * (1.0/8*math.Log(0.5) + 3.0/8*math.Log(1.5))
	if math.Abs(kl-want) > 1e-12 {
		t.Errorf("KL = %v, want %v", kl, want)
	}
}

// fakeQuant64 is the reference staircase: (clamp(round(x/s)+zp) - zp)*s in
// float64.
func fakeQuant64(x, s float64, zp, qmin, qmax float64) float64 {
	q := math.Min(math.Max(math.RoundToEven(x/s)+zp, qmin), qmax)
	return (q - zp) * s
}

func TestQuantMSEIntegral(t *testing.T) {
	d := gaussWithOutliers(50000)
	o := NewMSE(MSEConfig{Bins: 256})
	_ = o.Observe(tensor.FromFloat32(d))
	for _, r := range [][2]float32{{-3, 3}, {-1, 2.5}, {-60, 60}, {-0.3, 0.2}} {
		got := quantMSE(&o.calibObserver, r[0], r[1])
		s32, zp, _ := o.r.params(r[0], r[1])
		s := float64(s32)
		// Midpoint rule with many points per bin, an independent estimate.
		h := &o.h
		var want float64
		const k = 4000
		for i, c := range h.counts {
			if c == 0 {
				continue
			}
			a := math.Max(h.edge(i), float64(h.min))
			b := math.Min(h.edge(i)+h.width(), float64(h.max))
			var sum float64
			for j := 0; j < k; j++ {
				x := a + (b-a)*(float64(j)+0.5)/k
				e := x - fakeQuant64(x, s, float64(zp), 0, 255)
				sum += e * e
			}
			want += float64(c) * sum / k
		}
		if math.Abs(got-want) > 1e-3*want {
			t.Errorf("range %v: quantMSE %v, numeric %v", r, got, want)
		}
	}
}

// heavyTailed returns Student-t(3)-like samples: a normal over the square
// root of a scaled chi-square.
func heavyTailed(n int) []float32 {
	g := tensor.NewRNG(5)
	d := make([]float32, n)
	for i := range d {
		a, b, c := g.Normal(), g.Normal(), g.Normal()
		d[i] = g.Normal() / float32(math.Sqrt(float64(a*a+b*b+c*c)/3))
	}
	return d
}

func TestMSEChoosesBetterRange(t *testing.T) {
	d := heavyTailed(100000)
	for _, cfg := range []Config{{}, {Dtype: tensor.QInt8, QScheme: tensor.PerTensorSymmetric}} {
		o := NewMSE(MSEConfig{Config: cfg})
		_ = o.Observe(tensor.FromFloat32(d))
		lo, hi, _ := o.Range()
		best := quantMSE(&o.calibObserver, lo, hi)
		full := quantMSE(&o.calibObserver, o.h.min, o.h.max)
		if !(best < 0.9*full) {
			t.Errorf("%v: MSE range [%v %v] error %v vs full range [%v %v] %v", cfg.QScheme, lo, hi, best, o.h.min, o.h.max, full)
		}
		// No range on an independent grid does better (beyond grid noise).
		for i := 1; i <= 40; i++ {
			for j := 1; j <= 40; j++ {
				l, u := o.h.min*float32(i)/40, o.h.max*float32(j)/40
				if cfg.QScheme == tensor.PerTensorSymmetric {
					l = -u
				}
				if e := quantMSE(&o.calibObserver, l, u); e < best*0.999 {
					t.Fatalf("%v: range [%v %v] has error %v < chosen [%v %v] %v", cfg.QScheme, l, u, e, lo, hi, best)
				}
			}
		}
	}
	// Uniform data: nothing worth clipping.
	u := NewMSE(MSEConfig{})
	_ = u.Observe(tensor.RandUniform(tensor.NewRNG(2), -1, 1, 100000))
	if lo, hi, _ := u.Range(); lo > -0.95 || hi < 0.95 {
		t.Errorf("MSE range for U(-1,1) = [%v %v]", lo, hi)
	}
}

func TestCalibConstantAndZero(t *testing.T) {
	for _, o := range []Observer{NewPercentile(PercentileConfig{}), NewEntropy(EntropyConfig{}), NewMSE(MSEConfig{})} {
		q := qparamsOf(t, o, vec(0, 0, 0))
		if q.Scale[0] != float32Eps || q.ZeroPoint[0] != 0 {
			t.Errorf("%T zeros: %v %v", o, q.Scale, q.ZeroPoint)
		}
		o.Reset()
		q = qparamsOf(t, o, vec(5, 5))
		if q.Scale[0] != float32(5)/255 {
			t.Errorf("%T constant 5: %v", o, q.Scale)
		}
	}
}
