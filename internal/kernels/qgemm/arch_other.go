//go:build !amd64 || purego

package qgemm

func packArch(p *Packed) {}

// archVariants is empty without assembly.
var archVariants []variant
