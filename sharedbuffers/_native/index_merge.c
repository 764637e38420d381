/*
 * Merging two sorted N x 2 index matrices (part of sharedbuffers._native._objects, objects.c):
 * 1.x's index_merge, which users call to combine the (key, value) rows of two indexes.
 *
 *   index_merge(first, second, dest)
 *       writes the rows of `first` and `second`, each sorted by (column 0, column 1), to
 *       `dest` in that order (equal rows: `first`'s before `second`'s) and returns how many
 *       it wrote.  Each row is checked against the one before it as it is taken; unsorted
 *       input raises ValueError naming the input and the row (`dest` is then partly written);
 *       NotImplemented for arrays this code does not read (sorted_search.py validates the
 *       shapes, dtypes and overlap first, and answers those with numpy).
 *
 * Floats are ordered as numpy sorts them: NaN after every number, NaNs equal to each other.
 * The merge runs without the GIL: the buffer exports keep the three arrays' memory in place.
 */
#include "objects.h"
#include <math.h>

typedef struct {
    Py_buffer view;
    Py_ssize_t rows;
    Py_ssize_t row_stride;
    Py_ssize_t column_stride;
} Rows;

#define CELL(rows, row, column) \
    ((const unsigned char *)(rows)->view.buf + (row) * (rows)->row_stride + (column) * (rows)->column_stride)
#define OUT_CELL(rows, row, column) \
    ((unsigned char *)(rows)->view.buf + (row) * (rows)->row_stride + (column) * (rows)->column_stride)

/* numpy's order of numbers: NaN last (for integer types the NaN tests are constant false) */
#define NUMBER_LESS(x, y) ((x) < (y) || ((y) != (y) && (x) == (x)))
#define NUMBER_SAME(x, y) ((x) == (y) || ((x) != (x) && (y) != (y)))
#define ROW_LESS(k1, v1, k2, v2) (NUMBER_LESS(k1, k2) || (NUMBER_SAME(k1, k2) && NUMBER_LESS(v1, v2)))

/* Rows laid out as type[rows][2] at an aligned address: read as plain C arrays. */
#define PACKED(rows, type)                                                                   \
    ((rows)->row_stride == 2 * (Py_ssize_t)sizeof(type) && (rows)->column_stride == (Py_ssize_t)sizeof(type) \
     && (uintptr_t)(rows)->view.buf % sizeof(type) == 0)

/* For each element type: the first unsorted row of an input (0 when sorted), and the merge;
 * packed rows take the loops over C arrays, any other layout the same loops through strides. */
