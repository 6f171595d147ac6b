package onnx

import (
	"encoding/binary"
	"math"
	"reflect"
	"testing"

	"github.com/quanta-go/quanta/graph"
)

// handModel is a model written field by field: initializers in every data
// encoding ONNX allows, packed and unpacked repeated fields, nodes without
// names and with clashing names, an input with a default value, an If node
// whose branches read outer values, value_info and metadata.
func handModel() pb {
	le := binary.LittleEndian
	f32raw := le.AppendUint32(le.AppendUint32(nil, math.Float32bits(1.5)), math.Float32bits(-2))
	g := pb{}.str(2, "main").str(10, "graph doc")
	// Nodes come first on the wire in ONNX files; order does not matter.
	g = g.msg(1, nodePB("", "Add", []string{"x", "w_raw"}, []string{"a"}))
	g = g.msg(1, nodePB("", "Add", []string{"a", "w_default"}, []string{"b"}))
	g = g.msg(1, nodePB("Add_0", "Mul", []string{"b", "b"}, []string{"c"}))
	g = g.msg(1, nodePB("dup", "Relu", []string{"c"}, []string{"d"}))
	g = g.msg(1, nodePB("dup", "Clip", []string{"d", "", "w_raw"}, []string{"e"}))
	g = g.msg(1, nodePB("drop", "Dropout", []string{"e"}, []string{"f", ""},
		pb{}.str(1, "seed").int(20, 2).int(3, -7)))
	thenG := pb{}.str(2, "then").msg(1, nodePB("", "Neg", []string{"f"}, []string{"t"})).msg(12, valueInfoPB("t", 1))
	elseG := pb{}.str(2, "else").msg(12, valueInfoPB("x", 1))
	g = g.msg(1, nodePB("if", "If", []string{"cond"}, []string{"y"},
		pb{}.str(1, "then_branch").int(20, 5).msg(6, thenG),
		pb{}.str(1, "else_branch").int(20, 5).msg(6, elseG)))
	// An attribute zoo on a node of another domain; "ai.onnx" is the
	// default domain's other name.
	zoo := nodePB("zoo", "Zoo", []string{"y"}, []string{"z"},
		pb{}.str(1, "f").int(20, 1).float(2, 0.25),
		pb{}.str(1, "i").int(20, 2).int(3, -3),
		pb{}.str(1, "s").int(20, 3).str(4, "héllo"),
		pb{}.str(1, "fs_packed").int(20, 6).bytes(7, packedFloats(1, -0.5)),
		pb{}.str(1, "fs_unpacked").int(20, 6).float(7, 2).float(7, 3),
		pb{}.str(1, "is_packed").int(20, 7).bytes(8, packedVarints(1, -1, 1<<40)),
		pb{}.str(1, "is_unpacked").int(20, 7).int(8, 4).int(8, 5),
		pb{}.str(1, "ss").int(20, 8).str(9, "a").str(9, ""),
		pb{}.str(1, "notype_i").int(3, 9), // IR 1 style: no type field
		pb{}.str(1, "t").int(20, 4).msg(5, rawTensorPB("", 7, le.AppendUint64(nil, 42))),
	).str(7, "com.example")
	g = g.msg(1, zoo)
	g = g.msg(1, nodePB("", "Identity", []string{"z"}, []string{"out"}).str(7, "ai.onnx"))

	// Initializers.
	g = g.msg(5, rawTensorPB("w_raw", 1, f32raw, 2))
	g = g.msg(5, pb{}.bytes(1, packedVarints(2)).int(2, 1).str(8, "w_default").bytes(4, packedFloats(3, 4)))
	g = g.msg(5, pb{}.int(1, 2).int(1, 1).int(2, 1).str(8, "f_unpacked").float(4, 5).float(4, 6))
	g = g.msg(5, pb{}.int(1, 3).int(2, 7).str(8, "i64").int(7, -1).int(7, 0).int(7, math.MaxInt64))
	g = g.msg(5, pb{}.int(1, 2).int(2, 10).str(8, "h_int32").int(5, 0x3c00).int(5, 0xc000)) // 1, -2
	g = g.msg(5, rawTensorPB("h_raw", 10, le.AppendUint16(le.AppendUint16(nil, 0x0001), 0x7bff), 2))
	g = g.msg(5, rawTensorPB("bf_raw", 16, le.AppendUint16(nil, 0x3fc0), 1))
	g = g.msg(5, pb{}.int(1, 2).int(2, 11).str(8, "d_packed").bytes(10,
		le.AppendUint64(le.AppendUint64(nil, math.Float64bits(0.1)), math.Float64bits(-1e300))))
	g = g.msg(5, pb{}.int(1, 2).int(2, 5).str(8, "i16").int(5, -300).int(5, 7))
	g = g.msg(5, pb{}.int(1, 1).int(2, 12).str(8, "u32").int(11, math.MaxUint32))
	g = g.msg(5, rawTensorPB("b_raw", 9, []byte{0, 2, 1}, 3))
	g = g.msg(5, pb{}.int(1, 2).int(2, 3).str(8, "i8").int(5, -128).int(5, 127))
	g = g.msg(5, rawTensorPB("u8_raw", 2, []byte{0, 255}, 2))
	g = g.msg(5, pb{}.int(2, 6).str(8, "scalar").int(5, -5)) // no dims: a scalar

	// Inputs: w_default is also an initializer, so it is an input with a
	// default value (IR 4 and later).
	g = g.msg(11, valueInfoPB("x", 1, "N", 2).str(3, "input doc"))
	g = g.msg(11, valueInfoPB("w_default", 1, 2))
	g = g.msg(11, valueInfoPB("cond", 9))
	g = g.msg(12, valueInfoPB("out", 1, nil, 2))
	g = g.msg(13, valueInfoPB("c", 1, "N", 2))
	return pb{}.int(1, 8).str(2, "hand").str(3, "1.0").str(4, "org.example").int(5, 3).str(6, "model doc").
		msg(8, opsetPB("", 13)).msg(8, opsetPB("com.example", 1)).
		msg(14, pb{}.str(1, "k").str(2, "v")).msg(7, g)
}

