/* The cost of the C ABI boundary: point gets through charm_kv_get (plus
 * charm_kv_bytes_free), on the same data shape as `cargo bench --bench compare`
 * (16-byte keys, 100-byte values, 10k keys, 100k random lookups, best of 3).
 * scripts/bench builds it against the release library and prints the ratio. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "charm_kv.h"

#define KEYS 10000u
#define LOOKUPS 100000u

static void key_of(uint64_t i, uint8_t out[16]) {
  uint64_t mixed = i * 0x9E3779B97F4A7C15ull;
  for (int b = 0; b < 8; b++) out[b] = (uint8_t)(i >> (56 - 8 * b)); /* big-endian */
  for (int b = 0; b < 8; b++) out[8 + b] = (uint8_t)(mixed >> (8 * b)); /* little-endian */
}

static void check(charm_kv_status status, charm_kv_error *err, const char *what) {
  if (status != CHARM_KV_STATUS_OK) {
    fprintf(stderr, "%s: %s\n", what, charm_kv_error_message(err));
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: get DATA_DIR\n");
    return 2;
  }
  charm_kv_error *err = NULL;
  charm_kv_options *options = NULL;
  check(charm_kv_options_new(&options, &err), err, "options");
  check(charm_kv_options_set_data_dir(options, argv[1], &err), err, "data dir");
  const char *key_text = "bench-key-bench-key-bench-key-0123456789";
  check(charm_kv_options_set_encrypt_key(options, (const uint8_t *)key_text, strlen(key_text), &err),
        err, "key");
  charm_kv_store *store = NULL;
  check(charm_kv_open("bench", options, &store, &err), err, "open");
  charm_kv_options_free(options);

  uint8_t key[16], value[100];
  memset(value, 7, sizeof value);
  charm_kv_batch *batch = NULL;
  check(charm_kv_batch_begin(store, &batch, &err), err, "batch");
  for (uint64_t i = 0; i < KEYS; i++) {
    key_of(i, key);
    check(charm_kv_batch_set(batch, key, sizeof key, value, sizeof value, &err), err, "batch set");
  }
  check(charm_kv_batch_commit(batch, &err), err, "commit");

  double best = 0;
  for (int round = 0; round < 3; round++) {
    uint64_t state = 7;
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (uint32_t n = 0; n < LOOKUPS; n++) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      key_of((state >> 33) % KEYS, key);
      charm_kv_bytes out = {0};
      check(charm_kv_get(store, key, sizeof key, &out, NULL), NULL, "get");
      charm_kv_bytes_free(&out);
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double secs = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
    double rate = LOOKUPS / secs;
    if (rate > best) best = rate;
  }
  printf("c-abi point get, hit (%u keys): %.0f ops/s\n", KEYS, best);
  charm_kv_free(store);
  return 0;
}
