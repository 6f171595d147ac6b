package observer

import (
	"math"
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

func histTotal(h *Histogram) float64 {
	hist, _, _, _ := h.State()
	var s float64
	for _, v := range hist {
		s += float64(v)
	}
	return s
}

// Where PyTorch cannot combine (a range 10^20 times wider than the old one
// would need a grid of 10^23 bins), quanta re-bins by overlap: counts are
// kept and the qparams cover the data.
func TestHistogramHugeRangeGrowth(t *testing.T) {
	g := tensor.NewRNG(1)
	tiny := tensor.Randn(g, 1000)
	for i, v := range tiny.F32() {
		tiny.F32()[i] = v * 1e-20
	}
	h := NewHistogram(HistogramConfig{})
	_ = h.Observe(tiny)
	if err := h.Observe(tensor.Randn(g, 1000)); err != nil {
		t.Fatal(err)
	}
	if s := histTotal(h); math.Abs(s-2000) > 1e-3 {
		t.Errorf("histogram holds %v counts, want 2000", s)
	}
	q, err := h.CalculateQParams()
	if err != nil || !(q.Scale[0] > 0.005 && q.Scale[0] < 0.05) {
		t.Errorf("qparams %v, %v", q, err)
	}
}

// A histogram holding one value keeps its counts when the range widens
// (PyTorch would restart from the new batch).
func TestHistogramConstantThenData(t *testing.T) {
	h := NewHistogram(HistogramConfig{Bins: 16})
	_ = h.Observe(vec(2, 2, 2, 2))
	_ = h.Observe(vec(0, 4))
	hist, mn, mx, _ := h.State()
	if mn != 0 || mx != 4 || hist[8] != 4 || hist[0] != 1 || hist[15] != 1 {
		t.Errorf("histogram %v over [%v %v]", hist, mn, mx)
	}
	// Merging constant shards keeps every count too.
	a := NewHistogram(HistogramConfig{})
	b := NewHistogram(HistogramConfig{})
	c := NewHistogram(HistogramConfig{})
	_ = a.Observe(vec(3, 3, 3))
	_ = b.Observe(vec(-1, -1))
	_ = c.Observe(vec(-2, 0.5, 7))
	for _, o := range []*Histogram{b, c} {
		if err := a.Merge(o); err != nil {
			t.Fatal(err)
		}
	}
	_, mn, mx, _ = a.State()
	if s := histTotal(a); math.Abs(s-8) > 1e-4 || mn != -2 || mx < 7 {
		t.Errorf("merged constant shards: %v counts over [%v %v]", s, mn, mx)
	}
}

func TestRebinAddConservesCounts(t *testing.T) {
	src := []float32{1, 2, 3, 4, 5, 0, 7}
	for _, r := range [][2]float32{{-10, 10}, {0.5, 6.5}, {0, 7}, {2, 3}} {
		dst := make([]float32, 5)
		rebinAdd(dst, r[0], r[1], src, 0, 7)
		var s float64
		for _, v := range dst {
			s += float64(v)
		}
		if math.Abs(s-22) > 1e-4 {
			t.Errorf("range %v: %v counts, want 22", r, s)
		}
	}
	// Identical grids copy the counts.
	dst := make([]float32, 7)
	rebinAdd(dst, 0, 7, src, 0, 7)
	for i := range src {
		if math.Abs(float64(dst[i]-src[i])) > 1e-5 {
			t.Fatalf("identity rebin: %v", dst)
		}
	}
}
