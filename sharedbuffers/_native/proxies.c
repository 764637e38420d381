/*
 * Proxy construction and field decoding (part of sharedbuffers._native._objects, objects.c):
 *
 *   SnapshotUnpacker   schema.unpack_from for the common shape: every attribute present and
 *                      not None, over bytes, a read-only byte memoryview or a read-only mmap.
 *                      One call reads the header, checks it, and builds the proxy tuple
 *                      (buffer, offset, has, none, fixed values...).  Over a writable buffer
 *                      (bytearray, writable memoryview or mmap) it makes the live proxy
 *                      (live_proxies.c).  Everything else (other shapes, other buffer types,
 *                      bad offsets, extra arguments) goes to the generated Python unpacker it
 *                      wraps, so results and errors are the generated code's.
 *   FieldReader        the descriptor of a variable-size attribute of a snapshot proxy: it
 *                      follows the attribute's pointer and decodes short str/bytes, numeric
 *                      lists, tuples and frozensets, and nested structs without running
 *                      Python code.  Anything else (long or compressed strings, pointer
 *                      tables, corrupt data) goes to the codec's own reader, so results and
 *                      errors are the pure-Python ones.  Immutable results are kept in the
 *                      proxy's __dict__, as LazyField does.
 *
 * The pure-Python path (SHAREDBUFFERS_PURE=1, or this module missing) gives the same values
 * and raises the same exceptions; the test suite runs both.  Every read is bounds-checked
 * against the buffer's length before memory is touched.
 */
#include "objects.h"
#include <structmember.h>

/* -- SnapshotUnpacker -------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyTypeObject *proxy_class;      /* shape class of "all present, none None" */
    PyObject *fallback;             /* the generated unpack_from: every other case */
    unsigned long long slot_mask;   /* has bitmap of the full shape */
    PyObject *has_value;            /* slot_mask as an int: every proxy shares this one */
    int bitmap_size;                /* bytes of each bitmap: 1, 2, 4 or 8 */
    Py_ssize_t snapshot_size;       /* bytes covered by header and fixed part */
    Py_ssize_t count;               /* number of fixed-size values */
    char *codes;                    /* struct code of each fixed value */
    Py_ssize_t *offsets;            /* offset of each fixed value from the struct start */
    PyObject *live_full;            /* live_full() -> the full shape's live maker, or NULL */
    PyObject *live;                 /* what it gave, once asked */
} SnapshotUnpacker;

static PyTypeObject SnapshotUnpacker_Type;

static unsigned long long
load_bitmap(const unsigned char *p, int size)
{
    switch (size) {
    case 1: return p[0];
    case 2: return load_u16(p);
    case 4: return load_u32(p);
    default: return load_u64(p);
    }
}

static PyObject *full_shape_alloc(PyTypeObject *cls, Py_ssize_t items);

/* The type of mmap objects, imported when a buffer of another type than bytes, bytearray and
 * memoryview is first seen (NULL until then, or when mmap cannot be imported). */
static PyTypeObject *mmap_type;

static int
is_mmap(PyObject *buffer)
{
    if (mmap_type == NULL) {
        PyObject *module = PyImport_ImportModule("mmap");
        PyObject *type = module != NULL ? PyObject_GetAttrString(module, "mmap") : NULL;
        Py_XDECREF(module);
        if (type == NULL || !PyType_Check(type)) {
            Py_XDECREF(type);
            PyErr_Clear();
            return 0;
        }
        mmap_type = (PyTypeObject *)type;
    }
    return Py_IS_TYPE(buffer, mmap_type);
}

/* The live proxy (live_proxies.c) of a full-shape struct over a writable buffer, made by the
 * maker `live_full()` gives (asked once); NULL without an error set when it is a case for the
 * fallback. */
static PyObject *
unpack_live(SnapshotUnpacker *self, PyObject *buffer, PyObject *offset_object)
{
    PyObject *offset, *proxy;

    if (self->live == NULL) {
        if (self->live_full == NULL)
            return NULL;
        self->live = PyObject_CallNoArgs(self->live_full);
        if (self->live == NULL)
            return NULL;
    }
    offset = offset_object != NULL ? Py_NewRef(offset_object) : PyLong_FromLong(0);
    if (offset == NULL)
        return NULL;
    if (is_live_maker(self->live))
        proxy = live_make(self->live, buffer, offset);
    else {
        PyObject *args[2] = {buffer, offset};
        proxy = PyObject_Vectorcall(self->live, args, 2, NULL);
    }
    Py_DECREF(offset);
    return proxy;
}

/* The proxy of the struct at `offset` when it has the full shape, or NULL without an
 * exception set when this is a case for the fallback.  Over bytes, a read-only byte
 * memoryview or a read-only mmap it is a snapshot; over a bytearray, a writable byte
 * memoryview or a writable mmap, a live proxy. */
