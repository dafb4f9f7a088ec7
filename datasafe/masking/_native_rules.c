/*
 * The first choices of transformers whose output is built from the value's HMAC and its layout,
 * a list of values at a time (part of datasafe.masking._native; see _native.c):
 *
 *   ssn_us(key, values, keep_format, limit)             national_id, country US
 *   card(key, values, prefixes, limit)                  credit_card, brand keep
 *   email(key, values, firsts, lasts, domains, unique, limit)   email, neither domain nor column kept
 *   lorem(key, values, text, starts, max_length, limit) text
 *   phone(key, values, tables, entry, limit)            phone, keep_format and keep_country_code
 *
 * Each returns (outputs, missing): outputs has, for every value, its masked text as bytes, or None
 * where the value is left to the transformer's Python code; missing lists those indexes. An output
 * is returned only when it is printable ASCII without a backslash (so it is stored as it is, in
 * every tab-separated encoding) and at most `limit` characters long (-1: no limit): the value
 * would otherwise need escaping or cutting, which Python does. Values that are not valid UTF-8 are
 * left to Python too, which reports them. A blank value (empty, or white space only) is its own
 * output: as it is when it is empty or spaces, else left to Python. The Python methods the results
 * must equal are named at each function; tests/test_masking_native_rules.py compares the two.
 *
 * phone returns a third list: the parts of its program (the phonenumbers library's metadata as
 * tables, built by datasafe/masking/phone_native.py) that values needed and did not find.
 */
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

static const uint64_t POW10[20] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL,
    1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
    100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
    1000000000000000000ULL, 10000000000000000000ULL,
};

static uint64_t be64(const unsigned char *d) {
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x = (x << 8) | d[i];
    return x;
}

/* int.from_bytes(d[:16], "big") */
static u128 be128(const unsigned char *d) { return ((u128)be64(d) << 64) | be64(d + 8); }

/* x as `width` decimal digits, zero-padded (x < 10**width) */
static void put_digits(char *out, uint64_t x, int width) {
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + x % 10);
        x /= 10;
    }
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_alnum(unsigned char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); }

/* The characters of valid UTF-8 (as str.decode() accepts it), or -1. */
static Py_ssize_t utf8_chars(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t chars = 0, i = 0;
    while (i < n) {
        unsigned char c = s[i];
        int more;
        unsigned char lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
        if (c < 0x80) {
            i++;
            chars++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
            if (c == 0xE0) lo = 0xA0; /* overlong */
            if (c == 0xED) hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            if (c == 0xF0) lo = 0x90; /* overlong */
            if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
        } else {
            return -1;
        }
        if (i + more >= n) return -1; /* cut short */
        if (s[i + 1] < lo || s[i + 1] > hi) return -1;
        for (int k = 2; k <= more; k++)
            if ((s[i + k] & 0xC0) != 0x80) return -1;
        i += more + 1;
        chars++;
    }
    return chars;
}

/* Printable ASCII without a backslash: stored as it is in every tab-separated encoding. */
static int plain_ascii(const char *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7E || c == '\\') return 0;
    }
    return 1;
}

/* The value with its fields (digits, or ASCII letters and digits) replaced in order by chars;
 * -1 when it does not have `count` of them (the layouts of datasafe/masking/layout.py). */
static Py_ssize_t fill(const unsigned char *v, Py_ssize_t n, int alnum, const char *chars, Py_ssize_t count,
                       char *out) {
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int field = alnum ? is_alnum(v[i]) : is_digit(v[i]);
        if (field) {
            if (k == count) return -1;
            out[i] = chars[k++];
        } else {
            out[i] = (char)v[i];
        }
    }
    return k == count ? n : -1;
}

/* NationalId.digested_first, country US (identifiers.py) */
static Py_ssize_t ssn_first(const rule *r, const unsigned char *v, Py_ssize_t n, Py_ssize_t chars,
                            const unsigned char d[32], char *out) {
    if (chars != n) return -1; /* digits of other scripts are digits too: Python */
    static const uint64_t SSNS = 898ULL * 99 * 9999;
    uint64_t x = (uint64_t)(be128(d) % SSNS);
    uint64_t area = 1 + x % 898;
    area += area >= 666;
    x /= 898;
    char c[9];
    put_digits(c, area, 3);
    put_digits(c + 3, 1 + x % 99, 2);
    put_digits(c + 5, 1 + x / 99, 4);
    if (r->flag) {
        Py_ssize_t kept = fill(v, n, 1, c, 9, out);
        if (kept >= 0) return kept;
    }
    memcpy(out, c, 3);
    out[3] = '-';
    memcpy(out + 4, c + 3, 2);
    out[6] = '-';
    memcpy(out + 7, c + 5, 4);
    return 11;
}

/* CreditCard.digested_first, brand keep (identifiers.py) */
static Py_ssize_t card_first(const rule *r, const unsigned char *v, Py_ssize_t n, Py_ssize_t chars,
                             const unsigned char d[32], char *out) {
    if (chars != n) return -1; /* digits of other scripts are digits too: Python */
    char number[19];
    Py_ssize_t fields = 0, digits = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (is_digit(v[i])) {
            if (digits < 19) number[digits] = (char)v[i];
            digits++;
        }
        fields += is_alnum(v[i]);
    }
    if (fields < 12 || fields > 19 || digits != fields) return -1; /* not a card number: Python */
    int lead = (number[0] - '0') * 1000 + (number[1] - '0') * 100 + (number[2] - '0') * 10 + (number[3] - '0');
    int prefix = r->prefixes[lead];
    int count = (int)fields - prefix - 1;
    put_digits(number + prefix, (uint64_t)(be128(d) % POW10[count]), count);
    /* Luhn: from the right of the body, every other digit (the first included) doubled */
    int total = 0;
    for (int i = 0; i < fields - 1; i++) {
        int digit = number[fields - 2 - i] - '0';
        total += i % 2 ? digit : (2 * digit) % 10 + (2 * digit) / 10;
    }
    number[fields - 1] = (char)('0' + (10 - total % 10) % 10);
    return fill(v, n, 1, number, fields, out);
}

