/*
 * values.c: RTTI-wrapped values (FORMAT.md §3, §4.2-§4.6) decoded in C.
 *
 * Why: a value whose type is only known from its typecode (an `object` slot, the elements of a
 * list or tuple of mixed items, the keys and values of a dict, the keys of an object id mapper)
 * was decoded by rtti.read_object, one Python call per element with a dict lookup, a struct
 * call and a slice each.  A dict of two items took 13 µs, 1.2.3 about 4.
 *
 * What is decoded here: numbers and bools, short uncompressed str/bytes, and the containers
 * that hold them (lists, tuples, frozensets, dicts), nested to any depth up to MAX_NESTING.
 * Every other typecode (datetime, Decimal, registered structs, proxied containers, long or
 * compressed strings) is a leaf: the Python reader registered with set_object_reader decodes
 * it, and nothing it returns is read further here.
 *
 * How the results stay those of the Python readers: this code decodes only what it fully
 * understands.  Anything else (a bound that does not hold, a form it does not read, a cycle,
 * any exception, its own or a leaf reader's) makes it give up with NOT_HANDLED and clear the
 * error; its callers then run the Python reader of the whole value, which either gives the
 * same value or raises the error (and message) it always raised.  Only exceptions that are
 * not Exceptions (KeyboardInterrupt, SystemExit) go through.
 */
#include "objects.h"

/* Containers nested deeper than this are read by the Python readers (which recurse). */
#define MAX_NESTING 64
/* Pointer tables longer than this find repeated pointers through a PointerIndex, not a scan. */
#define SCAN_LIMIT 32

typedef struct {
    PyObject *buffer;
    ByteSpan span;                      /* its bytes (the export is decode_value's) */
    int depth;
    Py_ssize_t active[MAX_NESTING];     /* RTTI positions of the containers being read */
} Decoding;

/* rtti.read_object_in_python: reads leaf values (and whole values when this code gives up). */
static PyObject *object_reader = NULL;

static PyObject *decode_rtti(Decoding *d, Py_ssize_t position);

/* NOT_HANDLED in place of an Exception (cleared); other exceptions go through (NULL). */
static PyObject *
give_up(void)
{
    if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            return NULL;
        PyErr_Clear();
    }
    return NOT_HANDLED;
}

/* Short, uncompressed str/bytes (FORMAT.md §4.2): a 2-byte length below 0x7FFF, then the data. */
PyObject *
decode_short_string(const ByteSpan *span, Py_ssize_t position, int as_str)
{
    Py_ssize_t length;
    const char *start;
    PyObject *value;

    if (!in_bounds(position, 2, span->size))
        return NOT_HANDLED;
    length = load_u16(span->data + position);
    if (length >= 0x7FFF || !in_bounds(position + 2, length, span->size))
        return NOT_HANDLED;
    start = (const char *)span->data + position + 2;
    if (!as_str)
        return PyBytes_FromStringAndSize(start, length);
    value = PyUnicode_DecodeUTF8(start, length, NULL);
    if (value == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();              /* the codec raises the ValueError that names the offset */
        return NOT_HANDLED;
    }
    return value;
}

/* The layout of a numeric sequence (FORMAT.md §4.4: codes B b H h i I with a 3-byte length,
 * q Q d f with a 7-byte length): 0 with its code, length and data position set, when all of it
 * lies in the span; -1 for anything else (pointer tables, the long form, bad data). */
int
numeric_layout(const ByteSpan *span, Py_ssize_t position, char *code, Py_ssize_t *length, Py_ssize_t *data)
{
    if (!in_bounds(position, 4, span->size))
        return -1;
    *code = (char)span->data[position];
    switch (*code) {
    case 'B': case 'b': case 'H': case 'h': case 'i': case 'I':
        *length = (Py_ssize_t)(load_u32(span->data + position) >> 8);
        if (*length == 0xFFFFFF)
            return -1;
        *data = position + 4;
        break;
    case 'q': case 'Q': case 'd': case 'f': {
        uint64_t header;
        if (!in_bounds(position, 8, span->size))
            return -1;
        header = load_u64(span->data + position) >> 8;
        if (header > (uint64_t)PY_SSIZE_T_MAX)
            return -1;
        *length = (Py_ssize_t)header;
        *data = position + 8;
        break;
    }
    default:
        return -1;
    }
    if (*data > span->size || *length > (span->size - *data) / code_size(*code))
        return -1;
    return 0;
}

