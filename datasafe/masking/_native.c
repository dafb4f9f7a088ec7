/*
 * datasafe.masking._native: the per-value work of masking, a block of rows at a time.
 *
 * Masking a column of a million rows in Python spends most of its time on things that are not
 * the transformer's own logic: splitting every row into fields, the method calls of an HMAC per
 * value, joining the row again. This module does those parts in C, over whole blocks. This file
 * has the keyed hashes:
 *
 *   hmac_sha256(key, values)                HMAC-SHA256(key, value) of every value (32 bytes each)
 *   pick(key, values, pool[, keep_blank])   pool[HMAC(key, value)[:8] as big-endian integer % len(pool)]
 *                                           (with keep_blank, a blank value is its own pick)
 *   hash8(values)                           SHA-256(b"\x01" + value)[:8] of every value, concatenated
 *
 * _native_fields.c takes fields out of blocks of rows and puts them back (and undoes escapes);
 * _native_rules.c has the first choices of the transformers whose output is built from the
 * value's HMAC and layout (card numbers, e-mail addresses, ...), and _native_phone.c that of phone
 * numbers (with keyed draws from _native_draws.c). datasafe/masking/native.py has a
 * pure-Python twin of every function but the rules, with the same results; it is used where this
 * module was not built.
 */
#include "_native.h"

#include <stdint.h>
#include <string.h>

void ds_hmac_init(hmac_key *hk, const unsigned char *key, Py_ssize_t len) {
    unsigned char k[64], pad[64];
    memset(k, 0, sizeof k);
    if (len > 64) {
        SHA256(key, (size_t)len, k);
    } else {
        memcpy(k, key, (size_t)len);
    }
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
    SHA256_Init(&hk->inner);
    SHA256_Update(&hk->inner, pad, 64);
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
    SHA256_Init(&hk->outer);
    SHA256_Update(&hk->outer, pad, 64);
}

void ds_hmac_one(const hmac_key *hk, const char *msg, Py_ssize_t len, unsigned char out[32]) {
    unsigned char inner[32];
    SHA256_CTX c = hk->inner;
    SHA256_Update(&c, msg, (size_t)len);
    SHA256_Final(inner, &c);
    c = hk->outer;
    SHA256_Update(&c, inner, 32);
    SHA256_Final(out, &c);
}

/* A character of Python's str.isspace(), from the first byte of its UTF-8 form on; its length in
 * bytes, or 0 when it is not one. */
static int space_at(const unsigned char *s, Py_ssize_t n) {
    unsigned char c = s[0];
    if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1C && c <= 0x1F)) return 1;
    if (c == 0xC2 && n >= 2 && (s[1] == 0x85 || s[1] == 0xA0)) return 2;
    if (n < 3) return 0;
    if (c == 0xE1 && s[1] == 0x9A && s[2] == 0x80) return 3;                   /* U+1680 */
    if (c == 0xE2 && s[1] == 0x80 && ((s[2] >= 0x80 && s[2] <= 0x8A) || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF))
        return 3;                                                              /* U+2000-200A, 2028, 2029, 202F */
    if (c == 0xE2 && s[1] == 0x81 && s[2] == 0x9F) return 3;                   /* U+205F */
    if (c == 0xE3 && s[1] == 0x80 && s[2] == 0x80) return 3;                   /* U+3000 */
    return 0;
}

int ds_blank(const char *s, Py_ssize_t n) {
    const unsigned char *u = (const unsigned char *)s;
    int plain = 1;
    for (Py_ssize_t i = 0; i < n;) {
        int k = space_at(u + i, n - i);
        if (k == 0) return 0;
        plain &= u[i] == ' ';
        i += k;
    }
    return plain ? 2 : 1;
}

void ds_views_free(byte_views *v) {
    PyMem_Free(v->ptr);
    PyMem_Free(v->len);
    Py_CLEAR(v->items);
}

int ds_views_of(PyObject *list, byte_views *v) {
    /* a copy (n new references, next to a hash per value: cheap) rather than the list itself, which
     * other threads may change once the caller releases the GIL */
    v->ptr = NULL;
    v->len = NULL;
    v->items = PyList_GetSlice(list, 0, PY_SSIZE_T_MAX);
    if (v->items == NULL) return -1;
    v->n = PyList_GET_SIZE(v->items);
    v->ptr = PyMem_Malloc(sizeof(char *) * (size_t)(v->n ? v->n : 1));
    v->len = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(v->n ? v->n : 1));
    if (v->ptr == NULL || v->len == NULL) {
        ds_views_free(v);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < v->n; i++) {
        PyObject *item = PyList_GET_ITEM(v->items, i);
        if (!PyBytes_Check(item)) {
            ds_views_free(v);
            PyErr_Format(PyExc_TypeError, "value %zd is %.100s, not bytes", i, Py_TYPE(item)->tp_name);
            return -1;
        }
        v->ptr[i] = PyBytes_AS_STRING(item);
        v->len[i] = PyBytes_GET_SIZE(item);
    }
    return 0;
}

