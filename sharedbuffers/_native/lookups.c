/*
 * Single-key lookups of id mappers and mappings (part of sharedbuffers._native._objects).
 *
 * The search itself is the native kernel's (kernels.c: sb_idmap_get, sb_idmap_get_bytes).
 * Called through cffi, a lookup spends most of its time converting arguments and in the
 * Python method around the call; here the whole `mapper.get(key)` or `mapping[key]` is one C
 * call with no Python frame:
 *
 *   KeyLookup(buffer, mapper_offset, index_offset, count, columns, width, string_keys,
 *             directory_after=None, multi=False, hashed_keys=False, object_keys=False)
 *       the rows of one mapper (numeric: int keys; string: str keys, searched by their UTF-8
 *       bytes; hashed: the approximate mappers' numeric rows, searched by the xxh hash of a
 *       str key's UTF-8 or by an int key itself; object: an object id mapper's rows, searched
 *       by the stable hash of the key (stable_hash.c), stored keys decoded by values.c).  A multi mapper's lookup gives every value
 *       of the key, as a list in row order.  It holds a buffer export for its lifetime, as the cffi handle
 *       does, so the geometry, checked by the kernel when it is made, holds for every call.
 *       After `directory_after` lookups (None: count / 32, at least 1024) it builds a
 *       directory of the rows (kernels.h: sb_directory; 1 to 2 bytes per row of this process's
 *       memory, 4 MB at most; none for rows over 256 MB) that puts a key within a cache line or
 *       a few of its row: a process that looks up many keys pays one cache miss per search
 *       instead of several, and one that looks up a few keys pays nothing.
 *   KeyedMethod(kind, fallback)
 *       a method descriptor for the classes: `get`, `__getitem__`, `__contains__` of id
 *       mappers (the instance's `_keys`), and `get`, `__getitem__` of mappings (the instance's
 *       `_keys` and `_values`, an ItemSequence).  The common case (a key of the mapper's own
 *       type, found or missing) is answered here; every other case (other key types, values
 *       beyond 63 bits, compressed stored keys, corrupt data, instances without `_keys`) runs
 *       the Python `fallback`, which gives the pure-Python results and errors.  It remembers
 *       the last instance's parts (objects.h: PartsCache), so `m[key]` in a loop over one
 *       mapping looks them up once.
 *   BoundKeyed
 *       what `mapper.get` gives (a bound method, as for Python methods): it keeps weak
 *       references to the instance's `_keys` and `_values`, so a call skips looking them up,
 *       and the instance can still close (closing drops them; the bound method then runs the
 *       Python method, which says the mapper is closed).
 */
#include "objects.h"
#include "kernels.h"
#if PY_VERSION_HEX < 0x030B0000
#include <longintrepr.h>        /* int_key reads digits; 3.11 includes it with Python.h */
#endif

typedef struct {
    PyObject_HEAD
    Py_buffer view;
    sb_idmap map;
    int string_keys;
    int multi;                      /* every value of a key (a list), not the first */
    int hashed_keys;                /* numeric rows searched by the hash of a str key (approximate) */
    int object_keys;                /* rows (stable hash, key offset, value): an object id mapper */
    int usable;                     /* the rows lie in the buffer (checked once: the export pins it) */
    int directory_state;            /* DIRECTORY_COUNTING, _BUILT or _NONE */
    uint64_t lookups;               /* while counting */
    uint64_t directory_after;       /* lookups before the directory is built */
    uint32_t *directory_entries;
    uint64_t directory_capacity;
    sb_directory directory;
    PyObject *weakreflist;
} KeyLookup;

enum { DIRECTORY_COUNTING = 0, DIRECTORY_BUILT = 1, DIRECTORY_NONE = -1 };

static PyTypeObject KeyLookup_Type;

