package qelem

import (
	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
)

// BinaryParams are the quantization parameters of a binary op on a, b
// into y: scales, zero points, and the output range Min..Max (T's full
// range, or with Min raised to ZeroY for a fused ReLU).
type BinaryParams struct {
	ScaleA, ScaleB, ScaleY float32
	ZeroA, ZeroB, ZeroY    int32
	Min, Max               int32
}

// binOp selects the float operation of a binary kernel.
type binOp uint8

const (
	opAdd binOp = iota
	opMul
)

// binArgs is BinaryParams as the assembly reads it (field offsets 0..28).
type binArgs struct {
	sa, sb, sy float32
	za, zb, zy int32
	lo, hi     float32 // Min-ZeroY, Max-ZeroY
}

func (p *BinaryParams) args() *binArgs {
	return &binArgs{sa: p.ScaleA, sb: p.ScaleB, sy: p.ScaleY, za: p.ZeroA, zb: p.ZeroB, zy: p.ZeroY,
		lo: float32(p.Min - p.ZeroY), hi: float32(p.Max - p.ZeroY)}
}

// binFn computes op elementwise over len(dst) bytes (int8 when signed).
type binFn func(op binOp, dst, a, b []byte, signed bool, p *BinaryParams)

// binVariants lists every tier compiled in, lowest first.
var binVariants = append([]variant[binFn]{{name: "generic", level: cpu.Generic, ok: true, fn: binGeneric}}, binArch...)

// addValue and mulValue are the scalar definitions of Add and Mul; the
// explicit float32 conversions keep every product rounded on its own (no
// fused multiply-add on any architecture).
func addValue(a, b int32, p *BinaryParams) int32 {
	x := float32(qmath.Dequantize(a, p.ZeroA, p.ScaleA))
	y := float32(qmath.Dequantize(b, p.ZeroB, p.ScaleB))
	return qmath.Quantize(float32(x+y), p.ScaleY, p.ZeroY, p.Min, p.Max)
}

func mulValue(a, b int32, p *BinaryParams) int32 {
	x := float32(qmath.Dequantize(a, p.ZeroA, p.ScaleA))
	y := float32(qmath.Dequantize(b, p.ZeroB, p.ScaleB))
	return qmath.Quantize(float32(x*y), p.ScaleY, p.ZeroY, p.Min, p.Max)
}

func binGeneric(op binOp, dst, a, b []byte, signed bool, p *BinaryParams) {
	f := addValue
	if op == opMul {
		f = mulValue
	}
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = byte(f(valueOf(a[i], signed), valueOf(b[i], signed), p))
	}
}

// AddReference is the specification of Add (torch.ops.quantized.add, and
// add_relu with Min = ZeroY): the reference quantized model's
// dequantize, float32 add, quantize:
//
//	x := float32(qmath.Dequantize(a[i], ZeroA, ScaleA))
//	y := float32(qmath.Dequantize(b[i], ZeroB, ScaleB))
//	dst[i] = qmath.Quantize(float32(x + y), ScaleY, ZeroY, Min, Max)
//
// A fused ReLU is Min = max(Min, ZeroY): quantization is monotonic, so
// clamping the quantized sum at ZeroY equals quantizing relu(x + y).
func AddReference[T Byte](dst, a, b []T, p *BinaryParams) {
	binReference(opAdd, dst, a, b, p)
}

// MulReference is the specification of Mul (torch.ops.quantized.mul):
//
//	dst[i] = qmath.Quantize(float32(x * y), ScaleY, ZeroY, Min, Max)
//
// with x, y dequantized as in AddReference. (PyTorch's own kernel
// multiplies the centred integers and requantizes with
// float(sa*sb)*float(1/sy); this definition is the reference model's.)
func MulReference[T Byte](dst, a, b []T, p *BinaryParams) {
	binReference(opMul, dst, a, b, p)
}

func binReference[T Byte](op binOp, dst, a, b []T, p *BinaryParams) {
	need("binary", "a", len(a), len(dst))
	need("binary", "b", len(b), len(dst))
	f := addValue
	if op == opMul {
		f = mulValue
	}
	for i := range dst {
		dst[i] = T(f(int32(a[i]), int32(b[i]), p))
	}
}

// Add computes AddReference over len(dst) elements with the fastest tier
// allowed, split over threads.
func Add[T Byte](dst, a, b []T, p *BinaryParams) { binary(opAdd, "Add", dst, a, b, p) }

// Mul computes MulReference over len(dst) elements with the fastest tier
// allowed, split over threads.
func Mul[T Byte](dst, a, b []T, p *BinaryParams) { binary(opMul, "Mul", dst, a, b, p) }

func binary[T Byte](op binOp, name string, dst, a, b []T, p *BinaryParams) {
	need(name, "a", len(a), len(dst))
	need(name, "b", len(b), len(dst))
	checkRange[T](name, p.Min, p.Max)
	checkZero(name, p.ZeroY)
	fn := pick(binVariants).fn
	d, x, y := bytesOf(dst), bytesOf(a), bytesOf(b)
	s8 := isSigned[T]()
	parallel.For(len(dst), grain, func(s, e int) {
		fn(op, d[s:e], x[s:e], y[s:e], s8, p)
	})
}
