/*
 * What the source files of datasafe.masking._native share: the keyed hash and views of lists of
 * bytes (defined in _native.c), and the functions of _native_fields.c and _native_rules.c.
 */
#ifndef DATASAFE_NATIVE_H
#define DATASAFE_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

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

/* The bytes objects of a list, as pointers and lengths (borrowed from the list). */
typedef struct {
    Py_ssize_t n;
    const char **ptr;
    Py_ssize_t *len;
} byte_views;

/* 0, or -1 with an error set (an item that is not bytes); views_free() after success. */
int ds_views_of(PyObject *list, byte_views *v);
void ds_views_free(byte_views *v);

/* the functions of _native_fields.c and _native_rules.c */
extern PyMethodDef ds_field_methods[];
extern PyMethodDef ds_rule_methods[];

#endif
