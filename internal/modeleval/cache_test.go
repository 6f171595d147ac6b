package modeleval

import (
	"context"
	"sync"
	"testing"

	"github.com/quanta-go/quanta/graph"
)

// job is one quantized model of the tests: a model and a mode.
type job struct {
	m    Model
	mode Mode
}

// name is the job's file name stem ("ppocr_det_static").
func (j job) name() string { return j.m.String() + "_" + j.mode.String() }

// jobs are the quantized models the figures are about.
var jobs = []job{{Det, Static}, {Rec, Static}, {Cls, Static}, {Silero, Static}, {Silero, Dynamic}, {Rec, Mixed16}}

var (
	cacheMu sync.Mutex
	cache   = map[job]*graph.Model{}
)

// quantized returns job j's quantized model, quantizing it once per test
// binary (the tests share it).
func quantized(t *testing.T, models string, j job) *graph.Model {
	t.Helper()
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if q, ok := cache[j]; ok {
		return q
	}
	q, err := testData(t).Quantize(context.Background(), j.m, loadModel(t, models, j.m), j.mode, nil)
	if err != nil {
		t.Fatal(err)
	}
	cache[j] = q
	return q
}
