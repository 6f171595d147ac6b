package embbag

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/quanta-go/quanta/internal/cpu"
)

// FuzzRow feeds arbitrary rows (codes, scale and bias bit patterns,
// accumulator contents) to every tier's row kernel and compares it with
// the specification bit for bit.
func FuzzRow(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, uint32(0x3c000000), uint32(0xbf800000), uint8(3), true)
	f.Add(make([]byte, 70), uint32(0x7f7fffff), uint32(0x00000001), uint8(64), false)
	f.Fuzz(func(t *testing.T, codes []byte, sBits, bBits uint32, dimByte uint8, four bool) {
		s, b := math.Float32frombits(sBits), math.Float32frombits(bBits)
		bits, dim := 8, int(dimByte)
		if four {
			bits, dim = 4, dim&^1
		}
		tb := &Table{Rows: 1, Dim: dim, Bits: bits, Data: make([]byte, RowBytes(bits, dim))}
		copy(tb.Data, codes)
		init := make([]float32, dim)
		for j := range init {
			if 4*j+4 <= len(codes) {
				init[j] = math.Float32frombits(binary.LittleEndian.Uint32(codes[4*j:]))
			}
		}
		want := append([]float32(nil), init...)
		accGeneric(tb, 0, s, b, want)
		for _, v := range variants {
			if v.level > cpu.Hardware {
				continue
			}
			got := append(append([]float32(nil), init...), 42)
			v.acc(tb, 0, s, b, got[:dim])
			for j := range want {
				if math.Float32bits(got[j]) != math.Float32bits(want[j]) && !(got[j] != got[j] && want[j] != want[j]) {
					t.Fatalf("%s: out[%d] = %v, want %v", v.name, j, got[j], want[j])
				}
			}
			if got[dim] != 42 {
				t.Fatalf("%s: wrote past the row", v.name)
			}
		}
	})
}
