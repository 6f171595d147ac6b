//go:build !amd64 || purego

package embbag

// archVariants is empty without assembly.
var archVariants []variant
