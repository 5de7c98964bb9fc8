#ifndef GW_DICT_H
#define GW_DICT_H

#include <stddef.h>
#include <stdint.h>

/*
 * A string-keyed hash table with separate chaining, keyed SipHash.  Keys are copied; values
 * are borrowed pointers the caller owns.  Used for the router's room and user
 * indexes and the bus's channel table.
 */

struct gw_dict;

/* SipHash-2-4 of data under the 128-bit key k0 (bytes 0-7, little endian)
 * and k1 (bytes 8-15).  Each table hashes with a random key of its own. */
uint64_t gw_siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len);

struct gw_dict *gw_dict_new(void);
/* Frees the table and its key copies, not the values.  NULL is a no-op. */
void gw_dict_free(struct gw_dict *d);

void *gw_dict_get(const struct gw_dict *d, const char *key);
/* Inserts or replaces.  0 or GW_ERR_NOMEM. */
int gw_dict_set(struct gw_dict *d, const char *key, void *value);
/* Removes key; returns its value or NULL. */
void *gw_dict_del(struct gw_dict *d, const char *key);
size_t gw_dict_size(const struct gw_dict *d);

/* Calls fn for each entry; fn must not modify the table. */
typedef void (*gw_dict_each_cb)(const char *key, void *value, void *arg);
void gw_dict_each(const struct gw_dict *d, gw_dict_each_cb fn, void *arg);

#endif
