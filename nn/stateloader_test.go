package nn

import (
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

type qholder struct {
	Base
	W      *tensor.Tensor `nn:"weight,buffer"`
	loaded int
}

func (q *qholder) AfterLoadStateDict() error { q.loaded++; return nil }

func TestLoadStateDictQParamsAndHook(t *testing.T) {
	m := &qholder{W: tensor.NewQuantized(tensor.QInt8, []int8{1, 2}, tensor.PerTensor(0.5, 0), 2)}
	src := tensor.NewQuantized(tensor.QInt8, []int8{7, -3}, tensor.PerTensor(0.25, 1), 2)
	if err := LoadStateDict(m, map[string]*tensor.Tensor{"weight": src}); err != nil {
		t.Fatal(err)
	}
	if m.W.I8()[0] != 7 || m.W.QParams().Scale[0] != 0.25 || m.W.QParams().ZeroPoint[0] != 1 {
		t.Fatalf("loaded weight %v with qparams %+v", m.W.I8(), m.W.QParams())
	}
	if m.loaded != 1 {
		t.Fatalf("AfterLoadStateDict called %d times", m.loaded)
	}
}
