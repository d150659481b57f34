/* mcuq emulator harness for Cortex-M (qemu-system-arm -M mps2-an385/an386/an500 -semihosting;
 * ARMv6-M and ARMv7-M code alike). Log through semihosting SYS_WRITE0; time with SysTick on
 * the CPU clock. */
#include <stdint.h>

#include "mcuq_selftest.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

#define SYST_CSR (*(volatile uint32_t*)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t*)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t*)0xE000E018u)

static volatile uint32_t systick_wraps;

static int semihost(int op, const void* arg) {
  register int r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void mcuq_hw_print(const char* text) {
  semihost(0x04, text);
  semihost(0x04, "\n");
}

#define SCB_ICSR (*(volatile uint32_t*)0xE000ED04u)

uint32_t mcuq_hw_ticks(void) {
  uint32_t primask, wraps, value;
  __asm__ volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
  wraps = systick_wraps;
  value = SYST_CVR;
  /* A wrap whose interrupt is still pending: the counter has already reloaded. */
  if ((SCB_ICSR & (1u << 26)) && value > 0x00800000u) ++wraps;
  __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
  return (wraps << 24) + (0x00FFFFFFu - value);
}

const char* const mcuq_hw_tick_unit = "systick";

void SysTick_Handler(void) { ++systick_wraps; }

void Reset_Handler(void) {
  uint32_t *src = &_sidata, *dst = &_sdata;
  while (dst < &_edata) *dst++ = *src++;
  for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
#if defined(__ARM_FP)
  (*(volatile uint32_t*)0xE000ED88u) |= 0xFu << 20; /* CPACR: CP10/CP11 full access (hard-float builds) */
  __asm__ volatile("dsb\n isb" ::: "memory");
#endif
  SYST_RVR = 0x00FFFFFFu;
  SYST_CVR = 0;
  SYST_CSR = 7u; /* enable, interrupt, CPU clock */
  while (SYST_CVR == 0u) {
  } /* the counter loads on its first tick; reading 0 before that would look like a wrap */
  main();
  {
    static const uint32_t exit_args[2] = {0x20026u, 0u}; /* ADP_Stopped_ApplicationExit */
    semihost(0x18, exit_args);
  }
  for (;;) {
  }
}

static void Default_Handler(void) {
  mcuq_hw_print("mcuq: FAULT");
  semihost(0x18, (const void*)0x20023u);
  for (;;) {
  }
}

__attribute__((section(".isr_vector"), used)) void (*const mcuq_vectors[16])(void) = {
    (void (*)(void))(&_estack), Reset_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0, Default_Handler, SysTick_Handler,
};

int main(void) {
  mcuq_selftest();
  return 0;
}