#define DEFINE_MERGE(name, type)                                                             \
    static Py_ssize_t                                                                        \
    unsorted_row_##name(const Rows *rows)                                                    \
    {                                                                                        \
        type key, value, previous_key, previous_value;                                       \
        Py_ssize_t row;                                                                      \
        if (PACKED(rows, type)) {                                                            \
            const type *cells = (const type *)rows->view.buf;                                \
            for (row = 1; row < rows->rows; row++)                                           \
                if (ROW_LESS(cells[2 * row], cells[2 * row + 1], cells[2 * row - 2], cells[2 * row - 1])) \
                    return row;                                                              \
            return 0;                                                                        \
        }                                                                                    \
        for (row = 1; row < rows->rows; row++) {                                             \
            memcpy(&previous_key, CELL(rows, row - 1, 0), sizeof(type));                     \
            memcpy(&previous_value, CELL(rows, row - 1, 1), sizeof(type));                   \
            memcpy(&key, CELL(rows, row, 0), sizeof(type));                                  \
            memcpy(&value, CELL(rows, row, 1), sizeof(type));                                \
            if (ROW_LESS(key, value, previous_key, previous_value))                          \
                return row;                                                                  \
        }                                                                                    \
        return 0;                                                                            \
    }                                                                                        \
                                                                                             \
    /* 0 when merged; -1 when an input is not sorted (`dest` then holds part of the merge) */ \
    static int                                                                               \
    merge_##name(const Rows *first, const Rows *second, Rows *dest)                          \
    {                                                                                        \
        Py_ssize_t i = 0, j = 0, out = 0;                                                    \
        type first_key = 0, first_value = 0, second_key = 0, second_value = 0;               \
        if (PACKED(first, type) && PACKED(second, type) && PACKED(dest, type)) {             \
            /* one pass: each row taken is checked against the one its input gave before */ \
            const type *a = (const type *)first->view.buf, *b = (const type *)second->view.buf; \
            type *d = (type *)dest->view.buf;                                                \
            while (i < first->rows && j < second->rows) {                                    \
                if (ROW_LESS(b[2 * j], b[2 * j + 1], a[2 * i], a[2 * i + 1])) {              \
                    if (j > 0 && ROW_LESS(b[2 * j], b[2 * j + 1], b[2 * j - 2], b[2 * j - 1])) \
                        return -1;                                                           \
                    d[2 * out] = b[2 * j];                                                   \
                    d[2 * out + 1] = b[2 * j + 1];                                           \
                    j++;                                                                     \
                }                                                                            \
                else {                                                                       \
                    if (i > 0 && ROW_LESS(a[2 * i], a[2 * i + 1], a[2 * i - 2], a[2 * i - 1])) \
                        return -1;                                                           \
                    d[2 * out] = a[2 * i];                                                   \
                    d[2 * out + 1] = a[2 * i + 1];                                           \
                    i++;                                                                     \
                }                                                                            \
                out++;                                                                       \
            }                                                                                \
            for (; i < first->rows; i++, out++) {                                            \
                if (i > 0 && ROW_LESS(a[2 * i], a[2 * i + 1], a[2 * i - 2], a[2 * i - 1]))   \
                    return -1;                                                               \
                d[2 * out] = a[2 * i];                                                       \
                d[2 * out + 1] = a[2 * i + 1];                                               \
            }                                                                                \
            for (; j < second->rows; j++, out++) {                                           \
                if (j > 0 && ROW_LESS(b[2 * j], b[2 * j + 1], b[2 * j - 2], b[2 * j - 1]))   \
                    return -1;                                                               \
                d[2 * out] = b[2 * j];                                                       \
                d[2 * out + 1] = b[2 * j + 1];                                               \
            }                                                                                \
            return 0;                                                                        \
        }                                                                                    \
        if (unsorted_row_##name(first) || unsorted_row_##name(second))                       \
            return -1;                                                                       \
        while (i < first->rows && j < second->rows) {                                        \
            memcpy(&first_key, CELL(first, i, 0), sizeof(type));                             \
            memcpy(&first_value, CELL(first, i, 1), sizeof(type));                           \
            memcpy(&second_key, CELL(second, j, 0), sizeof(type));                           \
            memcpy(&second_value, CELL(second, j, 1), sizeof(type));                         \
            if (ROW_LESS(second_key, second_value, first_key, first_value)) {                \
                memcpy(OUT_CELL(dest, out, 0), &second_key, sizeof(type));                   \
                memcpy(OUT_CELL(dest, out, 1), &second_value, sizeof(type));                 \
                j++;                                                                         \
            }                                                                                \
            else {                                                                           \
                memcpy(OUT_CELL(dest, out, 0), &first_key, sizeof(type));                    \
                memcpy(OUT_CELL(dest, out, 1), &first_value, sizeof(type));                  \
                i++;                                                                         \
            }                                                                                \
            out++;                                                                           \
        }                                                                                    \
        for (; i < first->rows; i++, out++) {                                                \
            memcpy(OUT_CELL(dest, out, 0), CELL(first, i, 0), sizeof(type));                 \
            memcpy(OUT_CELL(dest, out, 1), CELL(first, i, 1), sizeof(type));                 \
        }                                                                                    \
        for (; j < second->rows; j++, out++) {                                               \
            memcpy(OUT_CELL(dest, out, 0), CELL(second, j, 0), sizeof(type));                \
            memcpy(OUT_CELL(dest, out, 1), CELL(second, j, 1), sizeof(type));                \
        }                                                                                    \
        return 0;                                                                            \
    }

DEFINE_MERGE(i8, int8_t)
DEFINE_MERGE(u8, uint8_t)
DEFINE_MERGE(i16, int16_t)
DEFINE_MERGE(u16, uint16_t)
DEFINE_MERGE(i32, int32_t)
DEFINE_MERGE(u32, uint32_t)
DEFINE_MERGE(i64, int64_t)
DEFINE_MERGE(u64, uint64_t)
DEFINE_MERGE(f32, float)
DEFINE_MERGE(f64, double)

typedef Py_ssize_t (*unsorted_function)(const Rows *);
typedef int (*merge_function)(const Rows *, const Rows *, Rows *);

/* The functions for a buffer of native numbers, or 0. */
static int
functions_for(const Py_buffer *view, unsorted_function *unsorted, merge_function *merge)
{
    switch (native_number_code(view)) {
    case 'b': *unsorted = unsorted_row_i8; *merge = merge_i8; return 1;
    case 'B': *unsorted = unsorted_row_u8; *merge = merge_u8; return 1;
    case 'h': *unsorted = unsorted_row_i16; *merge = merge_i16; return 1;
    case 'H': *unsorted = unsorted_row_u16; *merge = merge_u16; return 1;
    case 'i': *unsorted = unsorted_row_i32; *merge = merge_i32; return 1;
    case 'I': *unsorted = unsorted_row_u32; *merge = merge_u32; return 1;
    case 'q': *unsorted = unsorted_row_i64; *merge = merge_i64; return 1;
    case 'Q': *unsorted = unsorted_row_u64; *merge = merge_u64; return 1;
    case 'f': *unsorted = unsorted_row_f32; *merge = merge_f32; return 1;
    case 'd': *unsorted = unsorted_row_f64; *merge = merge_f64; return 1;
    default: return 0;
    }
}

/* 1 with the rows' export, 0 when `array` is not a 2-column matrix this code reads. */
static int
open_rows(PyObject *array, Rows *rows, int writable)
{
    if (PyObject_GetBuffer(array, &rows->view, writable ? PyBUF_RECORDS : PyBUF_RECORDS_RO) < 0) {
        PyErr_Clear();
        return 0;
    }
    if (rows->view.ndim != 2 || rows->view.shape[1] != 2 || rows->view.strides == NULL) {
        PyBuffer_Release(&rows->view);
        return 0;
    }
    rows->rows = rows->view.shape[0];
    rows->row_stride = rows->view.strides[0];
    rows->column_stride = rows->view.strides[1];
    return 1;
}

static PyObject *
index_merge(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Rows first, second, dest;
    unsorted_function unsorted = NULL, unsorted_dest;
    merge_function merge = NULL, merge_dest;
    PyObject *answer = Py_NotImplemented;
    Py_ssize_t bad_first, bad_second;

    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "index_merge(first, second, dest) takes 3 arguments, not %zd", nargs);
        return NULL;
    }
    if (!open_rows(args[0], &first, 0))
        return Py_NewRef(Py_NotImplemented);
    if (!open_rows(args[1], &second, 0)) {
        PyBuffer_Release(&first.view);
        return Py_NewRef(Py_NotImplemented);
    }
    if (!open_rows(args[2], &dest, 1)) {
        PyBuffer_Release(&first.view);
        PyBuffer_Release(&second.view);
        return Py_NewRef(Py_NotImplemented);
    }
    if (!functions_for(&first.view, &unsorted, &merge) || !functions_for(&dest.view, &unsorted_dest, &merge_dest)
            || strcmp(first.view.format, second.view.format) != 0 || strcmp(first.view.format, dest.view.format) != 0
            || first.view.itemsize != second.view.itemsize || first.view.itemsize != dest.view.itemsize
            || dest.rows < first.rows + second.rows)
        goto done;
    Py_BEGIN_ALLOW_THREADS
    bad_first = bad_second = 0;
    if (merge(&first, &second, &dest) < 0) {
        /* the error names the first unsorted row of index1, else of index2, as the Python code does */
        bad_first = unsorted(&first);
        bad_second = bad_first ? 0 : unsorted(&second);
    }
    Py_END_ALLOW_THREADS
    if (bad_first || bad_second) {
        PyErr_Format(PyExc_ValueError, "index%d is not sorted: row %zd sorts before row %zd",
                     bad_first ? 1 : 2, bad_first ? bad_first : bad_second, (bad_first ? bad_first : bad_second) - 1);
        answer = NULL;
        goto done;
    }
    answer = PyLong_FromSsize_t(first.rows + second.rows);
    goto release;
done:
    Py_XINCREF(answer);
release:
    PyBuffer_Release(&first.view);
    PyBuffer_Release(&second.view);
    PyBuffer_Release(&dest.view);
    return answer;
}

static PyMethodDef index_merge_functions[] = {
    {"index_merge", (PyCFunction)(void (*)(void))index_merge, METH_FASTCALL,
     "index_merge(first, second, dest) -> rows written, or NotImplemented (see index_merge.c)"},
    {NULL}
};

int
index_merge_add_to_module(PyObject *module)
{
    return PyModule_AddFunctions(module, index_merge_functions);
}
