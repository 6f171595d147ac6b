package exec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// Einsum (opset 12 on) in float32, for any equation NumPy's einsum
// accepts without broadcasting letters: explicit or implicit output,
// ellipses (broadcast, right-aligned), repeated labels within an operand
// (diagonals), any number of operands. Each operand first loses its
// diagonals and the labels no other operand nor the output uses (summed);
// operands are then contracted left to right, each pair as one batched
// matrix product (batch labels, kept labels of each side, summed labels).

func init() {
	register("Einsum", 12, compileEinsum)
}

// einsumKernel is a compiled Einsum node.
type einsumKernel struct {
	inputs []string // each operand's term
	output string   // the output term ("" with explicit = false: implicit)
	arrow  bool
}

func compileEinsum(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 1, -1); err != nil {
		return nil, err
	}
	eq, err := n.StringAttr("equation", "")
	if err != nil {
		return nil, err
	}
	eq = strings.ReplaceAll(eq, " ", "")
	k := &einsumKernel{}
	lhs := eq
	if i := strings.Index(eq, "->"); i >= 0 {
		lhs, k.output, k.arrow = eq[:i], eq[i+2:], true
	}
	k.inputs = strings.Split(lhs, ",")
	if len(k.inputs) != len(n.Inputs) {
		return nil, fmt.Errorf("equation %q has %d operands, the node %d inputs", eq, len(k.inputs), len(n.Inputs))
	}
	for _, t := range append(slices.Clone(k.inputs), k.output) {
		if err := einsumCheckTerm(t); err != nil {
			return nil, fmt.Errorf("equation %q: %w", eq, err)
		}
	}
	return k, nil
}

func einsumCheckTerm(t string) error {
	rest := strings.Replace(t, "...", "", 1)
	if strings.Contains(rest, ".") {
		return fmt.Errorf("term %q has a misplaced '.'", t)
	}
	for _, r := range rest {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("term %q has the character %q", t, r)
		}
	}
	return nil
}

// einsumLabels expands a term for an operand of rank r: letters are their
// code points, the ellipsis dimensions are -1, -2, ... counted from the
// last of ell ellipsis dimensions in all (so ellipses align right).
func einsumLabels(term string, r, ell int) ([]int, error) {
	var labels []int
	pre, post, hasEll := strings.Cut(term, "...")
	if !hasEll {
		for _, c := range term {
			labels = append(labels, int(c))
		}
		if len(labels) != r {
			return nil, fmt.Errorf("term %q has %d labels for an operand of rank %d", term, len(labels), r)
		}
		return labels, nil
	}
	e := r - len(pre) - len(post)
	if e < 0 {
		return nil, fmt.Errorf("term %q has too many labels for an operand of rank %d", term, r)
	}
	for _, c := range pre {
		labels = append(labels, int(c))
	}
	for j := range e {
		labels = append(labels, -(ell - e + j + 1))
	}
	for _, c := range post {
		labels = append(labels, int(c))
	}
	return labels, nil
}

// einsumOperand is a tensor whose dimensions carry labels.
type einsumOperand struct {
	t      *tensor.Tensor
	labels []int
}

// Run evaluates the equation.
func (k *einsumKernel) Run(_ *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	ell := 0
	for i, t := range in {
		if err := wantFloat(fmt.Sprintf("input %d", i), t); err != nil {
			return nil, err
		}
		if strings.Contains(k.inputs[i], "...") {
			ell = max(ell, t.NDim()-(len(k.inputs[i])-3))
		}
	}
	sizes := map[int]int{}
	count := map[int]int{}
	opsIn := make([]einsumOperand, len(in))
	for i, t := range in {
		labels, err := einsumLabels(k.inputs[i], t.NDim(), ell)
		if err != nil {
			return nil, err
		}
		seen := map[int]bool{}
		for d, l := range labels {
			s := t.Dim(d)
			if old, ok := sizes[l]; ok && old != s {
				if l >= 0 || (old != 1 && s != 1) {
					return nil, fmt.Errorf("label %s has sizes %d and %d", einsumName(l), old, s)
				}
				s = max(s, old)
			}
			sizes[l] = s
			if !seen[l] {
				seen[l] = true
				count[l]++
			}
		}
		opsIn[i] = einsumOperand{t, labels}
	}
	var out []int
	if k.arrow {
		var err error
		if out, err = einsumLabels(k.output, len(k.output)-3*strings.Count(k.output, "...")+ell*strings.Count(k.output, "..."), ell); err != nil {
			return nil, err
		}
		for _, l := range out {
			if _, ok := sizes[l]; !ok {
				return nil, fmt.Errorf("output label %s is in no input", einsumName(l))
			}
		}
		if !einsumUnique(out) {
			return nil, fmt.Errorf("output term %q repeats a label", k.output)
		}
	} else {
		for j := range ell {
			out = append(out, -(j + 1))
		}
		var letters []int
		for l, c := range count {
			if l >= 0 && c == 1 && !einsumRepeated(opsIn, l) {
				letters = append(letters, l)
			}
		}
		slices.Sort(letters)
		out = append(out, letters...)
	}
	// Per operand: diagonals, then labels used nowhere else.
	for i := range opsIn {
		o := einsumDiagonal(opsIn[i])
		var sum []int
		for d, l := range o.labels {
			if !slices.Contains(out, l) && !einsumUsedElsewhere(opsIn, i, l) {
				sum = append(sum, d)
			}
		}
		opsIn[i] = einsumSum(o, sum)
	}
	cur := opsIn[0]
	for i := 1; i < len(opsIn); i++ {
		keep := slices.Clone(out)
		for _, o := range opsIn[i+1:] {
			keep = append(keep, o.labels...)
		}
		cur = einsumContract(cur, opsIn[i], keep, sizes)
		if cur.t == nil {
			return nil, fmt.Errorf("operands do not contract")
		}
	}
	// Sum what the output drops, then order as the output.
	var sum []int
	for d, l := range cur.labels {
		if !slices.Contains(out, l) {
			sum = append(sum, d)
		}
	}
	cur = einsumSum(cur, sum)
	perm := make([]int, len(out))
	shape := make([]int, len(out))
	for j, l := range out {
		perm[j] = slices.Index(cur.labels, l)
		shape[j] = sizes[l]
	}
	y := cur.t
	if !slices.IsSorted(perm) {
		y = tensor.Permute(y, perm...)
	}
	if !tensor.SameShape(y.Shape(), shape) {
		y = tensor.Expand(y, shape...)
	}
	return []*tensor.Tensor{y}, nil
}

