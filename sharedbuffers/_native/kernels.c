/*
 * Native kernels for sharedbuffers: XXH64/XXH32, the float part of the
 * stable hash, hash folding, and atomic operations on raw buffers.
 *
 * This file is compiled by cffi (see build_kernels.py) and must produce
 * results bit-identical to the pure-Python fallback in fallback.py.  Every
 * function that touches a caller-supplied buffer receives the buffer length
 * and validates the access itself, so a bug in the Python wrapper degrades
 * into an exception rather than a memory error.
 *
 * Requires gcc or clang (for the __atomic builtins); written in C99.
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

#include "kernels.h"

/* Status codes returned by the atomic functions; mirrored in the cdef. */
#define SB_OK            0
#define SB_CAS_MISMATCH  1   /* compare-and-swap found a different value */
#define SB_E_BOUNDS     (-1) /* offset/size outside the buffer */
#define SB_E_RANGE      (-2) /* value (or CAS "expected") does not fit the code */
#define SB_E_RANGE_NEW  (-3) /* CAS "new" value does not fit the code */
#define SB_E_OVERFLOW   (-4) /* atomic add result does not fit the code */
#define SB_E_CODE       (-5) /* unknown code, or code not valid for this call */

/* ------------------------------------------------------------------------ */
/* Byte-order helpers                                                       */
/* ------------------------------------------------------------------------ */

/* xxHash is defined over little-endian lanes.  memcpy keeps unaligned reads
 * legal (and compiles to a single load); big-endian hosts swap afterwards. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define SB_FROM_LE64(x) __builtin_bswap64(x)
#define SB_FROM_LE32(x) __builtin_bswap32(x)
#else
#define SB_FROM_LE64(x) (x)
#define SB_FROM_LE32(x) (x)
#endif

static inline uint64_t read_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return SB_FROM_LE64(v);
}

static inline uint32_t read_le32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return SB_FROM_LE32(v);
}

/* Rotations; callers only use 0 < r < width, so neither shift is undefined. */
static inline uint64_t rotl64(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint32_t rotl32(uint32_t x, unsigned r)
{
    return (x << r) | (x >> (32 - r));
}

/* ------------------------------------------------------------------------ */
/* XXH64 (per the xxHash specification)                                     */
/* ------------------------------------------------------------------------ */

#define P64_1 UINT64_C(0x9E3779B185EBCA87)
#define P64_2 UINT64_C(0xC2B2AE3D27D4EB4F)
#define P64_3 UINT64_C(0x165667B19E3779F9)
#define P64_4 UINT64_C(0x85EBCA77C2B2AE63)
#define P64_5 UINT64_C(0x27D4EB2F165667C5)

/* One accumulator step: mix a 64-bit lane into an accumulator. */
static inline uint64_t xxh64_round(uint64_t acc, uint64_t lane)
{
    acc += lane * P64_2;
    acc = rotl64(acc, 31);
    return acc * P64_1;
}

/* Fold one of the four stripe accumulators into the converged hash. */
static inline uint64_t xxh64_merge(uint64_t h, uint64_t acc)
{
    h ^= xxh64_round(0, acc);
    return h * P64_1 + P64_4;
}

/* Final mix so that every input bit affects every output bit. */
static inline uint64_t xxh64_avalanche(uint64_t h)
{
    h ^= h >> 33;
    h *= P64_2;
    h ^= h >> 29;
    h *= P64_3;
    h ^= h >> 32;
    return h;
}

uint64_t sb_xxh64(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    const unsigned char *end = p + len;
    uint64_t h;

    if (len >= 32) {
        /* Four independent lanes per 32-byte stripe let the CPU overlap
         * the multiplications. */
        const unsigned char *last_stripe = end - 32;
        uint64_t v1 = seed + P64_1 + P64_2;
        uint64_t v2 = seed + P64_2;
        uint64_t v3 = seed;
        uint64_t v4 = seed - P64_1;
        do {
            v1 = xxh64_round(v1, read_le64(p));
            v2 = xxh64_round(v2, read_le64(p + 8));
            v3 = xxh64_round(v3, read_le64(p + 16));
            v4 = xxh64_round(v4, read_le64(p + 24));
            p += 32;
        } while (p <= last_stripe);
        h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
        h = xxh64_merge(h, v1);
        h = xxh64_merge(h, v2);
        h = xxh64_merge(h, v3);
        h = xxh64_merge(h, v4);
    } else {
        h = seed + P64_5;
    }
    h += (uint64_t)len;

    /* Remaining 0..31 bytes: 8-byte lanes, then one 4-byte lane, then bytes. */
    while (end - p >= 8) {
        h ^= xxh64_round(0, read_le64(p));
        h = rotl64(h, 27) * P64_1 + P64_4;
        p += 8;
    }
    if (end - p >= 4) {
        h ^= (uint64_t)read_le32(p) * P64_1;
        h = rotl64(h, 23) * P64_2 + P64_3;
        p += 4;
    }
    while (p < end) {
        h ^= (uint64_t)*p * P64_5;
        h = rotl64(h, 11) * P64_1;
        p++;
    }
    return xxh64_avalanche(h);
}

/* ------------------------------------------------------------------------ */
/* XXH32 (per the xxHash specification)                                     */
/* ------------------------------------------------------------------------ */

#define P32_1 UINT32_C(0x9E3779B1)
#define P32_2 UINT32_C(0x85EBCA77)
#define P32_3 UINT32_C(0xC2B2AE3D)
#define P32_4 UINT32_C(0x27D4EB2F)
#define P32_5 UINT32_C(0x165667B1)

static inline uint32_t xxh32_round(uint32_t acc, uint32_t lane)
{
    acc += lane * P32_2;
    acc = rotl32(acc, 13);
    return acc * P32_1;
}

static inline uint32_t xxh32_avalanche(uint32_t h)
{
    h ^= h >> 15;
    h *= P32_2;
    h ^= h >> 13;
    h *= P32_3;
    h ^= h >> 16;
    return h;
}

uint32_t sb_xxh32(const void *data, size_t len, uint32_t seed)
{
    const unsigned char *p = data;
    const unsigned char *end = p + len;
    uint32_t h;

    if (len >= 16) {
        const unsigned char *last_stripe = end - 16;
        uint32_t v1 = seed + P32_1 + P32_2;
        uint32_t v2 = seed + P32_2;
        uint32_t v3 = seed;
        uint32_t v4 = seed - P32_1;
        do {
            v1 = xxh32_round(v1, read_le32(p));
            v2 = xxh32_round(v2, read_le32(p + 4));
            v3 = xxh32_round(v3, read_le32(p + 8));
            v4 = xxh32_round(v4, read_le32(p + 12));
            p += 16;
        } while (p <= last_stripe);
        h = rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18);
    } else {
        h = seed + P32_5;
    }
    /* The specification adds the length modulo 2**32. */
    h += (uint32_t)len;

    while (end - p >= 4) {
        h += read_le32(p) * P32_3;
        h = rotl32(h, 17) * P32_4;
        p += 4;
    }
    while (p < end) {
        h += (uint32_t)*p * P32_5;
        h = rotl32(h, 11) * P32_1;
        p++;
    }
    return xxh32_avalanche(h);
}

