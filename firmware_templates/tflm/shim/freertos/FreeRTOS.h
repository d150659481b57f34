// mcuq shim for FreeRTOS as ESP-IDF ships it.
#pragma once
#include <stdint.h>
typedef uint32_t TickType_t;
#define portTICK_PERIOD_MS 1
#define pdMS_TO_TICKS(ms) ((TickType_t)(ms))