static PyObject *
keys_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"buffer", "mapper_offset", "index_offset", "count", "columns", "width",
                               "string_keys", "directory_after", "multi", "hashed_keys", "object_keys", NULL};
    PyObject *buffer, *after = Py_None;
    unsigned long long mapper_offset, index_offset, count, directory_after;
    unsigned int columns, width;
    int string_keys, multi = 0, hashed_keys = 0, object_keys = 0;
    KeyLookup *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OKKKIIp|Oppp:KeyLookup", keywords, &buffer, &mapper_offset,
                                     &index_offset, &count, &columns, &width, &string_keys, &after, &multi,
                                     &hashed_keys, &object_keys))
        return NULL;
    if (hashed_keys && (string_keys || !multi)) {
        PyErr_SetString(PyExc_ValueError, "hashed keys are those of approximate multi mappers: numeric rows");
        return NULL;
    }
    if (object_keys && (string_keys || hashed_keys || multi)) {
        PyErr_SetString(PyExc_ValueError, "object keys are those of object id mappers: single-valued");
        return NULL;
    }
    if (after == Py_None)
        directory_after = count / 32 > 1024 ? count / 32 : 1024;
    else if ((directory_after = PyLong_AsUnsignedLongLong(after)) == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if ((width != 4 && width != 8) || columns != (string_keys || object_keys ? 3u : 2u)) {
        PyErr_Format(PyExc_ValueError, "bad id mapper geometry: %u columns of %u bytes", columns, width);
        return NULL;
    }
    self = (KeyLookup *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    if (PyObject_GetBuffer(buffer, &self->view, PyBUF_SIMPLE) < 0) {
        self->view.obj = NULL;
        Py_DECREF(self);
        return NULL;
    }
    self->map.buf = self->view.buf;
    self->map.buflen = (uint64_t)self->view.len;
    self->map.mapper_offset = mapper_offset;
    self->map.index_offset = index_offset;
    self->map.count = count;
    self->map.columns = columns;
    self->map.width = width;
    self->string_keys = string_keys;
    self->multi = multi;
    self->hashed_keys = hashed_keys;
    self->object_keys = object_keys;
    /* Rows outside the buffer: every call defers, and the Python method raises its error. */
    self->usable = sb_idmap_check(&self->map) == 0;
    self->directory_state = DIRECTORY_COUNTING;
    self->directory_after = directory_after;
    return (PyObject *)self;
}

/* Builds the directory (see the top of this file); on failure (too few rows, rows out of order,
 * no memory) the searches go on without one. */
static void
keys_build_directory(KeyLookup *self)
{
    unsigned shift = 0;
    uint64_t capacity;
    uint32_t *entries;

    self->directory_state = DIRECTORY_NONE;
    if (!self->usable)
        return;
    capacity = sb_directory_entries(&self->map, &shift);
    if (capacity == 0 || capacity > (uint64_t)PY_SSIZE_T_MAX / sizeof(uint32_t))
        return;
    entries = PyMem_Malloc((size_t)capacity * sizeof(uint32_t));
    if (entries == NULL)
        return;
    if (sb_directory_build(&self->map, entries, capacity, shift, &self->directory) != 0) {
        PyMem_Free(entries);
        return;
    }
    self->directory_entries = entries;
    self->directory_capacity = capacity;
    self->directory_state = DIRECTORY_BUILT;
}

static const sb_directory *
keys_directory(KeyLookup *self)
{
    if (self->directory_state == DIRECTORY_BUILT)
        return &self->directory;
    if (self->directory_state == DIRECTORY_COUNTING && self->lookups++ >= self->directory_after) {
        keys_build_directory(self);
        if (self->directory_state == DIRECTORY_BUILT)
            return &self->directory;
    }
    return NULL;
}

static void
keys_dealloc(KeyLookup *self)
{
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    if (self->view.obj != NULL)
        PyBuffer_Release(&self->view);
    PyMem_Free(self->directory_entries);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
keys_make_directory(KeyLookup *self, PyObject *unused)
{
    if (self->directory_state == DIRECTORY_COUNTING)
        keys_build_directory(self);
    return PyBool_FromLong(self->directory_state == DIRECTORY_BUILT);
}

static PyObject *
keys_get_directory_bytes(KeyLookup *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->directory_state == DIRECTORY_BUILT
                                       ? self->directory_capacity * sizeof(uint32_t) : 0);
}

/* The stored key of `row` of a string mapper: str when it is UTF-8, else bytes; None (with
 * *deferred counted) for a row the Python method reads (a compressed key, or one outside the
 * buffer, whose read raises the error naming its offset). */
static PyObject *
row_stored_key(KeyLookup *self, uint64_t row, Py_ssize_t *deferred)
{
    const unsigned char *data = NULL;
    uint64_t length = 0;
    int rc = self->usable && row < self->map.count ? sb_idmap_row_key(&self->map, row, &data, &length) : -1;
    PyObject *key;

    if (rc != 0 || length > (uint64_t)PY_SSIZE_T_MAX) {
        (*deferred)++;
        return Py_NewRef(Py_None);
    }
    key = PyUnicode_DecodeUTF8((const char *)data, (Py_ssize_t)length, NULL);
    if (key == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();          /* a bytes key that is not UTF-8 comes back as bytes */
        key = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)length);
    }
    return key;
}

/* (key, value) of `row`; None (with *deferred counted) when its key is one for Python to read. */
static PyObject *
row_stored_item(KeyLookup *self, uint64_t row, Py_ssize_t *deferred)
{
    PyObject *key = row_stored_key(self, row, deferred), *value, *pair;

    if (key == NULL || key == Py_None)
        return key;
    value = PyLong_FromUnsignedLongLong(sb_idmap_cell(&self->map, (int64_t)(row * self->map.columns
                                                                             + self->map.columns - 1)));
    pair = value != NULL ? PyTuple_New(2) : NULL;
    if (pair == NULL) {
        Py_DECREF(key);
        Py_XDECREF(value);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, key);
    PyTuple_SET_ITEM(pair, 1, value);
    return pair;
}

