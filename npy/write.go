package npy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/quanta-go/quanta/tensor"
)

// Write encodes t as an .npy array in C order: format version 1.0 (2.0
// only if the header outgrew 1.0's 16-bit length), the header NumPy 1.24's
// np.save writes byte for byte (padded with spaces so the data starts on a
// 64-byte boundary) and little-endian data. Float32, Int64, Int32, Uint8,
// Int8 and Bool tensors are written as '<f4', '<i8', '<i4', '|u1', '|i1'
// and '|b1'; quantized tensors are an error, since NumPy has no quantized
// dtype.
func Write(w io.Writer, t *tensor.Tensor) error {
	if err := write(w, t); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	return nil
}

func write(w io.Writer, t *tensor.Tensor) error {
	if t == nil {
		return errors.New("nil tensor")
	}
	descr, err := writeDescr(t.DType())
	if err != nil {
		return err
	}
	shape := t.Shape()
	if len(shape) > maxDims {
		return fmt.Errorf("tensor has %d dimensions; NumPy arrays have at most %d", len(shape), maxDims)
	}
	if _, err := w.Write(encodeHeader(descr, shape)); err != nil {
		return err
	}
	switch t.DType() {
	case tensor.Float32:
		return writeElems(w, t.F32(), 4, func(b []byte, v float32) { binary.LittleEndian.PutUint32(b, math.Float32bits(v)) })
	case tensor.Int64:
		return writeElems(w, t.I64(), 8, func(b []byte, v int64) { binary.LittleEndian.PutUint64(b, uint64(v)) })
	case tensor.Int32:
		return writeElems(w, t.I32(), 4, func(b []byte, v int32) { binary.LittleEndian.PutUint32(b, uint32(v)) })
	case tensor.Int8:
		return writeElems(w, t.I8(), 1, func(b []byte, v int8) { b[0] = byte(v) })
	case tensor.Uint8:
		_, err := w.Write(t.U8())
		return err
	case tensor.Bool:
		return writeElems(w, t.Bools(), 1, func(b []byte, v bool) {
			b[0] = 0
			if v {
				b[0] = 1
			}
		})
	}
	return fmt.Errorf("tensor dtype %v has no .npy encoding", t.DType())
}

// writeElems encodes v through a bounded buffer, size bytes per element.
func writeElems[T any](w io.Writer, v []T, size int, put func([]byte, T)) error {
	buf := make([]byte, min(len(v)*size, chunkBytes))
	for len(v) > 0 {
		m := min(len(v), len(buf)/size)
		for i, x := range v[:m] {
			put(buf[i*size:], x)
		}
		if _, err := w.Write(buf[:m*size]); err != nil {
			return err
		}
		v = v[m:]
	}
	return nil
}

// WriteFile writes t (see Write) to path atomically: into a temporary file
// in the same directory, synced and renamed over path, with mode 0644. On
// error path is left as it was. Errors name the file.
func WriteFile(path string, t *tensor.Tensor) error {
	return atomicWrite(path, func(w io.Writer) error { return write(w, t) })
}

// atomicWrite runs fill on a temporary file next to path, then syncs it
// and renames it to path. The temporary file is removed on any error.
func atomicWrite(path string, fill func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("npy: %s: %w", path, err)
		}
	}()
	// CreateTemp makes the file private; give it the mode a plain create
	// gives under the usual umask.
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
