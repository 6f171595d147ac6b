// Package onnx reads ONNX models into quanta's graph IR (package graph) and
// writes graphs back as ONNX files. The protobuf messages are decoded and
// encoded field by field with google.golang.org/protobuf/encoding/protowire
// from onnx.proto's field numbers; no generated code is involved.
//
// # Import
//
// Load reads a file, Decode a byte slice. Models importing opsets 7 to 21
// of the default ONNX domain ("" or "ai.onnx", both recorded as "") are
// accepted; other domains (com.microsoft, ai.onnx.ml, ...) are recorded in
// Model.Opsets as they are. The import then runs graph.Verify and returns
// its error.
//
//   - Initializers become *tensor.Tensor in the dtype graph.ElemType.DType
//     names: float16, bfloat16 and double are held as float32, int16 as
//     int32, uint32 as int64. The Value's Type.Elem keeps the file's type,
//     so export can write it back. Strings, uint16, uint64, complex and the
//     8- and 4-bit types are an *UnsupportedTypeError. Data comes from
//     raw_data (little-endian), the typed repeated fields (packed or not),
//     or external files (data_location EXTERNAL with location, offset and
//     length) inside the model's directory: absolute paths, ".." escapes
//     and symbolic links leading out of it are refused.
//   - A graph input that is also an initializer is, for IR versions below
//     4 (which required every initializer to be listed as an input), a
//     plain initializer; from IR 4 on it is an input with a default value:
//     it stays in Graph.Inputs with Value.Const set, its shape the declared
//     one, its element type the data's.
//   - Sparse initializers, and Constant's sparse_value (which becomes
//     value), are stored dense.
//   - value_info types go onto the values. A Constant's output without a
//     declared type gets its value's type and shape, which keeps the ONNX
//     element type of a float16 or double constant.
//   - Every node gets a name unique in the model: names in the file are
//     kept (the first node with a name keeps it), empty names become
//     "OpType_N" and repeated names "name_N", never clashing with a name
//     in the file.
//   - Subgraphs (If, Loop and Scan bodies) become graphs whose reads of
//     enclosing values are the enclosing graphs' *graph.Value, resolved by
//     name; a subgraph value that hides an outer name is an error.
//   - Not supported (an error naming the node): model-local functions used
//     by a node, attributes of TypeProto kind, sparse attributes other
//     than Constant's, segmented tensors. Not kept: non-tensor value types
//     (sequences, maps, optionals import as the zero graph.Type), training
//     information, quantization annotations, dimension denotations.
//
// Errors name the model (the file for Load), the graph, the node (name and
// op type), attribute or tensor, and what is wrong, with byte offsets for
// malformed protobuf. Sizes declared in the file are checked against the
// bytes present before anything is allocated, and no input makes the
// decoder panic (see the fuzz targets).
//
// Load never holds a model twice in memory: it reads the file through a
// 64 KiB window and decodes initializer data from the file straight into
// the tensors, so loading allocates about the size of the tensors.
//
// # Export
//
// Encode writes a ModelProto (Save writes it to a file atomically). Tensors
// are written as raw_data, each initializer in its Value's declared element
// type when the tensor's dtype holds that type (a float16 initializer is
// written as float16, rounding to nearest even), else in the type of its
// dtype; a Constant's value takes its output's declared type when its values
// convert to it exactly. Inputs with
// a default value are written as both an input and an initializer. A model
// without opsets gets DefaultOpset; a model without an IR version gets the
// one its opset was released with. Importing an exported model gives the
// same graph (graph.Dump text and every constant).
//
// ReadTensor and DecodeTensor read single TensorProto files, such as the
// input_N.pb and output_N.pb files of ONNX's conformance cases.
package onnx
