#ifndef CKERNELS_H
#define CKERNELS_H
#include <stddef.h>
#include <stdint.h>

/* Elementwise kernels of the NN layers. Each picks, once, the widest vector code the CPU runs
   (AVX-512, AVX2+FMA, or baseline SSE2) so one binary is fast and portable. */

/* y = x·Φ(x); cdf receives Φ(x) for the backward pass (may be NULL at inference). */
void ck_gelu_forward(const float *x, float *y, float *cdf, size_t n);
/* The same, y rounded to bfloat16 bits (the input of a bf16 product); cdf may be NULL too. */
void ck_gelu_forward_bf16(const float *x, uint16_t *y, float *cdf, size_t n);
/* dx = dy·(Φ(x) + x·φ(x)). */
void ck_gelu_backward(const float *x, const float *cdf, const float *dy, float *dx, size_t n);
/* Numerically stable softmax of each of `rows` rows of `cols` values, in place. */
void ck_softmax_rows(float *x, size_t rows, size_t cols);

/* Gated attention (ABMIL): t = tanh(u), g = sigmoid(v), a = t·g. */
void ck_gated_forward(const float *u, const float *v, float *t, float *g, float *a, size_t n);
/* du = da·g·(1 − t²), dv = da·t·g·(1 − g). */
void ck_gated_backward(const float *t, const float *g, const float *da, float *du, float *dv, size_t n);
/* y = max(0, x); dx = dy where y > 0, else 0. */
void ck_relu_forward(const float *x, float *y, size_t n);
void ck_relu_backward(const float *y, const float *dy, float *dx, size_t n);

/* float → bfloat16 bits, round to nearest even. */
void ck_to_bf16(const float *x, uint16_t *y, size_t n);
/* Whether the CPU computes bfloat16 products natively (AVX-512 BF16). */
int ck_supports_bf16(void);

/* The cores this process may run on (its affinity mask, which MPI launchers narrow when they bind ranks). */
int ck_allowed_cores(void);

/* Instruction sets, for tests: 0 baseline, 1 AVX2+FMA, 2 AVX-512. */
int ck_supports(int level);
/* Use `level` from now on (when supported; returns whether it is). */
int ck_use(int level);
/* The level in use. */
int ck_level(void);

#endif
