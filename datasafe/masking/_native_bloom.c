/*
 * The leak audit's fingerprint filter (part of datasafe.masking._native; see _native.c and
 * datasafe/masking/fingerprints.py, which has a Python twin of each function):
 *
 *   bloom_add_block(bloom, block, ncols, columns, min) every item of the given columns' values into a filter
 *   bloom_add(bloom, items, min)                       items (a leading 0x1f marks a word) into a filter
 *   bloom_find(bloom, items)                           the indexes of the items the filter may hold
 *
 * The filter is a blocked Bloom filter: a writable, 64-byte aligned buffer of 64-byte blocks; an
 * item sets 16 bits in one block (four in each of four of its eight 64-bit words), so that
 * adding or finding it touches one cache line. Items are hashed a batch at a time and their lines
 * fetched side by side. Worker processes share one filter (an anonymous shared mapping): bits are
 * set with an atomic OR. Items are cut from the lower-cased values exactly as
 * datasafe.masking.leaks_items.original_items cuts them, and a few more (see cut_text): the
 * filter may hold more than the items, never less.
 */
#include "_native_leaks.h"

typedef struct {
    uint64_t *words;
    uint64_t blocks; /* 64-byte blocks: eight 64-bit words, one cache line */
} bloom;

static inline uint64_t block_of(const bloom *f, uint64_t h) {
    return (uint64_t)(((unsigned __int128)h * f->blocks) >> 64);
}

/* The 70 choices of four of a block's eight words, ascending. */
static const unsigned char HALVES[70][4] = {
    {0, 1, 2, 3}, {0, 1, 2, 4}, {0, 1, 3, 4}, {0, 2, 3, 4}, {1, 2, 3, 4}, {0, 1, 2, 5}, {0, 1, 3, 5},
    {0, 2, 3, 5}, {1, 2, 3, 5}, {0, 1, 4, 5}, {0, 2, 4, 5}, {1, 2, 4, 5}, {0, 3, 4, 5}, {1, 3, 4, 5},
    {2, 3, 4, 5}, {0, 1, 2, 6}, {0, 1, 3, 6}, {0, 2, 3, 6}, {1, 2, 3, 6}, {0, 1, 4, 6}, {0, 2, 4, 6},
    {1, 2, 4, 6}, {0, 3, 4, 6}, {1, 3, 4, 6}, {2, 3, 4, 6}, {0, 1, 5, 6}, {0, 2, 5, 6}, {1, 2, 5, 6},
    {0, 3, 5, 6}, {1, 3, 5, 6}, {2, 3, 5, 6}, {0, 4, 5, 6}, {1, 4, 5, 6}, {2, 4, 5, 6}, {3, 4, 5, 6},
    {0, 1, 2, 7}, {0, 1, 3, 7}, {0, 2, 3, 7}, {1, 2, 3, 7}, {0, 1, 4, 7}, {0, 2, 4, 7}, {1, 2, 4, 7},
    {0, 3, 4, 7}, {1, 3, 4, 7}, {2, 3, 4, 7}, {0, 1, 5, 7}, {0, 2, 5, 7}, {1, 2, 5, 7}, {0, 3, 5, 7},
    {1, 3, 5, 7}, {2, 3, 5, 7}, {0, 4, 5, 7}, {1, 4, 5, 7}, {2, 4, 5, 7}, {3, 4, 5, 7}, {0, 1, 6, 7},
    {0, 2, 6, 7}, {1, 2, 6, 7}, {0, 3, 6, 7}, {1, 3, 6, 7}, {2, 3, 6, 7}, {0, 4, 6, 7}, {1, 4, 6, 7},
    {2, 4, 6, 7}, {3, 4, 6, 7}, {0, 5, 6, 7}, {1, 5, 6, 7}, {2, 5, 6, 7}, {3, 5, 6, 7}, {4, 5, 6, 7}};

