package npy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// magic is the six bytes every .npy file starts with.
const magic = "\x93NUMPY"

// maxHeaderLen bounds the header dictionary a file may declare, in bytes.
// It is NumPy's default max_header_size: any header NumPy writes for the
// dtypes read here is far smaller.
const maxHeaderLen = 10000

// maxDims is the largest number of dimensions accepted (NumPy 2's
// NPY_MAXDIMS).
const maxDims = 64

// arrayAlign is the boundary NumPy pads the header to, so that the data
// starts aligned.
const arrayAlign = 64

// growthDigits is NumPy's GROWTH_AXIS_MAX_DIGITS: the header keeps room
// for the first dimension to grow to that many digits in place.
const growthDigits = 21

// header is the parsed dictionary of an .npy header.
type header struct {
	descr   string
	fortran bool
	shape   []int
}

// headerParser parses the Python dict literal of an .npy header: exactly
// the keys 'descr' (a string), 'fortran_order' (True or False) and 'shape'
// (a tuple of non-negative decimal integers), in any order, quoted with
// single or double quotes, with an optional trailing comma. Nothing else a
// Python literal may hold (escapes, expressions, other keys) is accepted.
type headerParser struct {
	s     string
	i     int
	longs bool // accept the Python 2 "L" suffix on integers (versions 1 and 2)
}

// parseHeader parses the header dictionary s of a file of the given major
// version. The header must end with a newline; only whitespace may follow
// the closing brace.
func parseHeader(s string, major byte) (header, error) {
	if major == 3 && !utf8.ValidString(s) {
		return header{}, fmt.Errorf("header of a version 3.0 file is not valid UTF-8")
	}
	if !strings.HasSuffix(s, "\n") {
		return header{}, fmt.Errorf("header %s does not end with a newline", quoteHeader(s))
	}
	p := &headerParser{s: s, longs: major < 3}
	h, err := p.dict()
	if err != nil {
		return header{}, fmt.Errorf("bad header %s: %v", quoteHeader(s), err)
	}
	return h, nil
}

// quoteHeader quotes a header for an error message, shortening long ones.
func quoteHeader(s string) string {
	s = strings.TrimRight(s, " \n")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return strconv.Quote(s)
}

func (p *headerParser) skipSpace() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r', '\f':
			p.i++
		default:
			return
		}
	}
}

func (p *headerParser) errorf(format string, args ...any) error {
	return fmt.Errorf("at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

// peek returns the next non-space byte (0 at the end).
func (p *headerParser) peek() byte {
	p.skipSpace()
	if p.i == len(p.s) {
		return 0
	}
	return p.s[p.i]
}

func (p *headerParser) expect(c byte) error {
	if got := p.peek(); got != c {
		if got == 0 {
			return p.errorf("expected %q, found the end of the header", c)
		}
		return p.errorf("expected %q, found %q", c, got)
	}
	p.i++
	return nil
}

func (p *headerParser) dict() (header, error) {
	var h header
	seen := map[string]bool{}
	if err := p.expect('{'); err != nil {
		return h, err
	}
	for p.peek() != '}' {
		key, err := p.str()
		if err != nil {
			return h, fmt.Errorf("%v (a key)", err)
		}
		if seen[key] {
			return h, p.errorf("key '%s' appears twice", key)
		}
		seen[key] = true
		if err := p.expect(':'); err != nil {
			return h, err
		}
		switch key {
		case "descr":
			if p.peek() == '[' {
				return h, p.errorf("'descr' is a list: structured dtypes are not supported")
			}
			if h.descr, err = p.str(); err != nil {
				return h, fmt.Errorf("%v ('descr' must be a dtype string such as '<f4')", err)
			}
		case "fortran_order":
			if h.fortran, err = p.boolean(); err != nil {
				return h, err
			}
		case "shape":
			if h.shape, err = p.tuple(); err != nil {
				return h, err
			}
		default:
			return h, p.errorf("unexpected key '%s' (an .npy header has only 'descr', 'fortran_order' and 'shape')", key)
		}
		if p.peek() == ',' {
			p.i++
			continue
		}
		if p.peek() != '}' {
			return h, p.expect(',')
		}
	}
	p.i++ // '}'
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return h, fmt.Errorf("key '%s' is missing", k)
		}
	}
	if p.peek() != 0 {
		return h, p.errorf("unexpected %q after the dictionary", p.s[p.i])
	}
	return h, nil
}

