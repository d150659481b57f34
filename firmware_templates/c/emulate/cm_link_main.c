/* mcuq emulator harness for Cortex-M with the validation link (qemu-system-arm -M mps2-an385/
 * an386/an500 -serial pty): the boot self-test, then the link, both on the CMSDK UART0 of the
 * mps2 boards. Time is SysTick on the CPU clock as in cm4_main.c (with -icount shift=0 qemu runs
 * one instruction per virtual nanosecond, 40 per tick at the boards' 25 MHz). */
#include <stdint.h>

#include "mcuq_link.h"
#include "mcuq_selftest.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

#define UART_DATA (*(volatile uint32_t*)0x40004000u)
#define UART_STATE (*(volatile uint32_t*)0x40004004u)
#define UART_CTRL (*(volatile uint32_t*)0x40004008u)
#define UART_BAUDDIV (*(volatile uint32_t*)0x40004010u)
#define SYST_CSR (*(volatile uint32_t*)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t*)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t*)0xE000E018u)
#define SCB_ICSR (*(volatile uint32_t*)0xE000ED04u)

static volatile uint32_t systick_wraps;

void mcuq_link_putc(char c) {
  while (UART_STATE & 1u) {
  }
  UART_DATA = (uint8_t)c;
}

int mcuq_link_read(void) { return (UART_STATE & 2u) ? (int)(UART_DATA & 0xFFu) : -1; }

void mcuq_hw_print(const char* text) {
  while (*text) mcuq_link_putc(*text++);
  mcuq_link_putc('\n');
}

uint32_t mcuq_hw_ticks(void) {
  uint32_t primask, wraps, value;
  __asm__ volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
  wraps = systick_wraps;
  value = SYST_CVR;
  if ((SCB_ICSR & (1u << 26)) && value > 0x00800000u) ++wraps;
  __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
  return (wraps << 24) + (0x00FFFFFFu - value);
}

const char* const mcuq_hw_tick_unit = "systick";
uint32_t mcuq_link_ticks(void) { return mcuq_hw_ticks(); }
/* One SysTick tick is 40 instructions; counted as 40 cycles of the board (MCUQ_CPU_HZ), as the
 * emulator estimate of deploy does, so the link reports instructions as cycles. */
const uint32_t mcuq_link_tick_hz = MCUQ_CPU_HZ / 40u;

size_t mcuq_link_stack_room(void) {
  char here = 0;
  uint32_t room = (uint32_t)(&here - (char*)&_ebss);
  return room > 64u ? room - 64u : 0u;
}

void SysTick_Handler(void) { ++systick_wraps; }

void Reset_Handler(void) {
  uint32_t *src = &_sidata, *dst = &_sdata;
  while (dst < &_edata) *dst++ = *src++;
  for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
#if defined(__ARM_FP)
  (*(volatile uint32_t*)0xE000ED88u) |= 0xFu << 20;
  __asm__ volatile("dsb\n isb" ::: "memory");
#endif
  SYST_RVR = 0x00FFFFFFu;
  SYST_CVR = 0;
  SYST_CSR = 7u;
  while (SYST_CVR == 0u) {
  }
  UART_BAUDDIV = 16u; /* qemu transmits only with a divider >= 16 */
  UART_CTRL = 3u;     /* TX and RX enabled */
  main();
  for (;;) {
  }
}

static void Default_Handler(void) {
  mcuq_hw_print("mcuq: FAULT");
  for (;;) {
  }
}

__attribute__((section(".isr_vector"), used)) void (*const mcuq_vectors[16])(void) = {
    (void (*)(void))(&_estack), Reset_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0, Default_Handler, SysTick_Handler,
};

int main(void) {
  mcuq_selftest();
  mcuq_link_begin();
  for (;;) mcuq_link_poll();
}