func einsumName(l int) string {
	if l < 0 {
		return fmt.Sprintf("...[%d]", -l)
	}
	return string(rune(l))
}

func einsumUnique(l []int) bool {
	s := slices.Clone(l)
	slices.Sort(s)
	return len(slices.Compact(s)) == len(l)
}

// einsumRepeated reports whether label l repeats within an operand (it is
// then summed in implicit mode, as NumPy does for "ii").
func einsumRepeated(o []einsumOperand, l int) bool {
	for _, op := range o {
		n := 0
		for _, x := range op.labels {
			if x == l {
				n++
			}
		}
		if n > 1 {
			return true
		}
	}
	return false
}

func einsumUsedElsewhere(o []einsumOperand, i, l int) bool {
	for j, op := range o {
		if j != i && slices.Contains(op.labels, l) {
			return true
		}
	}
	return false
}

// einsumDiagonal keeps, for a label repeated within the operand, the
// elements whose indices agree (the first occurrence's position is kept).
func einsumDiagonal(o einsumOperand) einsumOperand {
	if einsumUnique(o.labels) {
		return o
	}
	var labels, shape []int
	st := o.t.Strides()
	var strides []int
	for d, l := range o.labels {
		if j := slices.Index(labels, l); j >= 0 {
			strides[j] += st[d]
			continue
		}
		labels = append(labels, l)
		shape = append(shape, o.t.Dim(d))
		strides = append(strides, st[d])
	}
	src := o.t.F32()
	y := make([]float32, nnProd(shape))
	idx := make([]int, len(shape))
	for i := range y {
		off := 0
		for d, v := range idx {
			off += v * strides[d]
		}
		y[i] = src[off]
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < shape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return einsumOperand{nnTensor(y, shape), labels}
}

// einsumSum sums the operand over dimensions dims.
func einsumSum(o einsumOperand, dims []int) einsumOperand {
	if len(dims) == 0 {
		return o
	}
	var labels []int
	for d, l := range o.labels {
		if !slices.Contains(dims, d) {
			labels = append(labels, l)
		}
	}
	t := tensor.Sum(o.t, dims, false)
	if len(labels) == 0 {
		t = t.Reshape()
	}
	return einsumOperand{t, labels}
}

// einsumContract multiplies a and b, summing the labels they share that
// keep does not hold, as one batched matrix product.
func einsumContract(a, b einsumOperand, keep []int, sizes map[int]int) einsumOperand {
	var batch, aOnly, bOnly, red []int
	for _, l := range a.labels {
		switch {
		case slices.Contains(b.labels, l) && slices.Contains(keep, l):
			batch = append(batch, l)
		case slices.Contains(b.labels, l):
			red = append(red, l)
		default:
			aOnly = append(aOnly, l)
		}
	}
	for _, l := range b.labels {
		if !slices.Contains(a.labels, l) {
			bOnly = append(bOnly, l)
		}
	}
	arrange := func(o einsumOperand, order []int) *tensor.Tensor {
		perm := make([]int, len(order))
		shape := make([]int, len(order))
		for j, l := range order {
			perm[j] = slices.Index(o.labels, l)
			shape[j] = sizes[l]
		}
		t := o.t
		if !slices.IsSorted(perm) {
			t = tensor.Permute(t, perm...)
		}
		if !tensor.SameShape(t.Shape(), shape) {
			t = tensor.Expand(t, shape...)
		}
		return t
	}
	prod := func(ls []int) int {
		p := 1
		for _, l := range ls {
			p *= sizes[l]
		}
		return p
	}
	bt, m, kk, n := prod(batch), prod(aOnly), prod(red), prod(bOnly)
	at := arrange(a, slices.Concat(batch, aOnly, red)).Reshape(bt, m, kk)
	btt := arrange(b, slices.Concat(batch, red, bOnly)).Reshape(bt, kk, n)
	var y *tensor.Tensor
	if bt*m*kk*n == 0 {
		y = tensor.Zeros(bt, m, n)
	} else {
		y = ops.MatMul(at, btt)
	}
	labels := slices.Concat(batch, aOnly, bOnly)
	shape := make([]int, len(labels))
	for j, l := range labels {
		shape[j] = sizes[l]
	}
	return einsumOperand{nnReshape(y, shape), labels}
}
