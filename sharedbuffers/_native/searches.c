/*
 * searches.c: searches inside stored values, answered in one C call each (part of
 * sharedbuffers._native._objects).
 *
 *   object_index_find(buffer, offset, key)
 *       the value of a key in an object id mapper lying in a buffer: a dict's key index
 *       (FORMAT.md §4.6, §8.4), read by proxied_dict and ObjectIndexView.
 *   numbers_contain(buffer, offset, item)
 *       whether a sorted numeric array holds an item: a proxied frozenset of numbers (§4.5).
 *
 * Why: in Python, each probe of these binary searches was a method call, a struct call and,
 * for keys, an RTTI decode; a lookup in a 10,000-entry dict took 15 µs, membership in a set of
 * 333,000 ints 13 µs.  Each answers what the Python code would, or NotImplemented for the cases
 * it leaves to that code (keys stable_hash.c does not hash, stored keys values.c does not
 * decode, items of another kind than the array's, headers it does not read), which then give
 * their values or errors there.
 */
#include "objects.h"

/* Whether the stored key `key_offset` bytes from the object id mapper at `mapper_offset` of
 * `buffer` (`size` bytes) equals `key`: Python's ==, stored key on the left, as the Python
 * methods compare.  KEY_FOR_PYTHON when the Python method must decide (a key offset outside
 * the buffer, a stored key values.c does not decode, an exception in ==); KEY_ERROR with a
 * non-Exception error set. */
int
stored_key_equals(PyObject *buffer, uint64_t size, uint64_t mapper_offset, int64_t key_offset, PyObject *key)
{
    PyObject *stored, *equal;
    int matches;

    if (key_offset == 1)
        stored = Py_NewRef(Py_None);
    else {
        if (key_offset >= 0 ? (uint64_t)key_offset >= size - mapper_offset
                            : (uint64_t)-(key_offset + 1) >= mapper_offset)
            return KEY_FOR_PYTHON;
        stored = decode_value(buffer, (Py_ssize_t)(mapper_offset + (uint64_t)key_offset), VALUE_RTTI);
        if (stored == NULL)
            return KEY_ERROR;
        if (stored == NOT_HANDLED)
            return KEY_FOR_PYTHON;
    }
    equal = PyObject_RichCompare(stored, key, Py_EQ);
    Py_DECREF(stored);
    matches = equal != NULL ? PyObject_IsTrue(equal) : -1;
    Py_XDECREF(equal);
    if (matches < 0) {
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            return KEY_ERROR;
        PyErr_Clear();              /* the Python method raises it again */
        return KEY_FOR_PYTHON;
    }
    return matches ? KEY_EQUALS : KEY_DIFFERS;
}

/* -- object_index_find ------------------------------------------------------------------- */

/* object_index_find(buffer, offset, key): the value of `key` in the object id mapper at `offset`
 * (a dict's key index, FORMAT.md §8.4), None when it holds no equal key, NotImplemented when the
 * Python method must answer.  As ObjectIndexView.get: the first row of the key's stable hash
 * whose stored key equals it.  No handle is kept: a dict's index is read where it lies, once. */
static PyObject *
object_index_find(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    const unsigned char *data;
    uint64_t size, offset, count, index_position, index, hash, low, high;
    Py_ssize_t signed_offset;
    PyObject *answer = Py_NotImplemented;
    int status;

    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "object_index_find(buffer, offset, key) takes 3 arguments, not %zd", nargs);
        return NULL;
    }
    status = stable_hash_of(args[2], &hash);
    if (status != 0)
        return status < 0 ? NULL : Py_NewRef(Py_NotImplemented);
    signed_offset = PyLong_Check(args[1]) ? PyLong_AsSsize_t(args[1]) : -1;
    if (signed_offset < 0) {
        PyErr_Clear();
        return Py_NewRef(Py_NotImplemented);
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            return NULL;
        PyErr_Clear();
        return Py_NewRef(Py_NotImplemented);
    }
    data = (const unsigned char *)view.buf;
    size = (uint64_t)view.len;
    offset = (uint64_t)signed_offset;
    if (offset > size || size - offset < 16)
        goto done;
    count = load_u64(data + offset);
    index_position = load_u64(data + offset + 8);
    if (index_position < 16 || index_position > size - offset)
        goto done;
    index = offset + index_position;
    if (count > (size - index) / 24)
        goto done;
    low = 0;
    high = count;
    while (low < high) {                            /* the first row of hash >= the key's */
        uint64_t middle = low + (high - low) / 2;
        if (load_u64(data + index + 24 * middle) < hash)
            low = middle + 1;
        else
            high = middle;
    }
    answer = Py_None;
    for (; low < count && load_u64(data + index + 24 * low) == hash; low++) {
        const unsigned char *row = data + index + 24 * low;
        int equals = stored_key_equals(args[0], size, offset, load_i64(row + 8), args[2]);
        if (equals == KEY_ERROR) {
            PyBuffer_Release(&view);
            return NULL;
        }
        if (equals == KEY_FOR_PYTHON) {
            answer = Py_NotImplemented;
            break;
        }
        if (equals == KEY_EQUALS) {
            answer = PyLong_FromUnsignedLongLong(load_u64(row + 16));
            PyBuffer_Release(&view);
            return answer;
        }
    }
