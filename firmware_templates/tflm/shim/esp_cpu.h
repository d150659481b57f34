// mcuq shim for ESP-IDF's esp_cpu.h: the cycle counter at the ESP32's 240 MHz, from the clock.
#pragma once
#include <stdint.h>

#include "mcuq_shim.h"
#ifndef MCUQ_SHIM_CPU_MHZ
#define MCUQ_SHIM_CPU_MHZ 240u
#endif
#ifdef __cplusplus
extern "C" {
#endif
static inline uint32_t esp_cpu_get_cycle_count(void) { return (uint32_t)(mcuq_shim_nanos() * MCUQ_SHIM_CPU_MHZ / 1000u); }
#ifdef __cplusplus
}
#endif