static Py_ssize_t put(char *out, const char *s, Py_ssize_t n) {
    memcpy(out, s, (size_t)n);
    return n;
}

/* Email.digested_first, the inlined case (person.py) */
static Py_ssize_t email_first(const rule *r, const unsigned char *v, Py_ssize_t n, Py_ssize_t chars,
                              const unsigned char d[32], char *out) {
    static const char HEX[] = "0123456789abcdef";
    Py_ssize_t f = (Py_ssize_t)(be64(d) % (uint64_t)r->firsts.n);
    Py_ssize_t l = (Py_ssize_t)(be64(d + 12) % (uint64_t)r->lasts.n);
    Py_ssize_t o = 0, nf = r->firsts.len[f], nl = r->lasts.len[l];
    o += put(out + o, r->firsts.ptr[f], nf);
    if (nf && nl) out[o++] = '.';
    o += put(out + o, r->lasts.ptr[l], nl);
    if (!nf && !nl) o += put(out + o, "user", 4);
    if (r->flag) {
        out[o++] = '.';
        for (int i = 8; i < 11; i++) {
            out[o++] = HEX[d[i] >> 4];
            out[o++] = HEX[d[i] & 15];
        }
    }
    out[o++] = '@';
    Py_ssize_t dom = d[11] % r->domains.n;
    return o + put(out + o, r->domains.ptr[dom], r->domains.len[dom]);
}

