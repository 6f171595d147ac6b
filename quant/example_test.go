package quant_test

import (
	"fmt"

	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// Engine presets and per-module rules, as with PyTorch's
// get_default_qconfig_mapping("x86").set_module_name("classifier", None).
func ExampleDefaultQConfigMapping() {
	m, err := quant.DefaultQConfigMapping("x86")
	if err != nil {
		panic(err)
	}
	m.SetModuleName("classifier", nil) // keep the classifier in float

	conv := m.Lookup("features.0", "Conv2d")
	act := conv.Activation() // a fresh HistogramObserver with reduce_range
	act.Observe(tensor.FromFloat32([]float32{-1, 0, 1, 3}))
	q, _ := act.CalculateQParams()
	fmt.Printf("features.0: %s, activations %d..%d\n", conv.Name, q.QuantMin, q.QuantMax)
	fmt.Println("classifier.fc quantized:", m.Lookup("classifier.fc", "Linear") != nil)

	_, err = quant.DefaultQConfig("tpu")
	fmt.Println(err)
	// Output:
	// features.0: x86 default, activations 0..127
	// classifier.fc quantized: false
	// quant: unknown engine "tpu" (want one of quanta, x86, fbgemm, qnnpack, onednn)
}
