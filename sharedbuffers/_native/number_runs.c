/*
 * Indexing the numbers of a proxied list or tuple (part of sharedbuffers._native._objects,
 * objects.c).
 *
 * A proxied list of numbers (FORMAT.md §4.4, a numeric typecode) is a run of fixed-size
 * numbers in the buffer; `lst[i]` is one bounds-checked read.  The Python `__getitem__` pays a
 * method frame, the range index and a struct call for it, more than twice what 1.x's Cython
 * method did, so the numeric case runs here:
 *
 *   NumberRun(buffer, data, code, start, step, count)
 *                  the `count` numbers a proxied list shows: number k is the one at
 *                  data + (start + k * step) * size(code).  A slice of a list is another run
 *                  over the same data.  len(), run[k] (negative k too) and nothing else.
 *   NumberRunLookup(fallback, member)
 *                  the `__getitem__` of proxied lists: `member` is the slot descriptor of the
 *                  class's `_numbers`; for an integer key and an instance whose slot holds a
 *                  NumberRun it indexes the run, and everything else (slices, lists of
 *                  pointers, instances without a run) goes to the Python `fallback`.
 *
 * What it cannot answer exactly as the Python method would goes to that method too: a number
 * the buffer no longer holds (a bytearray shrunk since) gets the struct error it raises there.
 * The IndexError for a key out of range is the one range indexing raises.
 */
#include "objects.h"
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *buffer;
    Py_ssize_t data;                /* where the stored numbers start */
    Py_ssize_t start;               /* the stored number that is run[0] */
    Py_ssize_t step;
    Py_ssize_t count;
    Py_ssize_t size;                /* of one number */
    char code;                      /* struct code of the numbers */
} NumberRun;

/* Number `number` (0 <= number < count) of the run, or NOT_HANDLED (no error set) when the
 * buffer does not hold it. */
static PyObject *
run_number(NumberRun *self, Py_ssize_t number)
{
    ByteSpan span;
    Py_ssize_t stored, position;
    PyObject *value = NOT_HANDLED;

    /* start, step and count come from the caller: every step is checked for overflow */
    if (__builtin_mul_overflow(number, self->step, &stored) || __builtin_add_overflow(stored, self->start, &stored)
            || stored < 0 || __builtin_mul_overflow(stored, self->size, &position)
            || __builtin_add_overflow(position, self->data, &position))
        return NOT_HANDLED;
    if (span_open(self->buffer, &span) < 0)
        return NULL;
    if (in_bounds(position, self->size, span.size))
        value = decode_number(self->code, span.data + position);
    span_close(&span);
    return value;
}

/* The run's number at `key` (an int; negative counts from the end), as range indexing
 * checks it; NOT_HANDLED as run_number. */
static PyObject *
run_number_at(NumberRun *self, PyObject *key)
{
    Py_ssize_t number = PyLong_AsSsize_t(key);
    int beyond = 0;                 /* beyond any Py_ssize_t: out of range either way */

    if (number == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return NULL;
        PyErr_Clear();
        beyond = 1;
    }
    if (!beyond && number < 0)
        number += self->count;
    if (beyond || number < 0 || number >= self->count) {
        PyErr_SetString(PyExc_IndexError, "range object index out of range");
        return NULL;
    }
    return run_number(self, number);
}

static Py_ssize_t
run_length(NumberRun *self)
{
    return self->count;
}

static PyObject *
run_subscript(NumberRun *self, PyObject *key)
{
    PyObject *value;

    if (!PyLong_Check(key)) {
        PyErr_Format(PyExc_TypeError, "NumberRun indices must be integers, not %.200s", Py_TYPE(key)->tp_name);
        return NULL;
    }
    value = run_number_at(self, key);
    if (value == NOT_HANDLED) {
        PyErr_Format(PyExc_IndexError, "number %zd of the run lies outside the buffer", PyLong_AsSsize_t(key));
        return NULL;
    }
    return value;
}

static PyObject *
run_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"buffer", "data", "code", "start", "step", "count", NULL};
    PyObject *buffer;
    Py_ssize_t data, start, step, count, size;
    int code;
    NumberRun *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OnCnnn:NumberRun", keywords,
                                     &buffer, &data, &code, &start, &step, &count))
        return NULL;
    size = code > 0 && code < 128 ? code_size((char)code) : 0;
    if (size == 0 || code == '?') {
        PyErr_Format(PyExc_ValueError, "NumberRun: code %d is not a numeric struct code", code);
        return NULL;
    }
    if (data < 0 || count < 0 || step == 0) {
        PyErr_SetString(PyExc_ValueError, "NumberRun: data and count must not be negative, step not 0");
        return NULL;
    }
    self = (NumberRun *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->buffer = Py_NewRef(buffer);
    self->data = data;
    self->start = start;
    self->step = step;
    self->count = count;
    self->size = size;
    self->code = (char)code;
    return (PyObject *)self;
}

