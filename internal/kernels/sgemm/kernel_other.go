//go:build !amd64 || purego

package sgemm

// asmVariants is empty without assembly.
var asmVariants []*variant