/* An item's block, the four of its eight words it uses and the four bits it sets in each: sixteen
 * bits spread as widely as two in each word (the same false positives), set with four atomic
 * ORs instead of eight. Bit positions: six bits each, ten from g0 and six from g1; the choice
 * of words: g1's top 24 bits, modulo 70. */
static inline uint64_t *probe(const bloom *f, uint64_t h, int words[4], uint64_t masks[4]) {
    uint64_t g0 = mix64(h ^ 0x9e3779b97f4a7c15ULL), g1 = mix64(h + 0x632be59bd9b4e019ULL);
    const unsigned char *half = HALVES[(g1 >> 40) % 70];
    uint64_t src[16];
    for (int k = 0; k < 10; k++) src[k] = g0 >> (6 * k);
    for (int k = 0; k < 6; k++) src[10 + k] = g1 >> (6 * k);
    for (int j = 0; j < 4; j++) {
        words[j] = half[j];
        masks[j] = (1ULL << (src[4 * j] & 63)) | (1ULL << (src[4 * j + 1] & 63)) | (1ULL << (src[4 * j + 2] & 63)) |
                   (1ULL << (src[4 * j + 3] & 63));
    }
    return f->words + block_of(f, h) * 8;
}

static inline void bloom_set(const bloom *f, uint64_t h) {
    int words[4];
    uint64_t masks[4];
    uint64_t *blk = probe(f, h, words, masks);
    for (int j = 0; j < 4; j++)
        if ((__atomic_load_n(&blk[words[j]], __ATOMIC_RELAXED) & masks[j]) != masks[j])
            __atomic_fetch_or(&blk[words[j]], masks[j], __ATOMIC_RELAXED);
}

static int bloom_has(const bloom *f, uint64_t h) {
    int words[4];
    uint64_t masks[4];
    uint64_t *blk = probe(f, h, words, masks);
    for (int j = 0; j < 4; j++)
        if ((__atomic_load_n(&blk[words[j]], __ATOMIC_RELAXED) & masks[j]) != masks[j]) return 0;
    return 1;
}

static int bloom_of(Py_buffer *buf, bloom *f) {
    if (buf->len < 64 || buf->len % 64 != 0 || ((uintptr_t)buf->buf) % 64 != 0) {
        PyErr_SetString(PyExc_ValueError, "a filter is a non-empty, 64-byte aligned whole number of 64-byte blocks");
        return -1;
    }
    f->words = buf->buf;
    f->blocks = (uint64_t)buf->len / 64;
    return 0;
}

/* Hashes waiting to be set, many at a time, set in the order of their blocks: a filter larger
 * than the caches is then swept from one end to the other, page after page, instead of being hit
 * at random (where each item would cost a TLB miss and a cache miss). A hash is a block's
 * position in the filter (block_of is monotonic in it), so its top bits order the blocks: one
 * counting sort on them. A hash set shortly before (a repeated name, city, word) is not set
 * again: `recent` remembers the last one of each of its slots. */
#define BATCH 16384
#define BUCKET_BITS 12
#define RECENT 4096
typedef struct {
    const bloom *f;
    uint64_t *hashes; /* BATCH waiting, then ... */
    uint64_t *sorted; /* ... in the order of their blocks */
    int n;
    uint64_t *recent;
} batch;

/* 0, or -1 with MemoryError set. */
static int batch_init(batch *b, const bloom *f) {
    b->f = f;
    b->n = 0;
    b->hashes = PyMem_Malloc(sizeof(uint64_t) * BATCH);
    b->sorted = PyMem_Malloc(sizeof(uint64_t) * BATCH);
    b->recent = PyMem_Calloc(RECENT, sizeof(uint64_t));
    if (b->hashes != NULL && b->sorted != NULL && b->recent != NULL) return 0;
    PyMem_Free(b->hashes);
    PyMem_Free(b->sorted);
    PyMem_Free(b->recent);
    PyErr_NoMemory();
    return -1;
}

