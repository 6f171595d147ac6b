package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

// rawFile builds a safetensors file from a header string and data bytes,
// exactly as the format specifies.
func rawFile(header string, data []byte) []byte {
	out := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(out, uint64(len(header)))
	out = append(out, header...)
	return append(out, data...)
}

func f32le(vs ...float32) []byte {
	var out []byte
	for _, v := range vs {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	return out
}

func TestDecodeHandWritten(t *testing.T) {
	data := append(f32le(1.5, -2, 3.25, 0), binary.LittleEndian.AppendUint64(nil, uint64(1<<40+7))...)
	data = append(data, 0xff, 0x01, 1, 0)
	hdr := `{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},` +
		`"n":{"dtype":"I64","shape":[],"data_offsets":[16,24]},"q":{"dtype":"I8","shape":[2],"data_offsets":[24,26]},` +
		`"b":{"dtype":"BOOL","shape":[2],"data_offsets":[26,28]}}   `
	ts, meta, err := Decode(rawFile(hdr, data))
	if err != nil {
		t.Fatal(err)
	}
	if meta["format"] != "pt" || len(meta) != 1 {
		t.Errorf("metadata %v", meta)
	}
	w := ts["w"]
	if !tensor.SameShape(w.Shape(), []int{2, 2}) || w.At(0, 1) != -2 || w.At(1, 0) != 3.25 {
		t.Errorf("w = %v", w)
	}
	if n := ts["n"]; n.NDim() != 0 || n.I64()[0] != 1<<40+7 {
		t.Errorf("n = %v", n)
	}
	if q := ts["q"].I8(); q[0] != -1 || q[1] != 1 {
		t.Errorf("q = %v", q)
	}
	if b := ts["b"].Bools(); !b[0] || b[1] {
		t.Errorf("b = %v", b)
	}
}

func TestDecodeHalfAndBFloat(t *testing.T) {
	// F16: 1.0=0x3c00, -2.0=0xc000, 65504=0x7bff, smallest subnormal 0x0001=2^-24.
	// BF16: 1.0=0x3f80, -0.5=0xbf00.
	var data []byte
	for _, h := range []uint16{0x3c00, 0xc000, 0x7bff, 0x0001, 0x3f80, 0xbf00} {
		data = binary.LittleEndian.AppendUint16(data, h)
	}
	data = binary.LittleEndian.AppendUint64(data, math.Float64bits(0.1))
	hdr := `{"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"bf":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},` +
		`"d":{"dtype":"F64","shape":[1],"data_offsets":[12,20]}}`
	ts, _, err := Decode(rawFile(hdr, data))
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, -2, 65504, float32(math.Ldexp(1, -24))}
	for i, v := range ts["h"].F32() {
		if v != want[i] {
			t.Errorf("h[%d] = %g, want %g", i, v, want[i])
		}
	}
	if bf := ts["bf"].F32(); bf[0] != 1 || bf[1] != -0.5 {
		t.Errorf("bf = %v", bf)
	}
	if d := ts["d"].F32()[0]; d != float32(0.1) {
		t.Errorf("d = %g", d)
	}
}

func sample() map[string]*tensor.Tensor {
	q := tensor.NewQuantized(tensor.QInt8, []int8{-128, 0, 127, 5}, &tensor.QParams{Scheme: tensor.PerChannelSymmetric,
		Scale: []float32{0.1, 0.25}, ZeroPoint: []int32{0, 0}, Axis: 0, QuantMin: -128, QuantMax: 127}, 2, 2)
	return map[string]*tensor.Tensor{
		"fc.weight":  tensor.FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3),
		"fc.bias":    tensor.FromFloat32([]float32{-1, 0.5}),
		"bn.count":   scalarI64(42),
		"vec.i64":    tensor.FromInt64([]int64{-1, 1 << 40}),
		"i32":        tensor.FromInt32([]int32{-7, 1 << 30}),
		"u8":         tensor.FromUint8([]uint8{0, 255, 3}),
		"i8":         tensor.FromInt8([]int8{-128, 127}),
		"mask":       tensor.FromBool([]bool{true, false, true}),
		"empty":      tensor.Zeros(0, 3),
		"q.weight":   q,
		"qu":         tensor.NewQuantized(tensor.QUInt8, []uint8{1, 2}, tensor.PerTensor(0.5, 3), 2),
		"scalar_f32": tensor.Scalar(2.5),
	}
}

