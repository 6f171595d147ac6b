// Package quantize is graph-mode quantization on quanta's graph IR, after
// PyTorch's FX graph mode (prepare_fx / convert_fx) and ONNX Runtime's QDQ
// quantizer: it works on any graph.Model, whether traced from a Go model
// (package fx) or imported from ONNX, and writes QDQ models (DESIGN.md
// principle 5) that quanta's executor runs on int8 kernels and ONNX
// Runtime runs as they are.
//
// The flow is PyTorch's:
//
//	p, err := quantize.Prepare(model, quantize.Options{Engine: "x86"})
//	for _, feed := range calibration {
//		err = p.Observe(ctx, feed) // streaming: one feed at a time
//	}
//	q, err := quantize.Convert(p) // a QDQ *graph.Model
//
// Prepare copies the model (the input is never changed), raises its opset
// to 13 when it is older (per-channel DequantizeLinear needs 13), folds
// inference BatchNormalization into the Conv/ConvTranspose/Gemm before it,
// finds the BackendConfig's fusable patterns (Conv+ReLU, Linear+ReLU,
// Add+ReLU, MatMul+bias, ...) and gives every quantizable unit a QConfig
// from the QConfigMapping: by module name (the traced module path, or the
// scope an exporter wrote into an ONNX node name, "/features/features.3/
// conv/Conv" giving "features.3.conv"), regex, object type (the traced
// module type, the BackendConfig op kind such as "Conv2d", or the ONNX op
// type such as "Conv"), and order; a nil QConfig keeps a unit float.
//
// Observers sit on tensor edges, one per value, shared where ops must
// share qparams: a Concat's inputs and output, and the output of pass-
// through ops (MaxPool, Reshape, Transpose, Relu, ...) with their input.
// Sigmoid, HardSigmoid, Softmax and Tanh outputs get PyTorch's fixed
// qparams. Chains of element-wise ops on one activation and scalar
// constants (HardSwish written as x*Clip(x+3,0,6)/6, say) are one unit,
// observed at their input and output only, which is how the executor runs
// them (a 256-entry table).
//
// Which units are quantized, beyond the QConfig: ops with weights (Conv,
// ConvTranspose, Gemm and MatMul with a constant weight) always are;
// activation-only ops (element-wise, pooling, shape ops, Concat, Resize,
// the MatMul of two activations, ...) are quantized when one of their
// inputs is already quantized, so int8 regions grow from the weighted ops
// and float-only computations (a LayerNormalization written out as
// ReduceMean, Sub, Pow, Sqrt, Div) are not turned into a chain of lossy
// quantize-dequantize steps. Activation-only ops whose output is a graph
// output, or is read only by float ops, stay float. Weighted ops always
// quantize their output, as PyTorch's convert does. These are choices
// PyTorch's FX leaves to hand-written configs; quanta makes them by
// default and documents them here.
//
// Input equalization keeps 8-bit activations accurate on mobile CNNs,
// whose channels can span ranges a hundred times apart after batch-norm
// folding (equalize.go): a depthwise convolution's input channels are
// scaled to one range and its per-channel weights divided to match
// (PyTorch's input-weight equalization, applied by default;
// Options.NoEqualize turns it off). Per-tensor activation qparams stay
// everywhere: ONNX Runtime 1.30's QDQ fusion fails on per-channel
// activation zero points. An element-wise chain after a Conv (a learned
// affine and a written-out HardSwish) is its own unit: the Conv's output
// is quantized and the chain runs as a 256-entry table, which measured
// both faster and (on the PP-OCR recognizer) more accurate than one unit
// with a float epilogue.
//
// Mixed precision: Options.Int16 (or a 16-bit qconfig such as
// quant.Int16QConfig in the mapping) puts chosen layers, and the
// element-wise ops that read only their outputs, at 16 bits: uint16
// activations and per-channel int16 weights, written as opset-21 QDQ
// that ONNX Runtime runs as it is. Values an 8-bit unit reads or writes
// stay 8-bit. Some models need it: the PP-OCRv4 recognizer's text matches
// float on 0.839 of the evaluation lines at 8 bits and on 0.991 with its
// stem and last stage at 16 bits.
//
// Calibration streams: Observe runs the prepared model on one feed and
// updates the observers; observers' state merges (Prepared.Merge) and
// serializes (MarshalBinary), so calibration can be sharded across
// goroutines, processes or machines (DESIGN.md principle 6).
//
// QuantizeDynamic is dynamic quantization: weights of Conv, Gemm and
// MatMul become int8 initializers behind DequantizeLinear, and their
// activation input goes through DynamicQuantizeLinear (ONNX's per-call
// uint8 rule) and DequantizeLinear; LSTM and GRU weights are stored int8
// (weight-only) and computed in float.
//
// Names in the written file: a quantized value v becomes QuantizeLinear "v_QuantizeLinear" ->
// "v_quantized" -> DequantizeLinear "v_DequantizeLinear" ->
// "v_dequantized"; a weight W becomes the int8 initializer "W_quantized"
// with "W_scale" and "W_zero_point"; a bias B of Conv, ConvTranspose or
// Gemm becomes the int32 "B_quantized" with scale float32(s_x*s_w[c]).
// Original nodes keep their names and op types.
package quantize
