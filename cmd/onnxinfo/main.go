// Command onnxinfo loads ONNX models into quanta's graph IR and reports what
// it found: opsets, inputs and outputs, the op histogram, initializer bytes,
// load time and memory. With -roundtrip it also exports each model and
// checks that importing the export gives the same graph.
//
//	go run ./cmd/onnxinfo [-roundtrip] [-o out.onnx] model.onnx...
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/quanta-go/quanta/onnx"
)

func main() {
	roundtrip := flag.Bool("roundtrip", false, "export each model and check that re-importing it gives the same graph")
	out := flag.String("o", "", "save the (single) model to this file after loading")
	flag.Parse()
	if flag.NArg() == 0 || (*out != "" && flag.NArg() != 1) {
		fmt.Fprintln(os.Stderr, "usage: onnxinfo [-roundtrip] [-o out.onnx] model.onnx...")
		os.Exit(2)
	}
	failed := false
	for _, path := range flag.Args() {
		if err := report(path, *roundtrip, *out); err != nil {
			fmt.Fprintln(os.Stderr, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

func report(path string, roundtrip bool, out string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	t0 := time.Now()
	m, err := onnx.Load(path)
	elapsed := time.Since(t0)
	if err != nil {
		return err
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	runtime.GC()
	runtime.ReadMemStats(&after)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)

	g := m.Graph
	fmt.Printf("%s (%.1f MB): IR %d, opsets %v, producer %q %q\n", path, mb(st.Size()), m.IRVersion, m.Opsets, m.ProducerName, m.ProducerVersion)
	fmt.Printf("  load %v; allocated %.1f MB during load, %.1f MB live after, peak RSS %.1f MB\n",
		elapsed.Round(time.Millisecond), mb(int64(allocated)), mb(int64(after.HeapAlloc)), float64(ru.Maxrss)/1024)
	var io []string
	for _, v := range g.Inputs {
		io = append(io, v.Name+": "+v.Type.String())
	}
	fmt.Printf("  inputs: %s\n", strings.Join(io, ", "))
	io = io[:0]
	for _, v := range g.Outputs {
		io = append(io, v.Name+": "+v.Type.String())
	}
	fmt.Printf("  outputs: %s\n", strings.Join(io, ", "))
	var initBytes int64
	for _, v := range g.Initializers {
		initBytes += int64(v.Const.Numel() * v.Const.DType().Size())
	}
	counts := g.OpCounts()
	total, subgraphs := 0, 0
	for _, c := range counts {
		total += c
	}
	for _, n := range g.Nodes {
		subgraphs += len(n.Subgraphs())
	}
	fmt.Printf("  %d nodes (%d in the main graph, %d subgraphs), %d initializers (%.1f MB)\n",
		total, len(g.Nodes), subgraphs, len(g.Initializers), mb(initBytes))
	ops := make([]string, 0, len(counts))
	for op := range counts {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool {
		if counts[ops[i]] != counts[ops[j]] {
			return counts[ops[i]] > counts[ops[j]]
		}
		return ops[i] < ops[j]
	})
	var hist []string
	for _, op := range ops {
		hist = append(hist, fmt.Sprintf("%s %d", op, counts[op]))
	}
	fmt.Printf("  ops: %s\n", strings.Join(hist, ", "))
	if roundtrip {
		t0 := time.Now()
		data, err := onnx.Encode(m)
		if err != nil {
			return fmt.Errorf("%s: export: %w", path, err)
		}
		m2, err := onnx.Decode(data, onnx.DecodeOptions{Name: path + " (exported)"})
		if err != nil {
			return err
		}
		if a, b := g.String(), m2.Graph.String(); a != b {
			return fmt.Errorf("%s: the exported model imports as a different graph", path)
		}
		fmt.Printf("  round trip: exported %.1f MB, re-imported the same graph (%v)\n", mb(int64(len(data))), time.Since(t0).Round(time.Millisecond))
	}
	if out != "" {
		if err := onnx.Save(out, m); err != nil {
			return err
		}
		fmt.Printf("  saved %s\n", out)
	}
	return nil
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }
