// mcuq shim for ESP-IDF's esp_timer.
#pragma once
#include <stdint.h>

#include "mcuq_shim.h"
#ifdef __cplusplus
extern "C" {
#endif
static inline int64_t esp_timer_get_time(void) { return (int64_t)(mcuq_shim_nanos() / 1000u); }
#ifdef __cplusplus
}
#endif
