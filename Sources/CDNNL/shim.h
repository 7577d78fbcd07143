#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>
#include <stdlib.h>

/* libgomp's, which oneDNN runs on: one thread, because the callers split the rows across their own
   threads (otherwise OpenMP's idle threads spin while the rest of the network runs). The setting
   is per thread, so every thread that runs a product sets it (cdnnl_matmul_run): set once, the
   other workers each opened a team of all cores, and the teams fought over them (5 % of ViT-S). */
void omp_set_num_threads(int);
static inline void cdnnl_single_threaded(void) { omp_set_num_threads(1); }

/* One bf16 matrix product as oneDNN runs it: C[M,N] (f32) = A[M,K] (bf16) · op(B) (bf16) + bias[N]
   (f32, optional). op(B) is B [K,N], or Bᵀ with B stored [N,K] (a PyTorch Linear weight).
   Created once per shape and kept: primitive creation costs far more than a small product. */
typedef struct {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_t primitive;
    dnnl_memory_desc_t a, b, c, bias;
    int has_bias;
} cdnnl_matmul;

/* The primitive for descriptors already made; NULL when oneDNN refuses them. */
static inline cdnnl_matmul *cdnnl_matmul_build_with(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b, const dnnl_memory_desc_t *c,
                                                    const dnnl_memory_desc_t *bias, int gelu) {
    cdnnl_matmul *mm = calloc(1, sizeof(cdnnl_matmul));
    if (!mm) return NULL;
    mm->a = *a; mm->b = *b; mm->c = *c;
    if (bias) { mm->bias = *bias; mm->has_bias = 1; }
    if (dnnl_engine_create(&mm->engine, dnnl_cpu, 0) != dnnl_success) { free(mm); return NULL; }
    if (dnnl_stream_create(&mm->stream, mm->engine, dnnl_stream_default_flags) != dnnl_success) goto fail;
    dnnl_matmul_desc_t desc;
    if (dnnl_matmul_desc_init(&desc, &mm->a, &mm->b, bias ? &mm->bias : NULL, &mm->c) != dnnl_success) goto fail;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t post = NULL;
    if (gelu) {
        if (dnnl_primitive_attr_create(&attr) != dnnl_success) goto fail;
        dnnl_post_ops_create(&post);
        dnnl_post_ops_append_eltwise(post, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f);
        dnnl_primitive_attr_set_post_ops(attr, post);
    }
    dnnl_status_t s = dnnl_primitive_desc_create(&pd, &desc, attr, mm->engine, NULL);
    if (post) dnnl_post_ops_destroy(post);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success) goto fail;
    s = dnnl_primitive_create(&mm->primitive, pd);
    dnnl_primitive_desc_destroy(pd);
    if (s != dnnl_success) goto fail;
    return mm;
fail:
    if (mm->stream) dnnl_stream_destroy(mm->stream);
    dnnl_engine_destroy(mm->engine);
    free(mm);
    return NULL;
}

static inline cdnnl_matmul *cdnnl_matmul_build(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b, const dnnl_memory_desc_t *c,
                                               const dnnl_memory_desc_t *bias) {
    return cdnnl_matmul_build_with(a, b, c, bias, 0);
}

/* gelu: exact (erf) GELU applied to the result, which is then written as bf16 bits (C a uint16
   matrix): an inference MLP's first layer writing the second's input directly. */
static inline cdnnl_matmul *cdnnl_matmul_create_with(int64_t m, int64_t k, int64_t n, int transpose_b, int with_bias, int gelu) {
    omp_set_num_threads(1);
    dnnl_memory_desc_t a, b, c, bias;
    dnnl_dims_t ad = {m, k}, bd = {k, n}, cd = {m, n}, biasd = {1, n};
    if (dnnl_memory_desc_init_by_tag(&a, 2, ad, dnnl_bf16, dnnl_ab) != dnnl_success
        || dnnl_memory_desc_init_by_tag(&b, 2, bd, dnnl_bf16, transpose_b ? dnnl_ba : dnnl_ab) != dnnl_success
        || dnnl_memory_desc_init_by_tag(&c, 2, cd, gelu ? dnnl_bf16 : dnnl_f32, dnnl_ab) != dnnl_success
        || dnnl_memory_desc_init_by_tag(&bias, 2, biasd, dnnl_f32, dnnl_ab) != dnnl_success) return NULL;
    return cdnnl_matmul_build_with(&a, &b, &c, with_bias ? &bias : NULL, gelu);
}

static inline cdnnl_matmul *cdnnl_matmul_create(int64_t m, int64_t k, int64_t n, int transpose_b, int with_bias) {
    return cdnnl_matmul_create_with(m, k, n, transpose_b, with_bias, 0);
}

/* C[M,N] (f32) = A[M,K] (bf16) · B[K,N] (bf16) with every matrix addressed by (row, column)
   strides in elements, so heads inside packed q|k|v rows are used where they lie. */
static inline cdnnl_matmul *cdnnl_matmul_create_strided(int64_t m, int64_t k, int64_t n, int64_t a_row, int64_t a_col,
                                                        int64_t b_row, int64_t b_col, int64_t c_row, int64_t c_col) {
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t ad = {m, k}, bd = {k, n}, cd = {m, n};
    dnnl_dims_t as = {a_row, a_col}, bs = {b_row, b_col}, cs = {c_row, c_col};
    if (dnnl_memory_desc_init_by_strides(&a, 2, ad, dnnl_bf16, as) != dnnl_success
        || dnnl_memory_desc_init_by_strides(&b, 2, bd, dnnl_bf16, bs) != dnnl_success
        || dnnl_memory_desc_init_by_strides(&c, 2, cd, dnnl_f32, cs) != dnnl_success) return NULL;
    return cdnnl_matmul_build(&a, &b, &c, NULL);
}

/* a, b: bf16 bits (uint16); c and bias f32. Returns 1 on success. */
static inline int cdnnl_matmul_run(cdnnl_matmul *mm, const uint16_t *a, const uint16_t *b, const float *bias, void *c) {
    omp_set_num_threads(1);
    dnnl_memory_t am, bm, cm, biasm = NULL;
    if (dnnl_memory_create(&am, &mm->a, mm->engine, (void *)a) != dnnl_success) return 0;
    dnnl_memory_create(&bm, &mm->b, mm->engine, (void *)b);
    dnnl_memory_create(&cm, &mm->c, mm->engine, c);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}, {DNNL_ARG_BIAS, NULL}};
    int count = 3;
    if (mm->has_bias) {
        dnnl_memory_create(&biasm, &mm->bias, mm->engine, (void *)bias);
        args[3].memory = biasm;
        count = 4;
    }
    dnnl_status_t s = dnnl_primitive_execute(mm->primitive, mm->stream, count, args);
    if (s == dnnl_success) s = dnnl_stream_wait(mm->stream);
    dnnl_memory_destroy(am); dnnl_memory_destroy(bm); dnnl_memory_destroy(cm);
    if (biasm) dnnl_memory_destroy(biasm);
    return s == dnnl_success;
}

static inline void cdnnl_matmul_destroy(cdnnl_matmul *mm) {
    if (!mm) return;
    dnnl_primitive_destroy(mm->primitive);
    dnnl_stream_destroy(mm->stream);
    dnnl_engine_destroy(mm->engine);
    free(mm);
}
