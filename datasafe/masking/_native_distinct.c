/*
 * The leak audit's scan of the output (part of datasafe.masking._native; see _native.c and
 * datasafe/masking/fingerprints.py, which has a Python twin of each function):
 *
 *   distinct(block, ncols, wanted, seen, seed)     the new distinct fields of each wanted column
 *   audit_block(bloom, block, ncols, columns, min, wanted, seen, seed)
 *                                                  bloom_add_block and distinct in one walk of the block
 *
 * A masked table's block is read once for both: the items of its masked columns' originals go
 * into the filter, and the new distinct fields of its kept columns come back.
 */
#include "_native_leaks.h"

PyDoc_STRVAR(distinct_doc,
"distinct(block, ncols, wanted, seen=None, seed=0, /)\n--\n\n"
"The distinct fields at the indexes in `wanted` (a tuple, ascending) of the rows of `block`, one\n"
"list of bytes per wanted index, in the order of their first row. `seen`: a tuple of writable\n"
"buffers, one per wanted index, each a table of the 64-bit hashes of fields met before (zeroed\n"
"to start; `seed` keys the hashes): fields found there are left out, new ones are added while\n"
"the table is at most half full. Fields in which no item can be significant (fewer than 4\n"
"letters and digits, or fewer than 6 digits and nothing else) are left out too. Raises ValueError(row, fields) for a row without `ncols` fields.");

/* A table of field hashes kept between calls (open addressing; 0 is empty). */
typedef struct {
    Py_buffer buf;
    uint64_t *slots;
    size_t mask, used;
} seen_table;

/* Whether h is in the table; if not, adds it (while at most half full). */
static int seen_before(seen_table *t, uint64_t h) {
    if (t->slots == NULL) return 0;
    h |= 1; /* never 0 */
    size_t at = (size_t)(h >> 7) & t->mask;
    while (t->slots[at] != 0) {
        if (t->slots[at] == h) return 1;
        at = (at + 1) & t->mask;
    }
    if (t->used * 2 < t->mask) {
        t->slots[at] = h;
        t->used++;
    }
    return 0;
}

static int seen_of(PyObject *seen, Py_ssize_t nw, seen_table *tables) {
    for (Py_ssize_t c = 0; c < nw; c++) tables[c].slots = NULL;
    if (seen == NULL || seen == Py_None) return 0;
    if (!PyTuple_Check(seen) || PyTuple_GET_SIZE(seen) != nw) {
        PyErr_SetString(PyExc_ValueError, "seen: one table per wanted column");
        return -1;
    }
    for (Py_ssize_t c = 0; c < nw; c++) {
        seen_table *t = &tables[c];
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(seen, c), &t->buf, PyBUF_WRITABLE) < 0) goto fail;
        size_t n = (size_t)t->buf.len / 8;
        if (n < 2 || (n & (n - 1)) != 0 || ((uintptr_t)t->buf.buf) % 8 != 0) {
            PyBuffer_Release(&t->buf);
            PyErr_SetString(PyExc_ValueError, "seen: each table is 8 bytes times a power of two, aligned");
            goto fail;
        }
        t->slots = t->buf.buf;
        t->mask = n - 1;
        t->used = 0;
        for (size_t i = 0; i < n; i++) t->used += t->slots[i] != 0;
        continue;
    fail:
        for (Py_ssize_t d = 0; d < c; d++) PyBuffer_Release(&tables[d].buf);
        for (Py_ssize_t d = 0; d < nw; d++) tables[d].slots = NULL;
        return -1;
    }
    return 0;
}

/* Whether no item of a field can be significant (leaks_items.significant): fewer than 4 letters,
 * digits and non-ASCII bytes in all, or digits only and fewer than 6 of them. Such fields (a
 * 5-digit postcode, a status code) are left out: nothing in them is ever looked for. */
static int insignificant(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t core = 0, digits = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c >= '0' && c <= '9') digits++;
        else if (!(((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c >= 128)) continue;
        core++;
        if (core >= 6 || (core >= 4 && core > digits)) return 0;
    }
    return 1;
}

/* The distinct fields of one block's scanned columns, new since the blocks before. Per column, an
 * open-addressing table of 32-bit slots (0: empty, else 1 + the index of a field met in this
 * block) over the fields met, with the top half of each field's hash beside it: a table of a few
 * bytes a row, cheap to clear for every block, and a memcmp only where the hashes agree. */
typedef struct {
    Py_ssize_t n;     /* columns */
    Py_ssize_t rows;  /* of the block: at most this many distinct fields per column */
    size_t cap;       /* slots per column: a power of two, at least twice the rows */
    uint32_t *slots;  /* n * cap */
    span *cells;      /* n * rows: the distinct fields, in the order met */
    uint32_t *tags;   /* n * rows: the top half of their hashes */
    Py_ssize_t *met;  /* n: distinct fields so far */
    seen_table *kept; /* per column, the hashes of fields met in blocks before */
    PyObject *out;    /* per column, a list of the new fields */
    uint64_t seed;
} scan;

