package quantize

import (
	"context"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/onnx"
	"github.com/quanta-go/quanta/tensor"
)

// convertWith quantizes smallCNN(1) calibrated on feeds(2, 8) with opts
// and returns the QDQ model read back from its ONNX encoding.
func convertWith(t *testing.T, opts Options) *graph.Model {
	t.Helper()
	p, err := Prepare(smallCNN(1), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range feeds(2, 8) {
		if err := p.Observe(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	q, err := Convert(p)
	if err != nil {
		t.Fatal(err)
	}
	data, err := onnx.Encode(q)
	if err != nil {
		t.Fatal(err)
	}
	back, err := onnx.Decode(data, onnx.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// codeType returns the declared type of the codes a QuantizeLinear writes
// or a DequantizeLinear reads, and of its zero point.
func codeType(n *graph.Node) (codes, zp graph.ElemType) {
	c := n.Inputs[0]
	if n.OpType == "QuantizeLinear" {
		c = n.Outputs[0]
	}
	return c.Type.Elem, n.Inputs[2].Type.Elem
}

// TestInt16 quantizes the small CNN with Options.Int16: everything 16-bit,
// then only the convolution. 16-bit units get uint16 activations and
// per-channel int16 weights (nearest codes RNE(w / (max|w| / 32767.5)) in -32768..32767,
// checked here), keep their biases float, and the model is raised to opset 21;
// a value an 8-bit unit reads is quantized to 8 bits.
func TestInt16(t *testing.T) {
	float := smallCNN(1)
	run := func(m *graph.Model) []float32 {
		p, err := exec.Compile(m, exec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var all []float32
		for _, f := range feeds(3, 8) {
			out, err := p.Run(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, out["y"].F32()...)
		}
		return all
	}
	want := run(float)
	opts := Options{NoEqualize: true, WeightRounding: RoundNearest}
	err8 := relL2(run(convertWith(t, opts)), want)

	opts.Int16 = []*regexp.Regexp{regexp.MustCompile(".")}
	q := convertWith(t, opts)
	if v := q.Opset(""); v != 21 {
		t.Errorf("opset %d, want 21", v)
	}
	err16 := relL2(run(q), want)
	t.Logf("relative L2 error against float: 8-bit %.2e, 16-bit %.2e", err8, err16)
	if !(err16 < err8/30) {
		t.Errorf("relative L2 error against float: 16-bit %.2e, 8-bit %.2e; want 16-bit at least 30x smaller", err16, err8)
	}
	nq := 0
	for _, n := range q.Graph.Nodes {
		switch n.OpType {
		case "QuantizeLinear":
			nq++
			if c, z := codeType(n); c != graph.Uint16 || z != graph.Uint16 {
				t.Errorf("%s writes %s codes with a %s zero point, want uint16", n.Name, c, z)
			}
		case "DequantizeLinear":
			c, z := codeType(n)
			if !n.Inputs[0].IsConst() {
				if c != graph.Uint16 || z != graph.Uint16 {
					t.Errorf("%s reads %s codes with a %s zero point, want uint16", n.Name, c, z)
				}
				continue
			}
			if c != graph.Int16 || z != graph.Int16 {
				t.Errorf("weight %s: %s codes with a %s zero point, want int16", n.Inputs[0].Name, c, z)
			}
		case "Conv", "Gemm":
			if b := n.Inputs[2]; b.Producer != nil || b.Const == nil || b.Const.DType() != tensor.Float32 {
				t.Errorf("%s: the bias of a 16-bit unit is not a float initializer", n.Name)
			}
		}
	}
	if nq != 5 {
		t.Errorf("%d QuantizeLinear, want 5 (x, r, p, f, y)", nq)
	}
	// The convolution's int16 codes, from the float weight.
	w := float.Graph.Initializers[0].Const.F32()
	dq := nodeByName(q.Graph, "conv.weight_DequantizeLinear")
	codes, scales := dq.Inputs[0].Const.I32(), dq.Inputs[1].Const.F32()
	for c := 0; c < 3; c++ {
		var m float64
		for _, v := range w[c*18 : (c+1)*18] {
			m = math.Max(m, math.Abs(float64(v)))
		}
		s := float32(m) / 32767.5
		if scales[c] != s {
			t.Errorf("channel %d: scale %v, want %v", c, scales[c], s)
		}
		for i, v := range w[c*18 : (c+1)*18] {
			want := int32(max(-32768, min(32767, math.RoundToEven(float64(v/s)))))
			if got := codes[c*18+i]; got != want {
				t.Errorf("channel %d weight %d: code %d, want %d", c, i, got, want)
				break
			}
		}
	}

	// Only the convolution: its input stays 16-bit, but its output (shared
	// through MaxPool and Flatten with the Gemm's input) is read by the
	// 8-bit Gemm, so it is 8-bit, and the Gemm keeps int8 weights and an
	// int32 bias.
	opts.Int16 = []*regexp.Regexp{regexp.MustCompile("^conv$")}
	q = convertWith(t, opts)
	wantElem := map[string]graph.ElemType{"x_QuantizeLinear": graph.Uint16, "r_QuantizeLinear": graph.Uint8, "y_QuantizeLinear": graph.Uint8}
	for name, e := range wantElem {
		n := nodeByName(q.Graph, name)
		if n == nil {
			t.Fatalf("no node %s", name)
		}
		if c, _ := codeType(n); c != e {
			t.Errorf("%s writes %s, want %s", name, c, e)
		}
	}
	if c, _ := codeType(nodeByName(q.Graph, "fc.weight_DequantizeLinear")); c != graph.Int8 {
		t.Errorf("Gemm weight codes %s, want int8", c)
	}
	if b := nodeByName(q.Graph, "fc").Inputs[2]; b.Producer == nil || b.Producer.Inputs[0].Const.DType() != tensor.Int32 {
		t.Error("the 8-bit Gemm's bias is not int32")
	}
	if e := relL2(run(q), want); !(e < err8) {
		t.Errorf("16-bit convolution: error %.2e, not below the all-8-bit %.2e", e, err8)
	}
}

// TestInt16Errors: Int16 is for post-training static quantization.
func TestInt16Errors(t *testing.T) {
	re := []*regexp.Regexp{regexp.MustCompile(".")}
	if _, err := Prepare(smallCNN(1), Options{QAT: true, Int16: re}); err == nil || !strings.Contains(err.Error(), "not QAT") {
		t.Errorf("QAT with Int16: error %v", err)
	}
	if _, err := QuantizeDynamic(smallCNN(1), Options{Int16: re}); err == nil || !strings.Contains(err.Error(), "Int16 is for static quantization") {
		t.Errorf("QuantizeDynamic with Int16: error %v", err)
	}
}
