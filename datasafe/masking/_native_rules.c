/*
 * The first choices of transformers whose output is built from the value's HMAC and its layout,
 * a list of values at a time (part of datasafe.masking._native; see _native.c):
 *
 *   ssn_us(key, values, keep_format, limit)             national_id, country US
 *   card(key, values, prefixes, limit)                  credit_card, brand keep
 *   email(key, values, firsts, lasts, domains, unique, limit)   email, neither domain nor column kept
 *   lorem(key, values, text, starts, max_length, limit) text
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
 * phone (_native_phone.c) runs on the same runner.
 */
#include "_native_rules.h"

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
Py_ssize_t ds_fill(const unsigned char *v, Py_ssize_t n, int alnum, const char *chars, Py_ssize_t count,
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

/* NationalId.first_from_digest, country US (identifiers.py) */
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
        Py_ssize_t kept = ds_fill(v, n, 1, c, 9, out);
        if (kept >= 0) return kept;
    }
    memcpy(out, c, 3);
    out[3] = '-';
    memcpy(out + 4, c + 3, 2);
    out[6] = '-';
    memcpy(out + 7, c + 5, 4);
    return 11;
}

/* CreditCard.first_from_digest, brand keep (identifiers.py) */
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
    return ds_fill(v, n, 1, number, fields, out);
}

static Py_ssize_t put(char *out, const char *s, Py_ssize_t n) {
    memcpy(out, s, (size_t)n);
    return n;
}

/* Email.first_from_digest, without keep_domain and a column length (person.py) */
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

/* Text.first_from_digest (text.py): a keyed slice of the corpus, as long as the value */
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
PyObject *ds_rule_run(rule *r, Py_buffer *key, PyObject *values) {
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
    PyObject *out = ds_rule_run(&r, &key, values);
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
    else out = ds_rule_run(&r, &key, values);
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
            out = ds_rule_run(&r, &key, values);
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
    else out = ds_rule_run(&r, &key, values);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&text);
    PyBuffer_Release(&key);
    return out;
}

PyMethodDef ds_rule_methods[] = {
    {"ssn_us", ssn_us, METH_VARARGS, ssn_us_doc},
    {"card", card, METH_VARARGS, card_doc},
    {"email", email, METH_VARARGS, email_doc},
    {"lorem", lorem, METH_VARARGS, lorem_doc},
    {NULL, NULL, 0, NULL},
};
