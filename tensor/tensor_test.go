package tensor

import "testing"

func TestZeroDimShapes(t *testing.T) {
	for _, d := range []DType{Float32, Int64, Bool, Int8, QUInt8} {
		x := New(d)
		if x.NDim() != 0 || x.Numel() != 1 {
			t.Errorf("New(%v) with no dims: shape %v, numel %d", d, x.Shape(), x.Numel())
		}
		if c := x.Clone(); c.NDim() != 0 {
			t.Errorf("Clone of 0-d %v: shape %v", d, c.Shape())
		}
	}
	if r := FromInt64([]int64{7}).Reshape(); r.NDim() != 0 || r.Item() != 7 {
		t.Errorf("Reshape to 0-d: %v", r.Shape())
	}
	var z Tensor
	if z.NDim() != 1 || z.Numel() != 0 || z.DType() != Float32 {
		t.Errorf("zero Tensor: %v %v", z.Shape(), z.DType())
	}
}
