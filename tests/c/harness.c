/* Test runner: runs every test (or those whose name contains argv[1]) in its own
 * temporary data directory and prints "<label>: N passed, M failed". The label is
 * $CHARM_KV_TEST_LABEL or "c-tests". Exit status 1 when anything failed. */
#include "harness.h"

#include <ftw.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_int current_failures;

void harness_fail(const char *file, int line, const char *what) {
  atomic_fetch_add(&current_failures, 1);
  fprintf(stderr, "    %s:%d: %s\n", file, line, what);
}

void check_status_at(const char *file, int line, const char *call,
                     charm_kv_status got, charm_kv_status expected) {
  if (got == expected) return;
  char what[512];
  snprintf(what, sizeof what, "%s returned %u (%s), expected %u (%s)", call,
           (unsigned)got, charm_kv_status_str(got), (unsigned)expected,
           charm_kv_status_str(expected));
  harness_fail(file, line, what);
}

void check_error_at(const char *file, int line, charm_kv_error **err,
                    charm_kv_status status, const char *needle) {
  char what[512];
  if (*err == NULL) {
    snprintf(what, sizeof what, "expected an error with status %u, got none",
             (unsigned)status);
    harness_fail(file, line, what);
    return;
  }
  charm_kv_status got = charm_kv_error_status(*err);
  const char *message = charm_kv_error_message(*err);
  if (got != status) {
    snprintf(what, sizeof what, "error status %u, expected %u (message: %s)",
             (unsigned)got, (unsigned)status, message);
    harness_fail(file, line, what);
  }
  if (message == NULL || message[0] == '\0') {
    harness_fail(file, line, "error message is empty");
  } else if (needle != NULL && strstr(message, needle) == NULL) {
    snprintf(what, sizeof what, "error message \"%s\" lacks \"%s\"", message,
             needle);
    harness_fail(file, line, what);
  }
  charm_kv_error_free(*err);
  *err = NULL;
}

bool bytes_eq(const uint8_t *data, size_t len, const char *expected) {
  size_t n = strlen(expected);
  return len == n && (n == 0 || memcmp(data, expected, n) == 0);
}

charm_kv_options *test_options(const char *dir) {
  charm_kv_options *options = NULL;
  CHECK_STATUS(charm_kv_options_new(&options, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_data_dir(options, dir, NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_options_set_encrypt_key(options, BYTES(TEST_KEY), NULL),
               CHARM_KV_STATUS_OK);
  return options;
}

charm_kv_store *open_store(const char *dir, const char *name) {
  charm_kv_options *options = test_options(dir);
  charm_kv_store *store = NULL;
  charm_kv_error *err = NULL;
  charm_kv_status status = charm_kv_store_open(name, options, &store, &err);
  if (status != CHARM_KV_STATUS_OK) {
    fprintf(stderr, "    open(%s): %s\n", name, charm_kv_error_message(err));
    harness_fail(__FILE__, __LINE__, "open_store failed");
    charm_kv_error_free(err);
  }
  charm_kv_options_free(options);
  return store;
}

bool path_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

char *make_temp_dir(void) {
  const char *base = getenv("TMPDIR");
  char template[4096];
  snprintf(template, sizeof template, "%s/charm-kv-c-XXXXXX",
           base && base[0] ? base : "/tmp");
  char *dir = mkdtemp(template);
  if (dir == NULL) {
    perror("mkdtemp");
    exit(2);
  }
  return strdup(dir);
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

void remove_tree(const char *path) {
  nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv) {
  const char *filter = argc > 1 ? argv[1] : NULL;
  const char *label = getenv("CHARM_KV_TEST_LABEL");
  if (label == NULL || label[0] == '\0') label = "c-tests";
  const test_case *groups[] = {basic_tests, misuse_tests, thread_tests, hostile_tests};
  int passed = 0, failed = 0;
  for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
    for (const test_case *t = groups[g]; t->name != NULL; t++) {
      if (filter != NULL && strstr(t->name, filter) == NULL) continue;
      char *dir = make_temp_dir();
      atomic_store(&current_failures, 0);
      t->fn(dir);
      remove_tree(dir);
      free(dir);
      if (atomic_load(&current_failures) == 0) {
        passed++;
        printf("ok   %s\n", t->name);
      } else {
        failed++;
        printf("FAIL %s\n", t->name);
      }
      fflush(stdout);
    }
  }
  printf("%s: %d passed, %d failed\n", label, passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}
