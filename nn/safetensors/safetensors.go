// Package safetensors reads and writes the safetensors checkpoint format
// (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON header, then the tensors' little-endian
// row-major bytes. The header maps each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
// end of the header) and may hold a "__metadata__" map of strings.
//
// Supported dtypes: F32, I64, I32, I8, U8 and BOOL are read and written
// as the tensor dtypes of the same meaning; F64, F16 and BF16 are read and
// converted to float32. Quantized tensors (qint8, quint8, qint32) are written
// with their integer storage (I8, U8, I32) and their quantization
// parameters as JSON in the metadata under "quanta.qparams.<name>", which
// Decode reads back: dtype, scheme, axis, quant_min and quant_max; a single
// scale as "scale": [s]; several (per-channel) scales compactly as
// "scale_le", the base64 of their little-endian float32 bits; integer zero
// points as "zero_point" unless all are 0; float zero points as
// "zero_point_f".
//
// Decode validates everything a file declares before using it: the header
// length against the data, each tensor's byte range against its dtype and
// shape, that the ranges tile the data with no hole or overlap (as the
// reference implementation requires), and it never allocates more than the
// file holds. Errors name the tensor at fault.
package safetensors

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/quanta-go/quanta/tensor"
)

// MaxHeaderSize is the largest JSON header Decode accepts (the reference
// implementation's limit).
const MaxHeaderSize = 100_000_000

// QParamsPrefix prefixes the metadata keys that hold the quantization
// parameters of quantized tensors.
const QParamsPrefix = "quanta.qparams."

type entry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

type qparamsJSON struct {
	DType      string    `json:"dtype"`
	Scheme     string    `json:"scheme"`
	Scale      []float32 `json:"scale,omitempty"`
	ScaleLE    string    `json:"scale_le,omitempty"`
	ZeroPoint  []int32   `json:"zero_point,omitempty"`
	ZeroPointF []float32 `json:"zero_point_f,omitempty"`
	Axis       int       `json:"axis"`
	QuantMin   int32     `json:"quant_min"`
	QuantMax   int32     `json:"quant_max"`
}

var schemes = []tensor.QScheme{tensor.PerTensorAffine, tensor.PerTensorSymmetric, tensor.PerChannelAffine,
	tensor.PerChannelSymmetric, tensor.PerChannelAffineFloatQParams}

// fileDType returns the safetensors dtype name for a tensor dtype.
func fileDType(d tensor.DType) (string, error) {
	switch d.Storage() {
	case tensor.Float32:
		return "F32", nil
	case tensor.Int64:
		return "I64", nil
	case tensor.Int32:
		return "I32", nil
	case tensor.Int8:
		return "I8", nil
	case tensor.Uint8:
		return "U8", nil
	case tensor.Bool:
		return "BOOL", nil
	}
	return "", fmt.Errorf("dtype %v has no safetensors encoding", d)
}

// elemSize returns the byte size of a safetensors dtype, or 0 when the
// dtype is not supported.
func elemSize(name string) int {
	switch name {
	case "F64", "I64":
		return 8
	case "F32", "I32":
		return 4
	case "F16", "BF16":
		return 2
	case "I8", "U8", "BOOL":
		return 1
	}
	return 0
}

