/* The hostile matrix of issue 18: paths that SQLite could read as URIs, lengths
 * beyond the limits (checked before any byte is read), unreadable rows, statuses and
 * message sizes, and the out-pointer rules (alignment, aliasing with err, nothing
 * written on failure). Each case failed (or crashed) before the fixes. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define INVALID CHARM_KV_STATUS_INVALID_ARGUMENT

/* Runs in `dir` as the working directory (relative paths land there), then returns
 * to the previous one. The runner is single-threaded. */
static char saved_cwd[4096];
static void enter(const char *dir) {
  CHECK(getcwd(saved_cwd, sizeof saved_cwd) != NULL);
  CHECK(chdir(dir) == 0);
}
static void leave(void) { CHECK(chdir(saved_cwd) == 0); }

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  if (f == NULL) return;
  fputs(text, f);
  fclose(f);
}

static bool file_is(const char *path, const char *text) {
  char buf[256] = {0};
  FILE *f = fopen(path, "rb");
  if (f == NULL) return false;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  return n == strlen(text) && memcmp(buf, text, n) == 0;
}

/* 1. A backup path is a plain path, never a URI. */
static void test_backup_path_is_never_a_uri(const char *dir) {
  charm_kv_store *store = open_store(dir, "uri");
  charm_kv_error *err = NULL;
  CHECK_STATUS(charm_kv_store_set(store, SLICE("k"), SLICE("v"), NULL), CHARM_KV_STATUS_OK);
  enter(dir);
  write_file("victim.db", "precious");
  CHECK_STATUS(charm_kv_store_backup_to(store, "file:victim.db", &err), CHARM_KV_STATUS_OK);
  CHECK(err == NULL);
  CHECK(file_is("victim.db", "precious")); /* untouched */
  CHECK(path_exists("file:victim.db"));     /* the literal name */
  /* A URI asking for an in-memory database is a file name like any other. */
  CHECK_STATUS(charm_kv_store_backup_to(store, "file:b?mode=memory", &err), CHARM_KV_STATUS_OK);
  CHECK(path_exists("file:b?mode=memory"));
  CHECK(!path_exists("b"));
  leave();
  charm_kv_store_free(store);

  /* The copy is a real database. */
  char other[1024], kv_dir[2048], from[4096], to[4096];
  snprintf(other, sizeof other, "%.900s/copy", dir);
  mkdir(other, 0700);
  snprintf(kv_dir, sizeof kv_dir, "%s/localhost", other);
  mkdir(kv_dir, 0700);
  snprintf(kv_dir, sizeof kv_dir, "%s/localhost/kv", other);
  mkdir(kv_dir, 0700);
  snprintf(from, sizeof from, "%.900s/file:b?mode=memory", dir);
  snprintf(to, sizeof to, "%s/copy.sqlite", kv_dir);
  CHECK(rename(from, to) == 0);
  charm_kv_store *copy = open_store(other, "copy");
  charm_kv_bytes value;
  CHECK_STATUS(charm_kv_store_get(copy, BYTES("k"), &value, NULL), CHARM_KV_STATUS_OK);
  CHECK(bytes_eq(value.data, value.len, "v"));
  charm_kv_bytes_free(&value);
  charm_kv_store_free(copy);
}

