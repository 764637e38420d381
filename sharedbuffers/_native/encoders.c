/*
 * Encoders of numeric lists, tuples and sets (part of sharedbuffers._native._objects).
 *
 *   encode_sequence(value) -> bytes or None
 *       A list or tuple of plain ints (or of plain floats) as FORMAT.md §4.4 stores it: the
 *       typecode byte, the length, the packed numbers, with the writer's choice of code (the
 *       first of B b H h i I q Q that holds every item; d for floats; the 8-byte-header code q
 *       for 16,777,215 or more narrow ints).  Padding is left to the caller, which knows the
 *       absolute position.
 *   encode_set(value) -> bytes or None
 *       A set or frozenset of plain ints as §4.5 stores it: the 'm'/'M' bitmap when every
 *       member is in 0..119, else the sorted numbers as encode_sequence encodes them.
 *
 * None means "not this case" (other element types, ints beyond 64 bits, subclasses): the
 * caller then runs the Python writer (types/sequences.py, types/sets.py), which these
 * functions reproduce byte for byte.
 */
#include "objects.h"

#define LONG_LENGTH 0xFFFFFF           /* narrow lengths at or above this use 8-byte headers */
#define SMALL_BITMAP 56
#define LARGE_BITMAP 120

/* The items of an int-only or float-only sequence, read once into C numbers. */
typedef struct {
    Py_ssize_t count;
    int floats;                         /* 1: doubles; 0: integers */
    int any_big;                        /* an int above INT64_MAX (stored in unsigned_values) */
    int any_negative;
    int64_t low;                        /* smallest signed value (when no big ones) */
    uint64_t high;                      /* largest value as unsigned (when none negative) */
    int64_t high_signed;
    uint64_t *values;                   /* raw 64-bit patterns: int64, uint64 or double */
} Numbers;

/* 1 when every item is a plain int fitting 64 bits (or every one a plain float), 0 when not
 * this case, -1 on a memory error. */