/* ------------------------------------------------------------------------ */
/* Stable-hash helpers                                                      */
/* ------------------------------------------------------------------------ */

/* Float part of the stable hash.  Mirrors the Python definition:
 *   mant, expo = math.frexp(x); expo += 0xFFFF if expo < 0;
 *   inf -> mant = +-1.0, nan -> mant = 2.0 (exponent 0 for both);
 *   h = rotl64(expo, 5) ^ (uint64)(int64)(mant * 0xFFFFFFFFFFFF)
 * C leaves frexp's exponent unspecified for inf/nan, so those are handled
 * before calling it, exactly as Python's math.frexp does. */
uint64_t sb_hash_float(double x)
{
    double mant;
    int expo = 0;

    if (isnan(x)) {
        mant = 2.0;
    } else if (isinf(x)) {
        mant = x > 0 ? 1.0 : -1.0;
    } else {
        mant = frexp(x, &expo);
    }
    if (expo < 0) {
        expo += 0xFFFF;
    }
    /* |mant| <= 2 so the product fits int64; the int64 cast truncates toward
     * zero like Python's int(), and the uint64 cast is reduction mod 2**64. */
    return rotl64((uint64_t)expo, 5)
           ^ (uint64_t)(int64_t)(mant * 281474976710655.0);
}

/* Combine element hashes: h = rotl64(h, 5) ^ v for each v.  Order-sensitive,
 * which is what a stable hash of a sequence needs. */
uint64_t sb_fold_hashes(uint64_t seed, const uint64_t *hashes, size_t n)
{
    uint64_t h = seed;
    size_t i;

    for (i = 0; i < n; i++) {
        h = rotl64(h, 5) ^ hashes[i];
    }
    return h;
}

/* ------------------------------------------------------------------------ */
/* Atomics: code table                                                      */
/* ------------------------------------------------------------------------ */

enum sb_kind { KIND_INT, KIND_UINT, KIND_FLOAT };

/* Everything the atomic functions need to know about a struct code. */
typedef struct {
    unsigned size;      /* width in bytes: 1, 2, 4 or 8 */
    enum sb_kind kind;  /* which family of entry points may use it */
    int addable;        /* '?' supports cas/load/store only */
    int64_t min;        /* integer range (unused for floats) */
    uint64_t max;
    double float_limit; /* finite magnitudes >= this round to infinity */
} sb_code;

/* Smallest double that rounds to +inf when converted to float32: halfway
 * between FLT_MAX (2**128 - 2**104) and 2**128, where round-to-even goes up. */
#define SB_F32_LIMIT 0x1.ffffffp+127

static const sb_code CODE_b = {1, KIND_INT, 1, INT8_MIN, INT8_MAX, 0};
static const sb_code CODE_B = {1, KIND_UINT, 1, 0, UINT8_MAX, 0};
static const sb_code CODE_h = {2, KIND_INT, 1, INT16_MIN, INT16_MAX, 0};
static const sb_code CODE_H = {2, KIND_UINT, 1, 0, UINT16_MAX, 0};
static const sb_code CODE_i = {4, KIND_INT, 1, INT32_MIN, INT32_MAX, 0};
static const sb_code CODE_I = {4, KIND_UINT, 1, 0, UINT32_MAX, 0};
static const sb_code CODE_q = {8, KIND_INT, 1, INT64_MIN, INT64_MAX, 0};
static const sb_code CODE_Q = {8, KIND_UINT, 1, 0, UINT64_MAX, 0};
static const sb_code CODE_bool = {1, KIND_UINT, 0, 0, 1, 0};
static const sb_code CODE_f = {4, KIND_FLOAT, 1, 0, 0, SB_F32_LIMIT};
static const sb_code CODE_d = {8, KIND_FLOAT, 1, 0, 0, INFINITY};

/* Returns NULL unless `code` is known and belongs to `kind`. */
static const sb_code *lookup_code(int code, enum sb_kind kind)
{
    const sb_code *c;

    switch (code) {
    case 'b': c = &CODE_b; break;
    case 'B': c = &CODE_B; break;
    case 'h': c = &CODE_h; break;
    case 'H': c = &CODE_H; break;
    case 'i': c = &CODE_i; break;
    case 'I': c = &CODE_I; break;
    case 'q': c = &CODE_q; break;
    case 'Q': c = &CODE_Q; break;
    case '?': c = &CODE_bool; break;
    case 'f': c = &CODE_f; break;
    case 'd': c = &CODE_d; break;
    default: return NULL;
    }
    return c->kind == kind ? c : NULL;
}

/* True when [offset, offset + size) lies inside a buffer of buflen bytes.
 * Written to avoid overflow for any offset. */
static int in_bounds(size_t buflen, ptrdiff_t offset, unsigned size)
{
    return offset >= 0 && (size_t)offset <= buflen
           && buflen - (size_t)offset >= size;
}

/* ------------------------------------------------------------------------ */
/* Atomics: raw bit-pattern access                                          */
/* ------------------------------------------------------------------------ */

/*
 * All operations are expressed on "bits": the `size` bytes at the address,
 * read as a native-endian unsigned integer and zero-extended to 64 bits.
 *
 * Naturally aligned addresses use the __atomic builtins (sequentially
 * consistent), which are atomic across threads *and* processes sharing the
 * memory.  Misaligned addresses cannot portably be accessed atomically (on
 * x86 a locked access that splits a cache line may even trap when split-lock
 * detection is enabled), so they are serialised by one process-wide
 * spinlock instead.  Such accesses are therefore atomic only with respect to
 * other sharedbuffers calls in the same process; callers that share memory
 * between processes must align their fields.
 */

static unsigned char misaligned_lock;

static void misaligned_acquire(void)
{
    while (__atomic_test_and_set(&misaligned_lock, __ATOMIC_SEQ_CST)) {
        /* Spin on a plain load so waiters do not hammer the cache line. */
        while (__atomic_load_n(&misaligned_lock, __ATOMIC_RELAXED)) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
    }
}

static void misaligned_release(void)
{
    __atomic_clear(&misaligned_lock, __ATOMIC_SEQ_CST);
}

static int is_aligned(const void *p, unsigned size)
{
    return (uintptr_t)p % size == 0;
}

/* memcpy between `size` bytes and a zero-extended uint64, endian-correct. */
static uint64_t bits_from_bytes(const void *p, unsigned size)
{
    uint8_t v8;
    uint16_t v16;
    uint32_t v32;
    uint64_t v64;

    switch (size) {
    case 1: memcpy(&v8, p, 1); return v8;
    case 2: memcpy(&v16, p, 2); return v16;
    case 4: memcpy(&v32, p, 4); return v32;
    default: memcpy(&v64, p, 8); return v64;
    }
}

