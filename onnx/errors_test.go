package onnx

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// reluGraph is a valid one-node graph to break in the error cases.
func reluGraph(extra ...pb) pb {
	g := pb{}.str(2, "g").
		msg(1, nodePB("r", "Relu", []string{"x"}, []string{"y"})).
		msg(11, valueInfoPB("x", 1, 2)).msg(12, valueInfoPB("y", 1, 2))
	for _, e := range extra {
		g = append(g, e...)
	}
	return g
}

func TestDecodeErrors(t *testing.T) {
	le := binary.LittleEndian
	f32 := func(n int) []byte { return make([]byte, 4*n) }
	initG := func(tensor pb) pb { return reluGraph(pb{}.msg(5, tensor)) }
	deep := pb{}.str(2, "leaf")
	for range maxDepth + 2 {
		deep = pb{}.str(2, "d").msg(1, nodePB("", "If", []string{"x"}, []string{""},
			pb{}.str(1, "then_branch").int(20, 5).msg(6, deep)))
	}
	cases := []struct {
		name string
		data []byte
		want []string // pieces of the error, after "onnx: bad.onnx: "
	}{
		{"empty", nil, []string{"the model has no graph"}},
		{"truncated varint", []byte{0x08, 0x80}, []string{"byte 1: field 1: truncated or overlong varint"}},
		{"truncated tag", []byte{0x80}, []string{"byte 0: bad field tag"}},
		{"wrong wire type", pb{}.str(1, "eight"), []string{"field 1 (ir_version) has wire type length-delimited, want varint"}},
		{"length beyond data", append(pb{}.int(1, 8), 0x3a, 100, 1, 2, 3), []string{"field 7 declares 100 bytes but only 3 remain"}},
		{"nested length beyond data", modelPB(8, 13, append(pb{}, 0x0a, 50, 0x0a)), []string{"graph: byte", "field 1 declares 50 bytes but only 1 remain"}},
		{"group wire type", []byte{0x0b}, []string{"field 1 has invalid wire type 3"}},
		{"no default opset", pb{}.int(1, 8).msg(7, reluGraph()), []string{"imports no opset of the default domain"}},
		{"opset too new", modelPB(10, 22, reluGraph()), []string{"opset 22 of the default ONNX domain is not supported (7 to 21 are)"}},
		{"opset too old", modelPB(3, 6, reluGraph()), []string{"opset 6 of the default ONNX domain"}},
		{"opset twice", pb{}.msg(8, opsetPB("", 13)).msg(8, opsetPB("ai.onnx", 12)).msg(7, reluGraph()), []string{`lists domain "ai.onnx" twice`}},
		{"undefined input", modelPB(8, 13, reluGraph(pb{}.msg(1, nodePB("", "Add", []string{"y", "nope"}, []string{"z"})))),
			[]string{`graph "g": node Add_0 (Add): input 1 "nope" is not defined`}},
		{"cycle", modelPB(8, 13, pb{}.str(2, "g").
			msg(1, nodePB("p", "Relu", []string{"b"}, []string{"a"})).
			msg(1, nodePB("q", "Relu", []string{"a"}, []string{"b"})).msg(12, valueInfoPB("a", 1))),
			[]string{"cycle through nodes p (Relu), q (Relu)"}},
		{"defined twice", modelPB(8, 13, reluGraph(pb{}.msg(1, nodePB("dup", "Relu", []string{"x"}, []string{"y"})))),
			[]string{`output of node dup (Relu) "y" is defined twice`}},
		{"undefined output", modelPB(8, 13, reluGraph(pb{}.msg(12, valueInfoPB("ghost", 1)))), []string{`output "ghost" is not defined`}},
		{"no op type", modelPB(8, 13, reluGraph(pb{}.msg(1, pb{}.str(3, "n").str(1, "x")))), []string{"node 1 (n) has no op_type"}},
		{"unnamed initializer", modelPB(8, 13, initG(rawTensorPB("", 1, f32(1), 1))), []string{"initializer has no name"}},
		{"dims overflow", modelPB(8, 13, initG(rawTensorPB("w", 1, nil, 1<<40, 1<<40))),
			[]string{`initializer 0 "w": dims [1099511627776 1099511627776] hold too many elements`}},
		{"negative dim", modelPB(8, 13, initG(rawTensorPB("w", 1, nil, -1))), []string{`initializer 0 "w": negative dimension -1`}},
		{"raw size mismatch", modelPB(8, 13, initG(rawTensorPB("w", 1, f32(2), 3))),
			[]string{`initializer 0 "w": raw_data has 8 bytes, dims [3] of float32 need 12`}},
		{"typed count mismatch", modelPB(8, 13, initG(pb{}.int(1, 3).int(2, 7).str(8, "w").int(7, 1))),
			[]string{`"w": int64_data has 1 elements, dims [3] need 3`}},
		{"no data", modelPB(8, 13, initG(pb{}.int(1, 1000000).int(2, 1).str(8, "w"))),
			[]string{`"w": dims [1000000] hold 1000000 elements but the tensor has no data`}},
		{"unknown data type", modelPB(8, 13, initG(rawTensorPB("w", 99, nil, 0))), []string{`initializer 0 "w": data type elem(99) (99) is not supported`}},
		{"string tensor", modelPB(8, 13, initG(pb{}.int(1, 1).int(2, 8).str(8, "w").str(6, "s"))), []string{"data type string (8) is not supported"}},
		{"float8 tensor", modelPB(8, 13, initG(rawTensorPB("w", 17, []byte{1}, 1))), []string{"data type float8e4m3fn (17) is not supported"}},
		{"no data type", modelPB(8, 13, initG(pb{}.str(8, "w"))), []string{"data_type is not set"}},
		{"segment", modelPB(8, 13, initG(rawTensorPB("w", 1, f32(1), 1).msg(3, pb{}))), []string{"segmented tensors are not supported"}},
		{"packed floats ragged", modelPB(8, 13, initG(pb{}.int(1, 1).int(2, 1).str(8, "w").bytes(4, []byte{1, 2, 3}))),
			[]string{"field 4 (float_data): packed fixed32 data of 3 bytes"}},
		{"packed varint truncated", modelPB(8, 13, initG(pb{}.int(2, 7).str(8, "w").bytes(7, []byte{0x80}))),
			[]string{"field 7 (int64_data): truncated varint in packed data"}},
		{"attribute wire type", modelPB(8, 13, reluGraph(pb{}.msg(1, nodePB("n", "Relu", []string{"x"}, []string{"z"},
			pb{}.str(1, "alpha").int(20, 1).int(2, 3))))), []string{`node 1 (n, Relu): attribute "alpha": byte`, "field 2 (f) has wire type varint, want fixed32"}},
		{"attribute without value", modelPB(8, 13, reluGraph(pb{}.msg(1, nodePB("n", "Relu", []string{"x"}, []string{"z"},
			pb{}.str(1, "g").int(20, 5))))), []string{`node n (Relu): attribute "g": graph attribute has no graph`}},
		{"attribute given twice", modelPB(8, 13, reluGraph(pb{}.msg(1, nodePB("n", "Relu", []string{"x"}, []string{"z"},
			pb{}.str(1, "a").int(20, 2), pb{}.str(1, "a").int(20, 2))))), []string{`node n (Relu): attribute "a" is given twice`}},
		{"type attribute", modelPB(8, 13, reluGraph(pb{}.msg(1, nodePB("n", "Relu", []string{"x"}, []string{"z"},
			pb{}.str(1, "tp").int(20, 13))))), []string{"attributes of type type (13) are not supported"}},
		{"model function", pb{}.int(1, 8).msg(8, opsetPB("", 13)).msg(8, opsetPB("local", 1)).
			msg(25, pb{}.str(1, "MyOp").str(10, "local")).
			msg(7, reluGraph(pb{}.msg(1, nodePB("f", "MyOp", []string{"x"}, []string{"z"}).str(7, "local")))),
			[]string{"node f (local.MyOp): model functions are not supported"}},
		{"shadowing", modelPB(8, 13, reluGraph(pb{}.msg(1, nodePB("i", "If", []string{"x"}, []string{"z"},
			pb{}.str(1, "then_branch").int(20, 5).msg(6, pb{}.str(2, "b").msg(1, nodePB("", "Relu", []string{"x"}, []string{"y"})).msg(12, valueInfoPB("y", 1))))))),
			[]string{`node i (If): attribute "then_branch": graph "b": output of node Relu_0 (Relu) "y" hides a value of the enclosing graph`}},
		{"too deep", modelPB(8, 13, pb{}.str(2, "g").msg(11, valueInfoPB("x", 9)).msg(1, nodePB("", "If", []string{"x"}, []string{""},
			pb{}.str(1, "then_branch").int(20, 5).msg(6, deep)))), []string{"subgraphs nested deeper than 64 levels"}},
		{"sparse out of range", modelPB(8, 13, reluGraph(pb{}.msg(15, pb{}.msg(1, rawTensorPB("s", 1, le.AppendUint32(nil, 1), 1)).
			msg(2, pb{}.int(1, 1).int(2, 7).int(7, 9)).int(3, 4)))), []string{"sparse index 9 out of range for dims [4]"}},
		{"sparse too large", modelPB(8, 13, reluGraph(pb{}.msg(15, pb{}.msg(1, rawTensorPB("s", 1, le.AppendUint32(nil, 1), 1)).
			msg(2, pb{}.int(1, 1).int(2, 7).int(7, 0)).int(3, 1<<30)))), []string{"sparse tensor dims [1073741824] are too large for 1 values"}},
		{"external without dir", modelPB(8, 13, initG(pb{}.int(1, 1).int(2, 1).str(8, "w").int(14, 1).
			msg(13, pb{}.str(1, "location").str(2, "w.bin")))), []string{`"w": external data: "w.bin": no directory to read external data from`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.data, DecodeOptions{Name: "bad.onnx"})
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "onnx: bad.onnx: ") {
				t.Errorf("error %q does not name the model", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	data := modelPB(8, 13, reluGraph(pb{}.msg(5, rawTensorPB("w", 1, make([]byte, 4), 2))))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path+": ") || !strings.Contains(err.Error(), `"w": raw_data has 4 bytes`) {
		t.Errorf("Load error %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.onnx")); err == nil || !strings.Contains(err.Error(), "missing.onnx") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
	// A truncated file: the graph is the last field, so every proper
	// prefix of the model is an error (a cut field or no graph), read
	// from a file or from memory.
	good := modelPB(8, 13, reluGraph(pb{}.msg(5, rawTensorPB("w", 1, make([]byte, 8), 2))))
	for n := range len(good) {
		if err := os.WriteFile(path, good[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil {
			t.Errorf("Load of a %d-byte prefix succeeded", n)
		}
		if _, err := Decode(good[:n], DecodeOptions{}); err == nil {
			t.Errorf("Decode of a %d-byte prefix succeeded", n)
		}
	}
	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Error(err)
	}
}
