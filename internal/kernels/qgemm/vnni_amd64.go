//go:build !purego

package qgemm

import (
	"encoding/binary"
	"unsafe"

	"github.com/quanta-go/quanta/internal/cpu"
)

//go:generate go run asm_gen.go

// packArch builds the assembly layouts this CPU can use.
func packArch(p *Packed) {
	if p.N == 0 || p.K == 0 {
		return
	}
	if cpu.Hardware >= cpu.AVX512VNNI {
		np := (p.N + 31) / 32
		kq := (p.K + 3) / 4
		p.vnni = make([]int8, np*kq*128)
		for j := 0; j < p.N; j++ {
			pn, c := j/32, j%32
			for q := 0; q < p.K; q++ {
				p.vnni[(pn*kq+q/4)*128+c*4+q%4] = p.w[j*p.K+q]
			}
		}
	}
	if cpu.Hardware >= cpu.AVX2 {
		np := (p.N + 15) / 16
		kp := (p.K + 1) / 2
		p.avx2 = make([]int16, np*kp*32)
		for j := 0; j < p.N; j++ {
			pn, c := j/16, j%16
			for q := 0; q < p.K; q++ {
				p.avx2[(pn*kp+q/2)*32+c*2+q%2] = int16(p.w[j*p.K+q])
			}
		}
	}
}

// archVariants lists the assembly tiers compiled into this build.
var archVariants = []variant{
	{name: "avx2", level: cpu.AVX2, run: func(m int, a []uint8, lda int, za int32, p *Packed, e *epilogue) {
		if p.avx2 == nil {
			runGeneric(m, a, lda, za, p, e)
			return
		}
		drive(&avx2Tier, m, a, lda, za, p, e)
	}},
	{name: "avx512vnni", level: cpu.AVX512VNNI, run: func(m int, a []uint8, lda int, za int32, p *Packed, e *epilogue) {
		if p.vnni == nil {
			runGeneric(m, a, lda, za, p, e)
			return
		}
		driveVNNI(m, a, lda, za, p, e)
	}},
}

var avx2Tier = tier{
	panelN: 16, maxM: 6, kgrp: 2,
	packA: func(buf []byte, a []uint8, lda, rows, k, groups int) {
		// int16 pairs: element (g, r, h) at ((g*rows+r)*2+h)*2 bytes.
		for r := 0; r < rows; r++ {
			row := a[r*lda : r*lda+k]
			for q := 0; q < groups*2; q++ {
				var v uint16
				if q < k {
					v = uint16(row[q])
				}
				binary.LittleEndian.PutUint16(buf[(((q/2)*rows+r)*2+q%2)*2:], v)
			}
		}
	},
	kernel: func(p *Packed, rows, groups int, buf []byte, pn0 int, init []int32, tile []int32, npan, ldt int) {
		avx2Kernels[rows](groups, (*int16)(unsafe.Pointer(&buf[0])), &p.avx2[pn0*groups*32], &init[0], &tile[0], npan, ldt)
	},
	bytesPerA: 2,
	requant: func(src []int32, mult []float32, zp int32, lo, hi float32, dst unsafe.Pointer) {
		n8 := len(src) / 8
		if n8 > 0 {
			requantU8AVX2(&src[0], &mult[0], n8, zp, lo, hi, (*byte)(dst))
		}
		if n8*8 < len(src) {
			tailRequant(src[n8*8:], mult[n8*8:], zp, lo, hi, unsafe.Add(dst, n8*8))
		}
	},
	requantS8: func(src []int32, mult []float32, zp int32, lo, hi float32, dst unsafe.Pointer) {
		n8 := len(src) / 8
		if n8 > 0 {
			requantS8AVX2(&src[0], &mult[0], n8, zp, lo, hi, (*byte)(dst))
		}
		if n8*8 < len(src) {
			tailRequant(src[n8*8:], mult[n8*8:], zp, lo, hi, unsafe.Add(dst, n8*8))
		}
	},
	dequant: func(src []int32, scale, bias []float32, dst []float32) {
		n8 := len(src) / 8
		if n8 > 0 {
			dequantAVX2(&src[0], &scale[0], &bias[0], n8, &dst[0])
		}
		for t := n8 * 8; t < len(src); t++ {
			dst[t] = float32(float32(float32(src[t])*scale[t]) + bias[t])
		}
	},
}

// tailRequant is the scalar form of the requantize loops (same arithmetic:
// clamping to [lo, hi] = [qmin-zp, qmax-zp] before rounding equals
// qmath.Requantize's clamping after it).
func tailRequant(src []int32, mult []float32, zp int32, lo, hi float32, dst unsafe.Pointer) {
	out := unsafe.Slice((*byte)(dst), len(src))
	for t, v := range src {
		f := float32(float32(v) * mult[t])
		f = max(f, lo)
		f = min(f, hi)
		out[t] = byte(int32(roundEven(f)) + zp)
	}
}

// requantRowArch runs the widest requantize loop the CPU allows.
func requantRowArch(src []int32, mult []float32, zp, lo, hi int32, dst []byte) bool {
	flo, fhi := float32(lo-zp), float32(hi-zp)
	switch {
	case cpu.Max >= cpu.AVX512VNNI:
		requantRowAVX512(&src[0], &mult[0], len(src), zp, flo, fhi, &dst[0])
	case cpu.Max >= cpu.AVX2:
		n8 := len(src) / 8
		if n8 > 0 && lo >= 0 {
			requantU8AVX2(&src[0], &mult[0], n8, zp, flo, fhi, &dst[0])
		} else if n8 > 0 {
			requantS8AVX2(&src[0], &mult[0], n8, zp, flo, fhi, &dst[0])
		}
		if n8*8 < len(src) {
			tailRequant(src[n8*8:], mult[n8*8:], zp, flo, fhi, unsafe.Pointer(&dst[n8*8]))
		}
	default:
		return false
	}
	return true
}
