package embbag

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/parallel"
)

// forEachVariant runs f once per tier this machine supports, with cpu.Max
// capped to it, checking that dispatch picks that tier.
func forEachVariant(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, v := range variants {
		if v.level > cpu.Hardware {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			old := cpu.SetMax(v.level)
			defer cpu.SetMax(old)
			if got := pick().name; got != v.name {
				t.Fatalf("dispatch picked %s, want %s", got, v.name)
			}
			f(t)
		})
	}
}

func TestPack8Hand(t *testing.T) {
	// PyTorch's documented example: rows [10, 20] and [30, 40] give codes
	// [0, 255], scale 10/255 and bias 10 and 30.
	tb := Pack8([]float32{10, 20, 30, 40}, 2, 2)
	want := [][]byte{{0, 255, 161, 160, 32, 61, 0, 0, 32, 65}, {0, 255, 161, 160, 32, 61, 0, 0, 240, 65}}
	for r := range want {
		if string(tb.Row(r)) != string(want[r]) {
			t.Fatalf("row %d = %v, want %v", r, tb.Row(r), want[r])
		}
	}
	if s, b := tb.ScaleBias(1); s != float32(10)/255 || b != 30 {
		t.Fatalf("scale, bias = %v, %v", s, b)
	}
	if err := tb.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestPack4Hand(t *testing.T) {
	// Row [0, 1.5, 3, 0.75]: min 0, scale half(3/15) = 0x3266 =
	// 0.199951171875, inverse 5.0012207; codes RNE of 0, 7.5018, 15.0037,
	// 3.7509 = 0, 8, 15, 4, packed low nibble first: 0x80, 0x4f.
	tb := Pack4([]float32{0, 1.5, 3, 0.75}, 1, 4)
	want := []byte{0x80, 0x4f, 0x66, 0x32, 0, 0}
	if string(tb.Row(0)) != string(want) {
		t.Fatalf("row = %x, want %x", tb.Row(0), want)
	}
	for j, q := range []uint8{0, 8, 15, 4} {
		if tb.Code(0, j) != q {
			t.Fatalf("code %d = %d, want %d", j, tb.Code(0, j), q)
		}
	}
	// A constant row whose value is a half gets scale 1 and codes 0.
	tb = Pack4([]float32{0.5, 0.5}, 1, 2)
	if s, b := tb.ScaleBias(0); s != 1 || b != 0.5 || tb.Code(0, 0) != 0 {
		t.Fatalf("constant row: scale %v bias %v code %d", s, b, tb.Code(0, 0))
	}
	// Otherwise the bias rounds to a half below the value, the range is
	// that rounding error, and the codes are 15: 0.1 -> bias 0.099975586,
	// scale half((0.1-0.099975586)/15), a subnormal half.
	tb = Pack4([]float32{0.1, 0.1}, 1, 2)
	if s, b := tb.ScaleBias(0); s != 1.6093254e-06 || b != 0.099975586 || tb.Code(0, 0) != 15 {
		t.Fatalf("constant row: scale %v bias %v code %d", s, b, tb.Code(0, 0))
	}
}

func TestTableCheck(t *testing.T) {
	bad := []Table{
		{Rows: 2, Dim: 3, Bits: 2, Data: make([]byte, 22)},
		{Rows: 2, Dim: 3, Bits: 4, Data: make([]byte, 2*6)},
		{Rows: 2, Dim: 4, Bits: 8, Data: make([]byte, 23)},
		{Rows: -1, Dim: 4, Bits: 8},
	}
	for _, tb := range bad {
		if tb.Check() == nil {
			t.Errorf("Check accepted %+v", tb)
		}
	}
	ok := Table{Rows: 2, Dim: 4, Bits: 4, Data: make([]byte, 12)}
	if err := ok.Check(); err != nil {
		t.Error(err)
	}
}

func randTable(r *rand.Rand, rows, dim, bits int) *Table {
	w := make([]float32, rows*dim)
	for i := range w {
		w[i] = float32(r.NormFloat64() * math.Exp(r.NormFloat64()*3))
	}
	if bits == 4 {
		return Pack4(w, rows, dim)
	}
	return Pack8(w, rows, dim)
}

// spec is the test's own statement of one bag index, on the table's
// accessors: float32(s*q + (out+b)) with the sum in float64.
func spec(t *Table, r int, s, b float32, out []float32) {
	for j := range out[:t.Dim] {
		out[j] = float32(float64(s)*float64(t.Code(r, j)) + float64(out[j]+b))
	}
}

type query struct {
	idx, offsets []int64
	end          int
	weights      []float32
}

func randQuery(r *rand.Rand, rows int) query {
	n := r.IntN(40)
	q := query{idx: make([]int64, n), end: n}
	for i := range q.idx {
		q.idx[i] = int64(r.IntN(rows))
	}
	nb := 1 + r.IntN(7)
	q.offsets = make([]int64, nb)
	for b := 1; b < nb; b++ {
		q.offsets[b] = q.offsets[b-1] + int64(r.IntN(n-int(q.offsets[b-1])+1))
	}
	if r.IntN(2) == 0 {
		q.weights = make([]float32, n)
		for i := range q.weights {
			q.weights[i] = float32(r.NormFloat64())
		}
	}
	return q
}

// specBag is Bag written out with spec.
func specBag(t *Table, mode Mode, q query) []float32 {
	d := t.Dim
	out := make([]float32, len(q.offsets)*d)
	for b := range q.offsets {
		lo, hi := int(q.offsets[b]), q.end
		if b+1 < len(q.offsets) {
			hi = int(q.offsets[b+1])
		}
		o := out[b*d : (b+1)*d]
		for n := lo; n < hi; n++ {
			r := int(q.idx[n])
			s, bi := t.ScaleBias(r)
			switch {
			case q.weights != nil:
				spec(t, r, q.weights[n]*s, q.weights[n]*bi, o)
			case mode == Max:
				v := make([]float32, d)
				spec(t, r, s, bi, v)
				for j := range v {
					if n == lo || v[j] > o[j] {
						o[j] = v[j]
					}
				}
			default:
				spec(t, r, s, bi, o)
			}
		}
		if mode == Mean && hi > lo {
			for j := range o {
				o[j] /= float32(hi - lo)
			}
		}
	}
	return out
}

var dims = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 15, 16, 17, 18, 30, 31, 32, 33, 34, 62, 63, 64, 65, 66, 126, 127, 128, 129, 130}

