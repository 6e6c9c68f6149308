/* Helpers the slides unit tests share. */
#ifndef GH_TESTS_UNIT_SLIDES_TEST_H
#define GH_TESTS_UNIT_SLIDES_TEST_H

#include <stdint.h>

#include "../../../slides/slides.h"

/* The stored form of a resource, read through slides_content_reader in
 * pieces of odd sizes (so chunk edges are crossed mid-read): malloc'd, or
 * NULL when the store has no such resource or a read failed. */
unsigned char *unit_slides_read(struct slides_store *st, const char *id, int64_t *size);

#endif
