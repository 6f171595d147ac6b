package numeric

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"text/tabwriter"
)

// Worst returns the n layers that hurt most (all when n <= 0 or n is
// larger than the report): the largest SQNR drop first (the noise a layer
// adds relative to the noise of its inputs), ties broken by the lower
// activation SQNR, then by graph order.
func (r *Report) Worst(n int) []Layer {
	ls := append([]Layer(nil), r.Layers...)
	key := func(d float64) float64 {
		if math.IsNaN(d) {
			return math.Inf(-1)
		}
		return d
	}
	sort.SliceStable(ls, func(i, j int) bool {
		di, dj := key(ls[i].Drop), key(ls[j].Drop)
		if di != dj {
			return di > dj
		}
		si, sj := ls[i].Activation.SQNR, ls[j].Activation.SQNR
		if si != sj {
			return si < sj
		}
		return ls[i].Index < ls[j].Index
	})
	if n > 0 && n < len(ls) {
		ls = ls[:n]
	}
	return ls
}

// Lowest returns the n layers with the lowest activation SQNR (all when
// n <= 0), ties in graph order.
func (r *Report) Lowest(n int) []Layer {
	ls := append([]Layer(nil), r.Layers...)
	sort.SliceStable(ls, func(i, j int) bool { return ls[i].Activation.SQNR < ls[j].Activation.SQNR })
	if n > 0 && n < len(ls) {
		ls = ls[:n]
	}
	return ls
}

// fdb formats a value in dB (or any float): "inf" for +Inf, "-" for NaN.
func fdb(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	case math.IsNaN(v):
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func fcos(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 6, 64)
}

func ferr(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// summary is the report's first line.
func (r *Report) summary() string {
	s := fmt.Sprintf("%s vs %s: %d feeds, %d layers compared", r.FloatName, r.QuantName, r.Feeds, len(r.Layers))
	if r.FoldedBatchNorms > 0 {
		s += fmt.Sprintf(", %d batch norms folded in the float model", r.FoldedBatchNorms)
	}
	if len(r.Unmatched) > 0 {
		s += fmt.Sprintf(", %d float nodes unmatched", len(r.Unmatched))
	}
	return s
}

// WriteTable writes the report as aligned text: a summary line, one row
// per layer in graph order (activation SQNR, cosine and errors, weight
// SQNR, SQNR drop), the quantized inputs and the final outputs.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, r.summary())
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "#\tnode\top\tmodule\tSQNR dB\tcosine\tmax|err|\tmean|err|\tweight SQNR dB\tdrop dB")
	for _, l := range r.Layers {
		ws := "-"
		if l.Weight != nil {
			ws = fdb(l.Weight.SQNR)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Index, l.Node, l.OpType, orDash(l.ModulePath),
			fdb(l.Activation.SQNR), fcos(l.Activation.Cosine), ferr(l.Activation.MaxAbs), ferr(l.Activation.MeanAbs), ws, fdb(l.Drop))
	}
	if len(r.Inputs) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "input\t\t\t\tSQNR dB\tcosine\tmax|err|\tmean|err|")
		for _, in := range r.Inputs {
			fmt.Fprintf(tw, "%s\t\t\t\t%s\t%s\t%s\t%s\n", in.Name, fdb(in.Stats.SQNR), fcos(in.Stats.Cosine), ferr(in.Stats.MaxAbs), ferr(in.Stats.MeanAbs))
		}
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "output\trun\t\t\tSQNR dB\tcosine\tmax|err|\tmean|err|")
	for _, o := range r.Outputs {
		s := o.Reference
		fmt.Fprintf(tw, "%s\treference\t\t\t%s\t%s\t%s\t%s\n", o.Name, fdb(s.SQNR), fcos(s.Cosine), ferr(s.MaxAbs), ferr(s.MeanAbs))
		if o.Fused != nil {
			s = *o.Fused
			fmt.Fprintf(tw, "%s\tint8\t\t\t%s\t%s\t%s\t%s\n", o.Name, fdb(s.SQNR), fcos(s.Cosine), ferr(s.MaxAbs), ferr(s.MeanAbs))
		}
	}
	return tw.Flush()
}