const handDump = `graph main(x: float32[N,2], w_default: float32[2], cond: bool[*]) -> (out: float32[?,2]) {
  init w_raw: float32[2] = [1.5, -2]
  init f_unpacked: float32[2,1] = [5, 6]
  init i64: int64[3] = [-1, 0, 9223372036854775807]
  init h_int32: float16[2] = [1, -2]
  init h_raw: float16[2] = [5.9604645e-08, 65504]
  init bf_raw: bfloat16[1] = [1.5]
  init d_packed: float64[2] = [0.1, -Inf]
  init i16: int16[2] = [-300, 7]
  init u32: uint32[1] = [4294967295]
  init b_raw: bool[3] = [false, true, true]
  init i8: int8[2] = [-128, 127]
  init u8_raw: uint8[2] = [0, 255]
  init scalar: int32[] = [-5]
  a = Add(x, w_raw)  # Add_1
  b = Add(a, w_default)  # Add_2
  c = Mul(b, b)  # Add_0
  d = Relu(c)  # dup
  e = Clip(d, _, w_raw)  # dup_0
  f, _ = Dropout(e) {seed=-7}  # drop
  y = If(cond)  # if
    else_branch: graph else() -> (x: float32[N,2]) {
    }
    then_branch: graph then() -> (t: float32[*]) {
      t = Neg(f)  # Neg_0
    }
  z = com.example.Zoo(y) {f=0.25, fs_packed=[1,-0.5], fs_unpacked=[2,3], i=-3, is_packed=[1,-1,1099511627776], is_unpacked=[4,5], notype_i=9, s="héllo", ss=["a",""], t=tensor int64[] = [42]}  # zoo
  out = Identity(z)  # Identity_0
}
`