static void batch_free(batch *b) {
    PyMem_Free(b->hashes);
    PyMem_Free(b->sorted);
    PyMem_Free(b->recent);
}

static void flush(batch *b) {
    uint32_t start[(1 << BUCKET_BITS) + 1] = {0};
    for (int i = 0; i < b->n; i++) start[(b->hashes[i] >> (64 - BUCKET_BITS)) + 1]++;
    for (int k = 0; k < 1 << BUCKET_BITS; k++) start[k + 1] += start[k];
    for (int i = 0; i < b->n; i++) b->sorted[start[b->hashes[i] >> (64 - BUCKET_BITS)]++] = b->hashes[i];
    for (int i = 0; i < b->n; i++) {
        if (i + 8 < b->n) __builtin_prefetch(b->f->words + block_of(b->f, b->sorted[i + 8]) * 8, 1);
        bloom_set(b->f, b->sorted[i]);
    }
    b->n = 0;
}

static inline void push(batch *b, uint64_t h) {
    uint64_t *seen = &b->recent[h & (RECENT - 1)];
    if (*seen == h) return;
    *seen = h;
    b->hashes[b->n++] = h;
    if (b->n == BATCH) flush(b);
}

/* --- cutting values into items -------------------------------------------------------------- */

typedef struct {
    batch *b;
    Py_ssize_t min;
    unsigned char *scratch; /* room for the longest value of the block */
} cutter;

static inline void add(const cutter *k, const unsigned char *s, Py_ssize_t n, uint64_t seed) {
    if (n >= k->min) push(k->b, item_hash(s, n, seed));
}

static inline int is_local(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '%' || c == '+' ||
           c == '-';
}
static inline int is_domain(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }
static inline int is_word(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 128; }

/* The next e-mail address in lower-cased t[from:n], as leaks_items._EMAIL finds them (leftmost,
 * then after the end of the last); 1 with its span, or 0. */
static int next_email(const unsigned char *t, Py_ssize_t n, Py_ssize_t from, Py_ssize_t *start, Py_ssize_t *end) {
    for (Py_ssize_t i = from; i < n; i++) {
        if (t[i] != '@') continue;
        Py_ssize_t j = i;
        while (j > from && is_local(t[j - 1])) j--;
        if (j == i) continue;
        Py_ssize_t k = i + 1;
        while (k < n && is_domain(t[k])) k++;
        if (k == i + 1) continue;
        Py_ssize_t e = k;
        int groups = 0;
        while (e < n && t[e] == '.') {
            Py_ssize_t m = e + 1;
            while (m < n && is_domain(t[m])) m++;
            if (m == e + 1) break;
            e = m;
            groups++;
        }
        if (groups == 0) continue;
        *start = j;
        *end = e;
        return 1;
    }
    return 0;
}

static void add_emails(const cutter *k, const unsigned char *t, Py_ssize_t n) {
    Py_ssize_t from = 0, s, e;
    while (next_email(t, n, from, &s, &e)) {
        add(k, t + s, e - s, SEED_VALUE);
        from = e;
    }
}

/* Text as leaks_items.words sees it: the escapes \n \t \r as spaces, e-mail addresses cut out
 * (also added as items: more than original_items adds), then runs of letters, digits and
 * non-ASCII bytes, each a word. `t` is lower-cased; k->scratch receives the escaped form. */
