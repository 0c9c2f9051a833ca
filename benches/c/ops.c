/* The cost of the C ABI boundary: the operations of `cargo bench --bench ops` (the Rust
 * API, criterion) driven from C through include/charm_kv.h, on the same data shape:
 * 16-byte keys, 100-byte values, SIZE keys loaded first.
 *
 *   get_hit    charm_kv_store_get of a present key (random order) + charm_kv_bytes_free
 *   get_miss   charm_kv_store_get of an absent key
 *   keys       charm_kv_store_keys (full sorted listing) + charm_kv_bytes_list_free
 *   open       charm_kv_store_open + charm_kv_store_free of the same database
 *   set        charm_kv_store_set of one pair (autocommit, durable)
 *   batch_set  10k charm_kv_batch_set in one batch, then charm_kv_batch_commit
 *   delete     charm_kv_store_delete of a present key (inserted untimed before)
 *
 * Measurement, like criterion's: a warm-up that doubles the iteration count until one
 * run lasts a tenth of the budget, then 10 samples of that many iterations; the median
 * sample gives the figure (elements per second). scripts/bench builds it against the
 * release static library (pkg-config charm_kv-static) and divides by the Rust API's.
 *
 * Usage: ops DATA_DIR SIZE [SIZE...]; BENCH_MEASURE_MS (default 2000) per benchmark;
 * BENCH_OPS (comma-separated names) runs only those operations.
 * Prints one line per operation and size, tab-separated:
 *   c-abi <operation> <size> c-abi <elements per second> <unit> */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "charm_kv.h"

#define KEY_LEN 16
#define VALUE_LEN 100
#define BATCH 10000u
#define LOOKUPS 100000u
#define SAMPLES 10

static void key_of(uint64_t i, uint8_t out[KEY_LEN]) {
  uint64_t mixed = i * 0x9E3779B97F4A7C15ull;
  for (int b = 0; b < 8; b++) out[b] = (uint8_t)(i >> (56 - 8 * b));   /* big-endian */
  for (int b = 0; b < 8; b++) out[8 + b] = (uint8_t)(mixed >> (8 * b)); /* little-endian */
}

/* A value depending on n, so that no write rewrites an identical row. */
static void value_of(uint64_t n, uint8_t out[VALUE_LEN]) {
  uint64_t state = n * 0x9E3779B97F4A7C15ull + 1;
  for (int b = 0; b < VALUE_LEN; b++) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    out[b] = (uint8_t)(state >> 56);
  }
}

static charm_kv_slice slice_of(const uint8_t *data, size_t len) {
  charm_kv_slice slice = {data, len};
  return slice;
}

