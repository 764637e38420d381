/*
 * sharedbuffers._native._objects: the native code that makes and reads Python objects.
 *
 * Why this exists beside the cffi kernels
 * ---------------------------------------
 * The cffi kernels work on raw memory and return C numbers: hashing, searching, atomics.
 * Making a proxy, decoding a field or encoding a list is different work: its input or result
 * is Python objects (a tuple subclass, a str, a list of ints, a frozenset).  Through cffi each
 * of those would still be built or taken apart by Python code around the call, and on the hot
 * paths the benchmarks measure (unpack one record, read every field of a fresh proxy, pack a
 * record) that Python code *is* the cost.  So this part is written against the CPython C API.
 *
 * Parts: proxies.c (snapshot proxies and their field readers), items.c (typed array items by
 * number), encoders.c (numeric lists, tuples and sets as the writer stores them), lookups.c
 * (single-key lookups of id mappers and mappings), values.c (RTTI-wrapped values and their
 * containers, decoded), stable_hash.c (the stable hash of keys), searches.c (searches inside
 * stored values: a dict's key index, a sorted numeric array; sorted numpy arrays), number_runs.c
 * (indexing a proxied list of numbers), index_merge.c (merging two sorted index matrices),
 * schema_pickle.c (the protocol-2 pickle of a schema, for comparing with the one a file stores),
 * live_proxies.c (live proxies over writable buffers), deferred.c (a callable made on first use).
 *
 * Every function here has a pure-Python twin that gives the same results and raises the same
 * exceptions; SHAREDBUFFERS_PURE=1 (or this module missing) selects the twins, and the test
 * suite runs both.  Every read is bounds-checked against the buffer's length first.
 */
#include "objects.h"

static struct PyModuleDef objects_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sharedbuffers._native._objects",
    .m_doc = "The native code that makes and reads Python objects (see objects.c for why).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__objects(void)
{
    PyObject *module = PyModule_Create(&objects_module);
    if (module == NULL)
        return NULL;
    if (proxies_add_to_module(module) < 0 || items_add_to_module(module) < 0
            || encoders_add_to_module(module) < 0
            || lookups_add_to_module(module) < 0 || values_add_to_module(module) < 0
            || stable_hash_add_to_module(module) < 0 || searches_add_to_module(module) < 0
            || number_runs_add_to_module(module) < 0 || index_merge_add_to_module(module) < 0
            || schema_pickle_add_to_module(module) < 0 || live_proxies_add_to_module(module) < 0
            || deferred_add_to_module(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