static void add_words(const cutter *k, const unsigned char *t, Py_ssize_t n) {
    const unsigned char *u = t;
    Py_ssize_t m = n;
    if (memchr(t, '\\', (size_t)n) != NULL) { /* escapes to undo: into the scratch */
        unsigned char *x = k->scratch;
        u = x;
        m = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (t[i] == '\\' && i + 1 < n && (t[i + 1] == 'n' || t[i + 1] == 't' || t[i + 1] == 'r')) {
                x[m++] = ' ';
                i++;
            } else {
                x[m++] = t[i];
            }
        }
    }
    Py_ssize_t s = m, e = m;
    int more = memchr(u, '@', (size_t)m) != NULL && next_email(u, m, 0, &s, &e);
    if (!more) s = e = m;
    Py_ssize_t i = 0;
    while (i < m) {
        if (i == s) { /* an address: an item of its own, not words */
            add(k, u + s, e - s, SEED_VALUE);
            i = e;
            if (!next_email(u, m, e, &s, &e)) s = e = m;
            continue;
        }
        if (!is_word(u[i])) {
            i++;
            continue;
        }
        Py_ssize_t w = i;
        while (i < m && i != s && is_word(u[i])) i++;
        add(k, u + w, i - w, SEED_WORD);
    }
}

static void cut_text(const cutter *k, const unsigned char *t, Py_ssize_t n) {
    if (memchr(t, '@', (size_t)n) != NULL) add_emails(k, t, n);
    add_words(k, t, n);
}

static void cut_digits(const cutter *k, const unsigned char *t, Py_ssize_t n) {
    unsigned char *d = k->scratch;
    Py_ssize_t m = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (t[i] >= '0' && t[i] <= '9') d[m++] = t[i];
    add(k, d, m, SEED_VALUE);
}

/* JSON string values (not keys) as written, as leaks_items.json_values finds them, each an item
 * with its addresses and words. */
static void cut_json(const cutter *k, const unsigned char *t, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        if (t[i] != '"') {
            i++;
            continue;
        }
        Py_ssize_t j = i + 1;
        int closed = 0;
        while (j < n) {
            if (t[j] == '"') {
                closed = 1;
                break;
            }
            if (t[j] == '\\') {
                if (j + 1 >= n || t[j + 1] == '\n') break;
                j += 2;
            } else {
                j++;
            }
        }
        if (!closed) {
            i++;
            continue;
        }
        Py_ssize_t q = j + 1;
        while (q < n && (t[q] == ' ' || (t[q] >= '\t' && t[q] <= '\r'))) q++;
        if (q < n && t[q] == ':') { /* a key */
            i = q + 1;
            continue;
        }
        add(k, t + i + 1, j - i - 1, SEED_VALUE);
        cut_text(k, t + i + 1, j - i - 1);
        i = j + 1;
    }
}

/* Every item of one value (lower-cased into `t` by the caller). */
static void cut(const cutter *k, int mode, const unsigned char *t, Py_ssize_t n) {
    if (mode != MODE_JSON) add(k, t, n, SEED_VALUE);
    switch (mode) {
    case MODE_DIGITS:
        cut_digits(k, t, n);
        break;
    case MODE_TEXT:
        cut_text(k, t, n);
        break;
    case MODE_JSON:
        cut_json(k, t, n);
        break;
    case MODE_ALL:
        cut_digits(k, t, n);
        cut_text(k, t, n);
        break;
    default:
        break;
    }
}

/* --- the fingerprinter ------------------------------------------------------------------------ */

struct fingerprinter {
    bloom f;
    batch b;
    cutter k;
    unsigned char *lower; /* room for the longest value */
};

int ds_fp_columns(PyObject *columns, PyObject **wanted, int **modes) {
    Py_ssize_t nc = PyTuple_GET_SIZE(columns);
    *wanted = PyTuple_New(nc);
    *modes = PyMem_Malloc(sizeof(int) * (size_t)(nc ? nc : 1));
    if (*wanted == NULL || *modes == NULL) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t c = 0; c < nc; c++) {
        PyObject *pair = PyTuple_GET_ITEM(columns, c);
        long mode;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            ((mode = PyLong_AsLong(PyTuple_GET_ITEM(pair, 1))) == -1 && PyErr_Occurred())) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "columns are (index, mode) pairs");
            goto fail;
        }
        if (mode < 0 || mode >= MODE_COUNT) {
            PyErr_Format(PyExc_ValueError, "unknown mode %ld", mode);
            goto fail;
        }
        (*modes)[c] = (int)mode;
        PyTuple_SET_ITEM(*wanted, c, Py_NewRef(PyTuple_GET_ITEM(pair, 0)));
    }
    return 0;
