package quantized

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// buildModel quantizes a small CNN whose float weights come from seed, with
// output qparams scaled by k, so two builds differ everywhere.
func buildModel(t *testing.T, seed uint64, k float32) *nn.Sequential {
	t.Helper()
	rng := tensor.NewRNG(seed)
	pc := func(axis int) observer.Observer {
		return observer.NewPerChannelMinMax(observer.Config{Dtype: tensor.QInt8, QScheme: tensor.PerChannelSymmetric, ChAxis: axis})
	}
	c1, err := nn.NewConv2d(3, 8, nn.Pair(3), nn.Conv2dOptions{Padding: nn.Pair(1), RNG: rng})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := nn.NewConv2d(8, 8, nn.Pair(3), nn.Conv2dOptions{Padding: nn.Pair(1), Groups: 4, RNG: rng})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := nn.NewConvTranspose2d(8, 4, nn.Pair(2), nn.Conv2dOptions{Stride: nn.Pair(2), RNG: rng})
	if err != nil {
		t.Fatal(err)
	}
	bnf, err := nn.NewBatchNorm2d(8, nn.BatchNormOptions{})
	if err != nil {
		t.Fatal(err)
	}
	copy(bnf.RunningMean.F32(), tensor.RandUniform(rng, -0.2, 0.2, 8).F32())
	l1, err := nn.NewLinear(4*8*8, 16, nn.LinearOptions{RNG: rng})
	if err != nil {
		t.Fatal(err)
	}
	l2, err := nn.NewLinear(16, 5, nn.LinearOptions{RNG: rng})
	if err != nil {
		t.Fatal(err)
	}
	lnf, err := nn.NewLayerNorm([]int{5}, nn.LayerNormOptions{})
	if err != nil {
		t.Fatal(err)
	}
	qp := func(s float32, z int32) *tensor.QParams { return tensor.PerTensor(s*k, z) }
	quant, err := NewQuantize(0.02*k, 128)
	if err != nil {
		t.Fatal(err)
	}
	q1, err := Conv2dFromFloat(c1, pc(0), qp(0.03, 120))
	if err != nil {
		t.Fatal(err)
	}
	q2, err := ConvReLU2dFromFloat(c2, nil, qp(0.02, 5))
	if err != nil {
		t.Fatal(err)
	}
	bn, err := BatchNorm2dFromFloat(bnf, qp(0.03, 100))
	if err != nil {
		t.Fatal(err)
	}
	hs, err := NewHardswish(0.02*k, 40)
	if err != nil {
		t.Fatal(err)
	}
	qt, err := ConvTranspose2dFromFloat(ct, pc(1), qp(0.02, 128))
	if err != nil {
		t.Fatal(err)
	}
	ql1, err := LinearReLUFromFloat(l1, pc(0), qp(0.02, 0))
	if err != nil {
		t.Fatal(err)
	}
	ql2, err := LinearFromFloat(l2, nil, qp(0.03, 128))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := LayerNormFromFloat(lnf, qp(0.02, 128))
	if err != nil {
		t.Fatal(err)
	}
	return nn.NewSequential(quant, q1, q2, bn, hs, qt, NewDeQuantize(), nn.NewFlatten(1, -1),
		quantAgain(t, k), ql1, ql2, ln, NewDeQuantize())
}

func quantAgain(t *testing.T, k float32) *Quantize {
	q, err := NewQuantize(0.05*k, 120)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestStateDictRoundTrip(t *testing.T) {
	src := buildModel(t, 1, 1)
	x := tensor.RandUniform(tensor.NewRNG(7), -1, 1, 2, 3, 4, 4)
	want := src.Forward(x)

	keys := nn.StateDictKeys(src)
	sort.Strings(keys)
	for _, k := range []string{"1.weight", "1.bias", "1.scale", "1.zero_point", "3.running_var", "4.scale", "0.scale", "11.weight"} {
		if i := sort.SearchStrings(keys, k); i == len(keys) || keys[i] != k {
			t.Fatalf("state dict lacks %q: %s", k, strings.Join(keys, " "))
		}
	}
	sd := nn.StateDict(src)
	if w := sd["1.weight"]; w.DType() != tensor.QInt8 || !w.QParams().Scheme.PerChannel() || len(w.QParams().Scale) != 8 {
		t.Fatalf("1.weight is %v with %+v", w.DType(), w.QParams())
	}

	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := nn.SaveFile(path, sd); err != nil {
		t.Fatal(err)
	}
	loaded, err := nn.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// A fresh model of the same architecture with other weights and
	// qparams, already run once so its packed weights are in use.
	dst := buildModel(t, 99, 1.5)
	before := dst.Forward(x)
	if tensor.MaxAbsDiff(before, want) == 0 {
		t.Fatal("the placeholder model already gives the outputs")
	}
	if err := nn.LoadStateDict(dst, loaded); err != nil {
		t.Fatal(err)
	}
	got := dst.Forward(x)
	if d := tensor.MaxAbsDiff(got, want); d != 0 {
		t.Fatalf("reloaded model differs by %v", d)
	}
	// The weights' qparams were restored too.
	w := dst.At(1).(*Conv2d).Weight.QParams()
	ws := src.At(1).(*Conv2d).Weight.QParams()
	for i := range ws.Scale {
		if w.Scale[i] != ws.Scale[i] || w.ZeroPoint[i] != ws.ZeroPoint[i] {
			t.Fatalf("weight qparams %v, want %v", w.Scale, ws.Scale)
		}
	}
	// A second load of the same state needs no repack and changes nothing.
	if err := nn.LoadStateDict(dst, loaded); err != nil {
		t.Fatal(err)
	}
	if d := tensor.MaxAbsDiff(dst.Forward(x), want); d != 0 {
		t.Fatalf("second load differs by %v", d)
	}
}

func TestSetWeightBias(t *testing.T) {
	g := tensor.NewRNG(8)
	w1, w2 := randW(t, g, false, 0, 4, 6), randW(t, g, true, 0, 4, 6)
	b := tensor.RandUniform(g, -1, 1, 4)
	l, err := NewLinear(w1, nil, 0.05, 128)
	if err != nil {
		t.Fatal(err)
	}
	x := randQ(g, 0.03, 128, 3, 6)
	l.Forward(x)
	if err := l.SetWeightBias(w2, b); err != nil {
		t.Fatal(err)
	}
	ref := quantizeOut(ops.Linear(deq(x), deq(w2), b), 0.05, 128)
	compareQ(t, "after SetWeightBias", l.Forward(x), ref, 0.99)
	if err := l.SetWeightBias(randW(t, g, false, 0, 5, 6), nil); err == nil {
		t.Fatal("a weight of another shape was accepted")
	}
}

func TestLoadStateDictBadWeightQParams(t *testing.T) {
	src := buildModel(t, 1, 1)
	sd := nn.StateDict(src)
	w := sd["1.weight"].Clone()
	q := w.QParams().Clone()
	q.Scale, q.ZeroPoint = q.Scale[:3], q.ZeroPoint[:3] // 3 scales for 8 channels
	w.SetQParams(q)
	sd["1.weight"] = w
	dst := buildModel(t, 2, 1)
	err := nn.LoadStateDict(dst, sd)
	if err == nil || !strings.Contains(err.Error(), `"1"`) || !strings.Contains(err.Error(), "3 scales") {
		t.Fatalf("loading a weight with 3 scales for 8 channels: %v", err)
	}
}