static void
run_dealloc(NumberRun *self)
{
    Py_XDECREF(self->buffer);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMappingMethods run_as_mapping = {
    .mp_length = (lenfunc)run_length,
    .mp_subscript = (binaryfunc)run_subscript,
};

static PyTypeObject NumberRun_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sharedbuffers._native._objects.NumberRun",
    .tp_basicsize = sizeof(NumberRun),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The numbers a proxied list shows, indexed in C (see number_runs.c).",
    .tp_new = run_new,
    .tp_dealloc = (destructor)run_dealloc,
    .tp_as_mapping = &run_as_mapping,
};

/* -- NumberRunLookup: the class's __getitem__ --------------------------------------------- */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fallback;             /* the Python __getitem__(instance, key) */
    PyTypeObject *owner;            /* the class whose slot holds the run */
    Py_ssize_t slot_offset;         /* of that slot in its instances */
} NumberRunLookup;

static PyObject *
run_lookup_call(NumberRunLookup *self, PyObject *instance, PyObject *key)
{
    PyObject *args[2], *value;

    if (PyLong_Check(key) && PyObject_TypeCheck(instance, self->owner)) {
        PyObject *run = *(PyObject **)((char *)instance + self->slot_offset);
        if (run != NULL && Py_IS_TYPE(run, &NumberRun_Type)) {
            Py_INCREF(run);
            value = run_number_at((NumberRun *)run, key);
            Py_DECREF(run);
            if (value != NOT_HANDLED)
                return value;
        }
    }
    args[0] = instance;
    args[1] = key;
    return PyObject_Vectorcall(self->fallback, args, 2, NULL);
}

static PyObject *
run_lookup_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (kwnames != NULL || PyVectorcall_NARGS(nargsf) != 2) {
        PyErr_SetString(PyExc_TypeError, "__getitem__ takes exactly one argument");
        return NULL;
    }
    return run_lookup_call((NumberRunLookup *)callable, args[0], args[1]);
}

static PyObject *
run_lookup_get(PyObject *self, PyObject *instance, PyObject *owner)
{
    if (instance == NULL || instance == Py_None)
        return Py_NewRef(self);
    return PyMethod_New(self, instance);
}

static PyObject *
run_lookup_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"fallback", "member", NULL};
    PyObject *fallback, *member;
    PyMemberDef *definition;
    NumberRunLookup *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:NumberRunLookup", keywords, &fallback, &member))
        return NULL;
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "fallback must be callable");
        return NULL;
    }
    if (!Py_IS_TYPE(member, &PyMemberDescr_Type)) {
        PyErr_SetString(PyExc_TypeError, "member must be the descriptor of a __slots__ entry");
        return NULL;
    }
    definition = ((PyMemberDescrObject *)member)->d_member;
    if (definition->type != T_OBJECT_EX || (definition->flags & READONLY)) {
        PyErr_SetString(PyExc_TypeError, "member must be the descriptor of a __slots__ entry");
        return NULL;
    }
    self = (NumberRunLookup *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = run_lookup_vectorcall;
    self->fallback = Py_NewRef(fallback);
    self->owner = (PyTypeObject *)Py_NewRef(((PyDescrObject *)member)->d_type);
    self->slot_offset = definition->offset;
    return (PyObject *)self;
}

static int
run_lookup_traverse(NumberRunLookup *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fallback);
    Py_VISIT(self->owner);
    return 0;
}

static int
run_lookup_clear(NumberRunLookup *self)
{
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->owner);
    return 0;
}

static void
run_lookup_dealloc(NumberRunLookup *self)
{
    PyObject_GC_UnTrack(self);
    run_lookup_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
run_lookup_get_fallback(NumberRunLookup *self, void *closure)
{
    return Py_NewRef(self->fallback);
}

static PyGetSetDef run_lookup_getset[] = {
    {"fallback", (getter)run_lookup_get_fallback, NULL, "the Python __getitem__ for other keys", NULL},
    {"__wrapped__", (getter)run_lookup_get_fallback, NULL, "the Python __getitem__ for other keys", NULL},
    {NULL}
};

static PyTypeObject NumberRunLookup_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sharedbuffers._native._objects.NumberRunLookup",
    .tp_basicsize = sizeof(NumberRunLookup),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
                | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "__getitem__ of proxied lists: integer keys through the instance's NumberRun, in C.",
    .tp_new = run_lookup_new,
    .tp_dealloc = (destructor)run_lookup_dealloc,
    .tp_traverse = (traverseproc)run_lookup_traverse,
    .tp_clear = (inquiry)run_lookup_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(NumberRunLookup, vectorcall),
    .tp_descr_get = run_lookup_get,
    .tp_getset = run_lookup_getset,
};

int
number_runs_add_to_module(PyObject *module)
{
    if (PyType_Ready(&NumberRun_Type) < 0 || PyType_Ready(&NumberRunLookup_Type) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "NumberRun", (PyObject *)&NumberRun_Type) < 0
            || PyModule_AddObjectRef(module, "NumberRunLookup", (PyObject *)&NumberRunLookup_Type) < 0)
        return -1;
    return 0;
}
