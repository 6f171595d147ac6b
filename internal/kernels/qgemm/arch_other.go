//go:build !amd64 || purego

package qgemm

func packArch(p *Packed) {}

// archVariants is empty without assembly.
var archVariants []variant

func requantRowArch(src []int32, mult []float32, zp, lo, hi int32, dst []byte) bool { return false }