static void scan_free(scan *s) {
    PyMem_Free(s->slots);
    PyMem_Free(s->cells);
    PyMem_Free(s->tags);
    PyMem_Free(s->met);
    PyMem_Free(s->kept);
}

/* 0, or -1 with an error set (nothing to free then). */
static int scan_begin(scan *s, Py_ssize_t n, Py_ssize_t rows, PyObject *seen, uint64_t seed) {
    size_t cols = (size_t)(n ? n : 1), room = (size_t)(rows ? rows : 1);
    s->n = n;
    s->rows = rows;
    s->seed = seed;
    s->cap = 16;
    while (s->cap < (size_t)rows * 2) s->cap <<= 1;
    s->slots = PyMem_Calloc(s->cap * cols, sizeof(uint32_t));
    s->cells = PyMem_Malloc(sizeof(span) * room * cols);
    s->tags = PyMem_Malloc(sizeof(uint32_t) * room * cols);
    s->met = PyMem_Calloc(cols, sizeof(Py_ssize_t));
    s->kept = PyMem_Malloc(sizeof(seen_table) * cols);
    s->out = NULL;
    if (s->slots == NULL || s->cells == NULL || s->tags == NULL || s->met == NULL || s->kept == NULL) {
        PyErr_NoMemory();
    } else if (seen_of(seen, n, s->kept) == 0) {
        s->out = PyTuple_New(n);
        for (Py_ssize_t c = 0; s->out != NULL && c < n; c++) {
            PyObject *list = PyList_New(0);
            if (list == NULL) Py_CLEAR(s->out);
            else PyTuple_SET_ITEM(s->out, c, list);
        }
        if (s->out == NULL)
            for (Py_ssize_t c = 0; c < n; c++)
                if (s->kept[c].slots != NULL) PyBuffer_Release(&s->kept[c].buf);
    }
    if (s->out == NULL) {
        scan_free(s);
        return -1;
    }
    return 0;
}

/* Field v of column c; 0, or -1 with an error set. */
static int scan_field(scan *s, Py_ssize_t c, const span *v) {
    uint32_t *slots = s->slots + (size_t)c * s->cap;
    span *cells = s->cells + (size_t)c * (size_t)s->rows;
    uint32_t *tags = s->tags + (size_t)c * (size_t)s->rows;
    size_t mask = s->cap - 1;
    uint64_t h = item_hash((const unsigned char *)v->start, v->len, 0);
    uint32_t tag = (uint32_t)(h >> 32);
    size_t at = (size_t)h & mask;
    for (uint32_t k; (k = slots[at]) != 0; at = (at + 1) & mask) {
        const span *met = &cells[k - 1];
        if (tags[k - 1] == tag && met->len == v->len && memcmp(met->start, v->start, (size_t)v->len) == 0)
            return 0; /* in this block before */
    }
    Py_ssize_t e = s->met[c]++;
    cells[e] = *v;
    tags[e] = tag;
    slots[at] = (uint32_t)e + 1;
    if (insignificant((const unsigned char *)v->start, v->len)) return 0;
    if (s->kept[c].slots != NULL &&
        seen_before(&s->kept[c], item_hash((const unsigned char *)v->start, v->len, s->seed)))
        return 0; /* in a block before */
    PyObject *item = PyBytes_FromStringAndSize(v->start, v->len);
    int failed = item == NULL || PyList_Append(PyTuple_GET_ITEM(s->out, c), item) < 0;
    Py_XDECREF(item);
    return failed ? -1 : 0;
}

/* The new fields (a new reference), or NULL if not `ok`; frees the rest. */
static PyObject *scan_end(scan *s, int ok) {
    for (Py_ssize_t c = 0; c < s->n; c++)
        if (s->kept[c].slots != NULL) PyBuffer_Release(&s->kept[c].buf);
    scan_free(s);
    if (!ok) Py_CLEAR(s->out);
    return s->out;
}

static PyObject *distinct(PyObject *self, PyObject *args) {
    walk w;
    PyObject *wanted, *seen = NULL;
    unsigned long long seed = 0;
    if (!PyArg_ParseTuple(args, "y*nO!|OK:distinct", &w.block, &w.ncols, &PyTuple_Type, &wanted, &seen, &seed))
        return NULL;
    if (ds_walk_begin(&w, wanted) < 0) return NULL;
    scan s;
    if (scan_begin(&s, w.nw, w.rows, seen, seed) < 0) {
        ds_walk_end(&w);
        return NULL;
    }
    int ok = 1;
    const char *p = w.block.buf;
    for (Py_ssize_t r = 0; ok && r < w.rows; r++) {
        ok = ds_walk_row(&w, &p, r) == 0;
        for (Py_ssize_t c = 0; ok && c < w.nw; c++) ok = scan_field(&s, c, &w.found[c]) == 0;
    }
    ds_walk_end(&w);
    return scan_end(&s, ok);
}