// str parses a quoted string without escapes.
func (p *headerParser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		if q == 0 {
			return "", p.errorf("expected a quoted string, found the end of the header")
		}
		return "", p.errorf("expected a quoted string, found %q", q)
	}
	start := p.i + 1
	for j := start; j < len(p.s); j++ {
		switch p.s[j] {
		case q:
			p.i = j + 1
			return p.s[start:j], nil
		case '\\':
			return "", fmt.Errorf("at offset %d: escape sequences are not supported in header strings", j)
		case '\n':
			return "", fmt.Errorf("at offset %d: newline inside a string", j)
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *headerParser) boolean() (bool, error) {
	p.skipSpace()
	rest := p.s[p.i:]
	for _, w := range []struct {
		word string
		v    bool
	}{{"True", true}, {"False", false}} {
		if strings.HasPrefix(rest, w.word) && !isIdent(rest, len(w.word)) {
			p.i += len(w.word)
			return w.v, nil
		}
	}
	return false, p.errorf("'fortran_order' must be True or False")
}

// isIdent reports whether s[i] continues an identifier.
func isIdent(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	c := s[i]
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// tuple parses a shape: "()", "(3,)", "(2, 3)" or "(2, 3,)".
func (p *headerParser) tuple() ([]int, error) {
	if p.peek() != '(' {
		return nil, p.errorf("'shape' must be a tuple such as (2, 3)")
	}
	p.i++
	shape := []int{}
	for {
		if p.peek() == ')' {
			p.i++
			return shape, nil
		}
		d, err := p.integer()
		if err != nil {
			return nil, err
		}
		shape = append(shape, d)
		if len(shape) > maxDims {
			return nil, p.errorf("more than %d dimensions", maxDims)
		}
		switch p.peek() {
		case ',':
			p.i++
		case ')':
			if len(shape) == 1 {
				return nil, p.errorf("shape (%d) is an integer, not a tuple: a one-dimensional shape is written (%d,)", d, d)
			}
			p.i++
			return shape, nil
		default:
			return nil, p.expect(',')
		}
	}
}

// integer parses a non-negative decimal integer that fits an int.
func (p *headerParser) integer() (int, error) {
	c := p.peek()
	if c == '-' {
		return 0, p.errorf("negative dimension")
	}
	start := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	digits := p.s[start:p.i]
	if digits == "" {
		if c == 0 {
			return 0, p.errorf("expected a dimension, found the end of the header")
		}
		return 0, p.errorf("expected a dimension, found %q", c)
	}
	if len(digits) > 1 && digits[0] == '0' {
		return 0, fmt.Errorf("at offset %d: dimension %s has a leading zero", start, digits)
	}
	if p.longs && p.i < len(p.s) && p.s[p.i] == 'L' {
		p.i++ // Python 2's long suffix, as NumPy's own reader filters it
	}
	if isIdent(p.s, p.i) {
		return 0, p.errorf("malformed dimension %q", digits+string(p.s[p.i]))
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || v > math.MaxInt {
		return 0, fmt.Errorf("at offset %d: dimension %s is too large", start, digits)
	}
	return int(v), nil
}

// shapeString formats shape as Python's repr of the tuple: "()", "(3,)",
// "(2, 3)".
func shapeString(shape []int) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, d := range shape {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		b.WriteByte(',')
	}
	b.WriteByte(')')
	return b.String()
}

// encodeHeader returns the magic, version, header length and padded
// header dictionary NumPy 1.24's np.save writes for a C-order array:
// keys in sorted order, room for the first dimension to grow, spaces up to
// a 64-byte boundary and a final newline. Version 1.0 is used unless the
// header does not fit its 16-bit length, then 2.0.
func encodeHeader(descr string, shape []int) []byte {
	dict := "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shapeString(shape) + ", }"
	if len(shape) > 0 {
		dict += strings.Repeat(" ", growthDigits-len(strconv.Itoa(shape[0])))
	}
	if b, ok := wrapHeader(dict, 1); ok {
		return b
	}
	b, _ := wrapHeader(dict, 2)
	return b
}

// wrapHeader adds the magic, version and length to dict and pads it as
// NumPy does; ok is false when the header does not fit version major's
// length field.
func wrapHeader(dict string, major byte) (b []byte, ok bool) {
	prefix := len(magic) + 2 + 2
	if major >= 2 {
		prefix = len(magic) + 2 + 4
	}
	hlen := len(dict) + 1
	pad := arrayAlign - (prefix+hlen)%arrayAlign
	total := hlen + pad
	if major == 1 && total > math.MaxUint16 {
		return nil, false
	}
	b = make([]byte, 0, prefix+total)
	b = append(b, magic...)
	b = append(b, major, 0)
	if major == 1 {
		b = append(b, byte(total), byte(total>>8))
	} else {
		b = append(b, byte(total), byte(total>>8), byte(total>>16), byte(total>>24))
	}
	b = append(b, dict...)
	b = append(b, strings.Repeat(" ", pad)...)
	b = append(b, '\n')
	return b, true
}