static void bits_to_bytes(void *p, unsigned size, uint64_t bits)
{
    uint8_t v8 = (uint8_t)bits;
    uint16_t v16 = (uint16_t)bits;
    uint32_t v32 = (uint32_t)bits;

    switch (size) {
    case 1: memcpy(p, &v8, 1); break;
    case 2: memcpy(p, &v16, 2); break;
    case 4: memcpy(p, &v32, 4); break;
    default: memcpy(p, &bits, 8); break;
    }
}

static uint64_t raw_load(const void *p, unsigned size)
{
    uint64_t bits;

    if (!is_aligned(p, size)) {
        misaligned_acquire();
        bits = bits_from_bytes(p, size);
        misaligned_release();
        return bits;
    }
    switch (size) {
    case 1: return __atomic_load_n((const uint8_t *)p, __ATOMIC_SEQ_CST);
    case 2: return __atomic_load_n((const uint16_t *)p, __ATOMIC_SEQ_CST);
    case 4: return __atomic_load_n((const uint32_t *)p, __ATOMIC_SEQ_CST);
    default: return __atomic_load_n((const uint64_t *)p, __ATOMIC_SEQ_CST);
    }
}

static void raw_store(void *p, unsigned size, uint64_t bits)
{
    if (!is_aligned(p, size)) {
        misaligned_acquire();
        bits_to_bytes(p, size, bits);
        misaligned_release();
        return;
    }
    switch (size) {
    case 1: __atomic_store_n((uint8_t *)p, (uint8_t)bits, __ATOMIC_SEQ_CST); break;
    case 2: __atomic_store_n((uint16_t *)p, (uint16_t)bits, __ATOMIC_SEQ_CST); break;
    case 4: __atomic_store_n((uint32_t *)p, (uint32_t)bits, __ATOMIC_SEQ_CST); break;
    default: __atomic_store_n((uint64_t *)p, bits, __ATOMIC_SEQ_CST); break;
    }
}

/* Typed strong compare-and-swap for one width.  On failure *expected is
 * updated with the current bits, as __atomic_compare_exchange does, so CAS
 * loops need no extra load. */
#define SB_CAS_WIDTH(type, p, expected, desired) do {                        \
        type e_ = (type)*(expected);                                          \
        int ok_ = __atomic_compare_exchange_n((type *)(p), &e_, (type)(desired), \
                                              0, __ATOMIC_SEQ_CST,           \
                                              __ATOMIC_SEQ_CST);             \
        *(expected) = e_;                                                     \
        return ok_;                                                           \
    } while (0)

static int raw_cas(void *p, unsigned size, uint64_t *expected, uint64_t desired)
{
    if (!is_aligned(p, size)) {
        uint64_t current;
        int ok;

        misaligned_acquire();
        current = bits_from_bytes(p, size);
        ok = current == *expected;
        if (ok) {
            bits_to_bytes(p, size, desired);
        }
        misaligned_release();
        *expected = current;
        return ok;
    }
    switch (size) {
    case 1: SB_CAS_WIDTH(uint8_t, p, expected, desired);
    case 2: SB_CAS_WIDTH(uint16_t, p, expected, desired);
    case 4: SB_CAS_WIDTH(uint32_t, p, expected, desired);
    default: SB_CAS_WIDTH(uint64_t, p, expected, desired);
    }
}

/* ------------------------------------------------------------------------ */
/* Atomics: value <-> bits conversions                                      */
/* ------------------------------------------------------------------------ */

static uint64_t width_mask(unsigned size)
{
    return size == 8 ? UINT64_MAX : (UINT64_C(1) << (8 * size)) - 1;
}

/* Two's complement sign extension of the low `size` bytes.  Negative values
 * are computed arithmetically instead of by an unsigned->signed cast, whose
 * result C leaves implementation-defined. */
static int64_t sign_extend(uint64_t bits, unsigned size)
{
    uint64_t mask = width_mask(size);
    uint64_t sign = UINT64_C(1) << (8 * size - 1);

    bits &= mask;
    if (bits & sign) {
        return -(int64_t)(mask - bits) - 1;
    }
    return (int64_t)bits;
}

static uint64_t float_to_bits(const sb_code *c, double value)
{
    if (c->size == 4) {
        float f = (float)value;
        uint32_t b;
        memcpy(&b, &f, 4);
        return b;
    } else {
        uint64_t b;
        memcpy(&b, &value, 8);
        return b;
    }
}

static double bits_to_float(const sb_code *c, uint64_t bits)
{
    if (c->size == 4) {
        uint32_t b = (uint32_t)bits;
        float f;
        memcpy(&f, &b, 4);
        return f;
    } else {
        double d;
        memcpy(&d, &bits, 8);
        return d;
    }
}

/* A finite double that the code's float format can only hold as infinity
 * is out of range (same rule as Python's struct.pack('f', ...)). */
static int float_fits(const sb_code *c, double value)
{
    return !isfinite(value) || fabs(value) < c->float_limit;
}

static int int_fits(const sb_code *c, int64_t value)
{
    return value >= c->min && (value < 0 || (uint64_t)value <= c->max);
}

static int uint_fits(const sb_code *c, uint64_t value)
{
    return value <= c->max;
}


/* ------------------------------------------------------------------------ */
/* Atomics: read-modify-write loops                                         */
/* ------------------------------------------------------------------------ */

/*
 * Integer add with an exact overflow check.  The delta arrives as sign and
 * magnitude because the useful range of deltas, -(2**64 - 1) .. 2**64 - 1
 * for 64-bit codes, fits no single C integer type.
 *
 * Values are handled "biased": value - min, so that both signed and unsigned
 * codes become the range [0, span] of uint64 with span = max - min, and the
 * overflow test is a plain unsigned comparison.  The check sits inside the
 * CAS loop because it depends on the value actually being replaced.
 */
static int add_int_bits(const sb_code *c, char *field, int negative,
                        uint64_t magnitude, uint64_t *result)
{
    uint64_t lo = (uint64_t)c->min; /* two's complement bits of the minimum */
    uint64_t span = c->max - lo;    /* max - min, computed mod 2**64 */
    uint64_t current = raw_load(field, c->size);

    for (;;) {
        uint64_t value = c->kind == KIND_INT
                         ? (uint64_t)sign_extend(current, c->size) : current;
        uint64_t biased = value - lo;
        uint64_t desired;

        if (negative ? magnitude > biased : magnitude > span - biased) {
            return SB_E_OVERFLOW;
        }
        biased = negative ? biased - magnitude : biased + magnitude;
        desired = (biased + lo) & width_mask(c->size);
        if (raw_cas(field, c->size, &current, desired)) {
            *result = desired;
            return SB_OK;
        }
    }
}

