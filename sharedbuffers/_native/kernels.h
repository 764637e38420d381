/*
 * The part of the native kernels (kernels.c) that the C-API module (_objects) calls too: the
 * id-mapper lookups, their geometry and their result codes.  kernels.c is compiled into both
 * extension modules; cffi declares the same functions in build_kernels.py.
 */
#ifndef SHAREDBUFFERS_KERNELS_H
#define SHAREDBUFFERS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define SB_IDMAP_MISSING (-6)   /* no row holds the key */
#define SB_IDMAP_DEFER   (-7)   /* a candidate row's stored key is compressed */
#define SB_IDMAP_WIDE    (-8)   /* sb_idmap_get*: the value found does not fit an int64_t */

/* Batch per-key status values. */
#define SB_IDMAP_FOUND     1
#define SB_IDMAP_NOT_FOUND 0
#define SB_IDMAP_DEFERRED  2

#define SB_BYTES_LONG       0x7FFF
#define SB_BYTES_COMPRESSED 0x8000

/* Where a mapper's rows are; made once per mapper by the Python side. */
typedef struct {
    const void *buf;         /* the buffer holding the mapper */
    uint64_t buflen;         /* its size in bytes */
    uint64_t mapper_offset;  /* where the mapper starts: key offsets are relative to it */
    uint64_t index_offset;   /* where the rows start */
    uint64_t count;          /* number of rows */
    uint32_t columns;        /* 2: (key, value); 3: (hash, key offset, value) */
    uint32_t width;          /* bytes per cell: 4 or 8 */
} sb_idmap;

/* A private directory of a mapper's rows (sb_directory_build), for processes that look up many
 * keys: entry b is the first row whose column 0 is >= base + (b << shift), so the row of a key
 * lies between entries (key - base) >> shift and the one after it, usually a cache line apart,
 * where the search without a directory reads several lines one after the other. */
typedef struct {
    const uint32_t *entries; /* buckets + 1 row numbers */
    uint64_t buckets;
    uint64_t base;           /* column 0 of the first row */
    unsigned shift;
} sb_directory;

#define SB_DIRECTORY_UNSORTED (-9)  /* sb_directory_build: column 0 is not sorted (a corrupt mapper) */
#define SB_DIRECTORY_MAX_BUCKETS (1u << 20)         /* 4 MB of entries */
#define SB_DIRECTORY_MAX_ROW_BYTES (256ull << 20)   /* bigger mappers get no directory */

uint64_t sb_xxh64(const void *data, size_t len, uint64_t seed);
uint32_t sb_xxh32(const void *data, size_t len, uint32_t seed);
int64_t sb_idmap_find(const sb_idmap *map, uint64_t key, uint64_t start_row);
int64_t sb_idmap_find_bytes(const sb_idmap *map, const void *key, size_t length, uint64_t start_row);
int64_t sb_idmap_get(const sb_idmap *map, uint64_t key);
int64_t sb_idmap_get_bytes(const sb_idmap *map, const void *key, size_t length);

/* SB_OK when the mapper's rows lie inside its buffer: the functions below without a check of
 * their own need that first (the _objects module checks once per mapper, whose buffer export
 * pins the memory). */
int sb_idmap_check(const sb_idmap *map);
uint64_t sb_directory_entries(const sb_idmap *map, unsigned *shift);
int sb_directory_build(const sb_idmap *map, uint32_t *entries, uint64_t capacity, unsigned shift,
                       sb_directory *directory);
int64_t sb_idmap_get_checked(const sb_idmap *map, const sb_directory *directory, uint64_t key);
int64_t sb_idmap_get_bytes_checked(const sb_idmap *map, const sb_directory *directory, const void *key,
                                   size_t length, const void *next_index, uint64_t next_count);
int64_t sb_idmap_find_checked(const sb_idmap *map, const sb_directory *directory, uint64_t key,
                              uint64_t start_row);
int64_t sb_idmap_find_bytes_checked(const sb_idmap *map, const sb_directory *directory, const void *key,
                                    size_t length, uint64_t start_row);
uint64_t sb_idmap_cell(const sb_idmap *map, int64_t cell);
/* 0 with *data and *length set to the stored key of `row` of a string mapper, else a negative code. */
int sb_idmap_row_key(const sb_idmap *map, uint64_t row, const unsigned char **data, uint64_t *length);

#endif
