/* mcuq emulator harness for Cortex-M (qemu-system-arm -M mps2-an385/an386/an500; ARMv6-M and
 * ARMv7-M code alike; the board parts are in mps2.h). Time is SysTick on the CPU clock.
 * The self-test alone logs through semihosting SYS_WRITE0 and ends the program with its exit
 * call. With -DMCUQ_EMULATED_LINK (mcuq/device/emulated.py, which also compiles mcuq_api.c and
 * mcuq_link.c; qemu -serial pty, no semihosting) the log and then the validation link use the
 * CMSDK UART0, and the program never ends. One harness for both. */
#include <stdint.h>

#include "mcuq_selftest.h"
#include "mps2.h"
#if defined(MCUQ_EMULATED_LINK)
#include "mcuq_link.h"
#endif

int main(void);

#if defined(MCUQ_EMULATED_LINK)
void mcuq_link_putc(char c) { mps2_uart_put(c); }
int mcuq_link_read(void) { return mps2_uart_read(); }
uint32_t mcuq_link_ticks(void) { return (uint32_t)mps2_ticks(); }
/* One SysTick tick is 40 instructions; counted as 40 cycles of the board (MCUQ_CPU_HZ), as the
 * emulator estimate of deploy does, so the link reports instructions as cycles. */
const uint32_t mcuq_link_tick_hz = MCUQ_CPU_HZ / MPS2_NS_PER_TICK;

size_t mcuq_link_stack_room(void) {
  char here = 0;
  uint32_t room = (uint32_t)(&here - (char*)&_ebss);
  return room > 64u ? room - 64u : 0u;
}

void mcuq_hw_print(const char* text) {
  while (*text) mps2_uart_put(*text++);
  mps2_uart_put('\n');
}

static void stop(void) { /* no semihosting: the emulator runs until mcuq kills it */
  for (;;) {
  }
}
#else
void mcuq_hw_print(const char* text) {
  mps2_semihost(0x04, text);
  mps2_semihost(0x04, "\n");
}

static void stop(void) {
  static const uint32_t exit_args[2] = {0x20026u, 0u}; /* ADP_Stopped_ApplicationExit */
  mps2_semihost(0x18, exit_args);
  for (;;) {
  }
}
#endif

uint32_t mcuq_hw_ticks(void) { return (uint32_t)mps2_ticks(); }

const char* const mcuq_hw_tick_unit = "systick";

void Reset_Handler(void) {
  mps2_start();
#if defined(MCUQ_EMULATED_LINK)
  mps2_uart_start();
#endif
  main();
  stop();
}

static void Default_Handler(void) {
  mcuq_hw_print("mcuq: FAULT");
#if !defined(MCUQ_EMULATED_LINK)
  mps2_semihost(0x18, (const void*)0x20023u); /* ADP_Stopped_InternalError */
#endif
  stop();
}

MPS2_VECTORS(Reset_Handler, Default_Handler);

int main(void) {
  mcuq_selftest();
#if defined(MCUQ_EMULATED_LINK)
  mcuq_link_begin();
  for (;;) mcuq_link_poll();
#endif
  return 0;
}
