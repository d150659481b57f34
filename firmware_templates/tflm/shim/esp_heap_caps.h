// mcuq shim for ESP-IDF's heap_caps (PSRAM arenas come from the ordinary heap here).
#pragma once
#include <stdlib.h>
#define MALLOC_CAP_SPIRAM (1u << 10)
#define MALLOC_CAP_8BIT (1u << 2)
#define MALLOC_CAP_INTERNAL (1u << 11)
static inline void* heap_caps_aligned_alloc(size_t alignment, size_t size, unsigned caps) {
  (void)caps;
  void* p = NULL;
  return posix_memalign(&p, alignment, size) == 0 ? p : NULL;
}
static inline void* heap_caps_malloc(size_t size, unsigned caps) { (void)caps; return malloc(size); }
static inline void heap_caps_free(void* p) { free(p); }
