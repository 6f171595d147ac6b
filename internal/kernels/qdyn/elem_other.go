//go:build !amd64 || purego

package qdyn

// archVariants is empty without assembly.
var archVariants []variant