/* A numeric sequence as a new list (a tuple when `as_tuple`), or NOT_HANDLED. */
PyObject *
decode_numeric_sequence(const ByteSpan *span, Py_ssize_t position, int as_tuple)
{
    Py_ssize_t length, data, item_size, i;
    char code;
    PyObject *sequence, **items;

    if (numeric_layout(span, position, &code, &length, &data) < 0)
        return NOT_HANDLED;
    item_size = code_size(code);
    sequence = as_tuple ? PyTuple_New(length) : PyList_New(length);
    if (sequence == NULL)
        return NULL;
    items = PySequence_Fast_ITEMS(sequence);
    for (i = 0; i < length; i++) {
        if ((items[i] = decode_number(code, span->data + data + i * item_size)) == NULL) {
            Py_DECREF(sequence);
            return NULL;
        }
    }
    return sequence;
}

/* A set (FORMAT.md §4.5): an 'm'/'M' bitmap of small ints, else a numeric sequence. */
PyObject *
decode_numeric_frozenset(const ByteSpan *span, Py_ssize_t position)
{
    PyObject *members, *set;

    if (in_bounds(position, 1, span->size)
            && (span->data[position] == 'm' || span->data[position] == 'M')) {
        Py_ssize_t length = span->data[position] == 'm' ? 7 : 15, byte;
        if (!in_bounds(position, 1 + length, span->size))
            return NOT_HANDLED;
        set = PyFrozenSet_New(NULL);
        if (set == NULL)
            return NULL;
        for (byte = 0; byte < length; byte++) {
            unsigned int bits = span->data[position + 1 + byte];
            int bit;
            for (bit = 0; bits != 0; bit++, bits >>= 1) {
                PyObject *member;
                if (!(bits & 1))
                    continue;
                member = PyLong_FromSsize_t(byte * 8 + bit);
                if (member == NULL || PySet_Add(set, member) < 0) {
                    Py_XDECREF(member);
                    Py_DECREF(set);
                    return NULL;
                }
                Py_DECREF(member);
            }
        }
        return set;
    }
    members = decode_numeric_sequence(span, position, 0);
    if (members == NULL || members == NOT_HANDLED)
        return members;
    set = PyFrozenSet_New(members);
    Py_DECREF(members);
    return set;
}

/* A value of a typecode this file does not read, by the Python reader. */
static PyObject *
decode_leaf(Decoding *d, Py_ssize_t position)
{
    PyObject *position_object, *args[2], *value;

    if (object_reader == NULL)
        return NOT_HANDLED;
    position_object = PyLong_FromSsize_t(position);
    if (position_object == NULL)
        return give_up();
    args[0] = d->buffer;
    args[1] = position_object;
    value = PyObject_Vectorcall(object_reader, args, 2, NULL);
    Py_DECREF(position_object);
    return value != NULL ? value : give_up();
}

/* The position `pointer` bytes from `base`, or -1 when it is outside the buffer. */
static Py_ssize_t
target_of(const Decoding *d, Py_ssize_t base, int64_t pointer)
{
    if (pointer >= 0 ? pointer >= (int64_t)(d->span.size - base) : pointer < -(int64_t)base)
        return -1;
    return base + (Py_ssize_t)pointer;
}

/* Pointer `i` of a table of `width`-byte signed pointers. */
static inline int64_t
pointer_at(const unsigned char *pointers, Py_ssize_t i, int width)
{
    int32_t narrow;
    if (width == 8)
        return load_i64(pointers + 8 * i);
    memcpy(&narrow, pointers + 4 * i, 4);
    return narrow;
}

/* Where earlier elements of a long pointer table are, by pointer: open addressing over a
 * power-of-two table, 1 (the None pointer, never stored) marking a free slot. */
typedef struct {
    int64_t *pointers;
    Py_ssize_t *numbers;
    uint64_t mask;
} PointerIndex;

static int
pointer_index_init(PointerIndex *index, Py_ssize_t length)
{
    uint64_t slots = 64, i;
    while (slots < 2 * (uint64_t)length)
        slots <<= 1;
    index->pointers = PyMem_Malloc(slots * sizeof(int64_t));
    index->numbers = PyMem_Malloc(slots * sizeof(Py_ssize_t));
    if (index->pointers == NULL || index->numbers == NULL) {
        PyMem_Free(index->pointers);
        PyMem_Free(index->numbers);
        index->pointers = NULL;
        PyErr_NoMemory();
        return -1;
    }
    for (i = 0; i < slots; i++)
        index->pointers[i] = 1;
    index->mask = slots - 1;
    return 0;
}