static PyObject *
unpack_full_shape(SnapshotUnpacker *self, PyObject *buffer, PyObject *offset_object, Py_ssize_t known_offset)
{
    const unsigned char *data;
    Py_ssize_t size, offset = 0;
    PyObject *values[4 + 64];
    PyObject *proxy;
    Py_ssize_t i, count = self->count;
    unsigned long long has, none;
    Py_buffer exported;
    int writable, has_export = 0;

    if (PyBytes_CheckExact(buffer)) {
        data = (const unsigned char *)PyBytes_AS_STRING(buffer);
        size = PyBytes_GET_SIZE(buffer);
        writable = 0;
    }
    else if (PyByteArray_CheckExact(buffer)) {
        data = (const unsigned char *)PyByteArray_AS_STRING(buffer);
        size = PyByteArray_GET_SIZE(buffer);
        writable = 1;
    }
    else if (PyMemoryView_Check(buffer)) {
        /* A one-dimensional byte view still holding its buffer.  The proxy keeps a reference
         * to the view, and the view keeps its exporter alive. */
        Py_buffer *view = PyMemoryView_GET_BUFFER(buffer);
        if (view->ndim != 1 || view->itemsize != 1 || view->buf == NULL
                || view->format == NULL || strcmp(view->format, "B") != 0
                || (view->strides != NULL && view->strides[0] != 1))
            return NULL;
        /* A released view: let the generic path raise its ValueError. */
        if (((PyMemoryViewObject *)buffer)->flags & _Py_MEMORYVIEW_RELEASED)
            return NULL;
        data = (const unsigned char *)view->buf;
        size = view->len;
        writable = !view->readonly;
    }
    else if (is_mmap(buffer)) {
        /* Read through an export held for this call only (a closed mmap refuses it, and the
         * generic path raises its error); the proxy keeps a reference to the mmap. */
        if (PyObject_GetBuffer(buffer, &exported, PyBUF_SIMPLE) < 0) {
            PyErr_Clear();
            return NULL;
        }
        has_export = 1;
        data = (const unsigned char *)exported.buf;
        size = exported.len;
        writable = !exported.readonly;
    }
    else
        return NULL;

    if (known_offset >= 0)
        offset = known_offset;
    else if (offset_object != NULL) {
        if (!PyLong_CheckExact(offset_object))
            goto fallback;
        offset = PyLong_AsSsize_t(offset_object);
        if (offset == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            goto fallback;
        }
    }
    if (!in_bounds(offset, self->snapshot_size, size))
        goto fallback;
    has = load_bitmap(data + offset, self->bitmap_size);
    none = load_bitmap(data + offset + self->bitmap_size, self->bitmap_size);
    if (has != self->slot_mask || none != 0)
        goto fallback;
    if (writable) {
        if (has_export)
            PyBuffer_Release(&exported);
        return unpack_live(self, buffer, offset_object);
    }

    values[0] = Py_NewRef(buffer);
    values[1] = offset_object != NULL ? Py_NewRef(offset_object) : PyLong_FromLong(0);
    values[2] = Py_NewRef(self->has_value);
    values[3] = PyLong_FromLong(0);
    for (i = 0; i < count; i++)
        values[4 + i] = decode_number(self->codes[i], data + offset + self->offsets[i]);
    if (has_export)
        PyBuffer_Release(&exported);
    for (i = 0; i < 4 + count; i++)
        if (values[i] == NULL)
            goto error;

    proxy = full_shape_alloc(self->proxy_class, 4 + count);
    if (proxy == NULL)
        goto error;
    for (i = 0; i < 4 + count; i++)
        PyTuple_SET_ITEM(proxy, i, values[i]);
    return proxy;

error:
    for (i = 0; i < 4 + count; i++)
        Py_XDECREF(values[i]);
    if (!PyErr_Occurred())
        PyErr_NoMemory();
    return NULL;

fallback:
    if (has_export)
        PyBuffer_Release(&exported);
    return NULL;
}

static PyObject *
unpacker_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    SnapshotUnpacker *self = (SnapshotUnpacker *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);

    if (kwnames == NULL && (nargs == 1 || nargs == 2)) {
        PyObject *proxy = unpack_full_shape(self, args[0], nargs == 2 ? args[1] : NULL, -1);
        if (proxy != NULL || PyErr_Occurred())
            return proxy;
    }
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

/* unpack(buffer, offset) for C callers (typed array items): `offset_object` is the int
 * `offset` (>= 0).  A SnapshotUnpacker is run without a call through Python's machinery; any
 * other callable is called. */
PyObject *
snapshot_unpack(PyObject *unpack, PyObject *buffer, PyObject *offset_object, Py_ssize_t offset)
{
    PyObject *args[2] = {buffer, offset_object};

    if (Py_IS_TYPE(unpack, &SnapshotUnpacker_Type)) {
        SnapshotUnpacker *self = (SnapshotUnpacker *)unpack;
        PyObject *proxy = unpack_full_shape(self, buffer, offset_object, offset);
        if (proxy != NULL || PyErr_Occurred())
            return proxy;
        return PyObject_Vectorcall(self->fallback, args, 2, NULL);
    }
    return PyObject_Vectorcall(unpack, args, 2, NULL);
}

static PyObject *
unpacker_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"proxy_class", "fallback", "slot_mask", "bitmap_size",
                               "snapshot_size", "fields", "live_full", NULL};
    PyObject *proxy_class, *fallback, *fields, *sequence = NULL, *live_full = Py_None;
    unsigned long long slot_mask;
    int bitmap_size;
    Py_ssize_t snapshot_size, i;
    SnapshotUnpacker *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!OKinO|O:SnapshotUnpacker", keywords,
                                     &PyType_Type, &proxy_class, &fallback, &slot_mask,
                                     &bitmap_size, &snapshot_size, &fields, &live_full))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)proxy_class, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "proxy_class must be a tuple subclass");
        return NULL;
    }
    if (!PyCallable_Check(fallback) || (live_full != Py_None && !PyCallable_Check(live_full))) {
        PyErr_SetString(PyExc_TypeError, "fallback and live_full must be callable");
        return NULL;
    }
    if (bitmap_size != 1 && bitmap_size != 2 && bitmap_size != 4 && bitmap_size != 8) {
        PyErr_Format(PyExc_ValueError, "bitmap_size must be 1, 2, 4 or 8, not %d", bitmap_size);
        return NULL;
    }
    sequence = PySequence_Fast(fields, "fields must be a sequence of (code, offset) pairs");
    if (sequence == NULL)
        return NULL;
    if (PySequence_Fast_GET_SIZE(sequence) > 64) {
        PyErr_SetString(PyExc_ValueError, "a struct holds at most 64 fixed-size values");
        goto error;
    }
    self = (SnapshotUnpacker *)type->tp_alloc(type, 0);
    if (self == NULL)
        goto error;
    self->vectorcall = unpacker_vectorcall;
    self->proxy_class = (PyTypeObject *)Py_NewRef(proxy_class);
    self->fallback = Py_NewRef(fallback);
    self->live_full = live_full != Py_None ? Py_NewRef(live_full) : NULL;
    self->slot_mask = slot_mask;
    self->has_value = PyLong_FromUnsignedLongLong(slot_mask);
    self->bitmap_size = bitmap_size;
    self->snapshot_size = snapshot_size;
    self->count = PySequence_Fast_GET_SIZE(sequence);
    self->codes = PyMem_Calloc(self->count + 1, 1);
    self->offsets = PyMem_Calloc(self->count + 1, sizeof(Py_ssize_t));
    if (self->has_value == NULL) {
        Py_DECREF(self);
        goto error;
    }
    if (self->codes == NULL || self->offsets == NULL) {
        Py_DECREF(self);
        PyErr_NoMemory();
        goto error;
    }
    for (i = 0; i < self->count; i++) {
        const char *code;
        Py_ssize_t offset;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(sequence, i), "sn", &code, &offset)) {
            Py_DECREF(self);
            goto error;
        }
        if (strlen(code) != 1 || code_size(code[0]) == 0) {
            PyErr_Format(PyExc_ValueError, "unsupported struct code %R", PySequence_Fast_GET_ITEM(sequence, i));
            Py_DECREF(self);
            goto error;
        }
        if (offset < 2 * bitmap_size || offset > snapshot_size - code_size(code[0])) {
            PyErr_Format(PyExc_ValueError, "field offset %zd outside the snapshot of %zd bytes",
                         offset, snapshot_size);
            Py_DECREF(self);
            goto error;
        }
        self->codes[i] = code[0];
        self->offsets[i] = offset;
    }
    Py_DECREF(sequence);
    return (PyObject *)self;

