package numeric

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph/quantize"
	"github.com/quanta-go/quanta/tensor"
)

// handReport is a report with hand-set statistics for the ranking and
// writer tests.
func handReport() *Report {
	inf := math.Inf(1)
	st := func(sqnr, cos float64) Stats {
		return Stats{SQNR: sqnr, Cosine: cos, MaxAbs: 0.5, MeanAbs: 0.01, Count: 10}
	}
	w := st(40, 0.9999)
	return &Report{FloatName: "f.onnx", QuantName: "q<1>.onnx", Feeds: 3,
		Layers: []Layer{
			{Index: 0, Node: "conv<a>", OpType: "Conv", Activation: st(30, 0.999), Weight: &w, WeightValue: "W", InputSQNR: 35, Drop: 5},
			{Index: 2, Node: "relu", OpType: "Relu", Activation: st(30, 0.999), InputSQNR: 30, Drop: 0},
			{Index: 3, Node: "gemm", OpType: "Gemm", ModulePath: "fc", Activation: st(18, 0.98), InputSQNR: 30, Drop: 12},
			{Index: 4, Node: "shape_like", OpType: "Identity", Activation: st(inf, 1), InputSQNR: inf, Drop: 0},
			{Index: 5, Node: "first", OpType: "Add", Activation: st(25, 0.99), InputSQNR: inf, Drop: inf},
			{Index: 6, Node: "loop_body", OpType: "Mul", Activation: st(10, 0.9), InputSQNR: math.NaN(), Drop: math.NaN()},
			{Index: 7, Node: "tie", OpType: "Relu", Activation: st(20, 0.99), InputSQNR: 32, Drop: 12},
		},
		Outputs: []Output{{Name: "y", Reference: st(17, 0.98), Fused: &Stats{SQNR: 16.5, Cosine: 0.97, Count: 10}}},
	}
}

func names(ls []Layer) string {
	var s []string
	for _, l := range ls {
		s = append(s, l.Node)
	}
	return strings.Join(s, " ")
}

