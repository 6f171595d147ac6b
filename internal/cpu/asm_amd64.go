//go:build amd64 && !purego

package cpu

const asmAvailable = true
