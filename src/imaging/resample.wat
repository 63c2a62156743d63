;; The two passes of Pillow's 8-bit bicubic resampler (Resample.c) in WebAssembly SIMD128, exact:
;; the same 22-bit fixed-point coefficients and int32 sums, rounding and clipping. No compiler
;; targeting wasm is available to the project (no emscripten, no rustup targets offline), and the
;; kernels are small, so they are written by hand; resample-wasm.ts is assembled from this file by
;; scripts/build-wasm.ts (wabt from npm), and test/unit/resample-wasm.test.ts checks that it is.
;;
;; Exactness: a coefficient k (|k| < 2^24) is split as k = hi·2^11 + lo, lo in [0, 2^11), so that both
;; halves fit int16 and i32x4.dot_i16x8_s (8 products of a byte and an int16, summed in pairs) is
;; exact; Σp·k = 2^11·Σp·hi + Σp·lo, computed modulo 2^32 like Pillow's int sums, which never overflow.
;; The caller lays out memory (pil-resize.ts): coefficient tables, a band of source rows, the
;; intermediate image, the output; every buffer is followed by 32 bytes of slack, since loads read
;; and stores write up to 27 bytes past what they use (the spill is overwritten or ignored). Rows go
;; in order, so a row's spill into the next is overwritten when that row is done.
(module
  (memory (export "memory") 1)

  ;; Horizontal pass over `rows` rows of interleaved RGB. Per output pixel, `bounds` holds the byte
  ;; offset of its first tap in a row and its number of tap pairs; `coefs` holds per pair two i16x8
  ;; vectors, [hi0 hi1 hi0 hi1 hi0 hi1 0 0] and the same of lo (a pair past the last tap has zeros).
  ;; A pair's six bytes R0 G0 B0 R1 G1 B1 are swizzled to int16 lanes R0 R1 G0 G1 B0 B1 0 0, whose
  ;; dot product with a coefficient vector gives the three channel sums in lanes 0..2. For narrow
  ;; kernels (enlarging, mild shrinking); hpass8 below for wide ones.
  (func (export "hpass")
    (param $src i32) (param $srcStride i32) (param $rows i32)
    (param $dst i32) (param $dstStride i32) (param $outW i32)
    (param $bounds i32) (param $coefs i32)
    (local $b i32) (local $c i32) (local $p i32) (local $n i32) (local $o i32) (local $xx i32)
    (local $accH v128) (local $accL v128) (local $v v128)
    (if (i32.eqz (local.get $rows)) (then (return)))
    (loop $row
      (local.set $b (local.get $bounds))
      (local.set $c (local.get $coefs))
      (local.set $o (local.get $dst))
      (local.set $xx (local.get $outW))
      (loop $pixel
        (local.set $p (i32.add (local.get $src) (i32.load (local.get $b))))
        (local.set $n (i32.load offset=4 (local.get $b)))
        (local.set $accH (v128.const i32x4 0 0 0 0))
        (local.set $accL (v128.const i32x4 0 0 0 0))
        (loop $pair
          (local.set $v
            (i8x16.swizzle
              (v128.load (local.get $p))
              (v128.const i8x16 0 128 3 128 1 128 4 128 2 128 5 128 128 128 128 128)))
          (local.set $accH
            (i32x4.add (local.get $accH) (i32x4.dot_i16x8_s (local.get $v) (v128.load (local.get $c)))))
          (local.set $accL
            (i32x4.add (local.get $accL) (i32x4.dot_i16x8_s (local.get $v) (v128.load offset=16 (local.get $c)))))
          (local.set $p (i32.add (local.get $p) (i32.const 6)))
          (local.set $c (i32.add (local.get $c) (i32.const 32)))
          (br_if $pair (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
        ;; (hi << 11) + lo + 2^21, >> 22, clipped to 0..255 by the saturating narrowings; four bytes
        ;; stored, the fourth overwritten by the next pixel (or landing in the next row or slack)
        (local.set $v
          (i32x4.shr_s
            (i32x4.add
              (i32x4.add (i32x4.shl (local.get $accH) (i32.const 11)) (local.get $accL))
              (v128.const i32x4 0x200000 0x200000 0x200000 0x200000))
            (i32.const 22)))
        (local.set $v (i16x8.narrow_i32x4_s (local.get $v) (local.get $v)))
        (v128.store32_lane 0 (local.get $o) (i8x16.narrow_i16x8_u (local.get $v) (local.get $v)))
        (local.set $o (i32.add (local.get $o) (i32.const 3)))
        (local.set $b (i32.add (local.get $b) (i32.const 8)))
        (br_if $pixel (local.tee $xx (i32.sub (local.get $xx) (i32.const 1)))))
      (local.set $src (i32.add (local.get $src) (local.get $srcStride)))
      (local.set $dst (i32.add (local.get $dst) (local.get $dstStride)))
      (br_if $row (local.tee $rows (i32.sub (local.get $rows) (i32.const 1)))))
  )

  ;; The horizontal pass for wide kernels (shrinking), eight taps a step with every int16 lane used:
  ;; the 24 bytes of taps 0..7 go into three vectors, R0 R1 G0 G1 B0 B1 R2 R3 | G2 G3 B2 B3 R4 R5 G4 G5 |
  ;; B4 B5 R6 R7 G6 G7 B6 B7, against [k0 k1 k0 k1 k0 k1 k2 k3], [k2 k3 k2 k3 k4 k5 k4 k5],
  ;; [k4 k5 k6 k7 k6 k7 k6 k7] (hi, then lo: 96 bytes a group; taps past the last have zeros). Per
  ;; output pixel `bounds` holds the first tap's byte offset and the number of groups. The three sums
  ;; [R G B R] [G B R G] [B R G B] are folded into R G B at the end. Loads reach 27 bytes past a group.
  (func (export "hpass8")
    (param $src i32) (param $srcStride i32) (param $rows i32)
    (param $dst i32) (param $dstStride i32) (param $outW i32)
    (param $bounds i32) (param $coefs i32)
    (local $b i32) (local $c i32) (local $p i32) (local $n i32) (local $o i32) (local $xx i32)
    (local $h1 v128) (local $h2 v128) (local $h3 v128) (local $l1 v128) (local $l2 v128) (local $l3 v128)
    (local $v v128)
    (if (i32.eqz (local.get $rows)) (then (return)))
    (loop $row
      (local.set $b (local.get $bounds))
      (local.set $c (local.get $coefs))
      (local.set $o (local.get $dst))
      (local.set $xx (local.get $outW))
      (loop $pixel
        (local.set $p (i32.add (local.get $src) (i32.load (local.get $b))))
        (local.set $n (i32.load offset=4 (local.get $b)))
        (local.set $h1 (v128.const i32x4 0 0 0 0))
        (local.set $h2 (v128.const i32x4 0 0 0 0))
        (local.set $h3 (v128.const i32x4 0 0 0 0))
        (local.set $l1 (v128.const i32x4 0 0 0 0))
        (local.set $l2 (v128.const i32x4 0 0 0 0))
        (local.set $l3 (v128.const i32x4 0 0 0 0))
        (loop $group
          (local.set $v
            (i8x16.swizzle
              (v128.load (local.get $p))
              (v128.const i8x16 0 128 3 128 1 128 4 128 2 128 5 128 6 128 9 128)))
          (local.set $h1 (i32x4.add (local.get $h1) (i32x4.dot_i16x8_s (local.get $v) (v128.load (local.get $c)))))
          (local.set $l1 (i32x4.add (local.get $l1) (i32x4.dot_i16x8_s (local.get $v) (v128.load offset=16 (local.get $c)))))
          (local.set $v
            (i8x16.swizzle
              (v128.load offset=6 (local.get $p))
              (v128.const i8x16 1 128 4 128 2 128 5 128 6 128 9 128 7 128 10 128)))
          (local.set $h2 (i32x4.add (local.get $h2) (i32x4.dot_i16x8_s (local.get $v) (v128.load offset=32 (local.get $c)))))
          (local.set $l2 (i32x4.add (local.get $l2) (i32x4.dot_i16x8_s (local.get $v) (v128.load offset=48 (local.get $c)))))
          (local.set $v
            (i8x16.swizzle
              (v128.load offset=12 (local.get $p))
              (v128.const i8x16 2 128 5 128 6 128 9 128 7 128 10 128 8 128 11 128)))
          (local.set $h3 (i32x4.add (local.get $h3) (i32x4.dot_i16x8_s (local.get $v) (v128.load offset=64 (local.get $c)))))
          (local.set $l3 (i32x4.add (local.get $l3) (i32x4.dot_i16x8_s (local.get $v) (v128.load offset=80 (local.get $c)))))
          (local.set $p (i32.add (local.get $p) (i32.const 24)))
          (local.set $c (i32.add (local.get $c) (i32.const 96)))
          (br_if $group (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
        ;; x = (hi << 11) + lo per vector; R G B = x1[0..2] + [x1[3] x2[0] x2[1]] + [x2[2] x2[3] x3[0]] + x3[1..3]
        (local.set $h1 (i32x4.add (i32x4.shl (local.get $h1) (i32.const 11)) (local.get $l1)))
        (local.set $h2 (i32x4.add (i32x4.shl (local.get $h2) (i32.const 11)) (local.get $l2)))
        (local.set $h3 (i32x4.add (i32x4.shl (local.get $h3) (i32.const 11)) (local.get $l3)))
        (local.set $v
          (i32x4.add
            (i32x4.add
              (local.get $h1)
              (i8x16.shuffle 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 (local.get $h1) (local.get $h2)))
            (i32x4.add
              (i8x16.shuffle 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 (local.get $h2) (local.get $h3))
              (i8x16.shuffle 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 (local.get $h3) (local.get $h3)))))
        (local.set $v
          (i32x4.shr_s
            (i32x4.add (local.get $v) (v128.const i32x4 0x200000 0x200000 0x200000 0x200000))
            (i32.const 22)))
        (local.set $v (i16x8.narrow_i32x4_s (local.get $v) (local.get $v)))
        (v128.store32_lane 0 (local.get $o) (i8x16.narrow_i16x8_u (local.get $v) (local.get $v)))
        (local.set $o (i32.add (local.get $o) (i32.const 3)))
        (local.set $b (i32.add (local.get $b) (i32.const 8)))
        (br_if $pixel (local.tee $xx (i32.sub (local.get $xx) (i32.const 1)))))
      (local.set $src (i32.add (local.get $src) (local.get $srcStride)))
      (local.set $dst (i32.add (local.get $dst) (local.get $dstStride)))
      (br_if $row (local.tee $rows (i32.sub (local.get $rows) (i32.const 1)))))
  )

  ;; Vertical pass: `outH` rows of `rowBytes` bytes from rows of `src` (stride `stride`). Per output
  ;; row, `bounds` holds the byte offset of its first source row and its number of row pairs; `coefs`
  ;; holds per pair two i32 of packed int16 coefficients, (hi_a | hi_b << 16) and the same of lo. All
  ;; bytes of a row share a row's coefficient, so 16 bytes go at once: the two rows' bytes are
  ;; interleaved, widened to int16 and multiplied pairwise, four i32x4 sums of hi and four of lo.
  (func (export "vpass")
    (param $src i32) (param $stride i32) (param $dst i32) (param $rowBytes i32) (param $outH i32)
    (param $bounds i32) (param $coefs i32)
    (local $base i32) (local $pairs i32) (local $x i32) (local $p i32) (local $c i32) (local $n i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $l0 v128) (local $l1 v128) (local $l2 v128) (local $l3 v128)
    (local $lo v128) (local $hi v128) (local $w v128) (local $kh v128) (local $kl v128) (local $half v128)
    (if (i32.eqz (local.get $outH)) (then (return)))
    (local.set $half (v128.const i32x4 0x200000 0x200000 0x200000 0x200000))
    (loop $row
      (local.set $base (i32.add (local.get $src) (i32.load (local.get $bounds))))
      (local.set $pairs (i32.load offset=4 (local.get $bounds)))
      (local.set $x (i32.const 0))
      (loop $chunk
        (local.set $p (i32.add (local.get $base) (local.get $x)))
        (local.set $c (local.get $coefs))
        (local.set $n (local.get $pairs))
        (local.set $a0 (v128.const i32x4 0 0 0 0))
        (local.set $a1 (v128.const i32x4 0 0 0 0))
        (local.set $a2 (v128.const i32x4 0 0 0 0))
        (local.set $a3 (v128.const i32x4 0 0 0 0))
        (local.set $l0 (v128.const i32x4 0 0 0 0))
        (local.set $l1 (v128.const i32x4 0 0 0 0))
        (local.set $l2 (v128.const i32x4 0 0 0 0))
        (local.set $l3 (v128.const i32x4 0 0 0 0))
        (loop $pair
          (local.set $w (v128.load (i32.add (local.get $p) (local.get $stride))))
          (local.set $hi (v128.load (local.get $p)))
          (local.set $lo (i8x16.shuffle 0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23 (local.get $hi) (local.get $w)))
          (local.set $hi (i8x16.shuffle 8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31 (local.get $hi) (local.get $w)))
          (local.set $kh (v128.load32_splat (local.get $c)))
          (local.set $kl (v128.load32_splat offset=4 (local.get $c)))
          (local.set $w (i16x8.extend_low_i8x16_u (local.get $lo)))
          (local.set $a0 (i32x4.add (local.get $a0) (i32x4.dot_i16x8_s (local.get $w) (local.get $kh))))
          (local.set $l0 (i32x4.add (local.get $l0) (i32x4.dot_i16x8_s (local.get $w) (local.get $kl))))
          (local.set $w (i16x8.extend_high_i8x16_u (local.get $lo)))
          (local.set $a1 (i32x4.add (local.get $a1) (i32x4.dot_i16x8_s (local.get $w) (local.get $kh))))
          (local.set $l1 (i32x4.add (local.get $l1) (i32x4.dot_i16x8_s (local.get $w) (local.get $kl))))
          (local.set $w (i16x8.extend_low_i8x16_u (local.get $hi)))
          (local.set $a2 (i32x4.add (local.get $a2) (i32x4.dot_i16x8_s (local.get $w) (local.get $kh))))
          (local.set $l2 (i32x4.add (local.get $l2) (i32x4.dot_i16x8_s (local.get $w) (local.get $kl))))
          (local.set $w (i16x8.extend_high_i8x16_u (local.get $hi)))
          (local.set $a3 (i32x4.add (local.get $a3) (i32x4.dot_i16x8_s (local.get $w) (local.get $kh))))
          (local.set $l3 (i32x4.add (local.get $l3) (i32x4.dot_i16x8_s (local.get $w) (local.get $kl))))
          (local.set $p (i32.add (local.get $p) (i32.shl (local.get $stride) (i32.const 1))))
          (local.set $c (i32.add (local.get $c) (i32.const 8)))
          (br_if $pair (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
        (v128.store
          (i32.add (local.get $dst) (local.get $x))
          (i8x16.narrow_i16x8_u
            (i16x8.narrow_i32x4_s
              (i32x4.shr_s (i32x4.add (i32x4.add (i32x4.shl (local.get $a0) (i32.const 11)) (local.get $l0)) (local.get $half)) (i32.const 22))
              (i32x4.shr_s (i32x4.add (i32x4.add (i32x4.shl (local.get $a1) (i32.const 11)) (local.get $l1)) (local.get $half)) (i32.const 22)))
            (i16x8.narrow_i32x4_s
              (i32x4.shr_s (i32x4.add (i32x4.add (i32x4.shl (local.get $a2) (i32.const 11)) (local.get $l2)) (local.get $half)) (i32.const 22))
              (i32x4.shr_s (i32x4.add (i32x4.add (i32x4.shl (local.get $a3) (i32.const 11)) (local.get $l3)) (local.get $half)) (i32.const 22)))))
        (br_if $chunk (i32.lt_u (local.tee $x (i32.add (local.get $x) (i32.const 16))) (local.get $rowBytes))))
      (local.set $coefs (i32.add (local.get $coefs) (i32.shl (local.get $pairs) (i32.const 3))))
      (local.set $bounds (i32.add (local.get $bounds) (i32.const 8)))
      (local.set $dst (i32.add (local.get $dst) (local.get $rowBytes)))
      (br_if $row (local.tee $outH (i32.sub (local.get $outH) (i32.const 1)))))
  )
)
