/* Normal use of the C ABI: version, statuses, errors, options, get/set/delete,
 * keys, iteration, batches, sync/reset/pending, status, backup, database listing. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static void test_version_macros_match_library(const char *dir) {
  (void)dir;
  char expected[64];
  snprintf(expected, sizeof expected, "%d.%d.%d", CHARM_KV_VERSION_MAJOR,
           CHARM_KV_VERSION_MINOR, CHARM_KV_VERSION_PATCH);
  CHECK(strcmp(charm_kv_version(), expected) == 0);
  CHECK(strcmp(charm_kv_version(), CHARM_KV_VERSION) == 0);
  CHECK(charm_kv_version() == charm_kv_version()); /* static */
}

static void test_status_codes_and_strings(const char *dir) {
  (void)dir;
  /* The numeric values are ABI: they must never change. */
  const charm_kv_status all[] = {
      CHARM_KV_STATUS_OK,          CHARM_KV_STATUS_NOT_FOUND,
      CHARM_KV_STATUS_INVALID_ARGUMENT, CHARM_KV_STATUS_IO,
      CHARM_KV_STATUS_CORRUPT,     CHARM_KV_STATUS_KEYS,
      CHARM_KV_STATUS_AUTH,        CHARM_KV_STATUS_NETWORK,
      CHARM_KV_STATUS_SERVER,      CHARM_KV_STATUS_BUSY,
      CHARM_KV_STATUS_CLOSED,      CHARM_KV_STATUS_NOT_CONFIGURED,
      CHARM_KV_STATUS_PENDING_WRITES, CHARM_KV_STATUS_PANIC,
      CHARM_KV_STATUS_INTERNAL,    CHARM_KV_STATUS_READ_ONLY,
      CHARM_KV_STATUS_LINK,
  };
  const size_t n = sizeof all / sizeof all[0];
  CHECK(sizeof(charm_kv_status) == 4);
  for (size_t i = 0; i < n; i++) {
    CHECK(all[i] == i);
    const char *text = charm_kv_status_str(all[i]);
    CHECK(text != NULL && text[0] != '\0');
    CHECK(strcmp(text, "unknown status") != 0);
    for (size_t j = 0; j < i; j++) {
      CHECK(strcmp(text, charm_kv_status_str(all[j])) != 0);
    }
  }
  CHECK(strcmp(charm_kv_status_str(CHARM_KV_STATUS_OK), "ok") == 0);
  CHECK(strcmp(charm_kv_status_str(CHARM_KV_STATUS_NOT_FOUND), "not found") == 0);
  CHECK(strcmp(charm_kv_status_str(CHARM_KV_STATUS_READ_ONLY), "read-only store") == 0);
  CHECK(strcmp(charm_kv_status_str(CHARM_KV_STATUS_LINK), "link failed") == 0);
  CHECK(strcmp(charm_kv_status_str(17), "unknown status") == 0);
  CHECK(strcmp(charm_kv_status_str(UINT32_MAX), "unknown status") == 0);
  CHECK(CHARM_KV_SYNC_PHASE_DOWNLOAD == 1 && CHARM_KV_SYNC_PHASE_UPLOAD == 2);
}