/* The keys, or (key, value) items, of rows [start, end) (clamped to the mapper's) or of the rows
 * listed in `rows` (a list, or a 1-D array of int64/uint64): (list, deferred).  A row whose key is Python's to read is None (no value is
 * read for it either: in a mapper whose rows are not in its buffer, every row is). */
static PyObject *
read_rows(KeyLookup *self, PyObject *args, const char *name, int items)
{
    unsigned long long start = 0, end = 0, row;
    PyObject *rows = NULL, *result = NULL;
    Py_ssize_t count, number, deferred = 0;
    Py_buffer numbers;
    char numbers_code = 0;           /* 'q' or 'Q' while `numbers` holds an export of `rows` */

    if (!self->string_keys) {
        PyErr_Format(PyExc_TypeError, "%s: the mapper stores no keys (not a string mapper)", name);
        return NULL;
    }
    if (PyTuple_GET_SIZE(args) == 1) {
        rows = PyTuple_GET_ITEM(args, 0);
        if (PyList_Check(rows))
            count = PyList_GET_SIZE(rows);
        else if (PyObject_GetBuffer(rows, &numbers, PyBUF_RECORDS_RO) == 0) {
            /* a numpy array of row numbers (what argsort gives): read in place */
            numbers_code = numbers.ndim == 1 ? native_number_code(&numbers) : 0;
            if (numbers_code != 'q' && numbers_code != 'Q') {
                PyBuffer_Release(&numbers);
                PyErr_Format(PyExc_TypeError, "%s(rows) takes a list or a 1-D array of 64-bit row numbers", name);
                return NULL;
            }
            count = numbers.shape[0];
        }
        else {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s(rows) takes a list or a 1-D array of 64-bit row numbers", name);
            return NULL;
        }
    }
    else {
        if (!PyArg_ParseTuple(args, "KK", &start, &end))
            return NULL;
        if (end > self->map.count)
            end = self->map.count;
        if (start > end)
            start = end;
        if (end - start > (unsigned long long)PY_SSIZE_T_MAX)
            return PyErr_NoMemory();
        count = (Py_ssize_t)(end - start);
    }
    result = PyList_New(count);
    if (result == NULL)
        goto failed;
    for (number = 0; number < count; number++) {
        PyObject *read;
        if (numbers_code) {
            const unsigned char *cell = (const unsigned char *)numbers.buf + number * numbers.strides[0];
            if (numbers_code == 'q' && load_i64(cell) < 0) {
                PyErr_Format(PyExc_IndexError, "%s: row %lld of a mapper", name, (long long)load_i64(cell));
                goto failed;
            }
            row = load_u64(cell);
        }
        else if (rows != NULL) {
            row = PyLong_AsUnsignedLongLong(PyList_GET_ITEM(rows, number));
            if (row == (unsigned long long)-1 && PyErr_Occurred())
                goto failed;
        }
        else
            row = start + (unsigned long long)number;
        if (row >= self->map.count) {
            PyErr_Format(PyExc_IndexError, "%s: row %llu of a mapper of %llu rows", name, row,
                         (unsigned long long)self->map.count);
            goto failed;
        }
        read = items ? row_stored_item(self, row, &deferred) : row_stored_key(self, row, &deferred);
        if (read == NULL)
            goto failed;
        PyList_SET_ITEM(result, number, read);
    }
    if (numbers_code)
        PyBuffer_Release(&numbers);
    return Py_BuildValue("(Nn)", result, deferred);
failed:
    if (numbers_code)
        PyBuffer_Release(&numbers);
    Py_XDECREF(result);
    return NULL;
}

/* stored_keys(start, end) or stored_keys(rows) -> (keys, deferred) */
static PyObject *
keys_stored_keys(KeyLookup *self, PyObject *args)
{
    return read_rows(self, args, "stored_keys", 0);
}

/* stored_items(start, end) or stored_items(rows) -> (items, deferred) */
static PyObject *
keys_stored_items(KeyLookup *self, PyObject *args)
{
    return read_rows(self, args, "stored_items", 1);
}

static PyMethodDef keys_methods[] = {
    {"stored_keys", (PyCFunction)keys_stored_keys, METH_VARARGS,
     "stored_keys(start, end) or stored_keys(rows) -> (keys, deferred): the stored keys of rows "
     "[start, end) or of `rows` (a list, or an array of 64-bit row numbers), str when UTF-8, else bytes; None for the `deferred` rows "
     "Python must read."},
    {"stored_items", (PyCFunction)keys_stored_items, METH_VARARGS,
     "stored_items(start, end) or stored_items(rows) -> (items, deferred): (key, value) of those "
     "rows, keys as stored_keys gives them; None for the `deferred` rows Python must read."},
    {"make_directory", (PyCFunction)keys_make_directory, METH_NOARGS,
     "Build the directory now, not after enough lookups; True when there is one (none for unsorted "
     "or very small mappers)."},
    {NULL}
};

