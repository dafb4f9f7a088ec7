/*
 * datasafe.masking._native: the per-value work of masking, a block of rows at a time.
 *
 * Masking a column of a million rows in Python spends most of its time on things that are not
 * the transformer's own logic: splitting every row into fields, the method calls of an HMAC per
 * value, joining the row again. This module does those parts in C, over whole blocks:
 *
 *   fields(block, ncols, wanted)            the wanted fields of every row, as lists of bytes
 *   replace(block, ncols, wanted, columns)  the block with those fields replaced
 *   hmac_sha256(key, values)                HMAC-SHA256(key, value) of every value (32 bytes each)
 *   pick(key, values, pool)                 pool[HMAC(key, value)[:8] as big-endian integer % len(pool)]
 *   hash8(values)                           SHA-256(b"\x01" + value)[:8] of every value, concatenated
 *   unescape(values, table)                 every value with each backslash escape \c replaced by table[c]
 *
 * and, in _native_rules.c, the first choices of the transformers whose output is built from the
 * value's HMAC and layout (card numbers, phone numbers, ...).
 *
 * A block is whole rows, each ending with "\n", fields separated by "\t" (the stored text of
 * PostgreSQL COPY and MySQL LOAD DATA; escapes are left to the caller). datasafe/masking/native.py
 * has a pure-Python twin of every function, with the same results; it is used where this module
 * was not built.
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

void ds_views_free(byte_views *v) {
    PyMem_Free(v->ptr);
    PyMem_Free(v->len);
}

int ds_views_of(PyObject *list, byte_views *v) {
    v->n = PyList_GET_SIZE(list);
    v->ptr = PyMem_Malloc(sizeof(char *) * (size_t)(v->n ? v->n : 1));
    v->len = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(v->n ? v->n : 1));
    if (v->ptr == NULL || v->len == NULL) {
        ds_views_free(v);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < v->n; i++) {
        PyObject *item = PyList_GET_ITEM(list, i);
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

PyDoc_STRVAR(pick_doc,
"pick(key, values, pool, /)\n--\n\n"
"For every bytes value: pool[int.from_bytes(HMAC-SHA256(key, value)[:8], 'big') % len(pool)].");

static PyObject *pick(PyObject *self, PyObject *args) {
    Py_buffer key;
    PyObject *values, *pool;
    if (!PyArg_ParseTuple(args, "y*O!O!:pick", &key, &PyList_Type, &values, &PyList_Type, &pool)) return NULL;
    hmac_key hk;
    ds_hmac_init(&hk, key.buf, key.len);
    PyBuffer_Release(&key);
    uint64_t size = (uint64_t)PyList_GET_SIZE(pool);
    if (size == 0) {
        PyErr_SetString(PyExc_ValueError, "empty pool");
        return NULL;
    }
    byte_views v;
    if (ds_views_of(values, &v) < 0) return NULL;
    uint64_t *index = PyMem_Malloc(sizeof(uint64_t) * (size_t)(v.n ? v.n : 1));
    if (index == NULL) {
        ds_views_free(&v);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    unsigned char d[32];
    for (Py_ssize_t i = 0; i < v.n; i++) {
        ds_hmac_one(&hk, v.ptr[i], v.len[i], d);
        uint64_t x = 0;
        for (int b = 0; b < 8; b++) x = (x << 8) | d[b];
        index[i] = x % size;
    }
    Py_END_ALLOW_THREADS
    ds_views_free(&v);
    /* the pool may have changed size while the GIL was released: check again */
    PyObject *out = NULL;
    if ((uint64_t)PyList_GET_SIZE(pool) != size) {
        PyErr_SetString(PyExc_RuntimeError, "pool changed size");
    } else if ((out = PyList_New(v.n)) != NULL) {
        for (Py_ssize_t i = 0; i < v.n; i++) {
            PyObject *item = PyList_GET_ITEM(pool, (Py_ssize_t)index[i]);
            Py_INCREF(item);
            PyList_SET_ITEM(out, i, item);
        }
    }
    PyMem_Free(index);
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