// WriteWorst writes the n layers that hurt most (Worst) as aligned text.
func (r *Report) WriteWorst(w io.Writer, n int) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "rank\tnode\top\tmodule\tdrop dB\tinput SQNR dB\tSQNR dB\tcosine\tweight SQNR dB")
	for i, l := range r.Worst(n) {
		ws := "-"
		if l.Weight != nil {
			ws = fdb(l.Weight.SQNR)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, l.Node, l.OpType, orDash(l.ModulePath),
			fdb(l.Drop), fdb(l.InputSQNR), fdb(l.Activation.SQNR), fcos(l.Activation.Cosine), ws)
	}
	return tw.Flush()
}

// jfloat is a float in JSON: a number, "Infinity"/"-Infinity" for
// infinities, null for NaN.
type jfloat float64

func (f jfloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsInf(v, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Infinity"`), nil
	case math.IsNaN(v):
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

type jstats struct {
	SQNR    jfloat `json:"sqnr_db"`
	Cosine  jfloat `json:"cosine"`
	MaxAbs  jfloat `json:"max_abs_error"`
	MeanAbs jfloat `json:"mean_abs_error"`
	Count   int64  `json:"count"`
}

func js(s Stats) jstats {
	return jstats{jfloat(s.SQNR), jfloat(s.Cosine), jfloat(s.MaxAbs), jfloat(s.MeanAbs), s.Count}
}

type jlayer struct {
	Index       int     `json:"index"`
	Node        string  `json:"node"`
	OpType      string  `json:"op_type"`
	ModulePath  string  `json:"module_path,omitempty"`
	Value       string  `json:"value"`
	QuantValue  string  `json:"quant_value"`
	Activation  jstats  `json:"activation"`
	Weight      *jstats `json:"weight,omitempty"`
	WeightValue string  `json:"weight_value,omitempty"`
	InputSQNR   jfloat  `json:"input_sqnr_db"`
	Drop        jfloat  `json:"drop_db"`
}

type jinput struct {
	Name  string `json:"name"`
	Value string `json:"quant_value"`
	Stats jstats `json:"stats"`
}

type joutput struct {
	Name      string  `json:"name"`
	Reference jstats  `json:"reference"`
	Fused     *jstats `json:"int8,omitempty"`
}

type jreport struct {
	FloatModel       string    `json:"float_model"`
	QuantModel       string    `json:"quant_model"`
	Feeds            int       `json:"feeds"`
	FoldedBatchNorms int       `json:"folded_batch_norms"`
	Layers           []jlayer  `json:"layers"`
	Inputs           []jinput  `json:"inputs"`
	Outputs          []joutput `json:"outputs"`
	Worst            []string  `json:"worst"`
	Unmatched        []string  `json:"unmatched"`
}

// WriteJSON writes the report as indented JSON: the layers in graph order
// with their statistics (SQNR in dB; an infinite SQNR is the string
// "Infinity", an unknown one null), the inputs, the outputs ("int8" for
// the fused program), and every layer's node name ranked by Worst.
func (r *Report) WriteJSON(w io.Writer) error {
	j := jreport{FloatModel: r.FloatName, QuantModel: r.QuantName, Feeds: r.Feeds, FoldedBatchNorms: r.FoldedBatchNorms,
		Layers: []jlayer{}, Inputs: []jinput{}, Outputs: []joutput{}, Worst: []string{}, Unmatched: append([]string{}, r.Unmatched...)}
	for _, l := range r.Layers {
		jl := jlayer{Index: l.Index, Node: l.Node, OpType: l.OpType, ModulePath: l.ModulePath, Value: l.Value, QuantValue: l.QuantValue,
			Activation: js(l.Activation), WeightValue: l.WeightValue, InputSQNR: jfloat(l.InputSQNR), Drop: jfloat(l.Drop)}
		if l.Weight != nil {
			s := js(*l.Weight)
			jl.Weight = &s
		}
		j.Layers = append(j.Layers, jl)
	}
	for _, in := range r.Inputs {
		j.Inputs = append(j.Inputs, jinput{in.Name, in.Value, js(in.Stats)})
	}
	for _, o := range r.Outputs {
		jo := joutput{Name: o.Name, Reference: js(o.Reference)}
		if o.Fused != nil {
			s := js(*o.Fused)
			jo.Fused = &s
		}
		j.Outputs = append(j.Outputs, jo)
	}
	for _, l := range r.Worst(0) {
		j.Worst = append(j.Worst, l.Node)
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
