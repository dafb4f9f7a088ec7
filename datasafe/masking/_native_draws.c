/*
 * keyed.Draws in C (part of datasafe.masking._native; see _native.c): the draws of the phone
 * program (_native_phone.c) take the value's HMAC digest first and then, as Python's
 * hashlib.shake_256 would give them, SHAKE-256 of the bytes so far. Keccak-f[1600] is written out
 * here: OpenSSL has SHAKE-256 only behind EVP, whose per-call overhead this module avoids (see
 * _native.h), and a draw needs no more than one block of it.
 */
#include "_native_rules.h"

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

uint64_t ds_draw_below(draws *dr, uint64_t n) { return be64(take(dr, 8)) % n; }

/* keyed.Draws.digits(count), count <= 19 */
void ds_draw_digits(draws *dr, int count, char *out) {
    if (count > 0) put_digits(out, (uint64_t)(be128(take(dr, 16)) % POW10[count]), count);
}
