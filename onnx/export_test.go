package onnx

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// roundTrip exports m and imports the result.
func roundTrip(t *testing.T, m *graph.Model) *graph.Model {
	t.Helper()
	data, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Decode(data, DecodeOptions{Name: "exported"})
	if err != nil {
		t.Fatal(err)
	}
	return m2
}

// TestRoundTripNodeCases: import -> export -> import gives the same
// graph, compared by Dump and by the full summary (every value of every
// constant, every attribute, every type).
func TestRoundTripNodeCases(t *testing.T) {
	for _, dir := range nodeCases(t) {
		name := filepath.Base(dir)
		if _, bad := refLoadErrors[name]; bad {
			continue
		}
		m, err := Load(filepath.Join(dir, "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		m2 := roundTrip(t, m)
		if a, b := m.Graph.String(), m2.Graph.String(); a != b {
			t.Errorf("%s: dump differs after export:\n%s\nvs\n%s", name, a, b)
		}
		if a, b := summary(name, m), summary(name, m2); a != b {
			t.Errorf("%s: summary differs after export:\n%s\nvs\n%s", name, a, b)
		}
	}
}

func TestRoundTripHandModel(t *testing.T) {
	m, err := Decode(handModel(), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m2 := roundTrip(t, m)
	if a, b := m.Graph.String(), m2.Graph.String(); a != b {
		t.Errorf("dump differs after export:\n%s\nvs\n%s", a, b)
	}
	if a, b := summary("hand", m), summary("hand", m2); a != b {
		t.Errorf("summary differs after export:\n%s\nvs\n%s", a, b)
	}
	g, g2 := *m, *m2
	g.Graph, g2.Graph = nil, nil
	if !reflect.DeepEqual(g, g2) {
		t.Errorf("model fields %+v, after export %+v", g, g2)
	}
	if m2.Graph.Inputs[0].DocString != "input doc" || m2.Graph.DocString != "graph doc" {
		t.Error("doc strings lost in export")
	}
}

// TestEncodeBuiltGraph exports a graph built in Go (no opsets, no IR
// version) and checks the defaults and the declared element types.
func TestEncodeBuiltGraph(t *testing.T) {
	g := graph.New("built")
	x := g.AddInput("x", graph.TensorType(graph.Float, 1, 2))
	w := g.AddInitializer("w", tensor.FromFloat32([]float32{0.1, 65519}, 2))
	w.Type.Elem = graph.Float16
	n := g.AddNode("add", "Add", []*graph.Value{x, w}, []string{"y"}, nil)
	g.Outputs = []*graph.Value{n.Outputs[0]}
	m := &graph.Model{Graph: g}
	m2 := roundTrip(t, m)
	if m2.IRVersion != 8 || m2.Opset("") != DefaultOpset || m2.ProducerName != "quanta" {
		t.Errorf("IR %d, opsets %v, producer %q", m2.IRVersion, m2.Opsets, m2.ProducerName)
	}
	// Written as float16: 0.1 rounds to 0.099975586, 65519 to 65504.
	w2 := m2.Graph.Initializers[0]
	if w2.Type.Elem != graph.Float16 || !reflect.DeepEqual(w2.Const.F32(), []float32{0.099975586, 65504}) {
		t.Errorf("w: %s %v", w2.Type, w2.Const.F32())
	}
	// A declared type the tensor's dtype does not hold is ignored.
	w.Type.Elem = graph.Int8
	if got := roundTrip(t, m).Graph.Initializers[0].Type.Elem; got != graph.Float {
		t.Errorf("mismatched declared type written as %s", got)
	}
	// Values a declared type cannot hold are an error.
	u := g.AddInitializer("u", tensor.FromInt64([]int64{-1}, 1))
	u.Type.Elem = graph.Uint32
	if _, err := Encode(m); err == nil || !strings.Contains(err.Error(), `initializer "u": value -1 does not fit uint32`) {
		t.Errorf("Encode: %v", err)
	}
	g.Initializers = g.Initializers[:1]
	// Invalid graphs are refused.
	g.Outputs = append(g.Outputs, &graph.Value{Name: "ghost"})
	if _, err := Encode(m); err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Errorf("Encode of an invalid graph: %v", err)
	}
	if _, err := Encode(&graph.Model{}); err == nil {
		t.Error("Encode of a model without a graph succeeded")
	}
}

func TestSave(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	m, err := Decode(handModel(), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, m); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("Save left %d files", len(entries))
	}
	m2, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := m.Graph.String(), m2.Graph.String(); a != b {
		t.Errorf("saved model differs:\n%s\nvs\n%s", a, b)
	}
	if err := Save(filepath.Join(dir, "no", "such", "dir.onnx"), m); err == nil {
		t.Error("Save into a missing directory succeeded")
	}
}

// TestLoadStreamsInitializers: Load reads initializer data from the file
// straight into the tensors, so loading allocates about the size of the
// tensors, not that plus the file.
func TestLoadStreamsInitializers(t *testing.T) {
	const n = 4 << 20 // 16 MiB of float32
	w := make([]float32, n)
	for i := range w {
		w[i] = float32(i % 1000)
	}
	g := graph.New("big")
	x := g.AddInput("x", graph.TensorType(graph.Float, n))
	wv := g.AddInitializer("w", tensor.FromFloat32(w, n))
	add := g.AddNode("add", "Add", []*graph.Value{x, wv}, []string{"y"}, nil)
	g.Outputs = add.Outputs
	path := filepath.Join(t.TempDir(), "big.onnx")
	if err := Save(path, &graph.Model{Graph: g}); err != nil {
		t.Fatal(err)
	}
	w, wv, g = nil, nil, nil
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m, err := Load(path)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	if allocated > 4*n*5/4 {
		t.Errorf("Load allocated %d bytes for %d bytes of initializers", allocated, 4*n)
	}
	got := m.Graph.Initializers[0].Const.F32()
	for _, i := range []int{0, 1, 999, 1000, n - 1} {
		if got[i] != float32(i%1000) {
			t.Fatalf("w[%d] = %v", i, got[i])
		}
	}
}

func TestExternalData(t *testing.T) {
	dir := t.TempDir()
	le := binary.LittleEndian
	var data []byte
	data = append(data, "junk"...)
	for _, f := range []float32{1, 2, 3} {
		data = le.AppendUint32(data, math.Float32bits(f))
	}
	if err := os.MkdirAll(filepath.Join(dir, "weights"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "weights", "w.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret.bin")
	if err := os.WriteFile(outside, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link.bin")); err != nil {
		t.Fatal(err)
	}
	model := func(kv ...string) []byte {
		tp := pb{}.int(1, 3).int(2, 1).str(8, "w").int(14, 1)
		for i := 0; i < len(kv); i += 2 {
			tp = tp.msg(13, pb{}.str(1, kv[i]).str(2, kv[i+1]))
		}
		return modelPB(8, 13, reluGraph(pb{}.msg(5, tp)))
	}
	path := filepath.Join(dir, "m.onnx")
	load := func(kv ...string) (*graph.Model, error) {
		if err := os.WriteFile(path, model(kv...), 0o644); err != nil {
			t.Fatal(err)
		}
		return Load(path)
	}
	m, err := load("location", "weights/w.bin", "offset", "4", "length", "12")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Graph.Initializers[0].Const.F32(); !reflect.DeepEqual(got, []float32{1, 2, 3}) {
		t.Errorf("external data %v", got)
	}
	// Without a length the data runs to the end of the file.
	if _, err := load("location", "weights/w.bin", "offset", "4"); err != nil {
		t.Error(err)
	}
	// Decode reads external data from DecodeOptions.Dir.
	if m, err := Decode(model("location", "weights/w.bin", "offset", "4"), DecodeOptions{Dir: dir}); err != nil || m.Graph.Initializers[0].Const.F32()[2] != 3 {
		t.Errorf("Decode with Dir: %v", err)
	}
	bad := []struct {
		kv   []string
		want string
	}{
		{[]string{"location", "../secret.bin"}, `location "../secret.bin" is not a relative path inside the model's directory`},
		{[]string{"location", outside}, "is not a relative path inside the model's directory"},
		{[]string{"location", "weights/../../x"}, "is not a relative path"},
		{[]string{"location", "link.bin", "offset", "4"}, "link.bin"},
		{[]string{"location", "missing.bin"}, "missing.bin"},
		{[]string{"location", "weights/w.bin"}, `"weights/w.bin" holds 16 bytes for the tensor, its dims need 12`},
		{[]string{"location", "weights/w.bin", "offset", "8", "length", "12"}, "the tensor's data ends at 20"},
		{[]string{"location", "weights/w.bin", "offset", "99", "length", "12"}, "the tensor's data starts at 99"},
		{[]string{"location", "weights/w.bin", "offset", "-4"}, `bad offset "-4"`},
		{[]string{"location", "weights/w.bin", "length", "x"}, `bad length "x"`},
		{[]string{"offset", "0"}, "external data: no location"},
	}
	for _, c := range bad {
		_, err := load(c.kv...)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `initializer 0 "w": external data`) {
			t.Errorf("%v: error %v, want %q", c.kv, err, c.want)
		}
	}
}

// TestHalfConversions checks float16 and bfloat16 against their
// definitions: every half decodes to sign * 2^(e-15) * (1 + m/1024)
// (subnormals 2^-14 * m/1024); encoding rounds to the nearest half with
// ties to even, checked against the neighbours found by search.
func TestHalfConversions(t *testing.T) {
	for h := range 1 << 16 {
		sign := 1.0
		if h&0x8000 != 0 {
			sign = -1
		}
		e, m := (h>>10)&0x1f, h&0x3ff
		var want float64
		switch {
		case e == 0x1f && m == 0:
			want = math.Inf(int(sign))
		case e == 0x1f:
			want = math.NaN()
		case e == 0:
			want = sign * math.Ldexp(float64(m)/1024, -14)
		default:
			want = sign * math.Ldexp(1+float64(m)/1024, e-15)
		}
		got := halfToFloat(graph.Float16, uint16(h))
		if math.IsNaN(want) != (got != got) || (!math.IsNaN(want) && float64(got) != want) {
			t.Fatalf("half %#04x = %v, want %v", h, got, want)
		}
		if got == got && floatToHalf(graph.Float16, got) != uint16(h) {
			t.Fatalf("half %#04x -> %v -> %#04x", h, got, floatToHalf(graph.Float16, got))
		}
		if got != got && floatToHalf(graph.Float16, got)&0x7fff <= 0x7c00 {
			t.Fatalf("NaN half %#04x encodes as %#04x", h, floatToHalf(graph.Float16, got))
		}
	}
	// Midpoints between neighbouring positive halves round to the even one;
	// points just off the midpoint round to the nearer one.
	for h := uint16(0); h < 0x7bff; h++ {
		lo, hi := float64(halfToFloat(graph.Float16, h)), float64(halfToFloat(graph.Float16, h+1))
		mid := float32((lo + hi) / 2) // exact: halves have 11 significant bits
		even := h
		if h&1 == 1 {
			even = h + 1
		}
		if got := floatToHalf(graph.Float16, mid); got != even {
			t.Fatalf("midpoint %v of %#04x and %#04x -> %#04x, want %#04x", mid, h, h+1, got, even)
		}
		if got := floatToHalf(graph.Float16, math.Nextafter32(mid, 0)); got != h {
			t.Fatalf("below midpoint of %#04x -> %#04x", h, got)
		}
		if got := floatToHalf(graph.Float16, math.Nextafter32(mid, 1e9)); got != h+1 {
			t.Fatalf("above midpoint of %#04x -> %#04x", h, got)
		}
		if got := floatToHalf(graph.Float16, -mid); got != even|0x8000 {
			t.Fatalf("negative midpoint -> %#04x", got)
		}
	}
	// Beyond the largest half's rounding range: infinity.
	if got := floatToHalf(graph.Float16, 65520); got != 0x7c00 {
		t.Errorf("65520 -> %#04x, want Inf", got)
	}
	if got := floatToHalf(graph.Float16, 1e-9); got != 0 {
		t.Errorf("1e-9 -> %#04x, want 0", got)
	}
	// bfloat16 is the high half of a float32, rounded to nearest even.
	for _, c := range []struct {
		f    float32
		want uint16
	}{
		{1, 0x3f80}, {math.Float32frombits(0x3f808000), 0x3f80}, {math.Float32frombits(0x3f818000), 0x3f82},
		{math.Float32frombits(0x3f808001), 0x3f81}, {float32(math.Inf(-1)), 0xff80}, {math.MaxFloat32, 0x7f80},
	} {
		if got := floatToHalf(graph.BFloat16, c.f); got != c.want {
			t.Errorf("bfloat16(%v) = %#04x, want %#04x", c.f, got, c.want)
		}
		if c.want != 0x7f80 && halfToFloat(graph.BFloat16, c.want) != math.Float32frombits(uint32(c.want)<<16) {
			t.Errorf("bfloat16 %#04x decodes wrong", c.want)
		}
	}
	if nan := floatToHalf(graph.BFloat16, float32(math.NaN())); halfToFloat(graph.BFloat16, nan) == halfToFloat(graph.BFloat16, nan) {
		t.Errorf("bfloat16 NaN became %#04x", nan)
	}
}

func TestTensorIO(t *testing.T) {
	x := tensor.FromFloat32([]float32{0.5, -1, 3}, 3, 1)
	for _, elem := range []graph.ElemType{graph.Float, graph.Float16, graph.BFloat16, graph.Double} {
		data, err := EncodeTensor(NamedTensor{Name: "x", Elem: elem, Tensor: x})
		if err != nil {
			t.Fatal(err)
		}
		nt, err := DecodeNamedTensor(data)
		if err != nil {
			t.Fatal(err)
		}
		if nt.Name != "x" || nt.Elem != elem || !reflect.DeepEqual(nt.Tensor.F32(), x.F32()) || !reflect.DeepEqual(nt.Tensor.Shape(), []int{3, 1}) {
			t.Errorf("%s: %+v %v", elem, nt, nt.Tensor.F32())
		}
		path := filepath.Join(t.TempDir(), "x.pb")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadTensor(path)
		if err != nil || !reflect.DeepEqual(got.F32(), x.F32()) {
			t.Errorf("ReadTensor: %v %v", got, err)
		}
	}
	if _, err := DecodeTensor(pb{}.int(1, 2).int(2, 13).bytes(9, make([]byte, 16))); err == nil ||
		!strings.Contains(err.Error(), "onnx: tensor: data type uint64 (13) is not supported") {
		t.Errorf("uint64: %v", err)
	}
	if _, err := ReadTensor(filepath.Join(t.TempDir(), "none.pb")); err == nil {
		t.Error("ReadTensor of a missing file succeeded")
	}
	if _, err := EncodeTensor(NamedTensor{}); err == nil {
		t.Error("EncodeTensor without a tensor succeeded")
	}
}