static void
pointer_index_free(PointerIndex *index)
{
    if (index->pointers != NULL) {
        PyMem_Free(index->pointers);
        PyMem_Free(index->numbers);
        index->pointers = NULL;
    }
}

/* The number of the element stored with `pointer`, or -1 after recording it as `number`. */
static Py_ssize_t
pointer_index_find_or_add(PointerIndex *index, int64_t pointer, Py_ssize_t number)
{
    uint64_t slot = ((uint64_t)pointer * 0x9E3779B97F4A7C15ULL) >> 32;
    for (;; slot++) {
        slot &= index->mask;
        if (index->pointers[slot] == pointer)
            return index->numbers[slot];
        if (index->pointers[slot] == 1) {
            index->pointers[slot] = pointer;
            index->numbers[slot] = number;
            return -1;
        }
    }
}

/* The number of an earlier element (of `count`) with this pointer, or -1. */
static Py_ssize_t
find_earlier(const unsigned char *pointers, Py_ssize_t count, int width, int64_t pointer,
             PointerIndex *index)
{
    Py_ssize_t i;
    if (count <= SCAN_LIMIT) {
        for (i = 0; i < count; i++)
            if (pointer_at(pointers, i, width) == pointer)
                return i;
        return -1;
    }
    if (index->pointers == NULL) {
        if (pointer_index_init(index, count) < 0)
            return -2;
        for (i = 0; i < count; i++) {
            int64_t earlier = pointer_at(pointers, i, width);
            if (earlier != 1)
                pointer_index_find_or_add(index, earlier, i);
        }
    }
    return pointer_index_find_or_add(index, pointer, count);
}

/* The elements of a pointer table (codes 'T', 't') at `position`, as a list (a tuple when
 * `as_tuple`).  Elements with the same pointer are the same object, as in rtti's reader.
 * Writers store elements in order, so pointers usually grow: a pointer above every earlier
 * one cannot repeat one, and only the others are looked for among the earlier elements. */
static PyObject *
decode_pointer_table(Decoding *d, Py_ssize_t position, int width, int as_tuple)
{
    uint64_t header;
    Py_ssize_t length, i;
    const unsigned char *pointers;
    PyObject *sequence, **items;
    PointerIndex index = {NULL, NULL, 0};
    int64_t highest = INT64_MIN;

    if (!in_bounds(position, 8, d->span.size))
        return NOT_HANDLED;
    header = load_u64(d->span.data + position) >> 8;
    if (header > (uint64_t)((d->span.size - position - 8) / width))
        return NOT_HANDLED;
    length = (Py_ssize_t)header;
    pointers = d->span.data + position + 8;
    sequence = as_tuple ? PyTuple_New(length) : PyList_New(length);
    if (sequence == NULL)
        return give_up();
    items = PySequence_Fast_ITEMS(sequence);
    for (i = 0; i < length; i++) {
        int64_t pointer = pointer_at(pointers, i, width);
        Py_ssize_t target;
        PyObject *item;

        if (pointer == 1) {
            items[i] = Py_NewRef(Py_None);
            continue;
        }
        if (pointer <= highest) {
            Py_ssize_t earlier = find_earlier(pointers, i, width, pointer, &index);
            if (earlier == -2)
                goto fail;
            if (earlier >= 0) {
                items[i] = Py_NewRef(items[earlier]);
                continue;
            }
        }
        else {
            highest = pointer;
            if (index.pointers != NULL)
                pointer_index_find_or_add(&index, pointer, i);
        }
        target = target_of(d, position, pointer);
        item = target >= 0 ? decode_rtti(d, target) : NOT_HANDLED;
        if (item == NULL || item == NOT_HANDLED) {
            pointer_index_free(&index);
            Py_DECREF(sequence);
            return item;
        }
        items[i] = item;
    }
    pointer_index_free(&index);
    return sequence;

fail:
    pointer_index_free(&index);
    Py_DECREF(sequence);
    return give_up();
}

/* A sequence (FORMAT.md §4.4) at `position` as a new list (tuple): numbers or a pointer table. */
static PyObject *
decode_sequence(Decoding *d, Py_ssize_t position, int as_tuple)
{
    PyObject *sequence;

    if (!in_bounds(position, 4, d->span.size))
        return NOT_HANDLED;
    switch (d->span.data[position]) {
    case 'T': return decode_pointer_table(d, position, 4, as_tuple);
    case 't': return decode_pointer_table(d, position, 8, as_tuple);
    default: break;
    }
    sequence = decode_numeric_sequence(&d->span, position, as_tuple);
    return sequence != NULL ? sequence : give_up();
}

