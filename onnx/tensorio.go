package onnx

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// UnsupportedTypeError reports a tensor whose element type quanta cannot
// hold (see graph.ElemType.DType): strings, uint16, uint64, complex and
// the 8- and 4-bit float and integer types.
type UnsupportedTypeError struct {
	// Name is the tensor's name (may be empty).
	Name string
	// Elem is its ONNX element type.
	Elem graph.ElemType
	// Dims are its dimensions.
	Dims []int64
}

// Error names the type (the context names the tensor).
func (e *UnsupportedTypeError) Error() string {
	return fmt.Sprintf("data type %s (%d) is not supported", typeName(e.Elem), int32(e.Elem))
}

// NamedTensor is a decoded TensorProto: the tensor, its name and its ONNX
// element type (float16, bfloat16 and double tensors are held as float32,
// int16 as int32, uint32 as int64).
type NamedTensor struct {
	Name      string
	Elem      graph.ElemType
	Tensor    *tensor.Tensor
	DocString string
}

// DecodeTensor decodes a serialized TensorProto, such as the input_N.pb
// and output_N.pb files of ONNX's test cases.
func DecodeTensor(data []byte) (*tensor.Tensor, error) {
	nt, err := DecodeNamedTensor(data)
	return nt.Tensor, err
}

// DecodeNamedTensor decodes a serialized TensorProto with its name and
// element type. Tensors with external data cannot be decoded from memory.
func DecodeNamedTensor(data []byte) (NamedTensor, error) {
	nt, err := decodeTensor(memStream(data), nil)
	if err != nil {
		return NamedTensor{}, fmt.Errorf("onnx: tensor: %w", err)
	}
	return nt, nil
}

// ReadTensor reads a file holding one serialized TensorProto.
func ReadTensor(path string) (*tensor.Tensor, error) {
	nt, err := ReadNamedTensor(path)
	return nt.Tensor, err
}

// ReadNamedTensor reads a file holding one serialized TensorProto, with its
// name and element type. External data is read from the file's directory.
func ReadNamedTensor(path string) (NamedTensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return NamedTensor{}, fmt.Errorf("onnx: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return NamedTensor{}, fmt.Errorf("onnx: %w", err)
	}
	ext := &externalFiles{dir: filepath.Dir(path)}
	defer ext.close()
	nt, err := decodeTensor(fileStream(f, st.Size()), ext)
	if err != nil {
		return NamedTensor{}, fmt.Errorf("onnx: %s: tensor: %w", path, err)
	}
	return nt, nil
}

func decodeTensor(s *stream, ext *externalFiles) (NamedTensor, error) {
	d := &decoder{s: s}
	pt, err := d.tensor(0, s.size)
	if err != nil {
		return NamedTensor{}, err
	}
	t, elem, err := pt.materialize(ext)
	if err != nil {
		if pt.name != "" {
			return NamedTensor{}, fmt.Errorf("%q: %w", pt.name, err)
		}
		return NamedTensor{}, err
	}
	return NamedTensor{Name: pt.name, Elem: elem, Tensor: t, DocString: pt.doc}, nil
}

// EncodeTensor serializes nt as a TensorProto with raw_data, in element
// type nt.Elem when the tensor's dtype holds it (as Encode writes
// initializers), else in the tensor's own type.
func EncodeTensor(nt NamedTensor) ([]byte, error) {
	if nt.Tensor == nil {
		return nil, fmt.Errorf("onnx: EncodeTensor: no tensor")
	}
	e := &encoder{buf: make([]byte, 0, 64+nt.Tensor.Numel()*nt.Tensor.DType().Size())}
	if err := e.tensor(nt.Name, nt.DocString, nt.Elem, nt.Tensor); err != nil {
		return nil, fmt.Errorf("onnx: EncodeTensor: %w", err)
	}
	return e.buf, nil
}