fail:
    Py_CLEAR(*wanted);
    PyMem_Free(*modes);
    *modes = NULL;
    return -1;
}

fingerprinter *ds_fp_new(Py_buffer *buf, Py_ssize_t room, Py_ssize_t min) {
    fingerprinter *fp = PyMem_Calloc(1, sizeof(fingerprinter));
    if (fp == NULL) return (fingerprinter *)PyErr_NoMemory();
    if (bloom_of(buf, &fp->f) < 0) {
        PyMem_Free(fp);
        return NULL;
    }
    if (batch_init(&fp->b, &fp->f) < 0) {
        PyMem_Free(fp);
        return NULL;
    }
    size_t n = (size_t)(room > 0 ? room : 1);
    fp->lower = PyMem_Malloc(n);
    fp->k.scratch = PyMem_Malloc(n);
    if (fp->lower == NULL || fp->k.scratch == NULL) {
        PyMem_Free(fp->lower);
        PyMem_Free(fp->k.scratch);
        batch_free(&fp->b);
        PyMem_Free(fp);
        return (fingerprinter *)PyErr_NoMemory();
    }
    fp->k.b = &fp->b;
    fp->k.min = min;
    return fp;
}

void ds_fp_value(fingerprinter *fp, int mode, const char *value, Py_ssize_t n) {
    const unsigned char *v = (const unsigned char *)value;
    for (Py_ssize_t i = 0; i < n; i++) fp->lower[i] = low(v[i]);
    cut(&fp->k, mode, fp->lower, n);
}

void ds_fp_done(fingerprinter *fp) {
    flush(&fp->b);
    batch_free(&fp->b);
    PyMem_Free(fp->lower);
    PyMem_Free(fp->k.scratch);
    PyMem_Free(fp);
}

/* --- the functions ---------------------------------------------------------------------------- */

PyDoc_STRVAR(bloom_add_block_doc,
"bloom_add_block(bloom, block, ncols, columns, min_length, /)\n--\n\n"
"Add every item of the values of `columns` (a tuple of (index, mode) pairs, indexes ascending;\n"
"modes 0 value, 1 digits, 2 text, 3 json, 4 all) of every row of `block` to the filter `bloom`\n"
"(a writable buffer), items shorter than `min_length` bytes left out. Raises ValueError(row,\n"
"fields) for a row without `ncols` fields.");

static PyObject *bloom_add_block(PyObject *self, PyObject *args) {
    Py_buffer fbuf;
    walk w;
    PyObject *columns, *wanted;
    Py_ssize_t min;
    int *modes;
    if (!PyArg_ParseTuple(args, "w*y*nO!n:bloom_add_block", &fbuf, &w.block, &w.ncols, &PyTuple_Type, &columns,
                          &min))
        return NULL;
    if (ds_fp_columns(columns, &wanted, &modes) < 0) {
        PyBuffer_Release(&w.block);
        PyBuffer_Release(&fbuf);
        return NULL;
    }
    int failed = ds_walk_begin(&w, wanted) < 0;
    Py_DECREF(wanted);
    fingerprinter *fp = NULL;
    if (!failed && (fp = ds_fp_new(&fbuf, w.block.len, min)) == NULL) {
        ds_walk_end(&w);
        failed = 1;
    }
    if (!failed) {
        const char *p = w.block.buf;
        for (Py_ssize_t r = 0; r < w.rows && !failed; r++) {
            if (ds_walk_row(&w, &p, r) < 0) failed = 1;
            for (Py_ssize_t c = 0; c < w.nw && !failed; c++) ds_fp_value(fp, modes[c], w.found[c].start, w.found[c].len);
        }
        ds_fp_done(fp);
        ds_walk_end(&w);
    }
    PyMem_Free(modes);
    PyBuffer_Release(&fbuf);
    if (failed) return NULL;
    Py_RETURN_NONE;
}

