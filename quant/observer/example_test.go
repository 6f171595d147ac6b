package observer_test

import (
	"fmt"

	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

func ExampleNewMinMax() {
	o := observer.NewMinMax(observer.Config{}) // quint8, per-tensor affine
	_ = o.Observe(tensor.FromFloat32([]float32{-1, 0.5, 3}))
	q, _ := o.CalculateQParams()
	fmt.Println(q.Scale[0], q.ZeroPoint[0], q.QuantMin, q.QuantMax)
	// Output: 0.015686275 64 0 255
}

func ExampleNewPerChannelMinMax() {
	// Symmetric int8 weights, one scale per output channel (axis 0).
	o := observer.NewPerChannelMinMax(observer.Config{Dtype: tensor.QInt8, QScheme: tensor.PerChannelSymmetric})
	w := tensor.FromFloat32([]float32{0.5, -1, 0.25, 2, -0.1, 0.3}, 2, 3)
	_ = o.Observe(w)
	q, _ := o.CalculateQParams()
	fmt.Println(q.Scale, q.ZeroPoint)
	// Output: [0.007843138 0.015686275] [0 0]
}

func ExampleNewHistogram() {
	h := observer.NewHistogram(observer.HistogramConfig{}) // 2048 bins, as PyTorch
	x := make([]float32, 1000)
	for i := range x {
		x[i] = float32(i%100) / 10 // 0 .. 9.9
	}
	x[0] = 100 // one outlier
	_ = h.Observe(tensor.FromFloat32(x))
	q, _ := h.CalculateQParams()
	// PyTorch 1.13's HistogramObserver gives the same bits; its search
	// stops early, so one outlier in a thousand is barely clipped.
	fmt.Printf("scale %v (MinMax: %v)\n", q.Scale[0], float32(100)/255)
	// Output: scale 0.3919654 (MinMax: 0.39215687)
}

// Calibration sharded across processes: each shard serializes its
// observer, and one process decodes and merges them.
func ExampleDecodeObserver() {
	var states [][]byte
	for shard := 0; shard < 3; shard++ {
		o := observer.NewPercentile(observer.PercentileConfig{Percentile: 99.9})
		x := make([]float32, 1000)
		for i := range x {
			x[i] = float32(i+shard*1000) / 3000
		}
		_ = o.Observe(tensor.FromFloat32(x))
		b, _ := o.MarshalBinary()
		states = append(states, b)
	}
	merged, _ := observer.DecodeObserver(states[0])
	for _, b := range states[1:] {
		o, _ := observer.DecodeObserver(b)
		_ = merged.Merge(o)
	}
	q, _ := merged.CalculateQParams()
	fmt.Println(q.Scale[0], q.ZeroPoint[0])
	// Output: 0.0039202617 0
}