PyDoc_STRVAR(hmac_sha256_doc,
"hmac_sha256(key, values, /)\n--\n\n"
"HMAC-SHA256(key, value) of every bytes value in the list, as a list of 32-byte digests.");

static PyObject *hmac_sha256(PyObject *self, PyObject *args) {
    Py_buffer key;
    PyObject *values;
    if (!PyArg_ParseTuple(args, "y*O!:hmac_sha256", &key, &PyList_Type, &values)) return NULL;
    hmac_key hk;
    ds_hmac_init(&hk, key.buf, key.len);
    PyBuffer_Release(&key);
    byte_views v;
    if (ds_views_of(values, &v) < 0) return NULL;
    unsigned char *digests = PyMem_Malloc(32 * (size_t)(v.n ? v.n : 1));
    if (digests == NULL) {
        ds_views_free(&v);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < v.n; i++) ds_hmac_one(&hk, v.ptr[i], v.len[i], digests + 32 * i);
    Py_END_ALLOW_THREADS
    PyObject *out = PyList_New(v.n);
    for (Py_ssize_t i = 0; out != NULL && i < v.n; i++) {
        PyObject *d = PyBytes_FromStringAndSize((const char *)digests + 32 * i, 32);
        if (d == NULL) Py_CLEAR(out);
        else PyList_SET_ITEM(out, i, d);
    }
    PyMem_Free(digests);
    ds_views_free(&v);
    return out;
}

/* The last value seen in each of up to 2**PICK_SEEN_BITS slots (a pointer into the views' bytes)
 * and its pick; a short list gets as many slots as it has values, a one-value call one. */
#define PICK_SEEN_BITS 10
typedef struct {
    const char *ptr;
    Py_ssize_t len;
    uint64_t index;
} pick_seen;

/* A slot from the length and the first and last 8 bytes: cheap next to an HMAC; equal values
 * always meet in one slot, other values may share it (they are told apart by their bytes). */
static size_t seen_slot(const char *p, Py_ssize_t len, int bits) {
    uint64_t head = 0, tail = 0;
    memcpy(&head, p, (size_t)(len < 8 ? len : 8));
    if (len > 8) memcpy(&tail, p + len - 8, 8);
    uint64_t h = (head ^ (tail * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)len) * 0xff51afd7ed558ccdULL;
    return bits ? (size_t)(h >> (64 - bits)) : 0; /* the top bits */
}

PyDoc_STRVAR(pick_doc,
"pick(key, values, pool, keep_blank=False, /)\n--\n\n"
"For every bytes value: pool[int.from_bytes(HMAC-SHA256(key, value)[:8], 'big') % len(pool)];\n"
"with keep_blank, a value that is empty or white space only (UTF-8, str.isspace) is its own pick.");

#define PICK_BLANK UINT64_MAX /* the index of a blank value */

/* Whether a pick of n values releases the GIL while it hashes. It then reads a copy of the pool,
 * which other threads could change meanwhile (the values' views are a copy already): cheap next to
 * the hashing only when the values are not much fewer than the pool's items. A pick of a single
 * value at a time (batch._pool_function) keeps the GIL and copies nothing. */
static int pick_releases(Py_ssize_t n, Py_ssize_t pool_size) { return n >= 64 && n >= pool_size / 8; }

