/*
 * What the rules of _native_rules.c and the phone program of _native_phone.c share: a rule (how
 * one value's first choice is made, from its HMAC and layout), the runner that applies it to a
 * list of values, the digit helpers, and keyed.Draws (_native_draws.c). Part of
 * datasafe.masking._native; see _native.c.
 */
#ifndef DATASAFE_NATIVE_RULES_H
#define DATASAFE_NATIVE_RULES_H

#include "_native.h"

#include <stdint.h>
#include <string.h>

typedef unsigned __int128 u128;

typedef struct rule rule;

/* Writes the first choice for the value v (n bytes, chars characters, HMAC d) into out, which has
 * room for n + r->extra bytes; returns its length, or -1 to leave the value to Python. */
typedef Py_ssize_t (*first_fn)(const rule *r, const unsigned char *v, Py_ssize_t n, Py_ssize_t chars,
                               const unsigned char d[32], char *out);

struct rule {
    first_fn first;
    Py_ssize_t extra, limit;
    int flag;                      /* ssn_us: keep_format; email: unique */
    const unsigned char *prefixes; /* card: the brand prefix's length for each leading 4 digits */
    byte_views firsts, lasts, domains;
    const char *text; /* lorem: the corpus, where a value starts reading at one of the starts */
    Py_ssize_t text_len, nstarts, max_length;
    const uint32_t *starts;
    struct phone_program *phone; /* phone: its tables, and what values needed of them */
};

/* Runs r over the values: (outputs, missing); see the top of _native_rules.c. */
PyObject *ds_rule_run(rule *r, Py_buffer *key, PyObject *values);

/* The value with its fields (digits, or ASCII letters and digits) replaced in order by chars;
 * -1 when it does not have `count` of them (the layouts of datasafe/masking/layout.py). */
Py_ssize_t ds_fill(const unsigned char *v, Py_ssize_t n, int alnum, const char *chars, Py_ssize_t count, char *out);

static const uint64_t POW10[20] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL,
    1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
    100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
    1000000000000000000ULL, 10000000000000000000ULL,
};

static inline uint64_t be64(const unsigned char *d) {
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x = (x << 8) | d[i];
    return x;
}

/* int.from_bytes(d[:16], "big") */
static inline u128 be128(const unsigned char *d) { return ((u128)be64(d) << 64) | be64(d + 8); }

/* x as `width` decimal digits, zero-padded (x < 10**width) */
static inline void put_digits(char *out, uint64_t x, int width) {
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + x % 10);
        x /= 10;
    }
}

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline int is_alnum(unsigned char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); }

/* keyed.Draws: the digest's bytes, then SHAKE-256 of the bytes so far when they run out
 * (_native_draws.c). Start one at {.len = 32, .pos = 0} with the digest in data. */
typedef struct {
    unsigned char data[64];
    int len, pos;
} draws;

/* keyed.Draws.below(n) */
uint64_t ds_draw_below(draws *dr, uint64_t n);
/* keyed.Draws.digits(count), count <= 19 */
void ds_draw_digits(draws *dr, int count, char *out);

#endif