/* A set (FORMAT.md §4.5) at `position`: a bitmap, or a sequence of its members. */
static PyObject *
decode_set(Decoding *d, Py_ssize_t position)
{
    PyObject *members, *set;

    if (!in_bounds(position, 1, d->span.size))
        return NOT_HANDLED;
    if (d->span.data[position] == 'm' || d->span.data[position] == 'M') {
        set = decode_numeric_frozenset(&d->span, position);
        return set != NULL ? set : give_up();
    }
    members = decode_sequence(d, position, 0);
    if (members == NULL || members == NOT_HANDLED)
        return members;
    set = PyFrozenSet_New(members);     /* an unhashable member: the Python reader's TypeError */
    Py_DECREF(members);
    return set != NULL ? set : give_up();
}

/* A dict (FORMAT.md §4.6) at `position`: values position, an object id mapper of key -> value
 * number, the values.  Keys are inserted in row (hash) order, as the Python reader does. */
static PyObject *
decode_dict(Decoding *d, Py_ssize_t position)
{
    Py_ssize_t mapper, index, row;
    uint64_t count, index_position, values_position;
    PyObject *values, *result;

    if (!in_bounds(position, 8 + 16, d->span.size))
        return NOT_HANDLED;
    mapper = position + 8;
    count = load_u64(d->span.data + mapper);
    index_position = load_u64(d->span.data + mapper + 8);
    if (index_position < 16 || index_position > (uint64_t)(d->span.size - mapper))
        return NOT_HANDLED;
    index = mapper + (Py_ssize_t)index_position;
    if (count > (uint64_t)((d->span.size - index) / 24))
        return NOT_HANDLED;
    values_position = load_u64(d->span.data + position);
    if (values_position > (uint64_t)(d->span.size - position))
        return NOT_HANDLED;
    values = decode_sequence(d, position + (Py_ssize_t)values_position, 0);
    if (values == NULL || values == NOT_HANDLED)
        return values;
    result = PyDict_New();
    if (result == NULL)
        goto fail;
    for (row = 0; row < (Py_ssize_t)count; row++) {
        const unsigned char *entry = d->span.data + index + 24 * row;
        int64_t key_offset = load_i64(entry + 8);
        uint64_t number = load_u64(entry + 16);
        PyObject *key;
        int failed;

        if (number >= (uint64_t)PyList_GET_SIZE(values))
            goto not_handled;
        if (key_offset == 1)
            key = Py_NewRef(Py_None);
        else {
            Py_ssize_t target = target_of(d, mapper, key_offset);
            if (target < 0)
                goto not_handled;
            key = decode_rtti(d, target);
            if (key == NOT_HANDLED)
                goto not_handled;
            if (key == NULL) {
                Py_DECREF(values);
                Py_DECREF(result);
                return NULL;
            }
        }
        failed = PyDict_SetItem(result, key, PyList_GET_ITEM(values, (Py_ssize_t)number)) < 0;
        Py_DECREF(key);
        if (failed)
            goto fail;
    }
    Py_DECREF(values);
    return result;

not_handled:
    Py_DECREF(values);
    Py_DECREF(result);
    return NOT_HANDLED;
fail:
    Py_DECREF(values);
    Py_XDECREF(result);
    return give_up();
}

/* A list, tuple, set or dict with its RTTI header at `position` (its data 8 bytes on). */
static PyObject *
decode_container(Decoding *d, Py_ssize_t position, unsigned char code)
{
    PyObject *value;
    int i;

    for (i = 0; i < d->depth; i++)
        if (d->active[i] == position)
            return NOT_HANDLED;         /* contains itself: the Python reader says so */
    if (d->depth == MAX_NESTING || position > d->span.size - 8)
        return NOT_HANDLED;
    d->active[d->depth++] = position;
    switch (code) {
    case 'e': value = decode_sequence(d, position + 8, 0); break;
    case 't': value = decode_sequence(d, position + 8, 1); break;
    case 'Z': value = decode_set(d, position + 8); break;
    default: value = decode_dict(d, position + 8); break;
    }
    d->depth--;
    return value;
}

