package observer

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

// The golden file is written by scripts/golden_observers.py with PyTorch
// 1.13 (see its header for how to regenerate it).

type goldenInput struct {
	Shape []int  `json:"shape"`
	Data  string `json:"data"`
}

type goldenResult struct {
	Scale     []float64 `json:"scale"`
	ZeroPoint []float64 `json:"zero_point"`
	MinVal    []float64 `json:"min_val"`
	MaxVal    []float64 `json:"max_val"`
	HistSHA   string    `json:"histogram_sha256"`
	Histogram string    `json:"histogram"`
	Error     string    `json:"error"`
}

type goldenCase struct {
	Name         string                     `json:"name"`
	Observer     string                     `json:"observer"`
	Config       map[string]json.RawMessage `json:"config"`
	Batches      []string                   `json:"batches"`
	Error        string                     `json:"error"`
	Expect       *goldenResult              `json:"expect"`
	Stock        *goldenResult              `json:"stock"`
	StockMatches bool                       `json:"stock_matches"`
}

type goldenFile struct {
	TorchVersion string                 `json:"torch_version"`
	Inputs       map[string]goldenInput `json:"inputs"`
	Cases        []goldenCase           `json:"cases"`
	FixedQParams []struct {
		ScaleIn     float64 `json:"scale_in"`
		ZeroPointIn int32   `json:"zero_point_in"`
		Dtype       string  `json:"dtype"`
		QuantMin    int32   `json:"quant_min"`
		QuantMax    int32   `json:"quant_max"`
		Scale       float64 `json:"scale"`
		ZeroPoint   int32   `json:"zero_point"`
	} `json:"fixed_qparams"`
	Primitives struct {
		Sum []struct {
			X   string  `json:"x"`
			Sum float64 `json:"sum"`
		} `json:"sum"`
		Cumsum []struct {
			X      string `json:"x"`
			Cumsum string `json:"cumsum"`
		} `json:"cumsum"`
		FloorDivA string `json:"floor_div_a"`
		FloorDiv  []struct {
			B   float64 `json:"b"`
			Out string  `json:"out"`
		} `json:"floor_div"`
		Histc []struct {
			X    string  `json:"x"`
			Bins int     `json:"bins"`
			Min  float64 `json:"min"`
			Max  float64 `json:"max"`
			Hist string  `json:"hist"`
		} `json:"histc"`
		Linspace []struct {
			Start float64 `json:"start"`
			End   float64 `json:"end"`
			Steps int     `json:"steps"`
			Last  float64 `json:"last"`
		} `json:"linspace"`
	} `json:"primitives"`
}

var (
	goldenOnce sync.Once
	golden     goldenFile
	goldenErr  error
)

func loadGolden(t *testing.T) *goldenFile {
	t.Helper()
	goldenOnce.Do(func() {
		b, err := os.ReadFile("testdata/golden_observers.json")
		if err != nil {
			goldenErr = err
			return
		}
		goldenErr = json.Unmarshal(b, &golden)
	})
	if goldenErr != nil {
		t.Fatalf("reading golden file: %v", goldenErr)
	}
	return &golden
}