PyDoc_STRVAR(audit_block_doc,
"audit_block(bloom, block, ncols, columns, min_length, wanted, seen=None, seed=0, /)\n--\n\n"
"bloom_add_block(bloom, block, ncols, columns, min_length) and then distinct(block, ncols,\n"
"wanted, seen, seed), in one walk of the block; returns what distinct returns. `bloom` None:\n"
"nothing is added (`columns` must be empty).");

/* The ascending union of two ascending index lists; positions of each in it. */
static PyObject *union_of(PyObject *a, PyObject *b, Py_ssize_t *pos_a, Py_ssize_t *pos_b) {
    Py_ssize_t na = PyTuple_GET_SIZE(a), nb = PyTuple_GET_SIZE(b), i = 0, j = 0, n = 0;
    PyObject *out = PyList_New(0);
    while (out != NULL && (i < na || j < nb)) {
        Py_ssize_t x = i < na ? PyLong_AsSsize_t(PyTuple_GET_ITEM(a, i)) : PY_SSIZE_T_MAX;
        Py_ssize_t y = j < nb ? PyLong_AsSsize_t(PyTuple_GET_ITEM(b, j)) : PY_SSIZE_T_MAX;
        if (PyErr_Occurred()) {
            Py_CLEAR(out);
            break;
        }
        PyObject *v = PyTuple_GET_ITEM(x <= y ? a : b, x <= y ? i : j);
        if (PyList_Append(out, v) < 0) Py_CLEAR(out);
        if (x <= y) pos_a[i++] = n;
        if (y <= x) pos_b[j++] = n;
        n++;
    }
    if (out == NULL) return NULL;
    PyObject *tuple = PyList_AsTuple(out);
    Py_DECREF(out);
    return tuple;
}

static PyObject *audit_block(PyObject *self, PyObject *args) {
    PyObject *filter, *columns, *wanted, *seen = NULL, *fp_wanted = NULL, *all = NULL;
    walk w;
    Py_ssize_t min;
    unsigned long long seed = 0;
    if (!PyArg_ParseTuple(args, "Oy*nO!nO!|OK:audit_block", &filter, &w.block, &w.ncols, &PyTuple_Type, &columns,
                          &min, &PyTuple_Type, &wanted, &seen, &seed))
        return NULL;
    Py_buffer fbuf = {0};
    int *modes = NULL, has_filter = filter != Py_None, walking = 0;
    Py_ssize_t nf = PyTuple_GET_SIZE(columns), ns = PyTuple_GET_SIZE(wanted);
    Py_ssize_t *pos = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(nf + ns + 1));
    fingerprinter *fp = NULL;
    scan s;
    PyObject *out = NULL;
    if (pos == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (!has_filter && nf > 0) {
        PyErr_SetString(PyExc_ValueError, "columns to fingerprint need a filter");
        goto done;
    }
    if (has_filter && PyObject_GetBuffer(filter, &fbuf, PyBUF_WRITABLE) < 0) {
        has_filter = 0;
        goto done;
    }
    if (ds_fp_columns(columns, &fp_wanted, &modes) < 0 || (all = union_of(fp_wanted, wanted, pos, pos + nf)) == NULL)
        goto done;
    walking = ds_walk_begin(&w, all) == 0;
    if (!walking) goto done_released;
    if (has_filter && (fp = ds_fp_new(&fbuf, w.block.len, min)) == NULL) goto done_released;
    if (scan_begin(&s, ns, w.rows, seen, seed) < 0) goto done_released;
    int ok = 1;
    const char *p = w.block.buf;
    for (Py_ssize_t r = 0; ok && r < w.rows; r++) {
        ok = ds_walk_row(&w, &p, r) == 0;
        for (Py_ssize_t c = 0; ok && c < nf; c++) ds_fp_value(fp, modes[c], w.found[pos[c]].start, w.found[pos[c]].len);
        for (Py_ssize_t c = 0; ok && c < ns; c++) ok = scan_field(&s, c, &w.found[pos[nf + c]]) == 0;
    }
    out = scan_end(&s, ok);
done_released:
    if (fp != NULL) ds_fp_done(fp);
    if (walking) ds_walk_end(&w);
    goto cleanup;
done:
    PyBuffer_Release(&w.block);
cleanup:
    if (has_filter) PyBuffer_Release(&fbuf);
    Py_XDECREF(fp_wanted);
    Py_XDECREF(all);
    PyMem_Free(modes);
    PyMem_Free(pos);
    return out;
}

PyMethodDef ds_leak_methods[] = {
    {"distinct", distinct, METH_VARARGS, distinct_doc},
    {"audit_block", audit_block, METH_VARARGS, audit_block_doc},
    {NULL, NULL, 0, NULL},
};
