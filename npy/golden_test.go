package npy

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

// The files in testdata were written by NumPy 1.24 (scripts/golden_npy.py).
// The expected values below restate the script's formulas independently.

var (
	inf  = float32(math.Inf(1))
	nan  = float32(math.NaN())
	tiny = math.Float32frombits(1) // 2^-149, the smallest subnormal
)

// f32Conv converts float64 values to float32 at run time (IEEE round to
// nearest even, overflow to ±Inf), the documented reading of '<f8'.
func f32Conv(v ...float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// sameF32 reports whether a and b hold the same float32 bits, any NaN
// matching any NaN.
func sameF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.IsNaN(float64(a[i])) && math.IsNaN(float64(b[i])) {
			continue
		}
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// sameTensor reports whether a and b have the same dtype, shape and
// element bits.
func sameTensor(a, b *tensor.Tensor) bool {
	if a.DType() != b.DType() || !slices.Equal(a.Shape(), b.Shape()) {
		return false
	}
	switch a.DType() {
	case tensor.Float32:
		return sameF32(a.F32(), b.F32())
	case tensor.Int64:
		return slices.Equal(a.I64(), b.I64())
	case tensor.Int32:
		return slices.Equal(a.I32(), b.I32())
	case tensor.Int8:
		return slices.Equal(a.I8(), b.I8())
	case tensor.Uint8:
		return slices.Equal(a.U8(), b.U8())
	case tensor.Bool:
		return slices.Equal(a.Bools(), b.Bools())
	}
	return false
}

func arange8(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i) / 8
	}
	return v
}

func steps(lo, hi, step int) []uint8 {
	var v []uint8
	for x := lo; x < hi; x += step {
		v = append(v, uint8(x))
	}
	return v
}

var goldenArrays = []struct {
	file string
	want *tensor.Tensor
	// numpySave is set for files np.save wrote with the dtype and
	// version Write produces: Write must give the same bytes.
	numpySave bool
}{
	{"f4", tensor.FromFloat32([]float32{0, float32(math.Copysign(0, -1)), 1.5, -2.25, inf, -inf, nan, tiny,
		math.MaxFloat32, float32(1.0 / 3.0), -7, 65504}, 3, 4), true},
	{"i8", tensor.FromInt64([]int64{0, 1, -1, math.MaxInt64, math.MinInt64, 1234567890123}, 2, 3), true},
	{"i4", tensor.FromInt32([]int32{0, 1, -1, math.MaxInt32, math.MinInt32, 123456}, 3, 2), true},
	{"u1", tensor.FromUint8(steps(0, 256, 5), 52, 1), true},
	{"i1", tensor.FromInt8([]int8{-128, -1, 0, 1, 127}, 5), true},
	{"b1", tensor.FromBool([]bool{true, false, true, false, false, true}, 2, 3), true},
	{"scalar_f4", tensor.Scalar(2.5), true},
	{"empty_f4", tensor.New(tensor.Float32, 0, 3), true},
	{"one_i8", tensor.FromInt64([]int64{42}, 1), true},
	{"arange_f4", tensor.FromFloat32(arange8(24000), 20, 30, 40), true},
	{"f8", tensor.FromFloat32(f32Conv(0.1, 1.0/3.0, -2.5, 1e300, -1e300, 1e-50, -1e-50, 3.4028235677973366e38,
		math.Inf(1), 16777217, math.Ldexp(1, -149), 0), 2, 6), false},
	{"f2", tensor.FromFloat32([]float32{0, float32(math.Copysign(0, -1)), 1, -2, 65504,
		1023.0 / (1 << 24), 1.0 / (1 << 24), inf, -inf, nan}, 10), false},
	{"i2", tensor.FromInt32([]int32{-32768, -1, 0, 1, 32767}, 5), false},
	{"u2", tensor.FromInt32([]int32{0, 1, 65535}, 3), false},
	{"u4", tensor.FromInt64([]int64{0, 1, 4294967295}, 3), false},
	{"be_f4", tensor.FromFloat32([]float32{1.5, -2, inf, tiny}, 2, 2), false},
	{"be_i8", tensor.FromInt64([]int64{1, -2, 1<<40 + 3}, 3), false},
	{"be_f8", tensor.FromFloat32(f32Conv(0.1, -3), 2), false},
	{"be_i4", tensor.FromInt32([]int32{7, -8}, 2), false},
	{"v2_i4", tensor.FromInt32([]int32{1, 2, 3, 4, 5, 6}, 2, 3), false},
	{"v3_f4", tensor.FromFloat32([]float32{1, 2}, 2), false},
}

