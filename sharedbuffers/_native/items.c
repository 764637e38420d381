/*
 * Items of a typed array by number (part of sharedbuffers._native._objects, objects.c).
 *
 * A typed array (FORMAT.md §8) ends with an index of uint64 positions, one per item, counted
 * from the array's start; an item is a struct at that position.  Reading `arr[i]` is: check
 * i, read the position, check that it lies in the items area, unpack the struct there.
 *
 *   ItemSequence(buffer, offset, items_start, index_offset, count, unpack)
 *                  a sequence of the array's proxies: len(), items[i] (negative i too), and
 *                  calling it, items(i), is the same lookup (what getter() hands out);
 *                  iterating it uses the sequence protocol, so `for p in items` runs no
 *                  Python code besides the unpacker.
 *   ItemAccess     the base class of array classes: its subscript slot looks up the
 *                  instance's `_items` (remembering the last array's: objects.h, PartsCache)
 *                  and indexes it; keys that are not integers (slices), and instances without
 *                  `_items`, go to the array's Python method `_python_getitem`.  A base
 *                  class, not a `__getitem__` in the class: CPython then puts the C function
 *                  itself in every array class's slot, and `arr[i]` skips looking the method up
 *                  and calling it (12 ns of the 230 a read of a cached record takes).
 *
 * The errors are those of the pure-Python array code: IndexError("index out of bounds on
 * dimension 1") as memoryview gives, and ValueError naming the item for a position outside
 * the items area.
 */
#include "objects.h"

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *buffer;
    PyObject *unpack;
    Py_ssize_t offset;              /* of the array in the buffer */
    Py_ssize_t items_start;         /* from the array's start: the header's size */
    Py_ssize_t index_offset;        /* of the index from the array's start: where items end */
    Py_ssize_t count;
    PyObject *weakreflist;          /* a mapping's bound get keeps a weak reference */
} ItemSequence;


/* The proxy of item `number` (0 <= number < count, else IndexError); `named` is the number
 * as the caller wrote it (negative ones too), for the error about a corrupt position. */
static PyObject *
item_named(ItemSequence *self, Py_ssize_t number, Py_ssize_t named)
{
    ByteSpan span;
    uint64_t position;
    Py_ssize_t entry;
    PyObject *location, *proxy;

    if (number < 0 || number >= self->count) {
        PyErr_SetString(PyExc_IndexError, "index out of bounds on dimension 1");
        return NULL;
    }
    if (span_open(self->buffer, &span) < 0)
        return NULL;
    entry = self->offset + self->index_offset + 8 * number;
    if (!in_bounds(entry, 8, span.size)) {
        PyErr_Format(PyExc_IndexError, "typed array index entry %zd at offset %zd is outside the buffer "
                     "of %zd bytes", number, entry, span.size);
        span_close(&span);
        return NULL;
    }
    position = load_u64(span.data + entry);
    span_close(&span);
    if (position < (uint64_t)self->items_start || position >= (uint64_t)self->index_offset) {
        PyErr_Format(PyExc_ValueError, "typed array item %zd is at +%llu, outside the items area: corrupt",
                     named, (unsigned long long)position);
        return NULL;
    }
    location = PyLong_FromSsize_t(self->offset + (Py_ssize_t)position);
    if (location == NULL)
        return NULL;
    proxy = snapshot_unpack(self->unpack, self->buffer, location, self->offset + (Py_ssize_t)position);
    Py_DECREF(location);
    return proxy;
}

static PyObject *
item_at(ItemSequence *self, Py_ssize_t number)
{
    return item_named(self, number, number);
}

Py_ssize_t
item_count(PyObject *items)
{
    return ((ItemSequence *)items)->count;
}

PyObject *
item_proxy(PyObject *items, Py_ssize_t number)
{
    return item_at((ItemSequence *)items, number);
}

/* Where the array's index is (its item_count() entries), for a prefetch only: NULL when the
 * buffer is not one read in place or the index is not inside it.  Nothing may be read through
 * it (item_proxy reads and checks the entry). */
const void *
item_index_address(PyObject *items)
{
    ItemSequence *self = (ItemSequence *)items;
    ByteSpan span;
    int exported;

    if (span_open(self->buffer, &span) < 0) {
        PyErr_Clear();
        return NULL;
    }
    exported = span.has_view;       /* memory that stays put only while an export is held */
    span_close(&span);
    if (exported || !in_bounds(self->offset + self->index_offset, 8 * self->count, span.size))
        return NULL;
    return span.data + self->offset + self->index_offset;
}

/* items[key] for an integer key (negative counts from the end), else NULL with no error set. */
static PyObject *
item_by_key(ItemSequence *self, PyObject *key)
{
    Py_ssize_t number;

    if (!PyLong_Check(key))
        return NULL;
    number = PyLong_AsSsize_t(key);
    if (number == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return NULL;
        PyErr_Clear();
        PyErr_SetString(PyExc_IndexError, "cannot fit 'int' into an index-sized integer");
        return NULL;
    }
    return item_named(self, number < 0 ? number + self->count : number, number);
}

