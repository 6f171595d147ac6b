package modeleval

// Thresholds of the models' decisions.
const (
	// DetThreshold binarizes the detector's text probability map
	// (PaddleOCR's DBPostProcess thresh).
	DetThreshold = 0.3
	// SpeechThreshold is Silero VAD's speech decision: a chunk is speech
	// when its probability is at least this.
	SpeechThreshold = 0.5
)

// MaskIoU returns the intersection over union of the binary maps a > thr
// and b > thr (same length): |A and B| / |A or B|, and 1 when both maps
// are empty.
func MaskIoU(a, b []float32, thr float32) float64 {
	inter, union := 0, 0
	for i := range a {
		x, y := a[i] > thr, b[i] > thr
		if x && y {
			inter++
		}
		if x || y {
			union++
		}
	}
	if union == 0 {
		return 1
	}
	return float64(inter) / float64(union)
}

// Speech reports Silero's decision for a probability.
func Speech(p float32) bool { return p >= SpeechThreshold }

// fraction returns k/n, and 0 for n = 0.
func fraction(k, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(k) / float64(n)
}

// stats returns the mean and the smallest value of v (0, 0 when empty).
func stats(v []float64) (mean, lo float64) {
	if len(v) == 0 {
		return 0, 0
	}
	lo = v[0]
	for _, x := range v {
		mean += x
		lo = min(lo, x)
	}
	return mean / float64(len(v)), lo
}