static PyGetSetDef keys_getset[] = {
    {"directory_bytes", (getter)keys_get_directory_bytes, NULL,
     "bytes of this process's memory the directory takes (0 while there is none)", NULL},
    {NULL}
};

static PyTypeObject KeyLookup_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sharedbuffers._native._objects.KeyLookup",
    .tp_basicsize = sizeof(KeyLookup),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The rows of a single-valued id mapper, searched by the native kernels.",
    .tp_new = keys_new,
    .tp_dealloc = (destructor)keys_dealloc,
    .tp_weaklistoffset = offsetof(KeyLookup, weakreflist),
    .tp_methods = keys_methods,
    .tp_getset = keys_getset,
};

/* 1 with *number set for an exact int of 0..2**64-1; 0 (no error set) for anything else:
 * negative or bigger ints and other types are the Python method's to answer. */
static int
int_key(PyObject *key, uint64_t *number)
{
    long long signed_number;
    int overflow;

    if (!PyLong_CheckExact(key))
        return 0;
#if PY_VERSION_HEX < 0x030C0000
    /* Up to 3.11 an int is its sign in ob_size and 30-bit digits: keys of up to two digits
     * (60 bits: ids, hashes of 40 bits) are read here, not through a call that checks for
     * overflow digit by digit.  3.12 changed the layout; there the call below does it all. */
    {
        Py_ssize_t digits = Py_SIZE(key);
        const digit *digit_values = ((PyLongObject *)key)->ob_digit;
        if (digits >= 0 && digits <= 2) {
            *number = digits == 0 ? 0 : digits == 1 ? (uint64_t)digit_values[0]
                      : (uint64_t)digit_values[0] | (uint64_t)digit_values[1] << PyLong_SHIFT;
            return 1;
        }
    }
#endif
    /* The signed conversion is the fast one; keys of 2**63 and up take the unsigned one. */
    signed_number = PyLong_AsLongLongAndOverflow(key, &overflow);
    if (overflow == 0 && signed_number >= 0) {
        *number = (uint64_t)signed_number;
        return 1;
    }
    if (overflow > 0) {
        unsigned long long big = PyLong_AsUnsignedLongLong(key);
        if (!(big == (unsigned long long)-1 && PyErr_Occurred())) {
            *number = big;
            return 1;
        }
    }
    PyErr_Clear();
    return 0;
}

#define SB_IDMAP_DEFER_ERROR (-100)    /* object_find: a non-Exception error is set */

/* An object id mapper's value for `key`: the value of the first row whose stored key equals it
 * among the rows of its stable hash, as the Python method finds it.  Like the Python method it
 * reads every row of that hash, so a corrupt stored key there gives the Python method's error
 * even after a match.  SB_IDMAP_DEFER for anything the Python method must answer: a key this
 * module does not hash, a stored key stored_key_equals leaves to Python, a value beyond 63 bits. */
static int64_t
object_find(KeyLookup *self, PyObject *key)
{
    uint64_t hash, start_row = 0;
    int64_t found = SB_IDMAP_MISSING;
    const sb_directory *directory;
    int status = stable_hash_of(key, &hash);

    if (status != 0)
        return status < 0 ? SB_IDMAP_DEFER_ERROR : SB_IDMAP_DEFER;
    directory = keys_directory(self);
    for (;;) {
        int64_t cell = sb_idmap_find_checked(&self->map, directory, hash, start_row);
        int equals;

        if (cell < 0)
            return cell == SB_IDMAP_MISSING ? found : SB_IDMAP_DEFER;
        start_row = (uint64_t)cell / 3 + 1;
        equals = stored_key_equals(self->view.obj, self->map.buflen, self->map.mapper_offset,
                                   (int64_t)sb_idmap_cell(&self->map, cell - 1), key);
        if (equals == KEY_ERROR)
            return SB_IDMAP_DEFER_ERROR;
        if (equals == KEY_FOR_PYTHON)
            return SB_IDMAP_DEFER;
        if (equals == KEY_EQUALS && found == SB_IDMAP_MISSING) {
            uint64_t value = sb_idmap_cell(&self->map, cell);
            if (value > (uint64_t)INT64_MAX)
                return SB_IDMAP_DEFER;
            found = (int64_t)value;
        }
    }
}

/* The kernel's result for `key` (a value >= 0, SB_IDMAP_MISSING or another status), or
 * SB_IDMAP_DEFER when the key is not of the mapper's own type (the fallback decides).  With
 * `values` (a mapping's ItemSequence, whose item the value numbers), string lookups prefetch
 * that item's index entry while the stored key is compared. */