static PyObject *
items_subscript(ItemSequence *self, PyObject *key)
{
    PyObject *proxy = item_by_key(self, key);
    if (proxy == NULL && !PyErr_Occurred())
        PyErr_Format(PyExc_TypeError, "typed array items are indexed by integers, not %.100s",
                     Py_TYPE(key)->tp_name);
    return proxy;
}

static PyObject *
items_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (kwnames != NULL || PyVectorcall_NARGS(nargsf) != 1) {
        PyErr_SetString(PyExc_TypeError, "get(number) takes one argument");
        return NULL;
    }
    return items_subscript((ItemSequence *)callable, args[0]);
}

static Py_ssize_t
items_length(ItemSequence *self)
{
    return self->count;
}

static PyObject *
items_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"buffer", "offset", "items_start", "index_offset", "count", "unpack", NULL};
    PyObject *buffer, *unpack;
    Py_ssize_t offset, items_start, index_offset, count;
    ItemSequence *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OnnnnO:ItemSequence", keywords, &buffer, &offset,
                                     &items_start, &index_offset, &count, &unpack))
        return NULL;
    if (offset < 0 || items_start < 0 || index_offset < items_start || count < 0) {
        PyErr_Format(PyExc_ValueError, "bad typed array geometry: offset %zd, index at +%zd, %zd items",
                     offset, index_offset, count);
        return NULL;
    }
    if (!PyCallable_Check(unpack)) {
        PyErr_SetString(PyExc_TypeError, "unpack must be callable");
        return NULL;
    }
    self = (ItemSequence *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = items_vectorcall;
    self->buffer = Py_NewRef(buffer);
    self->unpack = Py_NewRef(unpack);
    self->offset = offset;
    self->items_start = items_start;
    self->index_offset = index_offset;
    self->count = count;
    return (PyObject *)self;
}

static int
items_traverse(ItemSequence *self, visitproc visit, void *arg)
{
    Py_VISIT(self->buffer);
    Py_VISIT(self->unpack);
    return 0;
}

static int
items_clear(ItemSequence *self)
{
    Py_CLEAR(self->buffer);
    Py_CLEAR(self->unpack);
    return 0;
}

static void
items_dealloc(ItemSequence *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    items_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PySequenceMethods items_as_sequence = {
    .sq_length = (lenfunc)items_length,
    .sq_item = (ssizeargfunc)item_at,
};

static PyMappingMethods items_as_mapping = {
    .mp_length = (lenfunc)items_length,
    .mp_subscript = (binaryfunc)items_subscript,
};

PyTypeObject ItemSequence_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sharedbuffers._native._objects.ItemSequence",
    .tp_basicsize = sizeof(ItemSequence),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "The proxies of a typed array's items, by number; calling it is indexing it.",
    .tp_new = items_new,
    .tp_dealloc = (destructor)items_dealloc,
    .tp_traverse = (traverseproc)items_traverse,
    .tp_clear = (inquiry)items_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(ItemSequence, vectorcall),
    .tp_weaklistoffset = offsetof(ItemSequence, weakreflist),
    .tp_as_sequence = &items_as_sequence,
    .tp_as_mapping = &items_as_mapping,
};

/* -- ItemAccess: the base class of typed arrays ------------------------------------------ */

static PyObject *items_name;        /* interned "_items" */
static PyObject *python_getitem_name;   /* interned "_python_getitem" */
static PartsCache access_cache;     /* the last array's _items */

/* array[key]: integer keys through the array's `_items`; anything else (slices), and arrays
 * without `_items`, through its Python method `_python_getitem`. */
static PyObject *
access_subscript(PyObject *array, PyObject *key)
{
    PyObject *items, *proxy;

    if (PyLong_Check(key)) {
        int cached = parts_cache_get(&access_cache, array, 1, &items);
        if (!cached)
            items = own_attribute(array, items_name, &ItemSequence_Type);
        if (items != NULL) {
            if (!cached)
                parts_cache_set(&access_cache, array, 1, &items);
            proxy = item_by_key((ItemSequence *)items, key);
            Py_DECREF(items);
            return proxy;
        }
        if (PyErr_Occurred())
            return NULL;
    }
    return PyObject_CallMethodOneArg(array, python_getitem_name, key);
}

static PyMappingMethods access_as_mapping = {
    .mp_subscript = access_subscript,
};

static PyTypeObject ItemAccess_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sharedbuffers._native._objects.ItemAccess",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Base of typed array classes: array[i] in C.  Inherited as a type slot, the subscript "
              "runs without looking __getitem__ up and calling it, as a method in the class would.",
    .tp_as_mapping = &access_as_mapping,
};

int
items_add_to_module(PyObject *module)
{
    if (PyType_Ready(&ItemSequence_Type) < 0 || PyType_Ready(&ItemAccess_Type) < 0)
        return -1;
    items_name = PyUnicode_InternFromString("_items");
    python_getitem_name = PyUnicode_InternFromString("_python_getitem");
    if (items_name == NULL || python_getitem_name == NULL)
        return -1;
    if (PyModule_AddObjectRef(module, "ItemSequence", (PyObject *)&ItemSequence_Type) < 0
            || PyModule_AddObjectRef(module, "ItemAccess", (PyObject *)&ItemAccess_Type) < 0)
        return -1;
    return 0;
}
