#ifndef GW_DICT_H
#define GW_DICT_H

#include <stddef.h>

/*
 * A string-keyed hash table with separate chaining.  Keys are copied; values
 * are borrowed pointers the caller owns.  Used for the router's room and user
 * indexes and the bus's channel table.
 */

struct gw_dict;

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