func scalarI64(v int64) *tensor.Tensor {
	t := tensor.New(tensor.Int64)
	t.I64()[0] = v
	return t
}

func equal(a, b *tensor.Tensor) bool {
	if a.DType() != b.DType() || !tensor.SameShape(a.Shape(), b.Shape()) {
		return false
	}
	av, bv := a.Float64s(), b.Float64s()
	for i := range av {
		if av[i] != bv[i] {
			return false
		}
	}
	qa, qb := a.QParams(), b.QParams()
	if (qa == nil) != (qb == nil) {
		return false
	}
	if qa != nil {
		if qa.Scheme != qb.Scheme || qa.Axis != qb.Axis || qa.QuantMin != qb.QuantMin || qa.QuantMax != qb.QuantMax ||
			len(qa.Scale) != len(qb.Scale) {
			return false
		}
		for i := range qa.Scale {
			if qa.Scale[i] != qb.Scale[i] || qa.ZeroPoint[i] != qb.ZeroPoint[i] {
				return false
			}
		}
	}
	return true
}

func TestRoundTripFile(t *testing.T) {
	in := sample()
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := WriteFile(path, in, map[string]string{"epoch": "3"}); err != nil {
		t.Fatal(err)
	}
	out, meta, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(meta) != 1 || meta["epoch"] != "3" {
		t.Errorf("metadata %v", meta)
	}
	if len(out) != len(in) {
		t.Fatalf("%d tensors, want %d", len(out), len(in))
	}
	for k, v := range in {
		if !equal(v, out[k]) {
			t.Errorf("%s: got %v %v, want %v %v", k, out[k], out[k].QParams(), v, v.QParams())
		}
	}
	// Only the final file remains in the directory.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(ents))
	}
}

func TestEncodeLayout(t *testing.T) {
	var buf bytes.Buffer
	if err := Encode(&buf, sample(), nil); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	n := binary.LittleEndian.Uint64(b)
	if n%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", n)
	}
	entries, order, _, err := parseHeader(b[8 : 8+n])
	if err != nil {
		t.Fatal(err)
	}
	// Each tensor's absolute data offset is aligned to its element size.
	for _, name := range order {
		e := entries[name]
		if abs := 8 + int64(n) + e.DataOffsets[0]; abs%int64(elemSize(e.DType)) != 0 {
			t.Errorf("%s (%s) starts at unaligned byte %d", name, e.DType, abs)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := Encode(&buf, map[string]*tensor.Tensor{"x": nil}, nil); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("nil tensor: %v", err)
	}
	if err := Encode(&buf, map[string]*tensor.Tensor{"x": tensor.Zeros(1)}, map[string]string{QParamsPrefix + "x": "{}"}); err == nil {
		t.Error("reserved metadata key accepted")
	}
	bad := tensor.NewQuantized(tensor.QInt8, []int8{1}, nil, 1)
	if err := Encode(&buf, map[string]*tensor.Tensor{"q": bad}, nil); err == nil || !strings.Contains(err.Error(), `"q"`) {
		t.Errorf("quantized without qparams: %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	ok := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"short", []byte{1, 2, 3}, "shorter"},
		{"huge header", rawFile("", nil)[:0:0], "shorter"},
		{"header past end", append(binary.LittleEndian.AppendUint64(nil, 1000), "{}"...), "exceeds"},
		{"header over limit", append(binary.LittleEndian.AppendUint64(nil, MaxHeaderSize+1), "{}"...), "limit"},
		{"not object", rawFile(`[1]`, nil), "start with"},
		{"bad json", rawFile(`{"a":`, nil), `"a"`},
		{"bad json key", rawFile(`{1:2}`, nil), "JSON"},
		{"trailing", rawFile(ok+"x", f32le(1, 2)), "after the JSON"},
		{"truncated data", rawFile(ok, f32le(1)), `"a"`},
		{"extra data", rawFile(ok, f32le(1, 2, 3)), "cover 8"},
		{"dtype", rawFile(`{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}`, f32le(1, 2)), `unsupported dtype "C64"`},
		{"negative dim", rawFile(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, f32le(1, 2)), "negative"},
		{"float dim", rawFile(`{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}`, f32le(1, 2)), `"a"`},
		{"huge shape", rawFile(`{"a":{"dtype":"F32","shape":[2000000000,2000000000],"data_offsets":[0,8]}}`, f32le(1, 2)), "more elements"},
		{"size mismatch", rawFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, f32le(1, 2)), "needs 12 bytes"},
		{"offsets count", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}`, f32le(1, 2)), "2"},
		{"reversed", rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, f32le(1, 2)), `"a"`},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32le(1, 2)), `"b"`},
		{"hole", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32le(1, 2)), "holes"},
		{"duplicate", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32le(1, 2)), "twice"},
		{"bool byte", rawFile(`{"a":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}}`, []byte{1, 2}), "byte value 2"},
		{"metadata type", rawFile(`{"__metadata__":{"k":1}}`, nil), "__metadata__"},
		{"orphan qparams", rawFile(`{"__metadata__":{"quanta.qparams.z":"{}"}}`, nil), "names no tensor"},
		{"bad qparams", rawFile(`{"__metadata__":{"quanta.qparams.a":"{\"dtype\":\"qint8\",\"scheme\":\"per_tensor_affine\",\"scale\":[1],\"zero_point\":[0]}"},`+
			`"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32le(1, 2)), "does not match"},
		{"qparams count", rawFile(`{"__metadata__":{"quanta.qparams.a":"{\"dtype\":\"qint8\",\"scheme\":\"per_channel_affine\",\"scale\":[1],\"zero_point\":[0],\"axis\":0}"},`+
			`"a":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}}`, []byte{1, 2}), "1 scales, want 2"},
		{"bad scale_le", rawFile(`{"__metadata__":{"quanta.qparams.a":"{\"dtype\":\"qint8\",\"scheme\":\"per_channel_affine\",\"scale_le\":\"AAA\",\"axis\":0}"},`+
			`"a":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}}`, []byte{1, 2}), "scale_le"},
		{"scale_le count", rawFile(`{"__metadata__":{"quanta.qparams.a":"{\"dtype\":\"qint8\",\"scheme\":\"per_channel_affine\",\"scale_le\":\"AACAPw==\",\"axis\":0}"},`+
			`"a":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}}`, []byte{1, 2}), "1 scales, want 2"},
		{"not utf8", rawFile("{\"\xff\":1}", nil), "UTF-8"},
	}
	for _, c := range cases {
		_, _, err := Decode(c.file)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.want)
		}
	}
}