static int
numbers_read(PyObject *const *items, Py_ssize_t count, Numbers *numbers)
{
    Py_ssize_t i;

    memset(numbers, 0, sizeof(*numbers));
    numbers->count = count;
    numbers->low = INT64_MAX;
    numbers->high_signed = INT64_MIN;
    if (count == 0)
        return 1;
    numbers->floats = PyFloat_CheckExact(items[0]);
    numbers->values = PyMem_Malloc(sizeof(uint64_t) * (size_t)count);
    if (numbers->values == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (i = 0; i < count; i++) {
        PyObject *item = items[i];
        if (numbers->floats) {
            double value;
            if (!PyFloat_CheckExact(item))
                return 0;
            value = PyFloat_AS_DOUBLE(item);
            memcpy(&numbers->values[i], &value, 8);
            continue;
        }
        if (!PyLong_CheckExact(item))
            return 0;
        {
            int overflow;
            long long value = PyLong_AsLongLongAndOverflow(item, &overflow);
            if (overflow < 0)
                return 0;
            if (overflow > 0) {
                unsigned long long big = PyLong_AsUnsignedLongLong(item);
                if (big == (unsigned long long)-1 && PyErr_Occurred()) {
                    PyErr_Clear();      /* beyond 64 bits: the Python writer uses pointers */
                    return 0;
                }
                numbers->any_big = 1;
                numbers->values[i] = big;
                if (big > numbers->high)
                    numbers->high = big;
                continue;
            }
            numbers->values[i] = (uint64_t)value;
            if (value < 0)
                numbers->any_negative = 1;
            else if ((uint64_t)value > numbers->high)
                numbers->high = (uint64_t)value;
            if (value < numbers->low)
                numbers->low = value;
            if (value > numbers->high_signed)
                numbers->high_signed = value;
        }
    }
    return 1;
}

static void
numbers_free(Numbers *numbers)
{
    PyMem_Free(numbers->values);
    numbers->values = NULL;
}

/* The writer's typecode for these numbers (FORMAT.md §4.4), or 0 when none holds them all. */
static char
numbers_code(const Numbers *numbers)
{
    int64_t low, high;

    if (numbers->floats)
        return 'd';
    if (numbers->count == 0)
        return 'B';
    if (numbers->any_big)
        return numbers->any_negative ? 0 : 'Q';
    low = numbers->low;
    high = numbers->high_signed;
    if (low >= 0 && high <= 0xFF) return 'B';
    if (low >= -0x80 && high <= 0x7F) return 'b';
    if (low >= 0 && high <= 0xFFFF) return 'H';
    if (low >= -0x8000 && high <= 0x7FFF) return 'h';
    if (low >= INT32_MIN && high <= INT32_MAX) return 'i';
    if (low >= 0 && high <= (int64_t)UINT32_MAX) return 'I';
    return 'q';
}

static int
is_narrow_code(char code)
{
    return code == 'B' || code == 'b' || code == 'H' || code == 'h' || code == 'i' || code == 'I';
}

/* header + packed numbers, as the Python writer appends them. */
static PyObject *
numbers_encode(const Numbers *numbers)
{
    char code = numbers_code(numbers);
    Py_ssize_t count = numbers->count, header_size, item_size, i;
    PyObject *encoded;
    unsigned char *out;

    if (code == 0)
        Py_RETURN_NONE;
    if (is_narrow_code(code) && count >= LONG_LENGTH)
        code = 'q';
    header_size = is_narrow_code(code) ? 4 : 8;
    item_size = code_size(code);
    if (count > (PY_SSIZE_T_MAX - header_size) / item_size)
        return PyErr_NoMemory();
    encoded = PyBytes_FromStringAndSize(NULL, header_size + count * item_size);
    if (encoded == NULL)
        return NULL;
    out = (unsigned char *)PyBytes_AS_STRING(encoded);
    out[0] = (unsigned char)code;
    for (i = 1; i < header_size; i++)               /* the length, little-endian */
        out[i] = (unsigned char)(((uint64_t)count >> (8 * (i - 1))) & 0xFF);
    out += header_size;
    for (i = 0; i < count; i++, out += item_size) {
        uint64_t bits = numbers->values[i];
        switch (code) {
        case 'B': case 'b': { uint8_t v = (uint8_t)bits; memcpy(out, &v, 1); break; }
        case 'H': case 'h': { uint16_t v = (uint16_t)bits; memcpy(out, &v, 2); break; }
        case 'I': case 'i': { uint32_t v = (uint32_t)bits; memcpy(out, &v, 4); break; }
        default: memcpy(out, &bits, 8); break;      /* q, Q, d: the 64-bit pattern itself */
        }
    }
    return encoded;
}

static PyObject *
encode_sequence(PyObject *module, PyObject *value)
{
    Numbers numbers;
    PyObject *encoded;
    int status;

    if (!PyList_CheckExact(value) && !PyTuple_CheckExact(value))
        Py_RETURN_NONE;
    status = numbers_read(PySequence_Fast_ITEMS(value), PySequence_Fast_GET_SIZE(value), &numbers);
    if (status <= 0) {
        numbers_free(&numbers);
        if (status < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    encoded = numbers_encode(&numbers);
    numbers_free(&numbers);
    return encoded;
}

static int
compare_signed(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int
compare_unsigned(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static PyObject *
encode_set(PyObject *module, PyObject *value)
{
    PyObject *members, *encoded;
    Numbers numbers;
    int status;

    if (!PyFrozenSet_CheckExact(value) && !PyAnySet_CheckExact(value))
        Py_RETURN_NONE;
    members = PySequence_List(value);
    if (members == NULL)
        return NULL;
    status = numbers_read(PySequence_Fast_ITEMS(members), PyList_GET_SIZE(members), &numbers);
    Py_DECREF(members);
    if (status <= 0 || numbers.floats) {
        /* floats are sorted by the Python writer (its order of NaNs is its own) */
        numbers_free(&numbers);
        if (status < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    if (numbers.count == 0 || (!numbers.any_negative && numbers.high < LARGE_BITMAP)) {
        unsigned char bitmap[1 + 15] = {0};
        Py_ssize_t length = (numbers.count == 0 || numbers.high < SMALL_BITMAP) ? 7 : 15, i;
        bitmap[0] = length == 7 ? 'm' : 'M';
        for (i = 0; i < numbers.count; i++)
            bitmap[1 + numbers.values[i] / 8] |= (unsigned char)(1u << (numbers.values[i] % 8));
        numbers_free(&numbers);
        return PyBytes_FromStringAndSize((const char *)bitmap, 1 + length);
    }
    if (numbers.any_big && numbers.any_negative) {
        numbers_free(&numbers);
        Py_RETURN_NONE;
    }
    qsort(numbers.values, (size_t)numbers.count, sizeof(uint64_t),
          numbers.any_negative ? compare_signed : compare_unsigned);
    encoded = numbers_encode(&numbers);
    numbers_free(&numbers);
    return encoded;
}

static PyMethodDef encoder_functions[] = {
    {"encode_sequence", encode_sequence, METH_O,
     "encode_sequence(value) -> bytes or None: a list/tuple of plain ints or floats as a numeric "
     "sequence (header and numbers, unpadded); None for anything else."},
    {"encode_set", encode_set, METH_O,
     "encode_set(value) -> bytes or None: a set/frozenset of plain ints as a bitmap or a sorted "
     "numeric sequence; None for anything else."},
    {NULL}
};

int
encoders_add_to_module(PyObject *module)
{
    return PyModule_AddFunctions(module, encoder_functions);
}
