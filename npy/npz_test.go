package npy

import (
	"archive/zip"
	"bytes"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

func TestNPZRoundTrip(t *testing.T) {
	g := tensor.NewRNG(2)
	ts := map[string]*tensor.Tensor{}
	var order []string
	for i, dt := range writeDTypes {
		for j, shape := range roundTripShapes {
			name := dt.String() + "_" + string(rune('a'+j))
			if i == 0 && j == 0 {
				name = "ünïcode name"
			}
			ts[name] = randomTensor(g, dt, shape...)
			order = append(order, name)
		}
	}
	slices.Reverse(order)
	dir := t.TempDir()
	for _, c := range []struct {
		name  string
		write func(string, map[string]*tensor.Tensor, []string) error
	}{{"stored", WriteNPZ}, {"compressed", WriteNPZCompressed}} {
		path := filepath.Join(dir, c.name+".npz")
		if err := c.write(path, ts, order); err != nil {
			t.Fatal(err)
		}
		got, gotOrder, err := ReadNPZ(path)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(gotOrder, order) {
			t.Errorf("%s: order %q, want %q", c.name, gotOrder, order)
		}
		for k, want := range ts {
			if !sameTensor(got[k], want) {
				t.Errorf("%s: %s differs", c.name, k)
			}
		}
		// Equal inputs give equal bytes.
		first, _ := os.ReadFile(path)
		if err := c.write(path, ts, order); err != nil {
			t.Fatal(err)
		}
		second, _ := os.ReadFile(path)
		if !bytes.Equal(first, second) {
			t.Errorf("%s: two writes differ", c.name)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v", c.name, fi.Mode().Perm())
		}
		zr, err := zip.OpenReader(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			if want := map[string]uint16{"stored": zip.Store, "compressed": zip.Deflate}[c.name]; f.Method != want {
				t.Errorf("%s: member %s has method %d", c.name, f.Name, f.Method)
			}
		}
		zr.Close()
	}
	// nil order: sorted keys.
	path := filepath.Join(dir, "sorted.npz")
	if err := WriteNPZ(path, map[string]*tensor.Tensor{"b": tensor.Scalar(1), "a": tensor.Scalar(2)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, order, err := ReadNPZ(path); err != nil || !slices.Equal(order, []string{"a", "b"}) {
		t.Errorf("nil order: %q, %v", order, err)
	}
}

func TestWriteNPZErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.npz")
	one := tensor.Scalar(1)
	q := tensor.NewQuantized(tensor.QInt8, []int8{1}, tensor.PerTensor(1, 0), 1)
	for _, c := range []struct {
		ts    map[string]*tensor.Tensor
		order []string
		want  string
	}{
		{map[string]*tensor.Tensor{"a": one}, []string{"a", "a"}, `"a" is listed twice`},
		{map[string]*tensor.Tensor{"a": one, "b": one}, []string{"a"}, `"b" is missing from the order`},
		{map[string]*tensor.Tensor{"a": one}, []string{"a", "c"}, `"c" is in the order but not among the tensors`},
		{map[string]*tensor.Tensor{"": one}, nil, `name "" is not`},
		{map[string]*tensor.Tensor{"\xff": one}, nil, `is not a non-empty UTF-8 string`},
		{map[string]*tensor.Tensor{"w": one, "q": q}, []string{"w", "q"}, `array "q": tensor is qint8`},
		{map[string]*tensor.Tensor{"n": nil}, nil, `array "n": nil tensor`},
	} {
		err := WriteNPZ(path, c.ts, c.order)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%v %q: error %v, want %q", c.ts, c.order, err, c.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed writes left %d files", len(entries))
	}
}

// zipOf builds an archive: each member is written raw with the given
// header fields (sizes and CRC computed from data unless set).
type member struct {
	name   string
	data   []byte
	method uint16
	flags  uint16
	// declared overrides the uncompressed size (the data is then written
	// raw as if it were the compressed stream).
	declared uint64
}

func zipOf(t testing.TB, ms ...member) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range ms {
		fh := &zip.FileHeader{Name: m.name, Method: m.method, Flags: m.flags,
			CRC32: crc32.ChecksumIEEE(m.data), CompressedSize64: uint64(len(m.data)), UncompressedSize64: uint64(len(m.data))}
		if m.declared != 0 {
			fh.UncompressedSize64 = m.declared
		}
		w, err := zw.CreateRaw(fh)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(m.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadNPZMalformed(t *testing.T) {
	good := npyFile(1, hdrF4x2, make([]byte, 8))
	corrupt := zipOf(t, member{name: "a.npy", data: good})
	corrupt[bytes.Index(corrupt, good)+len(good)-1] ^= 1 // data changed after the CRC was taken
	huge := npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }\n", make([]byte, 20))
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"not zip", []byte("not a zip file at all"), "not a valid .npz (zip) archive"},
		{"npy not npz", good, "not a valid .npz (zip) archive"},
		{"not npy member", zipOf(t, member{name: "a.txt", data: good}), `member "a.txt" is not an .npy file`},
		{"directory", zipOf(t, member{name: "d/", data: nil}), `member "d/" is not an .npy file`},
		{"bare suffix", zipOf(t, member{name: ".npy", data: good}), `member ".npy" is not an .npy file`},
		{"duplicate", zipOf(t, member{name: "a.npy", data: good}, member{name: "a.npy", data: good}), `array "a" appears twice`},
		{"bad member", zipOf(t, member{name: "x.npy", data: good[:20]}), `array "x": header length 58 exceeds the 10 bytes that remain`},
		{"huge shape", zipOf(t, member{name: "big.npy", data: huge}), `array "big": shape (1000000, 1000000) of '<f4' needs 4000000000000 bytes of data but only 20 remain`},
		{"trailing", zipOf(t, member{name: "t.npy", data: append(good, 1, 2)}), `array "t": 2 bytes follow the array's data`},
		{"crc", corrupt, `array "a": after the array's data: zip: checksum error`},
		{"encrypted", zipOf(t, member{name: "e.npy", data: good, flags: 1}), `array "e": member is encrypted`},
		{"method", zipOf(t, member{name: "m.npy", data: good, method: 12}), `array "m": compression method 12 is not supported`},
		{"bomb", zipOf(t, member{name: "z.npy", data: good, method: zip.Deflate, declared: 1 << 40}), `array "z": member declares 1099511627776 bytes from 76 compressed bytes, more than deflate can expand`},
		{"lying size", zipOf(t, member{name: "l.npy", data: good[:40], declared: uint64(len(good))}), `array "l": truncated header: the input ends after 30 of 58 bytes`},
	}
	dir := t.TempDir()
	for _, c := range cases {
		path := filepath.Join(dir, "bad.npz")
		if err := os.WriteFile(path, c.b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := ReadNPZ(path)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "npy: "+path+": ") {
			t.Errorf("%s: error %v, want one naming %s and saying %q", c.name, err, path, c.want)
		}
	}
	// An empty archive holds no arrays.
	path := filepath.Join(dir, "empty.npz")
	os.WriteFile(path, zipOf(t), 0o644)
	if ts, order, err := ReadNPZ(path); err != nil || len(ts) != 0 || len(order) != 0 {
		t.Errorf("empty archive: %v %v %v", ts, order, err)
	}
	if _, _, err := ReadNPZ(filepath.Join(dir, "missing.npz")); err == nil || !strings.Contains(err.Error(), "missing.npz") {
		t.Errorf("missing: %v", err)
	}
}
