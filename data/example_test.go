package data_test

import (
	"fmt"

	"github.com/quanta-go/quanta/data"
)

// Train/test split of the embedded digits, batched as a training loop
// consumes them.
func Example() {
	images, labels, err := data.MNIST(data.MNISTNormalize)
	if err != nil {
		fmt.Println(err)
		return
	}
	all, err := data.NewTensorDataset(images, labels)
	if err != nil {
		fmt.Println(err)
		return
	}
	train, _ := data.Subset(all, data.Range(0, 8000))
	loader, _ := data.NewDataLoader(train, data.LoaderOptions{BatchSize: 64, Shuffle: true, Seed: 1, DropLast: true})
	fmt.Println("batches per epoch:", loader.Len())
	it := loader.Epoch(0)
	for it.Next() {
		x, y := it.Batch()
		fmt.Println("first batch:", x.Shape(), y.DType(), y.Shape())
		break
	}
	if err := it.Err(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// batches per epoch: 125
	// first batch: [64 1 28 28] int64 [64]
}
