/* mcuq shim on a Cortex-M in qemu (mps2-an385 / an386 / an500): vector table, reset,
 * semihosting output and exit, and an instruction clock from SysTick under -icount shift=0. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcuq_shim.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern void __libc_init_array(void);
int main(void);

#define SYST_CSR (*(volatile uint32_t*)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t*)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t*)0xE000E018u)
#define SCB_ICSR (*(volatile uint32_t*)0xE000ED04u)
#define SCB_CPACR (*(volatile uint32_t*)0xE000ED88u)
/* The mps2 system clock is 25 MHz; -icount shift=0 makes one instruction 1 ns, so one
 * SysTick tick is 40 instructions. */
#define NS_PER_TICK 40u

static volatile uint32_t systick_wraps;
void* __dso_handle = 0;

static int semihost(int op, const void* arg) {
  register int r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void mcuq_shim_write(const char* text) { semihost(0x04, text); }

uint64_t mcuq_shim_nanos(void) {
  uint32_t primask, wraps, value;
  __asm__ volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
  wraps = systick_wraps;
  value = SYST_CVR;
  if ((SCB_ICSR & (1u << 26)) && value > 0x00800000u) ++wraps;
  __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
  return ((((uint64_t)wraps) << 24) + (0x00FFFFFFu - value)) * NS_PER_TICK;
}

void mcuq_shim_exit(int code) {
  uint32_t args[2] = {0x20026u, (uint32_t)code}; /* ADP_Stopped_ApplicationExit, exit code */
  semihost(0x20, args);                           /* SYS_EXIT_EXTENDED: qemu exits with `code` */
  for (;;) {
  }
}

void _exit(int code) { mcuq_shim_exit(code); }
void mcuq_shim_idle(uint32_t ms) { /* one boot is the whole check in qemu */
  (void)ms;
  mcuq_shim_exit(0);
}

int mcuq_shim_arg(void) {
  static char line[128];
  struct { char* buf; int len; } block = {line, (int)sizeof(line)};
  if (semihost(0x15, &block) != 0) return -1; /* SYS_GET_CMDLINE: "kernel ARG" */
  char* space = strchr(line, ' ');
  return space ? atoi(space + 1) : -1;
}

void _init(void) {}
void _fini(void) {}

void SysTick_Handler(void) { ++systick_wraps; }

void Reset_Handler(void) {
#if defined(__ARM_FP)
  SCB_CPACR |= 0xFu << 20; /* CP10/CP11 full access before the first FP instruction */
  __asm__ volatile("dsb\n isb");
#endif
  uint32_t *src = &_sidata, *dst = &_sdata;
  while (dst < &_edata) *dst++ = *src++;
  for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  SYST_RVR = 0x00FFFFFFu;
  SYST_CVR = 0;
  SYST_CSR = 7u;
  while (SYST_CVR == 0u) {
  }
  __libc_init_array();
  mcuq_shim_exit(main());
}

static void Fault_Handler(void) {
  mcuq_shim_write("mcuq: FAULT (hard fault in the firmware)\n");
  mcuq_shim_exit(3);
}

__attribute__((section(".isr_vector"), used)) void (*const mcuq_vectors[16])(void) = {
    (void (*)(void))(&_estack), Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler, 0, Fault_Handler, SysTick_Handler,
};
