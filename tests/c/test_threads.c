/* Many threads on one store handle: writers, readers, iterators and batches at once,
 * and a close racing with calls in flight. */
#include <pthread.h>
#include <stdlib.h>

#include "harness.h"

#define THREADS 8
#define OPS 40

struct worker {
  charm_kv_store *store;
  int id;
};

/* Each worker writes its own keys, reads them back, deletes every other one, and
 * commits a batch; all through the one shared handle. */
static void *write_and_read(void *arg) {
  struct worker *w = arg;
  for (int i = 0; i < OPS; i++) {
    char key[32], value[32];
    snprintf(key, sizeof key, "t%d-k%03d", w->id, i);
    snprintf(value, sizeof value, "value %d/%d", w->id, i);
    charm_kv_error *err = NULL;
    CHECK_STATUS(charm_kv_store_set(w->store, SLICE(key), SLICE(value), &err),
                 CHARM_KV_STATUS_OK);
    charm_kv_error_free(err);
    charm_kv_bytes got = {NULL, 0};
    CHECK_STATUS(charm_kv_store_get(w->store, BYTES(key), &got, NULL), CHARM_KV_STATUS_OK);
    CHECK(bytes_eq(got.data, got.len, value));
    charm_kv_bytes_free(&got);
    if (i % 2 == 1) {
      CHECK_STATUS(charm_kv_store_delete(w->store, BYTES(key), NULL), CHARM_KV_STATUS_OK);
    }
  }
  charm_kv_batch *batch = NULL;
  CHECK_STATUS(charm_kv_batch_begin(w->store, &batch, NULL), CHARM_KV_STATUS_OK);
  for (int i = 0; i < 5; i++) {
    char key[32];
    snprintf(key, sizeof key, "t%d-batch%d", w->id, i);
    CHECK_STATUS(charm_kv_batch_set(batch, SLICE(key), SLICE("b"), NULL),
                 CHARM_KV_STATUS_OK);
  }
  CHECK_STATUS(charm_kv_batch_commit(batch, NULL), CHARM_KV_STATUS_OK);
  return NULL;
}

/* Iterates again and again while the writers run: every pass must be in order. */
static void *iterate(void *arg) {
  struct worker *w = arg;
  for (int pass = 0; pass < 10; pass++) {
    charm_kv_iter *it = NULL;
    CHECK_STATUS(charm_kv_iter_new(w->store, &(charm_kv_range){.reverse = pass % 2 == 1}, true, &it, NULL),
                 CHARM_KV_STATUS_OK);
    char previous[64] = "";
    bool first = true;
    for (;;) {
      charm_kv_slice k, v;
      bool has;
      if (charm_kv_iter_next(it, &k, &v, &has, NULL) != CHARM_KV_STATUS_OK) {
        CHECK(!"iter_next failed");
        break;
      }
      if (!has) break;
      char key[64];
      snprintf(key, sizeof key, "%.*s", (int)k.len, (const char *)k.data);
      if (!first) {
        int order = strcmp(previous, key);
        CHECK(pass % 2 == 0 ? order < 0 : order > 0);
      }
      first = false;
      memcpy(previous, key, sizeof key);
    }
    charm_kv_iter_free(it);
  }
  return NULL;
}

static void test_many_threads_on_one_handle(const char *dir) {
  charm_kv_store *store = open_store(dir, "threads");
  pthread_t threads[THREADS + 2];
  struct worker workers[THREADS + 2];
  for (int i = 0; i < THREADS + 2; i++) {
    workers[i].store = store;
    workers[i].id = i;
    CHECK(pthread_create(&threads[i], NULL, i < THREADS ? write_and_read : iterate,
                         &workers[i]) == 0);
  }
  for (int i = 0; i < THREADS + 2; i++) pthread_join(threads[i], NULL);

  /* Every thread kept half of its keys plus its batch. */
  charm_kv_bytes_list keys;
  CHECK_STATUS(charm_kv_store_keys(store, &keys, NULL), CHARM_KV_STATUS_OK);
  CHECK(keys.len == (size_t)THREADS * (OPS / 2 + 5));
  charm_kv_bytes_list_free(&keys);
  uint64_t pending = 0;
  CHECK_STATUS(charm_kv_store_pending_writes(store, &pending, NULL), CHARM_KV_STATUS_OK);
  CHECK(pending > 0);
  charm_kv_store_free(store);
}

