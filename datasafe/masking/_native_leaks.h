/*
 * What the leak audit's C files share (_native_bloom.c: the fingerprint filter and the cutting of
 * values into items; _native_distinct.c: the distinct fields of scanned columns): the item hash,
 * the modes of cutting, and a fingerprinter that adds values' items to a filter.
 */
#ifndef DATASAFE_NATIVE_LEAKS_H
#define DATASAFE_NATIVE_LEAKS_H

#include "_native.h"

#include <stdint.h>
#include <string.h>

#define SEED_VALUE 0x76616c7565ULL /* "value" */
#define SEED_WORD 0x776f7264ULL    /* "word" */
#define WORD_MARK 0x1f

/* how a value is cut into items (fingerprints.MODES) */
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
static inline uint64_t item_hash(const unsigned char *s, Py_ssize_t n, uint64_t seed) {
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

/* Adds the items of values to a filter (_native_bloom.c). */
typedef struct fingerprinter fingerprinter;

/* The (index, mode) pairs of `columns`: a new tuple of the indexes into *wanted, the modes into
 * *modes (PyMem_Free it); 0, or -1 with an error set. */
int ds_fp_columns(PyObject *columns, PyObject **wanted, int **modes);
/* A fingerprinter into the filter `buf` (a writable, 64-byte aligned buffer) for values of at most
 * `room` bytes, items shorter than `min` left out; NULL with an error set. */
fingerprinter *ds_fp_new(Py_buffer *buf, Py_ssize_t room, Py_ssize_t min);
/* Every item of one stored value, cut as `mode` says. */
void ds_fp_value(fingerprinter *fp, int mode, const char *value, Py_ssize_t n);
/* Sets what is still waiting and frees the fingerprinter. */
void ds_fp_done(fingerprinter *fp);

#endif
