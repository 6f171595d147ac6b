package modeleval

import (
	"fmt"
	"strings"
)

// Dict is PaddleOCR's recognizer alphabet as CTCLabelDecode builds it with
// use_space_char: class 0 is the CTC blank, classes 1..n the lines of the
// dictionary file, class n+1 a space.
type Dict struct {
	chars []string
}

// LoadDict reads a PaddleOCR dictionary file (one character per line,
// UTF-8, such as ppocr_keys_v1.txt).
func LoadDict(path string) (*Dict, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("modeleval: %s: empty dictionary", path)
	}
	return NewDict(lines), nil
}

// NewDict returns the alphabet of the given dictionary entries: blank,
// the entries, space.
func NewDict(entries []string) *Dict {
	chars := make([]string, 0, len(entries)+2)
	chars = append(chars, "")
	chars = append(chars, entries...)
	chars = append(chars, " ")
	return &Dict{chars: chars}
}

// Classes returns the number of classes (entries + 2): the width of the
// recognizer's output.
func (d *Dict) Classes() int { return len(d.chars) }

// Text spells a class sequence; classes outside the alphabet are written
// as <N>.
func (d *Dict) Text(classes []int) string {
	var b strings.Builder
	for _, c := range classes {
		if c >= 0 && c < len(d.chars) {
			b.WriteString(d.chars[c])
		} else {
			fmt.Fprintf(&b, "<%d>", c)
		}
	}
	return b.String()
}

// ArgmaxRows returns the index of the largest value of each row of length
// n (the first one on ties, as numpy's argmax).
func ArgmaxRows(v []float32, n int) []int {
	out := make([]int, len(v)/n)
	for r := range out {
		row := v[r*n : (r+1)*n]
		best := 0
		for i, x := range row {
			if x > row[best] {
				best = i
			}
		}
		out[r] = best
	}
	return out
}

// CTCGreedy is PaddleOCR's CTCLabelDecode on a best path: consecutive
// repeats collapse to one and the blank (class 0) is dropped.
func CTCGreedy(path []int) []int {
	out := []int{}
	prev := -1
	for _, c := range path {
		if c != prev && c != 0 {
			out = append(out, c)
		}
		prev = c
	}
	return out
}

// DecodeCTC decodes the recognizer's output for one line, probabilities
// [T,C] row-major, into its class sequence and text.
func (d *Dict) DecodeCTC(probs []float32, classes int) ([]int, string) {
	cs := CTCGreedy(ArgmaxRows(probs, classes))
	return cs, d.Text(cs)
}
