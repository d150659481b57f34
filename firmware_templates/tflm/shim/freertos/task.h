// mcuq shim: the firmware's main loop delays between iterations; one boot is the whole check,
// so the first delay ends the program, unless the link is being served (MCUQ_SHIM_LINK=1 in the
// environment, mcuq/device/emulated.py): then the delay is a short sleep and the loop goes on.
#pragma once
#include "freertos/FreeRTOS.h"
#include "mcuq_shim.h"
#ifdef __cplusplus
extern "C" {
#endif
typedef unsigned int UBaseType_t;
static inline void vTaskDelay(TickType_t ticks) { mcuq_shim_idle((uint32_t)ticks); }
// The main task's free stack (bytes on ESP-IDF): the host stack is far larger; 16 KB are painted.
static inline UBaseType_t uxTaskGetStackHighWaterMark(void* task) { (void)task; return 16384u; }
#ifdef __cplusplus
}
#endif
