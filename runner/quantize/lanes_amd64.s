#include "textflag.h"

// Eight columns of a block of rows at a time, one column a lane: each
// lane runs the very float32 operations the Go code runs on its column
// (clip.go's roundingErrors and clipped, codes.go's quotient), in the
// same order, so the results are the same bits.

// func rangesAVX2(rows *float32, stride, count int, lo, hi *[8]float32) int
// lo and hi are the columns' ranges over count rows stride bytes apart;
// the result has bit i set when column i holds a NaN (which MINPS and
// MAXPS do not carry).
TEXT ·rangesAVX2(SB), NOSPLIT, $0-48
	MOVQ rows+0(FP), SI
	MOVQ stride+8(FP), DX
	MOVQ count+16(FP), CX
	MOVQ lo+24(FP), DI
	MOVQ hi+32(FP), R8
	VMOVUPS (SI), Y0
	VMOVUPS Y0, Y1
	VXORPS  Y2, Y2, Y2

ranges:
	VMOVUPS (SI), Y3
	VMINPS  Y3, Y0, Y0
	VMAXPS  Y3, Y1, Y1
	VCMPPS  $3, Y3, Y3, Y4 // unordered: NaN
	VORPS   Y4, Y2, Y2
	ADDQ    DX, SI
	DECQ    CX
	JNZ     ranges

	VMOVUPS   Y0, (DI)
	VMOVUPS   Y1, (R8)
	VMOVMSKPS Y2, AX
	MOVQ      AX, ret+40(FP)
	VZEROUPPER
	RET

// func clipCodesAVX2(rows *float32, stride, count int, l *clipLanes, c *clipConsts)
// From each lane's scale and zero point (l.scale, l.zp: ComputeParams of
// its range), the squared errors of the three clip candidates, the
// chosen scale into l.scale, and the codes of count rows (a multiple of
// 8) packed eight to a uint32 into l.codes, the first row in the low
// nibble. clipLanes: scale at 0, zp at 32, codes at 64; clipConsts:
// ratios at 0, qmin at 12, qmax at 16, shift at 20.
TEXT ·clipCodesAVX2(SB), NOSPLIT, $0-40
	MOVQ rows+0(FP), SI
	MOVQ stride+8(FP), DX
	MOVQ count+16(FP), CX
	MOVQ l+24(FP), DI
	MOVQ c+32(FP), R8

	// s_i = scale·ratios[i], inv_i = 1/s_i
	VMOVUPS      0(DI), Y0
	VBROADCASTSS 0(R8), Y1
	VMULPS       Y1, Y0, Y4
	VBROADCASTSS 4(R8), Y1
	VMULPS       Y1, Y0, Y5
	VBROADCASTSS 8(R8), Y1
	VMULPS       Y1, Y0, Y6
	MOVL         $0x3f800000, AX // 1.0
	VMOVD        AX, X1
	VPBROADCASTD X1, Y1
	VDIVPS       Y4, Y1, Y7
	VDIVPS       Y5, Y1, Y8
	VDIVPS       Y6, Y1, Y9

	// Codes less the zero point range over [qmin-zp, qmax-zp].
	VMOVDQU      32(DI), Y2
	VPBROADCASTD 12(R8), Y1
	VPSUBD       Y2, Y1, Y10
	VPBROADCASTD 16(R8), Y1
	VPSUBD       Y2, Y1, Y11
	MOVL         $0x4b400000, AX // roundMagic, 1.5·2^23
	VMOVD        AX, X12
	VPBROADCASTD X12, Y12
	VXORPS       Y13, Y13, Y13
	VXORPS       Y14, Y14, Y14
	VXORPS       Y15, Y15, Y15
	MOVQ         SI, R9
	MOVQ         CX, R10

search:
	VMOVUPS (R9), Y0
	// e0 += (x - float32(clamp(roundInt(x·inv0)))·s0)²
	VMULPS    Y7, Y0, Y1
	VADDPS    Y12, Y1, Y1
	VPSUBD    Y12, Y1, Y1
	VPMAXSD   Y10, Y1, Y1
	VPMINSD   Y11, Y1, Y1
	VCVTDQ2PS Y1, Y1
	VMULPS    Y4, Y1, Y1
	VSUBPS    Y1, Y0, Y1
	VMULPS    Y1, Y1, Y1
	VADDPS    Y1, Y13, Y13
	// e1, with s1
	VMULPS    Y8, Y0, Y2
	VADDPS    Y12, Y2, Y2
	VPSUBD    Y12, Y2, Y2
	VPMAXSD   Y10, Y2, Y2
	VPMINSD   Y11, Y2, Y2
	VCVTDQ2PS Y2, Y2
	VMULPS    Y5, Y2, Y2
	VSUBPS    Y2, Y0, Y2
	VMULPS    Y2, Y2, Y2
	VADDPS    Y2, Y14, Y14
	// e2, with s2
	VMULPS    Y9, Y0, Y3
	VADDPS    Y12, Y3, Y3
	VPSUBD    Y12, Y3, Y3
	VPMAXSD   Y10, Y3, Y3
	VPMINSD   Y11, Y3, Y3
	VCVTDQ2PS Y3, Y3
	VMULPS    Y6, Y3, Y3
	VSUBPS    Y3, Y0, Y3
	VMULPS    Y3, Y3, Y3
	VADDPS    Y3, Y15, Y15
	ADDQ      DX, R9
	DECQ      R10
	JNZ       search

	// The first candidate with the least error: e1 < e0, then e2 < best.
	VCMPPS    $1, Y13, Y14, Y1
	VBLENDVPS Y1, Y14, Y13, Y13
	VBLENDVPS Y1, Y5, Y4, Y4
	VCMPPS    $1, Y13, Y15, Y1
	VBLENDVPS Y1, Y6, Y4, Y4
	VMOVUPS   Y4, 0(DI)

	// code = clamp(roundInt(x/s) + zp, qmin, qmax) + shift, eight rows
	// to a uint32: each row shifts the last ones down a nibble.
	VMOVDQU      32(DI), Y2
	VPBROADCASTD 12(R8), Y10
	VPBROADCASTD 16(R8), Y11
	VPBROADCASTD 20(R8), Y3
	LEAQ         64(DI), R11
	MOVQ         SI, R9
	MOVQ         CX, R10

group:
	VPXOR Y13, Y13, Y13
	MOVQ  $8, BX

row:
	VMOVUPS (R9), Y0
	VDIVPS  Y4, Y0, Y1
	VADDPS  Y12, Y1, Y1
	VPSUBD  Y12, Y1, Y1
	VPADDD  Y2, Y1, Y1
	VPMAXSD Y10, Y1, Y1
	VPMINSD Y11, Y1, Y1
	VPADDD  Y3, Y1, Y1
	VPSRLD  $4, Y13, Y13
	VPSLLD  $28, Y1, Y1
	VPOR    Y1, Y13, Y13
	ADDQ    DX, R9
	DECQ    BX
	JNZ     row

	VMOVDQU Y13, (R11)
	ADDQ    $32, R11
	SUBQ    $8, R10
	JNZ     group

	VZEROUPPER
	RET
