package qgemm

// ReferenceS32 is the specification of every kernel: for each output
// (i, j), acc = sum_p (int32(a[i*lda+p]) - za) * (int32(w[j][p]) - zw[j]).
func ReferenceS32(m int, a []uint8, lda int, za int32, p *Packed, c []int32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < p.N; j++ {
			zw := p.zp(j)
			var acc int32
			for q := 0; q < p.K; q++ {
				acc += (int32(a[i*lda+q]) - za) * (int32(p.w[j*p.K+q]) - zw)
			}
			c[i*ldc+j] = acc
		}
	}
}

// ReferenceS8S32 is ReferenceS32 for int8 activations.
func ReferenceS8S32(m int, a []int8, lda int, za int32, p *Packed, c []int32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < p.N; j++ {
			zw := p.zp(j)
			var acc int32
			for q := 0; q < p.K; q++ {
				acc += (int32(a[i*lda+q]) - za) * (int32(p.w[j*p.K+q]) - zw)
			}
			c[i*ldc+j] = acc
		}
	}
}

// ReferenceU8 is ReferenceS32 followed by the Requant epilogue to uint8.
func ReferenceU8(m int, a []uint8, lda int, za int32, p *Packed, r *Requant, c []uint8, ldc int) {
	acc := make([]int32, p.N)
	for i := 0; i < m; i++ {
		ReferenceS32(1, a[i*lda:], lda, za, p, acc, p.N)
		for j, v := range acc {
			c[i*ldc+j] = uint8(r.apply(v, j))
		}
	}
}

// ReferenceF32 is ReferenceS32 followed by the Dequant epilogue.
func ReferenceF32(m int, a []uint8, lda int, za int32, p *Packed, d *Dequant, c []float32, ldc int) {
	acc := make([]int32, p.N)
	for i := 0; i < m; i++ {
		ReferenceS32(1, a[i*lda:], lda, za, p, acc, p.N)
		for j, v := range acc {
			c[i*ldc+j] = d.apply(v, j)
		}
	}
}

// ReferenceS8 is ReferenceS32 followed by the Requant epilogue to int8.
func ReferenceS8(m int, a []uint8, lda int, za int32, p *Packed, r *Requant, c []int8, ldc int) {
	acc := make([]int32, p.N)
	for i := 0; i < m; i++ {
		ReferenceS32(1, a[i*lda:], lda, za, p, acc, p.N)
		for j, v := range acc {
			c[i*ldc+j] = int8(r.apply(v, j))
		}
	}
}
