package qdyn

import (
	"fmt"
	"math"
	"sync"

	"github.com/quanta-go/quanta/internal/kernels/qgemm"
)

type codeBuf struct{ b []uint8 }

var codePool = sync.Pool{New: func() any { return new(codeBuf) }}

// ScanActivations returns the qparams of rule r for m rows of k
// activations (row stride ldx): r.Choose over their min and max, with an
// empty input taken as the range [0, 0]. ok is false when the activations
// hold a NaN or ±Inf, which have no quantization parameters.
func ScanActivations(r Rule, m, k int, x []float32, ldx int) (p Params, ok bool) {
	if !r.Valid() {
		panic(fmt.Sprintf("qdyn: undefined rule %d", int(r)))
	}
	lo, hi := float32(0), float32(0)
	if m > 0 && k > 0 {
		var nan bool
		lo, hi, nan = MinMaxRows(m, k, x, ldx)
		if nan || math.IsInf(float64(lo), 0) || math.IsInf(float64(hi), 0) {
			return Params{}, false
		}
	}
	return r.Choose(lo, hi), true
}

// Linear is the dynamic quantized linear product on m rows of float
// activations x (row stride ldx, w.K values each) with prepacked int8
// weights w:
//
//	p      = ScanActivations(r, m, w.K, x, ldx)
//	a      = codes of x under p (QuantizeRows)
//	acc    = sum over q of (a[i][q] - p.ZeroPoint) * (w[j][q] - zw[j])   int32
//	y[i*ldy+j] = float32(acc)*float32(p.Scale*scaleW[j]) + bias[j]
//
// scaleW holds one weight scale (per-tensor) or w.N; bias is nil or w.N
// values. It returns the activation qparams and ok = true, or ok = false
// with y untouched when x holds a NaN or ±Inf. The codes live in a pooled
// buffer, so steady-state calls allocate no activation storage. Results do
// not depend on the thread count.
func Linear(r Rule, m int, x []float32, ldx int, w *qgemm.Packed, scaleW, bias []float32, y []float32, ldy int) (Params, bool) {
	k, n := w.K, w.N
	if len(scaleW) != 1 && len(scaleW) != n {
		panic(fmt.Sprintf("qdyn: Linear: %d weight scales for %d channels", len(scaleW), n))
	}
	if bias != nil && len(bias) != n {
		panic(fmt.Sprintf("qdyn: Linear: %d bias values for %d channels", len(bias), n))
	}
	if m > 0 && n > 0 && len(y) < (m-1)*ldy+n {
		panic(fmt.Sprintf("qdyn: Linear: output of length %d too short for %dx%d with stride %d", len(y), m, n, ldy))
	}
	p, ok := ScanActivations(r, m, k, x, ldx)
	if !ok || m == 0 || n == 0 {
		return p, ok
	}
	if k == 0 {
		// Every accumulator is 0 (qgemm's generic tier does not take K = 0).
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				sw := scaleW[0]
				if len(scaleW) > 1 {
					sw = scaleW[j]
				}
				var b float32
				if bias != nil {
					b = bias[j]
				}
				y[i*ldy+j] = float32(0*float32(p.Scale*sw)) + b
			}
		}
		return p, true
	}
	cb := codePool.Get().(*codeBuf)
	defer codePool.Put(cb)
	if cap(cb.b) < m*k {
		cb.b = make([]uint8, m*k)
	}
	a := cb.b[:m*k]
	QuantizeRows(m, k, x, ldx, a, p.Scale, p.ZeroPoint, p.QMin, p.QMax)
	qgemm.GemmF32(m, a, k, p.ZeroPoint, w, &qgemm.Dequant{ScaleA: p.Scale, ScaleW: scaleW, Bias: bias}, y, ldy)
	return p, true
}