func mustF32s(t *testing.T, s string) []float32 {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func (g *goldenFile) input(t *testing.T, name string) *tensor.Tensor {
	in, ok := g.Inputs[name]
	if !ok {
		t.Fatalf("golden input %q missing", name)
	}
	d := mustF32s(t, in.Data)
	return tensor.FromFloat32(d, in.Shape...)
}

// goldenConfig maps a case's PyTorch keyword arguments to a Config, the
// averaging constant and the histogram bins/upsample rate.
func goldenConfig(t *testing.T, c map[string]json.RawMessage) (cfg Config, avg float64, bins, up int) {
	t.Helper()
	str := func(k string) string {
		var s string
		if v, ok := c[k]; ok {
			if err := json.Unmarshal(v, &s); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	num := func(k string) (float64, bool) {
		v, ok := c[k]
		if !ok {
			return 0, false
		}
		var f float64
		if err := json.Unmarshal(v, &f); err != nil {
			var b bool
			if err := json.Unmarshal(v, &b); err != nil {
				t.Fatal(err)
			}
			if b {
				f = 1
			}
		}
		return f, true
	}
	switch d := str("dtype"); d {
	case "", "quint8":
		cfg.Dtype = tensor.QUInt8
	case "quint4x2":
		cfg.Dtype, cfg.Bits4 = tensor.QUInt8, true
	default:
		dt, err := tensor.ParseDType(d)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Dtype = dt
	}
	qs, ok := parseQScheme(str("qscheme"))
	if !ok {
		t.Fatalf("qscheme %q", str("qscheme"))
	}
	cfg.QScheme = qs
	if v, ok := num("reduce_range"); ok {
		cfg.ReduceRange = v != 0
	}
	if lo, ok := num("quant_min"); ok {
		hi, _ := num("quant_max")
		cfg.HasRange, cfg.QuantMin, cfg.QuantMax = true, int32(lo), int32(hi)
	}
	if v, ok := num("eps"); ok {
		cfg.Eps = float32(v)
	}
	if v, ok := num("ch_axis"); ok {
		cfg.ChAxis = int(v)
	}
	if v, ok := num("averaging_constant"); ok {
		avg = v
	}
	if v, ok := num("bins"); ok {
		bins = int(v)
	}
	if v, ok := num("upsample_rate"); ok {
		up = int(v)
	}
	return cfg, avg, bins, up
}

func newGoldenObserver(t *testing.T, kind string, c map[string]json.RawMessage) Observer {
	cfg, avg, bins, up := goldenConfig(t, c)
	mc := MovingAverageConfig{Config: cfg, AveragingConstant: avg}
	if _, ok := c["averaging_constant"]; ok && avg == 0 {
		t.Fatalf("averaging_constant 0 cannot be expressed")
	}
	switch kind {
	case "MinMaxObserver":
		return NewMinMax(cfg)
	case "MovingAverageMinMaxObserver":
		return NewMovingAverageMinMax(mc)
	case "PerChannelMinMaxObserver":
		return NewPerChannelMinMax(cfg)
	case "MovingAveragePerChannelMinMaxObserver":
		return NewMovingAveragePerChannelMinMax(mc)
	case "HistogramObserver":
		return NewHistogram(HistogramConfig{Config: cfg, Bins: bins, UpsampleRate: up})
	}
	t.Fatalf("unknown observer %q", kind)
	return nil
}

func f32eq(a float32, b float64) bool {
	return a == float32(b) || (a != a && b != b)
}

// compareQParams checks scale bits and zero points against a golden result.
func compareQParams(q *tensor.QParams, want *goldenResult) error {
	if len(q.Scale) != len(want.Scale) {
		return fmt.Errorf("%d scales, want %d", len(q.Scale), len(want.Scale))
	}
	for i, s := range want.Scale {
		if math.Float32bits(q.Scale[i]) != math.Float32bits(float32(s)) {
			return fmt.Errorf("scale[%d] = %v (%#08x), PyTorch %v (%#08x)", i, q.Scale[i], math.Float32bits(q.Scale[i]), float32(s), math.Float32bits(float32(s)))
		}
		if q.ZeroPointF != nil {
			if !f32eq(q.ZeroPointF[i], want.ZeroPoint[i]) {
				return fmt.Errorf("zero_point[%d] = %v, PyTorch %v", i, q.ZeroPointF[i], float32(want.ZeroPoint[i]))
			}
		} else if float64(q.ZeroPoint[i]) != want.ZeroPoint[i] {
			return fmt.Errorf("zero_point[%d] = %d, PyTorch %v", i, q.ZeroPoint[i], want.ZeroPoint[i])
		}
	}
	return nil
}

func observedRange(o Observer) (mins, maxs []float32, hist []float32) {
	switch v := o.(type) {
	case *Histogram:
		h, mn, mx, _ := v.State()
		return []float32{mn}, []float32{mx}, h
	case minMaxHolder:
		mn, mx := v.mm().Ranges()
		return mn, mx, nil
	}
	return nil, nil, nil
}

func histSHA(h []float32) string {
	b := make([]byte, 4*len(h))
	for i, v := range h {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestGoldenPyTorch(t *testing.T) {
	g := loadGolden(t)
	if !strings.HasPrefix(g.TorchVersion, "1.13") {
		t.Fatalf("golden file made with torch %s, want 1.13", g.TorchVersion)
	}
	counts := map[string]int{}
	stockVerified := 0
	for _, c := range g.Cases {
		o := newGoldenObserver(t, c.Observer, c.Config)
		var err error
		for _, b := range c.Batches {
			if err = o.Observe(g.input(t, b)); err != nil {
				break
			}
		}
		if c.Error != "" {
			if strings.HasPrefix(c.Observer, "PerChannel") && string(c.Config["qscheme"]) == `"per_tensor_affine"` {
				// The zero QScheme is PerTensorAffine, which per-channel
				// observers read as their default per_channel_affine.
				if err != nil || o.(minMaxHolder).mm().r.scheme != tensor.PerChannelAffine {
					t.Errorf("%s: zero QScheme on a per-channel observer: err %v", c.Name, err)
				}
				continue
			}
			if err == nil {
				t.Errorf("%s: PyTorch raises %s, quanta accepted the config", c.Name, c.Error)
			}
			counts["config errors"]++
			continue
		}
		if err != nil {
			t.Errorf("%s: Observe: %v", c.Name, err)
			continue
		}
		q, err := o.CalculateQParams()
		if err != nil {
			t.Errorf("%s: CalculateQParams: %v", c.Name, err)
			continue
		}
		if err := compareQParams(q, c.Expect); err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		mins, maxs, hist := observedRange(o)
		for i := range c.Expect.MinVal {
			if !f32eq(mins[i], c.Expect.MinVal[i]) || !f32eq(maxs[i], c.Expect.MaxVal[i]) {
				t.Errorf("%s: range[%d] = [%v, %v], PyTorch [%v, %v]", c.Name, i, mins[i], maxs[i], c.Expect.MinVal[i], c.Expect.MaxVal[i])
				break
			}
		}
		if c.Expect.HistSHA != "" {
			if c.Expect.Histogram != "" {
				want := mustF32s(t, c.Expect.Histogram)
				for i := range want {
					if math.Float32bits(hist[i]) != math.Float32bits(want[i]) {
						t.Errorf("%s: histogram[%d] = %v, PyTorch %v", c.Name, i, hist[i], want[i])
						break
					}
				}
			}
			if got := histSHA(hist); got != c.Expect.HistSHA {
				t.Errorf("%s: histogram differs from PyTorch's (sha256 %s vs %s)", c.Name, got[:12], c.Expect.HistSHA[:12])
			}
			if c.StockMatches {
				if err := compareQParams(q, c.Stock); err != nil {
					t.Errorf("%s: stock PyTorch: %v", c.Name, err)
				}
				stockVerified++
			}
		}
		counts[c.Observer]++
	}
	t.Logf("bit-exact with PyTorch %s: %v; HistogramObserver cases also equal to stock PyTorch: %d", g.TorchVersion, counts, stockVerified)
}

// TestGoldenHistogramTorchCompat replays every HistogramObserver case with
// TorchCompat and requires stock PyTorch 1.13's qparams and range, defects
// included, wherever stock PyTorch produced a result.
func TestGoldenHistogramTorchCompat(t *testing.T) {
	g := loadGolden(t)
	checked, differing := 0, 0
	for _, c := range g.Cases {
		if c.Observer != "HistogramObserver" || c.Error != "" || c.Stock == nil || c.Stock.Error != "" {
			continue
		}
		o := newGoldenObserver(t, c.Observer, c.Config).(*Histogram)
		o.cfg.TorchCompat = true
		for _, b := range c.Batches {
			if err := o.Observe(g.input(t, b)); err != nil {
				t.Fatalf("%s: Observe: %v", c.Name, err)
			}
		}
		q, err := o.CalculateQParams()
		if err != nil {
			t.Errorf("%s: CalculateQParams: %v", c.Name, err)
			continue
		}
		if err := compareQParams(q, c.Stock); err != nil {
			t.Errorf("%s: TorchCompat against stock PyTorch: %v", c.Name, err)
			continue
		}
		if !c.StockMatches {
			differing++
		}
		checked++
	}
	if checked == 0 || differing == 0 {
		t.Fatalf("%d cases checked, %d of them where stock PyTorch's defects change the result", checked, differing)
	}
	t.Logf("TorchCompat equals stock PyTorch on %d HistogramObserver cases (%d where its defects change the qparams)", checked, differing)
}

func TestGoldenFixedQParams(t *testing.T) {
	g := loadGolden(t)
	for _, c := range g.FixedQParams {
		dt, _ := tensor.ParseDType(c.Dtype)
		cfg := FixedQParamsConfig{Config: Config{Dtype: dt}, Scale: float32(c.ScaleIn), ZeroPoint: c.ZeroPointIn}
		if c.QuantMin != 0 || c.QuantMax != 255 {
			cfg.HasRange, cfg.QuantMin, cfg.QuantMax = true, c.QuantMin, c.QuantMax
		}
		o := NewFixedQParams(cfg)
		if err := o.Observe(g.input(t, "normal")); err != nil {
			t.Fatal(err)
		}
		q, err := o.CalculateQParams()
		if err != nil {
			t.Fatal(err)
		}
		if q.Scale[0] != float32(c.Scale) || q.ZeroPoint[0] != c.ZeroPoint || q.QuantMin != c.QuantMin || q.QuantMax != c.QuantMax {
			t.Errorf("FixedQParams(%v, %d, %s) = %v %d [%d,%d], PyTorch %v %d [%d,%d]", c.ScaleIn, c.ZeroPointIn, c.Dtype,
				q.Scale[0], q.ZeroPoint[0], q.QuantMin, q.QuantMax, float32(c.Scale), c.ZeroPoint, c.QuantMin, c.QuantMax)
		}
	}
}

func TestGoldenPrimitives(t *testing.T) {
	g := loadGolden(t)
	p := &g.Primitives
	for _, c := range p.Sum {
		x := mustF32s(t, c.X)
		if got := torchSum32(x); math.Float32bits(got) != math.Float32bits(float32(c.Sum)) {
			t.Errorf("torchSum32(len %d) = %v, torch.sum %v", len(x), got, float32(c.Sum))
		}
	}
	for _, c := range p.Cumsum {
		x, want := mustF32s(t, c.X), mustF32s(t, c.Cumsum)
		got := cumsum32(x)
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("cumsum32[%d] = %v, torch %v", i, got[i], want[i])
				break
			}
		}
	}
	a := mustF32s(t, p.FloorDivA)
	for _, c := range p.FloorDiv {
		want := mustF32s(t, c.Out)
		for i := range a {
			got := floorDiv32(a[i], float32(c.B))
			if math.Float32bits(got) != math.Float32bits(want[i]) {
				t.Errorf("floorDiv32(%v, %v) = %v, torch %v", a[i], float32(c.B), got, want[i])
				break
			}
		}
	}
	for _, c := range p.Histc {
		x, want := mustF32s(t, c.X), mustF32s(t, c.Hist)
		e := scanExtrema(x)
		got := histc(x, c.Bins, c.Min, c.Max, e.min, e.max)
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("histc(bins %d, [%v, %v])[%d] = %v, torch %v", c.Bins, c.Min, c.Max, i, got[i], want[i])
				break
			}
		}
	}
	for _, c := range p.Linspace {
		_, right := histcEdges(c.Start, c.End, 0, 0, c.Steps-1)
		if math.Float32bits(right) != math.Float32bits(float32(c.Last)) {
			t.Errorf("linspace(%v, %v, %d)[-1] = %v, torch %v", c.Start, c.End, c.Steps, right, float32(c.Last))
		}
	}
}
