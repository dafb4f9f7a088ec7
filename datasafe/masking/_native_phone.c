/*
 * The phone rule (part of datasafe.masking._native; see _native.c and the top of _native_rules.c):
 *
 *   phone_tables(program, samples)          the program's tables, checked once, as a capsule
 *   phone(key, values, tables, entry, limit)    phone, keep_format and keep_country_code
 *
 * phone returns (outputs, missing) as the rules of _native_rules.c do, and a third list: the
 * parts of its program (the phonenumbers library's metadata as tables, built by
 * datasafe/masking/phone_native.py) that values needed and did not find.
 *
 * Phone.first_from_digest with keep_format and keep_country_code (transformers/phone.py), for values
 * of spaces, an optional "+", then digits and the separators " -.()/": how phonenumbers reads such
 * a value (phone_fast.read), which national number it gets (phone_numbers.masked_digits), in the
 * same layout. Everything the phonenumbers library knows comes in the program, an int32 array
 * built by phone_native.Program (its documentation describes the records); its regular
 * expressions come as automata over digits (digit_dfa.py). A number the reference reads as one
 * of no region gets Phone._keyed_digits here too. A value the program cannot settle (another
 * layout, a country or a sample of valid numbers not in it yet, a national prefix rule with a
 * transformation) is left to Python, and what the program lacked is reported.
 */
#include "_native_rules.h"

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
        ds_draw_digits(&dr, len, made);
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
            memcpy(made, numbers + ds_draw_below(&dr, (uint64_t)count) * (uint64_t)len, (size_t)starts[round]);
            ds_draw_digits(&dr, len - starts[round], made + starts[round]);
            int valid = phone_valid(P, c, found, made, len);
            if (valid) return valid < 0 ? PYTHON : 0;
        }
    }
    memcpy(made, numbers + ds_draw_below(&dr, (uint64_t)count) * (uint64_t)len, (size_t)len);
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
    for (char *o = num + keep + 1; rest > 0; o += 19, rest -= 19) ds_draw_digits(&dr, rest < 19 ? rest : 19, o);
}

/* Phone.first_from_digest, keep_format and keep_country_code (transformers/phone.py) */
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
    return ds_fill(v, n, 0, num, nd, out);
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
        PyObject *done = ds_rule_run(&r, &key, values);
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

PyMethodDef ds_phone_methods[] = {
    {"phone", phone, METH_VARARGS, phone_doc},
    {"phone_tables", phone_tables, METH_VARARGS, phone_tables_doc},
    {NULL, NULL, 0, NULL},
};
