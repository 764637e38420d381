/*
 * Single-key lookups of id mappers and mappings (part of sharedbuffers._native._objects).
 *
 * The search itself is the native kernel's (kernels.c: sb_idmap_get, sb_idmap_get_bytes).
 * Called through cffi, a lookup spends most of its time converting arguments and in the
 * Python method around the call; here the whole `mapper.get(key)` or `mapping[key]` is one C
 * call with no Python frame:
 *
 *   KeyLookup(buffer, mapper_offset, index_offset, count, columns, width, string_keys)
 *       the rows of one single-valued mapper (numeric: int keys; string: str keys, searched
 *       by their UTF-8 bytes).  It holds a buffer export for its lifetime, as the cffi handle
 *       does, and the geometry is checked by the kernel on every call.
 *   KeyedMethod(kind, fallback)
 *       a method descriptor for the classes: `get`, `__getitem__`, `__contains__` of id
 *       mappers (the instance's `_keys`), and `get`, `__getitem__` of mappings (the instance's
 *       `_keys` and `_values`, an ItemSequence).  The common case (a key of the mapper's own
 *       type, found or missing) is answered here; every other case (other key types, values
 *       beyond 63 bits, compressed stored keys, corrupt data, instances without `_keys`) runs
 *       the Python `fallback`, which gives the pure-Python results and errors.
 */
#include "objects.h"
#include "kernels.h"

typedef struct {
    PyObject_HEAD
    Py_buffer view;
    sb_idmap map;
    int string_keys;
} KeyLookup;

static PyTypeObject KeyLookup_Type;

static PyObject *
keys_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"buffer", "mapper_offset", "index_offset", "count", "columns", "width",
                               "string_keys", NULL};
    PyObject *buffer;
    unsigned long long mapper_offset, index_offset, count;
    unsigned int columns, width;
    int string_keys;
    KeyLookup *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OKKKIIp:KeyLookup", keywords, &buffer, &mapper_offset,
                                     &index_offset, &count, &columns, &width, &string_keys))
        return NULL;
    if ((width != 4 && width != 8) || columns != (string_keys ? 3u : 2u)) {
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
    return (PyObject *)self;
}

static void
keys_dealloc(KeyLookup *self)
{
    if (self->view.obj != NULL)
        PyBuffer_Release(&self->view);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject KeyLookup_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sharedbuffers._native._objects.KeyLookup",
    .tp_basicsize = sizeof(KeyLookup),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The rows of a single-valued id mapper, searched by the native kernels.",
    .tp_new = keys_new,
    .tp_dealloc = (destructor)keys_dealloc,
};

/* The kernel's result for `key` (a value >= 0, SB_IDMAP_MISSING or another status), or
 * SB_IDMAP_DEFER when the key is not of the mapper's own type (the fallback decides).  With
 * `values` (a mapping's ItemSequence, whose item the value numbers), string lookups prefetch
 * that item's index entry while the stored key is compared. */
static int64_t
keys_find(KeyLookup *self, PyObject *key, PyObject *values)
{
    if (self->string_keys) {
        Py_ssize_t length;
        const char *data;
        if (!PyUnicode_CheckExact(key))
            return SB_IDMAP_DEFER;
        data = PyUnicode_AsUTF8AndSize(key, &length);
        if (data == NULL) {
            PyErr_Clear();          /* lone surrogates: the Python method raises its error */
            return SB_IDMAP_DEFER;
        }
        if (values != NULL) {
            const void *index = item_index_address(values);
            if (index != NULL)
                return sb_idmap_get_bytes_prefetch(&self->map, data, (size_t)length, index,
                                                   (uint64_t)item_count(values));
        }
        return sb_idmap_get_bytes(&self->map, data, (size_t)length);
    }
    else {
        long long number;
        int overflow;
        if (!PyLong_CheckExact(key))
            return SB_IDMAP_DEFER;
        /* The signed conversion is the fast one; keys of 2**63 and up take the unsigned one. */
        number = PyLong_AsLongLongAndOverflow(key, &overflow);
        if (overflow == 0 && number >= 0)
            return sb_idmap_get(&self->map, (uint64_t)number);
        if (overflow > 0) {
            unsigned long long big = PyLong_AsUnsignedLongLong(key);
            if (!(big == (unsigned long long)-1 && PyErr_Occurred()))
                return sb_idmap_get(&self->map, big);
        }
        PyErr_Clear();              /* negative or beyond 64 bits: the Python method decides */
        return SB_IDMAP_DEFER;
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
} KeyedMethod;

static PyObject *keys_name, *values_name;      /* interned "_keys", "_values" */

#define NOT_ANSWERED ((PyObject *)1)

static PyObject *
keyed_answer(KeyedMethod *self, PyObject *instance, PyObject *key, PyObject *default_value)
{
    PyObject *keys, *values = NULL, *answer = NOT_ANSWERED;
    int64_t found;

    keys = own_attribute(instance, keys_name, &KeyLookup_Type);
    if (keys == NULL)
        return PyErr_Occurred() ? NULL : NOT_ANSWERED;
    if (self->kind == MAPPING_GET || self->kind == MAPPING_GETITEM) {
        values = own_attribute(instance, values_name, &ItemSequence_Type);
        if (values == NULL) {
            Py_DECREF(keys);
            return PyErr_Occurred() ? NULL : NOT_ANSWERED;
        }
    }
    found = keys_find((KeyLookup *)keys, key, values);
    Py_DECREF(keys);
    if (found != SB_IDMAP_MISSING && found < 0) {
        Py_XDECREF(values);
        return NOT_ANSWERED;
    }
    switch (self->kind) {
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
            if (self->kind == MAPPING_GET)
                answer = Py_NewRef(default_value);
        }
        else if (found < item_count(values))
            answer = item_proxy(values, (Py_ssize_t)found);
        break;
    }
    Py_XDECREF(values);
    return answer;
}

static PyObject *
keyed_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    KeyedMethod *self = (KeyedMethod *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    int takes_default = self->kind == MAPPER_GET || self->kind == MAPPING_GET;

    if (kwnames == NULL && (nargs == 2 || (takes_default && nargs == 3))) {
        PyObject *answer = keyed_answer(self, args[0], args[1], nargs == 3 ? args[2] : Py_None);
        if (answer != NOT_ANSWERED)
            return answer;
    }
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

static PyObject *
keyed_get(PyObject *self, PyObject *instance, PyObject *owner)
{
    if (instance == NULL || instance == Py_None)
        return Py_NewRef(self);
    return PyMethod_New(self, instance);
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
    return 0;
}

static int
keyed_clear(KeyedMethod *self)
{
    Py_CLEAR(self->fallback);
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

int
lookups_add_to_module(PyObject *module)
{
    if (PyType_Ready(&KeyLookup_Type) < 0 || PyType_Ready(&KeyedMethod_Type) < 0)
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