/* Readers that run until the store is closed under them. */
static void *read_until_closed(void *arg) {
  struct worker *w = arg;
  for (;;) {
    charm_kv_bytes got = {NULL, 0};
    charm_kv_error *err = NULL;
    charm_kv_status status = charm_kv_store_get(w->store, BYTES("k"), &got, &err);
    if (status == CHARM_KV_STATUS_CLOSED) {
      CHECK(err != NULL && charm_kv_error_status(err) == CHARM_KV_STATUS_CLOSED);
      charm_kv_error_free(err);
      return NULL;
    }
    CHECK_STATUS(status, CHARM_KV_STATUS_OK);
    CHECK(err == NULL);
    CHECK(bytes_eq(got.data, got.len, "v"));
    charm_kv_bytes_free(&got);
    if (status != CHARM_KV_STATUS_OK) return NULL;
  }
}

static void test_close_races_with_calls_in_flight(const char *dir) {
  charm_kv_store *store = open_store(dir, "race");
  CHECK_STATUS(charm_kv_store_set(store, SLICE("k"), SLICE("v"), NULL), CHARM_KV_STATUS_OK);
  pthread_t threads[4];
  struct worker workers[4];
  for (int i = 0; i < 4; i++) {
    workers[i].store = store;
    workers[i].id = i;
    CHECK(pthread_create(&threads[i], NULL, read_until_closed, &workers[i]) == 0);
  }
  /* Let them get going, then close from this thread (twice, concurrently with
   * their calls); free only after every thread is done with the handle. */
  for (int i = 0; i < 20; i++) {
    charm_kv_bytes got;
    CHECK_STATUS(charm_kv_store_get(store, BYTES("k"), &got, NULL), CHARM_KV_STATUS_OK);
    charm_kv_bytes_free(&got);
  }
  CHECK_STATUS(charm_kv_store_close(store, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_close(store, NULL), CHARM_KV_STATUS_OK);
  for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
  charm_kv_store_free(store);
}

/* An iterator and a batch are single-thread objects, but may move between threads
 * (as goroutines do): made on one thread, used on another. */
struct handoff {
  charm_kv_iter *it;
  charm_kv_batch *batch;
  int seen;
};

static void *use_elsewhere(void *arg) {
  struct handoff *h = arg;
  for (;;) {
    charm_kv_slice k;
    bool has;
    CHECK_STATUS(charm_kv_iter_next(h->it, &k, NULL, &has, NULL), CHARM_KV_STATUS_OK);
    if (!has) break;
    h->seen++;
  }
  charm_kv_iter_free(h->it);
  CHECK_STATUS(charm_kv_batch_set(h->batch, SLICE("moved"), SLICE("1"), NULL),
               CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_batch_commit(h->batch, NULL), CHARM_KV_STATUS_OK);
  return NULL;
}

static void test_iterators_and_batches_move_between_threads(const char *dir) {
  charm_kv_store *store = open_store(dir, "handoff");
  CHECK_STATUS(charm_kv_store_set(store, SLICE("a"), SLICE("1"), NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_store_set(store, SLICE("b"), SLICE("2"), NULL), CHARM_KV_STATUS_OK);
  struct handoff h = {NULL, NULL, 0};
  CHECK_STATUS(charm_kv_iter_new(store, NULL, false, &h.it, NULL), CHARM_KV_STATUS_OK);
  CHECK_STATUS(charm_kv_batch_begin(store, &h.batch, NULL), CHARM_KV_STATUS_OK);
  pthread_t thread;
  CHECK(pthread_create(&thread, NULL, use_elsewhere, &h) == 0);
  pthread_join(thread, NULL);
  CHECK(h.seen == 2);
  charm_kv_bytes got;
  CHECK_STATUS(charm_kv_store_get(store, BYTES("moved"), &got, NULL), CHARM_KV_STATUS_OK);
  charm_kv_bytes_free(&got);
  charm_kv_store_free(store);
}

const test_case thread_tests[] = {
    {"many_threads_on_one_handle", test_many_threads_on_one_handle},
    {"close_races_with_calls_in_flight", test_close_races_with_calls_in_flight},
    {"iterators_and_batches_move_between_threads",
     test_iterators_and_batches_move_between_threads},
    {NULL, NULL},
};
