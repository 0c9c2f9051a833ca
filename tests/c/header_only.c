/* The header on its own compiles cleanly as C99, C11, C2x and C++11, twice included
 * (make -C tests/c header). */
#include "charm_kv.h"
#include "charm_kv.h"

int main(void) {
  charm_kv_status status = CHARM_KV_STATUS_OK;
  charm_kv_sync_progress_fn progress = 0;
  (void)progress;
  return (int)status;
}
