package npy

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

// randomTensor fills a tensor of dtype and shape with values that cover
// the dtype's range (for floats: random bit patterns, so NaNs, infinities
// and subnormals appear).
func randomTensor(g *tensor.RNG, dt tensor.DType, shape ...int) *tensor.Tensor {
	t := tensor.New(dt, shape...)
	switch dt {
	case tensor.Float32:
		for i := range t.F32() {
			t.F32()[i] = math.Float32frombits(uint32(g.Uint64()))
		}
	case tensor.Int64:
		for i := range t.I64() {
			t.I64()[i] = int64(g.Uint64())
		}
	case tensor.Int32:
		for i := range t.I32() {
			t.I32()[i] = int32(g.Uint64())
		}
	case tensor.Int8:
		for i := range t.I8() {
			t.I8()[i] = int8(g.Uint64())
		}
	case tensor.Uint8:
		for i := range t.U8() {
			t.U8()[i] = uint8(g.Uint64())
		}
	case tensor.Bool:
		for i := range t.Bools() {
			t.Bools()[i] = g.Uint64()&1 == 1
		}
	}
	return t
}

var writeDTypes = []tensor.DType{tensor.Float32, tensor.Int64, tensor.Int32, tensor.Int8, tensor.Uint8, tensor.Bool}

var roundTripShapes = [][]int{{}, {0}, {1}, {5}, {3, 0, 2}, {2, 3}, {1, 1, 1, 1}, {7, 1, 9}, {300, 517}}

func TestRoundTrip(t *testing.T) {
	g := tensor.NewRNG(1)
	dir := t.TempDir()
	for _, dt := range writeDTypes {
		for _, shape := range roundTripShapes {
			want := randomTensor(g, dt, shape...)
			var buf bytes.Buffer
			if err := Write(&buf, want); err != nil {
				t.Fatalf("%v %v: %v", dt, shape, err)
			}
			if got := len(buf.Bytes()) - want.Numel()*dt.Size(); got%64 != 0 {
				t.Errorf("%v %v: header of %d bytes is not a multiple of 64", dt, shape, got)
			}
			enc := buf.Bytes()
			for name, r := range map[string]*bytes.Reader{"buffer": bytes.NewReader(enc), "stream": bytes.NewReader(enc)} {
				var got *tensor.Tensor
				var err error
				if name == "stream" {
					got, err = Read(streamOnly{r})
				} else {
					got, err = Read(r)
				}
				if err != nil || !sameTensor(got, want) {
					t.Fatalf("%v %v from a %s: got %v (%v)", dt, shape, name, got, err)
				}
				if r.Len() != 0 {
					t.Errorf("%v %v: %d bytes left unread", dt, shape, r.Len())
				}
			}
			path := filepath.Join(dir, "a.npy")
			if err := WriteFile(path, want); err != nil {
				t.Fatal(err)
			}
			got, err := ReadFile(path)
			if err != nil || !sameTensor(got, want) {
				t.Fatalf("%v %v through a file: %v (%v)", dt, shape, got, err)
			}
		}
	}
}

// TestReadBigEndianMultiChunk reads a big-endian array larger than one
// read chunk from a stream, against values computed independently.
func TestReadBigEndianMultiChunk(t *testing.T) {
	const n = 5 * (3*chunkBytes/40 + 1) // a little over three chunks
	data := make([]byte, 8*n)
	for i := range n {
		binary.BigEndian.PutUint64(data[8*i:], uint64(int64(i)*-7919))
	}
	b := npyFile(1, "{'descr': '>i8', 'fortran_order': False, 'shape': (5, "+strconv.Itoa(n/5)+"), }\n", data)
	for _, r := range []interface{ Read([]byte) (int, error) }{bytes.NewReader(b), streamOnly{bytes.NewReader(b)}} {
		got, err := Read(r)
		if err != nil {
			t.Fatal(err)
		}
		if got.Dim(0) != 5 || got.Dim(1) != n/5 {
			t.Fatalf("shape %v", got.Shape())
		}
		for i, v := range got.I64() {
			if v != int64(i)*-7919 {
				t.Fatalf("element %d = %d, want %d", i, v, int64(i)*-7919)
			}
		}
	}
}

func TestWriteErrors(t *testing.T) {
	q := tensor.NewQuantized(tensor.QUInt8, []uint8{1, 2}, tensor.PerTensor(0.5, 3), 2)
	many := tensor.Zeros(1).Reshape(ones(65)...)
	for name, c := range map[string]struct {
		t    *tensor.Tensor
		want string
	}{
		"nil":       {nil, "nil tensor"},
		"quantized": {q, "quint8, which NumPy has no dtype for"},
		"65 dims":   {many, "65 dimensions"},
	} {
		if err := Write(&bytes.Buffer{}, c.t); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

func ones(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.npy")
	if err := WriteFile(path, tensor.FromInt32([]int32{1, 2, 3})); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	before, _ := os.ReadFile(path)
	// A failing write leaves the old file and no temporary file behind.
	q := tensor.NewQuantized(tensor.QInt8, []int8{1}, tensor.PerTensor(1, 0), 1)
	err = WriteFile(path, q)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("quantized: %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Errorf("failed write changed the file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only out.npy", len(entries))
	}
	bad := filepath.Join(dir, "missing", "x.npy")
	if err := WriteFile(bad, tensor.Scalar(1)); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing directory: %v", err)
	}
}

// TestWrapHeaderVersion2 checks the switch to version 2.0 for a header
// that does not fit 1.0's 16-bit length, and that such a file reads back.
func TestWrapHeaderVersion2(t *testing.T) {
	dict := "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }" + strings.Repeat(" ", 70000)
	if _, ok := wrapHeader(dict, 1); ok {
		t.Fatal("70000-byte header fits version 1.0")
	}
	b, ok := wrapHeader(dict, 2)
	if !ok || b[6] != 2 || len(b)%64 != 0 || int(binary.LittleEndian.Uint32(b[8:])) != len(b)-12 {
		t.Fatalf("version 2.0 header: ok %v, %d bytes, %x", ok, len(b), b[:12])
	}
	h, err := parseHeader(string(b[12:]), 2)
	if err != nil || h.descr != "<f4" || len(h.shape) != 1 || h.shape[0] != 1 {
		t.Errorf("parsed %+v, %v", h, err)
	}
	// NumPy's header limit makes Read refuse it, as np.load does.
	if _, err := Read(bytes.NewReader(append(b, 0, 0, 0, 0))); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("Read: %v", err)
	}
	// Headers for real shapes stay in version 1.0, padded to 64 bytes.
	if b := encodeHeader("<i8", ones(64)); b[6] != 1 || len(b)%64 != 0 {
		t.Errorf("64-d header: version %d, %d bytes", b[6], len(b))
	}
}
