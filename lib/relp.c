#include "relp.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Locale-independent classes: RELP's grammar is ASCII. */
static inline bool relp_isdigit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static inline bool relp_isalpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ---- Encoding ---------------------------------------------------------- */

/* Decimal digits of v, at least one. */
static size_t relp_ndigits(uint32_t v)
{
    size_t n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Write v in decimal at p, which has room for relp_ndigits(v) bytes;
 * returns the byte after it. */
static char *relp_put_uint(char *p, uint32_t v)
{
    size_t n = relp_ndigits(v);

    for (size_t i = n; i > 0; i--) {
        p[i - 1] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

/* A command is 1 to 32 ASCII letters; returns its length or 0 if it is
 * not one. */
static size_t relp_command_len(const char *cmd)
{
    size_t n = 0;

    if (cmd == NULL)
        return 0;
    while (cmd[n] != '\0') {
        if (n == RELP_COMMAND_MAX || !relp_isalpha((unsigned char)cmd[n]))
            return 0;
        n++;
    }
    return n;
}

size_t relp_frame_size(uint32_t txnr, size_t cmdlen, size_t datalen)
{
    size_t n = relp_ndigits(txnr) + 1 + cmdlen + 1 +
               relp_ndigits(datalen > RELP_DATALEN_MAX ? RELP_DATALEN_MAX
                                                       : (uint32_t)datalen);
    if (datalen > 0)
        n += 1 + datalen;
    return n + 1;
}

ssize_t relp_encode_header(char *buf, size_t cap, uint32_t txnr,
                           const char *cmd, size_t datalen)
{
    size_t cmdlen = relp_command_len(cmd);
    size_t need;
    char *p;

    if (txnr > RELP_TXNR_MAX || cmdlen == 0 || datalen > RELP_DATALEN_MAX ||
        (buf == NULL && cap > 0))
        return -EINVAL;
    need = relp_ndigits(txnr) + 1 + cmdlen + 1 +
           relp_ndigits((uint32_t)datalen) + (datalen > 0);
    if (need > cap)
        return -ENOBUFS;
    p = relp_put_uint(buf, txnr);
    *p++ = ' ';
    memcpy(p, cmd, cmdlen);
    p += cmdlen;
    *p++ = ' ';
    p = relp_put_uint(p, (uint32_t)datalen);
    if (datalen > 0)
        *p++ = ' ';
    assert((size_t)(p - buf) == need);
    return (ssize_t)need;
}

ssize_t relp_encode(char *buf, size_t cap, uint32_t txnr, const char *cmd,
                    const void *data, size_t datalen)
{
    ssize_t h;

    if (data == NULL && datalen > 0)
        return -EINVAL;
    h = relp_encode_header(buf, cap, txnr, cmd, datalen);
    if (h < 0)
        return h;
    if (cap - (size_t)h < datalen + 1)
        return -ENOBUFS;
    if (datalen > 0)
        memcpy(buf + h, data, datalen);
    buf[(size_t)h + datalen] = '\n';
    return h + (ssize_t)datalen + 1;
}

ssize_t relp_encode_rsp(char *buf, size_t cap, uint32_t txnr, int code,
                        const char *text, const void *extra, size_t extralen)
{
    size_t textlen = text ? strlen(text) : 0;
    size_t datalen;
    ssize_t h;
    char *p;

    if (code < 100 || code > 999 || (text && memchr(text, '\n', textlen)) ||
        (extra == NULL && extralen > 0))
        return -EINVAL;
    datalen = 3 + 1 + textlen + (extralen > 0 ? 1 + extralen : 0);
    h = relp_encode_header(buf, cap, txnr, "rsp", datalen);
    if (h < 0)
        return h;
    if (cap - (size_t)h < datalen + 1)
        return -ENOBUFS;
    p = relp_put_uint(buf + h, (uint32_t)code);
    *p++ = ' ';
    if (textlen > 0)
        memcpy(p, text, textlen);
    p += textlen;
    if (extralen > 0) {
        *p++ = '\n';
        memcpy(p, extra, extralen);
        p += extralen;
    }
    *p++ = '\n';
    assert((size_t)(p - buf) == (size_t)h + datalen + 1);
    return p - buf;
}

/* ---- Parsing a stream of frames ---------------------------------------- */

/* Where the parser stands between two calls. */
enum relp_state {
    ST_TXNR = 0, /* reading TXNR's digits (none yet at a frame's start) */
    ST_COMMAND,  /* reading the command's letters */
    ST_DATALEN,  /* reading DATALEN's digits */
    ST_DATA,     /* collecting DATALEN octets into buf */
    ST_TRAILER,  /* the data is complete; the LF must come */
};

/* The first allocation for data spanning two chunks; growth is by doubling
 * up to the frame's DATALEN, so a peer that announces a large frame and
 * sends little makes us hold only what it sent. */
#define RELP_FIRST_ALLOC 512

int relp_parser_init(struct relp_parser *p, uint32_t max_data)
{
    if (p == NULL || max_data == 0 || max_data > RELP_DATALEN_MAX)
        return -EINVAL;
    memset(p, 0, sizeof(*p));
    p->max_data = max_data;
    p->state = ST_TXNR;
    return 0;
}

void relp_parser_reset(struct relp_parser *p)
{
    p->buf_len = 0;
    p->txnr = 0;
    p->datalen = 0;
    p->state = ST_TXNR;
    p->ndigits = 0;
    p->cmdlen = 0;
    p->error = 0;
}

void relp_parser_free(struct relp_parser *p)
{
    if (p == NULL)
        return;
    free(p->buf);
    p->buf = NULL;
    p->buf_cap = 0;
    relp_parser_reset(p);
}

static int relp_parser_fail(struct relp_parser *p, int err)
{
    p->error = err;
    return err;
}

/* Append n data bytes to buf, growing it up to the frame's DATALEN. */
static int relp_parser_append(struct relp_parser *p, const char *src,
                              size_t n)
{
    size_t need = p->buf_len + n;

    assert(need <= p->datalen);
    if (need > p->buf_cap) {
        size_t cap = p->buf_cap ? p->buf_cap : RELP_FIRST_ALLOC;
        char *nb;

        while (cap < need)
            cap *= 2;
        if (cap > p->datalen)
            cap = p->datalen;
        nb = realloc(p->buf, cap);
        if (nb == NULL)
            return -ENOMEM;
        p->buf = nb;
        p->buf_cap = cap;
    }
    memcpy(p->buf + p->buf_len, src, n);
    p->buf_len = need;
    return 0;
}

/* The frame just ended: fill *out and get ready for the next one.  The
 * data stays where it is (buf, or the caller's chunk) until the next call. */
static void relp_parser_emit(struct relp_parser *p, const char *data,
                             struct relp_frame *out)
{
    out->txnr = p->txnr;
    out->datalen = p->datalen;
    out->data = p->datalen > 0 ? data : NULL;
    memcpy(out->command, p->command, (size_t)p->cmdlen + 1);
    p->state = ST_TXNR;
    p->txnr = 0;
    p->datalen = 0;
    p->ndigits = 0;
    p->cmdlen = 0;
}

int relp_parser_next(struct relp_parser *p, const char *buf, size_t len,
                     size_t *used, struct relp_frame *out)
{
    size_t i = 0;
    int rc;

    if (p == NULL || used == NULL || out == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    *used = 0;
    if (p->error < 0)
        return p->error;
    /* The previous frame's data may lie in buf; it is no longer needed. */
    if (p->state != ST_DATA && p->state != ST_TRAILER)
        p->buf_len = 0;

    while (i < len) {
        unsigned char c = (unsigned char)buf[i];

        switch ((enum relp_state)p->state) {
        case ST_TXNR:
            if (relp_isdigit(c)) {
                if (p->ndigits == 9)
                    return relp_parser_fail(p, -EPROTO);
                p->txnr = p->txnr * 10 + (uint32_t)(c - '0');
                p->ndigits++;
            } else if (c == ' ' && p->ndigits > 0) {
                p->state = ST_COMMAND;
                p->ndigits = 0;
            } else {
                return relp_parser_fail(p, -EPROTO);
            }
            i++;
            break;
        case ST_COMMAND:
            if (relp_isalpha(c)) {
                if (p->cmdlen == RELP_COMMAND_MAX)
                    return relp_parser_fail(p, -EPROTO);
                p->command[p->cmdlen++] = (char)c;
            } else if (c == ' ' && p->cmdlen > 0) {
                p->command[p->cmdlen] = '\0';
                p->state = ST_DATALEN;
            } else {
                return relp_parser_fail(p, -EPROTO);
            }
            i++;
            break;
        case ST_DATALEN:
            if (relp_isdigit(c)) {
                if (p->ndigits == 9)
                    return relp_parser_fail(p, -EPROTO);
                p->datalen = p->datalen * 10 + (uint32_t)(c - '0');
                p->ndigits++;
                /* Refuse an oversized frame before any of it is held. */
                if (p->datalen > p->max_data)
                    return relp_parser_fail(p, -EMSGSIZE);
                i++;
                break;
            }
            if (p->ndigits == 0)
                return relp_parser_fail(p, -EPROTO);
            i++;
            if (p->datalen == 0) {
                /* No data, so no SP: the trailer follows the count. */
                if (c != '\n')
                    return relp_parser_fail(p, -EPROTO);
                relp_parser_emit(p, NULL, out);
                *used = i;
                return 1;
            }
            if (c != ' ')
                return relp_parser_fail(p, -EPROTO);
            p->state = ST_DATA;
            p->buf_len = 0;
            /* The common case: data and trailer lie in this chunk, and the
             * frame is returned pointing into it, without a copy. */
            if (len - i > p->datalen) {
                if (buf[i + p->datalen] != '\n')
                    return relp_parser_fail(p, -EPROTO);
                relp_parser_emit(p, buf + i, out);
                *used = i + out->datalen + 1;
                return 1;
            }
            break;
        case ST_DATA: {
            size_t n = p->datalen - p->buf_len;

            if (n > len - i)
                n = len - i;
            rc = relp_parser_append(p, buf + i, n);
            if (rc < 0)
                return relp_parser_fail(p, rc);
            i += n;
            if (p->buf_len == p->datalen)
                p->state = ST_TRAILER;
            break;
        }
        case ST_TRAILER:
            if (c != '\n')
                return relp_parser_fail(p, -EPROTO);
            relp_parser_emit(p, p->buf, out);
            *used = i + 1;
            return 1;
        }
    }
    *used = len;
    return 0;
}

/* ---- The data of rsp and open ------------------------------------------ */

int relp_rsp_parse(const char *data, size_t len, struct relp_rsp *rsp)
{
    const char *lf;

    if (rsp == NULL || (data == NULL && len > 0))
        return -EINVAL;
    if (len == 0)
        return -ENODATA;
    if (len < 4 || !relp_isdigit((unsigned char)data[0]) ||
        !relp_isdigit((unsigned char)data[1]) ||
        !relp_isdigit((unsigned char)data[2]) || data[3] != ' ')
        return -EPROTO;
    rsp->code = (data[0] - '0') * 100 + (data[1] - '0') * 10 + (data[2] - '0');
    rsp->text = data + 4;
    lf = memchr(rsp->text, '\n', len - 4);
    if (lf == NULL) {
        rsp->textlen = len - 4;
        rsp->data = NULL;
        rsp->datalen = 0;
    } else {
        rsp->textlen = (size_t)(lf - rsp->text);
        rsp->data = lf + 1;
        rsp->datalen = len - (size_t)(rsp->data - data);
    }
    return 0;
}

/* librelp's limit for an offer's name (RELP_MAX_OFFER_FEATURENAME). */
#define RELP_OFFER_NAME_MAX 32

int relp_offer_next(const char *data, size_t len, size_t *pos,
                    struct relp_offer *o)
{
    size_t i, end;
    const char *eq;

    if (pos == NULL || o == NULL || (data == NULL && len > 0) || *pos > len)
        return -EINVAL;
    i = *pos;
    while (i < len && data[i] == '\n')
        i++;
    if (i == len) {
        *pos = len;
        return 0;
    }
    {
        const char *lf = memchr(data + i, '\n', len - i);
        end = lf ? (size_t)(lf - data) : len;
    }
    eq = memchr(data + i, '=', end - i);
    o->name = data + i;
    o->namelen = eq ? (size_t)(eq - o->name) : end - i;
    if (o->namelen == 0 || o->namelen > RELP_OFFER_NAME_MAX)
        return -EPROTO;
    o->value = eq ? eq + 1 : data + end;
    o->valuelen = (size_t)(data + end - o->value);
    *pos = end < len ? end + 1 : len;
    return 1;
}

bool relp_offer_has(const struct relp_offer *o, const char *item)
{
    size_t n = strlen(item);
    const char *p = o->value, *end = o->value + o->valuelen;

    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;

        if ((size_t)(stop - p) == n && memcmp(p, item, n) == 0)
            return true;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return false;
}

static bool relp_offer_is(const struct relp_offer *o, const char *name)
{
    size_t n = strlen(name);

    return o->namelen == n && memcmp(o->name, name, n) == 0;
}

int relp_open_parse(const char *data, size_t len, struct relp_open *op)
{
    struct relp_offer o;
    size_t pos = 0;
    int rc;

    if (op == NULL)
        return -EINVAL;
    op->version = -1;
    op->syslog = false;
    op->software = NULL;
    op->softwarelen = 0;
    while ((rc = relp_offer_next(data, len, &pos, &o)) == 1) {
        if (relp_offer_is(&o, "relp_version")) {
            int v = 0;

            if (o.valuelen == 0 || o.valuelen > 9)
                return -EPROTO;
            for (size_t i = 0; i < o.valuelen; i++) {
                if (!relp_isdigit((unsigned char)o.value[i]))
                    return -EPROTO;
                v = v * 10 + (o.value[i] - '0');
            }
            op->version = v;
        } else if (relp_offer_is(&o, "commands")) {
            op->syslog = op->syslog || relp_offer_has(&o, "syslog");
        } else if (relp_offer_is(&o, "relp_software")) {
            op->software = o.value;
            op->softwarelen = o.valuelen;
        }
        /* Other offers are ignored, as librelp ignores unknown ones. */
    }
    if (rc < 0)
        return rc;
    return op->version < 0 ? -EPROTO : 0;
}

/* prefix, then the three offers lograil makes, in either direction. */
static ssize_t relp_offers_put(char *buf, size_t cap, const char *prefix,
                               const char *software)
{
    static const char v[] = "relp_version=0\nrelp_software=";
    static const char c[] = "\ncommands=syslog";
    size_t pl = strlen(prefix), sl, n;

    if (software == NULL || strchr(software, '\n') != NULL ||
        (buf == NULL && cap > 0))
        return -EINVAL;
    sl = strlen(software);
    n = pl + sizeof(v) - 1 + sl + sizeof(c) - 1;
    if (n > cap)
        return -ENOBUFS;
    memcpy(buf, prefix, pl);
    memcpy(buf + pl, v, sizeof(v) - 1);
    memcpy(buf + pl + sizeof(v) - 1, software, sl);
    memcpy(buf + pl + sizeof(v) - 1 + sl, c, sizeof(c) - 1);
    return (ssize_t)n;
}

ssize_t relp_open_offer(char *buf, size_t cap, const char *software)
{
    return relp_offers_put(buf, cap, "", software);
}

ssize_t relp_open_answer(char *buf, size_t cap, const char *software)
{
    return relp_offers_put(buf, cap, "200 OK\n", software);
}

/* ---- The client's window ----------------------------------------------- */

#define RELP_WINDOW_MAX (1u << 20)

int relp_window_init(struct relp_window *w, size_t cap, uint64_t cursor)
{
    if (w == NULL || cap == 0 || cap > RELP_WINDOW_MAX)
        return -EINVAL;
    memset(w, 0, sizeof(*w));
    w->slots = calloc(cap, sizeof(*w->slots));
    if (w->slots == NULL)
        return -ENOMEM;
    w->cap = cap;
    relp_window_reset(w, cursor);
    return 0;
}

void relp_window_free(struct relp_window *w)
{
    if (w == NULL)
        return;
    free(w->slots);
    w->slots = NULL;
    w->cap = 0;
    w->count = 0;
}

void relp_window_reset(struct relp_window *w, uint64_t cursor)
{
    w->head = 0;
    w->count = 0;
    w->head_txnr = 0;
    w->next_txnr = 0;
    w->upto = cursor;
}

int relp_window_push(struct relp_window *w, uint32_t txnr, uint64_t end)
{
    uint64_t last;
    size_t slot;

    if (w == NULL || txnr == 0 || txnr > RELP_TXNR_MAX ||
        (w->next_txnr != 0 && txnr != w->next_txnr))
        return -EINVAL;
    last = w->count > 0 ? w->slots[(w->head + w->count - 1) % w->cap].end
                        : w->upto;
    if (end < last)
        return -EINVAL;
    if (w->count == w->cap)
        return -ENOBUFS;
    if (w->count == 0)
        w->head_txnr = txnr;
    slot = (w->head + w->count) % w->cap;
    w->slots[slot].end = end;
    w->slots[slot].acked = false;
    w->count++;
    w->next_txnr = relp_txnr_next(txnr);
    return 0;
}

int relp_window_ack(struct relp_window *w, uint32_t txnr)
{
    size_t d, slot;

    if (w == NULL)
        return -EINVAL;
    if (w->count == 0 || txnr == 0 || txnr > RELP_TXNR_MAX)
        return -ENOENT;
    /* How far txnr lies after the oldest outstanding TXNR, in RELP's
     * numbering where 1 follows 999999999. */
    d = txnr >= w->head_txnr ? txnr - w->head_txnr
                             : (size_t)txnr + RELP_TXNR_MAX - w->head_txnr;
    if (d >= w->count)
        return -ENOENT;
    slot = (w->head + d) % w->cap;
    if (w->slots[slot].acked)
        return -ENOENT;
    w->slots[slot].acked = true;
    while (w->count > 0 && w->slots[w->head].acked) {
        w->upto = w->slots[w->head].end;
        w->head = (w->head + 1) % w->cap;
        w->head_txnr = relp_txnr_next(w->head_txnr);
        w->count--;
    }
    return 0;
}

uint64_t relp_window_acked_upto(const struct relp_window *w)
{
    return w->upto;
}
