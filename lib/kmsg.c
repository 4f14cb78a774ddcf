#include "kmsg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define KMSG_MAX_IN (1u << 20)
#define KMSG_APP "kernel"
#define KMSG_APP_LEN 6
#define SD_NAME_MAX 32 /* RFC 5424 SD-NAME */

/* Read a decimal number at s[*i..n) up to `stop`; false when there is no
 * digit, it overflows, or `stop` does not follow. */
static bool number(const char *s, size_t n, size_t *i, char stop, uint64_t *out)
{
    uint64_t v = 0;
    size_t j = *i;
    if (j >= n || s[j] < '0' || s[j] > '9')
        return false;
    while (j < n && s[j] >= '0' && s[j] <= '9') {
        unsigned d = (unsigned)(s[j] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
        j++;
    }
    if (j >= n || s[j] != stop)
        return false;
    *i = j + 1;
    *out = v;
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode s[0..n) into o, undoing the kernel's "\xHH"; a '\' that does not
 * start one is kept as it is.  When sd, the decoded bytes are also escaped
 * for an SD-PARAM value.  Returns the end of what was written; o has room
 * for 2 * n bytes. */
static char *decode(char *o, const char *s, size_t n, bool sd)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 3 < n && s[i + 1] == 'x') {
            int hi = hexval(s[i + 2]), lo = hexval(s[i + 3]);
            if (hi >= 0 && lo >= 0) {
                c = (char)(hi * 16 + lo);
                i += 3;
            }
        }
        if (sd && (c == '"' || c == '\\' || c == ']'))
            *o++ = '\\';
        *o++ = c;
    }
    return o;
}

/* An SD-NAME byte: PRINTUSASCII except '=', SP, ']' and '"'. */
static bool sd_name_ok(unsigned char c)
{
    return c > 32 && c < 127 && c != '=' && c != ']' && c != '"';
}

/* Append the dictionary lines of d[0..n) (each " KEY=VALUE", separated by
 * '\n') as one SD element at o.  Returns the end; o unchanged when no line
 * has a key. */
static char *dictionary(char *o, const char *d, size_t n)
{
    char *start = o;
    size_t id_len = sizeof(KMSG_SD_ID) - 1;
    bool any = false;
    *o++ = '[';
    memcpy(o, KMSG_SD_ID, id_len);
    o += id_len;
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(d + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - d) : n;
        /* Only lines that start with a space belong to the dictionary. */
        if (d[i] == ' ') {
            const char *line = d + i + 1;
            size_t llen = end - i - 1;
            const char *eq = memchr(line, '=', llen);
            if (eq != NULL && eq != line) {
                size_t klen = (size_t)(eq - line);
                if (klen > SD_NAME_MAX)
                    klen = SD_NAME_MAX;
                *o++ = ' ';
                for (size_t k = 0; k < klen; k++)
                    *o++ = sd_name_ok((unsigned char)line[k]) ? line[k] : '_';
                *o++ = '=';
                *o++ = '"';
                const char *v = eq + 1;
                o = decode(o, v, (size_t)(line + llen - v), true);
                *o++ = '"';
                any = true;
            }
        }
        i = end + 1;
    }
    if (!any)
        return start;
    *o++ = ']';
    return o;
}

int kmsg_parse(const char *in, size_t len, int64_t boot_us, struct kmsg_info *info,
               struct record **out)
{
    if (in == NULL || info == NULL || out == NULL || len > KMSG_MAX_IN)
        return -EINVAL;
    memset(info, 0, sizeof(*info));
    *out = NULL;

    uint64_t pri = 0, seq = 0, ts = 0;
    size_t i = 0;
    const char *semi = memchr(in, ';', len);
    bool ok = semi != NULL && number(in, len, &i, ',', &pri) && pri < 256 &&
              number(in, len, &i, ',', &seq) && number(in, len, &i, ',', &ts) &&
              i < len && (in[i] == '-' || in[i] == 'c' || in[i] == '+') && i + 1 < len &&
              (in[i + 1] == ';' || in[i + 1] == ',') && in + i < semi;
    if (!ok) {
        size_t n = len > 0 && in[len - 1] == '\n' ? len - 1 : len;
        struct record *r = record_new(in, n);
        if (r == NULL)
            return -ENOMEM;
        r->facility = 0;
        r->severity = 5;
        r->flags |= RECORD_F_PARSE_ERROR;
        *out = r;
        return 0;
    }
    info->valid = true;
    info->cont = in[i] != '-';
    info->seq = seq;
    info->ts_usec = ts;

    const char *body = semi + 1;
    size_t rest = len - (size_t)(body - in);
    const char *nl = memchr(body, '\n', rest);
    size_t mlen = nl ? (size_t)(nl - body) : rest;
    const char *dict = nl ? nl + 1 : body + rest;
    size_t dlen = nl ? rest - mlen - 1 : 0;

    /* Decoding never lengthens the message.  In the dictionary, escaping
     * at most doubles a value, and a line (two bytes at least with its
     * '\n') gains two '"' at most: three times its length bounds it. */
    size_t cap = KMSG_APP_LEN + sizeof(KMSG_SD_ID) + 2 + 3 * dlen + mlen;
    char *tmp = malloc(cap);
    if (tmp == NULL)
        return -ENOMEM;
    char *o = tmp;
    memcpy(o, KMSG_APP, KMSG_APP_LEN);
    o += KMSG_APP_LEN;
    char *sd = o;
    o = dictionary(o, dict, dlen);
    char *msg = o;
    o = decode(o, body, mlen, false);

    uint32_t sd_off = (uint32_t)(sd - tmp), msg_off = (uint32_t)(msg - tmp);
    uint32_t total = (uint32_t)(o - tmp);
    struct record *r = record_new(tmp, total);
    free(tmp);
    if (r == NULL)
        return -ENOMEM;
    /* The kernel's facility field is wider than syslog's 24 facilities. */
    unsigned fac = (unsigned)(pri >> 3);
    r->facility = (uint8_t)(fac <= 23 ? fac : 1);
    r->severity = (uint8_t)(pri & 7);
    if (fac > 23)
        r->flags |= RECORD_F_PARSE_ERROR;
    r->syntax = RECORD_RAW;
    r->app = (struct span){0, KMSG_APP_LEN};
    if (msg_off > sd_off)
        r->sd = (struct span){sd_off, msg_off - sd_off};
    r->msg = (struct span){msg_off, total - msg_off};
    if (r->msg.len == 0)
        r->msg.off = 0;
    if (ts <= (uint64_t)INT64_MAX && (int64_t)ts <= INT64_MAX - (boot_us > 0 ? boot_us : 0)) {
        r->ts_us = boot_us + (int64_t)ts;
        r->flags |= RECORD_F_HAS_TIME;
    }
    *out = r;
    return 0;
}