func TestDecodeHandBuiltModel(t *testing.T) {
	m, err := Decode(handModel(), DecodeOptions{Name: "hand.onnx"})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Graph.String(); got != handDump {
		t.Errorf("dump:\n%s\nwant:\n%s", got, handDump)
	}
	want := graph.Model{IRVersion: 8, ProducerName: "hand", ProducerVersion: "1.0", Domain: "org.example",
		ModelVersion: 3, DocString: "model doc", Opsets: map[string]int64{"": 13, "com.example": 1},
		Metadata: []graph.StringPair{{Key: "k", Value: "v"}}}
	got := *m
	got.Graph = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("model metadata %+v, want %+v", got, want)
	}
	g := m.Graph
	if g.DocString != "graph doc" || g.Inputs[0].DocString != "input doc" {
		t.Errorf("doc strings %q, %q", g.DocString, g.Inputs[0].DocString)
	}
	// The defaulted input holds its value; it is not also an initializer.
	wd := g.Inputs[1]
	if wd.Const == nil || !reflect.DeepEqual(wd.Const.F32(), []float32{3, 4}) {
		t.Errorf("w_default input: const %v", wd.Const)
	}
	for _, v := range g.Initializers {
		if v.Name == "w_default" {
			t.Error("w_default is both an input and an initializer")
		}
	}
	// value_info gave c its type; If's branches read x and f of the main
	// graph (the same *Value).
	byName := map[string]*graph.Value{}
	for _, v := range g.Values() {
		byName[v.Name] = v
	}
	if c := byName["c"]; c.Type.String() != "float32[N,2]" {
		t.Errorf("c: type %s", c.Type)
	}
	ifNode := byName["y"].Producer
	then := ifNode.Attrs["then_branch"].G
	if then.Parent != ifNode || then.Nodes[0].Inputs[0] != byName["f"] || ifNode.Attrs["else_branch"].G.Outputs[0] != byName["x"] {
		t.Error("subgraph outer references do not resolve to the main graph's values")
	}
	// Values held in quanta's dtypes.
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"h_raw", byName["h_raw"].Const.F32(), []float32{float32(math.Ldexp(1, -24)), 65504}},
		{"d_packed", byName["d_packed"].Const.F32(), []float32{0.1, float32(math.Inf(-1))}},
		{"i16", byName["i16"].Const.I32(), []int32{-300, 7}},
		{"u32", byName["u32"].Const.I64(), []int64{math.MaxUint32}},
		{"scalar", byName["scalar"].Const.Shape(), []int{}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestIRv3InputsAreInitializers: before IR version 4 every initializer
// had to be listed as an input; such inputs import as plain initializers,
// and export lists them as inputs again.
func TestIRv3InputsAreInitializers(t *testing.T) {
	le := binary.LittleEndian
	g := pb{}.str(2, "g").
		msg(1, nodePB("n", "Add", []string{"x", "w"}, []string{"y"})).
		msg(5, rawTensorPB("w", 1, le.AppendUint32(nil, math.Float32bits(2)), 1)).
		msg(11, valueInfoPB("x", 1, 1)).msg(11, valueInfoPB("w", 1, 1)).
		msg(12, valueInfoPB("y", 1, 1))
	m, err := Decode(modelPB(3, 8, g), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Graph.Inputs) != 1 || len(m.Graph.Initializers) != 1 || m.Graph.Initializers[0].Name != "w" {
		t.Fatalf("inputs %v, initializers %v", m.Graph.Inputs, m.Graph.Initializers)
	}
	data, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	d := &decoder{s: memStream(data)}
	pm, err := d.model(0, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(pm.graph.inputs) != 2 || pm.graph.inputs[1].name != "w" || pm.irVersion != 3 {
		t.Errorf("exported IR %d inputs %d, want IR 3 with w listed as an input", pm.irVersion, len(pm.graph.inputs))
	}
	m2, err := Decode(data, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := m.Graph.String(), m2.Graph.String(); a != b {
		t.Errorf("round trip:\n%s\nvs\n%s", a, b)
	}
}

// TestSparseInitializerAndConstant: sparse tensors are stored dense.
func TestSparseInitializerAndConstant(t *testing.T) {
	le := binary.LittleEndian
	vals := rawTensorPB("s", 1, le.AppendUint32(le.AppendUint32(nil, math.Float32bits(7)), math.Float32bits(8)), 2)
	linear := pb{}.int(1, 2).int(2, 7).bytes(7, packedVarints(1, 5)) // flat indices
	coords := pb{}.int(1, 2).int(1, 2).int(2, 7).bytes(7, packedVarints(0, 1, 1, 2))
	sparse := func(idx pb) pb { return pb{}.msg(1, vals).msg(2, idx).bytes(3, packedVarints(2, 3)) }
	g := pb{}.str(2, "g").
		msg(15, sparse(linear)).
		msg(1, nodePB("c", "Constant", nil, []string{"k"}, pb{}.str(1, "sparse_value").int(20, 11).msg(22, sparse(coords)))).
		msg(1, nodePB("a", "Add", []string{"s", "k"}, []string{"y"})).
		msg(12, valueInfoPB("y", 1, 2, 3))
	m, err := Decode(modelPB(8, 13, g), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 7, 0, 0, 0, 8}
	if got := m.Graph.Initializers[0].Const.F32(); !reflect.DeepEqual(got, want) {
		t.Errorf("sparse initializer %v, want %v", got, want)
	}
	k := m.Graph.Nodes[0].Attrs["value"]
	if k == nil || k.Kind != graph.AttrTensor || !reflect.DeepEqual(k.T.F32(), want) || !reflect.DeepEqual(k.T.Shape(), []int{2, 3}) {
		t.Errorf("Constant sparse_value became %+v", k)
	}
}

// TestConstantKeepsElemType: a float16 Constant is held in float32 but
// its output keeps the float16 type, and export writes float16 again.
func TestConstantKeepsElemType(t *testing.T) {
	le := binary.LittleEndian
	val := rawTensorPB("", 10, le.AppendUint16(le.AppendUint16(nil, 0x3555), 0xfbff), 2) // 0.33325195, -65504
	g := pb{}.str(2, "g").
		msg(1, nodePB("c", "Constant", nil, []string{"k"}, pb{}.str(1, "value").int(20, 4).msg(5, val))).
		msg(12, valueInfoPB("k", 10, 2))
	data := modelPB(8, 13, g)
	m, err := Decode(data, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k := m.Graph.Nodes[0]
	if got := k.Attrs["value"].T.F32(); got[0] != 0.33325195 || got[1] != -65504 {
		t.Errorf("values %v", got)
	}
	out, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	// The exported tensor attribute is float16 with the same bits.
	d := &decoder{s: memStream(out)}
	pm, err := d.model(0, int64(len(out)))
	if err != nil {
		t.Fatal(err)
	}
	pt := pm.graph.nodes[0].attrs[0].t
	if raw := out[pt.raw : pt.raw+pt.rawN]; pt.dataType != 10 || string(raw) != string(val[len(val)-4:]) {
		t.Errorf("exported value: type %d, raw %x; want float16 %x", pt.dataType, raw, val[len(val)-4:])
	}
}
