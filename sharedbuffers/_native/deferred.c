/*
 * A callable made on first use (part of sharedbuffers._native._objects, objects.c).
 *
 * A schema generates its unpacker when it first unpacks (schema.py: generating costs
 * milliseconds, which opening a file must not pay for a packer or unpacker it never uses).
 * Until then `schema.unpack_from` is a stand-in, and code that takes it early, as 1.x code
 * does (`unpack = schema.unpack_from` before a loop), keeps the stand-in.  A Python stand-in
 * costs a frame and a method call on every record (435 against 186 ns an unpack); this one
 * costs a vectorcall.
 *
 *   Deferred(make)
 *       calling it calls make() once, keeps what it gives (the target), and passes this and
 *       every later call, arguments unchanged, to the target; reset() forgets the target, so
 *       the next call makes it again (a schema's reinitialize()).  `target` is the target, or
 *       None before the first call.
 */
#include "objects.h"

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *make;
    PyObject *target;               /* NULL until the first call, and after reset() */
} Deferred;

static PyObject *
deferred_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Deferred *self = (Deferred *)callable;
    PyObject *target = self->target, *result;

    if (target == NULL) {
        target = PyObject_CallNoArgs(self->make);
        if (target == NULL)
            return NULL;
        Py_XSETREF(self->target, target);
    }
    /* A call may reset (or replace) the target while it runs: hold this one meanwhile. */
    Py_INCREF(target);
    result = PyObject_Vectorcall(target, args, nargsf, kwnames);
    Py_DECREF(target);
    return result;
}

static PyObject *
deferred_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"make", NULL};
    PyObject *make;
    Deferred *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Deferred", keywords, &make))
        return NULL;
    if (!PyCallable_Check(make)) {
        PyErr_SetString(PyExc_TypeError, "Deferred(make) takes a callable");
        return NULL;
    }
    self = (Deferred *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = deferred_vectorcall;
    self->make = Py_NewRef(make);
    return (PyObject *)self;
}

static int
deferred_traverse(Deferred *self, visitproc visit, void *arg)
{
    Py_VISIT(self->make);
    Py_VISIT(self->target);
    return 0;
}

static int
deferred_clear(Deferred *self)
{
    Py_CLEAR(self->make);
    Py_CLEAR(self->target);
    return 0;
}

static void
deferred_dealloc(Deferred *self)
{
    PyObject_GC_UnTrack(self);
    deferred_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
deferred_reset(Deferred *self, PyObject *unused)
{
    Py_CLEAR(self->target);
    Py_RETURN_NONE;
}

static PyObject *
deferred_get_target(Deferred *self, void *closure)
{
    return Py_NewRef(self->target != NULL ? self->target : Py_None);
}

static PyMethodDef deferred_methods[] = {
    {"reset", (PyCFunction)deferred_reset, METH_NOARGS, "Forget the target: the next call makes it again."},
    {NULL}
};

static PyGetSetDef deferred_getset[] = {
    {"target", (getter)deferred_get_target, NULL, "what make() gave, or None before the first call", NULL},
    {NULL}
};

static PyTypeObject Deferred_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sharedbuffers._native._objects.Deferred",
    .tp_basicsize = sizeof(Deferred),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Deferred(make): calls make() on the first call and forwards every call to what it gave.",
    .tp_new = deferred_new,
    .tp_dealloc = (destructor)deferred_dealloc,
    .tp_traverse = (traverseproc)deferred_traverse,
    .tp_clear = (inquiry)deferred_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Deferred, vectorcall),
    .tp_methods = deferred_methods,
    .tp_getset = deferred_getset,
};

int
deferred_add_to_module(PyObject *module)
{
    if (PyType_Ready(&Deferred_Type) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "Deferred", (PyObject *)&Deferred_Type);
}
