package qdyn

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestChooseONNXHand(t *testing.T) {
	cases := []struct {
		lo, hi float32
		scale  float32
		zp     int32
	}{
		// [-1, 3]: scale 4/255, zp RNE(1/(4/255)) = RNE(63.75) = 64.
		{-1, 3, float32(4) / 255, 64},
		// Range extended to 0 on both sides.
		{1, 3, float32(3) / 255, 0},
		{-3, -1, float32(3) / 255, 255},
		// All zeros: ONNX Runtime's scale 1, zero point 0.
		{0, 0, 1, 0},
		// Scale 1, zero points at exact ties: 2.5 -> 2, 3.5 -> 4.
		{-2.5, 252.5, 1, 2},
		{-3.5, 251.5, 1, 4},
	}
	for _, c := range cases {
		s, z := ChooseONNX(c.lo, c.hi)
		if s != c.scale || z != c.zp {
			t.Errorf("ChooseONNX(%v, %v) = (%v, %d), want (%v, %d)", c.lo, c.hi, s, z, c.scale, c.zp)
		}
	}
}

func TestChooseTorchHand(t *testing.T) {
	cases := []struct {
		lo, hi float32
		reduce bool
		scale  float32
		zp     int32
	}{
		// The reference's examples: [-1, 3] gives (4/255, 64) and with
		// reduce_range (4/127, 32).
		{-1, 3, false, float32(4.0 / 255), 64},
		{-1, 3, true, float32(4.0 / 127), 32},
		// All zeros: scale 0 becomes 0.1.
		{0, 0, false, float32(0.1), 0},
		// Negative only: the min-anchored candidate (error 0-255) wins: 255.
		{-2, -1, false, float32(2.0 / 255), 255},
		// Positive only: zp 0.
		{0.5, 2, false, float32(2.0 / 255), 0},
		// Tiny range anchored at 0: scale floored to 6.1e-5.
		{0, 0.001, false, smallScale, 0},
		{-0.001, 0, false, smallScale, 255},
		// Tiny range across 0: min and max widened by 6.1e-5/scale; the
		// zero point stays where it was: 0.001/(0.003/255) = 85.
		{-0.001, 0.002, false, smallScale, 85},
	}
	for _, c := range cases {
		s, z := ChooseTorch(c.lo, c.hi, 0, 255, c.reduce)
		if s != c.scale || z != c.zp {
			t.Errorf("ChooseTorch(%v, %v, reduce=%v) = (%v, %d), want (%v, %d)", c.lo, c.hi, c.reduce, s, z, c.scale, c.zp)
		}
	}
	// qint8 ranges with reduce_range halve both bounds: -64..63.
	s, z := ChooseTorch(-1, 3, -128, 127, false)
	if s != float32(4.0/255) || z != -64 {
		t.Errorf("qint8 [-1, 3] = (%v, %d), want (4/255, -64)", s, z)
	}
	s, z = ChooseTorch(-1, 3, -128, 127, true)
	if s != float32(4.0/127) || z != -64+32 {
		t.Errorf("qint8 reduce [-1, 3] = (%v, %d), want (4/127, -32)", s, z)
	}
}

func TestRuleChoose(t *testing.T) {
	if p := ONNX.Choose(-1, 3); p != (Params{float32(4) / 255, 64, 0, 255}) {
		t.Errorf("ONNX = %+v", p)
	}
	if p := Torch.Choose(-1, 3); p != (Params{float32(4.0 / 255), 64, 0, 255}) {
		t.Errorf("Torch = %+v", p)
	}
	if p := TorchReduceRange.Choose(-1, 3); p != (Params{float32(4.0 / 127), 32, 0, 127}) {
		t.Errorf("TorchReduceRange = %+v", p)
	}
	for _, r := range []Rule{ONNX, Torch, TorchReduceRange} {
		if !r.Valid() || r.String() == "" {
			t.Errorf("rule %d", r)
		}
	}
	if Rule(9).Valid() {
		t.Error("Rule(9) valid")
	}
	defer func() {
		if recover() == nil {
			t.Error("Choose with an undefined rule did not panic")
		}
	}()
	Rule(9).Choose(0, 1)
}

