// mcuq shim: the firmware's main loop delays between iterations; one boot is the whole check,
// so the first delay ends the program.
#pragma once
#include "freertos/FreeRTOS.h"
#include "mcuq_shim.h"
#ifdef __cplusplus
extern "C" {
#endif
static inline void vTaskDelay(TickType_t ticks) { (void)ticks; mcuq_shim_exit(0); }
#ifdef __cplusplus
}
#endif