static int64_t
keys_find(KeyLookup *self, PyObject *key, PyObject *values)
{
    if (!self->usable)
        return SB_IDMAP_DEFER;
    if (self->object_keys)
        return object_find(self, key);
    if (self->string_keys) {
        Py_ssize_t length;
        const char *data;
        const void *index = NULL;
        if (!PyUnicode_CheckExact(key))
            return SB_IDMAP_DEFER;
        data = PyUnicode_AsUTF8AndSize(key, &length);
        if (data == NULL) {
            PyErr_Clear();          /* lone surrogates: the Python method raises its error */
            return SB_IDMAP_DEFER;
        }
        if (values != NULL)
            index = item_index_address(values);
        return sb_idmap_get_bytes_checked(&self->map, keys_directory(self), data, (size_t)length, index,
                                          index != NULL ? (uint64_t)item_count(values) : 0);
    }
    else {
        uint64_t number;
        if (!int_key(key, &number))
            return SB_IDMAP_DEFER;  /* negative, beyond 64 bits, not an int: the Python method decides */
        return sb_idmap_get_checked(&self->map, keys_directory(self), number);
    }
}

/* -- KeyedMethod ------------------------------------------------------------------------- */

enum keyed_kind {
    MAPPER_GET = 0,
    MAPPER_GETITEM = 1,
    MAPPER_CONTAINS = 2,
    MAPPING_GET = 3,
    MAPPING_GETITEM = 4,
};

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fallback;
    int kind;
    PartsCache cache;               /* the last instance's _keys (and _values) */
} KeyedMethod;

static PyObject *keys_name, *values_name;      /* interned "_keys", "_values" */

#define NOT_ANSWERED ((PyObject *)1)

/* Every value of `key` in a multi mapper, in row order, as a new list (empty when the key is
 * missing); NOT_ANSWERED when the Python method must answer (a key of another type, a str without
 * UTF-8, a compressed stored key, corrupt rows); NULL on an error. */
static PyObject *
keys_find_all(KeyLookup *self, PyObject *key)
{
    const sb_directory *directory;
    const char *data = NULL;
    Py_ssize_t length = 0;
    uint64_t number = 0, start_row = 0;
    int64_t cell;
    PyObject *values;

    if (!self->usable)
        return NOT_ANSWERED;
    if (self->string_keys || (self->hashed_keys && PyUnicode_CheckExact(key))) {
        if (!PyUnicode_CheckExact(key))
            return NOT_ANSWERED;
        data = PyUnicode_AsUTF8AndSize(key, &length);
        if (data == NULL) {
            PyErr_Clear();
            return NOT_ANSWERED;
        }
        if (self->hashed_keys)
            number = self->map.width == 8 ? sb_xxh64(data, (size_t)length, 0) : sb_xxh32(data, (size_t)length, 0);
    }
    else if (!int_key(key, &number))
        return NOT_ANSWERED;
    directory = keys_directory(self);
    values = PyList_New(0);
    if (values == NULL)
        return NULL;
    for (;;) {
        PyObject *value;
        cell = self->string_keys
            ? sb_idmap_find_bytes_checked(&self->map, directory, data, (size_t)length, start_row)
            : sb_idmap_find_checked(&self->map, directory, number, start_row);
        if (cell < 0)
            break;
        value = PyLong_FromUnsignedLongLong(sb_idmap_cell(&self->map, cell));
        if (value == NULL || PyList_Append(values, value) < 0) {
            Py_XDECREF(value);
            Py_DECREF(values);
            return NULL;
        }
        Py_DECREF(value);
        start_row = (uint64_t)cell / self->map.columns + 1;
    }
    if (cell != SB_IDMAP_MISSING) {
        Py_DECREF(values);
        return NOT_ANSWERED;
    }
    return values;
}

/* A multi mapper's answer: the list of values (get, []), or whether there is one (in). */
static PyObject *
keyed_answer_all(int kind, KeyLookup *keys, PyObject *key, PyObject *default_value)
{
    PyObject *found = keys_find_all(keys, key), *answer;

    if (found == NULL || found == NOT_ANSWERED)
        return found;
    if (kind == MAPPER_CONTAINS)
        answer = PyBool_FromLong(PyList_GET_SIZE(found) > 0);
    else if (PyList_GET_SIZE(found) > 0)
        return found;
    else      /* missing: get's default; [] leaves the KeyError to the Python method */
        answer = kind == MAPPER_GET ? Py_NewRef(default_value) : NOT_ANSWERED;
    Py_DECREF(found);
    return answer;
}

