//go:build !amd64 || purego

package qelem

// Without assembly every kernel family has only its generic tier.
var (
	quantArch        []variant[quantFn]
	dequantArch      []variant[dequantFn]
	quant32Arch      []variant[quant32Fn]
	dequant32Arch    []variant[dequant32Fn]
	binArch          []variant[binFn]
	lutArch          []variant[lutFn]
	sumRowsArch      []variant[sumRowsFn]
	rowMaxArch       []variant[rowMaxFn]
	rowAccArch       []variant[rowAccFn]
	deinterleaveArch []variant[deinterleaveFn]
)
