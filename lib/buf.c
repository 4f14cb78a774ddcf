#include "buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/* Small buffers are not worth a realloc per record: start at a size that
 * holds a handful of typical log lines. */
#define BUF_MIN_CAP 256

int buf_grow(struct buf *b, size_t n)
{
    if (b == NULL)
        return -EINVAL;
    if (n > SIZE_MAX - b->len)
        return -ENOMEM;
    size_t need = b->len + n;
    if (need <= b->cap)
        return 0;
    /* Doubling keeps the number of reallocations logarithmic in the largest
     * batch, which is what makes the steady state allocation-free. */
    size_t cap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

void buf_free(struct buf *b)
{
    if (b == NULL)
        return;
    free(b->p);
    buf_init(b);
}
