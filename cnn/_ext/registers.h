/* The widest vector register of the build level (setup.py compiles each kernel module once per
 * level). Kernels hold their vectors in parts of this size: wider vector types than the
 * registers are legal, but gcc then keeps such accumulators in memory (a 16-float accumulator
 * on AVX2 ran a linear layer 7x slower than two 8-float ones). */
#ifndef CNN_REGISTERS_H
#define CNN_REGISTERS_H

#if defined(__AVX512F__)
#define CNN_REGISTER_BYTES 64
#elif defined(__AVX__)
#define CNN_REGISTER_BYTES 32
#else
#define CNN_REGISTER_BYTES 16
#endif

#endif
