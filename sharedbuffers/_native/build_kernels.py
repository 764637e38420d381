"""cffi builder for ``sharedbuffers._native._kernels`` (API mode, out of line).

setup.py uses it as ``cffi_modules=["sharedbuffers/_native/build_kernels.py:ffibuilder"]``.
Running this file directly compiles the extension in place inside the source
tree, which is handy for running the tests without installing the package::

    python sharedbuffers/_native/build_kernels.py
"""

import os
import sys

import cffi

_HERE = os.path.dirname(os.path.abspath(__file__))

# Declarations of the functions in kernels.c that Python may call.  The
# status codes use "..." so cffi takes their values from the C source.
CDEF = """
#define SB_OK ...
#define SB_CAS_MISMATCH ...
#define SB_E_BOUNDS ...
#define SB_E_RANGE ...
#define SB_E_RANGE_NEW ...
#define SB_E_OVERFLOW ...
#define SB_E_CODE ...
#define SB_IDMAP_MISSING ...
#define SB_IDMAP_DEFER ...
#define SB_IDMAP_WIDE ...
#define SB_IDMAP_FOUND ...
#define SB_IDMAP_NOT_FOUND ...
#define SB_IDMAP_DEFERRED ...

typedef struct {
    const void *buf;
    uint64_t buflen;
    uint64_t mapper_offset;
    uint64_t index_offset;
    uint64_t count;
    uint32_t columns;
    uint32_t width;
} sb_idmap;

uint64_t sb_xxh64(const void *data, size_t len, uint64_t seed);
uint32_t sb_xxh32(const void *data, size_t len, uint32_t seed);
uint64_t sb_hash_float(double x);
uint64_t sb_fold_hashes(uint64_t seed, const uint64_t *hashes, size_t n);
int64_t sb_lower_bound(const void *buf, size_t buflen, size_t index_offset, uint64_t count,
                       unsigned columns, unsigned width, uint64_t key);
int64_t sb_idmap_find(const sb_idmap *map, uint64_t key, uint64_t start_row);
int64_t sb_idmap_find_bytes(const sb_idmap *map, const void *key, size_t length, uint64_t start_row);
int64_t sb_idmap_get(const sb_idmap *map, uint64_t key);
int64_t sb_idmap_get_bytes(const sb_idmap *map, const void *key, size_t length);
int64_t sb_idmap_find_many(const sb_idmap *map, const uint64_t *keys, uint64_t n, uint64_t *values,
                           int8_t *status);
int64_t sb_idmap_find_many_bytes(const sb_idmap *map, const void *data, size_t data_length,
                                 const uint64_t *spans, uint64_t n, uint64_t *values, int8_t *status);

int sb_load_int(const void *buf, size_t buflen, ptrdiff_t offset, int code,
                int64_t *out);
int sb_load_uint(const void *buf, size_t buflen, ptrdiff_t offset, int code,
                 uint64_t *out);
int sb_load_float(const void *buf, size_t buflen, ptrdiff_t offset, int code,
                  double *out);
int sb_store_int(void *buf, size_t buflen, ptrdiff_t offset, int code,
                 int64_t value);
int sb_store_uint(void *buf, size_t buflen, ptrdiff_t offset, int code,
                  uint64_t value);
int sb_store_float(void *buf, size_t buflen, ptrdiff_t offset, int code,
                   double value);
int sb_cas_int(void *buf, size_t buflen, ptrdiff_t offset, int code,
               int64_t expected, int64_t desired);
int sb_cas_uint(void *buf, size_t buflen, ptrdiff_t offset, int code,
                uint64_t expected, uint64_t desired);
int sb_cas_float(void *buf, size_t buflen, ptrdiff_t offset, int code,
                 double expected, double desired);
int sb_add_int(void *buf, size_t buflen, ptrdiff_t offset, int code,
               int negative, uint64_t magnitude, int64_t *out);
int sb_add_uint(void *buf, size_t buflen, ptrdiff_t offset, int code,
                int negative, uint64_t magnitude, uint64_t *out);
int sb_add_float(void *buf, size_t buflen, ptrdiff_t offset, int code,
                 double delta, double *out);
int64_t sb_gather_field(const void *buf, size_t buflen, uint64_t array_offset, uint64_t items_start,
                        uint64_t index_offset, uint64_t count, const int64_t *numbers, uint64_t n,
                        unsigned bitmap_size, uint64_t full_has, uint64_t field_offset,
                        unsigned field_size, void *out);
"""


def _read_source():
    """The C source, located relative to this file so setup.py can run it
    from any working directory."""
    with open(os.path.join(_HERE, "kernels.c"), encoding="utf-8") as f:
        return f.read()


ffibuilder = cffi.FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "sharedbuffers._native._kernels",
    _read_source(),
    # Portable optimisation only: wheels must run on any CPU of the platform.
    extra_compile_args=["-O2", "-std=c99"],
    include_dirs=[_HERE],       # kernels.h
    libraries=[] if sys.platform == "win32" else ["m"],
)


if __name__ == "__main__":
    # The module name is dotted, so compiling with the repository root as
    # tmpdir drops the extension at sharedbuffers/_native/_kernels*.so.
    ffibuilder.compile(tmpdir=os.path.dirname(os.path.dirname(_HERE)), verbose=True)