// Encode writes tensors and metadata to w in the safetensors format.
// Tensors are laid out by decreasing element size, then by name, so every
// tensor's data is aligned to its element size; the header is padded with
// spaces to a multiple of 8 bytes.
func Encode(w io.Writer, tensors map[string]*tensor.Tensor, metadata map[string]string) error {
	names := make([]string, 0, len(tensors))
	for name, t := range tensors {
		if name == "" || name == "__metadata__" {
			return fmt.Errorf("safetensors: invalid tensor name %q", name)
		}
		if t == nil {
			return fmt.Errorf("safetensors: tensor %q is nil", name)
		}
		if _, err := fileDType(t.DType()); err != nil {
			return fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		if n := storageLen(t); n != t.Numel() {
			return fmt.Errorf("safetensors: tensor %q: storage holds %d elements but shape %v needs %d", name, n, t.Shape(), t.Numel())
		}
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		si, sj := tensors[names[i]].DType().Size(), tensors[names[j]].DType().Size()
		if si != sj {
			return si > sj
		}
		return names[i] < names[j]
	})
	meta := map[string]string{}
	for k, v := range metadata {
		if strings.HasPrefix(k, QParamsPrefix) {
			return fmt.Errorf("safetensors: metadata key %q uses the reserved prefix %q", k, QParamsPrefix)
		}
		meta[k] = v
	}
	header := map[string]any{}
	var off int64
	for _, name := range names {
		t := tensors[name]
		dt, _ := fileDType(t.DType())
		n := int64(t.Numel() * t.DType().Size())
		shape := make([]int64, t.NDim())
		for i, d := range t.Shape() {
			shape[i] = int64(d)
		}
		header[name] = entry{dt, shape, []int64{off, off + n}}
		off += n
		if t.DType().IsQuantized() {
			q := t.QParams()
			if q == nil {
				return fmt.Errorf("safetensors: quantized tensor %q has no qparams", name)
			}
			js, err := json.Marshal(encodeQParams(t.DType(), q))
			if err != nil {
				return fmt.Errorf("safetensors: tensor %q: qparams: %w", name, err)
			}
			meta[QParamsPrefix+name] = string(js)
		}
	}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	var hb bytes.Buffer
	enc := json.NewEncoder(&hb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(header); err != nil {
		return fmt.Errorf("safetensors: header: %w", err)
	}
	hdr := bytes.TrimRight(hb.Bytes(), "\n")
	for len(hdr)%8 != 0 {
		hdr = append(hdr, ' ')
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
	bw.Write(lenBuf[:])
	bw.Write(hdr)
	var buf [8]byte
	for _, name := range names {
		t := tensors[name]
		switch t.DType().Storage() {
		case tensor.Float32:
			for _, v := range t.F32() {
				binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
				bw.Write(buf[:4])
			}
		case tensor.Int64:
			for _, v := range t.I64() {
				binary.LittleEndian.PutUint64(buf[:], uint64(v))
				bw.Write(buf[:8])
			}
		case tensor.Int32:
			for _, v := range t.I32() {
				binary.LittleEndian.PutUint32(buf[:], uint32(v))
				bw.Write(buf[:4])
			}
		case tensor.Int8:
			for _, v := range t.I8() {
				bw.WriteByte(byte(v))
			}
		case tensor.Uint8:
			bw.Write(t.U8())
		case tensor.Bool:
			for _, v := range t.Bools() {
				var b byte
				if v {
					b = 1
				}
				bw.WriteByte(b)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	return nil
}

// WriteFile encodes tensors and metadata into a temporary file next to path
// and renames it to path once complete and synced.
func WriteFile(path string, tensors map[string]*tensor.Tensor, metadata map[string]string) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	tmp := f.Name()
	// CreateTemp makes the file private; a checkpoint gets the mode a
	// plain create would give it (0644 before the umask).
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = Encode(f, tensors, metadata); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return nil
}

// ReadFile reads and decodes the safetensors file at path. Errors name the
// file (and the tensor, where one is at fault).
func ReadFile(path string) (map[string]*tensor.Tensor, map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	ts, meta, err := Decode(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return ts, meta, nil
}

var errShort = errors.New("safetensors: file shorter than the 8-byte header length")

// Decode parses a whole safetensors file held in data. It returns the
// tensors by name and the metadata (without the reserved qparams keys).
func Decode(data []byte) (map[string]*tensor.Tensor, map[string]string, error) {
	if len(data) < 8 {
		return nil, nil, errShort
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxHeaderSize {
		return nil, nil, fmt.Errorf("safetensors: header length %d exceeds the limit %d", n, MaxHeaderSize)
	}
	if n > uint64(len(data)-8) {
		return nil, nil, fmt.Errorf("safetensors: header length %d exceeds the %d bytes after it (truncated file?)", n, len(data)-8)
	}
	hdr := data[8 : 8+n]
	buf := data[8+n:]
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, nil, errors.New("safetensors: header does not start with '{'")
	}
	if !utf8.Valid(hdr) {
		return nil, nil, errors.New("safetensors: header is not valid UTF-8")
	}
	entries, order, meta, err := parseHeader(hdr)
	if err != nil {
		return nil, nil, err
	}
	// Validate the byte ranges: they must tile buf exactly.
	type span struct {
		name       string
		begin, end int64
	}
	spans := make([]span, 0, len(order))
	for _, name := range order {
		e := entries[name]
		if elemSize(e.DType) == 0 {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: unsupported dtype %q", name, e.DType)
		}
		if len(e.DataOffsets) != 2 {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: data_offsets has %d values, want 2", name, len(e.DataOffsets))
		}
		b, en := e.DataOffsets[0], e.DataOffsets[1]
		if b < 0 || en < b || en > int64(len(buf)) {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] outside the %d data bytes (truncated file?)", name, b, en, len(buf))
		}
		numel, err := numElements(e.Shape, len(buf))
		if err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		if numel*int64(elemSize(e.DType)) != en-b {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %s shape %v needs %d bytes, data_offsets [%d, %d] give %d",
				name, e.DType, e.Shape, numel*int64(elemSize(e.DType)), b, en, en-b)
		}
		spans = append(spans, span{name, b, en})
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].end < spans[j].end
	})
	var pos int64
	for _, s := range spans {
		if s.begin != pos {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: data starts at byte %d, want %d (the tensors must tile the data without holes or overlaps)", s.name, s.begin, pos)
		}
		pos = s.end
	}
	if pos != int64(len(buf)) {
		return nil, nil, fmt.Errorf("safetensors: tensors cover %d data bytes but the file holds %d", pos, len(buf))
	}
	out := make(map[string]*tensor.Tensor, len(order))
	for _, name := range order {
		e := entries[name]
		t, err := decodeTensor(e, buf[e.DataOffsets[0]:e.DataOffsets[1]])
		if err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		out[name] = t
	}
	userMeta := map[string]string{}
	for k, v := range meta {
		name, ok := strings.CutPrefix(k, QParamsPrefix)
		if !ok {
			userMeta[k] = v
			continue
		}
		t, ok := out[name]
		if !ok {
			return nil, nil, fmt.Errorf("safetensors: metadata %q names no tensor", k)
		}
		if err := attachQParams(t, v); err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: qparams: %w", name, err)
		}
	}
	return out, userMeta, nil
}

