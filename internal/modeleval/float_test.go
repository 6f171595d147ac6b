package modeleval

import (
	"context"
	"testing"
)

// TestFloatModels runs the float models on the evaluation data and checks
// the data are what the quantized comparison needs: the recognizer reads
// most rendered lines exactly, the classifier tells upright from rotated
// crops, the detector marks text on every page, and Silero hears speech
// in some chunks and silence in others.
func TestFloatModels(t *testing.T) {
	models, d, dict := evalData(t)
	ctx := context.Background()
	for _, m := range Models {
		t.Run(m.String(), func(t *testing.T) {
			p := compile(t, loadModel(t, models, m))
			r, err := d.Evaluate(ctx, m, p, p, Options{Dict: dict, Examples: 200})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(r)
			if r.Agreement != 1 {
				t.Errorf("the float program disagrees with itself: %v", r)
			}
			switch m {
			case Rec:
				if r.N < 100 {
					t.Errorf("%d evaluation lines, want at least 100", r.N)
				}
				if r.FloatAccuracy < 0.9 {
					t.Errorf("the float recognizer reads %.3f of the lines exactly, want at least 0.9", r.FloatAccuracy)
				}
			case Cls:
				if r.N < 200 {
					t.Errorf("%d evaluation crops, want at least 200", r.N)
				}
				if r.FloatAccuracy < 0.9 {
					t.Errorf("the float classifier is right on %.3f of the crops, want at least 0.9", r.FloatAccuracy)
				}
			case Det:
				if r.N < 16 {
					t.Errorf("%d evaluation pages, want at least 16", r.N)
				}
				if r.Positive < 0.02 {
					t.Errorf("the float detector marks %.4f of the pixels as text", r.Positive)
				}
			case Silero:
				if r.N < 600 {
					t.Errorf("%d evaluation chunks, want at least 600", r.N)
				}
				if r.Positive < 0.2 || r.Positive > 0.8 {
					t.Errorf("the float model hears speech in %.3f of the chunks, want 0.2-0.8", r.Positive)
				}
			}
		})
	}
}
