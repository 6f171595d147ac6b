package eager

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/quantizable"
)

// init registers the quantizable forms of nn/quantizable: Prepare swaps an
// nn.LSTM, nn.LSTMCell or nn.MultiheadAttention that has a qconfig for its
// form built from Linear, FloatFunctional, Sigmoid/Tanh and stub parts,
// observes those parts, and Convert quantizes them. PyTorch reaches these
// forms only through custom-module configurations; here they are part of
// the ordinary static flow.
func init() {
	quantizableSwaps["LSTM"] = func(f nn.Module) (nn.Module, error) {
		l, ok := f.(*nn.LSTM)
		if !ok {
			return nil, fmt.Errorf("a %T reports type LSTM but is not an *nn.LSTM", f)
		}
		return quantizable.LSTMFromFloat(l)
	}
	quantizableSwaps["LSTMCell"] = func(f nn.Module) (nn.Module, error) {
		c, ok := f.(*nn.LSTMCell)
		if !ok {
			return nil, fmt.Errorf("a %T reports type LSTMCell but is not an *nn.LSTMCell", f)
		}
		return quantizable.LSTMCellFromFloat(c)
	}
	quantizableSwaps["MultiheadAttention"] = func(f nn.Module) (nn.Module, error) {
		a, ok := f.(*nn.MultiheadAttention)
		if !ok {
			return nil, fmt.Errorf("a %T reports type MultiheadAttention but is not an *nn.MultiheadAttention", f)
		}
		return quantizable.MultiheadAttentionFromFloat(a)
	}
}