func TestGoldenRead(t *testing.T) {
	for _, g := range goldenArrays {
		path := filepath.Join("testdata", g.file+".npy")
		got, err := ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", g.file, err)
			continue
		}
		if !sameTensor(got, g.want) {
			t.Errorf("%s: read %v %v\n%v\nwant %v %v\n%v", g.file, got.DType(), got.Shape(), got, g.want.DType(), g.want.Shape(), g.want)
		}
	}
}

// TestGoldenWrite checks that Write reproduces np.save's bytes exactly.
func TestGoldenWrite(t *testing.T) {
	for _, g := range goldenArrays {
		if !g.numpySave {
			continue
		}
		want, err := os.ReadFile(filepath.Join("testdata", g.file+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := Write(&buf, g.want); err != nil {
			t.Fatalf("%s: %v", g.file, err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s: Write gives\n%q\nnp.save wrote\n%q", g.file, head(buf.Bytes()), head(want))
		}
	}
}

func head(b []byte) []byte { return b[:min(len(b), 160)] }

func TestGoldenRejected(t *testing.T) {
	for file, want := range map[string]string{
		"fortran_f4": "Fortran order, which is not supported",
		"structured": "structured dtypes are not supported",
		"unicode":    "dtype '<U2' (unicode string) is not supported",
	} {
		path := filepath.Join("testdata", file+".npy")
		_, err := ReadFile(path)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming the file and saying %q", file, err, want)
		}
	}
}

func TestGoldenNPZ(t *testing.T) {
	ts, order, err := ReadNPZ(filepath.Join("testdata", "compressed.npz"))
	if err != nil {
		t.Fatal(err)
	}
	wantOrder := []string{"weight", "labels", "mask", "scalar", "empty", "pixels"}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("order %q, want %q", order, wantOrder)
	}
	scalar := tensor.FromInt32([]int32{-7}, 1).Reshape()
	want := map[string]*tensor.Tensor{
		"weight": tensor.FromFloat32([]float32{1, -2, 0.5, 0.25}, 2, 2),
		"labels": tensor.FromInt64([]int64{3, 1, 4, 1, 5}, 5),
		"mask":   tensor.FromBool([]bool{true, false}, 2),
		"scalar": scalar,
		"empty":  tensor.New(tensor.Uint8, 2, 0),
		"pixels": tensor.FromUint8([]uint8{0, 7, 14, 21, 28, 35}, 2, 3),
	}
	if len(ts) != len(want) {
		t.Errorf("%d arrays, want %d", len(ts), len(want))
	}
	for k, w := range want {
		if got, ok := ts[k]; !ok || !sameTensor(got, w) {
			t.Errorf("%s: got %v, want %v", k, got, w)
		}
	}

	ts, order, err = ReadNPZ(filepath.Join("testdata", "stored.npz"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []string{"b", "arr_0"}) {
		t.Errorf("stored.npz order %q", order)
	}
	if !sameTensor(ts["arr_0"], tensor.FromFloat32([]float32{1, 2}, 2)) || !sameTensor(ts["b"], tensor.FromInt8([]int8{9}, 1)) {
		t.Errorf("stored.npz: %v", ts)
	}
}
