//go:build !purego

#include "textflag.h"

// NEUMAIER adds term x to the pair (sum, comp = X7), leaving the new sum in
// out: out = sum + x; comp += (max(sum, x) - out) + min(sum, x). X1 and X2
// are scratch.
#define NEUMAIER(x, sum, out) \
	VADDSD x, sum, out; \
	VMAXSD x, sum, X1;  \
	VMINSD x, sum, X2;  \
	VSUBSD out, X1, X1; \
	VADDSD X2, X1, X1;  \
	VADDSD X1, X7, X7

// func scoreKernelAVX2(start, end *int64, hasEnd *uint8, weight *float64, n int, now, t0 int64, acc *[2]float64) (maybeBad uint64)
//
// The scoreFull recurrence over rows [0, n), n a multiple of 4. Four rows at a
// time, held seconds and terms are computed in AVX2 lanes (int64 held seconds
// in [0, 2^52) convert exactly through the 2^52 exponent trick); the terms are
// then added one by one, in input order, to the Neumaier pair in acc:
//
//	t = sum + x; comp += (max(sum, x) - t) + min(sum, x); sum = t
//
// which is the Go loop's branch on sum >= x written with VMAXSD/VMINSD (both
// operands are non-negative for valid rows). Validity is folded into two
// accumulators; a non-zero result means some row may be invalid (or has a
// weight of -0.0) and the caller re-runs the exact Go loop for the error.
TEXT ·scoreKernelAVX2(SB), NOSPLIT, $0-72
	MOVQ start+0(FP), SI
	MOVQ end+8(FP), DI
	MOVQ hasEnd+16(FP), R8
	MOVQ weight+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ acc+56(FP), R10

	VPBROADCASTQ now+40(FP), Y15 // now (already min(now, window end))
	VPBROADCASTQ t0+48(FP), Y14  // window start
	MOVQ $0x3afff4417f, AX       // MaxTime
	MOVQ AX, X0
	VPBROADCASTQ X0, Y13
	MOVQ $0x6974e718d7d7625a, AX // bits of MaxWeight (1e200)
	MOVQ AX, X0
	VPBROADCASTQ X0, Y12
	MOVQ $0x4330000000000000, AX // 2^52 as a float64
	MOVQ AX, X0
	VPBROADCASTQ X0, Y11
	VPXOR Y10, Y10, Y10          // zero
	VPXOR Y9, Y9, Y9             // OR of values whose sign bit marks a bad row
	VPXOR Y8, Y8, Y8             // OR of "greater than the maximum" masks
	VMOVSD 0(R10), X6            // sum
	VMOVSD 8(R10), X7            // comp
	XORQ BX, BX
	TESTQ CX, CX
	JZ done

loop:
	VMOVDQU (SI)(BX*8), Y0       // s
	VMOVDQU (DI)(BX*8), Y1       // e
	VPMOVZXBQ (R8)(BX*1), Y2     // has_end
	VPCMPEQQ Y10, Y2, Y2         // open = has_end == 0
	VPANDN Y1, Y2, Y3            // e where closed, else 0
	VPBLENDVB Y2, Y15, Y1, Y4    // open ? now : e
	VPCMPGTQ Y15, Y4, Y5         // > now ?
	VPBLENDVB Y5, Y15, Y4, Y4    // stop = min(e ?? now, now)
	VPCMPGTQ Y0, Y14, Y5         // t0 > s ?
	VPBLENDVB Y5, Y14, Y0, Y5    // max(s, t0)
	VPSUBQ Y5, Y4, Y4            // stop - max(s, t0)
	VPCMPGTQ Y4, Y10, Y5         // < 0 ?
	VPANDN Y4, Y5, Y4            // held = max(.., 0)
	VPOR Y11, Y4, Y4
	VSUBPD Y11, Y4, Y4           // float64(held)
	VMOVUPD (R9)(BX*8), Y5       // w
	VMULPD Y5, Y4, Y4            // x = held * w

	VPSUBQ Y0, Y1, Y1            // e - s
	VPANDN Y1, Y2, Y1            // (e - s) where closed
	VPOR Y0, Y9, Y9              // s < 0
	VPOR Y3, Y9, Y9              // end < 0
	VPOR Y1, Y9, Y9              // end < start
	VPOR Y5, Y9, Y9              // weight sign bit set (negative, -0.0, -NaN)
	VPCMPGTQ Y13, Y0, Y1         // s > MaxTime
	VPOR Y1, Y8, Y8
	VPCMPGTQ Y13, Y3, Y1         // end > MaxTime
	VPOR Y1, Y8, Y8
	VPCMPGTQ Y12, Y5, Y1         // weight > MaxWeight or NaN
	VPOR Y1, Y8, Y8

	VEXTRACTF128 $1, Y4, X5      // rows 2, 3
	NEUMAIER(X4, X6, X0)         // row 0: sum X6 -> X0
	VUNPCKHPD X4, X4, X3
	NEUMAIER(X3, X0, X6)         // row 1: sum X0 -> X6
	NEUMAIER(X5, X6, X0)         // row 2
	VUNPCKHPD X5, X5, X3
	NEUMAIER(X3, X0, X6)         // row 3

	ADDQ $4, BX
	CMPQ BX, CX
	JB loop

done:
	VMOVSD X6, 0(R10)
	VMOVSD X7, 8(R10)
	VPSRLQ $63, Y9, Y9
	VPOR Y9, Y8, Y8
	XORQ AX, AX
	VPTEST Y8, Y8
	SETNE AL
	VZEROUPPER
	MOVQ AX, maybeBad+64(FP)
	RET
