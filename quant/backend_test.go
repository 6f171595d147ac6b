package quant

import "testing"

func TestBackendConfig(t *testing.T) {
	for _, e := range Engines {
		b, err := GetBackendConfig(e)
		if err != nil {
			t.Fatal(err)
		}
		p := b.Lookup("Conv2d", "BatchNorm2d", "ReLU")
		if p == nil || !p.FoldsBN || p.QuantizedModule != "quantized.ConvReLU2d" || p.QATModule != "qat.ConvBnReLU2d" {
			t.Fatalf("%s: conv-bn-relu = %+v", e, p)
		}
		if p := b.Lookup("MaxPool2d"); p == nil || p.Observation != OutputShareObserverWithInput {
			t.Fatalf("%s: maxpool = %+v", e, p)
		}
		if p := b.Lookup("Sigmoid"); p == nil || p.Observation != OutputFixedQParams {
			t.Fatalf("%s: sigmoid = %+v", e, p)
		}
		if b.Lookup("Conv2d", "Sigmoid") != nil {
			t.Fatalf("%s: conv+sigmoid is not a fusion", e)
		}
		fs := b.Fusions()
		if len(fs) == 0 || len(fs[0].Pattern) != 3 {
			t.Fatalf("%s: fusions not longest first", e)
		}
		seen := map[string]bool{}
		for _, p := range b.Patterns {
			if seen[p.Key()] {
				t.Fatalf("%s: duplicate pattern %s", e, p.Key())
			}
			seen[p.Key()] = true
		}
	}
	q, _ := GetBackendConfig("qnnpack")
	if len(q.Lookup("Conv2d").DTypeConfigs) != 2 {
		t.Fatal("qnnpack conv should also support symmetric qint8")
	}
	if _, err := GetBackendConfig("tpu"); err == nil {
		t.Fatal("unknown engine accepted")
	}
}
