package exec

import (
	"fmt"
	"math"
	"slices"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// Resize (opsets 10 to 21) and Upsample (opsets 7 to 9) on float32
// tensors of any rank.
//
// Every mode ONNX defines is separable, so resizing runs one axis at a
// time: for each output index of an axis, a short table of (input index,
// weight) taps, built from the coordinate transformation and the mode, is
// applied along that axis. Nearest takes one tap (nearest_mode
// round_prefer_floor, round_prefer_ceil, floor or ceil); linear two taps
// (four or more with antialias); cubic four (more with antialias), with
// cubic_coeff_a and exclude_outside. Taps beyond the input repeat its edge,
// as the ONNX reference pads. With tf_crop_and_resize an output whose
// source coordinate leaves the input is extrapolation_value.
//
// Resize-10 and Upsample use the asymmetric transformation, and for
// nearest the rule of ONNX Runtime's opset-10 kernel: the floor of the
// source coordinate when upsampling, its ceiling when downsampling.

func init() {
	register("Resize", 10, func(c *CompileContext, n *graph.Node) (Kernel, error) { return compileResize(c, n, false) })
	register("Upsample", 7, func(c *CompileContext, n *graph.Node) (Kernel, error) { return compileResize(c, n, true) })
}

// resizeKernel is a compiled Resize or Upsample node.
type resizeKernel struct {
	opset          int64
	legacy         bool // Upsample or Resize-10
	mode           string
	ctm            string
	nearest        string
	cubicA         float64
	excludeOutside bool
	extrapolation  float32
	antialias      bool
	axes           []int64
	keepAspect     string
	attrScales     []float32 // Upsample-7
}

func compileResize(c *CompileContext, n *graph.Node, upsample bool) (Kernel, error) {
	k := &resizeKernel{opset: c.Opset("")}
	var err error
	if k.mode, err = n.StringAttr("mode", "nearest"); err != nil {
		return nil, err
	}
	switch k.mode {
	case "nearest", "linear":
	case "bilinear":
		if !upsample {
			return nil, fmt.Errorf("mode %q, want nearest, linear or cubic", k.mode)
		}
		k.mode = "linear"
	case "cubic":
		if upsample || k.opset < 11 {
			return nil, fmt.Errorf("mode cubic needs Resize at opset 11 or later")
		}
	default:
		return nil, fmt.Errorf("mode %q, want nearest, linear or cubic", k.mode)
	}
	if upsample || k.opset < 11 {
		k.legacy, k.ctm, k.nearest = true, "asymmetric", "simple"
		if upsample && k.opset < 9 {
			if err := nIn(n, 1, 1); err != nil {
				return nil, err
			}
			if k.attrScales, err = n.Floats("scales", nil); err != nil {
				return nil, err
			}
			if k.attrScales == nil {
				return nil, fmt.Errorf("attribute scales is required")
			}
			return k, nil
		}
		if err := nIn(n, 2, 2); err != nil {
			return nil, err
		}
		return k, nil
	}
	if err := nIn(n, 1, 4); err != nil {
		return nil, err
	}
	if k.ctm, err = n.StringAttr("coordinate_transformation_mode", "half_pixel"); err != nil {
		return nil, err
	}
	switch k.ctm {
	case "half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize":
	case "half_pixel_symmetric":
		if k.opset < 19 {
			return nil, fmt.Errorf("coordinate_transformation_mode half_pixel_symmetric needs opset 19")
		}
	default:
		return nil, fmt.Errorf("unknown coordinate_transformation_mode %q", k.ctm)
	}
	if k.nearest, err = n.StringAttr("nearest_mode", "round_prefer_floor"); err != nil {
		return nil, err
	}
	switch k.nearest {
	case "round_prefer_floor", "round_prefer_ceil", "floor", "ceil":
	default:
		return nil, fmt.Errorf("unknown nearest_mode %q", k.nearest)
	}
	a, err := n.Float("cubic_coeff_a", -0.75)
	if err != nil {
		return nil, err
	}
	k.cubicA = float64(a)
	ex, err := n.Int("exclude_outside", 0)
	if err != nil {
		return nil, err
	}
	k.excludeOutside = ex != 0
	if k.extrapolation, err = n.Float("extrapolation_value", 0); err != nil {
		return nil, err
	}
	if k.opset >= 18 {
		aa, err := n.Int("antialias", 0)
		if err != nil {
			return nil, err
		}
		k.antialias = aa != 0
		if k.axes, err = n.Ints("axes", nil); err != nil {
			return nil, err
		}
		if k.keepAspect, err = n.StringAttr("keep_aspect_ratio_policy", "stretch"); err != nil {
			return nil, err
		}
		switch k.keepAspect {
		case "stretch", "not_larger", "not_smaller":
		default:
			return nil, fmt.Errorf("unknown keep_aspect_ratio_policy %q", k.keepAspect)
		}
	}
	return k, nil
}

// floatsOf reads a float tensor's values (nil for an absent or empty one).
func floatsOf(what string, t *tensor.Tensor) ([]float64, error) {
	if t == nil || t.Numel() == 0 {
		return nil, nil
	}
	if err := wantFloat(what, t); err != nil {
		return nil, err
	}
	out := make([]float64, t.Numel())
	for i, v := range t.F32() {
		out[i] = float64(v)
	}
	return out, nil
}

// Run resizes the input.
func (k *resizeKernel) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	if err := wantFloat("X", x); err != nil {
		return nil, err
	}
	xs := x.Shape()
	r := len(xs)
	get := func(i int) *tensor.Tensor {
		if i < len(in) {
			return in[i]
		}
		return nil
	}
	var roiT, scalesT, sizesT *tensor.Tensor
	switch {
	case k.attrScales != nil:
	case k.legacy:
		scalesT = get(1)
	default:
		roiT, scalesT, sizesT = get(1), get(2), get(3)
	}
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	if k.axes != nil {
		var err error
		if axes, err = nnAxes(k.axes, r); err != nil {
			return nil, err
		}
	}
	scales := make([]float64, r)
	out := slices.Clone(xs)
	for i := range scales {
		scales[i] = 1
	}
	sc, err := floatsOf("scales", scalesT)
	if err != nil {
		return nil, err
	}
	if k.attrScales != nil {
		for _, v := range k.attrScales {
			sc = append(sc, float64(v))
		}
	}
	roi, err := floatsOf("roi", roiT)
	if err != nil {
		return nil, err
	}
	if k.ctm == "tf_crop_and_resize" && len(roi) != 2*len(axes) {
		return nil, fmt.Errorf("roi has %d values, want %d for tf_crop_and_resize", len(roi), 2*len(axes))
	}
	var sizes []int64
	if sizesT != nil && sizesT.Numel() > 0 {
		if sizes, err = ints64(sizesT); err != nil {
			return nil, fmt.Errorf("sizes: %w", err)
		}
	}
	switch {
	case sizes != nil && sc != nil:
		return nil, fmt.Errorf("only one of scales and sizes may be given")
	case sizes != nil:
		if len(sizes) != len(axes) {
			return nil, fmt.Errorf("sizes has %d values for %d axes", len(sizes), len(axes))
		}
		if k.keepAspect == "not_larger" || k.keepAspect == "not_smaller" {
			s := float64(sizes[0]) / float64(xs[axes[0]])
			for i, a := range axes {
				v := float64(sizes[i]) / float64(xs[a])
				if (k.keepAspect == "not_larger") == (v < s) {
					s = v
				}
			}
			for _, a := range axes {
				scales[a] = s
				out[a] = int(math.Floor(s*float64(xs[a]) + 0.5))
			}
		} else {
			for i, a := range axes {
				out[a] = int(sizes[i])
				scales[a] = float64(sizes[i]) / float64(xs[a])
			}
		}
	case sc != nil:
		if len(sc) != len(axes) {
			return nil, fmt.Errorf("scales has %d values for %d axes", len(sc), len(axes))
		}
		for i, a := range axes {
			if sc[i] <= 0 {
				return nil, fmt.Errorf("scales %v must be positive", sc)
			}
			scales[a] = sc[i]
			// floor(input * scale), also for tf_crop_and_resize (the ONNX
			// reference and ONNX Runtime do not scale by the roi's extent).
			out[a] = int(math.Floor(float64(xs[a]) * sc[i]))
		}
	default:
		return nil, fmt.Errorf("one of scales and sizes is required")
	}
	type axisTaps struct {
		a    int
		taps *resizeTaps
	}
	var plan []axisTaps
	gathers := true
	for i, a := range axes {
		if out[a] < 0 {
			return nil, fmt.Errorf("output size %d of axis %d is negative", out[a], a)
		}
		var r0, r1 float64
		if roi != nil {
			r0, r1 = roi[i], roi[i+len(axes)]
		}
		taps := k.taps(xs[a], out[a], scales[a], r0, r1)
		if taps.identity(xs[a]) {
			continue
		}
		plan = append(plan, axisTaps{a, taps})
		gathers = gathers && taps.single()
	}
	if gathers {
		// Pure gathers (nearest) commute: the last axis first gathers
		// elements of the smaller input, and the others then copy whole
		// rows.
		slices.Reverse(plan)
	}
	y := x
	for _, p := range plan {
		y = resizeAxis(f, y, p.a, p.taps, k.extrapolation)
	}
	if y == x {
		y = x.Clone()
	}
	return []*tensor.Tensor{y}, nil
}