/* The answer for `key` from these `keys` (and, for mappings, `values`), or NOT_ANSWERED. */
static PyObject *
keyed_answer_from(int kind, PyObject *keys, PyObject *values, PyObject *key, PyObject *default_value)
{
    PyObject *answer = NOT_ANSWERED;
    int64_t found;

    if (((KeyLookup *)keys)->multi) {
        if (kind != MAPPER_GET && kind != MAPPER_GETITEM && kind != MAPPER_CONTAINS)
            return NOT_ANSWERED;        /* multi mappings read their values in Python */
        return keyed_answer_all(kind, (KeyLookup *)keys, key, default_value);
    }
    found = keys_find((KeyLookup *)keys, key, values);

    if (found == SB_IDMAP_DEFER_ERROR)
        return NULL;
    if (found != SB_IDMAP_MISSING && found < 0)
        return NOT_ANSWERED;
    switch (kind) {
    case MAPPER_GET:
        answer = found >= 0 ? PyLong_FromLongLong(found) : Py_NewRef(default_value);
        break;
    case MAPPER_GETITEM:
        if (found >= 0)
            answer = PyLong_FromLongLong(found);
        break;
    case MAPPER_CONTAINS:
        answer = PyBool_FromLong(found >= 0);
        break;
    case MAPPING_GET:
    case MAPPING_GETITEM:
        if (found < 0) {
            if (kind == MAPPING_GET)
                answer = Py_NewRef(default_value);
        }
        else if (found < item_count(values))
            answer = item_proxy(values, (Py_ssize_t)found);
        break;
    }
    return answer;
}

static int
kind_uses_values(int kind)
{
    return kind == MAPPING_GET || kind == MAPPING_GETITEM;
}

/* The instance's `_keys` (and `_values` when the kind uses them) as new references: 1 when both
 * are there and of their C types, 0 when not (no error set), -1 on error. */
static int
keyed_parts(KeyedMethod *method, PyObject *instance, PyObject **keys, PyObject **values)
{
    int kind = method->kind, count = kind_uses_values(kind) ? 2 : 1;
    PyObject *parts[2];

    if (parts_cache_get(&method->cache, instance, count, parts)) {
        *keys = parts[0];
        *values = count == 2 ? parts[1] : NULL;
        return 1;
    }
    *values = NULL;
    *keys = own_attribute(instance, keys_name, &KeyLookup_Type);
    if (*keys == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (kind_uses_values(kind)) {
        *values = own_attribute(instance, values_name, &ItemSequence_Type);
        if (*values == NULL) {
            Py_CLEAR(*keys);
            return PyErr_Occurred() ? -1 : 0;
        }
    }
    parts[0] = *keys;
    parts[1] = *values;
    parts_cache_set(&method->cache, instance, count, parts);
    return 1;
}

static PyObject *
keyed_answer(KeyedMethod *self, PyObject *instance, PyObject *key, PyObject *default_value)
{
    PyObject *keys, *values, *answer;
    int found = keyed_parts(self, instance, &keys, &values);

    if (found <= 0)
        return found < 0 ? NULL : NOT_ANSWERED;
    answer = keyed_answer_from(self->kind, keys, values, key, default_value);
    Py_DECREF(keys);
    Py_XDECREF(values);
    return answer;
}

static int
keyed_arguments_fit(int kind, Py_ssize_t nargs, PyObject *kwnames)
{
    int takes_default = kind == MAPPER_GET || kind == MAPPING_GET;
    return kwnames == NULL && (nargs == 1 || (takes_default && nargs == 2));
}

static PyObject *
keyed_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    KeyedMethod *self = (KeyedMethod *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);

    if (nargs >= 1 && keyed_arguments_fit(self->kind, nargs - 1, kwnames)) {
        PyObject *answer = keyed_answer(self, args[0], args[1], nargs == 3 ? args[2] : Py_None);
        if (answer != NOT_ANSWERED)
            return answer;
    }
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

static PyObject *bound_new(KeyedMethod *method, PyObject *instance);

static PyObject *
keyed_get(PyObject *self, PyObject *instance, PyObject *owner)
{
    if (instance == NULL || instance == Py_None)
        return Py_NewRef(self);
    return bound_new((KeyedMethod *)self, instance);
}

static PyObject *
keyed_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"kind", "fallback", NULL};
    PyObject *fallback;
    int kind;
    KeyedMethod *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iO:KeyedMethod", keywords, &kind, &fallback))
        return NULL;
    if (kind < MAPPER_GET || kind > MAPPING_GETITEM) {
        PyErr_Format(PyExc_ValueError, "unknown keyed method kind %d", kind);
        return NULL;
    }
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "fallback must be callable");
        return NULL;
    }
    self = (KeyedMethod *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = keyed_vectorcall;
    self->fallback = Py_NewRef(fallback);
    self->kind = kind;
    return (PyObject *)self;
}

static int
keyed_traverse(KeyedMethod *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fallback);
    Py_VISIT(self->cache.instance);
    Py_VISIT(self->cache.parts[0]);
    Py_VISIT(self->cache.parts[1]);
    return 0;
}

static int
keyed_clear(KeyedMethod *self)
{
    Py_CLEAR(self->fallback);
    parts_cache_clear(&self->cache);
    return 0;
}

