package npy

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/quanta-go/quanta/tensor"
)

// npyFile assembles a file from a version, a raw header (newline and
// padding included) and data.
func npyFile(major byte, hdr string, data []byte) []byte {
	b := append([]byte(magic), major, 0)
	if major == 1 {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(hdr)))
	} else {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(hdr)))
	}
	return append(append(b, hdr...), data...)
}

// streamOnly hides a reader's Len method, so Read cannot trust any length.
type streamOnly struct{ r io.Reader }

func (s streamOnly) Read(p []byte) (int, error) { return s.r.Read(p) }

func TestParseHeader(t *testing.T) {
	ok := []struct {
		hdr   string
		major byte
		want  header
	}{
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 1, header{"<f4", false, []int{2, 3}}},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (), }      \n", 1, header{"<f4", false, []int{}}},
		{"{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }\n", 1, header{"|u1", false, []int{3}}},
		{`{"shape":(4,5,),"fortran_order":True,"descr":">i8"}` + "\n", 2, header{">i8", true, []int{4, 5}}},
		{"{ 'descr' : '<f8' ,\n 'fortran_order' : False , 'shape' : ( 7 , ) }\n", 3, header{"<f8", false, []int{7}}},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 0L), }\n", 1, header{"<f4", false, []int{3, 0}}},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }\n", 1, header{"<f4", false, []int{0}}},
	}
	for _, c := range ok {
		h, err := parseHeader(c.hdr, c.major)
		if err != nil {
			t.Errorf("%q: %v", c.hdr, err)
			continue
		}
		if h.descr != c.want.descr || h.fortran != c.want.fortran || !slices.Equal(h.shape, c.want.shape) || h.shape == nil {
			t.Errorf("%q: got %+v, want %+v", c.hdr, h, c.want)
		}
	}
	bad := []struct {
		hdr   string
		major byte
		want  string
	}{
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 1, "does not end with a newline"},
		{"['descr']\n", 1, `expected '{'`},
		{"{'descr': '<f4', 'fortran_order': False}\n", 1, "key 'shape' is missing"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}\n", 1, "unexpected key 'x'"},
		{"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}\n", 1, "appears twice"},
		{"{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,)}\n", 1, "structured dtypes are not supported"},
		{"{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}\n", 1, "must be True or False"},
		{"{'descr': '<f4', 'fortran_order': Falsey, 'shape': (1,)}\n", 1, "must be True or False"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (3)}\n", 1, "is an integer, not a tuple"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': 3}\n", 1, "must be a tuple"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': [3]}\n", 1, "must be a tuple"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}\n", 1, "negative dimension"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (03,)}\n", 1, "leading zero"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (0x3,)}\n", 1, "malformed dimension"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (3L,)}\n", 3, "malformed dimension"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}\n", 1, "too large"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (1 2)}\n", 1, `expected ','`},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (1,,)}\n", 1, "expected a dimension"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)\n", 1, "found the end of the header"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x\n", 1, "after the dictionary"},
		{"{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}\n", 1, `expected ','`},
		{"{'descr': '<f\\x34', 'fortran_order': False, 'shape': (1,)}\n", 1, "escape sequences"},
		{"{'descr: '<f4', 'fortran_order': False, 'shape': (1,)}\n", 1, `expected ':'`},
		{"{descr: '<f4'}\n", 1, "expected a quoted string"},
		{"{,}\n", 1, "expected a quoted string"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (" + strings.Repeat("1, ", 65) + ")}\n", 1, "more than 64 dimensions"},
		{"{'descr': '\xff', 'fortran_order': False, 'shape': ()}\n", 3, "not valid UTF-8"},
	}
	for _, c := range bad {
		_, err := parseHeader(c.hdr, c.major)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.hdr, err, c.want)
		}
	}
}

func TestParseDescr(t *testing.T) {
	for descr, want := range map[string]elem{
		"<f4": {'f', 4, false, tensor.Float32}, ">f8": {'f', 8, true, tensor.Float32},
		"|u1": {'u', 1, false, tensor.Uint8}, "u1": {'u', 1, false, tensor.Uint8}, "=i1": {'i', 1, false, tensor.Int8},
		">b1": {'b', 1, false, tensor.Bool}, "<u4": {'u', 4, false, tensor.Int64}, ">i2": {'i', 2, true, tensor.Int32},
	} {
		if got, err := parseDescr(descr); err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", descr, got, err, want)
		}
	}
	for descr, want := range map[string]string{
		"":        "not a type string",
		"float32": "not a type string",
		"=f4":     "native byte order",
		"|f4":     "no byte order",
		"f4":      "no byte order",
		"<u8":     "uint64",
		"<f16":    "float of 16 bytes",
		"<i0":     "not a type string",
		"<i1x":    "not a type string",
		"<c8":     "complex",
		"|O":      "Python object",
		"<M8[ns]": "datetime64",
		"<i3":     "int of 3 bytes",
		"|S5":     "byte string",
	} {
		if _, err := parseDescr(descr); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", descr, err, want)
		}
	}
}

const hdrF4x2 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n"