// resizeTaps is the tap table of one axis: output j reads inputs
// idx[off[j]:off[j+1]] with weights w[...]; outside[j] marks an output set
// to the extrapolation value.
type resizeTaps struct {
	off     []int
	idx     []int
	w       []float32
	outside []bool
}

// identity reports whether the table copies an axis of length n.
func (t *resizeTaps) identity(n int) bool {
	if len(t.off)-1 != n {
		return false
	}
	for j := range n {
		if t.outside[j] || t.off[j+1]-t.off[j] != 1 || t.idx[t.off[j]] != j || t.w[t.off[j]] != 1 {
			return false
		}
	}
	return true
}

// source maps output index x of an axis resized from n to m with scale s
// to its input coordinate. As the ONNX reference, align_corners and
// tf_crop_and_resize divide by the unrounded output length s*n.
func (k *resizeKernel) source(x float64, n, m int, s, r0, r1 float64) float64 {
	mf := s * float64(n)
	switch k.ctm {
	case "half_pixel":
		return (x+0.5)/s - 0.5
	case "half_pixel_symmetric":
		adj := float64(m) / (s * float64(n))
		center := float64(n) / 2
		return center*(1-adj) + (x+0.5)/s - 0.5
	case "pytorch_half_pixel":
		if m > 1 {
			return (x+0.5)/s - 0.5
		}
		return 0
	case "align_corners":
		if mf == 1 {
			return 0
		}
		return x * float64(n-1) / (mf - 1)
	case "tf_half_pixel_for_nn":
		return (x + 0.5) / s
	case "tf_crop_and_resize":
		if mf != 1 {
			return r0*float64(n-1) + x*(r1-r0)*float64(n-1)/(mf-1)
		}
		return 0.5 * (r0 + r1) * float64(n-1)
	}
	return x / s // asymmetric
}