/* Text.digested_first (text.py): a keyed slice of the corpus, as long as the value */
static Py_ssize_t lorem_first(const rule *r, const unsigned char *v, Py_ssize_t n, Py_ssize_t chars,
                              const unsigned char d[32], char *out) {
    Py_ssize_t length = r->max_length >= 0 && chars > r->max_length ? r->max_length : chars;
    if (length == 0) return 0;
    const char *text = r->text;
    Py_ssize_t start = r->starts[be64(d) % (uint64_t)r->nstarts];
    if (length <= 2) { /* the word's first letters, lower case, padded with "a" */
        const char *space = memchr(text + start, ' ', (size_t)(r->text_len - start));
        if (space == NULL) return -1;
        Py_ssize_t word = space - (text + start);
        while (word > 0 && text[start + word - 1] == '.') word--;
        for (Py_ssize_t i = 0; i < length; i++) {
            char c = i < word ? text[start + i] : 'a';
            out[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
        }
        return length;
    }
    Py_ssize_t piece = length - 1;
    for (Py_ssize_t i = 0, at = start; i < piece; at = 0) { /* read on from the text's start when it ends */
        Py_ssize_t n = r->text_len - at < piece - i ? r->text_len - at : piece - i;
        memcpy(out + i, text + at, (size_t)n);
        i += n;
    }
    while (piece > 0 && (out[piece - 1] == ' ' || out[piece - 1] == '.')) piece--;
    if (piece > 0 && out[0] >= 'a' && out[0] <= 'z') out[0] = (char)(out[0] - 32);
    memset(out + piece, 'a', (size_t)(length - 1 - piece));
    out[length - 1] = '.';
    return length;
}

/* Runs r over the values: (outputs, missing); see the top of this file. */
static PyObject *run(rule *r, Py_buffer *key, PyObject *values) {
    hmac_key hk;
    ds_hmac_init(&hk, key->buf, key->len);
    byte_views v;
    if (ds_views_of(values, &v) < 0) return NULL;
    size_t room = 1;
    for (Py_ssize_t i = 0; i < v.n; i++) room += (size_t)(v.len[i] + r->extra);
    char *arena = PyMem_Malloc(room);
    Py_ssize_t *lengths = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(v.n ? v.n : 1));
    PyObject *outs = NULL, *missing = NULL;
    if (arena == NULL || lengths == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    char *o = arena;
    unsigned char d[32];
    for (Py_ssize_t i = 0; i < v.n; i++) {
        const unsigned char *value = (const unsigned char *)v.ptr[i];
        Py_ssize_t chars = utf8_chars(value, v.len[i]), k = -1;
        int blank = chars >= 0 ? ds_blank(v.ptr[i], v.len[i]) : 0;
        if (blank) { /* no personal data: the value stays as it is */
            if (blank == 2) k = put(o, v.ptr[i], v.len[i]);
        } else if (chars >= 0) {
            ds_hmac_one(&hk, v.ptr[i], v.len[i], d);
            k = r->first(r, value, v.len[i], chars, d, o);
        }
        if (k >= 0 && ((r->limit >= 0 && k > r->limit) || !plain_ascii(o, k))) k = -1;
        lengths[i] = k;
        if (k > 0) o += k;
    }
    Py_END_ALLOW_THREADS
    outs = PyList_New(v.n);
    missing = PyList_New(0);
    const char *p = arena;
    for (Py_ssize_t i = 0; outs != NULL && missing != NULL && i < v.n; i++) {
        PyObject *item;
        if (lengths[i] < 0) {
            PyObject *index = PyLong_FromSsize_t(i);
            if (index == NULL || PyList_Append(missing, index) < 0) {
                Py_XDECREF(index);
                Py_CLEAR(outs);
                break;
            }
            Py_DECREF(index);
            item = Py_NewRef(Py_None);
        } else {
            item = PyBytes_FromStringAndSize(p, lengths[i]);
            if (item == NULL) {
                Py_CLEAR(outs);
                break;
            }
            p += lengths[i];
        }
        PyList_SET_ITEM(outs, i, item);
    }
done:
    PyMem_Free(arena);
    PyMem_Free(lengths);
    ds_views_free(&v);
    PyObject *result = outs != NULL && missing != NULL ? PyTuple_Pack(2, outs, missing) : NULL;
    Py_XDECREF(outs);
    Py_XDECREF(missing);
    return result;
}

PyDoc_STRVAR(ssn_us_doc,
"ssn_us(key, values, keep_format, limit, /)\n--\n\n"
"national_id (country US) of every bytes value: (outputs, missing indexes).");

/* ssn_us(): (key, values, flag, limit) */
static PyObject *run_flagged(PyObject *args, const char *format, first_fn first, Py_ssize_t extra) {
    Py_buffer key;
    PyObject *values;
    rule r = {.first = first, .extra = extra};
    if (!PyArg_ParseTuple(args, format, &key, &PyList_Type, &values, &r.flag, &r.limit)) return NULL;
    PyObject *out = run(&r, &key, values);
    PyBuffer_Release(&key);
    return out;
}

static PyObject *ssn_us(PyObject *self, PyObject *args) { return run_flagged(args, "y*O!pn:ssn_us", ssn_first, 11); }

PyDoc_STRVAR(card_doc,
"card(key, values, prefixes, limit, /)\n--\n\n"
"credit_card (brand keep) of every bytes value: (outputs, missing indexes). prefixes[n] is the\n"
"length (1-4) of the brand prefix of a number whose first four digits are n.");

static PyObject *card(PyObject *self, PyObject *args) {
    Py_buffer key, prefixes;
    PyObject *values, *out = NULL;
    rule r = {.first = card_first};
    if (!PyArg_ParseTuple(args, "y*O!y*n:card", &key, &PyList_Type, &values, &prefixes, &r.limit)) return NULL;
    r.prefixes = prefixes.buf;
    int ok = prefixes.len == 10000;
    for (Py_ssize_t i = 0; ok && i < prefixes.len; i++) ok = r.prefixes[i] >= 1 && r.prefixes[i] <= 4;
    if (!ok) PyErr_SetString(PyExc_ValueError, "prefixes: 10000 lengths from 1 to 4");
    else out = run(&r, &key, values);
    PyBuffer_Release(&prefixes);
    PyBuffer_Release(&key);
    return out;
}

static Py_ssize_t longest(const byte_views *v) {
    Py_ssize_t most = 0;
    for (Py_ssize_t i = 0; i < v->n; i++) most = v->len[i] > most ? v->len[i] : most;
    return most;
}

PyDoc_STRVAR(email_doc,
"email(key, values, firsts, lasts, domains, unique, limit, /)\n--\n\n"
"email (first.last[.suffix]@domain from the lists of bytes) of every bytes value: (outputs,\n"
"missing indexes).");

static PyObject *email(PyObject *self, PyObject *args) {
    Py_buffer key;
    PyObject *values, *lists[3], *out = NULL;
    rule r = {.first = email_first};
    byte_views *views[3] = {&r.firsts, &r.lasts, &r.domains};
    if (!PyArg_ParseTuple(args, "y*O!O!O!O!pn:email", &key, &PyList_Type, &values, &PyList_Type, &lists[0],
                          &PyList_Type, &lists[1], &PyList_Type, &lists[2], &r.flag, &r.limit))
        return NULL;
    int made = 0;
    while (made < 3 && ds_views_of(lists[made], views[made]) == 0) made++;
    if (made == 3) {
        if (r.firsts.n == 0 || r.lasts.n == 0 || r.domains.n == 0) {
            PyErr_SetString(PyExc_ValueError, "empty list of names or domains");
        } else {
            r.extra = longest(&r.firsts) + longest(&r.lasts) + longest(&r.domains) + 16;
            out = run(&r, &key, values);
        }
    }
    while (made > 0) ds_views_free(views[--made]);
    PyBuffer_Release(&key);
    return out;
}

PyDoc_STRVAR(lorem_doc,
"lorem(key, values, text, starts, max_length, limit, /)\n--\n\n"
"text of every bytes value: (outputs, missing indexes). text is the ASCII corpus ending with a\n"
"space; starts (uint32 offsets into it) where a value may start reading; max_length -1 for none.");

static PyObject *lorem(PyObject *self, PyObject *args) {
    Py_buffer key, text, starts;
    PyObject *values, *out = NULL;
    rule r = {.first = lorem_first, .extra = 1};
    if (!PyArg_ParseTuple(args, "y*O!y*y*nn:lorem", &key, &PyList_Type, &values, &text, &starts, &r.max_length,
                          &r.limit))
        return NULL;
    r.text = text.buf;
    r.text_len = text.len;
    r.starts = starts.buf;
    r.nstarts = starts.len / 4;
    int ok = starts.len % 4 == 0 && r.nstarts > 0 && text.len > 0 && plain_ascii(text.buf, text.len);
    for (Py_ssize_t i = 0; ok && i < r.nstarts; i++) ok = r.starts[i] < (uint32_t)text.len;
    if (!ok) PyErr_SetString(PyExc_ValueError, "lorem: an ASCII text and uint32 starts within it");
    else out = run(&r, &key, values);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&text);
    PyBuffer_Release(&key);
    return out;
}

