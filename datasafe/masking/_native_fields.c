/*
 * Blocks of tab-separated rows, field by field (part of datasafe.masking._native; see _native.c):
 *
 *   unescape(values, table)                 every value with each backslash escape \c replaced by table[c]
 *   fields(block, ncols, wanted)            the wanted fields of every row, as lists of bytes
 *   replace(block, ncols, wanted, columns)  the block with those fields replaced
 *
 * A block is whole rows, each ending with "\n", fields separated by "\t" (the stored text of
 * PostgreSQL COPY and MySQL LOAD DATA). datasafe/masking/native.py has a Python twin of each.
 */
#include "_native.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <string.h>

PyDoc_STRVAR(unescape_doc,
"unescape(values, table, /)\n--\n\n"
"Every bytes value with each backslash and the byte c after it replaced by table[c] (table: 256\n"
"bytes); a backslash at the end stays. Values without a backslash are returned as they are.");

static PyObject *unescape(PyObject *self, PyObject *args) {
    PyObject *values;
    Py_buffer table;
    if (!PyArg_ParseTuple(args, "O!y*:unescape", &PyList_Type, &values, &table)) return NULL;
    PyObject *out = NULL, *items = NULL;
    if (table.len != 256) {
        PyErr_SetString(PyExc_ValueError, "the table must have 256 bytes");
    } else if ((items = PyList_GetSlice(values, 0, PY_SSIZE_T_MAX)) != NULL) {
        /* read from a copy: making `out` may run a collection, and its Python code change the list */
        const unsigned char *map = table.buf;
        Py_ssize_t n = PyList_GET_SIZE(items);
        out = PyList_New(n);
        for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
            PyObject *item = PyList_GET_ITEM(items, i);
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
    Py_XDECREF(items);
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

/* Where tabs and line ends are among the 64 bytes at p (bit i: p[i]); fewer bytes before end. */
static inline uint64_t delimiters(const char *p, const char *end) {
    uint64_t bits = 0;
#ifdef __SSE2__
    if (end - p >= 64) {
        const __m128i tab = _mm_set1_epi8('\t'), nl = _mm_set1_epi8('\n');
        for (int i = 0; i < 4; i++) {
            __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * i));
            unsigned hits = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, tab), _mm_cmpeq_epi8(v, nl)));
            bits |= (uint64_t)hits << (16 * i);
        }
        return bits;
    }
#endif
    Py_ssize_t n = end - p < 64 ? end - p : 64;
    for (Py_ssize_t i = 0; i < n; i++)
        if (p[i] == '\t' || p[i] == '\n') bits |= 1ULL << i;
    return bits;
}

/* The next tab or line end at or after s (end if none): from a bitmap of 64 bytes at a time, so
 * that a field costs a few instructions, not a pass of its own over its bytes. */
static inline const char *next_delimiter(walk *w, const char *s, const char *end) {
    for (;;) {
        if (w->base != NULL && s >= w->base && s - w->base < 64) {
            uint64_t ahead = w->bits & (~0ULL << (s - w->base));
            if (ahead) return w->base + __builtin_ctzll(ahead);
            s = w->base + 64;
        }
        if (s >= end) return end;
        w->base = s;
        w->bits = delimiters(s, end);
    }
}

static int check_block(const char *data, Py_ssize_t len) {
    if (len > 0 && data[len - 1] != '\n') {
        PyErr_SetString(PyExc_ValueError, "a block must end with a line end");
        return -1;
    }
    return 0;
}