/* Float add as a CAS loop on the bit pattern.  Finite + finite giving a
 * result the format can only hold as infinity is an overflow; infinities and
 * NaNs already present in the operands propagate as IEEE arithmetic says.
 * The sum is computed in double and rounded once to the field's format. */
static int add_float_bits(const sb_code *c, char *field, double delta,
                          double *result)
{
    uint64_t current = raw_load(field, c->size);

    for (;;) {
        double old = bits_to_float(c, current);
        double sum = old + delta;
        uint64_t desired;

        if (isfinite(old) && isfinite(delta) && fabs(sum) >= c->float_limit) {
            return SB_E_OVERFLOW;
        }
        desired = float_to_bits(c, sum);
        if (raw_cas(field, c->size, &current, desired)) {
            *result = bits_to_float(c, desired);
            return SB_OK;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Atomics: public entry points                                             */
/* ------------------------------------------------------------------------ */

/*
 * One entry point per operation and value family (signed int, unsigned int
 * incl. bool, float) so cffi converts Python values straight to the right C
 * type.  Each validates, in this order: the code, the value(s), the bounds.
 * The Python validation in fallback.py follows the same order, so both
 * implementations report the same error for the same bad call.
 */

/* Pointer to the field, or NULL when it does not lie inside the buffer. */
static char *field_at(const void *buf, size_t buflen, ptrdiff_t offset,
                      const sb_code *c)
{
    if (!in_bounds(buflen, offset, c->size)) {
        return NULL;
    }
    /* Loads receive a const buffer; they only read through the result. */
    return (char *)buf + offset;
}

int sb_load_int(const void *buf, size_t buflen, ptrdiff_t offset, int code,
                int64_t *out)
{
    const sb_code *c = lookup_code(code, KIND_INT);
    char *field;

    if (c == NULL) return SB_E_CODE;
    if ((field = field_at(buf, buflen, offset, c)) == NULL) return SB_E_BOUNDS;
    *out = sign_extend(raw_load(field, c->size), c->size);
    return SB_OK;
}

int sb_load_uint(const void *buf, size_t buflen, ptrdiff_t offset, int code,
                 uint64_t *out)
{
    const sb_code *c = lookup_code(code, KIND_UINT);
    char *field;

    if (c == NULL) return SB_E_CODE;
    if ((field = field_at(buf, buflen, offset, c)) == NULL) return SB_E_BOUNDS;
    *out = raw_load(field, c->size);
    return SB_OK;
}

int sb_load_float(const void *buf, size_t buflen, ptrdiff_t offset, int code,
                  double *out)
{
    const sb_code *c = lookup_code(code, KIND_FLOAT);
    char *field;

    if (c == NULL) return SB_E_CODE;
    if ((field = field_at(buf, buflen, offset, c)) == NULL) return SB_E_BOUNDS;
    *out = bits_to_float(c, raw_load(field, c->size));
    return SB_OK;
}

int sb_store_int(void *buf, size_t buflen, ptrdiff_t offset, int code,
                 int64_t value)
{
    const sb_code *c = lookup_code(code, KIND_INT);
    char *field;

    if (c == NULL) return SB_E_CODE;
    if (!int_fits(c, value)) return SB_E_RANGE;
    if ((field = field_at(buf, buflen, offset, c)) == NULL) return SB_E_BOUNDS;
    raw_store(field, c->size, (uint64_t)value);
    return SB_OK;
}

int sb_store_uint(void *buf, size_t buflen, ptrdiff_t offset, int code,
                  uint64_t value)
{
    const sb_code *c = lookup_code(code, KIND_UINT);
    char *field;

    if (c == NULL) return SB_E_CODE;
    if (!uint_fits(c, value)) return SB_E_RANGE;
    if ((field = field_at(buf, buflen, offset, c)) == NULL) return SB_E_BOUNDS;
    raw_store(field, c->size, value);
    return SB_OK;
}

int sb_store_float(void *buf, size_t buflen, ptrdiff_t offset, int code,
                   double value)
{
    const sb_code *c = lookup_code(code, KIND_FLOAT);
    char *field;

    if (c == NULL) return SB_E_CODE;
    if (!float_fits(c, value)) return SB_E_RANGE;
    if ((field = field_at(buf, buflen, offset, c)) == NULL) return SB_E_BOUNDS;
    raw_store(field, c->size, float_to_bits(c, value));
    return SB_OK;
}

/* CAS entry points return SB_OK when swapped, SB_CAS_MISMATCH when not. */
int sb_cas_int(void *buf, size_t buflen, ptrdiff_t offset, int code,
               int64_t expected, int64_t desired)
{
    const sb_code *c = lookup_code(code, KIND_INT);
    char *field;
    uint64_t expected_bits;

    if (c == NULL) return SB_E_CODE;
    if (!int_fits(c, expected)) return SB_E_RANGE;
    if (!int_fits(c, desired)) return SB_E_RANGE_NEW;
    if ((field = field_at(buf, buflen, offset, c)) == NULL) return SB_E_BOUNDS;
    /* Stored bits are zero-extended, so compare against masked bits. */
    expected_bits = (uint64_t)expected & width_mask(c->size);
    return raw_cas(field, c->size, &expected_bits, (uint64_t)desired)
           ? SB_OK : SB_CAS_MISMATCH;
}

int sb_cas_uint(void *buf, size_t buflen, ptrdiff_t offset, int code,
                uint64_t expected, uint64_t desired)
{
    const sb_code *c = lookup_code(code, KIND_UINT);
    char *field;

    if (c == NULL) return SB_E_CODE;
    if (!uint_fits(c, expected)) return SB_E_RANGE;
    if (!uint_fits(c, desired)) return SB_E_RANGE_NEW;
    if ((field = field_at(buf, buflen, offset, c)) == NULL) return SB_E_BOUNDS;
    return raw_cas(field, c->size, &expected, desired)
           ? SB_OK : SB_CAS_MISMATCH;
}

int sb_cas_float(void *buf, size_t buflen, ptrdiff_t offset, int code,
                 double expected, double desired)
{
    const sb_code *c = lookup_code(code, KIND_FLOAT);
    char *field;
    uint64_t expected_bits;

    if (c == NULL) return SB_E_CODE;
    if (!float_fits(c, expected)) return SB_E_RANGE;
    if (!float_fits(c, desired)) return SB_E_RANGE_NEW;
    if ((field = field_at(buf, buflen, offset, c)) == NULL) return SB_E_BOUNDS;
    /* Comparing bit patterns (not values) lets NaN match itself and keeps
     * 0.0 and -0.0 distinct, as a CAS on memory must. */
    expected_bits = float_to_bits(c, expected);
    return raw_cas(field, c->size, &expected_bits, float_to_bits(c, desired))
           ? SB_OK : SB_CAS_MISMATCH;
}

int sb_add_int(void *buf, size_t buflen, ptrdiff_t offset, int code,
               int negative, uint64_t magnitude, int64_t *out)
{
    const sb_code *c = lookup_code(code, KIND_INT);
    char *field;
    uint64_t bits;
    int rc;

    if (c == NULL || !c->addable) return SB_E_CODE;
    if ((field = field_at(buf, buflen, offset, c)) == NULL) return SB_E_BOUNDS;
    rc = add_int_bits(c, field, negative, magnitude, &bits);
    if (rc == SB_OK) {
        *out = sign_extend(bits, c->size);
    }
    return rc;
}

int sb_add_uint(void *buf, size_t buflen, ptrdiff_t offset, int code,
                int negative, uint64_t magnitude, uint64_t *out)
{
    const sb_code *c = lookup_code(code, KIND_UINT);
    char *field;

    if (c == NULL || !c->addable) return SB_E_CODE;
    if ((field = field_at(buf, buflen, offset, c)) == NULL) return SB_E_BOUNDS;
    return add_int_bits(c, field, negative, magnitude, out);
}

int sb_add_float(void *buf, size_t buflen, ptrdiff_t offset, int code,
                 double delta, double *out)
{
    const sb_code *c = lookup_code(code, KIND_FLOAT);
    char *field;

    if (c == NULL) return SB_E_CODE;
    if ((field = field_at(buf, buflen, offset, c)) == NULL) return SB_E_BOUNDS;
    return add_float_bits(c, field, delta, out);
}


/* ------------------------------------------------------------------------------------------
 * Sorted-index search (id mappers)
 *
 * An id mapper's rows are `count` rows of `columns` unsigned ints of `width` bytes (4 or 8),
 * sorted by column 0, starting at `index_offset` of a buffer.  sb_lower_bound finds the first
 * row whose column 0 is >= key.  Hashes are close to uniform, so an interpolation guess lands
 * near the answer; galloping from the guess brackets it in O(log distance) reads, a second
 * interpolation and gallop inside that bracket narrow it again, and a binary search finishes.  Every read is inside [index_offset, index_offset + rows size), which is
 * checked against the buffer once; reads use memcpy, so unaligned indexes are fine.
 * ------------------------------------------------------------------------------------------ */

/* The unsigned int of `width` bytes (4 or 8, native byte order) at `at`. */
static uint64_t read_cell(const unsigned char *at, unsigned width)
{
    if (width == 8) {
        uint64_t value;
        memcpy(&value, at, 8);
        return value;
    } else {
        uint32_t value;
        memcpy(&value, at, 4);
        return value;
    }
}

static uint64_t sb_column0(const unsigned char *rows, uint64_t row, size_t stride, unsigned width)
{
    return read_cell(rows + row * stride, width);
}

/* First row in [low, high) whose column 0 is >= key (high when none), by binary search: how
 * both the directory's bracket and the search's last bracket end. */
static uint64_t bracket_lower_bound(const unsigned char *rows, uint64_t low, uint64_t high, size_t stride,
                                    unsigned width, uint64_t key)
{
    while (low < high) {
        uint64_t middle = low + (high - low) / 2;
        if (sb_column0(rows, middle, stride, width) < key)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

/* First row of `count` rows (already checked to lie in the buffer) whose column 0 is >= key.
 * With a directory of these rows (sb_directory_build), the answer lies between two adjacent
 * entries, typically a cache line apart. */
static uint64_t rows_lower_bound(const unsigned char *rows, uint64_t count, size_t stride, unsigned width,
                                 const sb_directory *directory, uint64_t key)
{
    uint64_t low, high, guess, step, first, last;

    if (count == 0)
        return 0;
    first = sb_column0(rows, 0, stride, width);
    last = sb_column0(rows, count - 1, stride, width);
    if (key <= first)
        return 0;
    if (key > last)
        return count;
    if (directory != NULL && key >= directory->base) {
        /* Entries are clamped, so rows changed since the directory was made (a writer sharing
         * the file) give a wrong answer at worst, never a read outside the rows. */
        uint64_t bucket = (key - directory->base) >> directory->shift;
        if (bucket < directory->buckets) {
            high = directory->entries[bucket + 1];
            low = directory->entries[bucket];
            if (high > count)
                high = count;
            if (low > high)
                low = high;
            return bracket_lower_bound(rows, low, high, stride, width, key);
        }
    }
    /* first < key <= last: interpolate, then gallop to a bracket [low, high) holding the answer */
    guess = (uint64_t)((double)(key - first) / (double)(last - first) * (double)(count - 1));
    if (guess >= count)
        guess = count - 1;
    if (sb_column0(rows, guess, stride, width) < key) {
        low = guess + 1;
        step = 1;
        high = low;
        while (high < count && sb_column0(rows, high, stride, width) < key) {
            low = high + 1;
            high = low + step;
            step <<= 1;
        }
        if (high > count)
            high = count;
    } else {
        high = guess;
        step = 1;
        low = guess;
        while (low > 0 && sb_column0(rows, low - 1, stride, width) >= key) {
            high = low - 1;
            low = high > step ? high - step : 0;
            step <<= 1;
        }
    }
    /* The gallop's last step can leave a bracket of hundreds of rows: interpolate once more
     * between its end values and gallop again from there, which on hashes lands within a row
     * or two (measured on 200k random 40-bit keys: 10-20% fewer ns per lookup than bisecting
     * the bracket directly). */
    if (high - low > 16 && high < count) {
        uint64_t below = low > 0 ? sb_column0(rows, low - 1, stride, width) : 0;
        uint64_t above = sb_column0(rows, high, stride, width);
        uint64_t base = low > 0 ? low - 1 : 0;

        guess = base + (uint64_t)((double)(key - below) / ((double)(above - below) + 1.0)
                                  * (double)(high - base));
        if (guess < low)
            guess = low;
        if (guess >= high)
            guess = high - 1;
        step = 1;
        if (sb_column0(rows, guess, stride, width) < key) {
            low = guess + 1;
            while (low + step < high && sb_column0(rows, low + step - 1, stride, width) < key) {
                low += step;
                step <<= 1;
            }
            if (low + step < high)
                high = low + step;
        } else {
            high = guess;
            while (high > low + step && sb_column0(rows, high - step, stride, width) >= key) {
                high -= step;
                step <<= 1;
            }
            if (high > low + step)
                low = high - step;
        }
    }
    return bracket_lower_bound(rows, low, high, stride, width, key);
}

/* Returns the row (>= 0), or a negative SB_E_* code. */
int64_t sb_lower_bound(const void *buf, size_t buflen, size_t index_offset, uint64_t count,
                       unsigned columns, unsigned width, uint64_t key)
{
    size_t stride;

    if ((width != 4 && width != 8) || columns == 0 || columns > 3)
        return SB_E_CODE;
    stride = (size_t)columns * width;
    if (index_offset > buflen || count > (buflen - index_offset) / stride || count > (uint64_t)INT64_MAX)
        return SB_E_BOUNDS;
    return (int64_t)rows_lower_bound((const unsigned char *)buf + index_offset, count, stride, width, NULL, key);
}


/* ------------------------------------------------------------------------------------------
 * Id-mapper lookups (FORMAT.md §8)
 *
 * One call does a whole lookup: search column 0 for the key (numeric mappers: the key itself;
 * string mappers: the xxh64 or xxh32 of the key's UTF-8 bytes), then, in string mappers, compare
 * the stored key of every row with that hash.  A stored key is a bytes value (§4.1) at
 * mapper_offset + the row's key offset: u16 header (length | 0x8000 when LZ4-compressed), the
 * length in a following u64 when the header's length bits are 0x7FFF, then the data.
 *
 * Results: the cell of the value (row * columns + columns - 1, counted in cells from the start
 * of the rows) of the first matching row at or after `start_row` (the get functions: the value
 * itself), SB_IDMAP_MISSING, or SB_IDMAP_DEFER when a candidate's stored key is compressed
 * (Python inflates and compares).  Corrupt data gives SB_E_BOUNDS, a bad geometry SB_E_CODE or
 * SB_E_BOUNDS; the Python side then reads the row itself, which raises an error naming the
 * offending offset.  The geometry is checked on every call and every stored-key read is
 * bounds-checked, so nothing reads outside the buffer.  fallback.py holds the twins.  These
 * functions touch no Python objects: cffi runs them without the GIL.
 * ------------------------------------------------------------------------------------------ */



/* SB_OK when the rows lie inside the buffer and the shape is one of an id mapper. */
int sb_idmap_check(const sb_idmap *map)
{
    size_t stride;

    if ((map->width != 4 && map->width != 8) || (map->columns != 2 && map->columns != 3))
        return SB_E_CODE;
    stride = (size_t)map->columns * map->width;
    if (map->mapper_offset > map->buflen || map->index_offset > map->buflen
        || map->count > (map->buflen - map->index_offset) / stride || map->count > (uint64_t)INT64_MAX / 3)
        return SB_E_BOUNDS;
    return SB_OK;
}

/* Numeric lookup once the map is checked. */
static int64_t idmap_find_checked(const sb_idmap *map, const sb_directory *directory, uint64_t key,
                                  uint64_t start_row)
{
    const unsigned char *rows = (const unsigned char *)map->buf + map->index_offset;
    size_t stride = (size_t)map->columns * map->width;
    uint64_t row;

    if (map->width == 4 && key > UINT32_MAX)
        return SB_IDMAP_MISSING;
    row = rows_lower_bound(rows, map->count, stride, map->width, directory, key);
    if (row < start_row)
        row = start_row;
    if (row < map->count && sb_column0(rows, row, stride, map->width) == key)
        return (int64_t)(row * map->columns + map->columns - 1);
    return SB_IDMAP_MISSING;
}

/* The stored key of a row: SB_OK with *data and *length set, SB_IDMAP_DEFER when it is
 * compressed, SB_E_BOUNDS when any part of it lies outside the buffer. */
static int idmap_stored_key(const sb_idmap *map, uint64_t key_offset, const unsigned char **data,
                            uint64_t *length)
{
    uint64_t position, size;
    uint16_t header;

    if (key_offset > map->buflen - map->mapper_offset)
        return SB_E_BOUNDS;
    position = map->mapper_offset + key_offset;
    if (map->buflen - position < 2)
        return SB_E_BOUNDS;
    memcpy(&header, (const unsigned char *)map->buf + position, 2);
    position += 2;
    size = header & SB_BYTES_LONG;
    if (size == SB_BYTES_LONG) {
        if (map->buflen - position < 8)
            return SB_E_BOUNDS;
        memcpy(&size, (const unsigned char *)map->buf + position, 8);
        position += 8;
    }
    if (size > map->buflen - position)
        return SB_E_BOUNDS;
    if (header & SB_BYTES_COMPRESSED)
        return SB_IDMAP_DEFER;
    *data = (const unsigned char *)map->buf + position;
    *length = size;
    return SB_OK;
}

/* Ask for the cache line at `p` without waiting for it (never faults, so `p` may be anything). */
static inline void prefetch(const void *p)
{
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p);
#else
    (void)p;
#endif
}

/* String lookup once the map is checked (3 columns) and the key hashed.  With `next_index`, the
 * 8-byte entry numbered by a candidate row's value (when below next_count) is prefetched before
 * the stored key is compared: see sb_idmap_get_bytes_checked. */
static int64_t idmap_find_bytes_checked(const sb_idmap *map, const sb_directory *directory,
                                        const unsigned char *key, size_t length, uint64_t hash, uint64_t start_row,
                                        const unsigned char *next_index, uint64_t next_count)
{
    const unsigned char *rows = (const unsigned char *)map->buf + map->index_offset;
    size_t stride = 3 * (size_t)map->width;
    uint64_t row = rows_lower_bound(rows, map->count, stride, map->width, directory, hash);

    if (row < start_row)
        row = start_row;
    for (; row < map->count && sb_column0(rows, row, stride, map->width) == hash; row++) {
        const unsigned char *stored;
        uint64_t stored_length;
        int rc;

        if (next_index != NULL) {
            uint64_t value = read_cell(rows + row * stride + 2 * map->width, map->width);
            if (value < next_count)
                prefetch(next_index + 8 * value);
        }
        rc = idmap_stored_key(map, read_cell(rows + row * stride + map->width, map->width), &stored,
                              &stored_length);

        if (rc != SB_OK)
            return rc;
        if (stored_length == length && (length == 0 || memcmp(stored, key, length) == 0))
            return (int64_t)(row * 3 + 2);
    }
    return SB_IDMAP_MISSING;
}

static uint64_t idmap_hash(const sb_idmap *map, const void *key, size_t length)
{
    return map->width == 8 ? sb_xxh64(key, length, 0) : sb_xxh32(key, length, 0);
}

static uint64_t idmap_value(const sb_idmap *map, int64_t cell)
{
    const unsigned char *rows = (const unsigned char *)map->buf + map->index_offset;

    return read_cell(rows + (size_t)cell * map->width, map->width);
}

/* Numeric mappers (and any mapper searched by column 0): the key is column 0. */
int64_t sb_idmap_find(const sb_idmap *map, uint64_t key, uint64_t start_row)
{
    int rc = sb_idmap_check(map);

    if (rc != SB_OK)
        return rc;
    return idmap_find_checked(map, NULL, key, start_row);
}

/* String mappers: `length` bytes of UTF-8 at `key`, hashed here. */
int64_t sb_idmap_find_bytes(const sb_idmap *map, const void *key, size_t length, uint64_t start_row)
{
    int rc = sb_idmap_check(map);

    if (rc != SB_OK)
        return rc;
    if (map->columns != 3)
        return SB_E_CODE;
    return idmap_find_bytes_checked(map, NULL, key, length, idmap_hash(map, key, length), start_row, NULL, 0);
}

/* The value a find result stands for: what the get kernels return. */
static int64_t idmap_value_result(const sb_idmap *map, int64_t cell)
{
    uint64_t value;

    if (cell < 0)
        return cell;
    value = idmap_value(map, cell);
    return value > (uint64_t)INT64_MAX ? SB_IDMAP_WIDE : (int64_t)value;
}

/* Single-valued mappers: the value of the first row holding `key` instead of its cell (saving the
 * caller a read), SB_IDMAP_WIDE when that value does not fit an int64_t (sb_idmap_find gives
 * its cell), or any other result of sb_idmap_find. */
int64_t sb_idmap_get(const sb_idmap *map, uint64_t key)
{
    return idmap_value_result(map, sb_idmap_find(map, key, 0));
}

int64_t sb_idmap_get_bytes(const sb_idmap *map, const void *key, size_t length)
{
    return idmap_value_result(map, sb_idmap_find_bytes(map, key, length, 0));
}

/* -- Directories (see sb_directory in kernels.h) -------------------------------------------- */

/* How many entries the directory of a checked mapper takes (0 when it gets none), and its shift.
 * About one bucket per 4 rows, at most SB_DIRECTORY_MAX_BUCKETS: 1 to 2 bytes per row, 4 MB at
 * most.  None for fewer than 64 rows, for first and last rows out of order, or for rows over
 * SB_DIRECTORY_MAX_ROW_BYTES: building reads every row, which for a mapper bigger than memory
 * would mean reading it all from disk. */
uint64_t sb_directory_entries(const sb_idmap *map, unsigned *shift)
{
    const unsigned char *rows = (const unsigned char *)map->buf + map->index_offset;
    size_t stride = (size_t)map->columns * map->width;
    uint64_t first, last, span, target;
    unsigned bits = 0;

    if (sb_idmap_check(map) != SB_OK || map->count < 64 || map->count > SB_DIRECTORY_MAX_ROW_BYTES / stride)
        return 0;
    first = sb_column0(rows, 0, stride, map->width);
    last = sb_column0(rows, map->count - 1, stride, map->width);
    if (last < first)
        return 0;
    span = last - first;
    target = map->count / 4 < SB_DIRECTORY_MAX_BUCKETS ? map->count / 4 : SB_DIRECTORY_MAX_BUCKETS;
    while ((span >> bits) >= target)
        bits++;
    *shift = bits;
    return (span >> bits) + 2;
}

/* Fills `entries` (`capacity` from sb_directory_entries, with its shift) and `directory`.  One
 * pass over column 0, which must be sorted: SB_DIRECTORY_UNSORTED otherwise (searches then go
 * without a directory, and give the answers of the pure-Python search on damaged rows too). */
int sb_directory_build(const sb_idmap *map, uint32_t *entries, uint64_t capacity, unsigned shift,
                       sb_directory *directory)
{
    const unsigned char *rows = (const unsigned char *)map->buf + map->index_offset;
    size_t stride = (size_t)map->columns * map->width;
    uint64_t first, previous, row, next = 0, buckets;
    int rc = sb_idmap_check(map);

    if (rc != SB_OK)
        return rc;
    if (map->count == 0 || shift >= 64 || capacity < 2 || map->count > UINT32_MAX)
        return SB_E_CODE;
    buckets = capacity - 1;
    first = previous = sb_column0(rows, 0, stride, map->width);
    if ((sb_column0(rows, map->count - 1, stride, map->width) - first) >> shift != buckets - 1)
        return SB_E_CODE;       /* not the capacity sb_directory_entries gave for these rows */
    for (row = 0; row < map->count; row++) {
        uint64_t value = sb_column0(rows, row, stride, map->width), bucket;
        if (value < previous)
            return SB_DIRECTORY_UNSORTED;
        bucket = (value - first) >> shift;      /* <= buckets - 1: value <= the last row's */
        while (next <= bucket)
            entries[next++] = (uint32_t)row;
        previous = value;
    }
    while (next <= buckets)
        entries[next++] = (uint32_t)map->count;
    directory->entries = entries;
    directory->buckets = buckets;
    directory->base = first;
    directory->shift = shift;
    return SB_OK;
}

/* sb_idmap_get and sb_idmap_get_bytes for a mapper already checked by sb_idmap_check, searched
 * through `directory` when not NULL.
 *
 * A mapping's next read is entry `value` of its value array's index (`next_count` uint64
 * entries at `next_index`, which may be NULL).  Once the candidate row is found its value is
 * known, so that entry is prefetched while the stored key (another cache miss) is compared: the
 * two misses overlap instead of following each other.  Nothing is read through `next_index`;
 * the caller reads the entry itself, with its own bounds checks. */
int64_t sb_idmap_get_checked(const sb_idmap *map, const sb_directory *directory, uint64_t key)
{
    return idmap_value_result(map, idmap_find_checked(map, directory, key, 0));
}

int64_t sb_idmap_get_bytes_checked(const sb_idmap *map, const sb_directory *directory, const void *key,
                                   size_t length, const void *next_index, uint64_t next_count)
{
    if (map->columns != 3)
        return SB_E_CODE;
    return idmap_value_result(map, idmap_find_bytes_checked(map, directory, key, length,
                                                            idmap_hash(map, key, length), 0, next_index,
                                                            next_count));
}

/* Multi mappers, searched through `directory` when not NULL: the cell of the value of the first
 * row at or after `start_row` that holds `key` (numeric mappers) or the key of `length` bytes of
 * UTF-8 at `key` (string mappers), or any other result of sb_idmap_find and sb_idmap_find_bytes.
 * A key's next value is found from the row after the cell's: cell / columns + 1. */
int64_t sb_idmap_find_checked(const sb_idmap *map, const sb_directory *directory, uint64_t key,
                              uint64_t start_row)
{
    return idmap_find_checked(map, directory, key, start_row);
}

int64_t sb_idmap_find_bytes_checked(const sb_idmap *map, const sb_directory *directory, const void *key,
                                    size_t length, uint64_t start_row)
{
    if (map->columns != 3)
        return SB_E_CODE;
    return idmap_find_bytes_checked(map, directory, key, length, idmap_hash(map, key, length), start_row,
                                    NULL, 0);
}

/* The stored key of `row` of a checked string mapper: SB_OK with *data and *length set,
 * SB_IDMAP_DEFER when it is compressed, SB_E_BOUNDS when any part of it lies outside the buffer,
 * SB_E_CODE for a row past the last or a mapper without stored keys. */
int sb_idmap_row_key(const sb_idmap *map, uint64_t row, const unsigned char **data, uint64_t *length)
{
    const unsigned char *rows = (const unsigned char *)map->buf + map->index_offset;

    if (map->columns != 3 || row >= map->count)
        return SB_E_CODE;
    return idmap_stored_key(map, read_cell(rows + row * 3 * map->width + map->width, map->width), data, length);
}

/* The value in the cell a find gave (>= 0), as an unsigned int of the mapper's width. */
uint64_t sb_idmap_cell(const sb_idmap *map, int64_t cell)
{
    return idmap_value(map, cell);
}

/* Batch of numeric keys: values[i] and status[i] (SB_IDMAP_FOUND or SB_IDMAP_NOT_FOUND; values of
 * keys not found are 0).  Returns n, or a negative code for a bad geometry. */
int64_t sb_idmap_find_many(const sb_idmap *map, const uint64_t *keys, uint64_t n, uint64_t *values,
                           int8_t *status)
{
    uint64_t i;
    int rc = sb_idmap_check(map);

    if (rc != SB_OK)
        return rc;
    if (n > (uint64_t)INT64_MAX)
        return SB_E_RANGE;
    for (i = 0; i < n; i++) {
        int64_t cell = idmap_find_checked(map, NULL, keys[i], 0);

        if (cell >= 0) {
            values[i] = idmap_value(map, cell);
            status[i] = SB_IDMAP_FOUND;
        } else {
            values[i] = 0;
            status[i] = SB_IDMAP_NOT_FOUND;
        }
    }
    return (int64_t)n;
}

/* Batch of string keys: key i is data[spans[2i], spans[2i + 1]).  status[i] is SB_IDMAP_FOUND,
 * SB_IDMAP_NOT_FOUND or SB_IDMAP_DEFERRED.  Returns n; a smaller i >= 0 when key i met corrupt
 * data (keys from i on are left unset); a negative code for a bad geometry or a span outside
 * `data`. */
int64_t sb_idmap_find_many_bytes(const sb_idmap *map, const void *data, size_t data_length,
                                 const uint64_t *spans, uint64_t n, uint64_t *values, int8_t *status)
{
    uint64_t i;
    int rc = sb_idmap_check(map);

    if (rc != SB_OK)
        return rc;
    if (map->columns != 3)
        return SB_E_CODE;
    if (n > (uint64_t)INT64_MAX / 2)
        return SB_E_RANGE;
    for (i = 0; i < n; i++) {
        if (spans[2 * i] > spans[2 * i + 1] || spans[2 * i + 1] > data_length)
            return SB_E_RANGE;
    }
    for (i = 0; i < n; i++) {
        const unsigned char *key = (const unsigned char *)data + spans[2 * i];
        size_t length = (size_t)(spans[2 * i + 1] - spans[2 * i]);
        int64_t cell = idmap_find_bytes_checked(map, NULL, key, length, idmap_hash(map, key, length), 0, NULL, 0);

        if (cell >= 0) {
            values[i] = idmap_value(map, cell);
            status[i] = SB_IDMAP_FOUND;
        } else if (cell == SB_IDMAP_MISSING) {
            values[i] = 0;
            status[i] = SB_IDMAP_NOT_FOUND;
        } else if (cell == SB_IDMAP_DEFER) {
            values[i] = 0;
            status[i] = SB_IDMAP_DEFERRED;
        } else {
            return (int64_t)i;
        }
    }
    return (int64_t)n;
}

/* ------------------------------------------------------------------------------------------
 * Column gather (typed arrays, FORMAT.md §8): one fixed-size field of many items
 *
 * `numbers` are item numbers (NULL: all `count` items in order; n must then be count); item k's
 * position is the uint64 index entry at array_offset + index_offset + 8 * k, counted from the
 * array's start.  For each item whose position lies in [items_start, index_offset) and whose
 * header bitmaps are exactly (full_has, 0), the `field_size` bytes at position + field_offset
 * are copied to out[i].  Returns n when every item was copied, else the index (in `numbers`)
 * of the first item that was not (another shape, or a corrupt position): the caller decides
 * for those, in Python.  SB_E_BOUNDS / SB_E_CODE for a geometry that does not fit the buffer.
 * ------------------------------------------------------------------------------------------ */
/* The unsigned int of `size` bytes (1, 2, 4 or 8, native byte order) at `at`. */
static inline uint64_t read_uint(const unsigned char *at, unsigned size)
{
    uint16_t u16;

    switch (size) {
    case 1: return at[0];
    case 2: memcpy(&u16, at, 2); return u16;
    default: return read_cell(at, size);
    }
}

/* Copy `size` bytes (1, 2, 4 or 8): constant-size copies, which compile to one load and store. */
static inline void copy_uint(unsigned char *to, const unsigned char *from, unsigned size)
{
    switch (size) {
    case 1: to[0] = from[0]; break;
    case 2: memcpy(to, from, 2); break;
    case 4: memcpy(to, from, 4); break;
    default: memcpy(to, from, 8); break;
    }
}

int64_t sb_gather_field(const void *buf, size_t buflen, uint64_t array_offset, uint64_t items_start,
                        uint64_t index_offset, uint64_t count, const int64_t *numbers, uint64_t n,
                        unsigned bitmap_size, uint64_t full_has, uint64_t field_offset,
                        unsigned field_size, void *out)
{
    const unsigned char *bytes = (const unsigned char *)buf;
    unsigned char *destination = (unsigned char *)out;
    uint64_t i;

    if ((bitmap_size != 1 && bitmap_size != 2 && bitmap_size != 4 && bitmap_size != 8)
        || (field_size != 1 && field_size != 2 && field_size != 4 && field_size != 8))
        return SB_E_CODE;
    if (array_offset > buflen || index_offset > buflen - array_offset
        || count > (buflen - array_offset - index_offset) / 8 || items_start > index_offset
        || field_offset > index_offset || (numbers == NULL && n != count))
        return SB_E_BOUNDS;
    for (i = 0; i < n; i++) {
        uint64_t position, has, none;
        int64_t number = numbers != NULL ? numbers[i] : (int64_t)i;

        if (number < 0 || (uint64_t)number >= count)
            return SB_E_BOUNDS;
        memcpy(&position, bytes + array_offset + index_offset + 8 * (uint64_t)number, 8);
        /* the header and the field must lie in the items area, before the index */
        if (position < items_start || position >= index_offset
            || field_offset + field_size > index_offset - position
            || 2 * (uint64_t)bitmap_size > index_offset - position)
            return (int64_t)i;
        has = read_uint(bytes + array_offset + position, bitmap_size);
        none = read_uint(bytes + array_offset + position + bitmap_size, bitmap_size);
        if (has != full_has || none != 0)
            return (int64_t)i;
        copy_uint(destination + i * field_size, bytes + array_offset + position + field_offset, field_size);
    }
    return (int64_t)n;
}
