/*
 * stable_hash.c: the stable hash of keys (FORMAT.md §7), the twin of stable_hash.py.
 *
 * Why: object id mappers, dicts and sets of mixed values hash every key they look up or
 * write.  In Python a tuple key costs a call per element, a list and a fold (about 2.5 µs for
 * ('k', 1234)); here it is one call.
 *
 * What is hashed here: exact str, bytes, int, bool, float, None and tuples of them (nested up
 * to MAX_DEPTH).  Everything else (frozensets, whose canonical order is stable_hash.py's
 * business; subclasses; unhashable values and strings that cannot be UTF-8) goes to the
 * Python function registered with set_stable_hash, which gives the value or raises the error.
 */
#include <math.h>

#include "objects.h"
#include "kernels.h"

#define TUPLE_SEED 0x1692e9d3bfa120f4ULL
#define MAX_DEPTH 32

uint64_t sb_hash_float(double x);       /* kernels.c */

static PyObject *python_stable_hash = NULL;

enum { HASHED = 0, FOR_PYTHON = 1, FAILED = -1 };

static inline uint64_t
rotate_left_5(uint64_t value)
{
    return (value << 5) | (value >> 59);
}

static uint64_t
hash_float(double x)
{
    /* int(x) when x is a whole number that fits an int64, as stable_hash.py's _float_hash */
    if (isfinite(x) && trunc(x) == x && x >= -9223372036854775808.0 && x < 9223372036854775808.0)
        return (uint64_t)(int64_t)x;
    return sb_hash_float(x);
}

static int
hash_key(PyObject *key, uint64_t *hash, int depth)
{
    PyTypeObject *kind = Py_TYPE(key);
    uint64_t value;

    if (kind == &PyUnicode_Type) {
        if (PyUnicode_IS_ASCII(key))
            value = sb_xxh64(PyUnicode_DATA(key), (size_t)PyUnicode_GET_LENGTH(key), 0);
        else {
            /* a temporary: PyUnicode_AsUTF8 would keep a UTF-8 copy in the caller's str */
            PyObject *encoded = PyUnicode_AsUTF8String(key);
            if (encoded == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
                    return FAILED;
                PyErr_Clear();          /* lone surrogates: Python raises the same error */
                return FOR_PYTHON;
            }
            value = sb_xxh64(PyBytes_AS_STRING(encoded), (size_t)PyBytes_GET_SIZE(encoded), 0);
            Py_DECREF(encoded);
        }
    }
    else if (kind == &PyBytes_Type)
        value = sb_xxh64(PyBytes_AS_STRING(key), (size_t)PyBytes_GET_SIZE(key), 0);
    else if (kind == &PyLong_Type || kind == &PyBool_Type) {
        value = PyLong_AsUnsignedLongLongMask(key);     /* key & (2**64 - 1), any size */
        if (value == (uint64_t)-1 && PyErr_Occurred())
            return FAILED;
    }
    else if (key == Py_None)
        value = 1;
    else if (kind == &PyFloat_Type)
        value = hash_float(PyFloat_AS_DOUBLE(key));
    else if (kind == &PyTuple_Type && depth < MAX_DEPTH) {
        Py_ssize_t i;
        value = TUPLE_SEED;
        for (i = 0; i < PyTuple_GET_SIZE(key); i++) {
            uint64_t item;
            int status = hash_key(PyTuple_GET_ITEM(key, i), &item, depth + 1);
            if (status != HASHED)
                return status;
            value = rotate_left_5(value) ^ item;
        }
    }
    else
        return FOR_PYTHON;
    *hash = value ? value : 1;
    return HASHED;
}

int
stable_hash_of(PyObject *key, uint64_t *hash)
{
    int status = hash_key(key, hash, 0);
    if (status == FAILED && PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Clear();
        return 1;
    }
    return status;
}

static PyObject *
stable_hash(PyObject *module, PyObject *key)
{
    uint64_t hash;
    int status = hash_key(key, &hash, 0);

    if (status == HASHED)
        return PyLong_FromUnsignedLongLong(hash);
    if (status == FAILED)
        return NULL;
    if (python_stable_hash == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "stable_hash: no Python function set (set_stable_hash)");
        return NULL;
    }
    return PyObject_CallOneArg(python_stable_hash, key);
}

static PyObject *
set_stable_hash(PyObject *module, PyObject *function)
{
    if (!PyCallable_Check(function)) {
        PyErr_SetString(PyExc_TypeError, "set_stable_hash needs a callable");
        return NULL;
    }
    Py_XSETREF(python_stable_hash, Py_NewRef(function));
    Py_RETURN_NONE;
}

static PyMethodDef stable_hash_functions[] = {
    {"stable_hash", stable_hash, METH_O,
     "stable_hash(key) -> the process-independent 64-bit hash of key (as stable_hash.py)"},
    {"set_stable_hash", set_stable_hash, METH_O,
     "set_stable_hash(function) -- the Python function for the keys this module does not hash"},
    {NULL}
};

int
stable_hash_add_to_module(PyObject *module)
{
    return PyModule_AddFunctions(module, stable_hash_functions);
}
