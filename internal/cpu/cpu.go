// Package cpu decides, once per process, which machine-code tier quanta's
// kernels may use. The tier is read from the CPU's feature flags and may be
// capped with the QUANTA_CPU environment variable (generic, avx2, avx512),
// so every lower tier can be exercised on a machine that has a higher one.
package cpu

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/cpu"
)

// Level is a code-path tier. Higher levels include the lower ones.
type Level int

const (
	// Generic is plain Go: the reference every other tier must equal.
	Generic Level = iota
	// AVX2 means AVX2 and FMA3 are available.
	AVX2
	// AVX512 means AVX-512 F, BW, DQ and VL are available.
	AVX512
	// AVX512VNNI adds AVX-512 VNNI (vpdpbusd) to AVX512.
	AVX512VNNI
)

// String returns the name used by QUANTA_CPU and in benchmark names.
func (l Level) String() string {
	switch l {
	case Generic:
		return "generic"
	case AVX2:
		return "avx2"
	case AVX512:
		return "avx512"
	case AVX512VNNI:
		return "avx512vnni"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// ParseLevel parses a QUANTA_CPU value.
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "generic", "purego", "go":
		return Generic, nil
	case "avx2":
		return AVX2, nil
	case "avx512":
		return AVX512, nil
	case "avx512vnni", "vnni":
		return AVX512VNNI, nil
	}
	return Generic, fmt.Errorf("cpu: unknown QUANTA_CPU level %q (want generic, avx2, avx512 or avx512vnni)", s)
}

// Hardware is the highest level this CPU supports, ignoring QUANTA_CPU.
var Hardware = detect()

// Max is the highest level kernels may use: Hardware capped by QUANTA_CPU.
// It is decided once at start-up; tests use SetMax to force lower tiers.
var Max = capped()

// CapError is set when QUANTA_CPU holds an unknown value; Max is then Generic.
var CapError error

func detect() Level {
	if !asmAvailable {
		return Generic
	}
	l := Generic
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		l = AVX2
	}
	if l == AVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL {
		l = AVX512
		if cpu.X86.HasAVX512VNNI {
			l = AVX512VNNI
		}
	}
	return l
}

func capped() Level {
	v, ok := os.LookupEnv("QUANTA_CPU")
	if !ok || v == "" {
		return Hardware
	}
	l, err := ParseLevel(v)
	if err != nil {
		CapError = err
		fmt.Fprintln(os.Stderr, "quanta:", err, "- using generic kernels")
		return Generic
	}
	if l > Hardware {
		return Hardware
	}
	return l
}

// Has reports whether kernels may use level l.
func Has(l Level) bool { return l <= Max }

// SetMax caps the level kernels use and returns the previous cap. It never
// raises the cap above Hardware. It exists for tests and benchmarks that
// compare tiers; it is not safe to call while kernels run.
func SetMax(l Level) Level {
	old := Max
	if l > Hardware {
		l = Hardware
	}
	Max = l
	return old
}

// Levels lists every level this machine supports, lowest first.
func Levels() []Level {
	var ls []Level
	for l := Generic; l <= Hardware; l++ {
		ls = append(ls, l)
	}
	return ls
}
