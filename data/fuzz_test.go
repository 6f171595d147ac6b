package data

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzReadIDX feeds arbitrary bytes to ReadIDX: it must never panic, and
// whatever it accepts must be consistent (data length is the product of
// the dimensions) and, for plain files, re-encode to the same bytes. The
// committed seed corpus is in testdata/fuzz/FuzzReadIDX.
func FuzzReadIDX(f *testing.F) {
	f.Add(encodeIDX(0x08, []uint32{3}, []byte{1, 2, 3}))
	f.Add(encodeIDX(0x08, []uint32{1, 2, 2}, []byte{0, 255, 7, 9}))
	f.Add(gzipped(f, encodeIDX(0x08, []uint32{2}, []byte{4, 5})))
	f.Add([]byte{0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := ReadIDX(bytes.NewReader(b), "fuzz")
		if err != nil {
			return
		}
		n := 1
		for _, d := range idx.Dims {
			n *= d
		}
		if len(idx.Data) != n {
			t.Fatalf("dims %v but %d bytes of data", idx.Dims, len(idx.Data))
		}
		if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
			return
		}
		re := []byte{0, 0, 0x08, byte(len(idx.Dims))}
		for _, d := range idx.Dims {
			re = binary.BigEndian.AppendUint32(re, uint32(d))
		}
		re = append(re, idx.Data...)
		if !bytes.Equal(re, b) {
			t.Fatalf("accepted %x but it re-encodes as %x", b, re)
		}
	})
}
