/*
 * Live proxies made in C (part of sharedbuffers._native._objects, objects.c).
 *
 * Over a writable buffer a proxy is a ctypes structure laid over the struct's fixed part
 * (struct_proxy.py, LiveStructProxy), so that its numbers are read where they are and a write
 * by anyone shows at once.  It keeps an "anchor", a buffer export that pins the memory (a
 * bytearray cannot be resized, an mmap not closed) while the proxy lives.  Made in Python,
 * `arr[i]` over a writable buffer went through four Python frames, and since the anchor dies
 * with the last proxy that used it, `arr[i].x` in a loop made a new one every time: about
 * 3 µs a record, slower than sharedbuffers 1.x.  Here it is one C call.
 *
 *   LiveMaker(from_address, size, fallback)
 *       make(buffer, offset) -> proxy: the class's `from_address` at the buffer's address +
 *       offset, with `_proxy_buffer`, `_proxy_offset` and `_proxy_anchor` in its __dict__, as
 *       struct_proxy.live_proxy_maker sets them.  The anchor is a memoryview of the buffer; the
 *       maker remembers the last one weakly and reuses it while it lives, so proxies made
 *       together share one.  Anything unusual (a buffer that is not a writable C-contiguous
 *       byte buffer, a released memoryview, an offset outside the buffer, an offset that is not
 *       an int) goes to `fallback`, the Python maker, whose errors are the pure-Python ones.
 *
 * SnapshotUnpacker (proxies.c) calls live_make directly for the full shape over a writable
 * buffer, so `arr[i]` runs no Python code at all.
 */
#include "objects.h"

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *from_address;         /* the proxy class's from_address (a bound class method) */
    PyObject *fallback;             /* the Python maker: every case not handled here */
    Py_ssize_t size;                /* ctypes.sizeof of the proxy class */
    PyObject *anchor_ref;           /* weak reference to the last anchor made, or NULL */
} LiveMaker;

static PyTypeObject LiveMaker_Type;
static PyObject *buffer_name, *offset_name, *anchor_name;     /* interned __dict__ keys */

/* The description of the bytes of a writable C-contiguous 1-D byte buffer, else NULL.  The
 * view belongs to `anchor` (a memoryview), whose export pins the memory. */
static const Py_buffer *
anchor_view(PyObject *anchor)
{
    const Py_buffer *view = PyMemoryView_GET_BUFFER(anchor);

    if (view->readonly || view->buf == NULL || view->ndim != 1 || view->itemsize != 1
            || !PyBuffer_IsContiguous(view, 'C'))
        return NULL;
    return view;
}

/* True when `anchor` (a live memoryview the maker made) covers exactly the bytes of `buffer`:
 * the same exporter, and for a memoryview buffer the same region of it.  A bytearray or mmap
 * cannot move or shrink while the anchor's export lives, so its identity is enough. */
static int
anchor_covers(PyObject *anchor, PyObject *buffer)
{
    const Py_buffer *held = PyMemoryView_GET_BUFFER(anchor), *wanted;

    if (!PyMemoryView_Check(buffer))
        return PyMemoryView_GET_BASE(anchor) == buffer;
    if (((PyMemoryViewObject *)buffer)->flags & _Py_MEMORYVIEW_RELEASED)
        return 0;
    wanted = PyMemoryView_GET_BUFFER(buffer);
    return PyMemoryView_GET_BASE(anchor) == PyMemoryView_GET_BASE(buffer) && held->buf == wanted->buf
           && held->len == wanted->len && !wanted->readonly && wanted->ndim == 1 && wanted->itemsize == 1;
}

/* A new reference to an anchor of `buffer`: the last one when it still lives and covers it,
 * else a new memoryview (remembered weakly).  NULL without an error set when the buffer is not
 * one this maker handles. */
static PyObject *
anchor_for(LiveMaker *self, PyObject *buffer)
{
    PyObject *anchor = self->anchor_ref != NULL ? referent(self->anchor_ref) : NULL;

    if (anchor != NULL) {
        if (anchor_covers(anchor, buffer))
            return anchor;
        Py_DECREF(anchor);
    }
    if (PyMemoryView_Check(buffer) && ((PyMemoryViewObject *)buffer)->flags & _Py_MEMORYVIEW_RELEASED)
        return NULL;
    anchor = PyMemoryView_FromObject(buffer);
    if (anchor == NULL) {
        PyErr_Clear();              /* not a buffer, or a read-only one: the Python maker says so */
        return NULL;
    }
    if (anchor_view(anchor) == NULL) {
        Py_DECREF(anchor);
        return NULL;
    }
    Py_XSETREF(self->anchor_ref, PyWeakref_NewRef(anchor, NULL));
    if (self->anchor_ref == NULL)
        PyErr_Clear();              /* remembering is an optimization */
    return anchor;
}

