/* basic.c: open a charm-kv database, write, read, list and close it, with error
 * handling. A starting point to copy.
 *
 * Build (see docs/c-abi.md):
 *   cargo build --release && scripts/gen-pkgconfig target/release
 *   export PKG_CONFIG_PATH=$PWD/target/release/pkgconfig
 *   cc -std=c11 -o basic examples/c/basic.c $(pkg-config --cflags --libs charm_kv) \
 *      -Wl,-rpath,$PWD/target/release
 *
 * Run: ./basic [DATA_DIR]
 *   DATA_DIR defaults to the Charm data directory ($CHARM_DATA_DIR or the platform's).
 *   Keys come from the local Charm account, unless EXAMPLE_ENCRYPT_KEY holds an
 *   encrypt key text (at least 32 bytes) this application manages itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charm_kv.h"

/* Prints a failed call's error and frees it. Returns 1 for `return fail(...)`. */
static int fail(const char *what, charm_kv_status status, charm_kv_error *err) {
  fprintf(stderr, "basic: %s failed: %s (%s)\n", what, charm_kv_error_message(err),
          charm_kv_status_str(status));
  charm_kv_error_free(err);
  return 1;
}

int main(int argc, char **argv) {
  charm_kv_error *err = NULL;
  charm_kv_status status;

  /* The header and the library must agree (same major.minor before 1.0). */
  printf("charm-kv %s (header %s)\n", charm_kv_version(), CHARM_KV_VERSION);

  /* Options: the CHARM_* environment, adjusted. They are only borrowed by open. */
  charm_kv_options *options = NULL;
  status = charm_kv_options_from_env(&options, &err);
  if (status != CHARM_KV_STATUS_OK) return fail("reading CHARM_* settings", status, err);
  if (argc > 1) {
    status = charm_kv_options_set_data_dir(options, argv[1], &err);
    if (status != CHARM_KV_STATUS_OK) {
      charm_kv_options_free(options);
      return fail("setting the data directory", status, err);
    }
  }
  const char *key_text = getenv("EXAMPLE_ENCRYPT_KEY");
  if (key_text != NULL) {
    status = charm_kv_options_set_encrypt_key(options, (const uint8_t *)key_text,
                                              strlen(key_text), &err);
    if (status != CHARM_KV_STATUS_OK) {
      charm_kv_options_free(options);
      return fail("setting the encrypt key", status, err);
    }
  }

  charm_kv_store *store = NULL;
  status = charm_kv_store_open("example", options, &store, &err);
  charm_kv_options_free(options);
  if (status != CHARM_KV_STATUS_OK) return fail("opening the database", status, err);

  /* Keys and values are byte strings, any bytes; a function taking several passes
   * each as a charm_kv_slice (pointer plus length), borrowed for the call. */
  const char *key = "greeting", *value = "hello from C";
  charm_kv_slice key_bytes = {(const uint8_t *)key, strlen(key)};
  charm_kv_slice value_bytes = {(const uint8_t *)value, strlen(value)};
  status = charm_kv_store_set(store, key_bytes, value_bytes, &err);
  if (status != CHARM_KV_STATUS_OK) {
    charm_kv_store_free(store);
    return fail("set", status, err);
  }

  /* A value returned to us is ours: free it with charm_kv_bytes_free. */
  charm_kv_bytes got = {NULL, 0};
  status = charm_kv_store_get(store, (const uint8_t *)key, strlen(key), &got, &err);
  if (status != CHARM_KV_STATUS_OK) {
    charm_kv_store_free(store);
    return fail("get", status, err);
  }
  printf("%s = %.*s\n", key, (int)got.len, (const char *)got.data);
  charm_kv_bytes_free(&got);

  /* A missing key is CHARM_KV_STATUS_NOT_FOUND, an ordinary outcome. */
  status = charm_kv_store_get(store, (const uint8_t *)"nope", 4, &got, NULL);
  printf("nope: %s\n", status == CHARM_KV_STATUS_NOT_FOUND ? "not found" : "?");

  /* Every key and value, in key order. The slices are borrowed until the next call. */
  charm_kv_iter *it = NULL;
  status = charm_kv_iter_new(store, NULL, true, &it, &err);
  if (status != CHARM_KV_STATUS_OK) {
    charm_kv_store_free(store);
    return fail("listing", status, err);
  }
  for (;;) {
    charm_kv_slice k, v;
    bool has_item;
    status = charm_kv_iter_next(it, &k, &v, &has_item, &err);
    if (status != CHARM_KV_STATUS_OK) {
      charm_kv_iter_free(it);
      charm_kv_store_free(store);
      return fail("listing", status, err);
    }
    if (!has_item) break;
    /* An empty slice may be NULL: print "" then. */
    printf("  %.*s\t%.*s\n", (int)k.len, k.len ? (const char *)k.data : "", (int)v.len,
           v.len ? (const char *)v.data : "");
  }
  charm_kv_iter_free(it);

  /* Close reports errors; free releases the handle (and is NULL-safe). */
  status = charm_kv_store_close(store, &err);
  charm_kv_store_free(store);
  if (status != CHARM_KV_STATUS_OK) return fail("close", status, err);
  return 0;
}
