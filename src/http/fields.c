/*
 * fields.c - hop-by-hop field rules.
 */
#include "http/fields.h"

int
gh_field_named_by_connection(const struct gh_h1_header *hs, uint32_t n,
                             const struct gh_h1_header *h)
{
    for (uint32_t i = 0; i < n; i++)
        if (hs[i].id == GH_HDR_CONNECTION &&
            gh_h1_list_has_token(hs[i].value, hs[i].value_len, h->name, h->name_len))
            return 1;
    return 0;
}