/* The live proxy of the struct at `offset` of `buffer`, or NULL: with an error set when making
 * it failed, without one when this is a case for the fallback. */
PyObject *
live_make(PyObject *maker, PyObject *buffer, PyObject *offset_object)
{
    LiveMaker *self = (LiveMaker *)maker;
    PyObject *anchor, *address, *proxy = NULL, *attributes;
    const Py_buffer *view;
    Py_ssize_t offset;

    if (!PyLong_CheckExact(offset_object))
        return NULL;
    offset = PyLong_AsSsize_t(offset_object);
    if (offset == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    anchor = anchor_for(self, buffer);
    if (anchor == NULL)
        return NULL;
    view = PyMemoryView_GET_BUFFER(anchor);
    if (!in_bounds(offset, self->size, view->len)) {
        Py_DECREF(anchor);
        return NULL;
    }
    address = PyLong_FromVoidPtr((char *)view->buf + offset);
    if (address != NULL) {
        proxy = PyObject_CallOneArg(self->from_address, address);
        Py_DECREF(address);
    }
    attributes = proxy != NULL ? PyObject_GenericGetDict(proxy, NULL) : NULL;
    if (attributes == NULL || PyDict_SetItem(attributes, buffer_name, buffer) < 0
            || PyDict_SetItem(attributes, offset_name, offset_object) < 0
            || PyDict_SetItem(attributes, anchor_name, anchor) < 0) {
        Py_CLEAR(proxy);
        if (!PyErr_Occurred())
            PyErr_NoMemory();
    }
    Py_XDECREF(attributes);
    Py_DECREF(anchor);
    return proxy;
}

int
is_live_maker(PyObject *object)
{
    return Py_IS_TYPE(object, &LiveMaker_Type);
}

static PyObject *
maker_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    LiveMaker *self = (LiveMaker *)callable;

    if (kwnames == NULL && PyVectorcall_NARGS(nargsf) == 2) {
        PyObject *proxy = live_make(callable, args[0], args[1]);
        if (proxy != NULL || PyErr_Occurred())
            return proxy;
    }
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

static PyObject *
maker_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"from_address", "size", "fallback", NULL};
    PyObject *from_address, *fallback;
    Py_ssize_t size;
    LiveMaker *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OnO:LiveMaker", keywords, &from_address, &size, &fallback))
        return NULL;
    if (!PyCallable_Check(from_address) || !PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "LiveMaker takes a callable from_address and fallback");
        return NULL;
    }
    if (size < 0) {
        PyErr_Format(PyExc_ValueError, "a proxy class of %zd bytes", size);
        return NULL;
    }
    self = (LiveMaker *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = maker_vectorcall;
    self->from_address = Py_NewRef(from_address);
    self->fallback = Py_NewRef(fallback);
    self->size = size;
    return (PyObject *)self;
}

static int
maker_traverse(LiveMaker *self, visitproc visit, void *arg)
{
    Py_VISIT(self->from_address);
    Py_VISIT(self->fallback);
    return 0;
}

static int
maker_clear(LiveMaker *self)
{
    Py_CLEAR(self->from_address);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->anchor_ref);
    return 0;
}

static void
maker_dealloc(LiveMaker *self)
{
    PyObject_GC_UnTrack(self);
    maker_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
maker_get_fallback(LiveMaker *self, void *closure)
{
    return Py_NewRef(self->fallback);
}

static PyGetSetDef maker_getset[] = {
    {"fallback", (getter)maker_get_fallback, NULL, "the Python maker this one wraps", NULL},
    {NULL}
};

static PyTypeObject LiveMaker_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sharedbuffers._native._objects.LiveMaker",
    .tp_basicsize = sizeof(LiveMaker),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "make(buffer, offset) -> live proxy of one shape class over a writable buffer; "
              "every other case through the Python maker it wraps.",
    .tp_new = maker_new,
    .tp_dealloc = (destructor)maker_dealloc,
    .tp_traverse = (traverseproc)maker_traverse,
    .tp_clear = (inquiry)maker_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(LiveMaker, vectorcall),
    .tp_getset = maker_getset,
};

int
live_proxies_add_to_module(PyObject *module)
{
    if (PyType_Ready(&LiveMaker_Type) < 0)
        return -1;
    buffer_name = PyUnicode_InternFromString("_proxy_buffer");
    offset_name = PyUnicode_InternFromString("_proxy_offset");
    anchor_name = PyUnicode_InternFromString("_proxy_anchor");
    if (buffer_name == NULL || offset_name == NULL || anchor_name == NULL)
        return -1;
    return PyModule_AddObjectRef(module, "LiveMaker", (PyObject *)&LiveMaker_Type);
}
