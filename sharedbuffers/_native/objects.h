/*
 * Shared by the parts of sharedbuffers._native._objects: bounds-checked reads of buffers and
 * the struct codes of fixed-size numbers.
 */
#ifndef SHAREDBUFFERS_OBJECTS_H
#define SHAREDBUFFERS_OBJECTS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

/* -- reading the buffer ------------------------------------------------------------------ */

/* The bytes of a buffer object: bytes are read in place, anything else through the buffer
 * protocol (which refuses a released memoryview, a closed mmap...). */
typedef struct {
    const unsigned char *data;
    Py_ssize_t size;
    Py_buffer view;
    int has_view;
} ByteSpan;

static inline int
span_open(PyObject *buffer, ByteSpan *span)
{
    if (PyBytes_CheckExact(buffer)) {
        span->data = (const unsigned char *)PyBytes_AS_STRING(buffer);
        span->size = PyBytes_GET_SIZE(buffer);
        span->has_view = 0;
        return 0;
    }
    if (PyMemoryView_Check(buffer)) {
        /* A live C-contiguous view is read through its own buffer description, without a new
         * export: the caller holds a reference and the GIL, so it cannot be released meanwhile. */
        PyMemoryViewObject *memory = (PyMemoryViewObject *)buffer;
        if (!(memory->flags & _Py_MEMORYVIEW_RELEASED) && (memory->flags & _Py_MEMORYVIEW_C)
                && memory->view.buf != NULL) {
            span->data = (const unsigned char *)memory->view.buf;
            span->size = memory->view.len;
            span->has_view = 0;
            return 0;
        }
    }
    if (PyObject_GetBuffer(buffer, &span->view, PyBUF_SIMPLE) < 0)
        return -1;
    span->data = (const unsigned char *)span->view.buf;
    span->size = span->view.len;
    span->has_view = 1;
    return 0;
}

static inline void
span_close(ByteSpan *span)
{
    if (span->has_view) {
        PyBuffer_Release(&span->view);
        span->has_view = 0;
    }
}

/* True when [position, position + length) lies inside a buffer of `size` bytes. */
static inline int
in_bounds(Py_ssize_t position, Py_ssize_t length, Py_ssize_t size)
{
    return position >= 0 && length >= 0 && length <= size && position <= size - length;
}

static inline uint16_t load_u16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t load_u32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t load_u64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline int64_t load_i64(const unsigned char *p) { int64_t v; memcpy(&v, p, 8); return v; }

/* Size of one value of a struct code (standard sizes, as struct's '=' mode), 0 if unknown. */
static inline Py_ssize_t
code_size(char code)
{
    switch (code) {
    case 'b': case 'B': case '?': return 1;
    case 'h': case 'H': return 2;
    case 'i': case 'I': case 'f': return 4;
    case 'q': case 'Q': case 'd': return 8;
    default: return 0;
    }
}

/* The Python value of one number of struct code `code` at p (as struct.unpack_from('=' code)). */
static inline PyObject *
decode_number(char code, const unsigned char *p)
{
    switch (code) {
    case 'b': return PyLong_FromLong((long)(int8_t)p[0]);
    case 'B': return PyLong_FromLong((long)p[0]);
    case '?': return PyBool_FromLong(p[0] != 0);
    case 'h': { int16_t v; memcpy(&v, p, 2); return PyLong_FromLong(v); }
    case 'H': return PyLong_FromLong(load_u16(p));
    case 'i': { int32_t v; memcpy(&v, p, 4); return PyLong_FromLong(v); }
    case 'I': return PyLong_FromUnsignedLong(load_u32(p));
    case 'q': return PyLong_FromLongLong(load_i64(p));
    case 'Q': return PyLong_FromUnsignedLongLong(load_u64(p));
    case 'f': { float v; memcpy(&v, p, 4); return PyFloat_FromDouble((double)v); }
    case 'd': { double v; memcpy(&v, p, 8); return PyFloat_FromDouble(v); }
    default:
        PyErr_Format(PyExc_SystemError, "sharedbuffers: unknown struct code %c", code);
        return NULL;
    }
}

/* The struct code ('b' 'B' 'h' 'H' 'i' 'I' 'q' 'Q' 'f' 'd') of a buffer of native numbers, or 0
 * for any other format.  numpy describes int64 as 'l' (a C long) and intp as 'n'. */
static inline char
native_number_code(const Py_buffer *view)
{
    const char *format = view->format;
    char code;

    if (format == NULL)
        return 0;
    if (format[0] == '@')
        format++;
    if (format[0] == '\0' || format[1] != '\0')
        return 0;
    code = format[0];
    if (code == 'l' || code == 'n')
        code = view->itemsize == 8 ? 'q' : view->itemsize == 4 ? 'i' : 0;
    else if (code == 'L' || code == 'N')
        code = view->itemsize == 8 ? 'Q' : view->itemsize == 4 ? 'I' : 0;
    if (code == 0 || strchr("bBhHiIqQfd", code) == NULL || code_size(code) != view->itemsize)
        return 0;
    return code;
}

/* instance.<name> when it is exactly of `type` (a new reference), else NULL: with no error set
 * when the attribute is missing or of another type (the caller's Python method then decides),
 * with the error set when looking it up failed otherwise. */
static inline PyObject *
own_attribute(PyObject *instance, PyObject *name, PyTypeObject *type)
{
    PyObject *value = PyObject_GenericGetAttr(instance, name);
    if (value == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError))
            PyErr_Clear();
        return NULL;
    }
    if (Py_IS_TYPE(value, type))
        return value;
    Py_DECREF(value);
    return NULL;
}

