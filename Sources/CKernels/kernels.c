#define _GNU_SOURCE
#include "ckernels.h"
#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>

/* exp for x <= 0 (shifted logits, -x²): Cody–Waite reduction, Cephes' polynomial, 2^n built in the
   exponent bits. Written branch-free so the compiler vectorises the loops that call it. */
static inline float exp_nonpositive(float x) {
    x = x < -87.3f ? -87.3f : x;
    float shifted = x * 1.44269504088896341f + 12582912.0f;
    float n = shifted - 12582912.0f;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    int32_t bits;
    memcpy(&bits, &shifted, 4);
    int32_t e = ((bits - 0x4B400000) + 127) << 23;
    float scale;
    memcpy(&scale, &e, 4);
    return y * scale;
}

/* Φ(x) by Abramowitz & Stegun 7.1.26 (|error in erf| < 1.5e-7). */
static inline float normal_cdf(float x) {
    float z = fabsf(x) * 0.70710678118654752f;
    float t = 1.0f / (1.0f + 0.3275911f * z);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    float erf_abs = 1.0f - p * t * exp_nonpositive(-z * z);
    return 0.5f * (1.0f + (x < 0 ? -erf_abs : erf_abs));
}

/* tanh by Cephes' tanhf: an odd polynomial below |x| = 0.625, (1 − e)/(1 + e) with e = exp(−2|x|)
   above; both computed and one selected, so loops vectorise. */
static inline float tanh_approx(float x) {
    float a = fabsf(x);
    float x2 = x * x;
    float p = -5.70498872745e-3f;
    p = p * x2 + 2.06390887954e-2f;
    p = p * x2 - 5.37397155531e-2f;
    p = p * x2 + 1.33314422036e-1f;
    p = p * x2 - 3.33332819422e-1f;
    float small = x + x * x2 * p;
    float e = exp_nonpositive(-2.0f * a);
    float large = (1.0f - e) / (1.0f + e);
    large = x < 0 ? -large : large;
    return a < 0.625f ? small : large;
}

/* The logistic function from exp of a non-positive argument on either side of 0. */
static inline float sigmoid_approx(float x) {
    float e = exp_nonpositive(-fabsf(x));
    float s = 1.0f / (1.0f + e);
    return x >= 0 ? s : e * s;
}

/* Reductions over 16 interleaved partial results: the compiler turns the fixed inner loop into
   vector instructions without being allowed to reorder float arithmetic anywhere (the exp above
   depends on exact rounding). */
static inline float max_of(const float *x, size_t n) {
    float partial[16];
    for (int k = 0; k < 16; k++) partial[k] = x[0];
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) partial[k] = x[i + k] > partial[k] ? x[i + k] : partial[k];
    for (; i < n; i++) partial[0] = x[i] > partial[0] ? x[i] : partial[0];
    float m = partial[0];
    for (int k = 1; k < 16; k++) m = partial[k] > m ? partial[k] : m;
    return m;
}

static inline float sum_of(const float *x, size_t n) {
    float partial[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) partial[k] += x[i + k];
    for (; i < n; i++) partial[0] += x[i];
    float s = 0;
    for (int k = 0; k < 16; k++) s += partial[k];
    return s;
}

/* float → bfloat16 bits, rounding to nearest even (NaN kept quiet): what AVX-512 BF16's
   vcvtneps2bf16 computes, written so the compiler vectorises the loops that call it. */
static inline uint16_t bf16_bits(float value) {
    uint32_t bits;
    memcpy(&bits, &value, 4);
    uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    int nan = (bits & 0x7FFFFFFFu) > 0x7F800000u;
    return (uint16_t)(nan ? ((bits >> 16) | 0x40u) : rounded);
}