static void
keyed_dealloc(KeyedMethod *self)
{
    PyObject_GC_UnTrack(self);
    keyed_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
keyed_get_fallback(KeyedMethod *self, void *closure)
{
    return Py_NewRef(self->fallback);
}

static PyObject *
keyed_get_doc(KeyedMethod *self, void *closure)
{
    return PyObject_GetAttrString(self->fallback, "__doc__");
}

static PyGetSetDef keyed_getset[] = {
    {"fallback", (getter)keyed_get_fallback, NULL, "the Python method for the other cases", NULL},
    {"__wrapped__", (getter)keyed_get_fallback, NULL, "the Python method for the other cases", NULL},
    {"__doc__", (getter)keyed_get_doc, NULL, NULL, NULL},
    {NULL}
};

static PyTypeObject KeyedMethod_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sharedbuffers._native._objects.KeyedMethod",
    .tp_basicsize = sizeof(KeyedMethod),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
                | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_new = keyed_new,
    .tp_dealloc = (destructor)keyed_dealloc,
    .tp_traverse = (traverseproc)keyed_traverse,
    .tp_clear = (inquiry)keyed_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(KeyedMethod, vectorcall),
    .tp_descr_get = keyed_get,
    .tp_getset = keyed_getset,
};

/* -- BoundKeyed: `instance.get` ---------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    KeyedMethod *method;
    PyObject *instance;
    PyObject *keys_ref;             /* weak references to the instance's _keys and _values */
    PyObject *values_ref;           /* (NULL for the kinds without values) */
} BoundKeyed;

static PyTypeObject BoundKeyed_Type;

static PyObject *
bound_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    BoundKeyed *self = (BoundKeyed *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *answer = NOT_ANSWERED, *method;

    if (keyed_arguments_fit(self->method->kind, nargs, kwnames)) {
        PyObject *keys = referent(self->keys_ref), *values = NULL;
        if (keys != NULL && (self->values_ref == NULL || (values = referent(self->values_ref)) != NULL))
            answer = keyed_answer_from(self->method->kind, keys, values, args[0],
                                       nargs == 2 ? args[1] : Py_None);
        Py_XDECREF(keys);
        Py_XDECREF(values);
        if (answer != NOT_ANSWERED)
            return answer;
    }
    /* Every other case, and an instance whose lookups are gone (closed): the Python method. */
    method = PyMethod_New(self->method->fallback, self->instance);
    if (method == NULL)
        return NULL;
    answer = PyObject_Vectorcall(method, args, nargsf, kwnames);
    Py_DECREF(method);
    return answer;
}

/* A BoundKeyed, or a plain bound method when the instance has no C lookups (made without the C
 * module, or closed). */
static PyObject *
bound_new(KeyedMethod *method, PyObject *instance)
{
    PyObject *keys, *values;
    BoundKeyed *self;
    int found = keyed_parts(method, instance, &keys, &values);

    if (found < 0)
        return NULL;
    if (found == 0)
        return PyMethod_New((PyObject *)method, instance);
    self = PyObject_GC_New(BoundKeyed, &BoundKeyed_Type);
    if (self != NULL) {
        self->vectorcall = bound_vectorcall;
        self->method = (KeyedMethod *)Py_NewRef(method);
        self->instance = Py_NewRef(instance);
        self->keys_ref = PyWeakref_NewRef(keys, NULL);
        self->values_ref = values != NULL ? PyWeakref_NewRef(values, NULL) : NULL;
        PyObject_GC_Track(self);
        if (self->keys_ref == NULL || (values != NULL && self->values_ref == NULL))
            Py_CLEAR(self);
    }
    Py_DECREF(keys);
    Py_XDECREF(values);
    return (PyObject *)self;
}

static int
bound_traverse(BoundKeyed *self, visitproc visit, void *arg)
{
    Py_VISIT(self->method);
    Py_VISIT(self->instance);
    Py_VISIT(self->keys_ref);
    Py_VISIT(self->values_ref);
    return 0;
}

static int
bound_clear(BoundKeyed *self)
{
    Py_CLEAR(self->method);
    Py_CLEAR(self->instance);
    Py_CLEAR(self->keys_ref);
    Py_CLEAR(self->values_ref);
    return 0;
}

static void
bound_dealloc(BoundKeyed *self)
{
    PyObject_GC_UnTrack(self);
    bound_clear(self);
    PyObject_GC_Del(self);
}

static PyObject *
bound_get_self(BoundKeyed *self, void *closure)
{
    return Py_NewRef(self->instance);
}

static PyObject *
bound_get_func(BoundKeyed *self, void *closure)
{
    return Py_NewRef((PyObject *)self->method);
}

static PyObject *
bound_get_doc(BoundKeyed *self, void *closure)
{
    return PyObject_GetAttrString(self->method->fallback, "__doc__");
}

static PyObject *
bound_get_module(BoundKeyed *self, void *closure)
{
    return PyObject_GetAttrString(self->method->fallback, "__module__");
}

