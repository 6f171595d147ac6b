package onnx

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// pb builds protobuf messages field by field for tests, independently of
// the package's encoder, so tests can state exactly what is on the wire
// (packed or unpacked repeated fields, typed data fields, malformed input).
type pb []byte

func (b pb) varint(num int, v uint64) pb {
	b = protowire.AppendTag(b, protowire.Number(num), protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func (b pb) int(num int, v int64) pb { return b.varint(num, uint64(v)) }

func (b pb) bytes(num int, v []byte) pb {
	b = protowire.AppendTag(b, protowire.Number(num), protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func (b pb) str(num int, s string) pb { return b.bytes(num, []byte(s)) }

func (b pb) msg(num int, m pb) pb { return b.bytes(num, m) }

func (b pb) fixed32(num int, v uint32) pb {
	b = protowire.AppendTag(b, protowire.Number(num), protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}

func (b pb) float(num int, f float32) pb { return b.fixed32(num, math.Float32bits(f)) }

func (b pb) fixed64(num int, v uint64) pb {
	b = protowire.AppendTag(b, protowire.Number(num), protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

// packedVarints returns the body of a packed repeated varint field.
func packedVarints(vs ...int64) []byte {
	var b []byte
	for _, v := range vs {
		b = protowire.AppendVarint(b, uint64(v))
	}
	return b
}

// packedFloats returns the body of a packed repeated float field.
func packedFloats(fs ...float32) []byte {
	var b []byte
	for _, f := range fs {
		b = protowire.AppendFixed32(b, math.Float32bits(f))
	}
	return b
}

// Message helpers with ONNX field numbers.

func opsetPB(domain string, v int64) pb { return pb{}.str(1, domain).int(2, v) }

func nodePB(name, op string, ins, outs []string, attrs ...pb) pb {
	b := pb{}
	for _, in := range ins {
		b = b.str(1, in)
	}
	for _, o := range outs {
		b = b.str(2, o)
	}
	if name != "" {
		b = b.str(3, name)
	}
	b = b.str(4, op)
	for _, a := range attrs {
		b = b.msg(5, a)
	}
	return b
}

// valueInfoPB gives a tensor type; a dim is an int (size), a string
// (parameter) or nil (unknown). Without dims the type has no shape.
func valueInfoPB(name string, elem int64, dims ...any) pb {
	if len(dims) == 0 {
		return pb{}.str(1, name).msg(2, pb{}.msg(1, pb{}.int(1, elem)))
	}
	shape := pb{}
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			shape = shape.msg(1, pb{}.int(1, int64(d)))
		case string:
			shape = shape.msg(1, pb{}.str(2, d))
		default:
			shape = shape.msg(1, pb{})
		}
	}
	tt := pb{}.int(1, elem).msg(2, shape)
	return pb{}.str(1, name).msg(2, pb{}.msg(1, tt))
}

func modelPB(ir, opset int64, graph pb) pb {
	return pb{}.int(1, ir).msg(8, opsetPB("", opset)).msg(7, graph)
}

// rawTensorPB is a TensorProto with raw_data.
func rawTensorPB(name string, elem int64, raw []byte, dims ...int64) pb {
	b := pb{}
	for _, d := range dims {
		b = b.int(1, d)
	}
	return b.int(2, elem).str(8, name).bytes(9, raw)
}