#define KERNELS(SUFFIX, ATTRIBUTE)                                                                  \
    ATTRIBUTE static void gelu_forward_bf16_##SUFFIX(const float *x, uint16_t *y, float *cdf, size_t n) { \
        if (cdf) {                                                                                   \
            for (size_t i = 0; i < n; i++) { float c = normal_cdf(x[i]); cdf[i] = c; y[i] = bf16_bits(x[i] * c); } \
        } else {                                                                                     \
            for (size_t i = 0; i < n; i++) y[i] = bf16_bits(x[i] * normal_cdf(x[i]));                \
        }                                                                                            \
    }                                                                                                \
    ATTRIBUTE static void gelu_forward_##SUFFIX(const float *x, float *y, float *cdf, size_t n) {   \
        if (cdf) {                                                                                   \
            for (size_t i = 0; i < n; i++) { float c = normal_cdf(x[i]); cdf[i] = c; y[i] = x[i] * c; } \
        } else {                                                                                     \
            for (size_t i = 0; i < n; i++) y[i] = x[i] * normal_cdf(x[i]);                           \
        }                                                                                            \
    }                                                                                                \
    ATTRIBUTE static void gelu_backward_##SUFFIX(const float *x, const float *cdf, const float *dy, \
                                                 float *dx, size_t n) {                              \
        for (size_t i = 0; i < n; i++)                                                               \
            dx[i] = dy[i] * (cdf[i] + x[i] * 0.398942280401432678f * exp_nonpositive(-0.5f * x[i] * x[i])); \
    }                                                                                                \
    ATTRIBUTE static void gated_forward_##SUFFIX(const float *u, const float *v, float *t, float *g,  \
                                                 float *a, size_t n) {                               \
        for (size_t i = 0; i < n; i++) {                                                             \
            float ti = tanh_approx(u[i]), gi = sigmoid_approx(v[i]);                                 \
            t[i] = ti; g[i] = gi; a[i] = ti * gi;                                                    \
        }                                                                                            \
    }                                                                                                \
    ATTRIBUTE static void gated_backward_##SUFFIX(const float *t, const float *g, const float *da,   \
                                                  float *du, float *dv, size_t n) {                  \
        for (size_t i = 0; i < n; i++) {                                                             \
            du[i] = da[i] * g[i] * (1.0f - t[i] * t[i]);                                             \
            dv[i] = da[i] * t[i] * g[i] * (1.0f - g[i]);                                             \
        }                                                                                            \
    }                                                                                                \
    ATTRIBUTE static void relu_forward_##SUFFIX(const float *x, float *y, size_t n) {               \
        for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0.0f;                                \
    }                                                                                                \
    ATTRIBUTE static void relu_backward_##SUFFIX(const float *y, const float *dy, float *dx, size_t n) { \
        for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : 0.0f;                              \
    }                                                                                                \
    ATTRIBUTE static void softmax_rows_##SUFFIX(float *x, size_t rows, size_t cols) {              \
        for (size_t r = 0; r < rows; r++) {                                                          \
            float *row = x + r * cols;                                                               \
            float maximum = max_of(row, cols);                                                       \
            for (size_t i = 0; i < cols; i++) row[i] = exp_nonpositive(row[i] - maximum);            \
            float sum = sum_of(row, cols);                                                           \
            float inverse = 1.0f / sum;                                                              \
            for (size_t i = 0; i < cols; i++) row[i] *= inverse;                                     \
        }                                                                                            \
    }

KERNELS(baseline, )
#if defined(__x86_64__)
KERNELS(avx2, __attribute__((target("avx2,fma"))))
KERNELS(avx512, __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma"))))
#endif

typedef enum { LEVEL_UNKNOWN = -1, LEVEL_BASELINE = 0, LEVEL_AVX2 = 1, LEVEL_AVX512 = 2 } level_t;

static volatile level_t chosen = LEVEL_UNKNOWN;

int ck_supports(int l) {
    if (l == LEVEL_BASELINE) return 1;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (l == LEVEL_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (l == LEVEL_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#endif
    return 0;
}

static level_t level(void) {
    level_t l = chosen;
    if (l != LEVEL_UNKNOWN) return l;
    l = ck_supports(LEVEL_AVX512) ? LEVEL_AVX512 : ck_supports(LEVEL_AVX2) ? LEVEL_AVX2 : LEVEL_BASELINE;
    chosen = l;
    return l;
}

int ck_use(int l) {
    if (!ck_supports(l)) return 0;
    chosen = (level_t)l;
    return 1;
}

int ck_level(void) { return level(); }

#if defined(__x86_64__)
#define DISPATCH(NAME, ...)                                             \
    switch (level()) {                                                  \
    case LEVEL_AVX512: NAME##_avx512(__VA_ARGS__); return;              \
    case LEVEL_AVX2: NAME##_avx2(__VA_ARGS__); return;                  \
    default: NAME##_baseline(__VA_ARGS__); return;                      \
    }
#else
#define DISPATCH(NAME, ...) NAME##_baseline(__VA_ARGS__);
#endif

void ck_gelu_forward(const float *x, float *y, float *cdf, size_t n) { DISPATCH(gelu_forward, x, y, cdf, n) }
void ck_gelu_forward_bf16(const float *x, uint16_t *y, float *cdf, size_t n) { DISPATCH(gelu_forward_bf16, x, y, cdf, n) }
void ck_gelu_backward(const float *x, const float *cdf, const float *dy, float *dx, size_t n) { DISPATCH(gelu_backward, x, cdf, dy, dx, n) }
void ck_softmax_rows(float *x, size_t rows, size_t cols) { DISPATCH(softmax_rows, x, rows, cols) }
void ck_gated_forward(const float *u, const float *v, float *t, float *g, float *a, size_t n) { DISPATCH(gated_forward, u, v, t, g, a, n) }
void ck_gated_backward(const float *t, const float *g, const float *da, float *du, float *dv, size_t n) { DISPATCH(gated_backward, t, g, da, du, dv, n) }
void ck_relu_forward(const float *x, float *y, size_t n) { DISPATCH(relu_forward, x, y, n) }
void ck_relu_backward(const float *y, const float *dy, float *dx, size_t n) { DISPATCH(relu_backward, y, dy, dx, n) }

#define TO_BF16(SUFFIX, ATTRIBUTE)                                                                  \
    ATTRIBUTE static void to_bf16_##SUFFIX(const float *x, uint16_t *y, size_t n) {                 \
        for (size_t i = 0; i < n; i++) y[i] = bf16_bits(x[i]);                                       \
    }
TO_BF16(baseline, )
#if defined(__x86_64__)
TO_BF16(avx2, __attribute__((target("avx2,fma"))))
TO_BF16(avx512, __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma"))))
#endif
void ck_to_bf16(const float *x, uint16_t *y, size_t n) { DISPATCH(to_bf16, x, y, n) }

int ck_supports_bf16(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

int ck_allowed_cores(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return CPU_COUNT(&set);
}