error:
    Py_XDECREF(sequence);
    return NULL;
}

static int
unpacker_traverse(SnapshotUnpacker *self, visitproc visit, void *arg)
{
    Py_VISIT(self->proxy_class);
    Py_VISIT(self->fallback);
    Py_VISIT(self->live_full);
    Py_VISIT(self->live);
    return 0;
}

static int
unpacker_clear(SnapshotUnpacker *self)
{
    Py_CLEAR(self->proxy_class);
    Py_CLEAR(self->has_value);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->live_full);
    Py_CLEAR(self->live);
    return 0;
}

static void
unpacker_dealloc(SnapshotUnpacker *self)
{
    PyObject_GC_UnTrack(self);
    unpacker_clear(self);
    PyMem_Free(self->codes);
    PyMem_Free(self->offsets);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
unpacker_get_fallback(SnapshotUnpacker *self, void *closure)
{
    return Py_NewRef(self->fallback);
}

static PyGetSetDef unpacker_getset[] = {
    {"fallback", (getter)unpacker_get_fallback, NULL, "the generated unpack_from this one wraps", NULL},
    {NULL}
};

static PyTypeObject SnapshotUnpacker_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sharedbuffers._native._objects.SnapshotUnpacker",
    .tp_basicsize = sizeof(SnapshotUnpacker),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "unpack_from(buf, offs=0, ...) of one schema: the full shape over bytes, byte memoryviews, "
              "bytearrays and mmaps in C (a live proxy over a writable buffer, from the maker live_full() gives), "
              "everything else through the generated fallback.",
    .tp_new = unpacker_new,
    .tp_dealloc = (destructor)unpacker_dealloc,
    .tp_traverse = (traverseproc)unpacker_traverse,
    .tp_clear = (inquiry)unpacker_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(SnapshotUnpacker, vectorcall),
    .tp_getset = unpacker_getset,
};

/* -- FieldReader ------------------------------------------------------------------------- */

enum field_kind {
    KIND_GENERIC = 0,   /* read(buffer, position) */
    KIND_BYTES = 1,
    KIND_STR = 2,
    KIND_LIST = 3,
    KIND_TUPLE = 4,
    KIND_FROZENSET = 5,
    KIND_STRUCT = 6,    /* read is the nested schema: read.unpack_from(buffer, position) */
    KIND_DICT = 7,
    KIND_OBJECT = 8,    /* an RTTI-wrapped value (`object` slots) */
};

/* What values.c reads for each kind (-1: nothing more than above). */
static int
value_kind_of(int kind)
{
    switch (kind) {
    case KIND_LIST: return VALUE_LIST;
    case KIND_TUPLE: return VALUE_TUPLE;
    case KIND_FROZENSET: return VALUE_SET;
    case KIND_DICT: return VALUE_DICT;
    case KIND_OBJECT: return VALUE_RTTI;
    default: return -1;
    }
}

typedef struct {
    PyObject_HEAD
    PyObject *name;
    PyObject *read;
    PyObject *immutable_types;      /* a frozenset: values of these types are cached */
    PyObject *proxy_base;           /* and so are proxies (instances of this class) */
    Py_ssize_t pointer_offset;      /* of the attribute's 8-byte pointer, from the struct start */
    int kind;
} FieldReader;

static int
is_cacheable(FieldReader *self, PyObject *value)
{
    int known = PySet_Contains(self->immutable_types, (PyObject *)Py_TYPE(value));
    if (known != 0)
        return known;
    return PyType_IsSubtype(Py_TYPE(value), (PyTypeObject *)self->proxy_base);
}

static PyObject *unpack_from_name;     /* interned "unpack_from" */

