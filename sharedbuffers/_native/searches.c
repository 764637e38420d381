/*
 * searches.c: searches inside stored values, answered in one C call each (part of
 * sharedbuffers._native._objects).
 *
 *   object_index_find(buffer, offset, key)
 *       the value of a key in an object id mapper lying in a buffer: a dict's key index
 *       (FORMAT.md §4.6, §8.4), read by proxied_dict and ObjectIndexView.
 *   numbers_contain(buffer, offset, item)
 *       whether a sorted numeric array holds an item: a proxied frozenset of numbers (§4.5).
 *   numbers_bisect(array, item, hint, contains)
 *       bisect_left of a number in a sorted 1-D numpy array (or any buffer of numbers), from a
 *       hint when one is given, or whether the array holds it: sorted_search.bsearch and kin.
 *
 * Why: in Python, each probe of these binary searches was a method call, a struct call and,
 * for keys, an RTTI decode; a lookup in a 10,000-entry dict took 15 µs, membership in a set of
 * 333,000 ints 13 µs.  Each answers what the Python code would, or NotImplemented for the cases
 * it leaves to that code (keys stable_hash.c does not hash, stored keys values.c does not
 * decode, items of another kind than the array's, headers it does not read), which then give
 * their values or errors there.
 */
#include "objects.h"
#include <math.h>

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


/* -- numbers_bisect ----------------------------------------------------------------------- */

/* What a probe compares elements with: the item as a number of the array's kind. */
typedef struct {
    char kind;                      /* 's' int64-readable codes, 'u' uint64, 'f' float/double */
    char code;                      /* struct code of the elements */
    int64_t signed_wanted;
    uint64_t unsigned_wanted;
    double float_wanted;
    int wanted_is_nan;
    int integral;                   /* the item equals the wanted value (a float item may not) */
} Probe;

/* Whether the element at `p` sorts before the item, in numpy's order (NaN last). */
static inline int
sorts_before(const Probe *probe, const unsigned char *p)
{
    switch (probe->kind) {
    case 's':
        return signed_number(probe->code, p) < probe->signed_wanted;
    case 'u':
        return load_u64(p) < probe->unsigned_wanted;
    default: {
        double element = float_number(probe->code, p);
        if (probe->wanted_is_nan)
            return !isnan(element);
        return element < probe->float_wanted;
    }
    }
}

/* 1 with *probe set, 0 when every element sorts before the item (*all = 1) or none does
 * (*all = 0), -1 when the Python code must answer (the item is not an int or a float the C
 * comparison is exact for). */
static int
make_probe(char code, PyObject *item, Probe *probe, int *all)
{
    probe->code = code;
    probe->wanted_is_nan = 0;
    probe->integral = 1;
    if (code == 'f' || code == 'd') {
        probe->kind = 'f';
        if (PyFloat_Check(item))
            probe->float_wanted = PyFloat_AS_DOUBLE(item);
        else if (PyLong_Check(item)) {
            int overflow;
            long long value = PyLong_AsLongLongAndOverflow(item, &overflow);
            if (overflow || value > (1LL << 53) || value < -(1LL << 53)) {
                PyErr_Clear();
                return -1;          /* not exact as a double */
            }
            probe->float_wanted = (double)value;
        }
        else
            return -1;
        probe->wanted_is_nan = isnan(probe->float_wanted);
        return 1;
    }
    if (PyFloat_Check(item)) {
        double value = PyFloat_AS_DOUBLE(item);
        if (isnan(value) || value >= 18446744073709551616.0) {
            *all = 1;
            return 0;
        }
        probe->integral = ceil(value) == value;
        value = ceil(value);        /* an integer element is below x exactly when below ceil(x) */
        if (value < -9223372036854775808.0) {
            *all = 0;
            return 0;
        }
        if (code == 'Q') {
            if (value < 0) {
                *all = 0;
                return 0;
            }
            probe->kind = 'u';
            probe->unsigned_wanted = (uint64_t)value;
            return 1;
        }
        if (value >= 9223372036854775808.0) {
            *all = 1;
            return 0;
        }
        probe->kind = 's';
        probe->signed_wanted = (int64_t)value;
        return 1;
    }
    if (PyLong_Check(item)) {
        int overflow;
        long long value = PyLong_AsLongLongAndOverflow(item, &overflow);
        if (value == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return -1;
        }
        if (overflow < 0 || (code == 'Q' && overflow == 0 && value < 0)) {
            *all = 0;
            return 0;
        }
        if (code != 'Q') {
            if (overflow > 0) {
                *all = 1;
                return 0;
            }
            probe->kind = 's';
            probe->signed_wanted = value;
            return 1;
        }
        probe->kind = 'u';
        if (overflow) {
            unsigned long long big = PyLong_AsUnsignedLongLong(item);
            if (big == (unsigned long long)-1 && PyErr_Occurred()) {
                PyErr_Clear();      /* beyond uint64 */
                *all = 1;
                return 0;
            }
            probe->unsigned_wanted = big;
        }
        else
            probe->unsigned_wanted = (uint64_t)value;
        return 1;
    }
    return -1;
}

