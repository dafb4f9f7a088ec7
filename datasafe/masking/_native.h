/*
 * What the source files of datasafe.masking._native share: the keyed hash and views of lists of
 * bytes (defined in _native.c), and the functions of _native_fields.c and _native_rules.c.
 */
#ifndef DATASAFE_NATIVE_H
#define DATASAFE_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

/* the SHA256_* functions: deprecated in OpenSSL 3 in favour of EVP, whose per-call overhead is
 * what this module exists to avoid */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

typedef struct {
    SHA256_CTX inner;
    SHA256_CTX outer;
} hmac_key;

/* HMAC-SHA256 (RFC 2104) with both padded keys hashed once */
void ds_hmac_init(hmac_key *hk, const unsigned char *key, Py_ssize_t len);
void ds_hmac_one(const hmac_key *hk, const char *msg, Py_ssize_t len, unsigned char out[32]);

/* Whether UTF-8 text is blank as Python's str.isspace() sees it (or empty): 0 not blank (or not
 * valid UTF-8), 1 blank, 2 blank and stored as it is (nothing but ASCII spaces, or empty). */
int ds_blank(const char *s, Py_ssize_t n);

/* The bytes objects of a list, as pointers and lengths, read from a copy of the list the views
 * own: the callers read the bytes with the GIL released, while another thread may empty the list
 * and free what it held. The copy holds the bytes (immutable) for as long as the views live. */
typedef struct {
    Py_ssize_t n;
    const char **ptr;
    Py_ssize_t *len;
    PyObject *items; /* the copy of the list: a new reference to every item */
} byte_views;

/* 0, or -1 with an error set (an item that is not bytes); ds_views_free() after success, with the
 * GIL held. */
int ds_views_of(PyObject *list, byte_views *v);
void ds_views_free(byte_views *v);

/* Where a field is in a block of tab-separated rows. */
typedef struct {
    const char *start;
    Py_ssize_t len;
} span;

/* A block and the wanted columns, checked, with room for one row's wanted fields (_native_fields.c). */
typedef struct {
    Py_buffer block;
    Py_ssize_t ncols, nw, rows;
    Py_ssize_t *idx;
    span *found;
    const char *base; /* the 64 bytes last looked at ... */
    uint64_t bits;    /* ... and where tabs and line ends are among them (bit i: base[i]) */
} walk;

/* Takes w->block (parsed by the caller) and checks it and `wanted`; 0, or -1 with an error set and
 * the block released. */
int ds_walk_begin(walk *w, PyObject *wanted);
/* The row starting at *p: its wanted fields into w->found; moves *p past it. -1 (error set:
 * ValueError(row, fields)) for a row of the wrong width. */
int ds_walk_row(walk *w, const char **p, Py_ssize_t r);
void ds_walk_end(walk *w);

/* the functions of _native_fields.c, _native_rules.c, _native_phone.c, _native_bloom.c and _native_distinct.c */
extern PyMethodDef ds_field_methods[];
extern PyMethodDef ds_rule_methods[];
extern PyMethodDef ds_phone_methods[];
extern PyMethodDef ds_bloom_methods[];
extern PyMethodDef ds_leak_methods[];

#endif