PyDoc_STRVAR(unescape_doc,
"unescape(values, table, /)\n--\n\n"
"Every bytes value with each backslash and the byte c after it replaced by table[c] (table: 256\n"
"bytes); a backslash at the end stays. Values without a backslash are returned as they are.");

static PyObject *unescape(PyObject *self, PyObject *args) {
    PyObject *values;
    Py_buffer table;
    if (!PyArg_ParseTuple(args, "O!y*:unescape", &PyList_Type, &values, &table)) return NULL;
    PyObject *out = NULL;
    if (table.len != 256) {
        PyErr_SetString(PyExc_ValueError, "the table must have 256 bytes");
    } else {
        const unsigned char *map = table.buf;
        Py_ssize_t n = PyList_GET_SIZE(values);
        out = PyList_New(n);
        for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
            PyObject *item = PyList_GET_ITEM(values, i);
            if (!PyBytes_Check(item)) {
                PyErr_Format(PyExc_TypeError, "value %zd is %.100s, not bytes", i, Py_TYPE(item)->tp_name);
                Py_CLEAR(out);
                break;
            }
            const char *v = PyBytes_AS_STRING(item);
            Py_ssize_t len = PyBytes_GET_SIZE(item);
            const char *slash = memchr(v, '\\', (size_t)len);
            if (slash == NULL) {
                PyList_SET_ITEM(out, i, Py_NewRef(item));
                continue;
            }
            PyObject *new = PyBytes_FromStringAndSize(NULL, len);
            if (new == NULL) {
                Py_CLEAR(out);
                break;
            }
            char *o = PyBytes_AS_STRING(new);
            Py_ssize_t k = slash - v;
            memcpy(o, v, (size_t)k);
            for (Py_ssize_t j = k; j < len; j++) {
                if (v[j] == '\\' && j + 1 < len) o[k++] = (char)map[(unsigned char)v[++j]];
                else o[k++] = v[j];
            }
            if (_PyBytes_Resize(&new, k) < 0) {
                Py_CLEAR(out);
                break;
            }
            PyList_SET_ITEM(out, i, new);
        }
    }
    PyBuffer_Release(&table);
    return out;
}

/* --- fields of tab-separated rows ------------------------------------------------------------- */

/* The wanted column indexes: ascending, distinct, each below ncols. */
static Py_ssize_t *wanted_of(PyObject *wanted, Py_ssize_t ncols, Py_ssize_t *count) {
    Py_ssize_t n = PyTuple_GET_SIZE(wanted);
    Py_ssize_t *idx = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(n ? n : 1));
    if (idx == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t w = 0; w < n; w++) {
        idx[w] = PyLong_AsSsize_t(PyTuple_GET_ITEM(wanted, w));
        if (idx[w] == -1 && PyErr_Occurred()) {
            PyMem_Free(idx);
            return NULL;
        }
        if (idx[w] < 0 || idx[w] >= ncols || (w > 0 && idx[w] <= idx[w - 1])) {
            PyMem_Free(idx);
            PyErr_SetString(PyExc_ValueError, "wanted columns must be ascending indexes below ncols");
            return NULL;
        }
    }
    *count = n;
    return idx;
}

static Py_ssize_t count_rows(const char *p, Py_ssize_t len) {
    Py_ssize_t rows = 0;
    const char *end = p + len;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        rows++;
        p++;
    }
    return rows;
}

/* Raised for a row with the wrong number of fields: ValueError(row, fields). */
static void width_error(Py_ssize_t row, Py_ssize_t found) {
    PyObject *exc_args = Py_BuildValue("(nn)", row, found);
    if (exc_args != NULL) {
        PyErr_SetObject(PyExc_ValueError, exc_args);
        Py_DECREF(exc_args);
    }
}

/* Where a field is in the block. */
typedef struct {
    const char *start;
    Py_ssize_t len;
} span;