/* The RTTI-wrapped value at `position` (FORMAT.md §3): a new reference, NOT_HANDLED, or NULL
 * with a non-Exception error set. */
static PyObject *
decode_rtti(Decoding *d, Py_ssize_t position)
{
    unsigned char code;
    PyObject *value;

    if (position < 0 || position >= d->span.size)
        return NOT_HANDLED;
    code = d->span.data[position];
    switch (code) {
    case 'B': case 'b': case 'H': case 'h': case 'I': case 'i': case 'Q': case 'q':
    case 'd': case 'f':
        if (!in_bounds(position + 1, code_size((char)code), d->span.size))
            return NOT_HANDLED;
        value = decode_number((char)code, d->span.data + position + 1);
        return value != NULL ? value : give_up();
    case 'T':
        if (!in_bounds(position + 1, 1, d->span.size))
            return NOT_HANDLED;
        return PyBool_FromLong(d->span.data[position + 1] != 0);
    case 's': case 'u':
        if (position > d->span.size - 8)
            return NOT_HANDLED;
        value = decode_short_string(&d->span, position + 8, code == 'u');
        if (value == NOT_HANDLED)       /* long, compressed or not UTF-8: still a leaf */
            return decode_leaf(d, position);
        return value != NULL ? value : give_up();
    case 'e': case 't': case 'Z': case 'm':
        return decode_container(d, position, code);
    default:
        return decode_leaf(d, position);
    }
}

/* -- entry points ------------------------------------------------------------------------ */

PyObject *
decode_value(PyObject *buffer, Py_ssize_t position, int kind)
{
    Py_buffer view;
    Decoding d;
    PyObject *value;

    /* An export of its own, held while leaf readers run Python code (which may let another
     * thread try to close or resize the buffer: that then fails instead of freeing it). */
    if (PyBytes_CheckExact(buffer)) {
        d.span.data = (const unsigned char *)PyBytes_AS_STRING(buffer);
        d.span.size = PyBytes_GET_SIZE(buffer);
        view.obj = NULL;
    }
    else {
        if (PyObject_GetBuffer(buffer, &view, PyBUF_SIMPLE) < 0)
            return give_up();
        d.span.data = (const unsigned char *)view.buf;
        d.span.size = view.len;
    }
    d.buffer = buffer;
    d.span.has_view = 0;
    d.depth = 0;
    switch (kind) {
    case VALUE_RTTI: value = decode_rtti(&d, position); break;
    case VALUE_LIST: value = decode_sequence(&d, position, 0); break;
    case VALUE_TUPLE: value = decode_sequence(&d, position, 1); break;
    case VALUE_SET: value = decode_set(&d, position); break;
    case VALUE_DICT: value = decode_dict(&d, position); break;
    default: value = NOT_HANDLED; break;
    }
    if (view.obj != NULL)
        PyBuffer_Release(&view);
    return value;
}

static PyObject *
read_object(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t position;
    PyObject *value;

    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "read_object(buffer, offset) takes 2 arguments, not %zd", nargs);
        return NULL;
    }
    if (object_reader == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "read_object: no Python reader set (set_object_reader)");
        return NULL;
    }
    position = PyLong_Check(args[1]) ? PyLong_AsSsize_t(args[1]) : -1;
    if (position == -1 && PyErr_Occurred())
        PyErr_Clear();              /* beyond ssize_t: the Python reader says what is wrong */
    value = position >= 0 ? decode_value(args[0], position, VALUE_RTTI) : NOT_HANDLED;
    if (value != NOT_HANDLED)
        return value;
    return PyObject_Vectorcall(object_reader, args, 2, NULL);
}

static PyObject *
set_object_reader(PyObject *module, PyObject *reader)
{
    if (!PyCallable_Check(reader)) {
        PyErr_SetString(PyExc_TypeError, "set_object_reader needs a callable");
        return NULL;
    }
    Py_XSETREF(object_reader, Py_NewRef(reader));
    Py_RETURN_NONE;
}

static PyMethodDef values_functions[] = {
    {"read_object", (PyCFunction)(void (*)(void))read_object, METH_FASTCALL,
     "read_object(buffer, offset) -> the RTTI-wrapped value at offset (as rtti.read_object)"},
    {"set_object_reader", set_object_reader, METH_O,
     "set_object_reader(read) -- the Python reader of the values this module does not decode"},
    {NULL}
};

int
values_add_to_module(PyObject *module)
{
    return PyModule_AddFunctions(module, values_functions);
}