/* The value at `position` (a Python int) read by the codec's own reader. */
static PyObject *
read_with_codec(FieldReader *self, PyObject *buffer, PyObject *position_object)
{
    PyObject *value;
    if (self->kind == KIND_STRUCT) {
        PyObject *args[3] = {self->read, buffer, position_object};
        value = PyObject_VectorcallMethod(unpack_from_name, args,
                                          3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    else {
        PyObject *args[2] = {buffer, position_object};
        value = PyObject_Vectorcall(self->read, args, 2, NULL);
    }
    return value;
}

static PyObject *remember(FieldReader *self, PyObject *proxy, PyObject *value);
static PyObject *read_far_outside(FieldReader *self, PyObject *proxy, PyObject *buffer,
                                  Py_ssize_t start, int64_t pointer);

static PyObject *
field_get(PyObject *descriptor, PyObject *proxy, PyObject *owner)
{
    FieldReader *self = (FieldReader *)descriptor;
    PyObject *buffer, *value = NOT_HANDLED;
    Py_ssize_t start, position;
    int64_t pointer;
    ByteSpan span;

    if (proxy == NULL || proxy == Py_None)
        return Py_NewRef(descriptor);
    if (!PyTuple_Check(proxy) || PyTuple_GET_SIZE(proxy) < 2) {
        PyErr_Format(PyExc_TypeError, "field %R reads snapshot proxies, not %.100s",
                     self->name, Py_TYPE(proxy)->tp_name);
        return NULL;
    }
    buffer = PyTuple_GET_ITEM(proxy, 0);
    start = PyLong_AsSsize_t(PyTuple_GET_ITEM(proxy, 1));
    if (start == -1 && PyErr_Occurred())
        return NULL;
    if (span_open(buffer, &span) < 0)
        return NULL;
    if (start < 0 || self->pointer_offset > PY_SSIZE_T_MAX - start
            || !in_bounds(start + self->pointer_offset, 8, span.size)) {
        PyErr_Format(PyExc_IndexError, "pointer of attribute %R at offset %zd is outside the buffer "
                     "of %zd bytes", self->name, start + self->pointer_offset, span.size);
        span_close(&span);
        return NULL;
    }
    pointer = load_i64(span.data + start + self->pointer_offset);
    if (pointer > 0 && pointer > PY_SSIZE_T_MAX - start) {
        /* Far outside any buffer: the codec's reader says so. */
        span_close(&span);
        return read_far_outside(self, proxy, buffer, start, pointer);
    }
    position = start + (Py_ssize_t)pointer;
    switch (self->kind) {
    case KIND_BYTES: value = decode_short_string(&span, position, 0); break;
    case KIND_STR: value = decode_short_string(&span, position, 1); break;
    case KIND_LIST: value = decode_numeric_sequence(&span, position, 0); break;
    case KIND_TUPLE: value = decode_numeric_sequence(&span, position, 1); break;
    case KIND_FROZENSET: value = decode_numeric_frozenset(&span, position); break;
    default: break;
    }
    span_close(&span);
    if (value == NOT_HANDLED && value_kind_of(self->kind) >= 0)
        value = decode_value(buffer, position, value_kind_of(self->kind));   /* mixed items */
    if (value == NULL)
        return NULL;
    if (value == NOT_HANDLED) {
        PyObject *position_object = PyLong_FromSsize_t(position);
        if (position_object == NULL)
            return NULL;
        value = read_with_codec(self, buffer, position_object);
        Py_DECREF(position_object);
        if (value == NULL)
            return NULL;
    }
    return remember(self, proxy, value);
}

static PyObject *
read_far_outside(FieldReader *self, PyObject *proxy, PyObject *buffer, Py_ssize_t start, int64_t pointer)
{
    PyObject *start_object, *pointer_object, *position_object, *value;

    start_object = PyLong_FromSsize_t(start);
    pointer_object = PyLong_FromLongLong(pointer);
    position_object = start_object && pointer_object ? PyNumber_Add(start_object, pointer_object) : NULL;
    Py_XDECREF(start_object);
    Py_XDECREF(pointer_object);
    if (position_object == NULL)
        return NULL;
    value = read_with_codec(self, buffer, position_object);
    Py_DECREF(position_object);
    return value == NULL ? NULL : remember(self, proxy, value);
}

/* `value`, stored in the proxy's __dict__ first when it is immutable (later reads of the
 * attribute find it there: this descriptor is a non-data one). */
static PyObject *
remember(FieldReader *self, PyObject *proxy, PyObject *value)
{
    PyObject *attributes;
    int cacheable = is_cacheable(self, value);
    if (cacheable < 0)
        goto error;
    if (cacheable) {
        attributes = PyObject_GenericGetDict(proxy, NULL);
        if (attributes == NULL)
            goto error;
        if (PyDict_SetItem(attributes, self->name, value) < 0) {
            Py_DECREF(attributes);
            goto error;
        }
        Py_DECREF(attributes);
    }
    return value;

error:
    Py_DECREF(value);
    return NULL;
}

/* A FieldReader of `type` from arguments already checked (by field_new, or by snapshot_layout,
 * which makes them without parsing a call). */
static PyObject *
new_field_reader(PyTypeObject *type, PyObject *name, Py_ssize_t pointer_offset, int kind, PyObject *read,
                 PyObject *immutable_types, PyObject *proxy_base)
{
    FieldReader *self = (FieldReader *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->name = Py_NewRef(name);
    self->read = Py_NewRef(read);
    self->immutable_types = Py_NewRef(immutable_types);
    self->proxy_base = Py_NewRef(proxy_base);
    self->pointer_offset = pointer_offset;
    self->kind = kind;
    return (PyObject *)self;
}

static PyObject *
field_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"name", "pointer_offset", "kind", "read", "immutable_types",
                               "proxy_base", NULL};
    PyObject *name, *read, *immutable_types, *proxy_base;
    Py_ssize_t pointer_offset;
    int kind;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "UniOO!O!:FieldReader", keywords, &name,
                                     &pointer_offset, &kind, &read, &PyFrozenSet_Type,
                                     &immutable_types, &PyType_Type, &proxy_base))
        return NULL;
    if (kind < KIND_GENERIC || kind > KIND_OBJECT) {
        PyErr_Format(PyExc_ValueError, "unknown field kind %d", kind);
        return NULL;
    }
    if (pointer_offset < 0) {
        PyErr_SetString(PyExc_ValueError, "pointer_offset must not be negative");
        return NULL;
    }
    if (kind != KIND_STRUCT && !PyCallable_Check(read)) {
        PyErr_SetString(PyExc_TypeError, "read must be callable");
        return NULL;
    }
    return new_field_reader(type, name, pointer_offset, kind, read, immutable_types, proxy_base);
}

static int
field_traverse(FieldReader *self, visitproc visit, void *arg)
{
    Py_VISIT(self->name);
    Py_VISIT(self->read);
    Py_VISIT(self->immutable_types);
    Py_VISIT(self->proxy_base);
    return 0;
}

static int
field_clear(FieldReader *self)
{
    Py_CLEAR(self->name);
    Py_CLEAR(self->read);
    Py_CLEAR(self->immutable_types);
    Py_CLEAR(self->proxy_base);
    return 0;
}

static void
field_dealloc(FieldReader *self)
{
    PyObject_GC_UnTrack(self);
    field_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
field_repr(FieldReader *self)
{
    return PyUnicode_FromFormat("<field %U: pointer at +%zd, kind %d>", self->name,
                                self->pointer_offset, self->kind);
}

static PyMemberDef field_members[] = {
    {"name", T_OBJECT_EX, offsetof(FieldReader, name), READONLY, "the attribute's name"},
    {"pointer_offset", T_PYSSIZET, offsetof(FieldReader, pointer_offset), READONLY,
     "offset of the attribute's pointer from the struct start"},
    {"read", T_OBJECT_EX, offsetof(FieldReader, read), READONLY,
     "the codec's reader (the nested schema for struct attributes)"},
    {"kind", T_INT, offsetof(FieldReader, kind), READONLY, "what the fast path decodes"},
    {NULL}
};

static PyTypeObject FieldReader_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sharedbuffers._native._objects.FieldReader",
    .tp_basicsize = sizeof(FieldReader),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A variable-size attribute of snapshot proxies, decoded on first read.",
    .tp_new = field_new,
    .tp_dealloc = (destructor)field_dealloc,
    .tp_traverse = (traverseproc)field_traverse,
    .tp_clear = (inquiry)field_clear,
    .tp_descr_get = field_get,
    .tp_repr = (reprfunc)field_repr,
    .tp_members = field_members,
};

/* -- snapshot_layout --------------------------------------------------------------------- */

/* Interned attribute names (a name made from a C string per call is a new str to hash). */
static PyObject *write_name, *read_name, *nested_schema_name;

/* getattr(obj, name, None) as a new reference; NULL only with an error other than
 * AttributeError set. */
static PyObject *
optional_attribute(PyObject *obj, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        return Py_NewRef(Py_None);
    }
    return value;
}

/* The reader of a variable-size slot whose codec is `codec`: what struct_proxy._lazy_field
 * makes for a read-only snapshot class.  Sets *unhandled (and returns NULL without an error)
 * for a class that is not a codec yet (not registered): Schema._codec_of words that error. */