static PyObject *
bound_getattro(BoundKeyed *self, PyObject *name)
{
    /* __name__, __qualname__, __doc__, __module__...: the Python method's, as a bound method's are */
    PyObject *found = PyObject_GenericGetAttr((PyObject *)self, name);
    if (found != NULL || !PyErr_ExceptionMatches(PyExc_AttributeError))
        return found;
    PyErr_Clear();
    return PyObject_GetAttr(self->method->fallback, name);
}

static PyObject *
bound_repr(BoundKeyed *self)
{
    PyObject *name = PyObject_GetAttrString(self->method->fallback, "__qualname__"), *text;
    if (name == NULL)
        return NULL;
    text = PyUnicode_FromFormat("<bound method %U of %R>", name, self->instance);
    Py_DECREF(name);
    return text;
}

static PyObject *
bound_richcompare(BoundKeyed *self, PyObject *other, int op)
{
    int same;
    if ((op != Py_EQ && op != Py_NE) || !Py_IS_TYPE(other, &BoundKeyed_Type))
        Py_RETURN_NOTIMPLEMENTED;
    same = self->method == ((BoundKeyed *)other)->method && self->instance == ((BoundKeyed *)other)->instance;
    return PyBool_FromLong(op == Py_EQ ? same : !same);
}

static Py_hash_t
bound_hash(BoundKeyed *self)
{
    Py_hash_t hash = PyObject_Hash(self->instance);
    if (hash == -1)
        return -1;
    hash ^= (Py_hash_t)((uintptr_t)self->method >> 4);
    return hash == -1 ? -2 : hash;
}

static PyObject *
bound_reduce(BoundKeyed *self, PyObject *unused)
{
    /* as a bound method pickles: getattr(instance, name) */
    PyObject *builtins = PyEval_GetBuiltins(), *getattr_function, *name, *reduced;

    getattr_function = builtins != NULL ? PyDict_GetItemString(builtins, "getattr") : NULL;
    if (getattr_function == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "builtins.getattr is missing");
        return NULL;
    }
    name = PyObject_GetAttrString(self->method->fallback, "__name__");
    if (name == NULL)
        return NULL;
    reduced = Py_BuildValue("O(OO)", getattr_function, self->instance, name);
    Py_DECREF(name);
    return reduced;
}

static PyMethodDef bound_methods[] = {
    {"__reduce__", (PyCFunction)bound_reduce, METH_NOARGS, NULL},
    {NULL}
};

static PyGetSetDef bound_getset[] = {
    {"__self__", (getter)bound_get_self, NULL, "the instance", NULL},
    {"__func__", (getter)bound_get_func, NULL, "the method", NULL},
    {"__doc__", (getter)bound_get_doc, NULL, NULL, NULL},
    {"__module__", (getter)bound_get_module, NULL, NULL, NULL},
    {NULL}
};

static PyTypeObject BoundKeyed_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sharedbuffers._native._objects.BoundKeyed",
    .tp_basicsize = sizeof(BoundKeyed),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "A KeyedMethod bound to an instance: instance.get, instance.__getitem__, ...",
    .tp_dealloc = (destructor)bound_dealloc,
    .tp_traverse = (traverseproc)bound_traverse,
    .tp_clear = (inquiry)bound_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(BoundKeyed, vectorcall),
    .tp_getattro = (getattrofunc)bound_getattro,
    .tp_repr = (reprfunc)bound_repr,
    .tp_richcompare = (richcmpfunc)bound_richcompare,
    .tp_hash = (hashfunc)bound_hash,
    .tp_methods = bound_methods,
    .tp_getset = bound_getset,
};

int
lookups_add_to_module(PyObject *module)
{
    if (PyType_Ready(&KeyLookup_Type) < 0 || PyType_Ready(&KeyedMethod_Type) < 0
            || PyType_Ready(&BoundKeyed_Type) < 0)
        return -1;
    keys_name = PyUnicode_InternFromString("_keys");
    values_name = PyUnicode_InternFromString("_values");
    if (keys_name == NULL || values_name == NULL)
        return -1;
    if (PyModule_AddObjectRef(module, "KeyLookup", (PyObject *)&KeyLookup_Type) < 0
            || PyModule_AddObjectRef(module, "KeyedMethod", (PyObject *)&KeyedMethod_Type) < 0
            || PyModule_AddIntConstant(module, "MAPPER_GET", MAPPER_GET) < 0
            || PyModule_AddIntConstant(module, "MAPPER_GETITEM", MAPPER_GETITEM) < 0
            || PyModule_AddIntConstant(module, "MAPPER_CONTAINS", MAPPER_CONTAINS) < 0
            || PyModule_AddIntConstant(module, "MAPPING_GET", MAPPING_GET) < 0
            || PyModule_AddIntConstant(module, "MAPPING_GETITEM", MAPPING_GETITEM) < 0)
        return -1;
    return 0;
}
