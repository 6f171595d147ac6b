package qgemm

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/quanta-go/quanta/internal/cpu"
)

// FuzzQGemm compares every tier this CPU supports with the reference on
// shapes, zero points, multipliers and data drawn from the fuzzer's bytes,
// including the extremes (0, 255, -128, 127) and saturating outputs.
func FuzzQGemm(f *testing.F) {
	f.Add(uint8(1), uint8(1), uint8(1), uint8(0), int8(0), float32(0.001), uint8(0), []byte{255, 128})
	f.Add(uint8(3), uint8(33), uint8(17), uint8(255), int8(-128), float32(1), uint8(1), []byte{0, 255, 127, 128, 1})
	f.Add(uint8(14), uint8(64), uint8(65), uint8(128), int8(3), float32(1e-5), uint8(2), []byte{7, 9, 200})
	f.Add(uint8(29), uint8(5), uint8(4), uint8(17), int8(127), float32(100), uint8(3), []byte{1})
	f.Fuzz(func(t *testing.T, mb, nb, kb, za uint8, zw int8, mult float32, mode uint8, data []byte) {
		m, n, k := int(mb%40), int(nb%80)+1, int(kb%90)+1
		if math.IsNaN(float64(mult)) || math.IsInf(float64(mult), 0) {
			mult = 1
		}
		byteAt := func(i int) byte {
			if len(data) == 0 {
				return byte(i * 37)
			}
			return data[i%len(data)] ^ byte(i*131)
		}
		a := make([]uint8, m*k)
		for i := range a {
			a[i] = byteAt(i)
		}
		w := make([]int8, n*k)
		for i := range w {
			w[i] = int8(byteAt(i + 7919))
		}
		zps := []int32{int32(zw)}
		if mode&1 == 1 {
			zps = make([]int32, n)
			for j := range zps {
				zps[j] = int32(int8(byteAt(j + 104729)))
			}
		}
		p := Pack(n, k, w, k, zps)
		mults := []float32{mult}
		bias := make([]int32, n)
		for j := range bias {
			var b [4]byte
			for q := range b {
				b[q] = byteAt(j*4 + q + 15485863)
			}
			bias[j] = int32(binary.LittleEndian.Uint32(b[:])) >> 12
		}
		lo, hi := int32(0), int32(255)
		if mode&2 == 2 {
			lo, hi = int32(za), 255 // fused ReLU at the output zero point
		}
		rq := &Requant{Bias: bias, Multiplier: mults, ZeroPoint: int32(za), Min: lo, Max: hi}
		dq := &Dequant{ScaleA: mult, ScaleW: []float32{0.5}, Bias: []float32(nil)}
		wantS := make([]int32, m*n)
		ReferenceS32(m, a, k, int32(za), p, wantS, n)
		wantU := make([]uint8, m*n)
		ReferenceU8(m, a, k, int32(za), p, rq, wantU, n)
		wantF := make([]float32, m*n)
		ReferenceF32(m, a, k, int32(za), p, dq, wantF, n)
		rs := &Requant{Bias: bias, Multiplier: mults, ZeroPoint: int32(int8(za)), Min: -128, Max: 127}
		wantS8 := make([]int8, m*n)
		ReferenceS8(m, a, k, int32(za), p, rs, wantS8, n)
		for _, v := range variants {
			if v.level > cpu.Hardware {
				continue
			}
			old := cpu.SetMax(v.level)
			gotS := make([]int32, m*n)
			GemmS32(m, a, k, int32(za), p, gotS, n)
			gotU := make([]uint8, m*n)
			GemmU8(m, a, k, int32(za), p, rq, gotU, n)
			gotF := make([]float32, m*n)
			GemmF32(m, a, k, int32(za), p, dq, gotF, n)
			gotS8 := make([]int8, m*n)
			GemmS8(m, a, k, int32(za), p, rs, gotS8, n)
			cpu.SetMax(old)
			for i := range wantS {
				if gotS[i] != wantS[i] || gotU[i] != wantU[i] || gotS8[i] != wantS8[i] || math.Float32bits(gotF[i]) != math.Float32bits(wantF[i]) {
					t.Fatalf("%s %dx%dx%d element %d: s32 %d/%d u8 %d/%d f32 %v/%v", v.name, m, n, k, i, gotS[i], wantS[i], gotU[i], wantU[i], gotF[i], wantF[i])
				}
			}
		}
	})
}
