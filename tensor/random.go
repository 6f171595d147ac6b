package tensor

import (
	"math"
	"math/rand/v2"
)

// RNG is a seeded random source for initialisation, dropout and shuffling.
// The same seed gives the same sequence on every platform. It is not safe
// for concurrent use.
type RNG struct{ r *rand.Rand }

// NewRNG returns a generator seeded with seed.
func NewRNG(seed uint64) *RNG { return &RNG{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

// Float32 returns a uniform value in [0, 1).
func (g *RNG) Float32() float32 { return g.r.Float32() }

// Uniform returns a uniform value in [lo, hi).
func (g *RNG) Uniform(lo, hi float32) float32 { return lo + (hi-lo)*g.r.Float32() }

// Normal returns a standard normal value.
func (g *RNG) Normal() float32 { return float32(g.r.NormFloat64()) }

// IntN returns a uniform integer in [0, n).
func (g *RNG) IntN(n int) int { return g.r.IntN(n) }

// Perm returns a random permutation of [0, n).
func (g *RNG) Perm(n int) []int { return g.r.Perm(n) }

// Uint64 returns a uniform 64-bit value.
func (g *RNG) Uint64() uint64 { return g.r.Uint64() }

// Rand returns a float32 tensor with values uniform in [0, 1).
func Rand(g *RNG, shape ...int) *Tensor { return RandUniform(g, 0, 1, shape...) }

// RandUniform returns a float32 tensor with values uniform in [lo, hi).
func RandUniform(g *RNG, lo, hi float32, shape ...int) *Tensor {
	t := New(Float32, shape...)
	for i := range t.f32 {
		t.f32[i] = g.Uniform(lo, hi)
	}
	return t
}

// Randn returns a float32 tensor with standard normal values.
func Randn(g *RNG, shape ...int) *Tensor {
	t := New(Float32, shape...)
	for i := range t.f32 {
		t.f32[i] = g.Normal()
	}
	return t
}

// FanInOut returns PyTorch's fan_in and fan_out for a weight shape
// (torch.nn.init._calculate_fan_in_and_fan_out): dim 1 times the receptive
// field, and dim 0 times the receptive field.
func FanInOut(shape []int) (fanIn, fanOut int) {
	if len(shape) < 2 {
		panic("tensor: FanInOut: fan in and fan out need at least 2 dimensions")
	}
	rf := 1
	for _, d := range shape[2:] {
		rf *= d
	}
	return shape[1] * rf, shape[0] * rf
}

// KaimingUniform fills t as torch.nn.init.kaiming_uniform_ with
// leaky_relu gain for slope a and mode fan_in: U(-b, b) with
// b = gain*sqrt(3/fan_in), gain = sqrt(2/(1+a^2)). PyTorch's Linear and
// Conv default weight init is KaimingUniform with a = sqrt(5).
func KaimingUniform(g *RNG, t *Tensor, a float64) {
	fanIn, _ := FanInOut(t.Shape())
	gain := math.Sqrt(2 / (1 + a*a))
	bound := float32(gain * math.Sqrt(3/float64(fanIn)))
	for i := range t.F32() {
		t.f32[i] = g.Uniform(-bound, bound)
	}
}

// KaimingNormal fills t as torch.nn.init.kaiming_normal_ (relu, fan_in):
// N(0, 2/fan_in).
func KaimingNormal(g *RNG, t *Tensor) {
	fanIn, _ := FanInOut(t.Shape())
	std := float32(math.Sqrt(2 / float64(fanIn)))
	for i := range t.F32() {
		t.f32[i] = std * g.Normal()
	}
}

// XavierUniform fills t as torch.nn.init.xavier_uniform_ with gain:
// U(-b, b), b = gain*sqrt(6/(fan_in+fan_out)).
func XavierUniform(g *RNG, t *Tensor, gain float64) {
	fanIn, fanOut := FanInOut(t.Shape())
	bound := float32(gain * math.Sqrt(6/float64(fanIn+fanOut)))
	for i := range t.F32() {
		t.f32[i] = g.Uniform(-bound, bound)
	}
}

// XavierNormal fills t as torch.nn.init.xavier_normal_ with gain.
func XavierNormal(g *RNG, t *Tensor, gain float64) {
	fanIn, fanOut := FanInOut(t.Shape())
	std := float32(gain * math.Sqrt(2/float64(fanIn+fanOut)))
	for i := range t.F32() {
		t.f32[i] = std * g.Normal()
	}
}

// UniformFill fills t with U(lo, hi) (torch.nn.init.uniform_).
func UniformFill(g *RNG, t *Tensor, lo, hi float32) {
	for i := range t.F32() {
		t.f32[i] = g.Uniform(lo, hi)
	}
}

// NormalFill fills t with N(mean, std^2) (torch.nn.init.normal_).
func NormalFill(g *RNG, t *Tensor, mean, std float32) {
	for i := range t.F32() {
		t.f32[i] = mean + std*g.Normal()
	}
}