func TestWorstAndLowest(t *testing.T) {
	r := handReport()
	// Infinite drop first; equal drops (12) by lower SQNR; NaN drops last.
	if got, want := names(r.Worst(0)), "first gemm tie conv<a> relu shape_like loop_body"; got != want {
		t.Errorf("Worst(0) = %s, want %s", got, want)
	}
	if got := names(r.Worst(2)); got != "first gemm" {
		t.Errorf("Worst(2) = %s", got)
	}
	if got, want := names(r.Lowest(3)), "loop_body gemm tie"; got != want {
		t.Errorf("Lowest(3) = %s, want %s", got, want)
	}
	if len(r.Worst(100)) != len(r.Layers) || r.Layers[0].Node != "conv<a>" {
		t.Error("Worst changed the report or dropped layers")
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := handReport().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"f.onnx vs q<1>.onnx: 3 feeds, 7 layers compared", "SQNR dB", "weight SQNR dB",
		"y       reference", "y       int8", "inf", "16.50"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Columns are aligned: the SQNR column starts at the same offset on
	// every layer row.
	lines := strings.Split(out, "\n")
	head := strings.Index(lines[2], "SQNR dB")
	for _, l := range lines[3:10] {
		if f := regexp.MustCompile(`\S+`).FindAllStringIndex(l, -1); len(f) < 5 || f[4][0] != head {
			t.Errorf("row %q: SQNR column not at offset %d", l, head)
		}
	}
	b.Reset()
	if err := handReport().WriteWorst(&b, 2); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[1], "1     first") || !strings.Contains(lines[2], "gemm") {
		t.Errorf("WriteWorst:\n%s", b.String())
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := handReport().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var j struct {
		Feeds  int `json:"feeds"`
		Layers []struct {
			Node       string `json:"node"`
			Activation struct {
				SQNR any `json:"sqnr_db"`
			} `json:"activation"`
			Weight *struct {
				SQNR any `json:"sqnr_db"`
			} `json:"weight"`
			Drop any `json:"drop_db"`
		} `json:"layers"`
		Outputs []struct {
			Int8 *struct {
				SQNR float64 `json:"sqnr_db"`
			} `json:"int8"`
		} `json:"outputs"`
		Worst []string `json:"worst"`
	}
	if err := json.Unmarshal(b.Bytes(), &j); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if j.Feeds != 3 || len(j.Layers) != 7 || j.Layers[0].Weight == nil || j.Layers[0].Weight.SQNR != 40.0 || j.Layers[1].Weight != nil {
		t.Errorf("JSON %s", b.String())
	}
	if j.Layers[3].Activation.SQNR != "Infinity" || j.Layers[4].Drop != "Infinity" || j.Layers[5].Drop != nil || j.Layers[2].Activation.SQNR != 18.0 {
		t.Errorf("special values: %v %v %v %v", j.Layers[3].Activation.SQNR, j.Layers[4].Drop, j.Layers[5].Drop, j.Layers[2].Activation.SQNR)
	}
	if len(j.Outputs) != 1 || j.Outputs[0].Int8 == nil || j.Outputs[0].Int8.SQNR != 16.5 || strings.Join(j.Worst, " ") != names(handReport().Worst(0)) {
		t.Errorf("outputs %+v worst %v", j.Outputs, j.Worst)
	}
}

func TestWriteHTML(t *testing.T) {
	var b bytes.Buffer
	if err := handReport().WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{"<!DOCTYPE html>", "<svg", "<polyline class=act", "<polyline class=cos", "class=wbar",
		"conv&lt;a&gt;", "q&lt;1&gt;.onnx", "Layers that hurt most", "int8 (fused kernels)", "</html>"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "conv<a>") || strings.Contains(page, "q<1>") {
		t.Error("names are not escaped")
	}
	// Self-contained: nothing is loaded from elsewhere.
	if m := regexp.MustCompile(`(?i)(src=|href=|url\(|@import|https?:)`).FindString(page); m != "" {
		t.Errorf("page refers to an external resource: %q", m)
	}
	// One point per finite-or-infinite SQNR (the NaN one is left out of the
	// SQNR plot but kept in cosine's), each at a coordinate inside the plot.
	if n := strings.Count(page, "<circle class=p"); n != 7 {
		t.Errorf("%d SQNR points, want 7", n)
	}
	for _, m := range regexp.MustCompile(`cy="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		if strings.Contains(m[1], "NaN") || strings.Contains(m[1], "Inf") {
			t.Errorf("point at %s", m[1])
		}
	}
	if n := strings.Count(page, "<tr class=worst>"); n != 7 {
		t.Errorf("%d highlighted rows, want 7 (all layers are in the top %d)", n, htmlWorst)
	}
	// An empty report is still a page.
	b.Reset()
	if err := (&Report{}).WriteHTML(&b); err != nil || !strings.Contains(b.String(), "</html>") {
		t.Errorf("empty report: %v", err)
	}
}

// TestCompareFeedsFromBatch runs Compare on feeds split from one batched
// array: the same statistics as the feeds given one by one.
func TestCompareFeedsFromBatch(t *testing.T) {
	net := newConvNet(5)
	fs := feedsOf(8, 3)
	batch := tensor.New(tensor.Float32, 3, 1, inC, hw, hw)
	per := inC * hw * hw
	for i, f := range fs {
		copy(batch.F32()[i*per:], f["x"].F32())
	}
	split, err := quantize.Feeds(net.float(), map[string]*tensor.Tensor{"x": batch}, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Compare(context.Background(), net.float(), net.qdq(), fs, Options{ReferenceOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Compare(context.Background(), net.float(), net.qdq(), split, Options{ReferenceOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Layers {
		if a.Layers[i].Activation != b.Layers[i].Activation {
			t.Errorf("%s: %+v vs %+v", a.Layers[i].Node, a.Layers[i].Activation, b.Layers[i].Activation)
		}
	}
}
