//go:build !amd64 || purego

package qconv

import (
	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
)

func dwAsmLevel() (cpu.Level, bool) { return cpu.AVX512VNNI, false }

// dwPlane is nil: there is no assembly plane kernel in this build.
var dwPlane func(src *uint8, pitch, rowStep, colStep, oh, ow, kh, dh int, idx *byte, groups int, w *int32, init int32, mult float32, zp int32, lo, hi float32, dst *uint8)

// directPack is empty without assembly.
type directPack struct{}

func packDirect(p *Params, w []int8) *directPack { return nil }

func convDirect(pk *Packed, x []uint8, r *qgemm.Requant, y []uint8) {}

// pwPack is empty without assembly.
type pwPack struct{}

func packPointwise(p *Params, w []int8) *pwPack { return nil }

func usePointwise(pk *Packed) bool { return false }

func convPointwise(pk *Packed, x []uint8, r *qgemm.Requant, y []uint8) {}

// transposeBlock is nil without assembly.
var transposeBlock func(src *byte, ss int, dst *byte, ds int)

// pixelRows3 and pixelRows4 are nil without assembly.
var (
	pixelRows3 func(src *byte, rs, n int, dst *byte, pad byte)
	pixelRows4 func(src *byte, rs, n int, dst *byte)
)
