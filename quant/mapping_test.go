package quant

import "testing"

func TestQConfigMappingPrecedence(t *testing.T) {
	g := &QConfig{Name: "global"}
	conv := &QConfig{Name: "conv"}
	re := &QConfig{Name: "regex"}
	re2 := &QConfig{Name: "regex2"}
	name := &QConfig{Name: "name"}
	order := &QConfig{Name: "order"}
	m := NewQConfigMapping().SetGlobal(g).SetObjectType("Conv2d", conv)
	if _, err := m.SetModuleNameRegex(`features\.\d+\.conv`, re); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetModuleNameRegex(`features`, re2); err != nil {
		t.Fatal(err)
	}
	m.SetModuleName("features.3", name)
	m.SetModuleName("head", nil)
	m.SetModuleNameObjectTypeOrder("block", "Add", 1, order)

	cases := []struct {
		path, typ string
		want      *QConfig
	}{
		{"stem", "Linear", g},
		{"stem", "Conv2d", conv},
		{"features.1.conv", "Conv2d", re},     // regex beats type
		{"features.1.bn", "BatchNorm2d", re2}, // second regex, first failed to match
		{"features.3.conv", "Conv2d", name},   // parent name beats regex
		{"features.3", "Sequential", name},    // exact name
		{"features.30.conv", "Conv2d", re},    // "features.3" is not a parent of "features.30"
		{"head", "Linear", nil},               // nil means skip
		{"head.fc", "Linear", nil},            // inherited skip
		{"xfeatures", "Conv2d", conv},         // regex anchored at start
	}
	for _, c := range cases {
		if got := m.Lookup(c.path, c.typ); got != c.want {
			t.Errorf("Lookup(%q, %q) = %v, want %v", c.path, c.typ, got, c.want)
		}
	}
	if got := m.LookupCall("block", "Add", 1); got != order {
		t.Errorf("LookupCall order = %v", got)
	}
	if got := m.LookupCall("block", "Add", 0); got != g {
		t.Errorf("LookupCall other index = %v", got)
	}
	// Re-setting a regex keeps its position.
	if _, err := m.SetModuleNameRegex(`features\.\d+\.conv`, nil); err != nil {
		t.Fatal(err)
	}
	if got := m.Lookup("features.1.conv", "Conv2d"); got != nil {
		t.Errorf("after re-set, got %v, want nil", got)
	}
	if _, err := m.SetModuleNameRegex(`(`, g); err == nil {
		t.Error("bad regex accepted")
	}
	var zero QConfigMapping
	if zero.Lookup("a", "Conv2d") != nil {
		t.Error("zero mapping quantizes")
	}
}
