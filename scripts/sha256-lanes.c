/* The SIMD reference for scripts/bench.sh: how many SHA-256 compressions per second one
 * core does when it hashes 8 independent messages at once with AVX2, or 16 with AVX-512F.
 * A plain multi-lane compression (all 64 rounds, the full message schedule), independent
 * of minichain's code: the ceiling the miner's nonces/s is measured against (a nonce costs
 * two compressions).
 *
 *   gcc -O3 -o sha256-lanes scripts/sha256-lanes.c && ./sha256-lanes [SECONDS]
 *
 * Prints one line per engine this CPU has: "avx2 <compressions/s>", "avx512 <…>". */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

/* Where the last state goes, so that no compression can be optimised away. */
static volatile uint32_t g_sink;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* One generic body per engine: V is the vector type, the macros its operations. */
#define COMPRESS_BODY                                                                    \
    V a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];     \
    V w[16];                                                                              \
    for (int t = 0; t < 16; t++) w[t] = m[t];                                             \
    for (int t = 0; t < 64; t++) {                                                        \
        if (t >= 16) {                                                                    \
            V x = w[(t - 15) & 15], y = w[(t - 2) & 15];                                  \
            V s0 = XOR3(ROR(x, 7), ROR(x, 18), SHR(x, 3));                                \
            V s1 = XOR3(ROR(y, 17), ROR(y, 19), SHR(y, 10));                              \
            w[t & 15] = ADD(ADD(w[t & 15], s0), ADD(w[(t - 7) & 15], s1));                \
        }                                                                                 \
        V t1 = ADD(ADD(h, XOR3(ROR(e, 6), ROR(e, 11), ROR(e, 25))),                       \
                   ADD(CH(e, f, g), ADD(SPLAT(K[t]), w[t & 15])));                        \
        V t2 = ADD(XOR3(ROR(a, 2), ROR(a, 13), ROR(a, 22)), MAJ(a, b, c));                \
        h = g; g = f; f = e; e = ADD(d, t1); d = c; c = b; b = a; a = ADD(t1, t2);        \
    }                                                                                     \
    s[0] = ADD(s[0], a); s[1] = ADD(s[1], b); s[2] = ADD(s[2], c); s[3] = ADD(s[3], d);   \
    s[4] = ADD(s[4], e); s[5] = ADD(s[5], f); s[6] = ADD(s[6], g); s[7] = ADD(s[7], h);

/* Runs the engine for `secs` seconds, each compression's output feeding the next
 * message, and returns compressions per second (lanes x calls). */
#define RUN_BODY(LANES)                                                                   \
    V s[8], m[16];                                                                        \
    for (int i = 0; i < 8; i++) s[i] = SPLAT(0x6a09e667u + i);                            \
    for (int i = 0; i < 16; i++) m[i] = SPLAT(i * 0x01010101u);                           \
    double start = now(), elapsed;                                                        \
    long calls = 0;                                                                       \
    do {                                                                                  \
        for (int r = 0; r < 4096; r++) {                                                  \
            compress(s, m);                                                               \
            m[r & 15] = ADD(m[r & 15], s[r & 7]);                                         \
        }                                                                                 \
        calls += 4096;                                                                    \
        elapsed = now() - start;                                                          \
    } while (elapsed < secs);                                                             \
    uint32_t sink[LANES];                                                                 \
    STORE(sink, s[0]);                                                                    \
    g_sink ^= sink[0] ^ sink[LANES - 1];                                                  \
    return (double)calls * LANES / elapsed;

__attribute__((target("avx2"))) static inline void avx2_compress(__m256i *s, const __m256i *m);
#define V __m256i
#define SPLAT(x) _mm256_set1_epi32((int)(x))
#define ADD(x, y) _mm256_add_epi32(x, y)
#define XOR3(x, y, z) _mm256_xor_si256(_mm256_xor_si256(x, y), z)
#define ROR(x, n) _mm256_or_si256(_mm256_srli_epi32(x, n), _mm256_slli_epi32(x, 32 - (n)))
#define SHR(x, n) _mm256_srli_epi32(x, n)
#define CH(e, f, g) _mm256_xor_si256(_mm256_and_si256(e, f), _mm256_andnot_si256(e, g))
#define MAJ(a, b, c) \
    _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(c, _mm256_or_si256(a, b)))
#define STORE(p, v) _mm256_storeu_si256((__m256i *)(p), v)
__attribute__((target("avx2"))) static inline void avx2_compress(__m256i *s, const __m256i *m) {
    COMPRESS_BODY
}
#define compress avx2_compress
__attribute__((target("avx2"))) static double run_avx2(double secs) { RUN_BODY(8) }
#undef compress
#undef V
#undef SPLAT
#undef ADD
#undef XOR3
#undef ROR
#undef SHR
#undef CH
#undef MAJ
#undef STORE

#define V __m512i
#define SPLAT(x) _mm512_set1_epi32((int)(x))
#define ADD(x, y) _mm512_add_epi32(x, y)
#define XOR3(x, y, z) _mm512_ternarylogic_epi32(x, y, z, 0x96)
#define ROR(x, n) _mm512_ror_epi32(x, n)
#define SHR(x, n) _mm512_srli_epi32(x, n)
#define CH(e, f, g) _mm512_ternarylogic_epi32(e, f, g, 0xca)
#define MAJ(a, b, c) _mm512_ternarylogic_epi32(a, b, c, 0xe8)
#define STORE(p, v) _mm512_storeu_si512((void *)(p), v)
__attribute__((target("avx512f"))) static inline void avx512_compress(__m512i *s, const __m512i *m) {
    COMPRESS_BODY
}
#define compress avx512_compress
__attribute__((target("avx512f"))) static double run_avx512(double secs) { RUN_BODY(16) }
#undef compress

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) printf("avx2 %.0f\n", run_avx2(secs));
    if (__builtin_cpu_supports("avx512f")) printf("avx512 %.0f\n", run_avx512(secs));
    return 0;
}
