//go:build !amd64 || purego

package embbag

// archVariants is empty without assembly.
var archVariants []variant

func prefetchRow(t *Table, r int) {}
