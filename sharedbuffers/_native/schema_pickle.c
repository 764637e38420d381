/*
 * schema_pickle: the protocol-2 pickle of a schema, byte for byte what pickle.dumps(schema, 2)
 * writes, without the pickle module.
 *
 * Why: a typed array stores its schema as that pickle (FORMAT.md §10.2), and opening a file
 * with a declared schema compares the stored bytes with the declared schema's pickle, so that a
 * file written with another layout is never read with this one.  Every open pays for that
 * pickle.  The pickle module resolves each class it names through the import machinery and
 * runs its general dispatch for every object; the object graph of a schema is small and of few
 * kinds (dicts, tuples, str, small ints, classes named by module and name, and the two reduced
 * kinds: Schema and its nested-struct codec), so this writer emits the same opcodes in half
 * the time (11.6 against 23 us warm).  In a fresh process both cost about 40-50 us: there the
 * time goes to the cache misses of touching the schema's objects for the first time.
 *
 * The rules are pickle's (Modules/_pickle.c, protocol 2): every str, tuple, dict, list, class
 * and reduced object is memoized by identity (BINPUT/LONG_BINPUT) and written again as a memo
 * reference (BINGET/LONG_BINGET); ints of 32 bits are BININT1/BININT2/BININT; a tuple of up to
 * three items is TUPLE1..3; a dict or list of one item is SETITEM/APPEND, longer ones are
 * MARK ... SETITEMS/APPENDS; a class is GLOBAL "module\nname\n" with Python 3 names mapped to
 * Python 2 ones (fix_imports); a reduced object is callable, argument tuple, REDUCE, then state
 * and BUILD.
 *
 * Anything else (another object, a float, a big int, a nested class, a class in the extension
 * registry or with a dispatch-table reducer, a non-ASCII name, a recursive reduction) makes the
 * result None: the caller then asks pickle.dumps.  So this writer never decides on its own what
 * a schema's bytes are; the tests compare its output with pickle.dumps over generated schemas.
 */
#include "objects.h"

#define MEMO_LIMIT 4096         /* beyond: None (a schema has a few dozen memoized objects) */
#define DEPTH_LIMIT 100
#define BATCH_SIZE 1000         /* pickle's batch of SETITEMS/APPENDS; longer containers: None */

typedef struct {
    char *data;
    Py_ssize_t size, capacity;
    PyObject **memo;            /* memoized objects (owned references); index = memo number */
    Py_ssize_t memo_count, memo_capacity;
    Py_ssize_t *memo_slots;     /* open-addressing index of memo by address: number + 1, 0 = empty */
    Py_ssize_t slot_count;      /* a power of two, at least twice memo_count (0 before the first put) */
    PyObject *reduced_types;    /* tuple: exact types written through __reduce_ex__(2) */
    PyObject *name_mapping;     /* _compat_pickle.REVERSE_NAME_MAPPING */
    PyObject *import_mapping;   /* _compat_pickle.REVERSE_IMPORT_MAPPING */
    PyObject *extension_registry;   /* copyreg._extension_registry */
    PyObject *dispatch_table;   /* copyreg.dispatch_table */
    PyObject *modules;          /* sys.modules */
    int depth;
} Writer;

/* Results of the writing functions: written, not writable here (None), or a Python error. */
enum { WRITTEN = 0, UNSUPPORTED = 1, FAILED = -1 };

/* Interned names of the attributes read and the protocol number (made once: a name made from a
 * C string per call is a new str to hash, every time). */
static PyObject *qualname_attribute, *module_attribute, *name_attribute, *reduce_ex_attribute, *protocol_number;

static int
put_bytes(Writer *writer, const void *bytes, Py_ssize_t length)
{
    if (writer->size + length > writer->capacity) {
        Py_ssize_t capacity = writer->capacity * 2 + length;
        char *grown = PyMem_Realloc(writer->data, capacity);
        if (grown == NULL) {
            PyErr_NoMemory();
            return FAILED;
        }
        writer->data = grown;
        writer->capacity = capacity;
    }
    memcpy(writer->data + writer->size, bytes, length);
    writer->size += length;
    return WRITTEN;
}

static int
put_opcode(Writer *writer, char opcode)
{
    return put_bytes(writer, &opcode, 1);
}

/* An opcode followed by a 32-bit little-endian number. */
static int
put_opcode_u32(Writer *writer, char opcode, uint32_t value)
{
    unsigned char bytes[5] = {(unsigned char)opcode, value & 0xFF, (value >> 8) & 0xFF, (value >> 16) & 0xFF,
                              (value >> 24) & 0xFF};
    return put_bytes(writer, bytes, 5);
}

