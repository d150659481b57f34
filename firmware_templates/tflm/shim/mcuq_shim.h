// mcuq framework shim: the three things a platform provides (see README.md).
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
void mcuq_shim_write(const char* text);       // text as is (no newline added)
uint64_t mcuq_shim_nanos(void);               // monotonic; in qemu: executed instructions
void mcuq_shim_exit(int code);                // ends the program
int mcuq_shim_arg(void);                      // first integer argument (argv[1] / semihosting cmdline), -1 if none
void mcuq_shim_idle(uint32_t ms);             // the main loop's delay: ends the program, unless the link is served
int mcuq_shim_link(void);                     // 1: the validation link is served (the program runs until killed)
int mcuq_shim_read(void);                     // next received byte, -1 when none is waiting (never blocks)
#ifdef __cplusplus
}
#endif