func TestChooseTorchRejectsNaN(t *testing.T) {
	nan := float32(math.NaN())
	for _, c := range [][2]float32{{nan, 1}, {0, nan}, {2, 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("ChooseTorch(%v, %v) did not panic", c[0], c[1])
				}
			}()
			ChooseTorch(c[0], c[1], 0, 255, false)
		}()
	}
}

// readTensorProto decodes the few ONNX TensorProto fields the
// DynamicQuantizeLinear cases use: dims (1), data_type (2) and raw_data
// (9); names (8) are skipped.
func readTensorProto(t *testing.T, path string) (dims []int, dtype int, raw []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	varint := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			t.Fatalf("%s: bad varint", path)
		}
		b = b[n:]
		return v
	}
	for len(b) > 0 {
		key := varint()
		field, wire := key>>3, key&7
		switch wire {
		case 0:
			v := varint()
			switch field {
			case 1:
				dims = append(dims, int(v))
			case 2:
				dtype = int(v)
			}
		case 2:
			n := int(varint())
			if n > len(b) {
				t.Fatalf("%s: truncated field %d", path, field)
			}
			if field == 9 {
				raw = b[:n]
			}
			b = b[n:]
		default:
			t.Fatalf("%s: unexpected wire type %d", path, wire)
		}
	}
	return dims, dtype, raw
}

// TestONNXNodeCases runs ONNX's DynamicQuantizeLinear conformance cases
// (vendored from onnx/backend/test/data/node) through ScanActivations and
// Quantize.
func TestONNXNodeCases(t *testing.T) {
	dirs, err := filepath.Glob("testdata/onnx/test_dynamicquantizelinear*")
	if err != nil || len(dirs) != 3 {
		t.Fatalf("want 3 vendored cases, got %v (%v)", dirs, err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			_, dt, raw := readTensorProto(t, filepath.Join(dir, "input_0.pb"))
			if dt != 1 {
				t.Fatalf("input dtype %d", dt)
			}
			x := make([]float32, len(raw)/4)
			for i := range x {
				x[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
			_, _, wantY := readTensorProto(t, filepath.Join(dir, "output_0.pb"))
			_, _, rawS := readTensorProto(t, filepath.Join(dir, "output_1.pb"))
			_, _, rawZ := readTensorProto(t, filepath.Join(dir, "output_2.pb"))
			wantS := math.Float32frombits(binary.LittleEndian.Uint32(rawS))
			wantZ := int32(rawZ[0])
			forEachVariant(t, func(t *testing.T) {
				p, ok := ScanActivations(ONNX, 1, len(x), x, len(x))
				if !ok || p.Scale != wantS || p.ZeroPoint != wantZ {
					t.Fatalf("qparams %+v ok=%v, want scale %v zp %d", p, ok, wantS, wantZ)
				}
				y := make([]uint8, len(x))
				Quantize(y, x, p.Scale, p.ZeroPoint, p.QMin, p.QMax)
				if string(y) != string(wantY) {
					t.Fatalf("y = %v, want %v", y, wantY)
				}
			})
		})
	}
}

// forEachVariant runs f once per tier this machine supports, with cpu.Max
// capped to it, checking that dispatch picks that tier.
func forEachVariant(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, v := range variants {
		if v.level > hardware() {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			old := setMax(v.level)
			defer setMax(old)
			if got := pick().name; got != v.name {
				t.Fatalf("dispatch picked %s, want %s", got, v.name)
			}
			f(t)
		})
	}
}

func ExampleChooseTorch() {
	s, zp := ChooseTorch(-1, 3, 0, 255, false)
	fmt.Println(s, zp)
	s, zp = ChooseTorch(-1, 3, 0, 255, true)
	fmt.Println(s, zp)
	// Output:
	// 0.015686275 64
	// 0.031496063 32
}