static PyObject *
variable_field_reader(PyObject *name, Py_ssize_t pointer_offset, PyObject *codec, PyObject *field_kinds,
                      PyObject *immutable_types, PyObject *proxy_base, int *unhandled)
{
    PyObject *kind_object = NULL, *read = NULL, *reader;
    long kind;

    if (PyType_Check(codec)) {
        PyObject *write = optional_attribute(codec, write_name);
        if (write == NULL)
            return NULL;
        Py_DECREF(write);
        if (write == Py_None) {
            *unhandled = 1;
            return NULL;
        }
        kind_object = PyDict_GetItemWithError(field_kinds, codec);
        if (kind_object == NULL && PyErr_Occurred())
            return NULL;
    }
    if (kind_object != NULL) {          /* the common codecs (classes), known without nested_schema */
        kind = PyLong_AsLong(kind_object);
        if (kind == -1 && PyErr_Occurred())
            return NULL;
        read = PyObject_GetAttr(codec, read_name);
    }
    else {
        PyObject *nested = optional_attribute(codec, nested_schema_name);
        if (nested == NULL)
            return NULL;
        if (nested != Py_None) {
            kind = KIND_STRUCT;
            read = nested;
        }
        else {
            Py_DECREF(nested);
            kind = KIND_GENERIC;
            read = PyObject_GetAttr(codec, read_name);
        }
    }
    if (read == NULL)
        return NULL;
    if (kind < KIND_GENERIC || kind > KIND_OBJECT) {
        PyErr_Format(PyExc_ValueError, "unknown field kind %ld", kind);
        Py_DECREF(read);
        return NULL;
    }
    if (kind != KIND_STRUCT && !PyCallable_Check(read)) {
        PyErr_SetString(PyExc_TypeError, "read must be callable");
        Py_DECREF(read);
        return NULL;
    }
    reader = new_field_reader(&FieldReader_Type, name, pointer_offset, (int)kind, read, immutable_types, proxy_base);
    Py_DECREF(read);
    return reader;
}

/* What snapshot_layout collects, slot by slot. */
typedef struct {
    PyObject *item_fields, *fixed, *unpacker_fields;    /* lists (see snapshot_layout) */
    char codes[2 * 64 + 4];     /* the snapshot format: "=", 2 bitmap codes, at most "8x" per slot */
    Py_ssize_t length;          /* of codes */
    Py_ssize_t offset;          /* of the next slot from the struct start */
    Py_ssize_t index;           /* of the next fixed-size value in the proxy tuple */
} FullLayout;

/* Adds a fixed-size slot stored with struct code `code_object` (a one-character str). */
static int
place_fixed_slot(PyObject *name, PyObject *code_object, FullLayout *layout, int *unhandled)
{
    const char *code = PyUnicode_Check(code_object) ? PyUnicode_AsUTF8(code_object) : NULL;
    PyObject *entry;

    if (code == NULL && PyErr_Occurred())
        return -1;
    if (code == NULL || strlen(code) != 1 || code_size(code[0]) == 0) {
        *unhandled = 1;
        return -1;
    }
    entry = Py_BuildValue("(On)", name, layout->index);
    if (entry == NULL || PyList_Append(layout->item_fields, entry) < 0)
        goto error;
    Py_DECREF(entry);
    entry = Py_BuildValue("(OOn)", name, code_object, layout->offset);
    if (entry == NULL || PyList_Append(layout->fixed, entry) < 0)
        goto error;
    Py_DECREF(entry);
    entry = Py_BuildValue("(On)", code_object, layout->offset);
    if (entry == NULL || PyList_Append(layout->unpacker_fields, entry) < 0)
        goto error;
    Py_DECREF(entry);
    layout->codes[layout->length++] = code[0];
    layout->offset += code_size(code[0]);
    layout->index++;
    return 0;

error:
    Py_XDECREF(entry);
    return -1;
}

/* snapshot_layout(slot_keys, slot_types, fixed_formats, bitmap_code, field_kinds,
 *                 immutable_types, proxy_base)
 *   -> (readers, item_fields, fixed, unpacker_fields, snapshot_format, fixed_size), or None
 *
 * The layout of a schema's full shape (every slot present, none None) and what its read-only
 * snapshot class is made of, in one call:
 *   readers          {name: FieldReader} of the variable-size slots, in slot order
 *   item_fields      [(name, tuple index)] of the fixed-size slots (index 4 on: after the
 *                    buffer, offset and bitmaps)
 *   fixed            [(name, struct code, offset)] of the fixed-size slots
 *   unpacker_fields  [(struct code, offset)] of the same, as SnapshotUnpacker takes them
 *   snapshot_format  Shape.snapshot_format; fixed_size: Shape.fixed_size
 * `fixed_formats` maps fixed-size slot types to struct codes, `field_kinds` codec classes to
 * FieldReader kinds.  Any other slot type is a codec, read as struct_proxy._lazy_field reads it.
 *
 * None means "not here": a slot type the Python code handles itself (an unhashable or
 * unregistered one, an odd struct code).  The caller then computes the Shape in Python, which
 * gives the same layout and raises the errors the schema words.
 *
 * Why: this runs when a file is first read in a process.  In Python (Shape.__init__, then the
 * class's field loop and one _lazy_field call per pointer) it ran about a thousand bytecodes,
 * each touching code and objects for the first time: 100-150 us of a cold open. */
static PyObject *
snapshot_layout(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *slot_keys, *slot_types, *fixed_formats, *field_kinds, *immutable_types, *proxy_base;
    PyObject *readers = NULL, *result = NULL, *format = NULL;
    FullLayout layout = {.index = 4};     /* items 0-3: buffer, offset, has and none bitmaps */
    const char *bitmap_code;
    Py_ssize_t count, i;
    int unhandled = 0;

    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "snapshot_layout takes 7 arguments");
        return NULL;
    }
    slot_keys = args[0];
    slot_types = args[1];
    fixed_formats = args[2];
    field_kinds = args[4];
    immutable_types = args[5];
    proxy_base = args[6];
    if (!PyTuple_Check(slot_keys) || !PyDict_Check(slot_types)
            || !PyDict_Check(fixed_formats) || !PyUnicode_Check(args[3]) || !PyDict_Check(field_kinds)
            || !PyFrozenSet_Check(immutable_types) || !PyType_Check(proxy_base)) {
        PyErr_SetString(PyExc_TypeError,
                        "snapshot_layout(tuple, dict, dict, str, dict, frozenset, class)");
        return NULL;
    }
    count = PyTuple_GET_SIZE(slot_keys);
    bitmap_code = PyUnicode_AsUTF8(args[3]);
    if (bitmap_code == NULL)
        return NULL;
    if (count > 64 || strlen(bitmap_code) != 1 || code_size(bitmap_code[0]) == 0)
        Py_RETURN_NONE;
    layout.codes[layout.length++] = '=';
    layout.codes[layout.length++] = bitmap_code[0];
    layout.codes[layout.length++] = bitmap_code[0];
    layout.offset = 2 * code_size(bitmap_code[0]);

    readers = PyDict_New();
    layout.item_fields = PyList_New(0);
    layout.fixed = PyList_New(0);
    layout.unpacker_fields = PyList_New(0);
    if (readers == NULL || layout.item_fields == NULL || layout.fixed == NULL || layout.unpacker_fields == NULL)
        goto done;
    for (i = 0; i < count; i++) {
        PyObject *name = PyTuple_GET_ITEM(slot_keys, i), *slot_type, *code_object;
        int placed;

        if (!PyUnicode_Check(name)) {
            unhandled = 1;
            goto done;
        }
        slot_type = PyDict_GetItemWithError(slot_types, name);
        if (slot_type == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetObject(PyExc_KeyError, name);
            goto done;
        }
        Py_INCREF(slot_type);       /* hashing it or reading its attributes may run Python code */
        code_object = PyDict_GetItemWithError(fixed_formats, slot_type);
        Py_XINCREF(code_object);
        if (code_object == NULL && PyErr_Occurred()) {
            if (PyErr_ExceptionMatches(PyExc_TypeError)) {      /* unhashable: the Python path's case */
                PyErr_Clear();
                unhandled = 1;
            }
            placed = -1;
        }
        else if (code_object != NULL) {
            placed = place_fixed_slot(name, code_object, &layout, &unhandled);
        }
        else {
            PyObject *reader = variable_field_reader(name, layout.offset, slot_type, field_kinds, immutable_types,
                                                     proxy_base, &unhandled);
            placed = reader == NULL ? -1 : PyDict_SetItem(readers, name, reader);
            Py_XDECREF(reader);
            if (placed == 0) {
                layout.codes[layout.length++] = '8';
                layout.codes[layout.length++] = 'x';
                layout.offset += 8;
            }
        }
        Py_DECREF(slot_type);
        Py_XDECREF(code_object);
        if (placed < 0)
            goto done;
    }
    format = PyUnicode_FromStringAndSize(layout.codes, layout.length);
    if (format != NULL)
        result = Py_BuildValue("(OOOOOn)", readers, layout.item_fields, layout.fixed, layout.unpacker_fields,
                               format, layout.offset);

