// Package data reads datasets and feeds them to training loops: an IDX
// reader (the format of MNIST and its relatives), the 10,000 MNIST digits
// embedded in the package, a Dataset interface and a deterministic
// DataLoader that yields batches as tensors.
//
// Everything that reads bytes from outside returns an error naming the file
// and what is wrong with it; nothing panics on bad input, and no buffer is
// sized from a header before the data behind it has actually been read.
package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/quanta-go/quanta/tensor"
)

// IDX is a decoded IDX file holding unsigned bytes (element type 0x08),
// the format of the MNIST files: Data holds the elements in row-major order
// of Dims. An idx1 file (labels) has one dimension, an idx3 file (images)
// has three.
type IDX struct {
	// Name is the file name the data was read from, used in error messages.
	Name string
	// Dims are the dimensions from the header, outermost first.
	Dims []int
	// Data holds prod(Dims) elements.
	Data []uint8
}

// idxUbyte is the IDX element-type code of unsigned bytes.
const idxUbyte = 0x08

// idxTypeNames names the element types the IDX format defines, for errors.
var idxTypeNames = map[byte]string{0x08: "ubyte", 0x09: "sbyte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}

// maxIDXElements bounds the element count a header may declare (1 TiB of
// bytes); larger counts are reported as corrupt headers.
const maxIDXElements = 1 << 40

// LoadIDX reads the IDX file at path, gzip-compressed or plain.
func LoadIDX(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	return ReadIDX(f, path)
}

// ReadIDX decodes an IDX stream of unsigned bytes from r. A gzip stream
// (recognised by its magic bytes) is decompressed first, and its checksum
// verified. name identifies the source in errors. The header must start
// with two zero bytes, the element type 0x08 and a non-zero dimension count;
// the data must hold exactly the number of elements the dimensions declare.
func ReadIDX(r io.Reader, name string) (*IDX, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("data: %s: %s", name, fmt.Sprintf(format, args...))
	}
	br := bufio.NewReader(r)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, bad("bad gzip header: %v", err)
		}
		defer zr.Close()
		src = zr
	}

	var hdr [4]byte
	if n, err := io.ReadFull(src, hdr[:]); err != nil {
		return nil, bad("truncated header: read %d of 4 magic bytes (%v)", n, readErr(err))
	}
	if hdr[0] != 0 || hdr[1] != 0 {
		return nil, bad("bad magic %02x%02x%02x%02x: not an IDX file (want 0000 followed by type and dimension count)", hdr[0], hdr[1], hdr[2], hdr[3])
	}
	if hdr[2] != idxUbyte {
		if tn, ok := idxTypeNames[hdr[2]]; ok {
			return nil, bad("element type 0x%02x (%s) is not supported: only unsigned bytes (0x08) are read", hdr[2], tn)
		}
		return nil, bad("bad magic: unknown element type 0x%02x", hdr[2])
	}
	ndim := int(hdr[3])
	if ndim == 0 {
		return nil, bad("bad magic: dimension count is 0")
	}
	dimBytes := make([]byte, 4*ndim) // at most 1020 bytes
	if n, err := io.ReadFull(src, dimBytes); err != nil {
		return nil, bad("truncated header: read %d of %d dimension bytes for %d dimensions (%v)", n, len(dimBytes), ndim, readErr(err))
	}
	dims := make([]int, ndim)
	count := 1
	for i := range dims {
		d := binary.BigEndian.Uint32(dimBytes[4*i:])
		if d > math.MaxInt32 {
			return nil, bad("dimension %d is %d, larger than 2^31-1", i, d)
		}
		dims[i] = int(d)
		if d != 0 && count > maxIDXElements/int(d) {
			return nil, bad("dimensions %v declare more than 2^40 elements", dims[:i+1])
		}
		count *= int(d)
	}

	buf, err := readAtMost(src, count)
	if err != nil {
		return nil, bad("reading data after %d of %d bytes: %v", len(buf), count, readErr(err))
	}
	if len(buf) < count {
		return nil, bad("truncated data: dimensions %v need %d bytes, file holds %d", dims, count, len(buf))
	}
	// Reading to the end also makes gzip verify its checksum and length.
	var extra [1]byte
	switch n, err := io.ReadFull(src, extra[:]); {
	case n > 0:
		return nil, bad("trailing data after the %d bytes that dimensions %v declare", count, dims)
	case err != io.EOF:
		return nil, bad("after data: %v", readErr(err))
	}
	return &IDX{Name: name, Dims: dims, Data: buf}, nil
}

// readAtMost reads up to n bytes from r, growing its buffer only as data
// arrives, so a header that declares more data than the stream holds never
// causes a large allocation. It stops early without error at EOF.
func readAtMost(r io.Reader, n int) ([]byte, error) {
	const first = 64 << 10
	buf := make([]byte, 0, min(n, first))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(n, 2*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// readErr describes a read error, naming an early end of data plainly.
func readErr(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of file"
	}
	return err.Error()
}

// Normalize is the pixel transform applied when IDX images become float32
// tensors. Bytes are always scaled to [0, 1] first (torchvision's ToTensor:
// p/255); then, when Std is not zero, the result is (x - Mean) / Std
// (torchvision's Normalize). The zero value applies ToTensor only.
type Normalize struct {
	Mean, Std float32
}

// MNISTNormalize is the normalization torchvision's MNIST examples use:
// Normalize((0.1307,), (0.3081,)).
var MNISTNormalize = Normalize{Mean: 0.1307, Std: 0.3081}

// table returns the float32 value of every byte under n, computed in
// float32 step by step as torchvision does (div by 255, sub mean, div std).
func (n Normalize) table() [256]float32 {
	var t [256]float32
	for p := range t {
		v := float32(p) / 255
		if n.Std != 0 {
			v = float32(v-n.Mean) / n.Std
		}
		t[p] = v
	}
	return t
}

// Images converts an idx3 file of N images of H×W bytes into a float32
// tensor of shape [N, 1, H, W] with values transformed by norm.
func (f *IDX) Images(norm Normalize) (*tensor.Tensor, error) {
	if len(f.Dims) != 3 {
		return nil, fmt.Errorf("data: %s: images need 3 dimensions [N, H, W], file has %d %v", f.Name, len(f.Dims), f.Dims)
	}
	t := norm.table()
	out := make([]float32, len(f.Data))
	for i, p := range f.Data {
		out[i] = t[p]
	}
	return tensor.FromFloat32(out, f.Dims[0], 1, f.Dims[1], f.Dims[2]), nil
}

// Labels converts an idx1 file of N class indices into an int64 tensor of
// shape [N].
func (f *IDX) Labels() (*tensor.Tensor, error) {
	if len(f.Dims) != 1 {
		return nil, fmt.Errorf("data: %s: labels need 1 dimension [N], file has %d %v", f.Name, len(f.Dims), f.Dims)
	}
	out := make([]int64, len(f.Data))
	for i, p := range f.Data {
		out[i] = int64(p)
	}
	return tensor.FromInt64(out, f.Dims[0]), nil
}
