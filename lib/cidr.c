#include "cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cidr_parse(const char *text, struct cidr *out)
{
    if (text == NULL || out == NULL)
        return -EINVAL;
    char buf[64];
    size_t n = strlen(text);
    if (n == 0 || n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, text, n + 1);
    char *slash = strchr(buf, '/');
    long prefix = -1;
    if (slash != NULL) {
        *slash = '\0';
        char *end;
        const char *p = slash + 1;
        if (*p < '0' || *p > '9')
            return -EINVAL;
        prefix = strtol(p, &end, 10);
        if (*end != '\0')
            return -EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = 4;
        if (prefix > 32)
            return -EINVAL;
        out->prefix = (uint8_t)(prefix < 0 ? 32 : prefix);
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = 6;
        if (prefix > 128)
            return -EINVAL;
        out->prefix = (uint8_t)(prefix < 0 ? 128 : prefix);
    } else {
        return -EINVAL;
    }
    return 0;
}

static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

bool cidr_match(const struct cidr *c, int family, const uint8_t *addr)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == 6 && c->family == 4 && memcmp(addr, mapped, 12) == 0) {
        family = 4;
        addr += 12;
    }
    if (family != c->family)
        return false;
    return prefix_eq(addr, c->addr, c->prefix);
}

bool cidr_match_any(const struct cidr *c, size_t n, int family, const uint8_t *addr)
{
    for (size_t i = 0; i < n; i++)
        if (cidr_match(&c[i], family, addr))
            return true;
    return false;
}
