package qdyn

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
)

// FuzzScanQuantize feeds arbitrary float32 bit patterns to every tier's
// MinMax and Quantize and compares them with the references, and checks
// that the chosen qparams quantize 0 exactly to the zero point.
func FuzzScanQuantize(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 192, 0, 0, 192, 127}, uint8(0))
	f.Add(make([]byte, 4*37), uint8(1))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 128, 255, 0, 0, 128, 127, 255, 255, 127, 127}, uint8(2))
	f.Fuzz(func(t *testing.T, raw []byte, ruleByte uint8) {
		x := make([]float32, len(raw)/4)
		for i := range x {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		rule := Rule(ruleByte % 3)
		wlo, whi, wnan := minMaxGeneric(x)
		for _, v := range variants {
			if v.level > cpu.Hardware {
				continue
			}
			lo, hi, nan := v.minMax(x)
			if nan != wnan || (!nan && (lo != wlo || hi != whi)) {
				t.Fatalf("%s: MinMax = (%v, %v, %v), want (%v, %v, %v)", v.name, lo, hi, nan, wlo, whi, wnan)
			}
		}
		p, ok := ScanActivations(rule, 1, len(x), x, len(x))
		if !ok {
			return
		}
		if z := qmath.Quantize(0, p.Scale, p.ZeroPoint, p.QMin, p.QMax); z != p.ZeroPoint || p.ZeroPoint < p.QMin || p.ZeroPoint > p.QMax {
			t.Fatalf("%v: 0 quantizes to %d with %+v", rule, z, p)
		}
		want := make([]uint8, len(x))
		quantizeGeneric(want, x, p.Scale, p.ZeroPoint, p.QMin, p.QMax)
		for _, v := range variants {
			if v.level > cpu.Hardware {
				continue
			}
			got := make([]uint8, len(x))
			v.quantize(got, x, p.Scale, p.ZeroPoint, p.QMin, p.QMax)
			if string(got) != string(want) {
				t.Fatalf("%s: Quantize differs from the reference", v.name)
			}
		}
	})
}