done:
    Py_XDECREF(readers);
    Py_XDECREF(layout.item_fields);
    Py_XDECREF(layout.fixed);
    Py_XDECREF(layout.unpacker_fields);
    Py_XDECREF(format);
    if (result == NULL && unhandled && !PyErr_Occurred())
        Py_RETURN_NONE;
    return result;
}

/* -- registration ------------------------------------------------------------------------ */

/* -- item_fields ------------------------------------------------------------------------- */

/* What a class's item fields need beyond the descriptors: the PyMemberDef entries (a member
 * descriptor points at its entry and does not own it) and how many items every instance must
 * have room for.  Kept in a capsule in the class's namespace, so it lives as long as the class;
 * every descriptor holds a reference to the class. */
typedef struct {
    Py_ssize_t items_needed;
    PyMemberDef defs[];
} ItemFieldDefs;

static const char item_fields_capsule[] = "sharedbuffers.item_fields";
static PyObject *item_fields_name;         /* interned "_proxy_item_fields" */

static void
free_item_field_defs(PyObject *capsule)
{
    PyMem_Free(PyCapsule_GetPointer(capsule, item_fields_capsule));
}

/* How many items instances of `type` must have room for (0 when it has no item fields). */
static Py_ssize_t
items_needed(PyTypeObject *type)
{
    PyObject *mro = type->tp_mro;
    Py_ssize_t i;

    for (i = 0; mro != NULL && i < PyTuple_GET_SIZE(mro); i++) {
        PyObject *namespace = ((PyTypeObject *)PyTuple_GET_ITEM(mro, i))->tp_dict;
        PyObject *capsule = namespace != NULL ? PyDict_GetItemWithError(namespace, item_fields_name) : NULL;
        if (capsule != NULL && PyCapsule_IsValid(capsule, item_fields_capsule))
            return ((ItemFieldDefs *)PyCapsule_GetPointer(capsule, item_fields_capsule))->items_needed;
        if (PyErr_Occurred())
            PyErr_Clear();
    }
    return 0;
}

/* tp_alloc of classes with item fields.  A member descriptor reads its item at a fixed offset
 * without looking at the tuple's length, so a shorter instance (made by tuple.__new__(cls, ...)
 * with too few values) must still own that memory: it gets zeroed room for every item the
 * fields read, and its length stays what was asked.  A descriptor reading past the length then
 * finds NULL (AttributeError) or the instance's __dict__ slot, never memory of another object. */
static PyObject *
proxy_alloc(PyTypeObject *type, Py_ssize_t items)
{
    Py_ssize_t needed = items_needed(type);
    PyObject *object;

    if (items >= needed)
        return PyType_GenericAlloc(type, items);
    object = PyType_GenericAlloc(type, needed + 1);     /* + the __dict__ slot after the items */
    if (object != NULL)
        Py_SET_SIZE(object, items);
    return object;
}

/* tp_dealloc of the classes snapshot_class makes: what subtype_dealloc and then tuple's
 * deallocator do for their instances (a finalizer if one was added to the class later, the
 * __dict__, the items, the memory, the reference to the class), in one pass.  subtype_dealloc
 * walks the bases twice and tracks, untracks and enters the trashcan twice: on a record read
 * at random (make a proxy, read a field, drop it) that was a tenth of the time.  Instances of a
 * Python subclass still go through subtype_dealloc, which calls this one as its base's. */
#if PY_VERSION_HEX >= 0x030B0000
static void
snapshot_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject **dict;
    Py_ssize_t i;

    PyObject_GC_UnTrack(self);
    Py_TRASHCAN_BEGIN(self, snapshot_dealloc)
    if (type->tp_finalize != NULL) {
        PyObject_GC_Track(self);
        if (PyObject_CallFinalizerFromDealloc(self) < 0)
            goto resurrected;
        PyObject_GC_UnTrack(self);
    }
    dict = _PyObject_GetDictPtr(self);
    if (dict != NULL)
        Py_CLEAR(*dict);
    for (i = Py_SIZE(self); --i >= 0;)
        Py_XDECREF(PyTuple_GET_ITEM(self, i));
    type->tp_free(self);
    Py_DECREF(type);
resurrected:
    Py_TRASHCAN_END
}
#endif

/* The SnapshotUnpacker's allocation: it always fills every item, so proxy_alloc's check is not
 * needed. */
static PyObject *
full_shape_alloc(PyTypeObject *cls, Py_ssize_t items)
{
    if (cls->tp_alloc == proxy_alloc)
        return PyType_GenericAlloc(cls, items);
    return cls->tp_alloc(cls, items);
}

/* The member definitions of item fields: one read-only object member per (name, index) pair
 * of `fields`, at that item's offset, followed by `extra` zeroed entries for the caller and the
 * end marker, with their names copied into the same block.  The block is owned by the capsule
 * stored in *capsule; `caller` names the function in errors. */
