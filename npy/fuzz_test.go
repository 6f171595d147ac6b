package npy

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzReadNPY feeds arbitrary bytes to Read. It must never panic; reading
// with a known length and from a plain stream must agree; and whatever is
// accepted must survive Write and Read unchanged. The committed seed
// corpus is in testdata/fuzz/FuzzReadNPY.
func FuzzReadNPY(f *testing.F) {
	f.Add(npyFile(1, hdrF4x2, []byte{0, 0, 0x80, 0x3f, 0, 0, 0xc0, 0x7f}))
	f.Add(npyFile(2, "{'descr': '>i2', 'fortran_order': False, 'shape': (1, 2), }\n", []byte{1, 2, 3, 4}))
	f.Add(npyFile(3, "{'descr': '|b1', 'fortran_order': False, 'shape': (), }\n", []byte{1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Read(bytes.NewReader(b))
		got2, err2 := Read(streamOnly{bytes.NewReader(b)})
		if (err == nil) != (err2 == nil) {
			t.Fatalf("with a known length: %v; from a stream: %v", err, err2)
		}
		if err != nil {
			return
		}
		if !sameTensor(got, got2) {
			t.Fatalf("known length gives %v, stream gives %v", got, got2)
		}
		var buf bytes.Buffer
		if err := Write(&buf, got); err != nil {
			t.Fatalf("accepted %v but cannot write it: %v", got, err)
		}
		back, err := Read(&buf)
		if err != nil || !sameTensor(back, got) {
			t.Fatalf("round trip of %v gives %v (%v)", got, back, err)
		}
	})
}

// FuzzReadNPZ feeds arbitrary bytes to the .npz reader. It must never
// panic, and whatever is accepted must survive writing (stored and
// deflated) and reading unchanged, order included. The committed seed
// corpus (NumPy's savez and savez_compressed output and damaged copies)
// is in testdata/fuzz/FuzzReadNPZ.
func FuzzReadNPZ(f *testing.F) {
	f.Add(zipOf(f, member{name: "a.npy", data: npyFile(1, hdrF4x2, make([]byte, 8))}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, order, err := readNPZ(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		if len(ts) != len(order) {
			t.Fatalf("%d arrays but %d names in order", len(ts), len(order))
		}
		for _, method := range []uint16{0, 8} {
			var buf bytes.Buffer
			if err := encodeNPZ(&buf, ts, order, method); err != nil {
				t.Fatalf("accepted but cannot write: %v", err)
			}
			back, order2, err := readNPZ(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil || !slices.Equal(order2, order) {
				t.Fatalf("round trip: order %q, want %q (%v)", order2, order, err)
			}
			for k, v := range ts {
				if !sameTensor(back[k], v) {
					t.Fatalf("round trip changed %q", k)
				}
			}
		}
	})
}