// parseHeader reads the header object token by token, rejecting duplicate
// names and anything but whitespace after the object.
func parseHeader(hdr []byte) (map[string]entry, []string, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, nil, errors.New("safetensors: header is not a JSON object")
	}
	entries := map[string]entry{}
	var order []string
	var meta map[string]string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("safetensors: header JSON: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, nil, errors.New("safetensors: header JSON: object key is not a string")
		}
		if seen[name] {
			return nil, nil, nil, fmt.Errorf("safetensors: header names %q twice", name)
		}
		seen[name] = true
		if name == "__metadata__" {
			if err := dec.Decode(&meta); err != nil {
				return nil, nil, nil, fmt.Errorf("safetensors: __metadata__: %w", err)
			}
			continue
		}
		var e entry
		if err := dec.Decode(&e); err != nil {
			return nil, nil, nil, fmt.Errorf("safetensors: tensor %q: header entry: %w", name, err)
		}
		entries[name] = e
		order = append(order, name)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, nil, nil, errors.New("safetensors: header JSON object is not closed")
	}
	rest := hdr[dec.InputOffset():]
	if len(bytes.TrimLeft(rest, " \t\r\n")) != 0 {
		return nil, nil, nil, errors.New("safetensors: header has data after the JSON object")
	}
	return entries, order, meta, nil
}

// numElements returns the product of shape, rejecting negative dimensions
// and products that could not fit in limit bytes.
func numElements(shape []int64, limit int) (int64, error) {
	numel := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if d > math.MaxInt32 {
			return 0, fmt.Errorf("dimension %d in shape %v is too large", d, shape)
		}
	}
	for _, d := range shape {
		if d == 0 {
			return 0, nil
		}
	}
	for _, d := range shape {
		if numel > int64(limit)/d {
			return 0, fmt.Errorf("shape %v holds more elements than the %d data bytes", shape, limit)
		}
		numel *= d
	}
	return numel, nil
}

