/*
 * cidr: address ranges such as "10.0.0.0/8", "::1" or "fd00::/8", and
 * whether an address lies in one.  Used for the `allow` lists of network
 * listeners.  Pure: text and bytes in, no sockets.
 *
 * An IPv4 range also matches the IPv4-mapped IPv6 form of its addresses
 * (::ffff:10.1.2.3), which is how a client of a "[::]" listener arrives.
 */
#ifndef LOGRAIL_CIDR_H
#define LOGRAIL_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cidr {
    uint8_t family; /* 4 or 6 */
    uint8_t prefix; /* bits that must match: 0..32 or 0..128 */
    uint8_t addr[16];
};

/* Parse "ADDR" or "ADDR/PREFIX".  0, or -EINVAL (bad address, bad prefix,
 * host bits set after the prefix are allowed and ignored). */
int cidr_parse(const char *text, struct cidr *out);

/* Does the address (family 4: 4 bytes, 6: 16 bytes) lie in c? */
bool cidr_match(const struct cidr *c, int family, const uint8_t *addr);

/* Does it lie in any of the n ranges? */
bool cidr_match_any(const struct cidr *c, size_t n, int family, const uint8_t *addr);

#endif
