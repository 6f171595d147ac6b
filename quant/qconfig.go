// Package quant is the mode-independent core of quanta's quantization:
// QConfig (how to observe activations and weights), QConfigMapping (which
// parts of a model get which QConfig), the engine presets that reproduce
// PyTorch's defaults, and the BackendConfig table of what each engine
// quantizes. It imports neither nn nor graph, so eager mode and graph mode
// share it.
package quant

import (
	"github.com/quanta-go/quanta/quant/observer"
)

// ObserverFactory makes a fresh observer (or fake quantizer). QConfigs hold
// factories, never instances, so no two modules share statistics.
type ObserverFactory func() observer.Observer

// QConfig says how to quantize a module or op: a factory for the observer
// of its output activation, and one for its weight. A nil factory leaves
// that part unquantized. A nil *QConfig means "do not quantize".
type QConfig struct {
	Activation ObserverFactory
	Weight     ObserverFactory
	// Float16 marks float16 qconfigs (PyTorch's float16_dynamic_qconfig):
	// weights are stored in IEEE half precision and compute stays float32.
	Float16 bool
	// Name identifies a preset in messages (e.g. "x86 default").
	Name string
}

// Is16Bit reports whether an observer config's integer range needs more
// than 8 bits (a 16-bit qconfig such as Int16QConfig).
func Is16Bit(c observer.Config) bool {
	return c.HasRange && (c.QuantMax > 255 || c.QuantMin < -128)
}