/* --- phone ------------------------------------------------------------------------------------------
 *
 * Phone.digested_first with keep_format and keep_country_code (transformers/phone.py), for values
 * of spaces, an optional "+", then digits and the separators " -.()/": how phonenumbers reads such
 * a value (phone_fast.read), which national number it gets (phone_numbers.masked_digits), in the
 * same layout. Everything the phonenumbers library knows comes in the program, an int32 array
 * built by phone_native.Program (its documentation describes the records); its regular
 * expressions come as automata over digits (digit_dfa.py). A number the reference reads as one
 * of no region gets Phone._keyed_digits here too. A value the program cannot settle (another
 * layout, a country or a sample of valid numbers not in it yet, a national prefix rule with a
 * transformation) is left to Python, and what the program lacked is reported.
 */

enum { CC_TABLE = 2, CC_COUNT = 1000 };         /* P[CC_TABLE + code]: the country record of a code */
enum { CC_NONE = -2, CC_UNLOADED = -1, CC_PYTHON = -3 };
enum { NONE = -1, UNREAD = -2 };               /* a table that is not there; one the automata cannot read */
/* entry flags: where the national (international) prefix matches, the automaton cannot tell where
 * the match ends; the national prefix rule transforms the number */
enum { F_PREFIX_AMBIGUOUS = 1, F_TRANSFORM = 2, F_IDD_AMBIGUOUS = 4 };
enum { TOO_SHORT, LOCAL_ONLY, INVALID_LENGTH, TOO_LONG, IS_POSSIBLE }; /* phone_fast.length_result */
enum { MAX_NEEDS = 256, MAX_NSN = 17 };

typedef struct phone_program {
    const int32_t *p;
    const unsigned char *samples;
    int32_t entry;                 /* the rule's region (numbers without a country code), or -1 */
    long long needs[MAX_NEEDS];    /* a country code, or -(entry * 32 + length) - 1 for a sample */
    int nneeds;
} phone_program;

static void need(phone_program *pp, long long what) {
    for (int i = 0; i < pp->nneeds; i++)
        if (pp->needs[i] == what) return;
    if (pp->nneeds < MAX_NEEDS) pp->needs[pp->nneeds++] = what;
}

/* 1 when the automaton at f matches all of s, else 0 */
static int dfa_full(const int32_t *P, int32_t f, const char *s, int n) {
    const int32_t states = P[f], *next = P + f + 1, *accept = next + 10 * states;
    int32_t state = 0;
    for (int i = 0; i < n; i++) {
        state = next[10 * state + (s[i] - '0')];
        if (state < 0) return 0;
    }
    return accept[state];
}

/* the length of the shortest prefix of s that the automaton at f matches, or -1 */
static int dfa_prefix(const int32_t *P, int32_t f, const char *s, int n) {
    const int32_t states = P[f], *next = P + f + 1, *accept = next + 10 * states;
    if (accept[0]) return 0;
    int32_t state = 0;
    for (int i = 0; i < n; i++) {
        state = next[10 * state + (s[i] - '0')];
        if (state < 0) return -1;
        if (accept[state]) return i + 1;
    }
    return -1;
}

/* Entry records: e+0 code, +1 general automaton, +2 lengths (bit mask), +3 first length (-1: none),
 * +4 last length, +5 local-only lengths, +6 national prefix automaton, +7 international prefix
 * automaton, +8 flags, +9 sample table, +10 kinds, then (automaton, lengths or -1) per kind. */
static int has_bit(int32_t mask, int bit) { return bit < 32 && ((uint32_t)mask >> bit) & 1u; }

/* phonenumbers' _match_national_number(s, general_desc): 1, 0, or -1 to leave it to Python */
static int general(const int32_t *P, int32_t e, const char *s, int n) {
    int32_t f = P[e + 1];
    return f == NONE ? 0 : f == UNREAD ? -1 : dfa_full(P, f, s, n);
}

/* phone_fast.length_result, or -1 */
static int length_result(const int32_t *P, int32_t e, int n) {
    if (has_bit(P[e + 5], n)) return LOCAL_ONLY;
    int32_t first = P[e + 3];
    if (first < 0) return -1;
    if (first == n) return IS_POSSIBLE;
    if (first > n) return TOO_SHORT;
    if (P[e + 4] < n) return TOO_LONG;
    return has_bit(P[e + 2], n) ? IS_POSSIBLE : INVALID_LENGTH;
}

/* How many leading digits phone_fast.strip_national_prefix strips from s (0: none), or -1 */
static int strip_prefix(const int32_t *P, int32_t e, const char *s, int n) {
    int32_t f = P[e + 6];
    if (n == 0 || f == NONE) return 0;
    if (f == UNREAD) return -1;
    int m = dfa_prefix(P, f, s, n);
    if (m < 0) return 0;
    if (P[e + 8] & (F_PREFIX_AMBIGUOUS | F_TRANSFORM)) return -1;
    int viable = general(P, e, s, n), rest = general(P, e, s + m, n - m);
    if (viable < 0 || rest < 0) return -1;
    return viable && !rest ? 0 : m;
}

/* whether phone_numbers.valid_pattern(code, region of e, n) is not None */
static int pattern_exists(const int32_t *P, int32_t e, int n) {
    if (e < 0 || P[e + 1] == NONE) return 0;
    if (P[e + 3] >= 0 && !has_bit(P[e + 2], n)) return 0;
    for (int32_t k = 0; k < P[e + 10]; k++) {
        int32_t lengths = P[e + 12 + 2 * k];
        if (lengths == -1 || has_bit(lengths, n)) return 1;
    }
    return 0;
}

/* phone_numbers.valid_in: 1, 0, or -1 */
static int valid_in(const int32_t *P, int32_t e, const char *s, int n) {
    if (!pattern_exists(P, e, n)) return 0;
    int g = general(P, e, s, n);
    if (g <= 0) return g;
    for (int32_t k = 0; k < P[e + 10]; k++) {
        int32_t f = P[e + 11 + 2 * k], lengths = P[e + 12 + 2 * k];
        if (lengths != -1 && !has_bit(lengths, n)) continue;
        if (f == UNREAD) return -1;
        if (dfa_full(P, f, s, n)) return 1;
    }
    return 0;
}