static void check(charm_kv_status status, charm_kv_error *err, const char *what) {
  if (status != CHARM_KV_STATUS_OK) {
    fprintf(stderr, "ops: %s: %s (%s)\n", what, err ? charm_kv_error_message(err) : "",
            charm_kv_status_str(status));
    exit(1);
  }
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct ctx {
  charm_kv_store *store;
  charm_kv_options *options;
  char name[64];
  uint64_t size;
  uint64_t *lookups;
  uint64_t at;      /* next lookup */
  uint64_t counter; /* fresh values */
};

static charm_kv_error *err;

/* Each operation runs `iters` iterations and returns the seconds it timed. */
typedef double (*op_fn)(struct ctx *, uint64_t iters);

static double get_common(struct ctx *c, uint64_t iters, uint64_t offset, charm_kv_status want) {
  uint8_t key[KEY_LEN];
  double start = now();
  for (uint64_t n = 0; n < iters; n++) {
    key_of(c->lookups[c->at] + offset, key);
    c->at = (c->at + 1) % LOOKUPS;
    charm_kv_bytes out = {0};
    charm_kv_status status = charm_kv_store_get(c->store, key, sizeof key, &out, NULL);
    if (status != want) check(status, NULL, "get");
    charm_kv_bytes_free(&out);
  }
  return now() - start;
}

static double op_get_hit(struct ctx *c, uint64_t iters) {
  return get_common(c, iters, 0, CHARM_KV_STATUS_OK);
}

static double op_get_miss(struct ctx *c, uint64_t iters) {
  return get_common(c, iters, c->size, CHARM_KV_STATUS_NOT_FOUND);
}

static double op_keys(struct ctx *c, uint64_t iters) {
  double start = now();
  for (uint64_t n = 0; n < iters; n++) {
    charm_kv_bytes_list list = {0};
    check(charm_kv_store_keys(c->store, &list, &err), err, "keys");
    if (list.len != c->size) {
      fprintf(stderr, "ops: listed %zu keys, want %llu\n", list.len, (unsigned long long)c->size);
      exit(1);
    }
    charm_kv_bytes_list_free(&list);
  }
  return now() - start;
}

static double op_open(struct ctx *c, uint64_t iters) {
  double start = now();
  for (uint64_t n = 0; n < iters; n++) {
    charm_kv_store *again = NULL;
    check(charm_kv_store_open(c->name, c->options, &again, &err), err, "open");
    charm_kv_store_free(again);
  }
  return now() - start;
}

static double op_set(struct ctx *c, uint64_t iters) {
  uint8_t key[KEY_LEN], value[VALUE_LEN];
  double timed = 0;
  for (uint64_t n = 0; n < iters; n++) {
    uint64_t round = ++c->counter;
    key_of(c->size + round % BATCH, key);
    value_of(round, value);
    double start = now();
    check(charm_kv_store_set(c->store, slice_of(key, sizeof key), slice_of(value, sizeof value), &err), err, "set");
    timed += now() - start;
  }
  return timed;
}

static double op_batch_set(struct ctx *c, uint64_t iters) {
  static uint8_t values[BATCH][VALUE_LEN];
  uint8_t key[KEY_LEN];
  double timed = 0;
  for (uint64_t n = 0; n < iters; n++) {
    uint64_t round = ++c->counter;
    for (uint64_t i = 0; i < BATCH; i++) value_of(round * BATCH + i, values[i]);
    double start = now();
    charm_kv_batch *batch = NULL;
    check(charm_kv_batch_begin(c->store, &batch, &err), err, "batch");
    for (uint64_t i = 0; i < BATCH; i++) {
      key_of(2 * c->size + i, key);
      check(charm_kv_batch_set(batch, slice_of(key, sizeof key), slice_of(values[i], VALUE_LEN), &err), err,
            "batch set");
    }
    check(charm_kv_batch_commit(batch, &err), err, "commit");
    timed += now() - start;
  }
  return timed;
}

static double op_delete(struct ctx *c, uint64_t iters) {
  uint8_t key[KEY_LEN], value[VALUE_LEN];
  charm_kv_batch *batch = NULL;
  check(charm_kv_batch_begin(c->store, &batch, &err), err, "batch");
  for (uint64_t i = 0; i < iters; i++) {
    key_of(3 * c->size + i, key);
    value_of(++c->counter, value);
    check(charm_kv_batch_set(batch, slice_of(key, sizeof key), slice_of(value, sizeof value), &err), err, "batch set");
  }
  check(charm_kv_batch_commit(batch, &err), err, "commit");
  double start = now();
  for (uint64_t i = 0; i < iters; i++) {
    key_of(3 * c->size + i, key);
    check(charm_kv_store_delete(c->store, key, sizeof key, &err), err, "delete");
  }
  return now() - start;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Elements per second: warm-up to a tenth of the budget, then SAMPLES samples. */
static double measure(struct ctx *c, op_fn op, double budget, double elements) {
  uint64_t iters = 1;
  double sample_target = budget / SAMPLES;
  for (;;) {
    double t = op(c, iters);
    if (t >= sample_target || iters >= (1ull << 40)) break;
    iters = t > 0 && sample_target / t < 2 ? (uint64_t)(iters * (sample_target / t)) + 1
                                           : iters * 2;
  }
  double per_iter[SAMPLES];
  for (int s = 0; s < SAMPLES; s++) per_iter[s] = op(c, iters) / (double)iters;
  qsort(per_iter, SAMPLES, sizeof per_iter[0], by_value);
  double median = (per_iter[SAMPLES / 2 - 1] + per_iter[SAMPLES / 2]) / 2;
  return elements / median;
}

/* Whether `name` is one of the comma-separated names in `list`. */
static int listed(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n && strncmp(p, name, n) == 0) return 1;
    if (!end) break;
    p = end + 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: ops DATA_DIR SIZE [SIZE...]\n");
    return 2;
  }
  const char *measure_ms = getenv("BENCH_MEASURE_MS");
  double budget = (measure_ms ? atof(measure_ms) : 2000.0) / 1000.0;
  if (budget <= 0) budget = 2.0;

  for (int a = 2; a < argc; a++) {
    struct ctx c = {0};
    c.size = strtoull(argv[a], NULL, 10);
    if (c.size == 0) {
      fprintf(stderr, "ops: bad size %s\n", argv[a]);
      return 2;
    }
    snprintf(c.name, sizeof c.name, "ops-%llu", (unsigned long long)c.size);
    check(charm_kv_options_new(&c.options, &err), err, "options");
    check(charm_kv_options_set_data_dir(c.options, argv[1], &err), err, "data dir");
    const char *key_text = "bench-key-bench-key-bench-key-0123456789";
    check(charm_kv_options_set_encrypt_key(c.options, (const uint8_t *)key_text, strlen(key_text),
                                           &err),
          err, "key");
    check(charm_kv_store_open(c.name, c.options, &c.store, &err), err, "open");

    uint8_t key[KEY_LEN], value[VALUE_LEN];
    for (uint64_t start = 0; start < c.size; start += 50000) {
      charm_kv_batch *batch = NULL;
      check(charm_kv_batch_begin(c.store, &batch, &err), err, "batch");
      for (uint64_t i = start; i < c.size && i < start + 50000; i++) {
        key_of(i, key);
        value_of(i, value);
        check(charm_kv_batch_set(batch, slice_of(key, sizeof key), slice_of(value, sizeof value), &err), err,
              "batch set");
      }
      check(charm_kv_batch_commit(batch, &err), err, "commit");
    }
    c.counter = c.size;
    c.lookups = malloc(LOOKUPS * sizeof *c.lookups);
    uint64_t state = 7;
    for (uint32_t n = 0; n < LOOKUPS; n++) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      c.lookups[n] = (state >> 33) % c.size;
    }

    /* Reads first, so the listing sees exactly SIZE keys (as in benches/ops.rs). */
    struct {
      const char *name;
      op_fn fn;
      double elements;
      const char *unit;
    } ops[] = {
        {"get_hit", op_get_hit, 1, "ops/s"},
        {"get_miss", op_get_miss, 1, "ops/s"},
        {"keys", op_keys, (double)c.size, "keys/s"},
        {"open", op_open, 1, "opens/s"},
        {"set", op_set, 1, "ops/s"},
        {"batch_set", op_batch_set, BATCH, "ops/s"},
        {"delete", op_delete, 1, "ops/s"},
    };
    const char *only = getenv("BENCH_OPS");
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
      if (only && !listed(only, ops[o].name)) continue;
      double rate = measure(&c, ops[o].fn, budget, ops[o].elements);
      printf("c-abi\t%s\t%llu\tc-abi\t%.1f\t%s\n", ops[o].name, (unsigned long long)c.size, rate,
             ops[o].unit);
      fflush(stdout);
    }
    free(c.lookups);
    charm_kv_store_free(c.store);
    charm_kv_options_free(c.options);
  }
  return 0;
}