static void test_set_get_delete(const char *dir) {
  charm_kv_store *store = open_store(dir, "basic");
  charm_kv_error *err = NULL;
  charm_kv_bytes value = {NULL, 0};

  CHECK_STATUS(charm_kv_store_set(store, SLICE("name"), SLICE("charm"), &err),
               CHARM_KV_STATUS_OK);
  CHECK(err == NULL);
  CHECK_STATUS(charm_kv_store_get(store, BYTES("name"), &value, &err),
               CHARM_KV_STATUS_OK);
  CHECK(bytes_eq(value.data, value.len, "charm"));
  charm_kv_bytes_free(&value);
  CHECK(value.data == NULL && value.len == 0);
  charm_kv_bytes_free(&value); /* twice is harmless */

  /* Overwrite, then delete (twice: deleting a missing key is fine). */
  CHECK_STATUS(charm_kv_store_set(store, SLICE("name"), SLICE("kv"), NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_get(store, BYTES("name"), &value, NULL),
               CHARM_KV_STATUS_OK);
  CHECK(bytes_eq(value.data, value.len, "kv"));
  charm_kv_bytes_free(&value);
  CHECK_STATUS(charm_kv_store_delete(store, BYTES("name"), &err), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_delete(store, BYTES("name"), &err), CHARM_KV_STATUS_OK);

  /* Missing key: NOT_FOUND with a message, and the output left untouched. */
  charm_kv_bytes sentinel = {(uint8_t *)&sentinel, 12345};
  CHECK_STATUS(charm_kv_store_get(store, BYTES("name"), &sentinel, &err),
               CHARM_KV_STATUS_NOT_FOUND);
  CHECK(sentinel.data == (uint8_t *)&sentinel && sentinel.len == 12345);
  CHECK_ERROR(err, CHARM_KV_STATUS_NOT_FOUND, "not found");

  CHECK_STATUS(charm_kv_store_close(store, NULL), CHARM_KV_STATUS_OK);
  charm_kv_store_free(store);
}

static void test_binary_and_empty_keys_and_values(const char *dir) {
  charm_kv_store *store = open_store(dir, "binary");
  const uint8_t key[] = {0x00, 0xff, 0x00, 0x80};
  const uint8_t val[] = {0x00, 0x00, 0xc3, 0x28, 0xff};
  charm_kv_bytes value = {NULL, 0};

  CHECK_STATUS(charm_kv_store_set(store, SLICE_OF(key, sizeof key), SLICE_OF(val, sizeof val), NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_get(store, key, sizeof key, &value, NULL),
               CHARM_KV_STATUS_OK);
  CHECK(value.len == sizeof val && memcmp(value.data, val, sizeof val) == 0);
  charm_kv_bytes_free(&value);

  /* An empty value comes back as {NULL, 0}; len 0 accepts a NULL pointer. */
  CHECK_STATUS(charm_kv_store_set(store, SLICE("empty"), SLICE_OF(NULL, 0), NULL),
               CHARM_KV_STATUS_OK);
  value.data = (uint8_t *)&value;
  value.len = 99;
  CHECK_STATUS(charm_kv_store_get(store, BYTES("empty"), &value, NULL),
               CHARM_KV_STATUS_OK);
  CHECK(value.data == NULL && value.len == 0);
  charm_kv_bytes_free(&value);

  /* The empty key is refused everywhere, with any pointer, as Charm's kv does. */
  charm_kv_error *err = NULL;
  CHECK_STATUS(charm_kv_store_set(store, SLICE_OF(NULL, 0), SLICE("empty key"), &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "key cannot be empty");
  CHECK_STATUS(charm_kv_store_get(store, (const uint8_t *)"ignored", 0, &value, &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "key cannot be empty");
  CHECK_STATUS(charm_kv_store_delete(store, NULL, 0, &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "key cannot be empty");
  {
    charm_kv_batch *empty_key_batch = NULL;
    CHECK_STATUS(charm_kv_batch_begin(store, &empty_key_batch, NULL),
                 CHARM_KV_STATUS_OK);
    CHECK_STATUS(charm_kv_batch_set(empty_key_batch, SLICE_OF(NULL, 0), SLICE("v"), &err),
                 CHARM_KV_STATUS_INVALID_ARGUMENT);
    CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "key cannot be empty");
    CHECK_STATUS(charm_kv_batch_delete(empty_key_batch, NULL, 0, &err),
                 CHARM_KV_STATUS_INVALID_ARGUMENT);
    CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "key cannot be empty");
    charm_kv_batch_free(empty_key_batch);
  }

  /* A large value. */
  size_t big_len = 3u << 20;
  uint8_t *big = malloc(big_len);
  for (size_t i = 0; i < big_len; i++) big[i] = (uint8_t)(i * 7);
  CHECK_STATUS(charm_kv_store_set(store, SLICE("big"), SLICE_OF(big, big_len), NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_get(store, BYTES("big"), &value, NULL),
               CHARM_KV_STATUS_OK);
  CHECK(value.len == big_len && memcmp(value.data, big, big_len) == 0);
  charm_kv_bytes_free(&value);
  free(big);
  charm_kv_store_free(store); /* free without close closes too */
}

static void test_get_into_caller_buffer(const char *dir) {
  charm_kv_store *store = open_store(dir, "into");
  charm_kv_error *err = NULL;
  uint8_t buf[8];
  /* Set up once, reused by every call. */
  charm_kv_value_buf out = {buf, sizeof buf, 777, {NULL, 0}};

  /* Fits: copied into buf, `large` stays empty. Exactly the capacity fits too. */
  CHECK_STATUS(charm_kv_store_set(store, SLICE("short"), SLICE("charm"), NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_get_into(store, BYTES("short"), &out, &err), CHARM_KV_STATUS_OK);
  CHECK(err == NULL);
  CHECK(out.len == 5 && bytes_eq(buf, out.len, "charm"));
  CHECK(out.large.data == NULL && out.large.len == 0);
  CHECK(out.data == buf && out.cap == sizeof buf); /* the caller's fields are kept */
  CHECK_STATUS(charm_kv_store_set(store, SLICE("eight"), SLICE("12345678"), NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_get_into(store, BYTES("eight"), &out, NULL), CHARM_KV_STATUS_OK);
  CHECK(out.len == 8 && bytes_eq(buf, out.len, "12345678") && out.large.data == NULL);

  /* One byte over: handed over as an owned value, buf untouched. */
  memset(buf, 0xAA, sizeof buf);
  CHECK_STATUS(charm_kv_store_set(store, SLICE("nine"), SLICE("123456789"), NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_get_into(store, BYTES("nine"), &out, NULL), CHARM_KV_STATUS_OK);
  CHECK(out.len == 9 && bytes_eq(out.large.data, out.large.len, "123456789"));
  CHECK(buf[0] == 0xAA && buf[7] == 0xAA);
  charm_kv_bytes_free(&out.large);

  /* No buffer at all (NULL, 0): every non-empty value comes back owned. */
  charm_kv_value_buf none = {NULL, 0, 0, {NULL, 0}};
  CHECK_STATUS(charm_kv_store_get_into(store, BYTES("short"), &none, NULL), CHARM_KV_STATUS_OK);
  CHECK(none.len == 5 && bytes_eq(none.large.data, none.large.len, "charm"));
  charm_kv_bytes_free(&none.large);

  /* An empty value fits any buffer, even none. */
  CHECK_STATUS(charm_kv_store_set(store, SLICE("empty"), SLICE_OF(NULL, 0), NULL), CHARM_KV_STATUS_OK);
  none.len = 777;
  CHECK_STATUS(charm_kv_store_get_into(store, BYTES("empty"), &none, NULL), CHARM_KV_STATUS_OK);
  CHECK(none.len == 0 && none.large.data == NULL && none.large.len == 0);

  /* Missing: NOT_FOUND, and like every failure the outputs are left as they were. */
  out.len = 777;
  CHECK_STATUS(charm_kv_store_get_into(store, BYTES("missing"), &out, &err),
               CHARM_KV_STATUS_NOT_FOUND);
  CHECK(out.len == 777 && out.large.data == NULL && out.large.len == 0);
  CHECK_ERROR(err, CHARM_KV_STATUS_NOT_FOUND, "not found");

  /* Bad arguments are refused with a message. */
  charm_kv_value_buf null_data = {NULL, 8, 0, {NULL, 0}};
  CHECK_STATUS(charm_kv_store_get_into(store, BYTES("short"), &null_data, &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "out->data is NULL");
  CHECK_STATUS(charm_kv_store_get_into(store, BYTES("short"), NULL, &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "out is NULL");
  CHECK_STATUS(charm_kv_store_get_into(NULL, BYTES("short"), &out, &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "store");

  CHECK_STATUS(charm_kv_store_close(store, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_get_into(store, BYTES("short"), &out, &err),
               CHARM_KV_STATUS_CLOSED);
  CHECK_ERROR(err, CHARM_KV_STATUS_CLOSED, NULL);
  charm_kv_store_free(store);
}

static void test_keys_are_listed_in_order(const char *dir) {
  charm_kv_store *store = open_store(dir, "keys");
  charm_kv_bytes_list keys = {(charm_kv_bytes *)&keys, 7};
  CHECK_STATUS(charm_kv_store_keys(store, &keys, NULL), CHARM_KV_STATUS_OK);
  CHECK(keys.items == NULL && keys.len == 0);
  charm_kv_bytes_list_free(&keys);

  const char *inserted[] = {"b", "a", "c", "ab", "\x01"};
  for (size_t i = 0; i < 5; i++) {
    CHECK_STATUS(charm_kv_store_set(store, SLICE(inserted[i]), SLICE("v"), NULL),
                 CHARM_KV_STATUS_OK);
  }
  const uint8_t high[] = {0xff};
  CHECK_STATUS(charm_kv_store_set(store, SLICE_OF(high, 1), SLICE("v"), NULL), CHARM_KV_STATUS_OK);

  CHECK_STATUS(charm_kv_store_keys(store, &keys, NULL), CHARM_KV_STATUS_OK);
  const char *expected[] = {"\x01", "a", "ab", "b", "c"};
  CHECK(keys.len == 6);
  if (keys.len == 6) {
    for (size_t i = 0; i < 5; i++) {
      CHECK(bytes_eq(keys.items[i].data, keys.items[i].len, expected[i]));
    }
    CHECK(keys.items[5].len == 1 && keys.items[5].data[0] == 0xff);
  }
  charm_kv_bytes_list_free(&keys);
  CHECK(keys.items == NULL && keys.len == 0);
  charm_kv_bytes_list_free(&keys);
  charm_kv_store_free(store);
}

/* Collects an iteration as "k=v," pairs. */
static void collect(charm_kv_iter *it, char *out, size_t cap, bool values) {
  out[0] = '\0';
  for (;;) {
    charm_kv_slice k = SLICE_OF(NULL, 0), v = SLICE_OF(NULL, 0);
    bool has = false;
    charm_kv_error *err = NULL;
    charm_kv_status status = charm_kv_iter_next(it, &k, values ? &v : NULL, &has, &err);
    CHECK_STATUS(status, CHARM_KV_STATUS_OK);
    CHECK(err == NULL);
    if (status != CHARM_KV_STATUS_OK || !has) break;
    size_t used = strlen(out);
    snprintf(out + used, cap - used, "%.*s=%.*s,", (int)k.len, (const char *)k.data,
             (int)v.len, v.data ? (const char *)v.data : "");
  }
}

static void test_iteration_both_ways(const char *dir) {
  charm_kv_store *store = open_store(dir, "iter");
  charm_kv_iter *it = NULL;
  char seen[256];

  CHECK_STATUS(charm_kv_iter_new(store, NULL, true, &it, NULL), CHARM_KV_STATUS_OK);
  collect(it, seen, sizeof seen, true);
  CHECK(strcmp(seen, "") == 0);
  charm_kv_iter_free(it);

  CHECK_STATUS(charm_kv_store_set(store, SLICE("b"), SLICE("2"), NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_set(store, SLICE("a"), SLICE("1"), NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_set(store, SLICE("c"), SLICE(""), NULL), CHARM_KV_STATUS_OK);

  CHECK_STATUS(charm_kv_iter_new(store, NULL, true, &it, NULL), CHARM_KV_STATUS_OK);
  collect(it, seen, sizeof seen, true);
  CHECK(strcmp(seen, "a=1,b=2,c=,") == 0);
  /* Past the end it keeps saying "no item", with empty slices. */
  charm_kv_slice k = SLICE("x"), v = SLICE("y");
  bool has = true;
  CHECK_STATUS(charm_kv_iter_next(it, &k, &v, &has, NULL), CHARM_KV_STATUS_OK);
  CHECK(!has && k.data == NULL && k.len == 0 && v.data == NULL && v.len == 0);
  charm_kv_iter_free(it);

  CHECK_STATUS(charm_kv_iter_new(store, &(charm_kv_range){.reverse = true}, true, &it, NULL), CHARM_KV_STATUS_OK);
  collect(it, seen, sizeof seen, true);
  CHECK(strcmp(seen, "c=,b=2,a=1,") == 0);
  charm_kv_iter_free(it);

  /* Keys only: values come back empty (and may be not asked for at all). */
  CHECK_STATUS(charm_kv_iter_new(store, &(charm_kv_range){.reverse = true}, false, &it, NULL), CHARM_KV_STATUS_OK);
  collect(it, seen, sizeof seen, true);
  CHECK(strcmp(seen, "c=,b=,a=,") == 0);
  charm_kv_iter_free(it);
  CHECK_STATUS(charm_kv_iter_new(store, NULL, true, &it, NULL), CHARM_KV_STATUS_OK);
  collect(it, seen, sizeof seen, false);
  CHECK(strcmp(seen, "a=,b=,c=,") == 0);
  charm_kv_iter_free(it);

  /* An iterator may be freed half-way. */
  CHECK_STATUS(charm_kv_iter_new(store, NULL, true, &it, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_iter_next(it, &k, NULL, &has, NULL), CHARM_KV_STATUS_OK);
  CHECK(has && bytes_eq(k.data, k.len, "a"));
  charm_kv_iter_free(it);
  charm_kv_store_free(store);
}

/* The keys of `range` as "k1,k2,": from charm_kv_store_keys_in, and checked to be
 * the same, in the same order, as a keys-only iteration over the range. */
static void keys_in(charm_kv_store *store, const charm_kv_range *range, char *out,
                    size_t cap) {
  out[0] = '\0';
  charm_kv_bytes_list keys = {NULL, 0};
  CHECK_STATUS(charm_kv_store_keys_in(store, range, &keys, NULL), CHARM_KV_STATUS_OK);
  for (size_t i = 0; i < keys.len; i++) {
    size_t used = strlen(out);
    snprintf(out + used, cap - used, "%.*s,", (int)keys.items[i].len,
             (const char *)keys.items[i].data);
  }
  charm_kv_bytes_list_free(&keys);

  char iterated[256], expected[256] = "";
  charm_kv_iter *it = NULL;
  CHECK_STATUS(charm_kv_iter_new(store, range, false, &it, NULL), CHARM_KV_STATUS_OK);
  collect(it, iterated, sizeof iterated, false);
  charm_kv_iter_free(it);
  /* collect writes "k=," per pair. */
  for (const char *p = out; *p != '\0'; p++) {
    size_t used = strlen(expected);
    if (*p == ',') snprintf(expected + used, sizeof expected - used, "=,");
    else snprintf(expected + used, sizeof expected - used, "%c", *p);
  }
  CHECK(strcmp(iterated, expected) == 0);
}

static void test_prefix_and_seek(const char *dir) {
  charm_kv_store *store = open_store(dir, "range");
  const char *keys[] = {"a", "app", "apple", "apply", "apt", "b", "ba"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    CHECK_STATUS(charm_kv_store_set(store, SLICE(keys[i]), SLICE("v"), NULL),
                 CHARM_KV_STATUS_OK);
  }
  char seen[256];

  /* NULL, a zeroed range and an empty prefix (any pointer) are every key. */
  keys_in(store, NULL, seen, sizeof seen);
  CHECK(strcmp(seen, "a,app,apple,apply,apt,b,ba,") == 0);
  keys_in(store, &(charm_kv_range){0}, seen, sizeof seen);
  CHECK(strcmp(seen, "a,app,apple,apply,apt,b,ba,") == 0);
  keys_in(store, &(charm_kv_range){.prefix = SLICE_OF("zzz", 0)}, seen, sizeof seen);
  CHECK(strcmp(seen, "a,app,apple,apply,apt,b,ba,") == 0);

  /* A prefix, both ways; a prefix nothing has; a prefix equal to a key. */
  keys_in(store, &(charm_kv_range){.prefix = SLICE("app")}, seen, sizeof seen);
  CHECK(strcmp(seen, "app,apple,apply,") == 0);
  keys_in(store, &(charm_kv_range){.prefix = SLICE("app"), .reverse = true}, seen,
          sizeof seen);
  CHECK(strcmp(seen, "apply,apple,app,") == 0);
  keys_in(store, &(charm_kv_range){.prefix = SLICE("c")}, seen, sizeof seen);
  CHECK(strcmp(seen, "") == 0);
  keys_in(store, &(charm_kv_range){.prefix = SLICE("b")}, seen, sizeof seen);
  CHECK(strcmp(seen, "b,ba,") == 0);

  /* Seek: forward from the key or the next larger one, reverse from the key or the
   * next smaller one. */
  keys_in(store, &(charm_kv_range){.start = SLICE("apple")}, seen, sizeof seen);
  CHECK(strcmp(seen, "apple,apply,apt,b,ba,") == 0);
  keys_in(store, &(charm_kv_range){.start = SLICE("applf")}, seen, sizeof seen);
  CHECK(strcmp(seen, "apply,apt,b,ba,") == 0);
  keys_in(store, &(charm_kv_range){.start = SLICE("applf"), .reverse = true}, seen,
          sizeof seen);
  CHECK(strcmp(seen, "apple,app,a,") == 0);
  keys_in(store, &(charm_kv_range){.start = SLICE("zz")}, seen, sizeof seen);
  CHECK(strcmp(seen, "") == 0);

  /* Prefix and seek together: the seek stays within the prefix. */
  keys_in(store, &(charm_kv_range){.prefix = SLICE("ap"), .start = SLICE("apple")}, seen,
          sizeof seen);
  CHECK(strcmp(seen, "apple,apply,apt,") == 0);
  keys_in(store,
          &(charm_kv_range){.prefix = SLICE("ap"), .start = SLICE("apple"), .reverse = true},
          seen, sizeof seen);
  CHECK(strcmp(seen, "apple,app,") == 0);
  keys_in(store, &(charm_kv_range){.prefix = SLICE("ap"), .start = SLICE("b")}, seen,
          sizeof seen);
  CHECK(strcmp(seen, "") == 0);
  keys_in(store, &(charm_kv_range){.prefix = SLICE("ap"), .start = SLICE("b"), .reverse = true},
          seen, sizeof seen);
  CHECK(strcmp(seen, "apt,apply,apple,app,") == 0);

  /* A write after a listing is seen by the next one; values come with a range too. */
  CHECK_STATUS(charm_kv_store_set(store, SLICE("apricot"), SLICE("1"), NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_delete(store, BYTES("apple"), NULL), CHARM_KV_STATUS_OK);
  keys_in(store, &(charm_kv_range){.prefix = SLICE("ap")}, seen, sizeof seen);
  CHECK(strcmp(seen, "app,apply,apricot,apt,") == 0);
  charm_kv_iter *it = NULL;
  CHECK_STATUS(charm_kv_iter_new(store, &(charm_kv_range){.prefix = SLICE("apr")}, true,
                                 &it, NULL),
               CHARM_KV_STATUS_OK);
  collect(it, seen, sizeof seen, true);
  CHECK(strcmp(seen, "apricot=1,") == 0);
  charm_kv_iter_free(it);
  charm_kv_store_free(store);
}

static void test_export_and_import_as_json_lines(const char *dir) {
  charm_kv_store *store = open_store(dir, "export");
  CHECK_STATUS(charm_kv_store_set(store, SLICE("b"), SLICE("text"), NULL), CHARM_KV_STATUS_OK);
  /* A key that is not UTF-8 is base64; control characters are JSON escapes. */
  CHECK_STATUS(charm_kv_store_set(store, SLICE("a\xff"), SLICE_OF("\0\1", 2), NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_set(store, SLICE("c"), SLICE(""), NULL), CHARM_KV_STATUS_OK);

  charm_kv_bytes text = {NULL, 0};
  CHECK_STATUS(charm_kv_store_export_jsonl(store, NULL, &text, NULL), CHARM_KV_STATUS_OK);
  const char *expected =
      "{\"key\":\"Yf8=\",\"value\":\"\\u0000\\u0001\",\"key_base64\":true,\"value_base64\":false}\n"
      "{\"key\":\"b\",\"value\":\"text\",\"key_base64\":false,\"value_base64\":false}\n"
      "{\"key\":\"c\",\"value\":\"\",\"key_base64\":false,\"value_base64\":false}\n";
  CHECK(bytes_eq(text.data, text.len, expected));

  /* A range: by prefix. */
  charm_kv_bytes part = {NULL, 0};
  CHECK_STATUS(
      charm_kv_store_export_jsonl(store, &(charm_kv_range){.prefix = SLICE("b")}, &part, NULL),
      CHARM_KV_STATUS_OK);
  CHECK(bytes_eq(part.data, part.len,
                 "{\"key\":\"b\",\"value\":\"text\",\"key_base64\":false,\"value_base64\":false}\n"));
  charm_kv_bytes_free(&part);

  /* Into another database, replacing what it had; the round trip is exact. */
  charm_kv_store *copy = open_store(dir, "import");
  CHECK_STATUS(charm_kv_store_set(copy, SLICE("old"), SLICE("x"), NULL), CHARM_KV_STATUS_OK);
  uint64_t count = 0;
  CHECK_STATUS(charm_kv_store_import_jsonl(copy, SLICE_OF(text.data, text.len), true, &count,
                                           NULL),
               CHARM_KV_STATUS_OK);
  CHECK(count == 3);
  charm_kv_bytes again = {NULL, 0};
  CHECK_STATUS(charm_kv_store_export_jsonl(copy, NULL, &again, NULL), CHARM_KV_STATUS_OK);
  CHECK(again.len == text.len && memcmp(again.data, text.data, text.len) == 0);
  charm_kv_bytes_free(&again);
  charm_kv_bytes_free(&text);

  /* A malformed line changes nothing and is named; flags may be left out. */
  charm_kv_error *err = NULL;
  count = 99;
  CHECK_STATUS(charm_kv_store_import_jsonl(copy,
                                           SLICE("{\"key\":\"n\",\"value\":\"1\"}\n\n"
                                                 "{\"key\":\"\",\"value\":\"2\"}\n"),
                                           false, &count, &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "line 3: key cannot be empty");
  CHECK(count == 99);
  charm_kv_bytes value = {NULL, 0};
  CHECK_STATUS(charm_kv_store_get(copy, BYTES("n"), &value, NULL), CHARM_KV_STATUS_NOT_FOUND);
  CHECK_STATUS(charm_kv_store_import_jsonl(copy, SLICE("{\"key\":\"n\",\"value\":\"1\"}"),
                                           false, &count, NULL),
               CHARM_KV_STATUS_OK);
  CHECK(count == 1);
  CHECK_STATUS(charm_kv_store_get(copy, BYTES("n"), &value, NULL), CHARM_KV_STATUS_OK);
  CHECK(bytes_eq(value.data, value.len, "1"));
  charm_kv_bytes_free(&value);

  /* Bad arguments. */
  CHECK_STATUS(charm_kv_store_import_jsonl(copy, SLICE_OF(NULL, 2), false, &count, &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "text is NULL but its length is 2");
  CHECK_STATUS(charm_kv_store_import_jsonl(copy, SLICE(""), false, NULL, &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "out_count is NULL");
  CHECK_STATUS(charm_kv_store_export_jsonl(copy, NULL, NULL, &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "out_text is NULL");
  CHECK_STATUS(charm_kv_store_export_jsonl(NULL, NULL, &text, &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "store is NULL");
  charm_kv_store_free(copy);
  charm_kv_store_free(store);
}

/* Expiry with absolute times: one in the past (gone at once) and the end of the year
 * 9999 (there, with a TTL close to what is left), so nothing waits on a clock. */
static void test_expiry_with_ttls_and_absolute_times(const char *dir) {
  const int64_t far = 253402300799999; /* the latest expiry accepted */
  charm_kv_store *store = open_store(dir, "expiry");
  charm_kv_error *err = NULL;
  charm_kv_bytes value = {NULL, 0};
  int64_t ms = 0;

  CHECK_STATUS(charm_kv_store_set_with_ttl(store, SLICE("session"), SLICE("abc"), 600000, &err),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_ttl(store, BYTES("session"), &ms, NULL), CHARM_KV_STATUS_OK);
  CHECK(ms > 590000 && ms <= 600000);
  CHECK_STATUS(charm_kv_store_get(store, BYTES("session"), &value, NULL), CHARM_KV_STATUS_OK);
  CHECK(bytes_eq(value.data, value.len, "abc"));
  charm_kv_bytes_free(&value);

  /* No expiry: -1 and 0; missing: NOT_FOUND. */
  CHECK_STATUS(charm_kv_store_set(store, SLICE("plain"), SLICE("p"), NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_ttl(store, BYTES("plain"), &ms, NULL), CHARM_KV_STATUS_OK);
  CHECK(ms == -1);
  CHECK_STATUS(charm_kv_store_expires_at(store, BYTES("plain"), &ms, NULL), CHARM_KV_STATUS_OK);
  CHECK(ms == 0);
  CHECK_STATUS(charm_kv_store_ttl(store, BYTES("nothing"), &ms, &err),
               CHARM_KV_STATUS_NOT_FOUND);
  CHECK_ERROR(err, CHARM_KV_STATUS_NOT_FOUND, "not found");
  CHECK_STATUS(charm_kv_store_persist(store, BYTES("plain"), NULL), CHARM_KV_STATUS_OK);

  /* Far in the future: visible, and exported with its expiry. */
  CHECK_STATUS(charm_kv_store_expire_at(store, BYTES("plain"), far, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_expires_at(store, BYTES("plain"), &ms, NULL), CHARM_KV_STATUS_OK);
  CHECK(ms == far);
  CHECK_STATUS(charm_kv_store_persist(store, BYTES("plain"), NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_ttl(store, BYTES("plain"), &ms, NULL), CHARM_KV_STATUS_OK);
  CHECK(ms == -1);
  CHECK_STATUS(charm_kv_store_expire(store, BYTES("plain"), 60000, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_ttl(store, BYTES("plain"), &ms, NULL), CHARM_KV_STATUS_OK);
  CHECK(ms > 50000 && ms <= 60000);
  CHECK_STATUS(charm_kv_store_set_expiring_at(store, SLICE("kept"), SLICE("k"), far, NULL),
               CHARM_KV_STATUS_OK);
  charm_kv_bytes text = {NULL, 0};
  CHECK_STATUS(charm_kv_store_export_jsonl(
                   store, &(charm_kv_range){.prefix = SLICE("kept")}, &text, NULL),
               CHARM_KV_STATUS_OK);
  CHECK(bytes_eq(text.data, text.len,
                 "{\"key\":\"kept\",\"value\":\"k\",\"key_base64\":false,\"value_base64\":false,"
                 "\"expires_at_unix_ms\":253402300799999}\n"));
  charm_kv_bytes_free(&text);

  /* In the past: gone from get, keys and iteration at once. */
  CHECK_STATUS(charm_kv_store_set_expiring_at(store, SLICE("old"), SLICE("o"), 1000, NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_get(store, BYTES("old"), &value, NULL), CHARM_KV_STATUS_NOT_FOUND);
  CHECK_STATUS(charm_kv_store_expire_at(store, BYTES("session"), 1, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_get(store, BYTES("session"), &value, NULL),
               CHARM_KV_STATUS_NOT_FOUND);
  charm_kv_bytes_list keys = {NULL, 0};
  CHECK_STATUS(charm_kv_store_keys(store, &keys, NULL), CHARM_KV_STATUS_OK);
  CHECK(keys.len == 2);
  charm_kv_bytes_list_free(&keys);
  CHECK_STATUS(charm_kv_store_expire(store, BYTES("session"), 1000, &err),
               CHARM_KV_STATUS_NOT_FOUND);
  CHECK_ERROR(err, CHARM_KV_STATUS_NOT_FOUND, NULL);
  CHECK_STATUS(charm_kv_store_persist(store, BYTES("session"), &err), CHARM_KV_STATUS_NOT_FOUND);
  CHECK_ERROR(err, CHARM_KV_STATUS_NOT_FOUND, NULL);

  /* Batches. */
  charm_kv_batch *batch = NULL;
  CHECK_STATUS(charm_kv_batch_begin(store, &batch, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_batch_set_with_ttl(batch, SLICE("b1"), SLICE("1"), 600000, NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_batch_set_expiring_at(batch, SLICE("b2"), SLICE("2"), 5, NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_batch_set_with_ttl(batch, SLICE("b3"), SLICE("3"), 0, &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "TTL must be positive");
  CHECK_STATUS(charm_kv_batch_set_expiring_at(batch, SLICE("b3"), SLICE("3"), far + 1, &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "9999");
  CHECK_STATUS(charm_kv_batch_commit(batch, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_ttl(store, BYTES("b1"), &ms, NULL), CHARM_KV_STATUS_OK);
  CHECK(ms > 590000 && ms <= 600000);
  CHECK_STATUS(charm_kv_store_get(store, BYTES("b2"), &value, NULL), CHARM_KV_STATUS_NOT_FOUND);
  CHECK_STATUS(charm_kv_store_get(store, BYTES("b3"), &value, NULL), CHARM_KV_STATUS_NOT_FOUND);

  /* Bad TTLs and times, and NULL outputs. */
  const int64_t bad_ttls[] = {0, -1, INT64_MIN, INT64_MAX};
  for (size_t i = 0; i < sizeof bad_ttls / sizeof bad_ttls[0]; i++) {
    CHECK_STATUS(charm_kv_store_set_with_ttl(store, SLICE("x"), SLICE("v"), bad_ttls[i], NULL),
                 CHARM_KV_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(charm_kv_store_expire(store, BYTES("kept"), bad_ttls[i], NULL),
                 CHARM_KV_STATUS_INVALID_ARGUMENT);
  }
  const int64_t bad_times[] = {0, -1, INT64_MIN, far + 1, INT64_MAX};
  for (size_t i = 0; i < sizeof bad_times / sizeof bad_times[0]; i++) {
    CHECK_STATUS(charm_kv_store_set_expiring_at(store, SLICE("x"), SLICE("v"), bad_times[i], NULL),
                 CHARM_KV_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(charm_kv_store_expire_at(store, BYTES("kept"), bad_times[i], NULL),
                 CHARM_KV_STATUS_INVALID_ARGUMENT);
  }
  CHECK_STATUS(charm_kv_store_get(store, BYTES("x"), &value, NULL), CHARM_KV_STATUS_NOT_FOUND);
  CHECK_STATUS(charm_kv_store_expires_at(store, BYTES("kept"), &ms, NULL), CHARM_KV_STATUS_OK);
  CHECK(ms == far);
  CHECK_STATUS(charm_kv_store_ttl(store, BYTES("kept"), NULL, &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "out_ttl_ms is NULL");
  CHECK_STATUS(charm_kv_store_expires_at(store, NULL, 0, &ms, &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "key cannot be empty");
  CHECK_STATUS(charm_kv_store_persist(NULL, BYTES("kept"), &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "store is NULL");
  charm_kv_store_free(store);
}

static void test_iteration_sees_one_snapshot_while_writing(const char *dir) {
  charm_kv_store *store = open_store(dir, "snapshot");
  for (int i = 0; i < 10; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%d", i);
    CHECK_STATUS(charm_kv_store_set(store, SLICE(key), SLICE("old"), NULL),
                 CHARM_KV_STATUS_OK);
  }
  charm_kv_iter *it = NULL;
  CHECK_STATUS(charm_kv_iter_new(store, NULL, true, &it, NULL), CHARM_KV_STATUS_OK);
  int count = 0;
  for (;;) {
    charm_kv_slice k, v;
    bool has;
    CHECK_STATUS(charm_kv_iter_next(it, &k, &v, &has, NULL), CHARM_KV_STATUS_OK);
    if (!has) break;
    CHECK(bytes_eq(v.data, v.len, "old"));
    count++;
    /* Writes between steps: overwrite, delete, add. */
    CHECK_STATUS(charm_kv_store_set(store, SLICE("k9"), SLICE("new"), NULL),
                 CHARM_KV_STATUS_OK);
    CHECK_STATUS(charm_kv_store_delete(store, BYTES("k5"), NULL), CHARM_KV_STATUS_OK);
    CHECK_STATUS(charm_kv_store_set(store, SLICE("z-added"), SLICE("new"), NULL),
                 CHARM_KV_STATUS_OK);
  }
  CHECK(count == 10);
  charm_kv_iter_free(it);
  charm_kv_bytes value;
  CHECK_STATUS(charm_kv_store_get(store, BYTES("k9"), &value, NULL), CHARM_KV_STATUS_OK);
  CHECK(bytes_eq(value.data, value.len, "new"));
  charm_kv_bytes_free(&value);
  charm_kv_store_free(store);
}

static void test_batch_commit_rollback_and_get(const char *dir) {
  charm_kv_store *store = open_store(dir, "batch");
  charm_kv_error *err = NULL;
  charm_kv_bytes value;
  CHECK_STATUS(charm_kv_store_set(store, SLICE("kept"), SLICE("1"), NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_set(store, SLICE("gone"), SLICE("1"), NULL), CHARM_KV_STATUS_OK);

  charm_kv_batch *batch = NULL;
  CHECK_STATUS(charm_kv_batch_begin(store, &batch, &err), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_batch_set(batch, SLICE("a"), SLICE("A"), &err), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_batch_set(batch, SLICE("b"), SLICE("B0"), &err), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_batch_set(batch, SLICE("b"), SLICE("B"), &err), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_batch_delete(batch, BYTES("gone"), &err), CHARM_KV_STATUS_OK);

  /* The batch sees its own changes, then the database. */
  CHECK_STATUS(charm_kv_batch_get(batch, BYTES("b"), &value, &err), CHARM_KV_STATUS_OK);
  CHECK(bytes_eq(value.data, value.len, "B"));
  charm_kv_bytes_free(&value);
  CHECK_STATUS(charm_kv_batch_get(batch, BYTES("kept"), &value, &err), CHARM_KV_STATUS_OK);
  CHECK(bytes_eq(value.data, value.len, "1"));
  charm_kv_bytes_free(&value);
  CHECK_STATUS(charm_kv_batch_get(batch, BYTES("gone"), &value, &err),
               CHARM_KV_STATUS_NOT_FOUND);
  CHECK_ERROR(err, CHARM_KV_STATUS_NOT_FOUND, NULL);
  /* ...and the store does not see them before the commit. */
  CHECK_STATUS(charm_kv_store_get(store, BYTES("a"), &value, NULL), CHARM_KV_STATUS_NOT_FOUND);

  CHECK_STATUS(charm_kv_batch_commit(batch, &err), CHARM_KV_STATUS_OK);
  CHECK(err == NULL);
  CHECK_STATUS(charm_kv_store_get(store, BYTES("a"), &value, NULL), CHARM_KV_STATUS_OK);
  CHECK(bytes_eq(value.data, value.len, "A"));
  charm_kv_bytes_free(&value);
  CHECK_STATUS(charm_kv_store_get(store, BYTES("gone"), &value, NULL), CHARM_KV_STATUS_NOT_FOUND);

  /* Rollback and free both discard. */
  CHECK_STATUS(charm_kv_batch_begin(store, &batch, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_batch_set(batch, SLICE("r"), SLICE("x"), NULL), CHARM_KV_STATUS_OK);
  charm_kv_batch_rollback(batch);
  CHECK_STATUS(charm_kv_batch_begin(store, &batch, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_batch_set(batch, SLICE("f"), SLICE("x"), NULL), CHARM_KV_STATUS_OK);
  charm_kv_batch_free(batch);
  CHECK_STATUS(charm_kv_store_get(store, BYTES("r"), &value, NULL), CHARM_KV_STATUS_NOT_FOUND);
  CHECK_STATUS(charm_kv_store_get(store, BYTES("f"), &value, NULL), CHARM_KV_STATUS_NOT_FOUND);

  /* An empty batch commits fine; a failed commit writes nothing and frees the batch. */
  CHECK_STATUS(charm_kv_batch_begin(store, &batch, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_batch_commit(batch, NULL), CHARM_KV_STATUS_OK);
  size_t huge_len = 70000;
  uint8_t *huge_key = calloc(1, huge_len);
  CHECK_STATUS(charm_kv_batch_begin(store, &batch, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_batch_set(batch, SLICE("ok"), SLICE("x"), NULL), CHARM_KV_STATUS_OK);
  /* An oversized key is refused by the set itself, before it is copied. */
  CHECK_STATUS(charm_kv_batch_set(batch, SLICE_OF(huge_key, huge_len), SLICE("x"), &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "key");
  charm_kv_batch_rollback(batch);
  CHECK_STATUS(charm_kv_store_get(store, BYTES("ok"), &value, NULL), CHARM_KV_STATUS_NOT_FOUND);
  free(huge_key);
  charm_kv_store_free(store);
}

struct progress_calls {
  int calls;
};

static void on_progress(void *userdata, uint32_t phase, uint64_t done,
                        uint64_t total) {
  (void)phase;
  (void)done;
  (void)total;
  ((struct progress_calls *)userdata)->calls++;
}

static void test_sync_reset_and_pending_in_local_mode(const char *dir) {
  charm_kv_store *store = open_store(dir, "local");
  charm_kv_error *err = NULL;
  uint64_t pending = 99;
  CHECK_STATUS(charm_kv_store_pending_writes(store, &pending, &err), CHARM_KV_STATUS_OK);
  CHECK(pending == 0);
  CHECK_STATUS(charm_kv_store_set(store, SLICE("a"), SLICE("1"), NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_set(store, SLICE("b"), SLICE("2"), NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_pending_writes(store, &pending, &err), CHARM_KV_STATUS_OK);
  CHECK(pending >= 1);

  struct progress_calls progress = {0};
  CHECK_STATUS(charm_kv_store_sync(store, on_progress, &progress, &err),
               CHARM_KV_STATUS_NOT_CONFIGURED);
  CHECK_ERROR(err, CHARM_KV_STATUS_NOT_CONFIGURED, "CHARM_HOST");
  CHECK(progress.calls == 0);
  CHECK_STATUS(charm_kv_store_sync(store, NULL, NULL, NULL), CHARM_KV_STATUS_NOT_CONFIGURED);
  CHECK_STATUS(charm_kv_store_reset(store, false, &err), CHARM_KV_STATUS_NOT_CONFIGURED);
  CHECK_ERROR(err, CHARM_KV_STATUS_NOT_CONFIGURED, NULL);
  CHECK_STATUS(charm_kv_store_reset(store, true, NULL), CHARM_KV_STATUS_NOT_CONFIGURED);
  charm_kv_store_free(store);
}

static void test_backup_can_be_opened_as_a_database(const char *dir) {
  charm_kv_store *store = open_store(dir, "orig");
  charm_kv_error *err = NULL;
  CHECK_STATUS(charm_kv_store_set(store, SLICE("k"), SLICE("v"), NULL), CHARM_KV_STATUS_OK);

  /* Into another data dir's kv folder, where it is a database named "copy". */
  char other[1024], kv[2048], dest[3072];
  snprintf(other, sizeof other, "%s/other", dir);
  snprintf(kv, sizeof kv, "%s/localhost", other);
  mkdir(other, 0700);
  mkdir(kv, 0700);
  snprintf(kv, sizeof kv, "%s/localhost/kv", other);
  mkdir(kv, 0700);
  snprintf(dest, sizeof dest, "%s/copy.sqlite", kv);
  CHECK_STATUS(charm_kv_store_backup_to(store, dest, &err), CHARM_KV_STATUS_OK);
  CHECK(path_exists(dest));
  /* Never over an existing file. */
  CHECK_STATUS(charm_kv_store_backup_to(store, dest, &err), CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "exists");
  charm_kv_store_free(store);

  charm_kv_store *copy = open_store(other, "copy");
  charm_kv_bytes value;
  CHECK_STATUS(charm_kv_store_get(copy, BYTES("k"), &value, NULL), CHARM_KV_STATUS_OK);
  CHECK(bytes_eq(value.data, value.len, "v"));
  charm_kv_bytes_free(&value);
  charm_kv_store_free(copy);
}

static void test_list_and_delete_databases(const char *dir) {
  charm_kv_options *options = test_options(dir);
  charm_kv_string_list names = {NULL, 0};
  charm_kv_error *err = NULL;

  CHECK_STATUS(charm_kv_database_list(options, &names, &err), CHARM_KV_STATUS_OK);
  CHECK(names.items == NULL && names.len == 0);

  const char *dbs[] = {"zeta", "alpha", "mid.dle"};
  for (size_t i = 0; i < 3; i++) {
    charm_kv_store *store = NULL;
    CHECK_STATUS(charm_kv_store_open(dbs[i], options, &store, &err), CHARM_KV_STATUS_OK);
    charm_kv_store_free(store);
  }
  CHECK_STATUS(charm_kv_database_list(options, &names, &err), CHARM_KV_STATUS_OK);
  CHECK(names.len == 3);
  if (names.len == 3) {
    CHECK(strcmp(names.items[0], "alpha") == 0);
    CHECK(strcmp(names.items[1], "mid.dle") == 0);
    CHECK(strcmp(names.items[2], "zeta") == 0);
  }
  charm_kv_string_list_free(&names);
  CHECK(names.items == NULL && names.len == 0);
  charm_kv_string_list_free(&names);

  /* Not while a store has it open (its writes would go into a deleted file). */
  charm_kv_store *held = NULL;
  CHECK_STATUS(charm_kv_store_open("mid.dle", options, &held, &err), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_database_delete(options, "mid.dle", &err), CHARM_KV_STATUS_BUSY);
  CHECK_ERROR(err, CHARM_KV_STATUS_BUSY, "is open");
  charm_kv_store_free(held);
  CHECK_STATUS(charm_kv_database_delete(options, "mid.dle", &err), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_database_delete(options, "mid.dle", &err),
               CHARM_KV_STATUS_NOT_FOUND);
  CHECK_ERROR(err, CHARM_KV_STATUS_NOT_FOUND, NULL);
  CHECK_STATUS(charm_kv_database_list(options, &names, NULL), CHARM_KV_STATUS_OK);
  CHECK(names.len == 2);
  charm_kv_string_list_free(&names);
  charm_kv_options_free(options);
}

static void test_options_borrowed_and_from_env(const char *dir) {
  /* Options are borrowed: one object opens several stores, and freeing it early
   * leaves them working. */
  charm_kv_options *options = test_options(dir);
  charm_kv_store *one = NULL, *two = NULL;
  CHECK_STATUS(charm_kv_store_open("one", options, &one, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_open("two", options, &two, NULL), CHARM_KV_STATUS_OK);
  charm_kv_options_free(options);
  CHECK_STATUS(charm_kv_store_set(one, SLICE("k"), SLICE("1"), NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_set(two, SLICE("k"), SLICE("2"), NULL), CHARM_KV_STATUS_OK);
  charm_kv_store_free(one);
  charm_kv_store_free(two);

  /* NULL options read the CHARM_* environment. */
  setenv("CHARM_DATA_DIR", dir, 1);
  charm_kv_string_list names = {NULL, 0};
  CHECK_STATUS(charm_kv_database_list(NULL, &names, NULL), CHARM_KV_STATUS_OK);
  CHECK(names.len == 2);
  charm_kv_string_list_free(&names);
  CHECK_STATUS(charm_kv_options_from_env(&options, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_encrypt_key(options, BYTES(TEST_KEY), NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_open("one", options, &one, NULL), CHARM_KV_STATUS_OK);
  charm_kv_bytes value;
  CHECK_STATUS(charm_kv_store_get(one, BYTES("k"), &value, NULL), CHARM_KV_STATUS_OK);
  CHECK(bytes_eq(value.data, value.len, "1"));
  charm_kv_bytes_free(&value);
  charm_kv_store_free(one);
  charm_kv_options_free(options);

  /* A malformed variable is an error, from both entry points. */
  charm_kv_error *err = NULL;
  setenv("CHARM_SSH_PORT", "not-a-port", 1);
  options = (charm_kv_options *)&value; /* untouched on failure */
  CHECK_STATUS(charm_kv_options_from_env(&options, &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK(options == (charm_kv_options *)&value);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "CHARM_SSH_PORT");
  CHECK_STATUS(charm_kv_store_open("one", NULL, &one, &err), CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "CHARM_SSH_PORT");
  unsetenv("CHARM_SSH_PORT");
  unsetenv("CHARM_DATA_DIR");
}

/* The default path: options from the environment (NULL), keys from the local Charm
 * account, which the first open creates (identity and encrypt key, 0600). */
static void test_open_with_environment_and_local_keyring(const char *dir) {
  setenv("CHARM_DATA_DIR", dir, 1);
  unsetenv("CHARM_HOST");
  charm_kv_store *store = NULL;
  charm_kv_error *err = NULL;
  CHECK_STATUS(charm_kv_store_open("env", NULL, &store, &err), CHARM_KV_STATUS_OK);
  if (err != NULL) fprintf(stderr, "    %s\n", charm_kv_error_message(err));
  charm_kv_error_free(err);
  CHECK_STATUS(charm_kv_store_set(store, SLICE("k"), SLICE("v"), NULL), CHARM_KV_STATUS_OK);
  charm_kv_store_free(store);
  char path[4096];
  snprintf(path, sizeof path, "%s/localhost/charm-kv/env.sqlite", dir);
  CHECK(path_exists(path));

  /* Reopened (same account key) it reads back; an explicit other key does not. */
  CHECK_STATUS(charm_kv_store_open("env", NULL, &store, NULL), CHARM_KV_STATUS_OK);
  charm_kv_bytes value;
  CHECK_STATUS(charm_kv_store_get(store, BYTES("k"), &value, NULL), CHARM_KV_STATUS_OK);
  CHECK(bytes_eq(value.data, value.len, "v"));
  charm_kv_bytes_free(&value);
  charm_kv_store_free(store);
  charm_kv_options *options = test_options(dir);
  CHECK_STATUS(charm_kv_store_open("env", options, &store, &err), CHARM_KV_STATUS_KEYS);
  CHECK_ERROR(err, CHARM_KV_STATUS_KEYS, NULL);
  charm_kv_options_free(options);
  unsetenv("CHARM_DATA_DIR");
}

static void test_option_setters(const char *dir) {
  charm_kv_options *options = NULL;
  charm_kv_error *err = NULL;
  CHECK_STATUS(charm_kv_options_new(&options, &err), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_data_dir(options, dir, &err), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_host(options, "charm.example.com", &err),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_host(options, NULL, &err), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_host(options, "", &err), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_ssh_port(options, 2222, &err), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_http_port(options, 8080, &err), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_identity_key(options, "/nonexistent/id", &err),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_key_type(options, "rsa", &err), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_key_type(options, "ed25519", &err),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_local(options, true, &err), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_auto_push(options, false, &err), CHARM_KV_STATUS_OK);
  CHECK(err == NULL);

  /* A host with local mode keeps the data under that host and never syncs. */
  CHECK_STATUS(charm_kv_options_set_host(options, "charm.example.com", &err),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_encrypt_key(options, BYTES(TEST_KEY), &err),
               CHARM_KV_STATUS_OK);
  charm_kv_store *store = NULL;
  CHECK_STATUS(charm_kv_store_open("hosted", options, &store, &err), CHARM_KV_STATUS_OK);
  char path[4096];
  snprintf(path, sizeof path, "%s/charm.example.com/charm-kv/hosted.sqlite", dir);
  CHECK(path_exists(path));
  CHECK_STATUS(charm_kv_store_sync(store, NULL, NULL, &err), CHARM_KV_STATUS_NOT_CONFIGURED);
  CHECK_ERROR(err, CHARM_KV_STATUS_NOT_CONFIGURED, NULL);
  charm_kv_store_free(store);
  charm_kv_options_free(options);
}

static void test_encrypt_keys(const char *dir) {
  charm_kv_store *store = open_store(dir, "keyed");
  CHECK_STATUS(charm_kv_store_set(store, SLICE("k"), SLICE("v"), NULL), CHARM_KV_STATUS_OK);
  charm_kv_store_free(store);

  /* Another key does not open it. */
  charm_kv_options *options = NULL;
  charm_kv_error *err = NULL;
  CHECK_STATUS(charm_kv_options_new(&options, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_data_dir(options, dir, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_encrypt_key(options, BYTES(OTHER_KEY), NULL),
               CHARM_KV_STATUS_OK);
  store = NULL;
  CHECK_STATUS(charm_kv_store_open("keyed", options, &store, &err), CHARM_KV_STATUS_KEYS);
  CHECK(store == NULL);
  CHECK_ERROR(err, CHARM_KV_STATUS_KEYS, NULL);

  /* Too short a key is refused, and leaves the options as they were. */
  CHECK_STATUS(charm_kv_options_set_encrypt_key(options, BYTES("short"), &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "32");
  CHECK_STATUS(charm_kv_options_add_encrypt_key(options, BYTES("short"), &err),
               CHARM_KV_STATUS_INVALID_ARGUMENT);
  CHECK_ERROR(err, CHARM_KV_STATUS_INVALID_ARGUMENT, "32");
  CHECK_STATUS(charm_kv_store_open("keyed", options, &store, &err), CHARM_KV_STATUS_KEYS);
  CHECK_ERROR(err, CHARM_KV_STATUS_KEYS, NULL);

  /* Setting replaces: the right key alone opens it again. */
  CHECK_STATUS(charm_kv_options_set_encrypt_key(options, BYTES(TEST_KEY), NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_open("keyed", options, &store, &err), CHARM_KV_STATUS_OK);
  charm_kv_store_free(store);

  /* Rotation: a new first key plus the old one, added, still opens and reads it. */
  CHECK_STATUS(charm_kv_options_set_encrypt_key(options, BYTES(OTHER_KEY), NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_add_encrypt_key(options, BYTES(TEST_KEY), NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_open("keyed", options, &store, &err), CHARM_KV_STATUS_OK);
  charm_kv_bytes value;
  CHECK_STATUS(charm_kv_store_get(store, BYTES("k"), &value, NULL), CHARM_KV_STATUS_OK);
  CHECK(bytes_eq(value.data, value.len, "v"));
  charm_kv_bytes_free(&value);
  charm_kv_store_free(store);
  /* add_encrypt_key on options without keys starts the list. */
  charm_kv_options_free(options);
  CHECK_STATUS(charm_kv_options_new(&options, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_data_dir(options, dir, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_add_encrypt_key(options, BYTES(TEST_KEY), NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_open("keyed", options, &store, &err), CHARM_KV_STATUS_OK);
  charm_kv_store_free(store);
  charm_kv_options_free(options);
}

static void test_status_of_a_local_database(const char *dir) {
  charm_kv_store *store = open_store(dir, "status");
  charm_kv_error *err = NULL;
  charm_kv_store_status status;
  memset(&status, 0xAB, sizeof status);
  CHECK_STATUS(charm_kv_store_get_status(store, false, &status, &err), CHARM_KV_STATUS_OK);
  CHECK(err == NULL);
  CHECK(status.last_sync_unix_ms == 0);
  CHECK(status.last_sync_version == 0);
  CHECK(status.local_version == 0);
  CHECK(status.pending_writes == 0);
  CHECK(status.chain_start == 0);
  CHECK(status.size_bytes > 0);
  CHECK(status.integrity_error == NULL);
  CHECK(status.remote == CHARM_KV_REMOTE_STATE_NOT_CONFIGURED);
  CHECK(status.remote_error == NULL);
  charm_kv_store_status_free(&status);

  CHECK_STATUS(charm_kv_store_set(store, SLICE("a"), SLICE("1"), NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_set(store, SLICE("b"), SLICE("2"), NULL), CHARM_KV_STATUS_OK);
  /* Local mode asks no one, even when asked to. */
  CHECK_STATUS(charm_kv_store_get_status(store, true, &status, &err), CHARM_KV_STATUS_OK);
  CHECK(status.pending_writes == 2);
  CHECK(status.remote == CHARM_KV_REMOTE_STATE_NOT_CONFIGURED);
  charm_kv_store_status_free(&status);
  charm_kv_store_status_free(&status); /* freeing again is a no-op */
  CHECK(status.remote_error == NULL && status.integrity_error == NULL);

  /* Never synced: due at any age, and local mode cannot sync. */
  bool synced = true;
  CHECK_STATUS(charm_kv_store_sync_if_stale(store, UINT64_MAX, &synced, &err),
               CHARM_KV_STATUS_NOT_CONFIGURED);
  CHECK_ERROR(err, CHARM_KV_STATUS_NOT_CONFIGURED, "CHARM_HOST");
  CHECK(synced == true); /* outputs are written only on OK */
  charm_kv_store_free(store);
}

/* A TCP port on 127.0.0.1 that nothing listens on (bound, then closed). */
static uint16_t closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd >= 0);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  CHECK(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
  CHECK(getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
  close(fd);
  return ntohs(addr.sin_port);
}

static void test_status_reports_an_unreachable_server(const char *dir) {
  uint16_t port = closed_port();
  charm_kv_options *options = test_options(dir);
  CHECK_STATUS(charm_kv_options_set_host(options, "127.0.0.1", NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_ssh_port(options, port, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_http_port(options, port, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_auto_push(options, false, NULL), CHARM_KV_STATUS_OK);
  charm_kv_store *store = NULL;
  CHECK_STATUS(charm_kv_store_open("remote", options, &store, NULL), CHARM_KV_STATUS_OK);
  charm_kv_options_free(options);
  charm_kv_error *err = NULL;
  charm_kv_store_status status;
  CHECK_STATUS(charm_kv_store_get_status(store, false, &status, &err), CHARM_KV_STATUS_OK);
  CHECK(status.remote == CHARM_KV_REMOTE_STATE_NOT_CHECKED);
  CHECK(status.remote_error == NULL);
  charm_kv_store_status_free(&status);

  CHECK_STATUS(charm_kv_store_get_status(store, true, &status, &err), CHARM_KV_STATUS_OK);
  CHECK(status.remote == CHARM_KV_REMOTE_STATE_UNREACHABLE);
  CHECK(status.remote_version == 0);
  CHECK(status.remote_error != NULL);
  CHECK(charm_kv_error_status(status.remote_error) == CHARM_KV_STATUS_NETWORK);
  CHECK(strstr(charm_kv_error_message(status.remote_error), "network error") != NULL);
  charm_kv_store_status_free(&status);
  CHECK(status.remote_error == NULL);

  bool synced = true;
  CHECK_STATUS(charm_kv_store_sync_if_stale(store, 60000, &synced, &err), CHARM_KV_STATUS_NETWORK);
  CHECK_ERROR(err, CHARM_KV_STATUS_NETWORK, NULL);
  charm_kv_store_free(store);
}

static void test_read_only_open_reads_and_refuses_writes(const char *dir) {
  charm_kv_store *store = open_store(dir, "ro");
  CHECK_STATUS(charm_kv_store_set(store, SLICE("k"), SLICE("v"), NULL), CHARM_KV_STATUS_OK);
  charm_kv_store_free(store);

  charm_kv_options *options = test_options(dir);
  charm_kv_error *err = NULL;
  CHECK_STATUS(charm_kv_options_set_read_only(options, true, &err), CHARM_KV_STATUS_OK);
  CHECK(err == NULL);
  store = NULL;
  CHECK_STATUS(charm_kv_store_open("ro", options, &store, &err), CHARM_KV_STATUS_OK);
  charm_kv_bytes value = {NULL, 0};
  CHECK_STATUS(charm_kv_store_get(store, BYTES("k"), &value, &err), CHARM_KV_STATUS_OK);
  CHECK(bytes_eq(value.data, value.len, "v"));
  charm_kv_bytes_free(&value);

  const charm_kv_status ro = CHARM_KV_STATUS_READ_ONLY;
  CHECK_STATUS(charm_kv_store_set(store, SLICE("k"), SLICE("w"), &err), ro);
  CHECK_ERROR(err, ro, "read-only");
  CHECK_STATUS(charm_kv_store_delete(store, BYTES("k"), &err), ro);
  CHECK_ERROR(err, ro, "read-only");
  charm_kv_batch *batch = NULL;
  CHECK_STATUS(charm_kv_batch_begin(store, &batch, &err), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_batch_set(batch, SLICE("b"), SLICE("B"), &err), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_batch_commit(batch, &err), ro);
  CHECK_ERROR(err, ro, "read-only");
  CHECK_STATUS(charm_kv_store_sync(store, NULL, NULL, &err), ro);
  CHECK_ERROR(err, ro, NULL);
  CHECK_STATUS(charm_kv_store_reset(store, true, &err), ro);
  CHECK_ERROR(err, ro, NULL);
  bool synced = true;
  CHECK_STATUS(charm_kv_store_sync_if_stale(store, 0, &synced, &err), ro);
  CHECK_ERROR(err, ro, NULL);
  CHECK_STATUS(charm_kv_database_delete(options, "ro", &err), ro);
  CHECK_ERROR(err, ro, NULL);
  CHECK_STATUS(charm_kv_store_get(store, BYTES("k"), &value, &err), CHARM_KV_STATUS_OK);
  CHECK(bytes_eq(value.data, value.len, "v"));
  charm_kv_bytes_free(&value);
  CHECK_STATUS(charm_kv_store_get(store, BYTES("b"), &value, &err), CHARM_KV_STATUS_NOT_FOUND);
  CHECK_ERROR(err, CHARM_KV_STATUS_NOT_FOUND, NULL);
  charm_kv_store_free(store);

  /* A database that does not exist is not created. */
  store = NULL;
  CHECK_STATUS(charm_kv_store_open("absent", options, &store, &err), CHARM_KV_STATUS_NOT_FOUND);
  CHECK_ERROR(err, CHARM_KV_STATUS_NOT_FOUND, "absent");
  CHECK(store == NULL);
  char path[4096];
  snprintf(path, sizeof path, "%s/localhost/charm-kv/absent.sqlite", dir);
  CHECK(!path_exists(path));

  /* Off again: the same options write. */
  CHECK_STATUS(charm_kv_options_set_read_only(options, false, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_open("ro", options, &store, &err), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_set(store, SLICE("k"), SLICE("w"), &err), CHARM_KV_STATUS_OK);
  charm_kv_store_free(store);
  charm_kv_options_free(options);
}

const test_case basic_tests[] = {
    {"version_macros_match_library", test_version_macros_match_library},
    {"status_codes_and_strings", test_status_codes_and_strings},
    {"set_get_delete", test_set_get_delete},
    {"binary_and_empty_keys_and_values", test_binary_and_empty_keys_and_values},
    {"get_into_caller_buffer", test_get_into_caller_buffer},
    {"keys_are_listed_in_order", test_keys_are_listed_in_order},
    {"iteration_both_ways", test_iteration_both_ways},
    {"prefix_and_seek", test_prefix_and_seek},
    {"export_and_import_as_json_lines", test_export_and_import_as_json_lines},
    {"expiry_with_ttls_and_absolute_times", test_expiry_with_ttls_and_absolute_times},
    {"iteration_sees_one_snapshot_while_writing",
     test_iteration_sees_one_snapshot_while_writing},
    {"batch_commit_rollback_and_get", test_batch_commit_rollback_and_get},
    {"sync_reset_and_pending_in_local_mode", test_sync_reset_and_pending_in_local_mode},
    {"backup_can_be_opened_as_a_database", test_backup_can_be_opened_as_a_database},
    {"list_and_delete_databases", test_list_and_delete_databases},
    {"options_borrowed_and_from_env", test_options_borrowed_and_from_env},
    {"open_with_environment_and_local_keyring",
     test_open_with_environment_and_local_keyring},
    {"option_setters", test_option_setters},
    {"encrypt_keys", test_encrypt_keys},
    {"status_of_a_local_database", test_status_of_a_local_database},
    {"status_reports_an_unreachable_server", test_status_reports_an_unreachable_server},
    {"read_only_open_reads_and_refuses_writes", test_read_only_open_reads_and_refuses_writes},
    {NULL, NULL},
};