done:
    PyBuffer_Release(&view);
    return Py_NewRef(answer);
}

/* -- numbers_contain ---------------------------------------------------------------------- */

/* The number at `p` of integer code `code`, as int64 (every code but 'Q') or uint64 ('Q'). */
static inline int64_t
signed_number(char code, const unsigned char *p)
{
    switch (code) {
    case 'b': return (int8_t)p[0];
    case 'B': return p[0];
    case 'h': { int16_t v; memcpy(&v, p, 2); return v; }
    case 'H': return load_u16(p);
    case 'i': { int32_t v; memcpy(&v, p, 4); return v; }
    case 'I': return load_u32(p);
    default: return load_i64(p);
    }
}

static inline double
float_number(char code, const unsigned char *p)
{
    if (code == 'f') {
        float v;
        memcpy(&v, p, 4);
        return v;
    }
    else {
        double v;
        memcpy(&v, p, 8);
        return v;
    }
}

/* bisect_left over `count` numbers read by `read(i)` for `wanted`, then whether number `low`
 * equals it: the steps of Python's bisect_left and ==, on C numbers of one type. */
#define SORTED_NUMBERS_HOLD(count, read, wanted, result) do {      \
        Py_ssize_t low_ = 0, high_ = (count);                      \
        while (low_ < high_) {                                     \
            Py_ssize_t i = low_ + (high_ - low_) / 2;              \
            if ((read) < (wanted))                                 \
                low_ = i + 1;                                      \
            else                                                   \
                high_ = i;                                         \
        }                                                          \
        {                                                          \
            Py_ssize_t i = low_;                                   \
            (result) = low_ < (count) && (read) == (wanted);       \
        }                                                          \
    } while (0)

/* numbers_contain(buffer, offset, item): whether the sorted numeric array whose sequence header
 * is at `offset` (a proxied frozenset's, FORMAT.md §4.5) holds `item`, by bisect_left and ==
 * exactly as proxied_frozenset's Python code does; NotImplemented for the cases that code must
 * answer (an item that is not an exact int for an integer array or an exact float for a float
 * array, a header this function does not read). */
static PyObject *
numbers_contain(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    ByteSpan span;
    Py_ssize_t offset, length, data, size;
    PyObject *item, *answer = Py_NotImplemented;
    const unsigned char *numbers;
    char code;
    int found;

    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "numbers_contain(buffer, offset, item) takes 3 arguments, not %zd", nargs);
        return NULL;
    }
    item = args[2];
    offset = PyLong_Check(args[1]) ? PyLong_AsSsize_t(args[1]) : -1;
    if (offset < 0) {
        PyErr_Clear();
        return Py_NewRef(Py_NotImplemented);
    }
    if (span_open(args[0], &span) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            return NULL;
        PyErr_Clear();
        return Py_NewRef(Py_NotImplemented);
    }
    if (numeric_layout(&span, offset, &code, &length, &data) < 0)
        goto done;
    size = code_size(code);
    numbers = span.data + data;
    if (code == 'd' || code == 'f') {
        double wanted;
        if (!PyFloat_CheckExact(item))
            goto done;
        wanted = PyFloat_AS_DOUBLE(item);
        SORTED_NUMBERS_HOLD(length, float_number(code, numbers + i * size), wanted, found);
    }
    else {
        int overflow;
        long long wanted;
        if (!PyLong_CheckExact(item))
            goto done;
        wanted = PyLong_AsLongLongAndOverflow(item, &overflow);
        if (wanted == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            goto done;
        }
        if (code != 'Q') {
            found = 0;      /* beyond int64: no int64 equals it */
            if (!overflow)
                SORTED_NUMBERS_HOLD(length, signed_number(code, numbers + i * size), wanted, found);
        }
        else if (overflow < 0 || (overflow == 0 && wanted < 0))
            found = 0;      /* below every uint64 */
        else {
            unsigned long long unsigned_wanted = overflow ? PyLong_AsUnsignedLongLong(item)
                                                          : (unsigned long long)wanted;
            found = 0;
            if (unsigned_wanted == (unsigned long long)-1 && PyErr_Occurred())
                PyErr_Clear();          /* above every uint64 */
            else
                SORTED_NUMBERS_HOLD(length, load_u64(numbers + i * size), unsigned_wanted, found);
        }
    }
    answer = found ? Py_True : Py_False;
done:
    span_close(&span);
    return Py_NewRef(answer);
}

static PyMethodDef searches_functions[] = {
    {"object_index_find", (PyCFunction)(void (*)(void))object_index_find, METH_FASTCALL,
     "object_index_find(buffer, offset, key) -> value, None (missing) or NotImplemented (for Python)"},
    {"numbers_contain", (PyCFunction)(void (*)(void))numbers_contain, METH_FASTCALL,
     "numbers_contain(buffer, offset, item) -> whether a sorted numeric array holds item, or NotImplemented"},
    {NULL}
};

int
searches_add_to_module(PyObject *module)
{
    return PyModule_AddFunctions(module, searches_functions);
}
