/* mcuq: what every Cortex-M program mcuq runs in qemu's mps2 boards (an385 / an386 / an500)
 * needs from the board: semihosting, SysTick as an instruction clock, the CMSDK UART0 (on a
 * pseudo-terminal with qemu -serial pty), the start-up and the vector table. Shared by the
 * plain-C harness (cm4_main.c) and the TFLite Micro framework shim (tflm/shim/shim_cortexm.c).
 * Included by exactly one file of a program: it defines SysTick_Handler and the tick counter.
 * Under -icount shift=0 one instruction is 1 ns; at the boards' 25 MHz one SysTick tick is 40
 * instructions. */
#ifndef MCUQ_MPS2_H
#define MCUQ_MPS2_H

#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

#define MPS2_SYST_CSR (*(volatile uint32_t*)0xE000E010u)
#define MPS2_SYST_RVR (*(volatile uint32_t*)0xE000E014u)
#define MPS2_SYST_CVR (*(volatile uint32_t*)0xE000E018u)
#define MPS2_SCB_ICSR (*(volatile uint32_t*)0xE000ED04u)
#define MPS2_SCB_CPACR (*(volatile uint32_t*)0xE000ED88u)
#define MPS2_UART_DATA (*(volatile uint32_t*)0x40004000u)
#define MPS2_UART_STATE (*(volatile uint32_t*)0x40004004u)
#define MPS2_UART_CTRL (*(volatile uint32_t*)0x40004008u)
#define MPS2_UART_BAUDDIV (*(volatile uint32_t*)0x40004010u)
#define MPS2_NS_PER_TICK 40u

static volatile uint32_t mps2_systick_wraps;

void SysTick_Handler(void) { ++mps2_systick_wraps; }

static inline int mps2_semihost(int op, const void* arg) {
  register int r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

/* SysTick ticks since start: the 24-bit down-counter extended by its wraps. */
static inline uint64_t mps2_ticks(void) {
  uint32_t primask, wraps, value;
  __asm__ volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
  wraps = mps2_systick_wraps;
  value = MPS2_SYST_CVR;
  /* A wrap whose interrupt is still pending: the counter has already reloaded. */
  if ((MPS2_SCB_ICSR & (1u << 26)) && value > 0x00800000u) ++wraps;
  __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
  return (((uint64_t)wraps) << 24) + (0x00FFFFFFu - value);
}

/* Reset: the FPU (hard-float builds), .data and .bss, SysTick running on the CPU clock. */
static inline void mps2_start(void) {
  uint32_t *src = &_sidata, *dst = &_sdata;
#if defined(__ARM_FP)
  MPS2_SCB_CPACR |= 0xFu << 20; /* CP10/CP11 full access before the first FP instruction */
  __asm__ volatile("dsb\n isb" ::: "memory");
#endif
  while (dst < &_edata) *dst++ = *src++;
  for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  MPS2_SYST_RVR = 0x00FFFFFFu;
  MPS2_SYST_CVR = 0;
  MPS2_SYST_CSR = 7u; /* enable, interrupt, CPU clock */
  while (MPS2_SYST_CVR == 0u) {
  } /* the counter loads on its first tick; reading 0 before that would look like a wrap */
}

static inline void mps2_uart_start(void) {
  MPS2_UART_BAUDDIV = 16u; /* qemu transmits only with a divider >= 16 */
  MPS2_UART_CTRL = 3u;     /* TX and RX enabled */
}

static inline void mps2_uart_put(char c) {
  while (MPS2_UART_STATE & 1u) {
  }
  MPS2_UART_DATA = (uint8_t)c;
}

static inline int mps2_uart_read(void) { return (MPS2_UART_STATE & 2u) ? (int)(MPS2_UART_DATA & 0xFFu) : -1; }

/* The vector table: the stack top, reset, one handler for every fault, SysTick. */
#define MPS2_VECTORS(reset, fault)                                                                         \
  __attribute__((section(".isr_vector"), used)) void (*const mcuq_vectors[16])(void) = {                  \
      (void (*)(void))(&_estack), reset, fault, fault, fault, fault, fault, 0, 0, 0, 0, fault, fault, 0, fault, \
      SysTick_Handler,                                                                                     \
  }

#endif