/* Country records: c+0 code, +1 entry phonenumbers parses with, +2 regions, then (entry or -1,
 * leading digits automaton or NONE) per region. The index of phone_numbers.region_of(code, s) in
 * the regions, -1 for none, -2 to leave it to Python; valid_region (-1: none) is a region whose
 * valid_in(s) is known to hold. */
static int region_of(const int32_t *P, int32_t c, const char *s, int n, int valid_region) {
    int32_t regions = P[c + 2];
    if (regions == 1) return 0;
    for (int32_t i = 0; i < regions; i++) {
        int32_t leading = P[c + 4 + 2 * i];
        if (leading == UNREAD) return -2;
        if (leading != NONE) {
            if (dfa_prefix(P, leading, s, n) >= 0) return (int)i;
            continue;
        }
        if (i == valid_region) return (int)i;
        int valid = valid_in(P, P[c + 3 + 2 * i], s, n);
        if (valid < 0) return -2;
        if (valid) return (int)i;
    }
    return -1;
}

/* phone_numbers.is_valid(code, region i, s): 1, 0, or -1. region_of(code, s) is region i when no
 * region before it claims s and it does: by its leading digits, or by valid_in, which holds here. */
static int phone_valid(const int32_t *P, int32_t c, int i, const char *s, int n) {
    int valid = valid_in(P, P[c + 3 + 2 * i], s, n);
    if (valid <= 0 || P[c + 2] == 1) return valid;
    int found = region_of(P, c, s, n, i);
    return found == -2 ? -1 : found == i;
}

/* The width of the country code s starts with (phone_fast.split_country_code), or 0 */
static int split_code(const int32_t *P, const char *s, int n, int *code) {
    if (n == 0 || s[0] == '0') return 0;
    int x = 0;
    for (int w = 1; w <= 3 && w <= n; w++) {
        x = 10 * x + (s[w - 1] - '0');
        if (P[CC_TABLE + x] != CC_NONE) {
            *code = x;
            return w;
        }
    }
    return 0;
}

/* The keyed draws of keyed.Draws: SHAKE-256 of the bytes so far when they run out */
#define ROL64(x, n) (((x) << (n)) | ((x) >> (64 - (n))))

static void keccakf(uint64_t s[25]) {
    static const uint64_t rc[24] = {
        0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
        0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
        0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
        0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
        0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
        0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL};
    for (int round = 0; round < 24; round++) {
        uint64_t c0 = s[0] ^ s[5] ^ s[10] ^ s[15] ^ s[20], c1 = s[1] ^ s[6] ^ s[11] ^ s[16] ^ s[21],
                 c2 = s[2] ^ s[7] ^ s[12] ^ s[17] ^ s[22], c3 = s[3] ^ s[8] ^ s[13] ^ s[18] ^ s[23],
                 c4 = s[4] ^ s[9] ^ s[14] ^ s[19] ^ s[24];
        uint64_t d0 = c4 ^ ROL64(c1, 1), d1 = c0 ^ ROL64(c2, 1), d2 = c1 ^ ROL64(c3, 1), d3 = c2 ^ ROL64(c4, 1),
                 d4 = c3 ^ ROL64(c0, 1);
        uint64_t b[25]; /* theta, rho and pi: lane (x, y) moves to (y, 2x + 3y) */
        b[0] = s[0] ^ d0;
        b[10] = ROL64(s[1] ^ d1, 1);
        b[20] = ROL64(s[2] ^ d2, 62);
        b[5] = ROL64(s[3] ^ d3, 28);
        b[15] = ROL64(s[4] ^ d4, 27);
        b[16] = ROL64(s[5] ^ d0, 36);
        b[1] = ROL64(s[6] ^ d1, 44);
        b[11] = ROL64(s[7] ^ d2, 6);
        b[21] = ROL64(s[8] ^ d3, 55);
        b[6] = ROL64(s[9] ^ d4, 20);
        b[7] = ROL64(s[10] ^ d0, 3);
        b[17] = ROL64(s[11] ^ d1, 10);
        b[2] = ROL64(s[12] ^ d2, 43);
        b[12] = ROL64(s[13] ^ d3, 25);
        b[22] = ROL64(s[14] ^ d4, 39);
        b[23] = ROL64(s[15] ^ d0, 41);
        b[8] = ROL64(s[16] ^ d1, 45);
        b[18] = ROL64(s[17] ^ d2, 15);
        b[3] = ROL64(s[18] ^ d3, 21);
        b[13] = ROL64(s[19] ^ d4, 8);
        b[14] = ROL64(s[20] ^ d0, 18);
        b[24] = ROL64(s[21] ^ d1, 2);
        b[9] = ROL64(s[22] ^ d2, 61);
        b[19] = ROL64(s[23] ^ d3, 56);
        b[4] = ROL64(s[24] ^ d4, 14);
        for (int j = 0; j < 25; j += 5) { /* chi */
            s[j] = b[j] ^ (~b[j + 1] & b[j + 2]);
            s[j + 1] = b[j + 1] ^ (~b[j + 2] & b[j + 3]);
            s[j + 2] = b[j + 2] ^ (~b[j + 3] & b[j + 4]);
            s[j + 3] = b[j + 3] ^ (~b[j + 4] & b[j]);
            s[j + 4] = b[j + 4] ^ (~b[j] & b[j + 1]);
        }
        s[0] ^= rc[round]; /* iota */
    }
}

