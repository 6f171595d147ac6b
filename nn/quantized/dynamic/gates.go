package dynamic

import "math"

// Gate nonlinearities in float32, the precision PyTorch computes gates in.
// They are Cephes' expf and tanhf (range reduction and minimax
// polynomials), within 2.5 ulp of the exactly rounded results (see
// TestGateFunctions); every product is rounded explicitly, so no compiler
// may fuse it into a multiply-add and results are the same on every CPU.

const (
	log2e = 1.44269504088896341
	ln2Hi = 0.693359375
	ln2Lo = -2.12194440e-4
)

// expf returns e**x for x <= 88 (0 below -87, where the result would be
// subnormal).
func expf(x float32) float32 {
	if x < -87 {
		return 0
	}
	// n = floor(x*log2e + 0.5), |n| <= 127.
	v := float32(log2e*x) + 0.5
	n := int32(v)
	if float32(n) > v {
		n--
	}
	z := float32(n)
	x = x - float32(z*ln2Hi)
	x = x - float32(z*ln2Lo)
	xx := float32(x * x)
	p := float32(1.9875691500e-4 * x)
	p = float32((p+1.3981999507e-3)*x) + 8.3334519073e-3
	p = float32(p*x) + 4.1665795894e-2
	p = float32(p*x) + 1.6666665459e-1
	p = float32(p*x) + 5.0000001201e-1
	y := float32(p*xx) + x + 1
	return y * math.Float32frombits(uint32(n+127)<<23)
}

// sigmoid returns 1/(1+e**-v).
func sigmoid(v float32) float32 {
	if v < -88 {
		return 0
	}
	return 1 / (1 + expf(-v))
}

// tanh returns the hyperbolic tangent of v.
func tanh(v float32) float32 {
	a := v
	if a < 0 {
		a = -a
	}
	if a >= 10 {
		return float32(math.Copysign(1, float64(v)))
	}
	if a >= 0.625 {
		z := 1 - 2/(expf(2*a)+1)
		if v < 0 {
			z = -z
		}
		return z
	}
	z := float32(v * v)
	p := float32(-5.70498872745e-3 * z)
	p = float32((p+2.06390887954e-2)*z) - 5.37397155531e-2
	p = float32(p*z) + 1.33314422036e-1
	p = float32(p*z) - 3.33332819422e-1
	return float32(float32(p*z)*v) + v
}