func TestBagMatchesSpec(t *testing.T) {
	forEachVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 1))
		for _, bits := range []int{8, 4} {
			for _, d := range dims {
				if bits == 4 && d%2 == 1 {
					continue
				}
				tb := randTable(r, 12, d, bits)
				for trial := 0; trial < 6; trial++ {
					q := randQuery(r, tb.Rows)
					for _, mode := range []Mode{Sum, Mean, Max} {
						if mode != Sum {
							q.weights = nil
						}
						want := specBag(tb, mode, q)
						got := make([]float32, len(want)+2)
						got[len(want)], got[len(want)+1] = 12345, 12345
						Bag(tb, mode, q.idx, q.offsets, q.end, q.weights, got[:len(want)])
						for i := range want {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%d-bit dim %d %v: out[%d] = %v, want %v", bits, d, mode, i, got[i], want[i])
							}
						}
						if got[len(want)] != 12345 || got[len(want)+1] != 12345 {
							t.Fatalf("%d-bit dim %d: guard elements written", bits, d)
						}
					}
					// Lookup is a bag of one per index.
					want := make([]float32, len(q.idx)*d)
					for i, ix := range q.idx {
						s, b := tb.ScaleBias(int(ix))
						spec(tb, int(ix), s, b, want[i*d:])
					}
					got := make([]float32, len(want))
					Lookup(tb, q.idx, got)
					for i := range want {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%d-bit dim %d: lookup[%d] = %v, want %v", bits, d, i, got[i], want[i])
						}
					}
				}
			}
		}
	})
}

func TestBagHand(t *testing.T) {
	// 8-bit rows [0, 255] with scale 1/255 and bias 1: values 1 and 2.
	tb := &Table{Rows: 2, Dim: 2, Bits: 8, Data: make([]byte, 20)}
	for r, bias := range []float32{1, -3} {
		row := tb.Row(r)
		row[0], row[1] = 0, 255
		binary.LittleEndian.PutUint32(row[2:], math.Float32bits(float32(1)/255))
		binary.LittleEndian.PutUint32(row[6:], math.Float32bits(bias))
	}
	// Row 0 = [1, 2], row 1 = [-3, -2]. Bags: {0, 1}, {}, {1, 1, 0}.
	idx := []int32{0, 1, 1, 1, 0}
	offsets := []int32{0, 2, 2}
	cases := []struct {
		mode Mode
		w    []float32
		want []float32
	}{
		{Sum, nil, []float32{-2, 0, 0, 0, -5, -2}},
		{Mean, nil, []float32{-1, 0, 0, 0, float32(-5) / 3, float32(-2) / 3}},
		{Max, nil, []float32{1, 2, 0, 0, 1, 2}},
		{Sum, []float32{2, 0.5, 1, 1, -1}, []float32{0.5, 3, 0, 0, -7, -6}},
	}
	forEachVariant(t, func(t *testing.T) {
		for _, c := range cases {
			got := make([]float32, 6)
			Bag(tb, c.mode, idx, offsets, len(idx), c.w, got)
			for i := range got {
				if math.Abs(float64(got[i]-c.want[i])) > 1e-6 {
					t.Fatalf("%v w=%v: got %v, want %v", c.mode, c.w, got, c.want)
				}
			}
		}
	})
}

func TestBagThreadIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	tb := randTable(r, 500, 64, 8)
	n := 5000
	idx := make([]int64, n)
	for i := range idx {
		idx[i] = int64(r.IntN(500))
	}
	offsets := make([]int64, 300)
	for b := range offsets {
		offsets[b] = int64(b * n / len(offsets))
	}
	for _, mode := range []Mode{Sum, Mean, Max} {
		var ref []float32
		for _, th := range []int{1, 2, 3} {
			old := parallel.SetNumThreads(th)
			out := make([]float32, len(offsets)*64)
			Bag(tb, mode, idx, offsets, n, nil, out)
			parallel.SetNumThreads(old)
			if ref == nil {
				ref = out
				continue
			}
			for i := range out {
				if math.Float32bits(out[i]) != math.Float32bits(ref[i]) {
					t.Fatalf("%v threads %d: element %d differs", mode, th, i)
				}
			}
		}
	}
}

func TestBagPanicsOnBadIndex(t *testing.T) {
	tb := Pack8(make([]float32, 8), 2, 4)
	for _, f := range []func(){
		func() { Bag(tb, Sum, []int64{0, 2}, []int64{0}, 2, nil, make([]float32, 4)) },
		func() { Bag(tb, Sum, []int64{0, 1}, []int64{0, 3}, 2, nil, make([]float32, 8)) },
		func() { Bag(tb, Mean, []int64{0, 1}, []int64{0}, 2, []float32{1, 1}, make([]float32, 4)) },
		func() { Lookup(tb, []int32{-1}, make([]float32, 4)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		}()
	}
}

// TestTorchGolden compares packing and bag sums with PyTorch 1.13's
// embedding_bag_{byte,4bit}_prepack and *_rowwise_offsets (C++ fallback
// kernels) byte for byte and bit for bit; mode is ignored by those ops, so
// only sums are checked here.
func TestTorchGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/torch_embbag.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Tables []struct {
			Rows, Dim, Bits int
			W               []float32
			Packed          []byte `json:"-"`
			PackedInts      []int  `json:"packed"`
			Queries         []struct {
				Idx               []int64   `json:"idx"`
				Offsets           []int64   `json:"offsets"`
				IncludeLastOffset bool      `json:"include_last_offset"`
				PerSampleWeights  []float32 `json:"per_sample_weights"`
				Y                 []float32 `json:"y"`
			} `json:"queries"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Tables) < 8 {
		t.Fatalf("only %d tables", len(g.Tables))
	}
	forEachVariant(t, func(t *testing.T) {
		for _, c := range g.Tables {
			var tb *Table
			if c.Bits == 8 {
				tb = Pack8(c.W, c.Rows, c.Dim)
			} else {
				tb = Pack4(c.W, c.Rows, c.Dim)
			}
			if len(tb.Data) != len(c.PackedInts) {
				t.Fatalf("%d-bit %dx%d: %d bytes, PyTorch %d", c.Bits, c.Rows, c.Dim, len(tb.Data), len(c.PackedInts))
			}
			for i, v := range c.PackedInts {
				if tb.Data[i] != byte(v) {
					t.Fatalf("%d-bit %dx%d: byte %d (row %d) = %d, PyTorch %d", c.Bits, c.Rows, c.Dim, i, i/tb.RowBytes(), tb.Data[i], v)
				}
			}
			for _, q := range c.Queries {
				offsets, end := q.Offsets, len(q.Idx)
				if q.IncludeLastOffset {
					offsets, end = offsets[:len(offsets)-1], int(offsets[len(offsets)-1])
				}
				got := make([]float32, len(offsets)*c.Dim)
				Bag(tb, Sum, q.Idx, offsets, end, q.PerSampleWeights, got)
				if len(got) != len(q.Y) {
					t.Fatalf("%d outputs, PyTorch %d", len(got), len(q.Y))
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(q.Y[i]) {
						t.Fatalf("%d-bit %dx%d idx %v offsets %v: out[%d] = %v, PyTorch %v", c.Bits, c.Rows, c.Dim, q.Idx, q.Offsets, i, got[i], q.Y[i])
					}
				}
			}
		}
	})
}