/* The hash of one item of a list: a leading WORD_MARK makes it a word. 0, or -1 (error set). */
static int hash_of(PyObject *item, Py_ssize_t i, uint64_t *h, Py_ssize_t *n) {
    if (!PyBytes_Check(item)) {
        PyErr_Format(PyExc_TypeError, "item %zd is %.100s, not bytes", i, Py_TYPE(item)->tp_name);
        return -1;
    }
    const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(item);
    *n = PyBytes_GET_SIZE(item);
    if (*n > 0 && s[0] == WORD_MARK) *h = item_hash(s + 1, --*n, SEED_WORD);
    else *h = item_hash(s, *n, SEED_VALUE);
    return 0;
}

PyDoc_STRVAR(bloom_add_doc,
"bloom_add(bloom, items, min_length, /)\n--\n\n"
"Add the bytes `items` (lower-cased; a leading 0x1f marks a word) to the filter, those shorter\n"
"than `min_length` bytes (the mark not counted) left out.");

static PyObject *bloom_add(PyObject *self, PyObject *args) {
    Py_buffer fbuf;
    PyObject *items;
    Py_ssize_t min;
    if (!PyArg_ParseTuple(args, "w*O!n:bloom_add", &fbuf, &PyList_Type, &items, &min)) return NULL;
    bloom f;
    batch b;
    if (bloom_of(&fbuf, &f) < 0 || batch_init(&b, &f) < 0) {
        PyBuffer_Release(&fbuf);
        return NULL;
    }
    int failed = 0;
    for (Py_ssize_t i = 0; !failed && i < PyList_GET_SIZE(items); i++) {
        uint64_t h;
        Py_ssize_t n;
        if (hash_of(PyList_GET_ITEM(items, i), i, &h, &n) < 0) failed = 1;
        else if (n >= min) push(&b, h);
    }
    if (!failed) flush(&b);
    batch_free(&b);
    PyBuffer_Release(&fbuf);
    if (failed) return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(bloom_find_doc,
"bloom_find(bloom, items, /)\n--\n\n"
"The indexes of the `items` (as for bloom_add) that the filter may hold: every item added, and\n"
"by chance a few others (the filter's false positives).");

static PyObject *bloom_find(PyObject *self, PyObject *args) {
    Py_buffer fbuf;
    PyObject *items;
    if (!PyArg_ParseTuple(args, "y*O!:bloom_find", &fbuf, &PyList_Type, &items)) return NULL;
    bloom f;
    PyObject *out = bloom_of(&fbuf, &f) < 0 ? NULL : PyList_New(0);
    for (Py_ssize_t i = 0; out != NULL && i < PyList_GET_SIZE(items); i++) {
        uint64_t h;
        Py_ssize_t n;
        if (hash_of(PyList_GET_ITEM(items, i), i, &h, &n) < 0) {
            Py_CLEAR(out);
        } else if (bloom_has(&f, h)) {
            PyObject *index = PyLong_FromSsize_t(i);
            if (index == NULL || PyList_Append(out, index) < 0) Py_CLEAR(out);
            Py_XDECREF(index);
        }
    }
    PyBuffer_Release(&fbuf);
    return out;
}


PyMethodDef ds_bloom_methods[] = {
    {"bloom_add_block", bloom_add_block, METH_VARARGS, bloom_add_block_doc},
    {"bloom_add", bloom_add, METH_VARARGS, bloom_add_doc},
    {"bloom_find", bloom_find, METH_VARARGS, bloom_find_doc},
    {NULL, NULL, 0, NULL},
};