/* Where `object` is, or would go, in the memo index (the index is never full). */
static Py_ssize_t
memo_slot(Writer *writer, PyObject *object)
{
    size_t mask = (size_t)writer->slot_count - 1;
    size_t slot = ((uintptr_t)object >> 4) * (size_t)0x9E3779B97F4A7C15ULL & mask;
    while (writer->memo_slots[slot] != 0 && writer->memo[writer->memo_slots[slot] - 1] != object)
        slot = (slot + 1) & mask;
    return (Py_ssize_t)slot;
}

/* The memo number of `object`, or -1. */
static Py_ssize_t
memo_find(Writer *writer, PyObject *object)
{
    Py_ssize_t number;
    if (writer->slot_count == 0)
        return -1;
    number = writer->memo_slots[memo_slot(writer, object)];
    return number - 1;
}

/* Room in the memo index for one more object (doubling it and placing every entry again). */
static int
memo_grow_index(Writer *writer)
{
    Py_ssize_t count = writer->slot_count ? writer->slot_count * 2 : 64, i;
    Py_ssize_t *slots;

    if (2 * (writer->memo_count + 1) <= writer->slot_count)
        return WRITTEN;
    slots = PyMem_Calloc(count, sizeof(Py_ssize_t));
    if (slots == NULL) {
        PyErr_NoMemory();
        return FAILED;
    }
    PyMem_Free(writer->memo_slots);
    writer->memo_slots = slots;
    writer->slot_count = count;
    for (i = 0; i < writer->memo_count; i++)
        slots[memo_slot(writer, writer->memo[i])] = i + 1;
    return WRITTEN;
}

static int
memo_get(Writer *writer, Py_ssize_t number)
{
    if (number < 256) {
        unsigned char bytes[2] = {'h', (unsigned char)number};
        return put_bytes(writer, bytes, 2);
    }
    return put_opcode_u32(writer, 'j', (uint32_t)number);
}

/* Memoize `object` (keeping it alive, as pickle's memo does: a temporary of a reduction must not
 * be freed and its address reused by a later object) and write its PUT. */
static int
memo_put(Writer *writer, PyObject *object)
{
    Py_ssize_t number = writer->memo_count;
    if (number >= MEMO_LIMIT)
        return UNSUPPORTED;
    if (number == writer->memo_capacity) {
        Py_ssize_t capacity = writer->memo_capacity * 2 + 32;
        PyObject **grown = PyMem_Realloc(writer->memo, capacity * sizeof(PyObject *));
        if (grown == NULL) {
            PyErr_NoMemory();
            return FAILED;
        }
        writer->memo = grown;
        writer->memo_capacity = capacity;
    }
    if (memo_grow_index(writer) != WRITTEN)
        return FAILED;
    Py_INCREF(object);
    writer->memo_slots[memo_slot(writer, object)] = number + 1;
    writer->memo[writer->memo_count++] = object;
    if (number < 256) {
        unsigned char bytes[2] = {'q', (unsigned char)number};
        return put_bytes(writer, bytes, 2);
    }
    return put_opcode_u32(writer, 'r', (uint32_t)number);
}

static int write_object(Writer *writer, PyObject *object);

static int
write_int(Writer *writer, PyObject *object)
{
    int overflow;
    long value = PyLong_AsLongAndOverflow(object, &overflow);
    if (value == -1 && PyErr_Occurred())
        return FAILED;
    if (overflow || value < -0x80000000L || value > 0x7FFFFFFFL)
        return UNSUPPORTED;             /* LONG1: pickle's job */
    if (value >= 0 && value <= 0xFF) {
        unsigned char bytes[2] = {'K', (unsigned char)value};
        return put_bytes(writer, bytes, 2);
    }
    if (value >= 0 && value <= 0xFFFF) {
        unsigned char bytes[3] = {'M', value & 0xFF, (value >> 8) & 0xFF};
        return put_bytes(writer, bytes, 3);
    }
    return put_opcode_u32(writer, 'J', (uint32_t)value);
}

static int
write_str(Writer *writer, PyObject *object)
{
    Py_ssize_t length;
    const char *text = PyUnicode_AsUTF8AndSize(object, &length);
    int status;
    if (text == NULL) {                 /* lone surrogates: pickle writes them as 'surrogatepass' */
        PyErr_Clear();
        return UNSUPPORTED;
    }
    if (length > 0xFFFFFFFFL)
        return UNSUPPORTED;
    if ((status = put_opcode_u32(writer, 'X', (uint32_t)length)) != WRITTEN
            || (status = put_bytes(writer, text, length)) != WRITTEN)
        return status;
    return memo_put(writer, object);
}

