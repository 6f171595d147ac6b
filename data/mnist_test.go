package data

import (
	"math"
	"strings"
	"testing"
)

func TestMNISTEmbedded(t *testing.T) {
	x, y, err := MNIST(Normalize{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{MNISTSize, 1, 28, 28}; !equalInts(x.Shape(), want) {
		t.Fatalf("images shape %v, want %v", x.Shape(), want)
	}
	if want := []int{MNISTSize}; !equalInts(y.Shape(), want) {
		t.Fatalf("labels shape %v, want %v", y.Shape(), want)
	}
	labels := y.I64()
	// The first labels of the file, read with an independent decoder
	// (gzip + struct in Python).
	for i, want := range []int64{3, 8, 1, 0, 4, 0, 9, 3, 4, 9} {
		if labels[i] != want {
			t.Errorf("label %d is %d, want %d", i, labels[i], want)
		}
	}
	var counts [10]int
	for i, l := range labels {
		if l < 0 || l > 9 {
			t.Fatalf("label %d is %d, outside 0..9", i, l)
		}
		counts[l]++
	}
	if want := [10]int{1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978}; counts != want {
		t.Errorf("label counts %v, want %v", counts, want)
	}
	// Without normalization pixels are p/255 in [0, 1]; the first image's
	// bytes sum to 15849.
	var sum float64
	for _, v := range x.F32()[:784] {
		if v < 0 || v > 1 {
			t.Fatalf("pixel %v outside [0, 1]", v)
		}
		sum += float64(v)
	}
	if math.Abs(sum*255-15849) > 0.01 {
		t.Errorf("first image sums to %v/255, want 15849/255", sum*255)
	}
}

func TestMNISTNormalized(t *testing.T) {
	x, _, err := MNIST(MNISTNormalize)
	if err != nil {
		t.Fatal(err)
	}
	// The dataset's own pixel statistics are close to torchvision's
	// constants (mean 0.13113, std 0.30870 for this subset), so the
	// normalized pixels have mean ~0 and std ~1.
	var s, s2 float64
	for _, v := range x.F32() {
		s += float64(v)
		s2 += float64(v) * float64(v)
	}
	n := float64(x.Numel())
	mean := s / n
	std := math.Sqrt(s2/n - mean*mean)
	if math.Abs(mean-(0.13113-0.1307)/0.3081) > 1e-3 || math.Abs(std-0.30870/0.3081) > 1e-3 {
		t.Errorf("normalized mean %v std %v", mean, std)
	}
	lo := float32(-0.1307 / 0.3081)
	if got := x.F32()[0]; math.Abs(float64(got-lo)) > 1e-6 {
		t.Errorf("background pixel %v, want %v", got, lo)
	}
}

func TestMNISTFromIDXErrors(t *testing.T) {
	imgs := &IDX{Name: "imgs", Dims: []int{2, 28, 28}, Data: make([]byte, 2*784)}
	cases := []struct {
		imgs, labs *IDX
		want       string
	}{
		{&IDX{Name: "small", Dims: []int{2, 14, 14}, Data: make([]byte, 2*196)}, &IDX{Name: "labs", Dims: []int{2}, Data: []byte{1, 2}}, "small: MNIST images must be [N, 28, 28]"},
		{imgs, &IDX{Name: "labs", Dims: []int{3}, Data: []byte{1, 2, 3}}, "labs: MNIST labels must be [2] to match imgs"},
		{imgs, &IDX{Name: "labs", Dims: []int{2}, Data: []byte{1, 10}}, "labs: label 1 is 10, outside 0..9"},
	}
	for _, c := range cases {
		if _, _, err := MNISTFromIDX(c.imgs, c.labs, MNISTNormalize); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}
