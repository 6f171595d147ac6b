package npy

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/quanta-go/quanta/tensor"
)

// maxDeflateRatio bounds how much deflate can expand data (zlib documents
// 1032:1); a member declaring more is corrupt.
const maxDeflateRatio = 1032

// ReadNPZ reads the .npz archive at path, as written by NumPy's savez
// (members stored) or savez_compressed (members deflated). It returns the
// arrays keyed by member name without the ".npy" suffix, and the keys in
// the archive's order. Every member must be an .npy file (read as by Read,
// with no bytes after its data) and names must be unique. Errors name the
// file and, where one is at fault, the array.
func ReadNPZ(path string) (map[string]*tensor.Tensor, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("npy: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("npy: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("npy: %s: not a regular file", path)
	}
	ts, order, err := readNPZ(f, fi.Size())
	if err != nil {
		return nil, nil, fmt.Errorf("npy: %s: %w", path, err)
	}
	return ts, order, nil
}

// readNPZ reads an .npz archive of size bytes from r.
func readNPZ(r io.ReaderAt, size int64) (map[string]*tensor.Tensor, []string, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		// Names are only keys here, never paths on disk, so the
		// insecure-path check does not apply.
		return nil, nil, fmt.Errorf("not a valid .npz (zip) archive: %w", err)
	}
	ts := make(map[string]*tensor.Tensor, len(zr.File))
	order := make([]string, 0, len(zr.File))
	for _, zf := range zr.File {
		key, ok := strings.CutSuffix(zf.Name, ".npy")
		if !ok || key == "" {
			return nil, nil, fmt.Errorf("member %q is not an .npy file", zf.Name)
		}
		if _, dup := ts[key]; dup {
			return nil, nil, fmt.Errorf("array %q appears twice", key)
		}
		t, err := readMember(zf)
		if err != nil {
			return nil, nil, fmt.Errorf("array %q: %w", key, err)
		}
		ts[key] = t
		order = append(order, key)
	}
	return ts, order, nil
}

// readMember reads the one array of an .npz member.
func readMember(zf *zip.File) (*tensor.Tensor, error) {
	if zf.Flags&0x1 != 0 {
		return nil, errors.New("member is encrypted")
	}
	switch zf.Method {
	case zip.Store, zip.Deflate:
	default:
		return nil, fmt.Errorf("compression method %d is not supported (stored and deflated members are)", zf.Method)
	}
	if zf.UncompressedSize64 > math.MaxInt64 {
		return nil, fmt.Errorf("member declares %d bytes", zf.UncompressedSize64)
	}
	if u := zf.UncompressedSize64; zf.Method == zip.Deflate && u > 1024 && (u-1024)/maxDeflateRatio > zf.CompressedSize64 {
		return nil, fmt.Errorf("member declares %d bytes from %d compressed bytes, more than deflate can expand", zf.UncompressedSize64, zf.CompressedSize64)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// The declared size is checked against shapes, but buffers grow only
	// with the data actually decompressed.
	src := &source{r: rc, left: int64(zf.UncompressedSize64)}
	t, err := readArray(src)
	if err != nil {
		return nil, err
	}
	// Read to the end: the zip reader verifies the size and CRC-32 there.
	extra, err := io.Copy(io.Discard, rc)
	if err != nil {
		return nil, fmt.Errorf("after the array's data: %w", err)
	}
	if extra > 0 {
		return nil, fmt.Errorf("%d bytes follow the array's data", extra)
	}
	return t, nil
}

// WriteNPZ writes ts to path as an .npz archive of stored (uncompressed)
// members, as NumPy's savez does; WriteNPZCompressed deflates them. order
// lists the keys in the order the members are written and must name every
// key of ts exactly once; nil means sorted order. Keys are non-empty UTF-8
// strings; member names are the keys plus ".npy". The archive's timestamps
// are fixed (1980-01-01), so equal inputs give equal bytes. The file is
// written atomically as by WriteFile.
func WriteNPZ(path string, ts map[string]*tensor.Tensor, order []string) error {
	return writeNPZ(path, ts, order, zip.Store)
}

// WriteNPZCompressed is WriteNPZ with deflated members, as NumPy's
// savez_compressed writes them.
func WriteNPZCompressed(path string, ts map[string]*tensor.Tensor, order []string) error {
	return writeNPZ(path, ts, order, zip.Deflate)
}

func writeNPZ(path string, ts map[string]*tensor.Tensor, order []string, method uint16) error {
	keys, err := npzOrder(ts, order)
	if err != nil {
		return fmt.Errorf("npy: %s: %w", path, err)
	}
	return atomicWrite(path, func(w io.Writer) error { return encodeNPZ(w, ts, keys, method) })
}

// npzOrder checks order against the keys of ts (nil: sorted keys).
func npzOrder(ts map[string]*tensor.Tensor, order []string) ([]string, error) {
	if order == nil {
		order = make([]string, 0, len(ts))
		for k := range ts {
			order = append(order, k)
		}
		slices.Sort(order)
	}
	seen := make(map[string]bool, len(order))
	for _, k := range order {
		if k == "" || !utf8.ValidString(k) {
			return nil, fmt.Errorf("array name %q is not a non-empty UTF-8 string", k)
		}
		if seen[k] {
			return nil, fmt.Errorf("array %q is listed twice in the order", k)
		}
		seen[k] = true
		if _, ok := ts[k]; !ok {
			return nil, fmt.Errorf("array %q is in the order but not among the tensors", k)
		}
	}
	for k := range ts {
		if !seen[k] {
			return nil, fmt.Errorf("array %q is missing from the order", k)
		}
	}
	return order, nil
}

// zipEpoch is the timestamp written on every member.
var zipEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// encodeNPZ writes the members named by keys, in that order.
func encodeNPZ(w io.Writer, ts map[string]*tensor.Tensor, keys []string, method uint16) error {
	zw := zip.NewWriter(w)
	for _, k := range keys {
		fh := &zip.FileHeader{Name: k + ".npy", Method: method, Modified: zipEpoch}
		fh.SetMode(0o644)
		mw, err := zw.CreateHeader(fh)
		if err != nil {
			return fmt.Errorf("array %q: %w", k, err)
		}
		if err := write(mw, ts[k]); err != nil {
			return fmt.Errorf("array %q: %w", k, err)
		}
	}
	return zw.Close()
}
