/*
 * buf: a growable byte buffer.
 *
 * The writer thread keeps one per output and formats records into it, then
 * hands p[0..len) to write(2) and resets it.  The buffer only ever grows, so
 * once it has reached the size of a typical batch, appending allocates
 * nothing: the append path is inline and is a bounds check plus a memcpy.
 *
 * A buf belongs to one thread at a time; nothing here locks.
 */
#ifndef LOGRAIL_BUF_H
#define LOGRAIL_BUF_H

#include <stddef.h>
#include <string.h>

struct buf {
    char *p;    /* the bytes; NULL until the first growth */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
};

#define BUF_INIT { NULL, 0, 0 }

static inline void buf_init(struct buf *b)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

/* Free the memory and leave the buffer empty and reusable. */
void buf_free(struct buf *b);

/* The slow half of buf_reserve(): reallocate so that at least n more bytes
 * fit.  Callers use buf_reserve() or buf_append(), which call this only when
 * the room is short.  0 or -ENOMEM (the buffer is then unchanged). */
int buf_grow(struct buf *b, size_t n);

/* Make room for n more bytes after len, so that a caller may write up to n
 * bytes at p + len and then advance len itself.  0 or -ENOMEM. */
static inline int buf_reserve(struct buf *b, size_t n)
{
    if (n <= b->cap - b->len)
        return 0;
    return buf_grow(b, n);
}

/* Append bytes[0..n).  0 or -ENOMEM (the buffer is then unchanged). */
static inline int buf_append(struct buf *b, const void *bytes, size_t n)
{
    if (n > b->cap - b->len) {
        int rc = buf_grow(b, n);
        if (rc != 0)
            return rc;
    }
    /* memcpy with a NULL pointer is undefined even for zero bytes, and p is
     * NULL until the first growth. */
    if (n > 0)
        memcpy(b->p + b->len, bytes, n);
    b->len += n;
    return 0;
}

/* Forget the contents but keep the memory, so the next batch reuses it. */
static inline void buf_reset(struct buf *b)
{
    b->len = 0;
}

#endif
