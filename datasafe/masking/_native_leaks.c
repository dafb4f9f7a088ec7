/*
 * The leak audit's per-value work (part of datasafe.masking._native; see _native.c and
 * datasafe/masking/fingerprints.py, which has a Python twin of each function):
 *
 *   distinct(block, ncols, wanted)                    the distinct fields of each wanted column
 *   bloom_add_block(bloom, block, ncols, columns, min) every item of the given columns' values into a filter
 *   bloom_add(bloom, items, min)                       items (a leading 0x1f marks a word) into a filter
 *   bloom_find(bloom, items)                           the indexes of the items the filter may hold
 *
 * The filter is a blocked Bloom filter: a writable, 64-byte aligned buffer of 64-byte blocks; an
 * item sets 16 bits in one block (two in each of its eight 64-bit words), so that adding or
 * finding it touches one cache line. Items are hashed a batch at a time and their lines fetched side by
 * side. Worker processes share one filter (an anonymous shared mapping): bits are set with an
 * atomic OR. Items are cut from the lower-cased values exactly as
 * datasafe.masking.leaks_items.original_items cuts them, and a few more (see cut_text): the
 * filter may hold more than the items, never less.
 */
#include "_native.h"

#include <stdint.h>
#include <string.h>

#define SEED_VALUE 0x76616c7565ULL /* "value" */
#define SEED_WORD 0x776f7264ULL    /* "word" */
#define WORD_MARK 0x1f

enum { MODE_VALUE, MODE_DIGITS, MODE_TEXT, MODE_JSON, MODE_ALL, MODE_COUNT };

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline unsigned char low(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c; }

static inline uint64_t load_le(const unsigned char *s, Py_ssize_t n) {
    uint64_t v = 0;
    for (Py_ssize_t i = n - 1; i >= 0; i--) v = (v << 8) | s[i];
    return v;
}