static int
write_tuple(Writer *writer, PyObject *object)
{
    static const char sized[] = {0, '\x85', '\x86', '\x87'};     /* TUPLE1, TUPLE2, TUPLE3 */
    Py_ssize_t count = PyTuple_GET_SIZE(object), i, number;
    int status;
    if (count == 0)
        return put_opcode(writer, ')');
    if (count > 3 && (status = put_opcode(writer, '(')) != WRITTEN)
        return status;
    for (i = 0; i < count; i++)
        if ((status = write_object(writer, PyTuple_GET_ITEM(object, i))) != WRITTEN)
            return status;
    number = memo_find(writer, object);
    if (number >= 0)
        return UNSUPPORTED;             /* memoized while its items were written: a cycle */
    if ((status = put_opcode(writer, count > 3 ? 't' : sized[count])) != WRITTEN)
        return status;
    return memo_put(writer, object);
}

static int
write_list(Writer *writer, PyObject *object)
{
    Py_ssize_t count = PyList_GET_SIZE(object), i;
    int status;
    if (count >= BATCH_SIZE)
        return UNSUPPORTED;
    if ((status = put_opcode(writer, ']')) != WRITTEN || (status = memo_put(writer, object)) != WRITTEN)
        return status;
    if (count == 0)
        return WRITTEN;
    if (count > 1 && (status = put_opcode(writer, '(')) != WRITTEN)
        return status;
    for (i = 0; i < PyList_GET_SIZE(object); i++) {
        PyObject *item = PyList_GET_ITEM(object, i);
        Py_INCREF(item);
        status = write_object(writer, item);
        Py_DECREF(item);
        if (status != WRITTEN)
            return status;
    }
    if (PyList_GET_SIZE(object) != count)
        return UNSUPPORTED;             /* changed while written: pickle's business */
    return put_opcode(writer, count > 1 ? 'e' : 'a');
}

static int
write_dict(Writer *writer, PyObject *object)
{
    Py_ssize_t count = PyDict_GET_SIZE(object), position = 0;
    PyObject *key, *value;
    int status;
    if (count >= BATCH_SIZE)
        return UNSUPPORTED;
    if ((status = put_opcode(writer, '}')) != WRITTEN || (status = memo_put(writer, object)) != WRITTEN)
        return status;
    if (count == 0)
        return WRITTEN;
    if (count > 1 && (status = put_opcode(writer, '(')) != WRITTEN)
        return status;
    while (PyDict_Next(object, &position, &key, &value)) {
        Py_INCREF(key);
        Py_INCREF(value);
        status = write_object(writer, key);
        if (status == WRITTEN)
            status = write_object(writer, value);
        Py_DECREF(key);
        Py_DECREF(value);
        if (status != WRITTEN)
            return status;
        if (PyDict_GET_SIZE(object) != count)
            return UNSUPPORTED;
    }
    return put_opcode(writer, count > 1 ? 'u' : 's');
}

/* A str attribute of `object`, or NULL (no error set) when it is missing or not a str. */
static PyObject *
str_attribute(PyObject *object, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(object, name);
    if (value == NULL) {
        PyErr_Clear();
        return NULL;
    }
    if (!PyUnicode_Check(value)) {
        Py_DECREF(value);
        return NULL;
    }
    return value;
}