static PyObject *pick(PyObject *self, PyObject *args) {
    Py_buffer key;
    PyObject *values, *passed_pool;
    int keep_blank = 0;
    if (!PyArg_ParseTuple(args, "y*O!O!|p:pick", &key, &PyList_Type, &values, &PyList_Type, &passed_pool,
                          &keep_blank))
        return NULL;
    hmac_key hk;
    ds_hmac_init(&hk, key.buf, key.len);
    PyBuffer_Release(&key);
    if (PyList_GET_SIZE(passed_pool) == 0) {
        PyErr_SetString(PyExc_ValueError, "empty pool");
        return NULL;
    }
    byte_views v;
    if (ds_views_of(values, &v) < 0) return NULL;
    uint64_t *index = PyMem_Malloc(sizeof(uint64_t) * (size_t)(v.n ? v.n : 1));
    int bits = 0;
    while (bits < PICK_SEEN_BITS && ((Py_ssize_t)1 << bits) < v.n) bits++;
    pick_seen *seen = PyMem_Calloc((size_t)1 << bits, sizeof(pick_seen));
    /* made before the pool is read: making a list may run a collection, and so Python code */
    PyObject *out = index != NULL && seen != NULL ? PyList_New(v.n) : NULL;
    if (out == NULL) {
        if (index == NULL || seen == NULL) PyErr_NoMemory();
        PyMem_Free(index);
        PyMem_Free(seen);
        ds_views_free(&v);
        return NULL;
    }
    int release = pick_releases(v.n, PyList_GET_SIZE(passed_pool));
    PyObject *pool = release ? PyList_GetSlice(passed_pool, 0, PY_SSIZE_T_MAX) : Py_NewRef(passed_pool);
    uint64_t size = pool != NULL ? (uint64_t)PyList_GET_SIZE(pool) : 0;
    if (size == 0) { /* out of memory, or a collection emptied the pool */
        if (pool != NULL) PyErr_SetString(PyExc_ValueError, "empty pool");
        Py_XDECREF(pool);
        Py_DECREF(out);
        PyMem_Free(index);
        PyMem_Free(seen);
        ds_views_free(&v);
        return NULL;
    }
    PyThreadState *saved = release ? PyEval_SaveThread() : NULL;
    unsigned char d[32];
    for (Py_ssize_t i = 0; i < v.n; i++) {
        if (keep_blank && ds_blank(v.ptr[i], v.len[i])) {
            index[i] = PICK_BLANK;
            continue;
        }
        /* a value met shortly before (names repeat) takes the pick remembered for it */
        pick_seen *s = &seen[seen_slot(v.ptr[i], v.len[i], bits)];
        if (s->ptr != NULL && s->len == v.len[i] && memcmp(s->ptr, v.ptr[i], (size_t)v.len[i]) == 0) {
            index[i] = s->index;
            continue;
        }
        ds_hmac_one(&hk, v.ptr[i], v.len[i], d);
        uint64_t x = 0;
        for (int b = 0; b < 8; b++) x = (x << 8) | d[b];
        index[i] = x % size;
        s->ptr = v.ptr[i];
        s->len = v.len[i];
        s->index = index[i];
    }
    if (release) PyEval_RestoreThread(saved);
    for (Py_ssize_t i = 0; i < v.n; i++) {
        PyObject *item = index[i] == PICK_BLANK ? PyList_GET_ITEM(v.items, i)
                                                : PyList_GET_ITEM(pool, (Py_ssize_t)index[i]);
        PyList_SET_ITEM(out, i, Py_NewRef(item));
    }
    Py_DECREF(pool);
    PyMem_Free(index);
    PyMem_Free(seen);
    ds_views_free(&v);
    return out;
}

PyDoc_STRVAR(hash8_doc,
"hash8(values, /)\n--\n\n"
"SHA-256(b'\\x01' + value)[:8] of every bytes value in the list, concatenated.");

static PyObject *hash8(PyObject *self, PyObject *args) {
    PyObject *values;
    if (!PyArg_ParseTuple(args, "O!:hash8", &PyList_Type, &values)) return NULL;
    byte_views v;
    if (ds_views_of(values, &v) < 0) return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, 8 * v.n);
    if (out == NULL) {
        ds_views_free(&v);
        return NULL;
    }
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    static const unsigned char one = 1;
    unsigned char d[32];
    for (Py_ssize_t i = 0; i < v.n; i++) {
        SHA256_CTX c;
        SHA256_Init(&c);
        SHA256_Update(&c, &one, 1);
        SHA256_Update(&c, v.ptr[i], (size_t)v.len[i]);
        SHA256_Final(d, &c);
        memcpy(o + 8 * i, d, 8);
    }
    Py_END_ALLOW_THREADS
    ds_views_free(&v);
    return out;
}

static PyMethodDef methods[] = {
    {"hmac_sha256", hmac_sha256, METH_VARARGS, hmac_sha256_doc},
    {"pick", pick, METH_VARARGS, pick_doc},
    {"hash8", hash8, METH_VARARGS, hash8_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native",
    "The per-value work of masking in C (see datasafe/masking/native.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && (PyModule_AddFunctions(m, ds_field_methods) < 0 || PyModule_AddFunctions(m, ds_rule_methods) < 0 ||
                      PyModule_AddFunctions(m, ds_phone_methods) < 0 || PyModule_AddFunctions(m, ds_leak_methods) < 0 ||
                      PyModule_AddFunctions(m, ds_bloom_methods) < 0))
        Py_CLEAR(m);
    return m;
}
