// Package fx traces Go models into quanta's graph IR, after torch.fx: it
// runs a model once on example inputs with an ops.Tracer installed, and
// turns every op the dispatcher (ops.Apply) records into graph nodes with
// ONNX operator semantics. Tracing is graph mode's front door for Go
// models: the traced graph can be run by graph/exec, exported with
// package onnx, and quantized by graph-mode passes.
//
// # What a traced model holds
//
//   - Inputs: the example tensors, named "input" (one input) or "input_0",
//     "input_1", ... (several), with the examples' element types and
//     shapes.
//   - Initializers: the parameters and buffers of the root module that ops
//     read, named by their state-dict key ("features.0.0.weight"); other
//     tensors ops read that the trace did not produce (masks and scalars
//     made during forward) as "const_0", "const_1", ...; and constants the
//     op mapping needs (shapes, axes, clip bounds), named after the module
//     and role ("fc/Reshape_shape"). Every initializer is a copy taken
//     when the op ran, so the graph does not change when the model does.
//   - Nodes: one or a few per recorded op (see the table below and
//     SupportedOps), ONNX operators of the default domain at opset 17.
//     Node.ModulePath and Node.ModuleType name the innermost module call
//     that was active when the op ran (paths relative to the root, so
//     "features.0.0" and "Conv2d"), and node names join that path with the
//     operator ("features.0.0/Conv", "features.0.0/Conv_1" if repeated).
//   - Outputs: the tensors the model returned, named "output" or
//     "output_0", "output_1", ...
//
// Nodes no output depends on are removed (graph.EliminateDeadCode), and
// the model passes graph.Verify.
//
// # Op mapping (opset 17)
//
//	Conv2d, Conv1d          Conv (kernel_shape, strides, pads, dilations, group); unbatched inputs are
//	                        unsqueezed to N=1 and squeezed back (also for pooling)
//	ConvTranspose2d         ConvTranspose (+ output_padding)
//	Linear                  Gemm(transB=1) for a 2-D input, else Transpose(weight), MatMul, Add(bias)
//	MatMul                  MatMul
//	MaxPool2d               MaxPool (kernel_shape, strides, pads, dilations, ceil_mode when needed)
//	AvgPool2d               AveragePool (count_include_pad, ceil_mode when needed)
//	AdaptiveAvgPool2d       GlobalAveragePool (1x1), AveragePool (output divides input), else an error
//	BatchNorm (evaluation)  BatchNormalization (scale 1 / bias 0 constants when absent)
//	LayerNorm               LayerNormalization (axis = -len(normalized shape))
//	GroupNorm               Reshape, InstanceNormalization, Shape, Reshape, Unsqueeze, Mul, Add
//	Embedding               Gather(weight, idx, axis=0)
//	EmbeddingBag (2-D)      Gather, ReduceSum/ReduceMean/ReduceMax over the bag (offsets: an error)
//	UpsampleNearest2d       Resize(nearest, asymmetric, floor) with scales or sizes
//	UpsampleBilinear2d      Resize(linear, pytorch_half_pixel or align_corners) with scales or sizes
//	Softmax, LogSoftmax     Softmax, LogSoftmax (axis)
//	Add Sub Mul Div Pow     Add Sub Mul Div Pow; Maximum, Minimum: Max, Min; Where: Where
//	AddScalar MulScalar     Add, Mul, Pow with a scalar initializer
//	  PowScalar
//	Neg Abs Exp Log Sqrt    Neg Abs Exp Log Sqrt Reciprocal; Rsqrt: Sqrt, Reciprocal
//	  Reciprocal
//	ReLU, Sigmoid, Tanh,    Relu, Sigmoid, Tanh, Erf, HardSwish
//	  Erf, Hardswish
//	ReLU6, Hardtanh, Clamp  Clip with scalar min and max initializers
//	Hardsigmoid             HardSigmoid(alpha=1/6, beta=0.5)
//	LeakyReLU, ELU          LeakyRelu(alpha), Elu(alpha)
//	GELU                    Div, Erf, Add, Mul, Mul (x*(erf(x/sqrt2)+1)*0.5; ONNX has Gelu only from
//	                        opset 20); the tanh form as Mul, Add, Tanh, ... of its formula
//	SiLU                    Sigmoid, Mul
//	Softplus                Softplus (with Mul/Div for beta, Greater/Where for a threshold below 20)
//	Reshape, View           Reshape with the recorded shape
//	Flatten                 Flatten(axis=1) for (1, -1), else Reshape [0,..., -1, trailing sizes]
//	Squeeze, Unsqueeze      Squeeze of the size-1 dimensions removed, Unsqueeze (axes inputs)
//	Transpose, Permute      Transpose(perm)
//	Slice, Narrow           Slice (starts, ends, axes, steps)
//	Concat, Stack           Concat; Stack: Unsqueeze each input, Concat
//	Split, Chunk            Split with the recorded sizes
//	IndexSelect, Gather     Gather(axis), GatherElements(axis)
//	Pad                     Pad(constant) with ONNX's pads order
//	Expand, Repeat          Expand to the traced shape; Tile (after Unsqueeze for extra dimensions)
//	Sum, Mean, SumAll,      ReduceSum (axes input), ReduceMean (axes attribute)
//	  MeanAll
//	Max, Min (values)       ReduceMax, ReduceMin
//	Var                     ReduceMean, Sub, Mul, ReduceSum, Div by N or N-1
//	Dropout (training),     errors: put the model in evaluation mode, trace the float model
//	  FakeQuantize*
//
// # Limits of tracing
//
// A trace records what one run did, as torch.jit.trace does: Go control
// flow is unrolled for the example, and shapes the model computes from its
// input (a Reshape to [N, -1] with N read from the input) become literals,
// so the traced model runs on inputs of the example's shapes. Only work
// done through package ops is seen: a tensor a model computes from its
// input with package tensor directly, outside ops, is read by the next op
// as a constant. A module whose output was not produced by a traced op
// while its input was is reported as an error (quantized modules and other
// kernels outside the dispatcher), and so are ops on quantized tensors,
// fake quantization and training-mode BatchNorm and Dropout: trace the
// float model in evaluation mode (nn.Eval). The model runs in the mode it
// is in, so a model left in training mode has updated its BatchNorm
// running statistics by the time the trace reports the error. Of Max and
// Min along a dimension only the values are traced, not the indices.
//
// Tracing is process-wide, because the tracer is (ops.SetTracer): while a
// trace runs, ops called by other goroutines are recorded into it too.
// Trace and TraceFunc hold a package lock, so two traces never overlap;
// do not run other models concurrently with a trace.
package fx
