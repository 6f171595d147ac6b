package demo

import (
	"context"
	"fmt"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/data"
	"github.com/quanta-go/quanta/fx"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/onnx"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// This file holds the demo's graph-mode rows: the same float model
// quantized by package fx (PyTorch's prepare_fx / convert_fx), with no
// QuantStub/DeQuantStub use (they trace as nothing) and no fuse list.

// graphMode measures the graph-mode static and QAT forms of the float
// model into rep.
func graphMode(ctx context.Context, float *Net, trainSet, testSet data.Dataset, cfg Config, prog Progress, rep *Report) error {
	static, err := quantizeFXStatic(ctx, float, trainSet, cfg, prog)
	if err != nil {
		return err
	}
	if rep.FXStatic, err = measure(ctx, "fx_static", static, testSet, cfg, prog); err != nil {
		return err
	}
	q, err := quantizeFXQAT(ctx, float, trainSet, cfg, prog)
	if err != nil {
		return err
	}
	rep.FXQAT, err = measure(ctx, "fx_qat", q, testSet, cfg, prog)
	return err
}

// fxConfig returns the engine's default QConfigMapping (the QAT one when
// qat is set) and BackendConfig.
func fxConfig(engine string, qat bool) (*quant.QConfigMapping, *quant.BackendConfig, error) {
	var mapping *quant.QConfigMapping
	var err error
	if qat {
		mapping, err = quant.DefaultQATQConfigMapping(engine)
	} else {
		mapping, err = quant.DefaultQConfigMapping(engine)
	}
	if err != nil {
		return nil, nil, err
	}
	backend, err := quant.GetBackendConfig(engine)
	if err != nil {
		return nil, nil, err
	}
	return mapping, backend, nil
}

// quantizeFXStatic is the static row in graph mode: fx.PrepareFX with the
// engine's default mapping, calibration on the same first cfg.Calibration
// training digits in the same batches, fx.ConvertFX.
func quantizeFXStatic(ctx context.Context, float *Net, trainSet data.Dataset, cfg Config, prog Progress) (*fx.QuantizedModule, error) {
	mapping, backend, err := fxConfig(cfg.Engine, false)
	if err != nil {
		return nil, err
	}
	calib, err := data.Subset(trainSet, data.Range(0, cfg.Calibration))
	if err != nil {
		return nil, err
	}
	loader, err := data.NewDataLoader(calib, data.LoaderOptions{BatchSize: 64})
	if err != nil {
		return nil, err
	}
	example, _, err := calib.Get(0)
	if err != nil {
		return nil, err
	}
	m, err := fx.PrepareFX(float, mapping, example.Reshape(1, 1, 28, 28), backend)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	prog.Begin("calibrate fx_static ("+cfg.Engine+")", loader.Len())
	it := loader.Epoch(0)
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		x, _ := it.Batch()
		if _, err := runNoGrad(m, x); err != nil {
			return nil, fmt.Errorf("demo: calibrating in graph mode: %w", err)
		}
		prog.Step(1)
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	q, err := fx.ConvertFX(m)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	prog.End(fmt.Sprintf("%d digits observed at %d points, converted to a QDQ graph", calib.Len(), len(m.Prepared.Points)))
	return q, nil
}

// runNoGrad runs the observed module on x without autograd.
func runNoGrad(m *fx.ObservedModule, x *tensor.Tensor) (out []*tensor.Tensor, err error) {
	autograd.NoGrad(func() { out, err = m.Run(x) })
	return out, err
}

// quantizeFXQAT is the QAT row in graph mode: fx.PrepareQATFX with the
// engine's default QAT mapping (batch norms folded into the convolution
// weights, which train with fake quantization), cfg.QATEpochs epochs of
// Adam at cfg.QATLR as the eager QAT row, observers frozen after three
// quarters of the run, fx.ConvertFX.
func quantizeFXQAT(ctx context.Context, float *Net, trainSet data.Dataset, cfg Config, prog Progress) (*fx.QuantizedModule, error) {
	mapping, backend, err := fxConfig(cfg.Engine, true)
	if err != nil {
		return nil, err
	}
	example, _, err := trainSet.Get(0)
	if err != nil {
		return nil, err
	}
	m, err := fx.PrepareQATFX(float, mapping, example.Reshape(1, 1, 28, 28), backend)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	qcfg := cfg
	qcfg.Epochs, qcfg.LR = cfg.QATEpochs, cfg.QATLR
	total := qcfg.Epochs * (cfg.Train / cfg.BatchSize)
	hooks := map[int]func(){3 * total / 4: func() { m.EnableObserver(false) }}
	if err := trainLoop(ctx, m, trainSet, qcfg, prog, "fx_qat ", hooks); err != nil {
		return nil, err
	}
	q, err := fx.ConvertFX(m)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	return q, nil
}

// sizeOf returns the saved size of a model: the ONNX file of a graph-mode
// quantized model, else the safetensors state dict (savedSize).
func sizeOf(m nn.Layer) (int64, error) {
	if q, ok := m.(*fx.QuantizedModule); ok {
		b, err := onnx.Encode(q.Model())
		if err != nil {
			return 0, fmt.Errorf("demo: encoding the QDQ model: %w", err)
		}
		return int64(len(b)), nil
	}
	return savedSize(m)
}