/* Takes the block (already parsed into w->block); on failure releases it and sets an error. */
int ds_walk_begin(walk *w, PyObject *wanted) {
    w->found = NULL;
    w->base = NULL;
    w->bits = 0;
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

void ds_walk_end(walk *w) {
    PyMem_Free(w->found);
    PyMem_Free(w->idx);
    PyBuffer_Release(&w->block);
}

/* The row starting at *p: its wanted fields into w->found; moves *p past it. -1 (error set) for a
 * wrong width. One pass over the row: each field ends at a tab, the row at its line end. */
int ds_walk_row(walk *w, const char **p, Py_ssize_t r) {
    const char *end = (const char *)w->block.buf + w->block.len;
    const char *s = *p;
    Py_ssize_t col = 0, k = 0;
    for (;;) {
        const char *d = next_delimiter(w, s, end); /* the block ends with a line end: d < end */
        if (k < w->nw && col == w->idx[k]) {
            w->found[k].start = s;
            w->found[k].len = d - s;
            k++;
        }
        col++;
        if (d >= end || *d == '\n') {
            if (col != w->ncols) {
                width_error(r, col);
                return -1;
            }
            *p = d + 1;
            return 0;
        }
        s = d + 1;
    }
}

PyDoc_STRVAR(fields_doc,
"fields(block, ncols, wanted, /)\n--\n\n"
"The fields at the indexes in `wanted` (a tuple, ascending) of every row of `block`, one list of\n"
"bytes per wanted index. Raises ValueError(row, fields) for a row without `ncols` fields.");

static PyObject *fields(PyObject *self, PyObject *args) {
    walk w;
    PyObject *wanted;
    if (!PyArg_ParseTuple(args, "y*nO!:fields", &w.block, &w.ncols, &PyTuple_Type, &wanted)) return NULL;
    if (ds_walk_begin(&w, wanted) < 0) return NULL;
    PyObject *out = PyTuple_New(w.nw);
    for (Py_ssize_t c = 0; out != NULL && c < w.nw; c++) {
        PyObject *list = PyList_New(w.rows);
        if (list == NULL) Py_CLEAR(out);
        else PyTuple_SET_ITEM(out, c, list);
    }
    const char *p = w.block.buf;
    for (Py_ssize_t r = 0; out != NULL && r < w.rows; r++) {
        if (ds_walk_row(&w, &p, r) < 0) {
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
    ds_walk_end(&w);
    return out;
}

PyDoc_STRVAR(replace_doc,
"replace(block, ncols, wanted, columns, /)\n--\n\n"
"`block` with the fields at the indexes in `wanted` replaced: row r's field wanted[w] becomes\n"
"columns[w][r] (bytes). Raises ValueError(row, fields) for a row without `ncols` fields.");

/* The size of the replaced block (-1 with an error set): the block, less the old fields, plus the
 * new ones. Notes where every old field is in spans (rows * nw of them, row by row). */
static Py_ssize_t replaced_size(walk *w, PyObject *columns, span *spans) {
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
        if (ds_walk_row(w, &p, r) < 0) return -1;
        for (Py_ssize_t c = 0; c < w->nw; c++) {
            size -= w->found[c].len;
            spans[r * w->nw + c] = w->found[c];
        }
    }
    return size;
}

static PyObject *replace(PyObject *self, PyObject *args) {
    walk w;
    PyObject *wanted, *columns;
    if (!PyArg_ParseTuple(args, "y*nO!O!:replace", &w.block, &w.ncols, &PyTuple_Type, &wanted, &PyTuple_Type,
                          &columns))
        return NULL;
    if (ds_walk_begin(&w, wanted) < 0) return NULL;
    PyObject *out = NULL;
    span *spans = PyMem_Malloc(sizeof(span) * (size_t)(w.rows * w.nw > 0 ? w.rows * w.nw : 1));
    Py_ssize_t size = spans != NULL ? replaced_size(&w, columns, spans) : -1;
    if (spans == NULL) PyErr_NoMemory();
    if (size >= 0) out = PyBytes_FromStringAndSize(NULL, size);
    if (out != NULL) {
        /* the block between the old fields, with the new fields in their places */
        char *o = PyBytes_AS_STRING(out);
        const char *from = w.block.buf;
        for (Py_ssize_t r = 0; r < w.rows; r++) {
            for (Py_ssize_t c = 0; c < w.nw; c++) {
                const span *old = &spans[r * w.nw + c];
                memcpy(o, from, (size_t)(old->start - from));
                o += old->start - from;
                PyObject *item = PyList_GET_ITEM(PyTuple_GET_ITEM(columns, c), r);
                memcpy(o, PyBytes_AS_STRING(item), (size_t)PyBytes_GET_SIZE(item));
                o += PyBytes_GET_SIZE(item);
                from = old->start + old->len;
            }
        }
        memcpy(o, from, (size_t)((const char *)w.block.buf + w.block.len - from));
    }
    PyMem_Free(spans);
    ds_walk_end(&w);
    return out;
}

PyMethodDef ds_field_methods[] = {
    {"unescape", unescape, METH_VARARGS, unescape_doc},
    {"fields", fields, METH_VARARGS, fields_doc},
    {"replace", replace, METH_VARARGS, replace_doc},
    {NULL, NULL, 0, NULL},
};
