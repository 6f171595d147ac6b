package quant

import (
	"fmt"
	"regexp"
	"strings"
)

// QConfigMapping assigns qconfigs to the parts of a model, as PyTorch's
// torch.ao.quantization.QConfigMapping. Rules, in increasing priority:
//
//  1. SetGlobal: everything.
//  2. SetObjectType: modules (or ops) of a type, e.g. "Conv2d", "Linear",
//     or an ONNX op type in graph mode.
//  3. SetModuleNameRegex: module paths matching a regular expression
//     (anchored at the start, as Python's re.match); the first registered
//     pattern that matches wins.
//  4. SetModuleName: a module path; a rule for "a.b" also covers "a.b.c".
//  5. SetModuleNameObjectTypeOrder: the index-th call of an op type inside
//     a module (graph mode functions).
//
// A nil *QConfig in any rule means "do not quantize". The zero value maps
// everything to nil (nothing is quantized).
type QConfigMapping struct {
	global    *QConfig
	hasGlobal bool
	types     []typeRule
	regexes   []regexRule
	names     map[string]*QConfig
	nameOrder []string
	orders    []orderRule
}

type typeRule struct {
	typ string
	qc  *QConfig
}

type regexRule struct {
	pattern string
	re      *regexp.Regexp
	qc      *QConfig
}

type orderRule struct {
	module, typ string
	index       int
	qc          *QConfig
}

// NewQConfigMapping returns an empty mapping.
func NewQConfigMapping() *QConfigMapping { return &QConfigMapping{} }

// SetGlobal sets the qconfig of everything not matched by another rule.
func (m *QConfigMapping) SetGlobal(qc *QConfig) *QConfigMapping {
	m.global, m.hasGlobal = qc, true
	return m
}

// SetObjectType sets the qconfig of every module or op of type typ.
// Setting a type again replaces its qconfig in place.
func (m *QConfigMapping) SetObjectType(typ string, qc *QConfig) *QConfigMapping {
	for i := range m.types {
		if m.types[i].typ == typ {
			m.types[i].qc = qc
			return m
		}
	}
	m.types = append(m.types, typeRule{typ, qc})
	return m
}

// SetModuleNameRegex sets the qconfig of module paths matching pattern.
// Re-setting a pattern keeps its original position in the order.
func (m *QConfigMapping) SetModuleNameRegex(pattern string, qc *QConfig) (*QConfigMapping, error) {
	for i := range m.regexes {
		if m.regexes[i].pattern == pattern {
			m.regexes[i].qc = qc
			return m, nil
		}
	}
	re, err := regexp.Compile(`^(?:` + pattern + `)`)
	if err != nil {
		return m, fmt.Errorf("quant: module name regex %q: %w", pattern, err)
	}
	m.regexes = append(m.regexes, regexRule{pattern, re, qc})
	return m, nil
}

// SetModuleName sets the qconfig of the module at a dotted path and of
// everything below it that has no more specific rule.
func (m *QConfigMapping) SetModuleName(path string, qc *QConfig) *QConfigMapping {
	if m.names == nil {
		m.names = map[string]*QConfig{}
	}
	if _, ok := m.names[path]; !ok {
		m.nameOrder = append(m.nameOrder, path)
	}
	m.names[path] = qc
	return m
}

// SetModuleNameObjectTypeOrder sets the qconfig of the index-th (from 0)
// call of op type typ inside the module at path.
func (m *QConfigMapping) SetModuleNameObjectTypeOrder(path, typ string, index int, qc *QConfig) *QConfigMapping {
	for i := range m.orders {
		o := &m.orders[i]
		if o.module == path && o.typ == typ && o.index == index {
			o.qc = qc
			return m
		}
	}
	m.orders = append(m.orders, orderRule{path, typ, index, qc})
	return m
}

// Lookup resolves the qconfig of a module (or op) of type typ at a dotted
// path, with PyTorch's precedence: module name (walking up parent paths) >
// regex > object type > global. It returns nil when the result is "do not
// quantize".
func (m *QConfigMapping) Lookup(path, typ string) *QConfig {
	if m == nil {
		return nil
	}
	qc := m.global
	if !m.hasGlobal {
		qc = nil
	}
	for _, r := range m.types {
		if r.typ == typ {
			qc = r.qc
			break
		}
	}
	for _, r := range m.regexes {
		if r.re.MatchString(path) {
			qc = r.qc
			break
		}
	}
	if nq, ok := m.lookupName(path); ok {
		qc = nq
	}
	return qc
}

// Rule returns the qconfig of the most specific rule that names the module
// at path itself: its exact module name, else the first matching regex,
// else its object type. matched is false when only the global rule or the
// name rule of an enclosing module would apply. Eager-mode propagation uses
// it as PyTorch's propagate_qconfig_ reads a qconfig_dict: a module takes
// its own rule when it has one, else its parent's qconfig.
func (m *QConfigMapping) Rule(path, typ string) (qc *QConfig, matched bool) {
	if m == nil {
		return nil, false
	}
	if qc, ok := m.names[path]; ok && path != "" {
		return qc, true
	}
	for _, r := range m.regexes {
		if r.re.MatchString(path) {
			return r.qc, true
		}
	}
	for _, r := range m.types {
		if r.typ == typ {
			return r.qc, true
		}
	}
	return nil, false
}

// Global returns the global qconfig and whether SetGlobal was called.
func (m *QConfigMapping) Global() (qc *QConfig, set bool) {
	if m == nil {
		return nil, false
	}
	return m.global, m.hasGlobal
}

// LookupCall is Lookup for the index-th call of op type typ made inside the
// module at path; a SetModuleNameObjectTypeOrder rule takes precedence.
func (m *QConfigMapping) LookupCall(path, typ string, index int) *QConfig {
	if m != nil {
		for _, o := range m.orders {
			if o.module == path && o.typ == typ && o.index == index {
				return o.qc
			}
		}
	}
	return m.Lookup(path, typ)
}

func (m *QConfigMapping) lookupName(path string) (*QConfig, bool) {
	for path != "" {
		if qc, ok := m.names[path]; ok {
			return qc, true
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return nil, false
}

// ObjectTypes returns the types with an explicit rule, in the order set.
func (m *QConfigMapping) ObjectTypes() []string {
	var out []string
	for _, r := range m.types {
		out = append(out, r.typ)
	}
	return out
}