static ItemFieldDefs *
new_item_field_defs(PyObject *fields, Py_ssize_t extra, const char *caller, PyObject **capsule)
{
    ItemFieldDefs *block;
    char *names;
    Py_ssize_t count = PyList_GET_SIZE(fields), i, names_size = 0, needed = 0;

    for (i = 0; i < count; i++) {
        PyObject *field = PyList_GET_ITEM(fields, i);
        Py_ssize_t length, index;
        if (!PyTuple_Check(field) || PyTuple_GET_SIZE(field) != 2 || !PyUnicode_Check(PyTuple_GET_ITEM(field, 0))) {
            PyErr_Format(PyExc_TypeError, "%s: fields are (name, index) pairs", caller);
            return NULL;
        }
        if (PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(field, 0), &length) == NULL)
            return NULL;
        index = PyLong_AsSsize_t(PyTuple_GET_ITEM(field, 1));
        if (index == -1 && PyErr_Occurred())
            return NULL;
        if (index < 0 || index > 4096) {
            PyErr_Format(PyExc_ValueError, "%s: item index %zd out of range", caller, index);
            return NULL;
        }
        if (index + 1 > needed)
            needed = index + 1;
        names_size += length + 1;
    }
    block = PyMem_Calloc(1, sizeof(ItemFieldDefs) + (count + extra + 1) * sizeof(PyMemberDef) + names_size);
    if (block == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    block->items_needed = needed;
    *capsule = PyCapsule_New(block, item_fields_capsule, free_item_field_defs);
    if (*capsule == NULL) {
        PyMem_Free(block);
        return NULL;
    }
    names = (char *)(block->defs + count + extra + 1);
    for (i = 0; i < count; i++) {
        PyObject *field = PyList_GET_ITEM(fields, i);
        PyMemberDef *def = &block->defs[i];
        Py_ssize_t length;
        const char *name = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(field, 0), &length);

        memcpy(names, name, length + 1);
        def->name = names;
        names += length + 1;
        def->type = T_OBJECT_EX;
        def->offset = offsetof(PyTupleObject, ob_item)
                      + sizeof(PyObject *) * PyLong_AsSsize_t(PyTuple_GET_ITEM(field, 1));
        def->flags = READONLY;
    }
    return block;
}

/* item_fields(cls, fields): a dict of member descriptors, one per (name, index) pair of
 * `fields`, each reading item `index` of `cls` (a tuple subclass), plus the capsule owning
 * their definitions under "_proxy_item_fields".  It also gives `cls` the tp_alloc above.
 *
 * Why: a tuple keeps its items inline, so item i is at a fixed offset of the object, which is
 * what a member descriptor reads.  The interpreter specializes attribute reads of member
 * descriptors (3.11+: LOAD_ATTR_SLOT, a type-version check and one load) but not of
 * collections._tuplegetter, whose reads take the generic lookup: `p.id` costs a third. */
static PyObject *
item_fields(PyObject *module, PyObject *args)
{
    PyTypeObject *cls;
    PyObject *fields, *result = NULL, *capsule = NULL;
    ItemFieldDefs *block;
    Py_ssize_t count, i;

    if (!PyArg_ParseTuple(args, "O!O!:item_fields", &PyType_Type, &cls, &PyList_Type, &fields))
        return NULL;
    if (!PyType_IsSubtype(cls, &PyTuple_Type) || !(cls->tp_flags & Py_TPFLAGS_HEAPTYPE)
            || (cls->tp_alloc != PyType_GenericAlloc && cls->tp_alloc != proxy_alloc)) {
        PyErr_SetString(PyExc_TypeError, "item_fields: the class must be a tuple subclass made by a class statement");
        return NULL;
    }
    block = new_item_field_defs(fields, 0, "item_fields", &capsule);
    if (block == NULL)
        return NULL;
    result = PyDict_New();
    if (result == NULL || PyDict_SetItem(result, item_fields_name, capsule) < 0)
        goto error;
    count = PyList_GET_SIZE(fields);
    for (i = 0; i < count; i++) {
        PyObject *descriptor = PyDescr_NewMember(cls, &block->defs[i]);
        if (descriptor == NULL || PyDict_SetItem(result, PyTuple_GET_ITEM(PyList_GET_ITEM(fields, i), 0), descriptor) < 0) {
            Py_XDECREF(descriptor);
            goto error;
        }
        Py_DECREF(descriptor);
    }
    /* Before any descriptor can be reached through the class, every new instance is big
     * enough for it. */
    cls->tp_alloc = proxy_alloc;
    Py_DECREF(capsule);
    return result;

error:
    Py_XDECREF(result);
    Py_DECREF(capsule);
    return NULL;
}

/* -- snapshot_class ---------------------------------------------------------------------- */
#if PY_VERSION_HEX >= 0x030B0000

static PyGetSetDef snapshot_class_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL}
};

/* snapshot_class(qualified_name, base, metaclass, namespace, fields) -> the class that
 *     cls = metaclass(name, (base,), namespace); item_fields(cls, fields)
 * makes (what base.__init_subclass__ does for a shape class), built from a type spec instead.
 *
 * Why: a shape class is made when a file is first read in a process, and type() made it in
 * 45 us of a 350 us cold open.  type() looks every special method name (about ninety) up
 * along the bases' dictionaries to set the new class's slots, then runs __init_subclass__ in
 * Python; a class made from a spec inherits the base's slots as they are and gets its item
 * fields as members from the start.  The result is the same class: same name, module and
 * qualified name, metaclass, base, instance layout (the items, then the __dict__ pointer:
 * tp_dictoffset -8, basicsize one pointer past the base's) and namespace.
 *
 * The caller passes only a base whose __init_subclass__ is StructProxy's and a metaclass
 * that is `type` with Python-level methods only (same size, type's __new__ and __init__);
 * anything else raises TypeError, and the caller then uses type(). */