/* The referent of a weak reference as a new reference, or NULL (no error set) once it is gone. */
static inline PyObject *
referent(PyObject *reference)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *object;
    if (PyWeakref_GetRef(reference, &object) < 0) {
        PyErr_Clear();
        return NULL;
    }
    return object;
#else
    PyObject *object = PyWeakref_GET_OBJECT(reference);
    return object == Py_None ? NULL : Py_NewRef(object);
#endif
}

/* The C parts (`_items`, `_keys`, `_values`) of the instance a method descriptor served last,
 * so that a loop over one container looks them up once, not on every call.  Every reference is
 * weak: the cache keeps nothing alive.  An entry is used only while the instance is the same
 * living object and its parts are alive; closing a container drops its parts, so the cache then
 * misses and the method looks them up (and, finding none, runs the Python method). */
#define PARTS_MAX 2

typedef struct {
    PyObject *instance;             /* weak reference to the instance, or NULL */
    PyObject *parts[PARTS_MAX];     /* weak references to its parts */
} PartsCache;

/* 1 with `count` new references in parts[] when the cache holds `instance`, else 0. */
static inline int
parts_cache_get(PartsCache *cache, PyObject *instance, int count, PyObject **parts)
{
    PyObject *cached;
    int i;

    if (cache->instance == NULL)
        return 0;
    cached = referent(cache->instance);
    Py_XDECREF(cached);             /* only compared: the caller holds `instance` */
    if (cached != instance)
        return 0;
    for (i = 0; i < count; i++) {
        if ((parts[i] = referent(cache->parts[i])) == NULL) {
            while (i-- > 0)
                Py_DECREF(parts[i]);
            return 0;
        }
    }
    return 1;
}

static inline void
parts_cache_clear(PartsCache *cache)
{
    int i;
    Py_CLEAR(cache->instance);
    for (i = 0; i < PARTS_MAX; i++)
        Py_CLEAR(cache->parts[i]);
}

/* Remembers `instance` and its parts (nothing when they cannot be weakly referenced). */
static inline void
parts_cache_set(PartsCache *cache, PyObject *instance, int count, PyObject **parts)
{
    int i;

    parts_cache_clear(cache);
    cache->instance = PyWeakref_NewRef(instance, NULL);
    for (i = 0; i < count && cache->instance != NULL; i++)
        if ((cache->parts[i] = PyWeakref_NewRef(parts[i], NULL)) == NULL)
            parts_cache_clear(cache);
    if (cache->instance == NULL)
        PyErr_Clear();
}

/* Each part adds its types and functions to the module. */
int proxies_add_to_module(PyObject *module);
int items_add_to_module(PyObject *module);
int encoders_add_to_module(PyObject *module);
int lookups_add_to_module(PyObject *module);
int values_add_to_module(PyObject *module);
int stable_hash_add_to_module(PyObject *module);
int searches_add_to_module(PyObject *module);
int number_runs_add_to_module(PyObject *module);
int index_merge_add_to_module(PyObject *module);
int schema_pickle_add_to_module(PyObject *module);
int live_proxies_add_to_module(PyObject *module);
int deferred_add_to_module(PyObject *module);

/* proxies.c: unpack(buffer, offset) from C, `offset_object` being the int `offset` (>= 0). */
PyObject *snapshot_unpack(PyObject *unpack, PyObject *buffer, PyObject *offset_object, Py_ssize_t offset);

/* live_proxies.c: live proxies over writable buffers (see there). */
int is_live_maker(PyObject *object);
PyObject *live_make(PyObject *maker, PyObject *buffer, PyObject *offset);

/* values.c: decoders of stored values.  Each returns a new reference, or NOT_HANDLED when the
 * value is one for the Python reader (bad data included: it raises the error that names it). */
#define NOT_HANDLED ((PyObject *)1)
enum value_kind { VALUE_RTTI, VALUE_LIST, VALUE_TUPLE, VALUE_SET, VALUE_DICT };
PyObject *decode_short_string(const ByteSpan *span, Py_ssize_t position, int as_str);
int numeric_layout(const ByteSpan *span, Py_ssize_t position, char *code, Py_ssize_t *length,
                   Py_ssize_t *data);
PyObject *decode_numeric_sequence(const ByteSpan *span, Py_ssize_t position, int as_tuple);
PyObject *decode_numeric_frozenset(const ByteSpan *span, Py_ssize_t position);
/* Any stored value of `kind` at `position` of `buffer`; NULL only for a non-Exception error. */
PyObject *decode_value(PyObject *buffer, Py_ssize_t position, int kind);

/* stable_hash.c: 0 with *hash set, 1 when the Python function must hash `key` (no error set),
 * -1 for a non-Exception error. */
int stable_hash_of(PyObject *key, uint64_t *hash);

/* searches.c: a stored key of an object id mapper compared with a key (see there); lookups.c's
 * object mappers use it too. */
enum { KEY_DIFFERS = 0, KEY_EQUALS = 1, KEY_FOR_PYTHON = 2, KEY_ERROR = -1 };
int stored_key_equals(PyObject *buffer, uint64_t size, uint64_t mapper_offset, int64_t key_offset, PyObject *key);

/* items.c, for the mapping lookups of lookups.c */
extern PyTypeObject ItemSequence_Type;
Py_ssize_t item_count(PyObject *items);
PyObject *item_proxy(PyObject *items, Py_ssize_t number);
const void *item_index_address(PyObject *items);

#endif