/* Walks one row (from p to its line end): notes where the wanted fields are; returns the number of fields. */

static Py_ssize_t split_row(const char *p, const char *line_end, const Py_ssize_t *idx, Py_ssize_t nw,
                            span *found) {
    Py_ssize_t col = 0, w = 0;
    for (;;) {
        const char *tab = memchr(p, '\t', (size_t)(line_end - p));
        const char *field_end = tab ? tab : line_end;
        if (w < nw && col == idx[w]) {
            found[w].start = p;
            found[w].len = field_end - p;
            w++;
        }
        col++;
        if (tab == NULL) return col;
        p = tab + 1;
    }
}

static int check_block(const char *data, Py_ssize_t len) {
    if (len > 0 && data[len - 1] != '\n') {
        PyErr_SetString(PyExc_ValueError, "a block must end with a line end");
        return -1;
    }
    return 0;
}

/* A block and the wanted columns, checked, with room for one row's wanted fields. */
typedef struct {
    Py_buffer block;
    Py_ssize_t ncols, nw, rows;
    Py_ssize_t *idx;
    span *found;
} walk;

/* Takes the block (already parsed into w->block); on failure releases it and sets an error. */
static int walk_begin(walk *w, PyObject *wanted) {
    w->found = NULL;
    w->idx = wanted_of(wanted, w->ncols, &w->nw);
    if (w->idx != NULL && check_block(w->block.buf, w->block.len) == 0) {
        w->rows = count_rows(w->block.buf, w->block.len);
        w->found = PyMem_Malloc(sizeof(span) * (size_t)(w->nw ? w->nw : 1));
        if (w->found != NULL) return 0;
        PyErr_NoMemory();
    }
    PyMem_Free(w->idx);
    PyBuffer_Release(&w->block);
    return -1;
}

static void walk_end(walk *w) {
    PyMem_Free(w->found);
    PyMem_Free(w->idx);
    PyBuffer_Release(&w->block);
}

/* The row starting at *p: its wanted fields into w->found; moves *p past it. -1 (error set) for a wrong width. */
static int walk_row(walk *w, const char **p, Py_ssize_t r) {
    const char *end = (const char *)w->block.buf + w->block.len;
    const char *line_end = memchr(*p, '\n', (size_t)(end - *p));
    Py_ssize_t cols = split_row(*p, line_end, w->idx, w->nw, w->found);
    if (cols != w->ncols) {
        width_error(r, cols);
        return -1;
    }
    *p = line_end + 1;
    return 0;
}

PyDoc_STRVAR(fields_doc,
"fields(block, ncols, wanted, /)\n--\n\n"
"The fields at the indexes in `wanted` (a tuple, ascending) of every row of `block`, one list of\n"
"bytes per wanted index. Raises ValueError(row, fields) for a row without `ncols` fields.");

static PyObject *fields(PyObject *self, PyObject *args) {
    walk w;
    PyObject *wanted;
    if (!PyArg_ParseTuple(args, "y*nO!:fields", &w.block, &w.ncols, &PyTuple_Type, &wanted)) return NULL;
    if (walk_begin(&w, wanted) < 0) return NULL;
    PyObject *out = PyTuple_New(w.nw);
    for (Py_ssize_t c = 0; out != NULL && c < w.nw; c++) {
        PyObject *list = PyList_New(w.rows);
        if (list == NULL) Py_CLEAR(out);
        else PyTuple_SET_ITEM(out, c, list);
    }
    const char *p = w.block.buf;
    for (Py_ssize_t r = 0; out != NULL && r < w.rows; r++) {
        if (walk_row(&w, &p, r) < 0) {
            Py_CLEAR(out);
            break;
        }
        for (Py_ssize_t c = 0; c < w.nw; c++) {
            PyObject *item = PyBytes_FromStringAndSize(w.found[c].start, w.found[c].len);
            if (item == NULL) {
                Py_CLEAR(out);
                break;
            }
            PyList_SET_ITEM(PyTuple_GET_ITEM(out, c), r, item);
        }
    }
    walk_end(&w);
    return out;
}