static PyObject *
snapshot_class(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *name, *namespace, *fields, *bases = NULL, *capsule = NULL, *cls = NULL;
    PyTypeObject *base, *metaclass;
    ItemFieldDefs *block;
    PyMemberDef *members;
    const char *qualified;
    Py_ssize_t qualified_length, count;

    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "snapshot_class takes 5 arguments");
        return NULL;
    }
    name = args[0];
    base = (PyTypeObject *)args[1];
    metaclass = (PyTypeObject *)args[2];
    namespace = args[3];
    fields = args[4];
    if (!PyUnicode_Check(name) || !PyType_Check(args[1]) || !PyType_Check(args[2]) || !PyDict_Check(namespace)
            || !PyList_Check(fields)) {
        PyErr_SetString(PyExc_TypeError, "snapshot_class(str, class, metaclass, dict, list)");
        return NULL;
    }
    if (!PyType_IsSubtype(base, &PyTuple_Type) || !(base->tp_flags & Py_TPFLAGS_HEAPTYPE)
            || base->tp_dictoffset != 0 || base->tp_itemsize != (Py_ssize_t)sizeof(PyObject *)
            || (base->tp_alloc != PyType_GenericAlloc && base->tp_alloc != proxy_alloc)) {
        PyErr_SetString(PyExc_TypeError, "snapshot_class: the base must be a tuple subclass without a __dict__");
        return NULL;
    }
    if (!PyType_IsSubtype(metaclass, &PyType_Type) || !PyType_IsSubtype(metaclass, Py_TYPE(base))
            || metaclass->tp_basicsize != PyType_Type.tp_basicsize || metaclass->tp_itemsize != PyType_Type.tp_itemsize
            || metaclass->tp_new != PyType_Type.tp_new || metaclass->tp_init != PyType_Type.tp_init) {
        PyErr_SetString(PyExc_TypeError, "snapshot_class: the metaclass must be type with Python-level methods only");
        return NULL;
    }
    qualified = PyUnicode_AsUTF8AndSize(name, &qualified_length);
    if (qualified == NULL)
        return NULL;
    /* The member definitions (the fields, __dictoffset__, the end marker) and the names they
     * point at live in one block that the class's namespace owns through the capsule
     * item_fields uses too (items_needed reads it).  The class's name is copied by CPython
     * (3.11+; before, tp_name pointed into the spec, so 3.10 makes shape classes with type()). */
    block = new_item_field_defs(fields, 1, "snapshot_class", &capsule);
    if (block == NULL)
        return NULL;
    count = PyList_GET_SIZE(fields);
    members = block->defs;
    /* instances keep their __dict__ pointer after their items, as a class statement lays out
     * a tuple subclass (CPython takes this entry out of the namespace once it is applied) */
    members[count].name = "__dictoffset__";
    members[count].type = T_PYSSIZET;
    members[count].offset = -(Py_ssize_t)sizeof(PyObject *);
    members[count].flags = READONLY;
    {
        PyType_Slot slots[] = {
            {Py_tp_members, members},
            {Py_tp_getset, snapshot_class_getset},
            {Py_tp_alloc, (void *)proxy_alloc},
            {Py_tp_dealloc, (void *)snapshot_dealloc},
            {0, NULL},
        };
        PyType_Spec spec = {
            .name = qualified,
            .basicsize = (int)(base->tp_basicsize + sizeof(PyObject *)),
            .itemsize = 0,
            .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
            .slots = slots,
        };
        bases = PyTuple_Pack(1, (PyObject *)base);
        if (bases == NULL)
            goto error;
#if PY_VERSION_HEX >= 0x030C0000
        cls = PyType_FromMetaclass(metaclass, NULL, &spec, bases);
        if (cls == NULL)
            goto error;
#else
        cls = PyType_FromSpecWithBases(&spec, bases);
        if (cls == NULL)
            goto error;
        /* Before 3.12 a spec makes instances of type only; the metaclass has type's layout and
         * type's __new__ and __init__ (checked above), so the class is simply retyped, as
         * __class__ assignment would do if type allowed it. */
        if (Py_TYPE(cls) != metaclass) {
            Py_INCREF(metaclass);
            Py_SET_TYPE(cls, metaclass);
        }
#endif
    }
    if (PyDict_Update(((PyTypeObject *)cls)->tp_dict, namespace) < 0
            || PyDict_SetItem(((PyTypeObject *)cls)->tp_dict, item_fields_name, capsule) < 0)
        goto error;
    PyType_Modified((PyTypeObject *)cls);
    Py_DECREF(bases);
    Py_DECREF(capsule);
    return cls;

error:
    Py_XDECREF(cls);
    Py_XDECREF(bases);
    Py_DECREF(capsule);
    return NULL;
}
#endif

static PyMethodDef proxies_functions[] = {
    {"item_fields", item_fields, METH_VARARGS,
     "item_fields(cls, [(name, index), ...]) -> {name: member descriptor of tuple item index, "
     "'_proxy_item_fields': the capsule owning their definitions}"},
    {"snapshot_layout", (PyCFunction)(void (*)(void))snapshot_layout, METH_FASTCALL,
     "snapshot_layout(slot_keys, slot_types, fixed_formats, bitmap_code, field_kinds, immutable_types, "
     "proxy_base) -> (readers, item_fields, fixed, unpacker_fields, snapshot_format, fixed_size) of the "
     "full shape, or None for the Python path"},
#if PY_VERSION_HEX >= 0x030B0000
    {"snapshot_class", (PyCFunction)(void (*)(void))snapshot_class, METH_FASTCALL,
     "snapshot_class(qualified_name, base, metaclass, namespace, fields) -> the shape class "
     "metaclass(name, (base,), namespace) with item_fields(cls, fields), made from a type spec"},
#endif
    {NULL}
};

int
proxies_add_to_module(PyObject *module)
{
    if (PyType_Ready(&SnapshotUnpacker_Type) < 0 || PyType_Ready(&FieldReader_Type) < 0)
        return -1;
    unpack_from_name = PyUnicode_InternFromString("unpack_from");
    write_name = PyUnicode_InternFromString("write");
    read_name = PyUnicode_InternFromString("read");
    nested_schema_name = PyUnicode_InternFromString("nested_schema");
    if (write_name == NULL || read_name == NULL || nested_schema_name == NULL)
        return -1;
    item_fields_name = PyUnicode_InternFromString("_proxy_item_fields");
    if (unpack_from_name == NULL || item_fields_name == NULL)
        return -1;
    if (PyModule_AddFunctions(module, proxies_functions) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "SnapshotUnpacker", (PyObject *)&SnapshotUnpacker_Type) < 0
            || PyModule_AddObjectRef(module, "FieldReader", (PyObject *)&FieldReader_Type) < 0
            || PyModule_AddIntConstant(module, "KIND_GENERIC", KIND_GENERIC) < 0
            || PyModule_AddIntConstant(module, "KIND_BYTES", KIND_BYTES) < 0
            || PyModule_AddIntConstant(module, "KIND_STR", KIND_STR) < 0
            || PyModule_AddIntConstant(module, "KIND_LIST", KIND_LIST) < 0
            || PyModule_AddIntConstant(module, "KIND_TUPLE", KIND_TUPLE) < 0
            || PyModule_AddIntConstant(module, "KIND_FROZENSET", KIND_FROZENSET) < 0
            || PyModule_AddIntConstant(module, "KIND_STRUCT", KIND_STRUCT) < 0
            || PyModule_AddIntConstant(module, "KIND_DICT", KIND_DICT) < 0
            || PyModule_AddIntConstant(module, "KIND_OBJECT", KIND_OBJECT) < 0)
        return -1;
    return 0;
}