/* The first of elements [low, high) that does not sort before the item (high if none). */
static Py_ssize_t
bisect_elements(const Probe *probe, const unsigned char *first, Py_ssize_t stride, Py_ssize_t low,
                Py_ssize_t high)
{
    while (low < high) {
        Py_ssize_t middle = low + (high - low) / 2;
        if (sorts_before(probe, first + middle * stride))
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

/* The same answer, found by galloping from `hint` (0 <= hint < count) to bracket it first. */
static Py_ssize_t
gallop_elements(const Probe *probe, const unsigned char *first, Py_ssize_t stride, Py_ssize_t count,
                Py_ssize_t hint)
{
    Py_ssize_t low, high, step = 1;

    if (!sorts_before(probe, first + hint * stride)) {
        high = hint;                /* at most the hint: gallop down */
        while (high > 0) {
            low = high > step ? high - step : 0;
            if (sorts_before(probe, first + low * stride))
                return bisect_elements(probe, first, stride, low + 1, high);
            high = low;
            step *= 2;
        }
        return 0;
    }
    low = hint + 1;                 /* above the hint: gallop up */
    while (low < count) {
        high = count - low > step ? low + step : count;
        if (!sorts_before(probe, first + (high - 1) * stride))
            return bisect_elements(probe, first, stride, low, high - 1);
        low = high;
        step *= 2;
    }
    return count;
}

/* Whether the element at `p` equals the item the probe was made of. */
static inline int
equals_item(const Probe *probe, const unsigned char *p)
{
    if (!probe->integral)
        return 0;
    switch (probe->kind) {
    case 's':
        return signed_number(probe->code, p) == probe->signed_wanted;
    case 'u':
        return load_u64(p) == probe->unsigned_wanted;
    default:
        return float_number(probe->code, p) == probe->float_wanted;
    }
}

/* numbers_bisect(array, item, hint, contains): bisect_left of `item` in the sorted 1-D buffer
 * `array` (numpy's order: NaN last), galloping from `hint` unless it is None; with
 * `contains` true, whether the element there equals `item` instead.  NotImplemented for what
 * sorted_search's Python code must answer (other formats and dimensions, items that are not an
 * int or a float, ints a double cannot hold exactly against float arrays). */
static PyObject *
numbers_bisect(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Probe probe;
    Py_ssize_t hint, count, position;
    int all = 0, made, contains, found = 0;
    char code;

    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "numbers_bisect(array, item, hint, contains) takes 4 arguments, not %zd",
                     nargs);
        return NULL;
    }
    contains = PyObject_IsTrue(args[3]);
    if (contains < 0)
        return NULL;
    /* None: no hint (-1 below).  A negative hint, one beyond Py_ssize_t, or one that is not an
     * int is the Python code's to refuse or convert. */
    hint = args[2] == Py_None ? -1 : PyLong_Check(args[2]) ? PyLong_AsSsize_t(args[2]) : -2;
    if (hint == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return Py_NewRef(Py_NotImplemented);
    }
    if (hint < -1 || (hint == -1 && args[2] != Py_None)
            || PyObject_GetBuffer(args[0], &view, PyBUF_RECORDS_RO) < 0) {
        PyErr_Clear();
        return Py_NewRef(Py_NotImplemented);
    }
    code = view.ndim == 1 ? native_number_code(&view) : 0;
    made = code ? make_probe(code, args[1], &probe, &all) : -1;
    if (made < 0) {
        PyBuffer_Release(&view);
        return Py_NewRef(Py_NotImplemented);
    }
    count = view.shape[0];
    if (made == 0)
        position = all ? count : 0;
    else if (hint < 0 || count == 0)
        position = bisect_elements(&probe, view.buf, view.strides[0], 0, count);
    else
        position = gallop_elements(&probe, view.buf, view.strides[0], count, hint < count ? hint : count - 1);
    if (contains && made == 1 && position < count)
        found = equals_item(&probe, (const unsigned char *)view.buf + position * view.strides[0]);
    PyBuffer_Release(&view);
    if (contains)
        return PyBool_FromLong(found);
    return PyLong_FromSsize_t(position);
}

static PyMethodDef searches_functions[] = {
    {"object_index_find", (PyCFunction)(void (*)(void))object_index_find, METH_FASTCALL,
     "object_index_find(buffer, offset, key) -> value, None (missing) or NotImplemented (for Python)"},
    {"numbers_contain", (PyCFunction)(void (*)(void))numbers_contain, METH_FASTCALL,
     "numbers_contain(buffer, offset, item) -> whether a sorted numeric array holds item, or NotImplemented"},
    {"numbers_bisect", (PyCFunction)(void (*)(void))numbers_bisect, METH_FASTCALL,
     "numbers_bisect(array, item, hint, contains) -> bisect_left of item in a sorted 1-D buffer (or whether "
     "it holds item), or NotImplemented"},
    {NULL}
};

int
searches_add_to_module(PyObject *module)
{
    return PyModule_AddFunctions(module, searches_functions);
}
