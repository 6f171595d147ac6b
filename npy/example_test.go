package npy_test

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/quanta-go/quanta/npy"
	"github.com/quanta-go/quanta/tensor"
)

// Example writes a tensor as .npy bytes (what np.save writes) and reads it
// back.
func Example() {
	x := tensor.FromFloat32([]float32{1, 2.5, -3, 0.125, 8, 9}, 2, 3)
	var buf bytes.Buffer
	if err := npy.Write(&buf, x); err != nil {
		log.Fatal(err)
	}
	b := buf.Bytes()
	fmt.Printf("%q... (%d bytes)\n", b[:bytes.IndexByte(b, '}')+1], len(b))
	y, err := npy.Read(&buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(y.DType(), y.Shape(), y.F32())
	// Output:
	// "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"... (152 bytes)
	// float32 [2 3] [1 2.5 -3 0.125 8 9]
}

// ExampleReadNPZ saves named arrays as an .npz archive (what
// np.savez_compressed writes, and np.load reads) and loads them in order.
func ExampleReadNPZ() {
	dir, err := os.MkdirTemp("", "npz")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "batch.npz")
	err = npy.WriteNPZCompressed(path, map[string]*tensor.Tensor{
		"images": tensor.New(tensor.Uint8, 2, 28, 28),
		"labels": tensor.FromInt64([]int64{7, 2}),
	}, []string{"labels", "images"})
	if err != nil {
		log.Fatal(err)
	}
	arrays, order, err := npy.ReadNPZ(path)
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range order {
		fmt.Println(name, arrays[name].DType(), arrays[name].Shape())
	}
	// Output:
	// labels int64 [2]
	// images uint8 [2 28 28]
}