// taps builds the tap table of an axis resized from n to m.
func (k *resizeKernel) taps(n, m int, s, r0, r1 float64) *resizeTaps {
	t := &resizeTaps{off: make([]int, 1, m+1), outside: make([]bool, m)}
	clamp := func(i int) int { return min(max(i, 0), n-1) }
	for j := range m {
		x := k.source(float64(j), n, m, s, r0, r1)
		if k.ctm == "tf_crop_and_resize" && (x < 0 || x > float64(n-1)) {
			t.outside[j] = true
			t.off = append(t.off, len(t.idx))
			continue
		}
		switch k.mode {
		case "nearest":
			t.idx = append(t.idx, clamp(k.round(x, s)))
			t.w = append(t.w, 1)
		default:
			k.filterTaps(t, x, n, s)
		}
		t.off = append(t.off, len(t.idx))
	}
	return t
}

// round picks the nearest input index of coordinate x.
func (k *resizeKernel) round(x, s float64) int {
	f := math.Floor(x)
	switch k.nearest {
	case "simple":
		if s < 1 {
			return int(math.Ceil(x))
		}
		return int(f)
	case "floor":
		return int(f)
	case "ceil":
		return int(math.Ceil(x))
	case "round_prefer_ceil":
		if x-f == 0.5 {
			return int(f) + 1
		}
	default: // round_prefer_floor
		if x-f == 0.5 {
			return int(f)
		}
	}
	return int(math.Round(x))
}

