package ops

import (
	"fmt"
	"sync"

	"github.com/quanta-go/quanta/tensor"
)

// QuantizedKernel computes an op on quantized inputs: PyTorch's
// QuantizedCPU dispatch key. attrs is the op's attribute struct as the float
// op records it (PoolAttrs, ClampAttrs, LeakyReLUAttrs, ...), or nil.
type QuantizedKernel func(attrs any, inputs []*tensor.Tensor) (*tensor.Tensor, error)

var (
	qkernelsMu sync.RWMutex
	qkernels   = map[string]QuantizedKernel{}
)

// RegisterQuantized installs the kernel that runs op name when its input is
// a quantized tensor. Package ops/quantized registers kernels for ReLU,
// ReLU6, Hardtanh, LeakyReLU, ELU, Hardswish, Hardsigmoid, Sigmoid, Tanh,
// GELU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, UpsampleNearest2d and
// UpsampleBilinear2d when it is linked, so that float modules such as
// nn.ReLU, nn.MaxPool2d and nn.Upsample run natively on the quint8
// tensors of an eager-mode quantized model, as in PyTorch. Reshape,
// View, Flatten, Squeeze and Unsqueeze need no kernel: they share storage
// and keep the qparams; Dropout in evaluation mode returns its input.
func RegisterQuantized(name string, k QuantizedKernel) {
	qkernelsMu.Lock()
	defer qkernelsMu.Unlock()
	qkernels[name] = k
}

// quantizedOp runs the registered quantized kernel of op name on x and
// records the call (without autograd: quantized tensors carry no gradient).
func quantizedOp(name string, attrs any, x *tensor.Tensor) *tensor.Tensor {
	qkernelsMu.RLock()
	k := qkernels[name]
	qkernelsMu.RUnlock()
	if k == nil {
		panic(fmt.Sprintf("ops: %s: input is %s and no quantized kernel is registered for it (import github.com/quanta-go/quanta/ops/quantized, or dequantize first)", name, x.DType()))
	}
	y, err := k(attrs, Ts(x))
	if err != nil {
		panic(fmt.Sprintf("ops: %s on a %s tensor %v: %v", name, x.DType(), x.Shape(), err))
	}
	return Apply(name, attrs, Ts(x), Ts(y), nil)
}

// isQ reports whether x is a quantized tensor.
func isQ(x *tensor.Tensor) bool { return x != nil && x.DType().IsQuantized() }
