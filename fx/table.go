package fx

// lowerings maps the op names ops.Apply records to their lowering; it is
// the list of traceable ops (SupportedOps) and the op table of the package
// documentation.
var lowerings map[string]lowerFunc

func init() {
	lowerings = map[string]lowerFunc{
		// Neural-network ops (lower_nn.go).
		"Conv2d":                   lowerConv,
		"Conv1d":                   lowerConv,
		"ConvTranspose2d":          lowerConvTranspose,
		"Linear":                   lowerLinear,
		"MatMul":                   binary("MatMul"),
		"MaxPool2d":                lowerPool("MaxPool"),
		"AvgPool2d":                lowerPool("AveragePool"),
		"AdaptiveAvgPool2d":        lowerAdaptiveAvgPool,
		"BatchNorm":                lowerBatchNorm,
		"LayerNorm":                lowerLayerNorm,
		"GroupNorm":                lowerGroupNorm,
		"Embedding":                lowerEmbedding,
		"EmbeddingBag":             lowerEmbeddingBag,
		"UpsampleNearest2d":        lowerUpsample("nearest"),
		"UpsampleBilinear2d":       lowerUpsample("linear"),
		"Softmax":                  lowerSoftmax("Softmax"),
		"LogSoftmax":               lowerSoftmax("LogSoftmax"),
		"Dropout":                  refuse("Dropout in training mode: call nn.Eval on the model before tracing"),
		"FakeQuantize":             refuse("fake quantization: trace the float model"),
		"FakeQuantizeLearnable":    refuse("fake quantization: trace the float model"),
		"FakeQuantizeFloatQParams": refuse("fake quantization: trace the float model"),

		// Elementwise arithmetic.
		"Add":        binary("Add"),
		"Sub":        binary("Sub"),
		"Mul":        binary("Mul"),
		"Div":        binary("Div"),
		"Pow":        binary("Pow"),
		"Maximum":    binary("Max"),
		"Minimum":    binary("Min"),
		"AddScalar":  withScalar("Add"),
		"MulScalar":  withScalar("Mul"),
		"PowScalar":  withScalar("Pow"),
		"Neg":        unary("Neg"),
		"Abs":        unary("Abs"),
		"Exp":        unary("Exp"),
		"Log":        unary("Log"),
		"Sqrt":       unary("Sqrt"),
		"Reciprocal": unary("Reciprocal"),
		"Rsqrt":      lowerRsqrt,
		"Where":      lowerWhere,
		"Clamp":      lowerClip,

		// Activations.
		"ReLU":        unary("Relu"),
		"ReLU6":       lowerClip,
		"Hardtanh":    lowerClip,
		"Sigmoid":     unary("Sigmoid"),
		"Tanh":        unary("Tanh"),
		"Erf":         unary("Erf"),
		"Hardswish":   unary("HardSwish"),
		"Hardsigmoid": lowerHardsigmoid,
		"LeakyReLU":   lowerLeakyReLU,
		"ELU":         lowerELU,
		"GELU":        lowerGELU,
		"SiLU":        lowerSiLU,
		"Softplus":    lowerSoftplus,

		// Shape ops.
		"Reshape":     lowerReshape,
		"View":        lowerReshape,
		"Flatten":     lowerFlatten,
		"Squeeze":     lowerSqueeze,
		"Unsqueeze":   lowerUnsqueeze,
		"Transpose":   lowerTranspose,
		"Permute":     lowerPermute,
		"Slice":       lowerSlice,
		"Narrow":      lowerSlice,
		"Concat":      lowerConcat,
		"Stack":       lowerStack,
		"Split":       lowerSplit,
		"Chunk":       lowerSplit,
		"IndexSelect": lowerIndexSelect,
		"Gather":      lowerGatherElements,
		"Pad":         lowerPad,
		"Expand":      lowerExpand,
		"Repeat":      lowerRepeat,

		// Reductions.
		"Sum":     lowerReduce("ReduceSum"),
		"Mean":    lowerReduce("ReduceMean"),
		"Max":     lowerReduce("ReduceMax"),
		"Min":     lowerReduce("ReduceMin"),
		"SumAll":  lowerReduce("ReduceSum"),
		"MeanAll": lowerReduce("ReduceMean"),
		"Var":     lowerVar,
	}
}

// unary maps an op to an ONNX operator of one input.
func unary(opType string) lowerFunc {
	return func(e *emitter, _ any) error {
		x, err := e.need(0)
		if err != nil {
			return err
		}
		e.emit1(opType, nil, x)
		return nil
	}
}

// binary maps an op to an ONNX operator of two inputs with the same
// broadcasting (NumPy's) as the op.
func binary(opType string) lowerFunc {
	return func(e *emitter, _ any) error {
		a, b, err := e.need2()
		if err != nil {
			return err
		}
		e.emit1(opType, nil, a, b)
		return nil
	}
}
