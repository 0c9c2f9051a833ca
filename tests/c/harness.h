/* A minimal test harness for the charm-kv C ABI tests: CHECK macros (usable from
 * any thread), a fresh temporary data directory per test, and store helpers. */
#ifndef CHARM_KV_TEST_HARNESS_H
#define CHARM_KV_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "charm_kv.h"

/* An encrypt key text (any text of at least 32 bytes works) and a different one. */
#define TEST_KEY "c2VjcmV0LWtleS1mb3ItdGhlLWNoYXJtLWt2LWMtYWJpLXRlc3RzLTAwMDAwMDAwMDAwMDAwMDAwMDAwMDA="
#define OTHER_KEY "b3RoZXIta2V5LWZvci10aGUtY2hhcm0ta3YtYy1hYmktdGVzdHMtMTExMTExMTExMTExMTExMTExMTExMTE="

/* Records a failure of the running test (thread-safe). */
void harness_fail(const char *file, int line, const char *what);

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) harness_fail(__FILE__, __LINE__, "CHECK(" #cond ")"); \
  } while (0)

/* Checks a call's status; on a mismatch prints both statuses. */
#define CHECK_STATUS(call, expected) \
  check_status_at(__FILE__, __LINE__, #call, (call), (expected))
void check_status_at(const char *file, int line, const char *call,
                     charm_kv_status got, charm_kv_status expected);

/* Checks that `err` holds an error with `status` whose message contains `needle`
 * (NULL: any message), then frees it and sets it to NULL. */
#define CHECK_ERROR(err, status, needle) \
  check_error_at(__FILE__, __LINE__, &(err), (status), (needle))
void check_error_at(const char *file, int line, charm_kv_error **err,
                    charm_kv_status status, const char *needle);

/* Bytes helpers. */
#define BYTES(s) (const uint8_t *)(s), strlen(s)
/* A string literal (or C string) as a charm_kv_slice, and any pointer and length. */
#define SLICE(s) SLICE_OF(s, strlen(s))
#define SLICE_OF(ptr, n) ((charm_kv_slice){(const uint8_t *)(ptr), (n)})
bool bytes_eq(const uint8_t *data, size_t len, const char *expected);

/* Options for data directory `dir` with TEST_KEY; the caller frees them. */
charm_kv_options *test_options(const char *dir);
/* Opens database `name` under `dir` with TEST_KEY; fails the test on error. */
charm_kv_store *open_store(const char *dir, const char *name);
/* Whether `path` exists. */
bool path_exists(const char *path);
/* Creates a fresh temporary directory (the caller removes it with remove_tree). */
char *make_temp_dir(void);
void remove_tree(const char *path);

/* The tests, grouped by file. Each gets a fresh, empty data directory. */
typedef void (*test_fn)(const char *dir);
typedef struct {
  const char *name;
  test_fn fn;
} test_case;

extern const test_case basic_tests[];
extern const test_case misuse_tests[];
extern const test_case thread_tests[];
extern const test_case hostile_tests[];

#endif
