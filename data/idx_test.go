package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// encodeIDX builds an IDX file by hand: two zero bytes, the type code, the
// dimension count, big-endian dimensions, then the data.
func encodeIDX(typ byte, dims []uint32, payload []byte) []byte {
	b := []byte{0, 0, typ, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, payload...)
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadIDXValid(t *testing.T) {
	img := []byte{0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255}
	cases := []struct {
		name string
		file []byte
		dims []int
		data []byte
	}{
		{"idx1", encodeIDX(0x08, []uint32{3}, []byte{7, 0, 9}), []int{3}, []byte{7, 0, 9}},
		{"idx3", encodeIDX(0x08, []uint32{2, 2, 3}, img), []int{2, 2, 3}, img},
		{"idx3.gz", gzipped(t, encodeIDX(0x08, []uint32{2, 2, 3}, img)), []int{2, 2, 3}, img},
		{"empty-dim", encodeIDX(0x08, []uint32{0, 28, 28}, nil), []int{0, 28, 28}, []byte{}},
		{"idx2", encodeIDX(0x08, []uint32{1, 2}, []byte{5, 6}), []int{1, 2}, []byte{5, 6}},
	}
	for _, c := range cases {
		f, err := ReadIDX(bytes.NewReader(c.file), c.name)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if f.Name != c.name || !equalInts(f.Dims, c.dims) || !bytes.Equal(f.Data, c.data) {
			t.Errorf("%s: got name %q dims %v data %v, want dims %v data %v", c.name, f.Name, f.Dims, f.Data, c.dims, c.data)
		}
	}
}

func TestReadIDXLargeFileCrossesBufferGrowth(t *testing.T) {
	// 300,000 bytes: more than the reader's first 64 KiB buffer, so the
	// buffer grows several times.
	payload := make([]byte, 300000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	for _, file := range [][]byte{encodeIDX(0x08, []uint32{300, 1000}, payload), gzipped(t, encodeIDX(0x08, []uint32{300, 1000}, payload))} {
		f, err := ReadIDX(bytes.NewReader(file), "big")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.Data, payload) {
			t.Fatal("data differs from what was written")
		}
	}
}

func TestReadIDXErrors(t *testing.T) {
	good := encodeIDX(0x08, []uint32{2, 3}, []byte{1, 2, 3, 4, 5, 6})
	badCRC := gzipped(t, good)
	badCRC[len(badCRC)-6] ^= 0xff // flip a CRC-32 byte in the gzip trailer
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "truncated header: read 0 of 4 magic bytes"},
		{"short-magic", []byte{0, 0, 8}, "truncated header: read 3 of 4"},
		{"bad-magic", []byte{1, 2, 8, 1, 0, 0, 0, 0}, "bad magic 01020801: not an IDX file"},
		{"float-type", encodeIDX(0x0D, []uint32{1}, []byte{0, 0, 0, 0}), "element type 0x0d (float32) is not supported"},
		{"unknown-type", encodeIDX(0x07, []uint32{1}, []byte{0}), "unknown element type 0x07"},
		{"no-dims", []byte{0, 0, 8, 0}, "dimension count is 0"},
		{"short-dims", []byte{0, 0, 8, 3, 0, 0, 0, 1, 0, 0}, "truncated header: read 6 of 12 dimension bytes for 3 dimensions"},
		{"short-data", good[:len(good)-2], "truncated data: dimensions [2 3] need 6 bytes, file holds 4"},
		{"short-data.gz", gzipped(t, good[:len(good)-1]), "truncated data: dimensions [2 3] need 6 bytes, file holds 5"},
		{"cut-gzip", gzipped(t, good)[:20], "unexpected end of file"},
		{"trailing", append(append([]byte{}, good...), 9), "trailing data after the 6 bytes that dimensions [2 3] declare"},
		{"bad-crc.gz", badCRC, "checksum"},
		{"huge-dim", encodeIDX(0x08, []uint32{0x80000000}, nil), "dimension 0 is 2147483648, larger than 2^31-1"},
		{"too-many-elements", encodeIDX(0x08, []uint32{1 << 30, 1 << 30, 1 << 30}, nil), "declare more than 2^40 elements"},
		{"not-gzip-after-magic", []byte{0x1f, 0x8b, 0, 0}, "bad gzip header"},
	}
	for _, c := range cases {
		_, err := ReadIDX(bytes.NewReader(c.file), c.name)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, c.name+": ") || !strings.Contains(msg, c.want) {
			t.Errorf("%s: error %q does not name the file and %q", c.name, msg, c.want)
		}
	}
}

func TestReadIDXDoesNotTrustHeaderForAllocation(t *testing.T) {
	// The header declares 2^40 elements; the file holds 10 bytes. The
	// reader must fail after allocating about what the file holds.
	file := encodeIDX(0x08, []uint32{1 << 20, 1 << 20}, make([]byte, 10))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := ReadIDX(bytes.NewReader(file), "lying-header")
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "need 1099511627776 bytes, file holds 10") {
		t.Fatalf("error %v, want a truncated-data error", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("allocated %d bytes for a 22-byte file", got)
	}
}

func TestLoadIDX(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "labels-idx1-ubyte.gz")
	if err := os.WriteFile(path, gzipped(t, encodeIDX(0x08, []uint32{4}, []byte{1, 2, 3, 4})), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := LoadIDX(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != path || !bytes.Equal(f.Data, []byte{1, 2, 3, 4}) {
		t.Errorf("got %q %v", f.Name, f.Data)
	}
	missing := filepath.Join(dir, "missing")
	if _, err := LoadIDX(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: error %v does not name it", err)
	}
}

func TestImagesAndLabels(t *testing.T) {
	f := &IDX{Name: "imgs", Dims: []int{2, 1, 3}, Data: []byte{0, 128, 255, 1, 2, 3}}
	for _, norm := range []Normalize{{}, MNISTNormalize} {
		x, err := f.Images(norm)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{2, 1, 1, 3}; !equalInts(x.Shape(), want) {
			t.Fatalf("shape %v, want %v", x.Shape(), want)
		}
		for i, p := range f.Data {
			want := float64(p) / 255
			if norm.Std != 0 {
				want = (want - float64(norm.Mean)) / float64(norm.Std)
			}
			if got := float64(x.F32()[i]); math.Abs(got-want) > 1e-6 {
				t.Errorf("norm %+v pixel %d: got %v want %v", norm, p, got, want)
			}
		}
	}
	if _, err := f.Labels(); err == nil || !strings.Contains(err.Error(), "imgs: labels need 1 dimension") {
		t.Errorf("labels from an idx3 file: error %v", err)
	}
	l := &IDX{Name: "labs", Dims: []int{3}, Data: []byte{9, 0, 4}}
	y, err := l.Labels()
	if err != nil {
		t.Fatal(err)
	}
	if got := y.I64(); len(got) != 3 || got[0] != 9 || got[1] != 0 || got[2] != 4 {
		t.Errorf("labels %v", got)
	}
	if _, err := l.Images(Normalize{}); err == nil || !strings.Contains(err.Error(), "labs: images need 3 dimensions") {
		t.Errorf("images from an idx1 file: error %v", err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