func TestReadMalformed(t *testing.T) {
	f4x2 := npyFile(1, hdrF4x2, make([]byte, 8))
	huge := npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }\n", make([]byte, 20))
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "empty input"},
		{"short magic", []byte("\x93NUM"), "truncated magic"},
		{"not npy", []byte("PK\x03\x04 this is a zip"), "not an .npy file"},
		{"short not npy", []byte("ab"), "not an .npy file"},
		{"no version", []byte(magic), "truncated magic and version"},
		{"version 1.1", append([]byte(magic), 1, 1, 0, 0), "format version 1.1 is not supported"},
		{"version 4.0", append([]byte(magic), 4, 0, 0, 0, 0, 0), "format version 4.0"},
		{"short length", append([]byte(magic), 2, 0, 5), "truncated header length"},
		{"header too long", append(append([]byte(magic), 2, 0), 0xff, 0xff, 0xff, 0x7f), "exceeds the 10000-byte limit"},
		{"header beyond data", append(append([]byte(magic), 1, 0), 100, 0, '{'), "exceeds the 1 bytes that remain"},
		{"bad header", npyFile(1, "{'descr': '<f4'}\n", nil), "key 'fortran_order' is missing"},
		{"fortran", npyFile(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }\n", make([]byte, 8)), "Fortran order"},
		{"bad dtype", npyFile(1, "{'descr': '<x4', 'fortran_order': False, 'shape': (2,), }\n", make([]byte, 8)), "'<x4' is not a type string"},
		{"truncated data", f4x2[:len(f4x2)-1], "needs 8 bytes of data but only 7 remain"},
		{"huge shape", huge, "shape (1000000, 1000000) of '<f4' needs 4000000000000 bytes of data but only 20 remain"},
		{"overflowing shape", npyFile(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }\n", nil), "more elements than can be addressed"},
		{"overflow beside a zero", npyFile(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296), }\n", nil), "more elements than can be addressed"},
		{"bad bool", npyFile(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }\n", []byte{1, 0, 2}), "element 2 is the byte 0x02"},
	}
	for _, c := range cases {
		_, err := Read(bytes.NewReader(c.b))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "npy: ") {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
		// Without a known length the same inputs must fail too; buffers
		// then grow only with the data read.
		if _, err := Read(streamOnly{bytes.NewReader(c.b)}); err == nil {
			t.Errorf("%s: accepted from a stream", c.name)
		}
		path := filepath.Join(t.TempDir(), "bad.npy")
		if err := os.WriteFile(path, c.b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: ReadFile error %v, want one naming %s and saying %q", c.name, err, path, c.want)
		}
	}
	// From a stream, a lying shape is found when the data runs out.
	_, err := Read(streamOnly{bytes.NewReader(huge)})
	if err == nil || !strings.Contains(err.Error(), "truncated data: shape (1000000, 1000000) of '<f4' needs 4000000000000 bytes, the input ends after 20") {
		t.Errorf("huge shape from a stream: %v", err)
	}
}

func TestReadFileTrailingBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "two.npy")
	b := npyFile(1, hdrF4x2, make([]byte, 8))
	if err := os.WriteFile(path, append(b, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(path)
	if err == nil || !strings.Contains(err.Error(), "1 bytes follow the array's data") {
		t.Errorf("error %v", err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.npy")); err == nil || !strings.Contains(err.Error(), "missing.npy") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadFile(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
}

// TestReadStream reads arrays saved one after another into one stream,
// through a reader that returns one byte at a time.
func TestReadStream(t *testing.T) {
	a := tensor.FromFloat32([]float32{1, -2}, 2)
	b := tensor.FromInt64([]int64{7}, 1).Reshape()
	var buf bytes.Buffer
	for _, x := range []*tensor.Tensor{a, b} {
		if err := Write(&buf, x); err != nil {
			t.Fatal(err)
		}
	}
	r := iotest.OneByteReader(&buf)
	for _, want := range []*tensor.Tensor{a, b} {
		got, err := Read(r)
		if err != nil || !sameTensor(got, want) {
			t.Fatalf("got %v, %v; want %v", got, err, want)
		}
	}
	if _, err := Read(r); err == nil || !strings.Contains(err.Error(), "empty input") {
		t.Errorf("after the last array: %v", err)
	}
}

func TestReadIOError(t *testing.T) {
	b := npyFile(1, hdrF4x2, make([]byte, 8))
	r := io.MultiReader(bytes.NewReader(b[:len(b)-4]), iotest.ErrReader(io.ErrClosedPipe))
	_, err := Read(r)
	if err == nil || !strings.Contains(err.Error(), "reading data of shape (2,) of '<f4'") || !strings.Contains(err.Error(), io.ErrClosedPipe.Error()) {
		t.Errorf("error %v", err)
	}
}

func TestHalfToFloat32(t *testing.T) {
	// Every half value against an independent formula: (-1)^s * 2^(e-15)
	// * (1 + f/1024) for normals, f * 2^-24 for subnormals.
	for h := 0; h < 1<<16; h++ {
		s, e, f := h>>15, (h>>10)&0x1f, h&0x3ff
		var want float64
		switch {
		case e == 0x1f && f == 0:
			want = math.Inf(1)
		case e == 0x1f:
			if got := halfToFloat32(uint16(h)); got == got {
				t.Fatalf("%#04x: %v, want NaN", h, got)
			}
			continue
		case e == 0:
			want = float64(f) / (1 << 24)
		default:
			want = float64(1024+f) / 1024 * pow2(e-15)
		}
		if s == 1 {
			want = -want
		}
		got := halfToFloat32(uint16(h))
		if float64(got) != want || (want == 0 && (s == 1) != (1/float64(got) < 0)) {
			t.Fatalf("%#04x: %v, want %v", h, got, want)
		}
	}
}

func pow2(e int) float64 {
	v := 1.0
	for ; e > 0; e-- {
		v *= 2
	}
	for ; e < 0; e++ {
		v /= 2
	}
	return v
}