/* hashlib.shake_256(data[:n]).digest(64), n <= 64 */
static void shake256_64(const unsigned char *data, int n, unsigned char out[64]) {
    uint64_t st[25] = {0};
    unsigned char block[136] = {0}; /* the rate of SHAKE-256 */
    memcpy(block, data, (size_t)n);
    block[n] ^= 0x1F;
    block[135] ^= 0x80;
    for (int i = 0; i < 17; i++) {
        uint64_t lane = 0;
        for (int b = 7; b >= 0; b--) lane = (lane << 8) | block[8 * i + b];
        st[i] ^= lane;
    }
    keccakf(st);
    for (int i = 0; i < 64; i++) out[i] = (unsigned char)(st[i / 8] >> (8 * (i % 8)));
}

typedef struct {
    unsigned char data[64];
    int len, pos;
} draws;

static const unsigned char *take(draws *dr, int width) {
    if (dr->pos + width > dr->len) { /* keyed.Draws.below: max(64, 4 * width) more bytes; width <= 16 */
        unsigned char more[64];
        shake256_64(dr->data, dr->len, more);
        memcpy(dr->data, more, 64);
        dr->len = 64;
        dr->pos = 0;
    }
    dr->pos += width;
    return dr->data + dr->pos - width;
}

static uint64_t draw_below(draws *dr, uint64_t n) { return be64(take(dr, 8)) % n; }

/* keyed.Draws.digits(count), count <= 19 */
static void draw_digits(draws *dr, int count, char *out) {
    if (count > 0) put_digits(out, (uint64_t)(be128(take(dr, 16)) % POW10[count]), count);
}

enum { PYTHON = -1, KEYED = -3 };

/* The masked digits of a number of nd digits: phone_fast.read, then phone_numbers.masked_digits,
 * written over num; 0, or KEYED where the reference reads no number of a region (then
 * Phone._keyed_digits), or PYTHON. */
static int phone_digits(phone_program *pp, const unsigned char d[32], int plus, char *num, int nd) {
    const int32_t *P = pp->p;
    /* the country code, and the national number num[start:] */
    int code = 0, start = 0, width;
    int32_t meta; /* the entry phonenumbers parses the number with */
    if (plus) {
        width = split_code(P, num, nd, &code);
        if (width == 0) return PYTHON; /* phonenumbers reads it again without the plus */
        start = width;
        meta = -2; /* the country's, below */
    } else {
        int32_t own = pp->entry;
        if (own < 0) return KEYED; /* no country code, and no region to read it in */
        int32_t idd = P[own + 7];
        if (idd == UNREAD) return PYTHON;
        int m = idd == NONE ? -1 : dfa_prefix(P, idd, num, nd);
        if (m >= 0 && (P[own + 8] & F_IDD_AMBIGUOUS)) return PYTHON;
        if (m >= 0 && !(m < nd && num[m] == '0')) { /* an international prefix, then a country code */
            if (nd - m <= 2) return KEYED;
            width = split_code(P, num + m, nd - m, &code);
            if (width == 0) return KEYED;
            start = m + width;
            meta = -2;
        } else {
            char text[12];
            int len = snprintf(text, sizeof text, "%d", (int)P[own]);
            code = P[own];
            meta = own;
            if (len > 0 && len <= nd && memcmp(num, text, (size_t)len) == 0) { /* the region's code, maybe */
                int s = strip_prefix(P, own, num + len, nd - len);
                if (s < 0) return PYTHON;
                int g = general(P, own, num, nd), h = general(P, own, num + len + s, nd - len - s);
                int t = length_result(P, own, nd);
                if (g < 0 || h < 0 || t < 0) return PYTHON;
                if ((!g && h) || t == TOO_LONG) {
                    start = len + s;
                    meta = -2;
                }
            }
        }
    }
    if (code <= 0 || code >= CC_COUNT) return PYTHON;
    int32_t c = P[CC_TABLE + code];
    if (c == CC_UNLOADED) need(pp, code);
    if (c < 0) return PYTHON;
    if (meta == -2) meta = P[c + 1];
    if (meta < 0) return PYTHON;
    int len = nd - start;
    if (len < 2) return KEYED;
    int s = strip_prefix(P, meta, num + start, len);
    if (s < 0) return PYTHON;
    if (s > 0) {
        int t = length_result(P, meta, len - s);
        if (t < 0) return PYTHON;
        if (t != TOO_SHORT && t != LOCAL_ONLY && t != INVALID_LENGTH) {
            start += s;
            len -= s;
        }
    }
    if (len < 2 || len > MAX_NSN || P[c + 2] == 0) return KEYED;
    int found = region_of(P, c, num + start, len, -1);
    if (found == -2) return PYTHON;
    if (found == -1) found = 0;
    /* the national number */
    int32_t e = P[c + 3 + 2 * found];
    if (!pattern_exists(P, e, len)) return KEYED; /* no valid number of this length */
    draws dr = {.len = 32, .pos = 0};
    memcpy(dr.data, d, 32);
    char *made = num + start;
    for (int k = 0; k < 2; k++) {
        draw_digits(&dr, len, made);
        int valid = phone_valid(P, c, found, made, len);
        if (valid) return valid < 0 ? PYTHON : 0;
    }
    int32_t table = P[e + 9], at = P[table + 2 * len], count = P[table + 2 * len + 1];
    if (count < 0) need(pp, -((long long)e * 32 + len) - 1);
    if (count < 0) return PYTHON;
    if (count == 0) return KEYED;
    const unsigned char *numbers = pp->samples + at;
    int starts[2] = {len / 2 < 3 ? len / 2 : 3, len / 2};
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < 8; k++) {
            memcpy(made, numbers + draw_below(&dr, (uint64_t)count) * (uint64_t)len, (size_t)starts[round]);
            draw_digits(&dr, len - starts[round], made + starts[round]);
            int valid = phone_valid(P, c, found, made, len);
            if (valid) return valid < 0 ? PYTHON : 0;
        }
    }
    memcpy(made, numbers + draw_below(&dr, (uint64_t)count) * (uint64_t)len, (size_t)len);
    return 0;
}