PyDoc_STRVAR(replace_doc,
"replace(block, ncols, wanted, columns, /)\n--\n\n"
"`block` with the fields at the indexes in `wanted` replaced: row r's field wanted[w] becomes\n"
"columns[w][r] (bytes). Raises ValueError(row, fields) for a row without `ncols` fields.");

/* The size of the replaced block (-1 with an error set): the block, less the old fields, plus the new ones. */
static Py_ssize_t replaced_size(walk *w, PyObject *columns) {
    if (PyTuple_GET_SIZE(columns) != w->nw) {
        PyErr_SetString(PyExc_ValueError, "one list of new fields per wanted column");
        return -1;
    }
    Py_ssize_t size = w->block.len;
    for (Py_ssize_t c = 0; c < w->nw; c++) {
        PyObject *list = PyTuple_GET_ITEM(columns, c);
        if (!PyList_Check(list) || PyList_GET_SIZE(list) != w->rows) {
            PyErr_SetString(PyExc_ValueError, "every list of new fields must have one item per row");
            return -1;
        }
        for (Py_ssize_t r = 0; r < w->rows; r++) {
            PyObject *item = PyList_GET_ITEM(list, r);
            if (!PyBytes_Check(item)) {
                PyErr_Format(PyExc_TypeError, "new field %zd of column %zd is %.100s, not bytes", r, w->idx[c],
                             Py_TYPE(item)->tp_name);
                return -1;
            }
            size += PyBytes_GET_SIZE(item);
        }
    }
    const char *p = w->block.buf;
    for (Py_ssize_t r = 0; r < w->rows; r++) {
        if (walk_row(w, &p, r) < 0) return -1;
        for (Py_ssize_t c = 0; c < w->nw; c++) size -= w->found[c].len;
    }
    return size;
}

static PyObject *replace(PyObject *self, PyObject *args) {
    walk w;
    PyObject *wanted, *columns;
    if (!PyArg_ParseTuple(args, "y*nO!O!:replace", &w.block, &w.ncols, &PyTuple_Type, &wanted, &PyTuple_Type,
                          &columns))
        return NULL;
    if (walk_begin(&w, wanted) < 0) return NULL;
    PyObject *out = NULL;
    Py_ssize_t size = replaced_size(&w, columns);
    if (size >= 0) out = PyBytes_FromStringAndSize(NULL, size);
    if (out != NULL) {
        char *o = PyBytes_AS_STRING(out);
        const char *p = w.block.buf;
        for (Py_ssize_t r = 0; r < w.rows; r++) {
            const char *row = p;
            walk_row(&w, &p, r); /* checked by replaced_size */
            for (Py_ssize_t c = 0; c < w.nw; c++) {
                memcpy(o, row, (size_t)(w.found[c].start - row));
                o += w.found[c].start - row;
                PyObject *item = PyList_GET_ITEM(PyTuple_GET_ITEM(columns, c), r);
                memcpy(o, PyBytes_AS_STRING(item), (size_t)PyBytes_GET_SIZE(item));
                o += PyBytes_GET_SIZE(item);
                row = w.found[c].start + w.found[c].len;
            }
            memcpy(o, row, (size_t)(p - row));
            o += p - row;
        }
    }
    walk_end(&w);
    return out;
}

static PyMethodDef methods[] = {
    {"hmac_sha256", hmac_sha256, METH_VARARGS, hmac_sha256_doc},
    {"pick", pick, METH_VARARGS, pick_doc},
    {"hash8", hash8, METH_VARARGS, hash8_doc},
    {"unescape", unescape, METH_VARARGS, unescape_doc},
    {"fields", fields, METH_VARARGS, fields_doc},
    {"replace", replace, METH_VARARGS, replace_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native",
    "The per-value work of masking in C (see datasafe/masking/native.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddFunctions(m, ds_rule_methods) < 0) Py_CLEAR(m);
    return m;
}