/* A class as GLOBAL "module\nname\n", names mapped as fix_imports maps them for protocol 2. */
static int
write_global(Writer *writer, PyObject *cls)
{
    PyObject *module_name = NULL, *name = NULL, *module, *found = NULL, *key = NULL, *mapped;
    const char *module_text, *name_text;
    Py_ssize_t module_length, name_length, i;
    int status = UNSUPPORTED;

    if (cls == (PyObject *)Py_TYPE(Py_None) || cls == (PyObject *)Py_TYPE(Py_NotImplemented)
            || cls == (PyObject *)Py_TYPE(Py_Ellipsis))
        return UNSUPPORTED;             /* pickle reduces these three to type(x) */
    name = str_attribute(cls, qualname_attribute);
    module_name = str_attribute(cls, module_attribute);
    if (name == NULL || module_name == NULL || PyUnicode_FindChar(name, '.', 0, PyUnicode_GET_LENGTH(name), 1) != -1)
        goto done;                      /* nested classes are getattr reductions in protocol 2 */
    /* pickle imports the module and checks that the name leads back to the class */
    module = PyDict_GetItemWithError(writer->modules, module_name);
    if (module == NULL) {
        if (PyErr_Occurred())
            goto failed;
        goto done;
    }
    found = PyObject_GetAttr(module, name);
    if (found == NULL) {
        PyErr_Clear();
        goto done;
    }
    if (found != cls)
        goto done;
    key = PyTuple_Pack(2, module_name, name);
    if (key == NULL)
        goto failed;
    if (PyDict_Contains(writer->extension_registry, key))
        goto done;                      /* EXT1/EXT2/EXT4 codes: pickle's job */
    mapped = PyDict_GetItemWithError(writer->name_mapping, key);
    if (mapped != NULL) {
        if (!PyTuple_Check(mapped) || PyTuple_GET_SIZE(mapped) != 2 || !PyUnicode_Check(PyTuple_GET_ITEM(mapped, 0))
                || !PyUnicode_Check(PyTuple_GET_ITEM(mapped, 1)))
            goto done;
        Py_SETREF(module_name, Py_NewRef(PyTuple_GET_ITEM(mapped, 0)));
        Py_SETREF(name, Py_NewRef(PyTuple_GET_ITEM(mapped, 1)));
    }
    else if (PyErr_Occurred())
        goto failed;
    else {
        mapped = PyDict_GetItemWithError(writer->import_mapping, module_name);
        if (mapped != NULL) {
            if (!PyUnicode_Check(mapped))
                goto done;
            Py_SETREF(module_name, Py_NewRef(mapped));
        }
        else if (PyErr_Occurred())
            goto failed;
    }
    module_text = PyUnicode_AsUTF8AndSize(module_name, &module_length);
    name_text = PyUnicode_AsUTF8AndSize(name, &name_length);
    if (module_text == NULL || name_text == NULL) {
        PyErr_Clear();
        goto done;
    }
    /* protocol 2 writes ASCII names only (pickle raises for others) */
    if (!PyUnicode_IS_ASCII(module_name) || !PyUnicode_IS_ASCII(name))
        goto done;
    for (i = 0; i < module_length; i++)
        if (module_text[i] == '\n')
            goto done;
    for (i = 0; i < name_length; i++)
        if (name_text[i] == '\n')
            goto done;
    if ((status = put_opcode(writer, 'c')) != WRITTEN || (status = put_bytes(writer, module_text, module_length)) != WRITTEN
            || (status = put_opcode(writer, '\n')) != WRITTEN || (status = put_bytes(writer, name_text, name_length)) != WRITTEN
            || (status = put_opcode(writer, '\n')) != WRITTEN)
        goto done;
    status = memo_put(writer, cls);
    goto done;
failed:
    status = FAILED;
done:
    Py_XDECREF(module_name);
    Py_XDECREF(name);
    Py_XDECREF(found);
    Py_XDECREF(key);
    return status;
}

/* An object of one of `reduced_types`: __reduce_ex__(2) gives (callable, arguments[, state]). */
static int
write_reduced(Writer *writer, PyObject *object)
{
    PyObject *reduction, *callable, *arguments, *state = NULL, *name;
    int status = UNSUPPORTED;

    reduction = PyObject_CallMethodOneArg(object, reduce_ex_attribute, protocol_number);
    if (reduction == NULL)
        return FAILED;
    if (!PyTuple_Check(reduction) || PyTuple_GET_SIZE(reduction) < 2 || PyTuple_GET_SIZE(reduction) > 3)
        goto done;
    callable = PyTuple_GET_ITEM(reduction, 0);
    arguments = PyTuple_GET_ITEM(reduction, 1);
    if (PyTuple_GET_SIZE(reduction) == 3 && PyTuple_GET_ITEM(reduction, 2) != Py_None)
        state = PyTuple_GET_ITEM(reduction, 2);
    if (!PyType_Check(callable) || !PyTuple_CheckExact(arguments))
        goto done;
    name = str_attribute(callable, name_attribute);
    if (name == NULL)
        goto done;
    if (PyUnicode_CompareWithASCIIString(name, "__newobj__") == 0
            || PyUnicode_CompareWithASCIIString(name, "__newobj_ex__") == 0) {
        Py_DECREF(name);
        goto done;
    }
    Py_DECREF(name);
    if ((status = write_object(writer, callable)) != WRITTEN || (status = write_object(writer, arguments)) != WRITTEN
            || (status = put_opcode(writer, 'R')) != WRITTEN)
        goto done;
    if (memo_find(writer, object) >= 0) {
        status = UNSUPPORTED;           /* reached again through its own arguments: a cycle */
        goto done;
    }
    if ((status = memo_put(writer, object)) != WRITTEN)
        goto done;
    if (state != NULL && ((status = write_object(writer, state)) != WRITTEN || (status = put_opcode(writer, 'b')) != WRITTEN))
        goto done;
    status = WRITTEN;
done:
    Py_DECREF(reduction);
    return status;
}