/* Phone._keyed_digits over num (keep_country_code): the up to three digits right after a leading
 * "+" kept, the next digit 0 where it was 0 and 1-9 elsewhere, then keyed digits */
static void keyed_digits(const unsigned char *v, Py_ssize_t n, Py_ssize_t at_plus, const unsigned char d[32],
                         char *num, int nd) {
    int keep = 0;
    while (at_plus >= 0 && keep < 3 && keep < nd && at_plus + 1 + keep < n && is_digit(v[at_plus + 1 + keep])) keep++;
    if (keep == nd) return;
    u128 drawn = be128(d);
    if (num[keep] != '0') num[keep] = (char)('1' + (int)(drawn % 9));
    int rest = nd - keep - 1;
    if (rest < 20) {
        put_digits(num + keep + 1, (uint64_t)(drawn / 9 % POW10[rest]), rest);
        return;
    }
    draws dr = {.len = 32, .pos = 0}; /* keyed.Draws(digest).digits(rest): 19 at a time */
    memcpy(dr.data, d, 32);
    for (char *o = num + keep + 1; rest > 0; o += 19, rest -= 19) draw_digits(&dr, rest < 19 ? rest : 19, o);
}

/* Phone.digested_first, keep_format and keep_country_code (transformers/phone.py) */
static Py_ssize_t phone_first(const rule *r, const unsigned char *v, Py_ssize_t n, Py_ssize_t chars,
                              const unsigned char d[32], char *out) {
    if (chars != n || n > 250) return -1; /* other scripts, and what phonenumbers does not read: Python */
    char num[256];
    int nd = 0;
    Py_ssize_t i = 0;
    while (i < n && v[i] == ' ') i++;
    Py_ssize_t at_plus = i < n && v[i] == '+' ? i : -1;
    for (i += at_plus >= 0; i < n; i++) {
        unsigned char c = v[i];
        if (is_digit(c))
            num[nd++] = (char)c;
        else if (!(c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '/'))
            return -1; /* another layout: phone_fast reads its plan */
    }
    if (nd < 4) return -1; /* a number of the locale */
    int done = phone_digits(r->phone, d, at_plus >= 0, num, nd);
    if (done == PYTHON) return -1;
    if (done == KEYED) {
        nd = 0; /* the digits as they were */
        for (i = 0; i < n; i++)
            if (is_digit(v[i])) num[nd++] = (char)v[i];
        keyed_digits(v, n, at_plus, d, num, nd);
    }
    return fill(v, n, 0, num, nd, out);
}

/* --- checked tables: every offset a value can reach lies in the program ------------------------------ */

static int dfa_ok(const int32_t *P, Py_ssize_t n, int32_t f) {
    if (f == NONE || f == UNREAD) return 1;
    if (f < CC_TABLE + CC_COUNT || f >= n || P[f] < 1 || P[f] > (n - f - 1) / 11) return 0;
    int32_t states = P[f];
    const int32_t *next = P + f + 1, *accept = next + 10 * states;
    for (int32_t k = 0; k < 10 * states; k++)
        if (next[k] < -1 || next[k] >= states) return 0;
    for (int32_t k = 0; k < states; k++)
        if (accept[k] != 0 && accept[k] != 1) return 0;
    return 1;
}

static int entry_ok(const int32_t *P, Py_ssize_t n, Py_ssize_t samples, int32_t e) {
    if (e == -1) return 1;
    if (e < CC_TABLE + CC_COUNT || e > n - 11 || P[e + 10] < 0 || P[e + 10] > (n - e - 11) / 2) return 0;
    if (!dfa_ok(P, n, P[e + 1]) || !dfa_ok(P, n, P[e + 6]) || !dfa_ok(P, n, P[e + 7])) return 0;
    if (P[e] <= 0 || P[e] >= CC_COUNT || P[e + 3] < -1 || P[e + 3] > 31 || P[e + 4] < -1 || P[e + 4] > 31) return 0;
    for (int32_t k = 0; k < P[e + 10]; k++)
        if (!dfa_ok(P, n, P[e + 11 + 2 * k])) return 0;
    int32_t table = P[e + 9];
    if (table < CC_TABLE + CC_COUNT || table > n - 2 * (MAX_NSN + 1)) return 0;
    for (int len = 0; len <= MAX_NSN; len++) {
        int32_t at = P[table + 2 * len], count = P[table + 2 * len + 1];
        if (count < -1 || (count > 0 && (at < 0 || (long long)at + (long long)count * len > samples))) return 0;
    }
    return 1;
}

typedef struct {
    PyObject *program, *samples; /* bytes, owned */
    int32_t *entries;            /* the entries of the countries, ascending: the rule's must be one */
    Py_ssize_t nentries;
} phone_tables_t;

static const char TABLES[] = "datasafe.masking._native.phone_tables";

static void tables_free(PyObject *capsule) {
    phone_tables_t *t = PyCapsule_GetPointer(capsule, TABLES);
    if (t == NULL) return;
    Py_XDECREF(t->program);
    Py_XDECREF(t->samples);
    PyMem_Free(t->entries);
    PyMem_Free(t);
}