/* The hash of an item (lower-cased by the caller), seeded: 8 bytes at a time, then mixed. */
static uint64_t item_hash(const unsigned char *s, Py_ssize_t n, uint64_t seed) {
    uint64_t h = 0xcbf29ce484222325ULL ^ seed ^ ((uint64_t)n * 0xff51afd7ed558ccdULL);
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, s + i, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        v = __builtin_bswap64(v);
#endif
        h = (h ^ v) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    if (i < n) {
        h = (h ^ load_le(s + i, n - i)) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    return mix64(h);
}

typedef struct {
    uint64_t *words;
    uint64_t blocks; /* 64-byte blocks: eight 64-bit words, one cache line */
} bloom;

static inline uint64_t block_of(const bloom *f, uint64_t h) {
    return (uint64_t)(((unsigned __int128)h * f->blocks) >> 64);
}

/* An item's block and the two bits it sets in each of the block's eight words. */
static inline uint64_t *probe(const bloom *f, uint64_t h, uint64_t masks[8]) {
    uint64_t g[2] = {mix64(h ^ 0x9e3779b97f4a7c15ULL), mix64(h + 0x632be59bd9b4e019ULL)};
    for (int w = 0; w < 8; w++) {
        uint64_t src = g[w >> 2];
        int shift = (w & 3) * 12;
        masks[w] = (1ULL << ((src >> shift) & 63)) | (1ULL << ((src >> (shift + 6)) & 63));
    }
    return f->words + block_of(f, h) * 8;
}

static inline void bloom_set(const bloom *f, uint64_t h) {
    uint64_t masks[8];
    uint64_t *blk = probe(f, h, masks);
    for (int w = 0; w < 8; w++)
        if ((__atomic_load_n(&blk[w], __ATOMIC_RELAXED) & masks[w]) != masks[w])
            __atomic_fetch_or(&blk[w], masks[w], __ATOMIC_RELAXED);
}

static int bloom_has(const bloom *f, uint64_t h) {
    uint64_t masks[8];
    uint64_t *blk = probe(f, h, masks);
    for (int w = 0; w < 8; w++)
        if ((__atomic_load_n(&blk[w], __ATOMIC_RELAXED) & masks[w]) != masks[w]) return 0;
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

/* Hashes waiting to be set, a batch at a time: their cache lines are fetched side by side. A
 * hash set shortly before (a repeated name, city, word) is not set again: `recent` remembers the
 * last one of each of its slots. */
#define BATCH 32
#define RECENT 4096
typedef struct {
    const bloom *f;
    uint64_t hashes[BATCH];
    int n;
    uint64_t *recent;
} batch;

static void flush(batch *b) {
    for (int i = 0; i < b->n; i++)
        __builtin_prefetch(b->f->words + block_of(b->f, b->hashes[i]) * 8, 1);
    for (int i = 0; i < b->n; i++) bloom_set(b->f, b->hashes[i]);
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
    unsigned char *u = k->scratch;
    Py_ssize_t m = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (t[i] == '\\' && i + 1 < n && (t[i + 1] == 'n' || t[i + 1] == 't' || t[i + 1] == 'r')) {
            u[m++] = ' ';
            i++;
        } else {
            u[m++] = t[i];
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
    PyObject *columns;
    Py_ssize_t min;
    if (!PyArg_ParseTuple(args, "w*y*nO!n:bloom_add_block", &fbuf, &w.block, &w.ncols, &PyTuple_Type, &columns,
                          &min))
        return NULL;
    bloom f;
    Py_ssize_t nc = PyTuple_GET_SIZE(columns);
    PyObject *wanted = PyTuple_New(nc);
    int *modes = PyMem_Malloc(sizeof(int) * (size_t)(nc ? nc : 1));
    int bad = bloom_of(&fbuf, &f) < 0 || wanted == NULL || modes == NULL;
    if (modes == NULL && !PyErr_Occurred()) PyErr_NoMemory();
    for (Py_ssize_t c = 0; !bad && c < nc; c++) {
        PyObject *pair = PyTuple_GET_ITEM(columns, c);
        long mode;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            ((mode = PyLong_AsLong(PyTuple_GET_ITEM(pair, 1))) == -1 && PyErr_Occurred())) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "columns are (index, mode) pairs");
            bad = 1;
            break;
        }
        if (mode < 0 || mode >= MODE_COUNT) {
            PyErr_Format(PyExc_ValueError, "unknown mode %ld", mode);
            bad = 1;
            break;
        }
        modes[c] = (int)mode;
        PyTuple_SET_ITEM(wanted, c, Py_NewRef(PyTuple_GET_ITEM(pair, 0)));
    }
    if (bad) {
        Py_XDECREF(wanted);
        PyMem_Free(modes);
        PyBuffer_Release(&w.block);
        PyBuffer_Release(&fbuf);
        return NULL;
    }
    int failed = ds_walk_begin(&w, wanted) < 0;
    Py_DECREF(wanted);
    unsigned char *scratch = NULL, *lower = NULL;
    uint64_t *recent = NULL;
    if (!failed) {
        size_t room = (size_t)(w.block.len ? w.block.len : 1);
        scratch = PyMem_Malloc(room);
        lower = PyMem_Malloc(room);
        recent = PyMem_Calloc(RECENT, sizeof(uint64_t));
        if (scratch == NULL || lower == NULL || recent == NULL) {
            PyErr_NoMemory();
            ds_walk_end(&w);
            failed = 1;
        }
    }
    if (!failed) {
        batch b = {&f, {0}, 0, recent};
        cutter k = {&b, min, scratch};
        const char *p = w.block.buf;
        for (Py_ssize_t r = 0; r < w.rows; r++) {
            if (ds_walk_row(&w, &p, r) < 0) {
                failed = 1;
                break;
            }
            for (Py_ssize_t c = 0; c < w.nw; c++) {
                const unsigned char *v = (const unsigned char *)w.found[c].start;
                Py_ssize_t n = w.found[c].len;
                for (Py_ssize_t i = 0; i < n; i++) lower[i] = low(v[i]);
                cut(&k, modes[c], lower, n);
            }
        }
        flush(&b);
        ds_walk_end(&w);
    }
    PyMem_Free(scratch);
    PyMem_Free(lower);
    PyMem_Free(recent);
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
    uint64_t *recent = PyMem_Calloc(RECENT, sizeof(uint64_t));
    int failed = recent == NULL || bloom_of(&fbuf, &f) < 0;
    if (recent == NULL) PyErr_NoMemory();
    batch b = {&f, {0}, 0, recent};
    for (Py_ssize_t i = 0; !failed && i < PyList_GET_SIZE(items); i++) {
        uint64_t h;
        Py_ssize_t n;
        if (hash_of(PyList_GET_ITEM(items, i), i, &h, &n) < 0) failed = 1;
        else if (n >= min) push(&b, h);
    }
    if (!failed) flush(&b);
    PyMem_Free(recent);
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

/* --- distinct fields ------------------------------------------------------------------------- */

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

static PyObject *distinct(PyObject *self, PyObject *args) {
    walk w;
    PyObject *wanted, *seen = NULL;
    unsigned long long seed = 0;
    if (!PyArg_ParseTuple(args, "y*nO!|OK:distinct", &w.block, &w.ncols, &PyTuple_Type, &wanted, &seen, &seed))
        return NULL;
    if (ds_walk_begin(&w, wanted) < 0) return NULL;
    size_t cap = 16;
    while (cap < (size_t)w.rows * 2) cap <<= 1;
    /* per wanted column an open-addressing table of this block's spans (len -1: empty) */
    span *table = PyMem_Malloc(sizeof(span) * cap * (size_t)(w.nw ? w.nw : 1));
    seen_table *kept = PyMem_Malloc(sizeof(seen_table) * (size_t)(w.nw ? w.nw : 1));
    PyObject *out = NULL;
    if (table == NULL || kept == NULL) PyErr_NoMemory();
    else if (seen_of(seen, w.nw, kept) == 0) out = PyTuple_New(w.nw);
    else {
        PyMem_Free(kept);
        kept = NULL;
    }
    for (size_t i = 0; out != NULL && i < cap * (size_t)w.nw; i++) table[i].len = -1;
    for (Py_ssize_t c = 0; out != NULL && c < w.nw; c++) {
        PyObject *list = PyList_New(0);
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
            const span *v = &w.found[c];
            span *slots = table + (size_t)c * cap;
            uint64_t h = item_hash((const unsigned char *)v->start, v->len, 0);
            size_t at = (size_t)h & (cap - 1);
            while (slots[at].len >= 0 &&
                   !(slots[at].len == v->len && memcmp(slots[at].start, v->start, (size_t)v->len) == 0))
                at = (at + 1) & (cap - 1);
            if (slots[at].len >= 0) continue; /* in this block before */
            slots[at] = *v;
            if (insignificant((const unsigned char *)v->start, v->len)) continue;
            if (kept[c].slots != NULL &&
                seen_before(&kept[c], item_hash((const unsigned char *)v->start, v->len, (uint64_t)seed)))
                continue; /* in a block before */
            PyObject *item = PyBytes_FromStringAndSize(v->start, v->len);
            if (item == NULL || PyList_Append(PyTuple_GET_ITEM(out, c), item) < 0) Py_CLEAR(out);
            Py_XDECREF(item);
            if (out == NULL) break;
        }
    }
    if (kept != NULL)
        for (Py_ssize_t c = 0; c < w.nw; c++)
            if (kept[c].slots != NULL) PyBuffer_Release(&kept[c].buf);
    PyMem_Free(kept);
    PyMem_Free(table);
    ds_walk_end(&w);
    return out;
}

PyMethodDef ds_leak_methods[] = {
    {"distinct", distinct, METH_VARARGS, distinct_doc},
    {"bloom_add_block", bloom_add_block, METH_VARARGS, bloom_add_block_doc},
    {"bloom_add", bloom_add, METH_VARARGS, bloom_add_doc},
    {"bloom_find", bloom_find, METH_VARARGS, bloom_find_doc},
    {NULL, NULL, 0, NULL},
};