// filterTaps appends the linear or cubic taps of coordinate x: weights
// K((i - x) * scale) for the inputs i of the kernel's support around x,
// where scale is 1, or min(s, 1) with antialias (the kernel stretched when
// downsampling), normalized to sum to 1.
func (k *resizeKernel) filterTaps(t *resizeTaps, x float64, n int, s float64) {
	sc := 1.0
	if k.antialias {
		sc = min(s, 1)
	}
	radius := 1.0
	if k.mode == "cubic" {
		radius = 2
	}
	// i0 is the input just left of x (x itself counts as right), as the
	// ONNX reference's neighbour choice.
	i0 := int(math.Ceil(x)) - 1
	start := int(math.Floor(-radius/sc)) + 1
	count := 2 - 2*start
	first := len(t.idx)
	var sum float64
	ws := make([]float64, 0, count)
	for c := range count {
		i := i0 + start + c
		d := math.Abs((float64(i) - x) * sc)
		var w float64
		if k.mode == "cubic" {
			a := k.cubicA
			switch {
			case d <= 1:
				w = ((a+2)*d-(a+3))*d*d + 1
			case d < 2:
				w = ((a*d-5*a)*d+8*a)*d - 4*a
			}
		} else {
			w = max(0, 1-d)
		}
		if k.excludeOutside && (i < 0 || i >= n) {
			w = 0
		}
		ws = append(ws, w)
		sum += w
		t.idx = append(t.idx, min(max(i, 0), n-1))
	}
	for _, w := range ws {
		if k.antialias || k.excludeOutside {
			if sum != 0 {
				w /= sum
			}
		}
		t.w = append(t.w, float32(w))
	}
	// Drop zero taps to save work.
	j := first
	for i := first; i < len(t.idx); i++ {
		if t.w[i] != 0 {
			t.idx[j], t.w[j] = t.idx[i], t.w[i]
			j++
		}
	}
	t.idx, t.w = t.idx[:j], t.w[:j]
}

// single reports whether every output reads one input with weight 1
// (nearest modes) and none is extrapolated.
func (t *resizeTaps) single() bool {
	m := len(t.off) - 1
	if len(t.idx) != m {
		return false
	}
	for j := 0; j < m; j++ {
		if t.outside[j] || t.off[j] != j || t.w[j] != 1 {
			return false
		}
	}
	return true
}

// resizeAxis applies a tap table along axis a of x.
func resizeAxis(f *Frame, x *tensor.Tensor, a int, t *resizeTaps, extra float32) *tensor.Tensor {
	xs := x.Shape()
	outer, n, inner := nnProd(xs[:a]), xs[a], nnProd(xs[a+1:])
	m := len(t.off) - 1
	ys := slices.Clone(xs)
	ys[a] = m
	xv := x.F32()
	if t.single() {
		y := f.allocF32(outer * m * inner)
		// One tap of weight 1 per output (nearest): a gather, exact since
		// 1*v == v.
		parallel.For(outer, max(1, 4096/max(m*inner, 1)), func(s, e int) {
			for o := s; o < e; o++ {
				src, dst := xv[o*n*inner:(o+1)*n*inner], y[o*m*inner:(o+1)*m*inner]
				if inner == 1 {
					for j := range dst {
						dst[j] = src[t.idx[j]]
					}
					continue
				}
				for j := 0; j < m; j++ {
					copy(dst[j*inner:(j+1)*inner], src[t.idx[j]*inner:(t.idx[j]+1)*inner])
				}
			}
		})
		return nnTensor(y, ys)
	}
	y := make([]float32, outer*m*inner)
	parallel.For(outer*m, max(1, 4096/max(inner, 1)), func(s, e int) {
		for oj := s; oj < e; oj++ {
			o, j := oj/m, oj%m
			dst := y[oj*inner : (oj+1)*inner]
			if t.outside[j] {
				for i := range dst {
					dst[i] = extra
				}
				continue
			}
			for p := t.off[j]; p < t.off[j+1]; p++ {
				src := xv[(o*n+t.idx[p])*inner : (o*n+t.idx[p]+1)*inner]
				w := t.w[p]
				if p == t.off[j] {
					for i, v := range src {
						dst[i] = w * v
					}
					continue
				}
				for i, v := range src {
					dst[i] += w * v
				}
			}
		}
	})
	return nnTensor(y, ys)
}