static int by_value(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* NULL, or what is wrong with the program; fills the entries of t */
static const char *tables_check(phone_tables_t *t) {
    const int32_t *P = (const int32_t *)PyBytes_AS_STRING(t->program);
    Py_ssize_t n = PyBytes_GET_SIZE(t->program) / 4, samples = PyBytes_GET_SIZE(t->samples);
    if (PyBytes_GET_SIZE(t->program) % 4 || n < CC_TABLE + CC_COUNT || P[0] != 0x50484f4e || P[1] != 1)
        return "not a phone program";
    Py_ssize_t room = 0;
    for (int code = 0; code < CC_COUNT; code++) {
        int32_t c = P[CC_TABLE + code];
        if (c == CC_NONE || c == CC_UNLOADED || c == CC_PYTHON) continue;
        if (c < CC_TABLE + CC_COUNT || c > n - 3 || P[c] != code || P[c + 2] < 0 || P[c + 2] > (n - c - 3) / 2)
            return "a bad country record";
        room += 1 + P[c + 2];
    }
    t->entries = PyMem_Malloc(sizeof(int32_t) * (size_t)(room ? room : 1));
    if (t->entries == NULL) return "out of memory";
    for (int code = 0; code < CC_COUNT; code++) {
        int32_t c = P[CC_TABLE + code];
        if (c == CC_NONE || c == CC_UNLOADED || c == CC_PYTHON) continue;
        if (!entry_ok(P, n, samples, P[c + 1])) return "a bad entry record";
        t->entries[t->nentries++] = P[c + 1];
        for (int32_t i = 0; i < P[c + 2]; i++) {
            if (!entry_ok(P, n, samples, P[c + 3 + 2 * i]) || !dfa_ok(P, n, P[c + 4 + 2 * i]))
                return "a bad region";
            t->entries[t->nentries++] = P[c + 3 + 2 * i];
        }
    }
    qsort(t->entries, (size_t)t->nentries, sizeof(int32_t), by_value);
    return NULL;
}

PyDoc_STRVAR(phone_tables_doc,
"phone_tables(program, samples, /)\n--\n\n"
"The tables of phone(): the int32 records of phone_native.Program and the digits of its samples\n"
"of valid numbers, checked once (ValueError when an offset leads out of them).");

static PyObject *phone_tables(PyObject *self, PyObject *args) {
    PyObject *program, *samples;
    if (!PyArg_ParseTuple(args, "O!O!:phone_tables", &PyBytes_Type, &program, &PyBytes_Type, &samples)) return NULL;
    phone_tables_t *t = PyMem_Calloc(1, sizeof *t);
    if (t == NULL) return PyErr_NoMemory();
    t->program = Py_NewRef(program);
    t->samples = Py_NewRef(samples);
    const char *error = tables_check(t);
    PyObject *capsule = error == NULL ? PyCapsule_New(t, TABLES, tables_free) : NULL;
    if (capsule == NULL) {
        if (error != NULL) PyErr_Format(PyExc_ValueError, "phone tables: %s", error);
        Py_DECREF(t->program);
        Py_DECREF(t->samples);
        PyMem_Free(t->entries);
        PyMem_Free(t);
    }
    return capsule;
}

PyDoc_STRVAR(phone_doc,
"phone(key, values, tables, entry, limit, /)\n--\n\n"
"phone (keep_format, keep_country_code) of every bytes value: (outputs, missing indexes, needs).\n"
"tables: of phone_tables(); entry: the rule's region among them, or -1. needs: the country codes,\n"
"and -(entry * 32 + length) - 1 for samples of valid numbers, that values needed and the tables\n"
"did not have.");

static PyObject *phone(PyObject *self, PyObject *args) {
    Py_buffer key;
    PyObject *values, *capsule, *out = NULL;
    Py_ssize_t entry;
    phone_program pp = {0};
    rule r = {.first = phone_first, .phone = &pp};
    if (!PyArg_ParseTuple(args, "y*O!Onn:phone", &key, &PyList_Type, &values, &capsule, &entry, &r.limit))
        return NULL;
    phone_tables_t *t = PyCapsule_GetPointer(capsule, TABLES);
    int32_t wanted = (int32_t)entry;
    if (t != NULL && entry != -1 &&
        (entry != wanted || bsearch(&wanted, t->entries, (size_t)t->nentries, sizeof(int32_t), by_value) == NULL))
        PyErr_SetString(PyExc_ValueError, "phone: the entry is not one of the tables");
    if (!PyErr_Occurred()) {
        pp.p = (const int32_t *)PyBytes_AS_STRING(t->program);
        pp.samples = (const unsigned char *)PyBytes_AS_STRING(t->samples);
        pp.entry = wanted;
        PyObject *done = run(&r, &key, values);
        PyObject *needs = done != NULL ? PyList_New(pp.nneeds) : NULL;
        for (int i = 0; needs != NULL && i < pp.nneeds; i++) {
            PyObject *item = PyLong_FromLongLong(pp.needs[i]);
            if (item == NULL) Py_CLEAR(needs);
            else PyList_SET_ITEM(needs, i, item);
        }
        if (needs != NULL)
            out = PyTuple_Pack(3, PyTuple_GET_ITEM(done, 0), PyTuple_GET_ITEM(done, 1), needs);
        Py_XDECREF(needs);
        Py_XDECREF(done);
    }
    PyBuffer_Release(&key);
    return out;
}

PyMethodDef ds_rule_methods[] = {
    {"ssn_us", ssn_us, METH_VARARGS, ssn_us_doc},
    {"card", card, METH_VARARGS, card_doc},
    {"email", email, METH_VARARGS, email_doc},
    {"lorem", lorem, METH_VARARGS, lorem_doc},
    {"phone", phone, METH_VARARGS, phone_doc},
    {"phone_tables", phone_tables, METH_VARARGS, phone_tables_doc},
    {NULL, NULL, 0, NULL},
};