func TestDecodeEveryTruncation(t *testing.T) {
	var buf bytes.Buffer
	if err := Encode(&buf, sample(), map[string]string{"a": "b"}); err != nil {
		t.Fatal(err)
	}
	full := buf.Bytes()
	for n := 0; n < len(full); n++ {
		if _, _, err := Decode(full[:n]); err == nil {
			t.Fatalf("prefix of %d/%d bytes decoded without error", n, len(full))
		}
	}
}

func TestReadFileNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.safetensors")
	os.WriteFile(path, rawFile(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, f32le(1)), 0o644)
	_, _, err := ReadFile(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"w"`) {
		t.Errorf("error %v should name %s and tensor w", err, path)
	}
	if _, _, err := ReadFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file read without error")
	}
}

func FuzzDecode(f *testing.F) {
	var buf bytes.Buffer
	Encode(&buf, sample(), map[string]string{"k": "v"})
	f.Add(buf.Bytes())
	f.Add(rawFile(`{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}`, []byte{0, 0x3c}))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, _, err := Decode(data)
		if err != nil {
			return
		}
		// A file that decodes re-encodes and decodes to the same tensors.
		var out bytes.Buffer
		if err := Encode(&out, ts, nil); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, _, err := Decode(out.Bytes())
		if err != nil {
			t.Fatalf("decode of re-encoded file: %v", err)
		}
		for k, v := range ts {
			if !equalBits(v, back[k]) {
				t.Fatalf("tensor %q changed in round trip", k)
			}
		}
	})
}

// equalBits compares values bit for bit (NaN-safe).
func equalBits(a, b *tensor.Tensor) bool {
	if b == nil || a.DType() != b.DType() || !tensor.SameShape(a.Shape(), b.Shape()) {
		return false
	}
	if a.DType() == tensor.Float32 {
		for i, v := range a.F32() {
			if math.Float32bits(v) != math.Float32bits(b.F32()[i]) {
				return false
			}
		}
		return true
	}
	return equal(a, b)
}