func decodeTensor(e entry, b []byte) (*tensor.Tensor, error) {
	shape := make([]int, len(e.Shape))
	for i, d := range e.Shape {
		shape[i] = int(d)
	}
	switch e.DType {
	case "F32":
		t := tensor.New(tensor.Float32, shape...)
		v := t.F32()
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return t, nil
	case "F64":
		t := tensor.New(tensor.Float32, shape...)
		v := t.F32()
		for i := range v {
			v[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
		return t, nil
	case "F16":
		t := tensor.New(tensor.Float32, shape...)
		v := t.F32()
		for i := range v {
			v[i] = halfToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return t, nil
	case "BF16":
		t := tensor.New(tensor.Float32, shape...)
		v := t.F32()
		for i := range v {
			v[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
		return t, nil
	case "I64":
		t := tensor.New(tensor.Int64, shape...)
		v := t.I64()
		for i := range v {
			v[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
		return t, nil
	case "I32":
		t := tensor.New(tensor.Int32, shape...)
		v := t.I32()
		for i := range v {
			v[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return t, nil
	case "I8":
		t := tensor.New(tensor.Int8, shape...)
		v := t.I8()
		for i := range v {
			v[i] = int8(b[i])
		}
		return t, nil
	case "U8":
		t := tensor.New(tensor.Uint8, shape...)
		copy(t.U8(), b)
		return t, nil
	case "BOOL":
		t := tensor.New(tensor.Bool, shape...)
		v := t.Bools()
		for i := range v {
			if b[i] > 1 {
				return nil, fmt.Errorf("BOOL element %d has byte value %d, want 0 or 1", i, b[i])
			}
			v[i] = b[i] == 1
		}
		return t, nil
	}
	return nil, fmt.Errorf("unsupported dtype %q", e.DType)
}

// halfToFloat32 converts an IEEE binary16 value exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
	case frac == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal half: value = frac * 2^-24, exact in float32.
	v := float32(frac) * (1.0 / (1 << 24))
	if sign != 0 {
		v = -v
	}
	return v
}

// encodeQParams is the metadata form of q (see the package comment).
func encodeQParams(dt tensor.DType, q *tensor.QParams) qparamsJSON {
	j := qparamsJSON{DType: dt.String(), Scheme: q.Scheme.String(), ZeroPointF: q.ZeroPointF, Axis: q.Axis, QuantMin: q.QuantMin, QuantMax: q.QuantMax}
	if len(q.Scale) == 1 {
		j.Scale = q.Scale
	} else {
		b := make([]byte, 4*len(q.Scale))
		for i, v := range q.Scale {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		j.ScaleLE = base64.StdEncoding.EncodeToString(b)
	}
	for _, z := range q.ZeroPoint {
		if z != 0 {
			j.ZeroPoint = q.ZeroPoint
			break
		}
	}
	return j
}

func attachQParams(t *tensor.Tensor, js string) error {
	var q qparamsJSON
	if err := json.Unmarshal([]byte(js), &q); err != nil {
		return err
	}
	if q.ScaleLE != "" {
		if len(q.Scale) > 0 {
			return errors.New(`both "scale" and "scale_le"`)
		}
		b, err := base64.StdEncoding.DecodeString(q.ScaleLE)
		if err != nil || len(b)%4 != 0 {
			return fmt.Errorf(`"scale_le" is not base64 of float32 values`)
		}
		q.Scale = make([]float32, len(b)/4)
		for i := range q.Scale {
			q.Scale[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	}
	dt, err := tensor.ParseDType(q.DType)
	if err != nil || !dt.IsQuantized() {
		return fmt.Errorf("dtype %q is not a quantized dtype", q.DType)
	}
	if dt.Storage() != t.DType() {
		return fmt.Errorf("dtype %v does not match the stored %v data", dt, t.DType())
	}
	var scheme tensor.QScheme
	found := false
	for _, s := range schemes {
		if s.String() == q.Scheme {
			scheme, found = s, true
		}
	}
	if !found {
		return fmt.Errorf("unknown scheme %q", q.Scheme)
	}
	want := 1
	if scheme.PerChannel() {
		if q.Axis < 0 || q.Axis >= t.NDim() {
			return fmt.Errorf("axis %d out of range for shape %v", q.Axis, t.Shape())
		}
		want = t.Dim(q.Axis)
	}
	if len(q.Scale) != want {
		return fmt.Errorf("%d scales, want %d", len(q.Scale), want)
	}
	if scheme == tensor.PerChannelAffineFloatQParams {
		if len(q.ZeroPointF) != want {
			return fmt.Errorf("%d float zero points, want %d", len(q.ZeroPointF), want)
		}
	} else if len(q.ZeroPoint) == 0 {
		q.ZeroPoint = make([]int32, want)
	} else if len(q.ZeroPoint) != want {
		return fmt.Errorf("%d zero points, want %d", len(q.ZeroPoint), want)
	}
	qt := tensor.NewQuantized(dt, storageOf(t), &tensor.QParams{Scheme: scheme, Scale: q.Scale, ZeroPoint: q.ZeroPoint,
		ZeroPointF: q.ZeroPointF, Axis: q.Axis, QuantMin: q.QuantMin, QuantMax: q.QuantMax}, t.Shape()...)
	*t = *qt
	return nil
}

func storageLen(t *tensor.Tensor) int {
	switch t.DType().Storage() {
	case tensor.Float32:
		return len(t.F32())
	case tensor.Int64:
		return len(t.I64())
	case tensor.Int32:
		return len(t.I32())
	case tensor.Int8:
		return len(t.I8())
	case tensor.Uint8:
		return len(t.U8())
	case tensor.Bool:
		return len(t.Bools())
	}
	return -1
}

func storageOf(t *tensor.Tensor) any {
	switch t.DType() {
	case tensor.Int8:
		return t.I8()
	case tensor.Uint8:
		return t.U8()
	default:
		return t.I32()
	}
}
