// Package npy reads and writes NumPy's .npy arrays and .npz archives, the
// formats quanta's command line reads inputs from and writes outputs to.
//
// An .npy file is the magic "\x93NUMPY", a format version (1.0, 2.0 or
// 3.0), a little-endian header length (16 bits in 1.0, 32 bits after),
// a header holding a Python dictionary literal such as
//
//	{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//
// padded with spaces and ended by a newline, then the elements in C
// (row-major) order. The header is parsed strictly: exactly the keys
// 'descr', 'fortran_order' and 'shape', each once and in any order, quoted
// with ' or "; shapes are tuples of non-negative decimal integers ((),
// (3,), (2, 3)); a Python 2 "L" suffix on integers is accepted in versions
// 1.0 and 2.0, as NumPy does; the header is at most 10,000 bytes (NumPy's
// default limit) and at most 64 dimensions. Version 3.0 headers must be
// UTF-8.
//
// quanta tensors have no float64 or float16 dtype, so '<f8' arrays are read
// as Float32 with each value rounded to the nearest float32 (beyond
// float32's range to ±Inf), and '<f2' as Float32 exactly; int16 and uint16
// widen to Int32 and uint32 to Int64. Big-endian arrays ('>f4', ...) are
// converted on reading. Fortran-order arrays are rejected (save them with
// np.ascontiguousarray), as are structured, string, object, complex,
// datetime and uint64 arrays. Writing always produces little-endian C-order
// version 1.0 files byte-identical to NumPy 1.24's np.save.
//
// Nothing a file declares is trusted: the header length, element count and
// byte count are checked against the data available before any buffer is
// sized from them (and, where the length of the input is not known, buffers
// grow only as data arrives), so a lying header is an error naming the file
// and what is wrong, never a panic or a huge allocation. Errors from
// ReadFile, ReadNPZ and the writers name the file, and for an .npz the
// array.
package npy