/* 1. A data directory whose name reads as a URI cannot move the database elsewhere. */
static void test_uri_like_data_dir_cannot_escape(const char *dir) {
  enter(dir);
  charm_kv_options *options = NULL;
  CHECK_STATUS(charm_kv_options_new(&options, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_data_dir(options, "file:escaped.sqlite?x=", NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_encrypt_key(options, BYTES(TEST_KEY), NULL),
               CHARM_KV_STATUS_OK);
  charm_kv_store *store = NULL;
  charm_kv_error *err = NULL;
  CHECK_STATUS(charm_kv_store_open("db", options, &store, &err), CHARM_KV_STATUS_OK);
  if (err != NULL) CHECK_ERROR(err, CHARM_KV_STATUS_OK, NULL);
  CHECK_STATUS(charm_kv_store_set(store, SLICE("k"), SLICE("v"), NULL), CHARM_KV_STATUS_OK);
  charm_kv_store_free(store);
  CHECK(!path_exists("escaped.sqlite"));
  CHECK(path_exists("file:escaped.sqlite?x=/localhost/charm-kv/db.sqlite"));
  charm_kv_options_free(options);
  leave();
}

/* 2. Lengths over the limits are refused before a byte is read or copied: the
 * pointers below point to one readable byte (a 64 GiB copy used to abort). */
static void test_oversized_lengths_are_refused_before_reading(const char *dir) {
  charm_kv_store *store = open_store(dir, "sizes");
  charm_kv_error *err = NULL;
  const uint8_t *one = (const uint8_t *)"x";
  const size_t huge = (size_t)64 << 30; /* 64 GiB */
  CHECK_STATUS(charm_kv_store_set(store, SLICE("k"), SLICE_OF(one, huge), &err), INVALID);
  CHECK_ERROR(err, INVALID, "value is 68719476736 bytes; the limit is");
  CHECK_STATUS(charm_kv_store_set(store, SLICE_OF(one, huge), SLICE("v"), &err), INVALID);
  CHECK_ERROR(err, INVALID, "key is 68719476736 bytes; the limit is 65000");
  CHECK_STATUS(charm_kv_store_set(store, SLICE_OF(one, 65001), SLICE("v"), &err), INVALID);
  CHECK_ERROR(err, INVALID, "limit is 65000");
  charm_kv_bytes value;
  CHECK_STATUS(charm_kv_store_get(store, one, huge, &value, &err), INVALID);
  CHECK_ERROR(err, INVALID, "limit is 65000");
  CHECK_STATUS(charm_kv_store_delete(store, one, huge, &err), INVALID);
  CHECK_ERROR(err, INVALID, "limit is 65000");
  charm_kv_value_buf buf = {NULL, 0, 0, {NULL, 0}};
  CHECK_STATUS(charm_kv_store_get_into(store, one, huge, &buf, &err), INVALID);
  CHECK_ERROR(err, INVALID, "limit is 65000");

  charm_kv_batch *batch = NULL;
  CHECK_STATUS(charm_kv_batch_begin(store, &batch, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_batch_set(batch, SLICE("k"), SLICE_OF(one, huge), &err), INVALID);
  CHECK_ERROR(err, INVALID, "value is 68719476736 bytes");
  CHECK_STATUS(charm_kv_batch_set(batch, SLICE_OF(one, huge), SLICE("v"), &err), INVALID);
  CHECK_ERROR(err, INVALID, "limit is 65000");
  CHECK_STATUS(charm_kv_batch_delete(batch, one, huge, &err), INVALID);
  CHECK_ERROR(err, INVALID, "limit is 65000");
  CHECK_STATUS(charm_kv_batch_get(batch, one, huge, &value, &err), INVALID);
  CHECK_ERROR(err, INVALID, "limit is 65000");
  CHECK_STATUS(charm_kv_batch_commit(batch, NULL), CHARM_KV_STATUS_OK);

  charm_kv_options *options = NULL;
  CHECK_STATUS(charm_kv_options_new(&options, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_encrypt_key(options, one, huge, &err), INVALID);
  CHECK_ERROR(err, INVALID, "encrypt key");
  CHECK_STATUS(charm_kv_options_add_encrypt_key(options, one, huge, &err), INVALID);
  CHECK_ERROR(err, INVALID, "encrypt key");
  charm_kv_options_free(options);

  charm_kv_bytes_list keys;
  CHECK_STATUS(charm_kv_store_keys(store, &keys, NULL), CHARM_KV_STATUS_OK);
  CHECK(keys.len == 0);
  charm_kv_bytes_list_free(&keys);
  charm_kv_store_free(store);
}

/* Writes row "b" under OTHER_KEY into a database created with TEST_KEY, so that with
 * TEST_KEY alone the key check passes and that one row does not decrypt. */
static charm_kv_store *store_with_unreadable_row(const char *dir) {
  charm_kv_store *store = open_store(dir, "rows");
  CHECK_STATUS(charm_kv_store_set(store, SLICE("a"), SLICE("1"), NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_set(store, SLICE("c"), SLICE("3"), NULL), CHARM_KV_STATUS_OK);
  charm_kv_store_free(store);
  charm_kv_options *both = NULL;
  CHECK_STATUS(charm_kv_options_new(&both, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_data_dir(both, dir, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_encrypt_key(both, BYTES(OTHER_KEY), NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_add_encrypt_key(both, BYTES(TEST_KEY), NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_open("rows", both, &store, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_set(store, SLICE("b"), SLICE("2"), NULL), CHARM_KV_STATUS_OK);
  charm_kv_store_free(store);
  charm_kv_options_free(both);
  return open_store(dir, "rows");
}

/* 5. One unreadable row: the key list refuses with a count (never a silently partial
 * list), the iterator yields every readable pair, then one CORRUPT per bad row. */
static void test_unreadable_row_is_reported_per_row(const char *dir) {
  charm_kv_store *store = store_with_unreadable_row(dir);
  charm_kv_error *err = NULL;
  charm_kv_bytes_list keys = {NULL, 0};
  CHECK_STATUS(charm_kv_store_keys(store, &keys, &err), CHARM_KV_STATUS_CORRUPT);
  CHECK_ERROR(err, CHARM_KV_STATUS_CORRUPT, "1 of 3 stored keys do not decrypt");
  CHECK(keys.items == NULL && keys.len == 0);

  for (int reverse = 0; reverse < 2; reverse++) {
    charm_kv_iter *it = NULL;
    CHECK_STATUS(charm_kv_iter_new(store, &(charm_kv_range){.reverse = reverse}, true, &it, &err), CHARM_KV_STATUS_OK);
    if (err != NULL) CHECK_ERROR(err, CHARM_KV_STATUS_OK, NULL);
    const char *expected[] = {reverse ? "c" : "a", reverse ? "a" : "c"};
    charm_kv_slice k, v;
    bool has;
    for (int i = 0; i < 2; i++) {
      CHECK_STATUS(charm_kv_iter_next(it, &k, &v, &has, NULL), CHARM_KV_STATUS_OK);
      CHECK(has && bytes_eq(k.data, k.len, expected[i]));
    }
    has = true;
    CHECK_STATUS(charm_kv_iter_next(it, &k, &v, &has, &err), CHARM_KV_STATUS_CORRUPT);
    CHECK_ERROR(err, CHARM_KV_STATUS_CORRUPT, "does not decrypt");
    CHECK(has); /* outputs untouched on failure */
    CHECK_STATUS(charm_kv_iter_next(it, &k, &v, &has, NULL), CHARM_KV_STATUS_OK);
    CHECK(!has);
    charm_kv_iter_free(it);
  }
  /* The readable rows read and write as before. */
  charm_kv_bytes value;
  CHECK_STATUS(charm_kv_store_get(store, BYTES("c"), &value, NULL), CHARM_KV_STATUS_OK);
  CHECK(bytes_eq(value.data, value.len, "3"));
  charm_kv_bytes_free(&value);
  charm_kv_store_free(store);
}

/* 6. Statuses and messages. */
static void test_statuses_and_short_messages(const char *dir) {
  charm_kv_options *options = test_options(dir);
  charm_kv_error *err = NULL;
  /* A missing database is NOT_FOUND naming the database, not "key not found". */
  CHECK_STATUS(charm_kv_database_delete(options, "nosuchdb", &err), CHARM_KV_STATUS_NOT_FOUND);
  CHECK_ERROR(err, CHARM_KV_STATUS_NOT_FOUND, "no database named \"nosuchdb\"");
  /* A short encrypt key is a bad argument, as documented. */
  CHECK_STATUS(charm_kv_options_set_encrypt_key(options, BYTES("short"), &err), INVALID);
  CHECK_ERROR(err, INVALID, "encrypt key text is 5 bytes");
  CHECK_STATUS(charm_kv_options_add_encrypt_key(options, BYTES("short"), &err), INVALID);
  CHECK_ERROR(err, INVALID, "encrypt key text is 5 bytes");
  /* A 64 KiB name gives a short message. */
  size_t n = 64 * 1024;
  char *name = malloc(n + 1);
  CHECK(name != NULL);
  if (name != NULL) {
    memset(name, 'n', n);
    name[n] = '\0';
    charm_kv_store *store = NULL;
    CHECK_STATUS(charm_kv_store_open(name, options, &store, &err), INVALID);
    CHECK(err != NULL && strlen(charm_kv_error_message(err)) < 200);
    CHECK_ERROR(err, INVALID, "nnnn\"\xe2\x80\xa6 is longer than 200 bytes");
    CHECK_STATUS(charm_kv_database_delete(options, name, &err), INVALID);
    CHECK(err != NULL && strlen(charm_kv_error_message(err)) < 200);
    CHECK_ERROR(err, INVALID, NULL);
    free(name);
  }
  charm_kv_options_free(options);
}

/* 7. The err out-pointer is checked like the others: a misaligned one is refused
 * without writing anything, and no output may overlap it (one would leak). */
static void test_err_pointer_rules(const char *dir) {
  charm_kv_store *store = open_store(dir, "errptr");
  charm_kv_options *options = test_options(dir);
  CHECK_STATUS(charm_kv_store_set(store, SLICE("k"), SLICE("v"), NULL), CHARM_KV_STATUS_OK);

  /* Misaligned err: INVALID_ARGUMENT, and not one byte written. */
  void *storage[3];
  unsigned char *raw = (unsigned char *)storage;
  memset(raw, 0xAB, sizeof storage);
  charm_kv_error **misaligned = (charm_kv_error **)(void *)(raw + 1);
  charm_kv_bytes value;
  CHECK_STATUS(charm_kv_store_get(store, BYTES("missing"), &value, misaligned), INVALID);
  CHECK_STATUS(charm_kv_store_set(store, SLICE("k2"), SLICE("v"), misaligned), INVALID);
  CHECK_STATUS(charm_kv_options_set_read_only(options, true, misaligned), INVALID);
  for (size_t i = 0; i < sizeof storage; i++) CHECK(raw[i] == 0xAB);
  CHECK_STATUS(charm_kv_store_get(store, BYTES("k2"), &value, NULL), CHARM_KV_STATUS_NOT_FOUND);

  /* An output that is err itself: refused, the error lands in err, nothing leaks. */
  charm_kv_error *err = NULL;
  CHECK_STATUS(charm_kv_store_open("errptr", options, (charm_kv_store **)(void *)&err, &err),
               INVALID);
  CHECK_ERROR(err, INVALID, "out_store overlaps err");
  CHECK_STATUS(charm_kv_iter_new(store, NULL, true, (charm_kv_iter **)(void *)&err, &err),
               INVALID);
  CHECK_ERROR(err, INVALID, "out_iter overlaps err");
  CHECK_STATUS(charm_kv_options_new((charm_kv_options **)(void *)&err, &err), INVALID);
  CHECK_ERROR(err, INVALID, "overlaps err");
  /* A struct output containing err. */
  struct {
    charm_kv_bytes value;
  } holder;
  CHECK_STATUS(charm_kv_store_get(store, BYTES("k"), &holder.value,
                            (charm_kv_error **)(void *)&holder.value.data),
               INVALID);
  charm_kv_error *in_holder;
  memcpy(&in_holder, &holder.value.data, sizeof in_holder);
  CHECK_ERROR(in_holder, INVALID, "out_value overlaps err");
  /* get_into's caller buffer must not hold err either. */
  charm_kv_error *slots[8];
  charm_kv_value_buf buf = {(uint8_t *)slots, sizeof slots, 0, {NULL, 0}};
  CHECK_STATUS(charm_kv_store_get_into(store, BYTES("k"), &buf, &slots[2]), INVALID);
  CHECK_ERROR(slots[2], INVALID, "out->data overlaps err");
  charm_kv_options_free(options);
  charm_kv_store_free(store);
}

/* 7. get_into writes its outputs only on OK, like every function. */
static void test_get_into_leaves_outputs_on_failure(const char *dir) {
  charm_kv_store *store = open_store(dir, "into");
  uint8_t data[16];
  memset(data, 0x5A, sizeof data);
  uint8_t sentinel = 0;
  charm_kv_value_buf buf = {data, sizeof data, 12345, {&sentinel, 7}};
  CHECK_STATUS(charm_kv_store_get_into(store, BYTES("missing"), &buf, NULL),
               CHARM_KV_STATUS_NOT_FOUND);
  CHECK(buf.len == 12345 && buf.large.data == &sentinel && buf.large.len == 7);
  CHECK(buf.data == data && buf.cap == sizeof data);
  for (size_t i = 0; i < sizeof data; i++) CHECK(data[i] == 0x5A);
  charm_kv_store_free(store);
  /* Closed: the same. */
  store = open_store(dir, "into");
  CHECK_STATUS(charm_kv_store_close(store, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_get_into(store, BYTES("k"), &buf, NULL), CHARM_KV_STATUS_CLOSED);
  CHECK(buf.len == 12345 && buf.large.data == &sentinel && buf.large.len == 7);
  charm_kv_store_free(store);
}

const test_case hostile_tests[] = {
    {"backup_path_is_never_a_uri", test_backup_path_is_never_a_uri},
    {"uri_like_data_dir_cannot_escape", test_uri_like_data_dir_cannot_escape},
    {"oversized_lengths_are_refused_before_reading",
     test_oversized_lengths_are_refused_before_reading},
    {"unreadable_row_is_reported_per_row", test_unreadable_row_is_reported_per_row},
    {"statuses_and_short_messages", test_statuses_and_short_messages},
    {"err_pointer_rules", test_err_pointer_rules},
    {"get_into_leaves_outputs_on_failure", test_get_into_leaves_outputs_on_failure},
    {NULL, NULL},
};