static int
write_object(Writer *writer, PyObject *object)
{
    PyTypeObject *kind = Py_TYPE(object);
    Py_ssize_t number, i;
    int status;

    if (object == Py_None)
        return put_opcode(writer, 'N');
    if (kind == &PyBool_Type)
        return put_opcode(writer, object == Py_True ? '\x88' : '\x89');
    if (kind == &PyLong_Type)
        return write_int(writer, object);
    if (kind == &PyFloat_Type)
        return UNSUPPORTED;
    number = memo_find(writer, object);
    if (number >= 0)
        return memo_get(writer, number);
    if (kind == &PyUnicode_Type)
        return write_str(writer, object);
    if (writer->depth >= DEPTH_LIMIT)
        return UNSUPPORTED;
    writer->depth++;
    if (kind == &PyTuple_Type)
        status = write_tuple(writer, object);
    else if (kind == &PyDict_Type)
        status = write_dict(writer, object);
    else if (kind == &PyList_Type)
        status = write_list(writer, object);
    else if (PyDict_Contains(writer->dispatch_table, (PyObject *)kind))
        status = UNSUPPORTED;           /* copyreg.pickle() reducers: pickle's job */
    else if (PyType_Check(object))
        status = write_global(writer, object);
    else {
        status = UNSUPPORTED;
        for (i = 0; i < PyTuple_GET_SIZE(writer->reduced_types); i++)
            if ((PyObject *)kind == PyTuple_GET_ITEM(writer->reduced_types, i)) {
                status = write_reduced(writer, object);
                break;
            }
    }
    writer->depth--;
    return status;
}

/* schema_pickle(schema, reduced_types, name_mapping, import_mapping, extension_registry,
 *               dispatch_table, modules) -> bytes, or None: see the top of this file. */
static PyObject *
schema_pickle(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Writer writer = {0};
    PyObject *result = NULL;
    Py_ssize_t i;
    int status;

    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "schema_pickle takes 7 arguments");
        return NULL;
    }
    if (!PyTuple_Check(args[1]) || !PyDict_Check(args[2]) || !PyDict_Check(args[3]) || !PyDict_Check(args[4])
            || !PyDict_Check(args[5]) || !PyDict_Check(args[6])) {
        PyErr_SetString(PyExc_TypeError, "schema_pickle: a tuple of types, then five dicts");
        return NULL;
    }
    writer.reduced_types = args[1];
    writer.name_mapping = args[2];
    writer.import_mapping = args[3];
    writer.extension_registry = args[4];
    writer.dispatch_table = args[5];
    writer.modules = args[6];
    writer.capacity = 1024;
    writer.data = PyMem_Malloc(writer.capacity);
    if (writer.data == NULL)
        return PyErr_NoMemory();
    status = put_bytes(&writer, "\x80\x02", 2);
    if (status == WRITTEN)
        status = write_object(&writer, args[0]);
    if (status == WRITTEN)
        status = put_opcode(&writer, '.');
    if (status == WRITTEN)
        result = PyBytes_FromStringAndSize(writer.data, writer.size);
    else if (status == UNSUPPORTED)
        result = Py_NewRef(Py_None);
    for (i = 0; i < writer.memo_count; i++)
        Py_DECREF(writer.memo[i]);
    PyMem_Free(writer.memo);
    PyMem_Free(writer.memo_slots);
    PyMem_Free(writer.data);
    return result;
}

static PyMethodDef schema_pickle_functions[] = {
    {"schema_pickle", (PyCFunction)(void (*)(void))schema_pickle, METH_FASTCALL,
     "schema_pickle(schema, reduced_types, name_mapping, import_mapping, extension_registry, dispatch_table, "
     "modules) -> pickle.dumps(schema, 2), or None when pickle must write it (see schema_pickle.c)"},
    {NULL}
};

int
schema_pickle_add_to_module(PyObject *module)
{
    qualname_attribute = PyUnicode_InternFromString("__qualname__");
    module_attribute = PyUnicode_InternFromString("__module__");
    name_attribute = PyUnicode_InternFromString("__name__");
    reduce_ex_attribute = PyUnicode_InternFromString("__reduce_ex__");
    protocol_number = PyLong_FromLong(2);
    if (qualname_attribute == NULL || module_attribute == NULL || name_attribute == NULL
            || reduce_ex_attribute == NULL || protocol_number == NULL)
        return -1;
    return PyModule_AddFunctions(module, schema_pickle_functions);
}
