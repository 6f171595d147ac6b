package nn

import (
	"math"
	"sync"

	"github.com/quanta-go/quanta/tensor"
)

// DefaultSeed seeds the global generator at program start.
const DefaultSeed = 0

var global = struct {
	sync.Mutex
	rng *tensor.RNG
}{rng: tensor.NewRNG(DefaultSeed)}

// ManualSeed reseeds the global generator that constructors use when their
// options carry no RNG (torch.manual_seed). Building the same model after
// the same seed gives the same weights.
func ManualSeed(seed uint64) {
	global.Lock()
	global.rng = tensor.NewRNG(seed)
	global.Unlock()
}

// withRNG runs fn with r, or with the global generator (locked) when r is
// nil.
func withRNG(r *tensor.RNG, fn func(g *tensor.RNG)) {
	if r != nil {
		fn(r)
		return
	}
	global.Lock()
	defer global.Unlock()
	fn(global.rng)
}

// childRNG returns r, or a new generator seeded from the global one when r
// is nil (for modules such as Dropout that draw random numbers at every
// forward call).
func childRNG(r *tensor.RNG) *tensor.RNG {
	if r != nil {
		return r
	}
	global.Lock()
	defer global.Unlock()
	return tensor.NewRNG(global.rng.Uint64())
}

// newParam returns a zero float32 tensor of shape that requires grad.
func newParam(shape ...int) *tensor.Tensor {
	return tensor.Zeros(shape...).SetRequiresGrad(true)
}

// initLinearLike fills weight with kaiming_uniform(a=sqrt(5)) and bias (if
// non-nil) with U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default
// initialization of Linear and Conv layers.
func initLinearLike(g *tensor.RNG, weight, bias *tensor.Tensor) {
	if weight.Numel() > 0 {
		tensor.KaimingUniform(g, weight, math.Sqrt(5))
	}
	if bias != nil {
		fanIn, _ := tensor.FanInOut(weight.Shape())
		var bound float32
		if fanIn > 0 {
			bound = float32(1 / math.Sqrt(float64(fanIn)))
		}
		tensor.UniformFill(g, bias, -bound, bound)
	}
}

// Pair returns [2]int{k, k}, for square kernels, strides and paddings.
func Pair(k int) [2]int { return [2]int{k, k} }

func or1(v int) int {
	if v == 0 {
		return 1
	}
	return v
}

func or1Pair(p [2]int) [2]int { return [2]int{or1(p[0]), or1(p[1])} }

func orF(v, def float32) float32 {
	if v == 0 {
		return def
	}
	return v
}
